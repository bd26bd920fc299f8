//! Disk faults under the directory: a full or read-only data directory during enrolment,
//! renewal and harvesting gives a clear error naming the file and the cause, changes nothing
//! (redb commits atomically), and the same operation succeeds once the disk is fixed. Harvesting
//! happens inside `serve`: there the message must still be delivered, with the failure logged.
//!
//! The data directory is a small tmpfs the test mounts, so "full" and "read-only" are real
//! kernel answers (ENOSPC, EROFS). That needs root (file permissions would not do: root ignores
//! them, and CI runs as root); without root the tests fail and say so.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::Gw;
use common::smtp::{Sink, free_port, send, wait_listening};

/// A tmpfs mounted on a directory for the life of the value.
struct Tmpfs {
    at: PathBuf,
}

fn sh(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Self {
        let uid = sh("id", &["-u"]);
        assert!(
            String::from_utf8_lossy(&uid.stdout).trim() == "0",
            "the disk-fault tests need root: they mount a small tmpfs to make the data directory \
             really full or read-only (root ignores file permissions, so nothing else is honest); \
             run them as root (scripts/test does in CI)"
        );
        std::fs::create_dir_all(at).unwrap();
        let o = sh(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
                at.to_str().unwrap(),
            ],
        );
        assert!(
            o.status.success(),
            "mount -t tmpfs on {} failed: {}",
            at.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        Self {
            at: at.to_path_buf(),
        }
    }

    fn remount(&self, mode: &str) {
        let o = sh(
            "mount",
            &["-o", &format!("remount,{mode}"), self.at.to_str().unwrap()],
        );
        assert!(
            o.status.success(),
            "remount {mode}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Fills the file system to the last page; returns the filler to delete later. Call it
    /// again before each operation: a failed redb commit gives back the pages it had taken.
    fn fill(&self) -> PathBuf {
        let p = self.at.join("filler");
        let mut f = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&p)
            .unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.write_all(&[0u8; 1]);
        p
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = sh("umount", &["-l", self.at.to_str().unwrap()]);
    }
}

/// A gateway whose data directory is a fresh tmpfs, with a CA and alice enrolled.
fn gateway_on_tmpfs(extra: &str) -> (Gw, Tmpfs) {
    let gw = Gw::with_config(extra);
    let fs = Tmpfs::mount(&gw.data_dir(), "4m");
    gw.init_ca();
    gw.enroll("alice@acme.test", "Alice", "p256");
    (gw, fs)
}

fn assert_clear(stderr: &str, gw: &Gw, cause: &str, fix: &str) {
    let db = gw.data_dir().join("smimegw.redb");
    assert!(
        stderr.contains(&db.display().to_string()),
        "names the file: {stderr}"
    );
    assert!(stderr.contains(cause), "names the cause: {stderr}");
    assert!(stderr.contains(fix), "says what to do: {stderr}");
    assert!(
        stderr.contains("nothing was changed"),
        "says nothing changed: {stderr}"
    );
}

/// An operation repeated on a full disk until it fails: redb reuses pages freed inside its file
/// before it grows the file, so the first attempts may rightly succeed in that slack (the
/// directory stays consistent either way). The attempt that needs a new page must fail with a
/// clear error and change nothing; once space is freed, the same operation succeeds.
fn on_a_full_disk(op: impl Fn(usize) -> Vec<String>, check: &str) {
    let (gw, fs) = gateway_on_tmpfs("");
    let filler = fs.fill();
    let mut failed = None;
    for i in 0..40 {
        let before = gw.snapshot();
        let args = op(i);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = gw.run(&args);
        if o.status.success() {
            fs.fill();
            continue;
        }
        assert_eq!(o.status.code(), Some(2));
        let e = String::from_utf8_lossy(&o.stderr);
        assert_clear(&e, &gw, "No space left on device", "is full");
        // Reading still works on a full disk, and shows the state from before.
        assert_eq!(gw.snapshot(), before, "{args:?} changed nothing");
        failed = Some(i);
        break;
    }
    let i = failed.expect("40 attempts on a full disk all succeeded");

    std::fs::remove_file(filler).unwrap();
    let args = op(i);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    gw.ok(&args);
    let audit = gw.ok(&["audit"]);
    assert!(audit.contains(check), "{audit}");
}

#[test]
fn a_full_data_directory_fails_enrol_clearly_and_changes_nothing() {
    on_a_full_disk(
        |i| {
            format!("user enroll u{i}@acme.test --name U --key p256")
                .split(' ')
                .map(String::from)
                .collect()
        },
        "user.enroll",
    );
}

#[test]
fn a_full_data_directory_fails_renew_clearly_and_changes_nothing() {
    on_a_full_disk(
        |_| {
            ["user", "renew", "alice@acme.test"]
                .map(String::from)
                .to_vec()
        },
        "user.renew",
    );
}

#[test]
fn a_read_only_data_directory_fails_enrol_and_renew_clearly_and_changes_nothing() {
    let (gw, fs) = gateway_on_tmpfs("");
    let before = gw.snapshot();
    let db_before = std::fs::read(gw.data_dir().join("smimegw.redb")).unwrap();
    fs.remount("ro");

    let e = gw.fails(
        &[
            "user",
            "enroll",
            "bob@acme.test",
            "--name",
            "Bob",
            "--key",
            "p256",
        ],
        2,
    );
    assert_clear(&e, &gw, "Read-only file system", "remount it read-write");
    let e = gw.fails(&["user", "renew", "alice@acme.test"], 2);
    assert_clear(&e, &gw, "Read-only file system", "remount it read-write");
    assert_eq!(
        std::fs::read(gw.data_dir().join("smimegw.redb")).unwrap(),
        db_before,
        "not one byte of the database changed"
    );

    fs.remount("rw");
    assert_eq!(gw.snapshot(), before, "the directory opens as it was");
    gw.enroll("bob@acme.test", "Bob", "p256");
    gw.ok(&["user", "renew", "alice@acme.test"]);
    let audit = gw.ok(&["audit"]);
    assert!(
        audit.contains("bob@acme.test") && audit.contains("user.renew"),
        "{audit}"
    );
}

/// A running `smimegw serve`, killed on drop.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn metric(addr: SocketAddr, name: &str) -> f64 {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}

#[test]
fn harvesting_on_a_full_disk_still_delivers_the_message_and_logs_why() {
    let sink = Sink::start();
    let (port, mport, sub) = (free_port(), free_port(), free_port());
    let (gw, fs) = gateway_on_tmpfs(&format!(
        "authserv_id = \"gw.acme.test\"\n[listen]\naddress = \"127.0.0.1:{port}\"\n[submission]\naddress = \"127.0.0.1:{sub}\"\n[relay]\nnext_hop = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:{mport}\"\n",
        sink.addr
    ));
    let partner = common::partner::setup(&gw);
    let log = gw.path("serve.log");
    let _serve = Serve(
        gw.serve_command()
            .env("SMIMEGW_LOG", "info")
            .spawn()
            .unwrap(),
    );
    let smtp: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let http: SocketAddr = format!("127.0.0.1:{mport}").parse().unwrap();
    assert!(wait_listening(smtp) && wait_listening(http));
    let before = gw.snapshot();
    let signed = partner.signed(&gw, "alice@acme.test", "first", "Signed by bob.");

    let filler = fs.fill();
    let (code, text) = send(smtp, "bob@partner.test", &["alice@acme.test"], &signed);
    assert_eq!(code, 250, "delivered despite the full disk: {text}");
    let got = sink.wait_for(1);
    assert_eq!(got.len(), 1);
    let out = String::from_utf8_lossy(&got[0].data);
    assert!(
        out.contains("smime=pass") && out.contains("Signed by bob."),
        "{out}"
    );
    let serve_log = std::fs::read_to_string(&log).unwrap();
    assert!(
        serve_log.contains("could not store the harvested certificate")
            && serve_log.contains("bob@partner.test")
            && serve_log.contains("No space left on device"),
        "the failure is logged with its cause: {serve_log}"
    );
    assert_eq!(metric(http, "smimegw_harvest_failures_total"), 1.0);
    assert_eq!(metric(http, "smimegw_harvested_certificates"), 0.0);
    // Outbound mail to bob cannot be encrypted yet (nothing was harvested), and goes signed.
    let (code, text) = send(
        gw.submission_addr(),
        "alice@acme.test",
        &["bob@partner.test"],
        b"From: alice@acme.test\r\nTo: bob@partner.test\r\nSubject: r\r\n\r\nReply.\r\n",
    );
    assert_eq!(code, 250, "{text}");
    let got = sink.wait_for(2);
    let reply = String::from_utf8_lossy(&got[1].data);
    assert!(
        !reply.contains("enveloped-data") && reply.contains("multipart/signed"),
        "signed, not encrypted without a harvested certificate: {reply}"
    );
    std::fs::remove_file(filler).unwrap();
    assert_eq!(
        gw.snapshot(),
        before,
        "the failed harvest left nothing behind"
    );

    // With space again, bob's next signed message is harvested and mail to him is encrypted.
    let (code, text) = send(smtp, "bob@partner.test", &["alice@acme.test"], &signed);
    assert_eq!(code, 250, "{text}");
    assert_eq!(metric(http, "smimegw_harvested_certificates"), 1.0);
    assert_eq!(metric(http, "smimegw_harvest_failures_total"), 1.0);
    let audit = gw.ok(&["audit"]);
    assert!(
        audit.contains("harvest") && audit.contains("bob@partner.test"),
        "{audit}"
    );
    let (code, text) = send(
        gw.submission_addr(),
        "alice@acme.test",
        &["bob@partner.test"],
        b"From: alice@acme.test\r\nTo: bob@partner.test\r\nSubject: r\r\n\r\nReply.\r\n",
    );
    assert_eq!(code, 250, "{text}");
    let got = sink.wait_for(4);
    assert!(
        String::from_utf8_lossy(&got[3].data).contains("enveloped-data"),
        "encrypted to the harvested certificate"
    );
}
