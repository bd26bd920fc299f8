//! A real Postfix in front of the gateway, wired with the README's "Postfix integration" lines
//! (read from README.md, ports replaced): client -> Postfix MX or submission smtpd -> its
//! content_filter (smimegw's inbound or submission listener) -> Postfix re-injection smtpd ->
//! relayhost (a capturing sink standing in for the world). OpenSSL judges what arrives.
//!
//! The Postfix instance is private: its own config, queue and data directories in a temp dir,
//! loopback ports only, stopped on drop (even when a test panics). It needs the Debian package
//! `postfix` and root (Postfix's master runs as root and drops to `mail_owner`); scripts/test
//! installs the package. A missing package or user fails the test; it is never skipped.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::smtp::{Received, Sink, free_port, send, wait_listening};
use common::{Gw, openssl_ok};

const POSTFIX: &str = "/usr/sbin/postfix";
const HOSTNAME: &str = "mta.acme.test";

/// The loopback ports of one test: the README's 25, 587, 10025, 10027 and 10026.
struct Ports {
    /// Postfix's MX smtpd (the README's `smtp inet`, port 25).
    mx: u16,
    /// Postfix's submission smtpd (the README's `submission inet`, port 587).
    submission: u16,
    /// smimegw's inbound listener (`[listen]`, the README's 10025).
    gateway_in: u16,
    /// smimegw's submission listener (`[submission]`, the README's 10027).
    gateway_out: u16,
    /// Postfix's re-injection smtpd (the README's 10026).
    reinject: u16,
}

impl Ports {
    fn free() -> Self {
        Self {
            mx: free_port(),
            submission: free_port(),
            gateway_in: free_port(),
            gateway_out: free_port(),
            reinject: free_port(),
        }
    }

    /// A gateway configuration with both listeners on these ports, relaying to the
    /// re-injection smtpd.
    fn gateway_config(&self, extra: &str) -> String {
        format!(
            "authserv_id = \"gw.acme.test\"\n\
             [listen]\naddress = \"127.0.0.1:{}\"\n\
             [submission]\naddress = \"127.0.0.1:{}\"\n\
             [relay]\nnext_hop = \"127.0.0.1:{}\"\n{extra}",
            self.gateway_in, self.gateway_out, self.reinject
        )
    }
}

/// A private Postfix instance, stopped on drop.
struct Postfix {
    /// The temp dir holding conf/, queue/, data/ and the maillog.
    dir: tempfile::TempDir,
    /// The MX smtpd: mail from the world.
    mx: SocketAddr,
    /// The submission smtpd: mail users submit.
    submission: SocketAddr,
    running: bool,
}

impl Postfix {
    /// Writes main.cf and master.cf for an instance wired as the README says on `ports`,
    /// relaying everything to `relayhost`; then starts it.
    fn start(ports: &Ports, relayhost: SocketAddr) -> Self {
        assert!(
            Path::new(POSTFIX).exists(),
            "{POSTFIX} is missing: install the Debian package `postfix` (scripts/test does this)"
        );
        let uid = run("id", &["-u"]);
        assert!(
            uid.status.success() && String::from_utf8_lossy(&uid.stdout).trim() == "0",
            "the Postfix test needs root: Postfix's master runs as root and drops privileges to \
             the `postfix` user (scripts/test runs as root in CI)"
        );
        let owner = run("id", &["-u", "postfix"]);
        assert!(
            owner.status.success(),
            "the `postfix` user is missing: reinstall the Debian package `postfix`"
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for sub in ["conf", "queue", "data"] {
            std::fs::create_dir(root.join(sub)).unwrap();
        }
        // The master creates its lock in data_directory after dropping to mail_owner.
        let chown = run(
            "chown",
            &["postfix:postfix", root.join("data").to_str().unwrap()],
        );
        assert!(chown.status.success(), "chown data: {}", text(&chown));
        let root_s = root.display();
        let main_cf = format!(
            "\
# A private instance: nothing here touches /etc/postfix or the system's queue.
compatibility_level = 3.6
queue_directory = {root_s}/queue
data_directory = {root_s}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = {HOSTNAME}
mydomain = acme.test
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost = [{ip}]:{port}
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
maillog_file = {root_s}/maillog
maillog_file_prefixes = {root_s}
",
            ip = relayhost.ip(),
            port = relayhost.port(),
        );
        let master_cf = String::from(
            "\
# The services Postfix needs to queue, relay and bounce (no chroot: the queue is private);
# the smtpd services, pickup and the filters come from the README.
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
",
        );
        // The content-filter wiring is the README's, verbatim but for the ports.
        let (readme_main, readme_master) = readme_postfix_lines(ports);
        std::fs::write(root.join("conf/main.cf"), main_cf + &readme_main).unwrap();
        std::fs::write(root.join("conf/master.cf"), master_cf + &readme_master).unwrap();

        let mut pf = Postfix {
            dir,
            mx: SocketAddr::from(([127, 0, 0, 1], ports.mx)),
            submission: SocketAddr::from(([127, 0, 0, 1], ports.submission)),
            running: false,
        };
        let check = pf.ctl("check");
        assert!(
            check.status.success(),
            "postfix check: {}\n{}",
            text(&check),
            pf.maillog()
        );
        let start = pf.ctl("start");
        pf.running = start.status.success();
        assert!(
            pf.running,
            "postfix start: {}\n{}",
            text(&start),
            pf.maillog()
        );
        for addr in [
            pf.mx,
            pf.submission,
            SocketAddr::from(([127, 0, 0, 1], ports.reinject)),
        ] {
            assert!(
                wait_listening(addr),
                "Postfix does not listen on {addr}:\n{}",
                pf.maillog()
            );
        }
        pf
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("conf")
    }

    /// `postfix -c CONF <cmd>`.
    fn ctl(&self, cmd: &str) -> Output {
        run(POSTFIX, &["-c", self.conf().to_str().unwrap(), cmd])
    }

    fn maillog(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        // `stop` waits for the master and kills it with force after 5 s; `abort` is the
        // fallback when `stop` itself failed while the master still runs.
        if !self.ctl("stop").status.success() && self.ctl("status").status.success() {
            let _ = self.ctl("abort");
        }
    }
}

/// The main.cf and master.cf lines of the README's "Postfix integration" block, with its ports
/// (25 and 587 for Postfix's smtpd services, 10025 and 10027 for smimegw, 10026 for the
/// re-injection) replaced by the test's.
fn readme_postfix_lines(ports: &Ports) -> (String, String) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("read README.md");
    let section = readme
        .split("## Postfix integration")
        .nth(1)
        .expect("README has a \"Postfix integration\" section");
    let block = section
        .split("```")
        .nth(1)
        .expect("the section has a code block");
    let (main_cf, master_cf) = block
        .split_once("# /etc/postfix/master.cf")
        .expect("the block has a master.cf part");
    let main_cf = main_cf
        .split_once("# /etc/postfix/main.cf")
        .expect("the block has a main.cf part")
        .1;
    assert!(
        !main_cf
            .lines()
            .any(|l| l.trim_start().starts_with("content_filter")),
        "the README's main.cf must not set a global content_filter:\n{block}"
    );
    let replaced = [
        ("\nsmtp      inet", format!("\n127.0.0.1:{} inet", ports.mx)),
        (
            "\nsubmission inet",
            format!("\n127.0.0.1:{} inet", ports.submission),
        ),
        (
            "[127.0.0.1]:10025",
            format!("[127.0.0.1]:{}", ports.gateway_in),
        ),
        (
            "[127.0.0.1]:10027",
            format!("[127.0.0.1]:{}", ports.gateway_out),
        ),
        (
            "127.0.0.1:10026 inet",
            format!("127.0.0.1:{} inet", ports.reinject),
        ),
    ];
    let mut master_cf = master_cf.to_string();
    for (from, to) in &replaced {
        assert!(
            master_cf.contains(from),
            "the README's master.cf lines changed ({from:?} is gone); adapt this test:\n{block}"
        );
        master_cf = master_cf.replace(from, to);
    }
    (main_cf.to_string(), master_cf)
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A running `smimegw serve`, killed on drop; its log goes to a file in the gateway's dir.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn start(gw: &Gw, port: u16) -> Self {
        let log = gw.path("serve.log");
        let child = gw.spawn_serve();
        let s = Serve { child, log };
        assert!(
            wait_listening(SocketAddr::from(([127, 0, 0, 1], port))),
            "smimegw serve did not start listening:\n{}",
            s.log()
        );
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (at most `limit`) until the sink holds a message that `pred` accepts.
fn wait_for(sink: &Sink, limit: Duration, pred: impl Fn(&Received) -> bool) -> Option<Received> {
    let end = Instant::now() + limit;
    loop {
        if let Some(m) = sink.messages().into_iter().find(&pred) {
            return Some(m);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `Received:` header fields of a message (unfolded), top first.
fn received_headers(data: &[u8]) -> Vec<String> {
    let msg = String::from_utf8_lossy(data);
    let head = msg.split("\r\n\r\n").next().unwrap_or_default();
    let mut fields: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else {
            fields.push(line.to_string());
        }
    }
    fields
        .into_iter()
        .filter(|f| f.to_ascii_lowercase().starts_with("received:"))
        .collect()
}

const PLAIN: &[u8] = b"From: Alice <alice@acme.test>\r\nTo: carol@acme.test\r\nSubject: plans\r\nMessage-ID: <pf1@acme.test>\r\n\r\nSee you at nine.\r\n";

const SECRET: &[u8] = b"From: Alice <alice@acme.test>\r\nTo: x@secret.test\r\nSubject: secret\r\nMessage-ID: <pf2@acme.test>\r\n\r\nNot in clear, please.\r\n";

#[test]
fn postfix_content_filter_through_the_gateway() {
    let started = Instant::now();
    let sink = Sink::start();
    let ports = Ports::free();
    let gw = Gw::with_config(
        &ports.gateway_config("[policy.domains.\"secret.test\"]\nencrypt = \"required\"\n"),
    );
    let ca = gw.init_ca();
    for (user, name) in [("alice@acme.test", "Alice"), ("carol@acme.test", "Carol")] {
        gw.enroll(user, name, "p256");
    }
    let serve = Serve::start(&gw, ports.gateway_in);
    let pf = Postfix::start(&ports, sink.addr);
    let diag = |what: &str| {
        format!(
            "{what}\n--- maillog:\n{}\n--- smimegw serve:\n{}\n--- sink: {:?}",
            pf.maillog(),
            serve.log(),
            sink.messages()
        )
    };

    // 1. Internal mail, submitted: Postfix queues it, hands it to smimegw's submission
    //    listener, which signs it and gives it back to the re-injection smtpd, which relays it
    //    to the sink.
    let (code, reply) = send(
        pf.submission,
        "alice@acme.test",
        &["carol@acme.test"],
        PLAIN,
    );
    assert_eq!(code, 250, "Postfix refused the message: {reply}");
    let signed = wait_for(&sink, Duration::from_secs(30), |m| {
        m.rcpts == ["carol@acme.test"]
    })
    .unwrap_or_else(|| panic!("{}", diag("the signed message never reached the sink")));
    assert_eq!(signed.from, "alice@acme.test");
    let body = String::from_utf8_lossy(&signed.data).into_owned();
    assert!(body.contains("multipart/signed"), "{body}");

    // Postfix's own trace: one Received from the inbound smtpd and one from the re-injection,
    // with different queue ids, newest (re-injection) on top.
    let postfix_hops: Vec<String> = received_headers(&signed.data)
        .into_iter()
        .filter(|r| r.contains(&format!("by {HOSTNAME} (Postfix)")))
        .collect();
    assert_eq!(postfix_hops.len(), 2, "{postfix_hops:#?}\n{body}");
    assert!(
        postfix_hops[1].contains("from client.test"),
        "the first pass is the client's: {postfix_hops:#?}"
    );
    let queue_id = |r: &str| {
        r.split(" id ")
            .nth(1)
            .and_then(|s| s.split([';', ' ']).next())
            .map(str::to_owned)
    };
    assert_ne!(
        queue_id(&postfix_hops[0]),
        queue_id(&postfix_hops[1]),
        "{postfix_hops:#?}"
    );

    let f = gw.path("postfix-out.eml");
    std::fs::write(&f, &signed.data).unwrap();
    let out = openssl_ok(
        gw.dir.path(),
        &[
            "cms",
            "-verify",
            "-in",
            f.to_str().unwrap(),
            "-CAfile",
            ca.to_str().unwrap(),
            "-purpose",
            "smimesign",
        ],
    );
    assert!(out.contains("See you at nine."), "{out}");

    // 2. Required encryption without a certificate: smimegw refuses with 5.7.1, Postfix bounces.
    //    Postfix does not content-filter its own notifications, so the bounce to alice goes
    //    straight to the relayhost (the sink); the refused message itself never gets there.
    let (code, reply) = send(pf.submission, "alice@acme.test", &["x@secret.test"], SECRET);
    assert_eq!(code, 250, "Postfix queues it first: {reply}");
    let bounce = wait_for(&sink, Duration::from_secs(30), |m| {
        m.from.is_empty() && m.rcpts == ["alice@acme.test"]
    })
    .unwrap_or_else(|| panic!("{}", diag("no bounce for the refused message")));
    let dsn = String::from_utf8_lossy(&bounce.data);
    assert!(
        dsn.contains("5.7.1") && dsn.contains("x@secret.test"),
        "the bounce names the reason: {dsn}"
    );
    let log = pf.maillog();
    assert!(
        log.lines().any(|l| l.contains("to=<x@secret.test>")
            && l.contains("status=bounced")
            && l.contains("5.7.1")),
        "{}",
        diag("Postfix logged no 5.7.1 bounce for x@secret.test")
    );
    let msgs = sink.messages();
    assert!(
        !msgs
            .iter()
            .any(|m| m.rcpts.iter().any(|r| r.ends_with("@secret.test"))),
        "{}",
        diag("the refused message reached the world")
    );
    assert_eq!(
        msgs.iter()
            .filter(|m| m.rcpts == ["carol@acme.test"])
            .count(),
        1,
        "{}",
        diag("the signed message arrived more than once")
    );

    // 3. The signing oracle of issue 11: an outsider on the MX port writes alice as the envelope
    //    sender and From, to carol and to an address in the world. Postfix hands it to the
    //    inbound listener, which signs nothing: carol's copy is only annotated, the other goes
    //    on as it came.
    let (code, reply) = send(
        pf.mx,
        "alice@acme.test",
        &["carol@acme.test", "x@outside.test"],
        FORGED,
    );
    assert_eq!(code, 250, "Postfix queues it first: {reply}");
    for rcpt in ["carol@acme.test", "x@outside.test"] {
        let m = wait_for(&sink, Duration::from_secs(30), |m| {
            m.rcpts == [rcpt] && String::from_utf8_lossy(&m.data).contains("<pf3@outside.test>")
        })
        .unwrap_or_else(|| {
            panic!(
                "{}",
                diag(&format!("the forged message to {rcpt} never arrived"))
            )
        });
        let text = String::from_utf8_lossy(&m.data);
        assert!(
            !text.contains("multipart/signed") && !text.contains("pkcs7"),
            "{}",
            diag(&format!(
                "mail from the MX port was signed for {rcpt}: {text}"
            ))
        );
        assert!(text.contains("Pay the invoice today."), "{text}");
    }
    let to_carol = wait_for(&sink, Duration::from_secs(1), |m| {
        m.rcpts == ["carol@acme.test"]
            && String::from_utf8_lossy(&m.data).contains("<pf3@outside.test>")
    })
    .unwrap();
    assert!(
        String::from_utf8_lossy(&to_carol.data)
            .contains("Authentication-Results: gw.acme.test; smime=none"),
        "{}",
        diag("carol's copy of the forged message is not annotated")
    );
    eprintln!("postfix end to end: {:?}", started.elapsed());
}

const FORGED: &[u8] = b"From: Alice <alice@acme.test>\r\nTo: carol@acme.test\r\nSubject: urgent\r\nMessage-ID: <pf3@outside.test>\r\n\r\nPay the invoice today.\r\n";

/// SMTP smuggling into the re-injection smtpd (issue 11, part 2): an outsider encrypts to an
/// internal user a text whose bare LF before a dot would end the gateway's DATA at Postfix
/// (`smtpd_forbid_bare_newline = no`, the default before 3.9) and run a forged `MAIL FROM:<ceo@acme.test>`
/// there, unfiltered and from a trusted address. The relayhost must get the one intended
/// message, with the would-be commands inside its text.
#[test]
fn postfix_reinjection_gets_no_smuggled_transaction_from_decrypted_content() {
    let sink = Sink::start();
    let ports = Ports::free();
    let gw = Gw::with_config(&ports.gateway_config(""));
    gw.init_ca();
    gw.enroll("alice@acme.test", "Alice", "p256");
    let alice = gw.cert_file("alice@acme.test", "encryption");
    let smuggled = "MAIL FROM:<ceo@acme.test>\r\nRCPT TO:<victim@x.test>\r\nDATA\r\n\
                    From: ceo@acme.test\r\nSubject: forged\r\n\r\nwire the money\r\n";
    let inner =
        format!("Content-Type: text/plain\r\n\r\nhello\n.\r\n{smuggled}.\n{smuggled}bye\r\n");
    let sealed = common::wrap::encrypted(
        &gw,
        &alice,
        inner.as_bytes(),
        "mallory@evil.test",
        "alice@acme.test",
    );
    let serve = Serve::start(&gw, ports.gateway_in);
    let pf = Postfix::start(&ports, sink.addr);

    let (code, reply) = send(pf.mx, "mallory@evil.test", &["alice@acme.test"], &sealed);
    assert_eq!(code, 250, "Postfix refused the message: {reply}");
    let got = wait_for(&sink, Duration::from_secs(30), |m| {
        m.rcpts == ["alice@acme.test"]
    });
    // A smuggled transaction is queued with the real one; give it time to arrive.
    std::thread::sleep(Duration::from_secs(3));
    let all = sink.messages();
    let seen: Vec<_> = all
        .iter()
        .map(|m| (&m.rcpts, String::from_utf8_lossy(&m.data)))
        .collect();
    let diag = format!(
        "--- maillog:\n{}\n--- smimegw serve:\n{}\n--- sink: {seen:#?}",
        pf.maillog(),
        serve.log()
    );
    let got = got.unwrap_or_else(|| panic!("the decrypted message never arrived\n{diag}"));
    assert_eq!(
        all.len(),
        1,
        "the relayhost got more than the one message\n{diag}"
    );
    let text = String::from_utf8_lossy(&got.data);
    assert!(
        text.contains(&format!("hello\r\n.\r\n{smuggled}.\r\n{smuggled}bye\r\n")),
        "the decrypted text did not arrive whole, in canonical form\n{diag}"
    );
    assert!(
        !pf.maillog().contains("victim@x.test"),
        "Postfix saw the smuggled recipient\n{diag}"
    );
}
