//! Fault injection over real loopback SMTP: the gateway killed with SIGKILL in the middle of a
//! stream of messages, and next hops that stall, hang up or talk nonsense.
//!
//! The promise under test (DESIGN.md, "no queue, no loss"): a message the client saw
//! acknowledged with 250 is at the next hop; everything else the client still holds and retries.
//! Duplicates are allowed and counted; a loss fails the test.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::smtp::{Sink, free_port, send, wait_listening};
use common::{Gw, Serve};

/// Starts `smimegw serve` and waits until it listens; its stderr is appended to `serve.log` in
/// the gateway's directory, whose tail failing assertions print.
fn serve(gw: &Gw, port: u16) -> Serve {
    let child = gw
        .serve_command()
        .env("SMIMEGW_LOG", "info")
        .spawn()
        .expect("spawn smimegw serve");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = Serve { child, addr };
    if !wait_listening(addr) {
        s.kill9();
        panic!(
            "smimegw serve did not start listening on {addr}; its log:\n{}",
            log_tail(gw)
        );
    }
    s
}

/// The last lines of the gateway's log (the temporary directory is gone after a failure).
fn log_tail(gw: &Gw) -> String {
    let log = std::fs::read_to_string(gw.path("serve.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// A gateway relaying to `next_hop`, with alice and carol enrolled so internal mail is signed
/// (real work per message, not a pass-through). The returned port is the submission listener's
/// (mail users submit: signed by policy); the inbound listener is on another free port.
fn enrolled_gateway(next_hop: SocketAddr, extra: &str) -> (Gw, u16) {
    let (port, inbound) = (free_port(), free_port());
    let gw = Gw::with_config(&format!(
        "authserv_id = \"gw.acme.test\"\n[listen]\naddress = \"127.0.0.1:{inbound}\"\n[submission]\naddress = \"127.0.0.1:{port}\"\n[relay]\nnext_hop = \"{next_hop}\"\n{extra}"
    ));
    gw.init_ca();
    for (who, name) in [("alice@acme.test", "Alice"), ("carol@acme.test", "Carol")] {
        gw.enroll(who, name, "p256");
    }
    (gw, port)
}

fn message(n: u64) -> Vec<u8> {
    format!(
        "From: Alice <alice@acme.test>\r\nTo: carol@acme.test\r\nSubject: burst {n}\r\nMessage-ID: <kill-{n}@acme.test>\r\n\r\nBody of message number {n}.\r\n.leading dot line {n}\r\n"
    )
    .into_bytes()
}

/// A small deterministic generator (xorshift), seeded and printed so a run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// What the client saw.
#[derive(Default)]
struct ClientLog {
    /// Messages acknowledged with 250 (each number once: the first 250 counts).
    acked: Vec<u64>,
    /// Attempts that did not end in 250 (connection refused or reset, 4xx): retried later.
    retries: u64,
    /// Any 5xx: the gateway must never refuse these messages for good.
    permanent: Vec<(u64, u16, String)>,
}

/// SIGKILL the gateway at random moments while a client streams distinct messages through it,
/// restarting it on the same port each time. Every message the client saw acknowledged must be
/// at the sink. `SMIMEGW_KILL_TRIALS=N` raises the number of kills (default 20).
#[test]
fn sigkill_during_a_stream_of_messages_loses_no_acknowledged_message() {
    let kills: u32 = std::env::var("SMIMEGW_KILL_TRIALS")
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("SMIMEGW_KILL_TRIALS={v}: expected a number"))
        })
        .unwrap_or(20);
    let started = Instant::now();
    let sink = Sink::start();
    let (gw, port) = enrolled_gateway(sink.addr, "");
    let mut gateway = serve(&gw, port);
    let addr = gateway.addr;

    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(ClientLog::default()));
    let client = {
        let (stop, log) = (stop.clone(), log.clone());
        std::thread::spawn(move || {
            // Like an MTA: new messages keep coming; a message not acknowledged goes back into
            // the queue and is tried again later.
            let mut queue: VecDeque<u64> = VecDeque::new();
            let mut next = 0u64;
            let mut retry_turn = false;
            let mut drain_deadline = None;
            loop {
                let stopping = stop.load(Ordering::SeqCst);
                if stopping {
                    // The last gateway stays up: the queue must drain promptly.
                    let d = *drain_deadline
                        .get_or_insert_with(|| Instant::now() + Duration::from_secs(30));
                    if Instant::now() > d {
                        return queue.into_iter().collect::<Vec<u64>>();
                    }
                }
                retry_turn = !retry_turn;
                let n = if stopping || retry_turn {
                    match queue.pop_front() {
                        Some(n) => n,
                        None if stopping => break,
                        None => {
                            next += 1;
                            next
                        }
                    }
                } else {
                    next += 1;
                    next
                };
                let (code, text) = send(addr, "alice@acme.test", &["carol@acme.test"], &message(n));
                let mut l = log.lock().unwrap();
                match code {
                    250 => l.acked.push(n),
                    500..=599 => l.permanent.push((n, code, text)),
                    _ => {
                        l.retries += 1;
                        drop(l);
                        queue.push_back(n);
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
            Vec::new()
        })
    };

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let mut down = Duration::ZERO;
    for _ in 0..kills {
        // Let it work for a while (long enough for several transactions, short enough to land
        // inside one often), then pull the plug.
        std::thread::sleep(Duration::from_millis(rng.between(20, 400)));
        gateway.kill9();
        let t = Instant::now();
        gateway = serve(&gw, port);
        down += t.elapsed();
    }
    // Let the client drain its retry queue against the last gateway.
    stop.store(true, Ordering::SeqCst);
    let stuck = client.join().expect("client thread");
    let trial = started.elapsed();
    drop(gateway);

    let log = log.lock().unwrap();
    assert!(
        stuck.is_empty(),
        "the restarted gateway did not accept these within 30 s: {stuck:?}; gateway log:\n{}",
        log_tail(&gw)
    );
    assert!(
        log.permanent.is_empty(),
        "the gateway refused messages permanently: {:?}",
        log.permanent
    );
    // Everything is acknowledged now (the client drained its queue), and a 250 is only given
    // after the sink said 250, so the sink is complete without waiting.
    let received = sink.messages();
    let mut at_sink: BTreeMap<u64, usize> = BTreeMap::new();
    for r in &received {
        let text = String::from_utf8_lossy(&r.data);
        let n: u64 = text
            .split("<kill-")
            .nth(1)
            .and_then(|s| s.split('@').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a message at the sink without our Message-ID:\n{text}"));
        assert!(
            text.contains("multipart/signed")
                && text.contains(&format!("Body of message number {n}."))
                && text.contains(&format!("\r\n.leading dot line {n}\r\n")),
            "message {n} arrived damaged:\n{text}"
        );
        *at_sink.entry(n).or_default() += 1;
    }
    let lost: Vec<u64> = log
        .acked
        .iter()
        .copied()
        .filter(|n| !at_sink.contains_key(n))
        .collect();
    let duplicates: usize = at_sink.values().map(|c| c - 1).sum();
    let acked: std::collections::BTreeSet<u64> = log.acked.iter().copied().collect();
    let unacked_at_sink = at_sink.keys().filter(|n| !acked.contains(n)).count();
    eprintln!(
        "kill trial (seed {seed:#x}): {kills} SIGKILLs in {:.1}s (gateway down {:.1}s in total); \
         {} messages acknowledged, {} client retries, {} copies at the sink, {} duplicates, \
         {} at the sink but never acknowledged, {} lost",
        trial.as_secs_f64(),
        down.as_secs_f64(),
        log.acked.len(),
        log.retries,
        received.len(),
        duplicates,
        unacked_at_sink,
        lost.len()
    );
    assert!(
        lost.is_empty(),
        "acknowledged but not at the sink: {lost:?} (seed {seed:#x}); gateway log:\n{}",
        log_tail(&gw)
    );
    assert_eq!(
        unacked_at_sink, 0,
        "the client drained its queue, so every message at the sink was acknowledged once"
    );
    assert!(
        log.acked.len() as u32 >= kills,
        "too few messages went through for the trial to mean anything: {}",
        log.acked.len()
    );
}

/// How the fake next hop behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HopMode {
    /// A well-behaved SMTP server that keeps every message.
    Good,
    /// Accepts the connection and never says anything.
    SilentGreeting,
    /// Answers EHLO, MAIL, RCPT and 354, reads the message and its final dot, then never
    /// answers (and keeps the connection open until the gateway closes it).
    StallAfterDot,
    /// Answers 354 and hangs up.
    DropAfter354,
    /// A greeting that is not SMTP.
    GarbageGreeting,
    /// Everything fine until the final dot, which gets a reply that is not SMTP.
    GarbageAfterDot,
    /// Refuses the message for good at the final dot (the one fault passed on as 5xx).
    Refuse554,
}

/// A next hop whose behaviour the test switches between transactions: a greeting fault applies
/// to the connections opened after it is set, the others to the next transaction on any one.
struct FaultyHop {
    addr: SocketAddr,
    mode: Arc<Mutex<HopMode>>,
    /// Messages accepted in `Good` mode (the raw DATA, dot-stuffed as received).
    stored: Arc<Mutex<Vec<String>>>,
    /// For `StallAfterDot`: how long after the final dot the gateway closed the connection.
    stall_closed_after: Arc<Mutex<Vec<Duration>>>,
}

impl FaultyHop {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let hop = Self {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(Mutex::new(HopMode::Good)),
            stored: Default::default(),
            stall_closed_after: Default::default(),
        };
        let (mode, stored, closed) = (
            hop.mode.clone(),
            hop.stored.clone(),
            hop.stall_closed_after.clone(),
        );
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let (mode, stored, closed) = (mode.clone(), stored.clone(), closed.clone());
                std::thread::spawn(move || {
                    let _ = hop_session(s, mode, stored, closed);
                });
            }
        });
        hop
    }

    fn set(&self, m: HopMode) {
        *self.mode.lock().unwrap() = m;
    }
}

fn hop_session(
    s: std::net::TcpStream,
    current: Arc<Mutex<HopMode>>,
    stored: Arc<Mutex<Vec<String>>>,
    stall_closed_after: Arc<Mutex<Vec<Duration>>>,
) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mode = || *current.lock().unwrap();
    match mode() {
        HopMode::SilentGreeting => {
            // Hold the connection until the gateway gives up.
            let mut sink = Vec::new();
            let _ = r.read_to_end(&mut sink);
            return Ok(());
        }
        HopMode::GarbageGreeting => {
            w.write_all(b"HELLO THERE, I AM NOT AN SMTP SERVER\r\n")?;
        }
        _ => w.write_all(b"220 hop ESMTP\r\n")?,
    }
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let up = line.to_ascii_uppercase();
        if up.starts_with("EHLO") {
            w.write_all(b"250-hop\r\n250-8BITMIME\r\n250 PIPELINING\r\n")?;
        } else if up.starts_with("DATA") {
            w.write_all(b"354 go ahead\r\n")?;
            if mode() == HopMode::DropAfter354 {
                return Ok(()); // dropping both halves closes the connection
            }
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            match mode() {
                HopMode::StallAfterDot => {
                    let dot = Instant::now();
                    let mut rest = Vec::new();
                    let _ = r.read_to_end(&mut rest);
                    stall_closed_after.lock().unwrap().push(dot.elapsed());
                    return Ok(());
                }
                HopMode::GarbageAfterDot => {
                    w.write_all(b"OK THANKS BYE\r\n")?;
                }
                HopMode::Refuse554 => {
                    w.write_all(b"554 5.7.1 hop policy says no\r\n")?;
                }
                _ => {
                    stored.lock().unwrap().push(data);
                    w.write_all(b"250 2.0.0 stored\r\n")?;
                }
            }
        } else if up.starts_with("QUIT") {
            w.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            w.write_all(b"250 ok\r\n")?;
        }
    }
}

/// Next hops that stall, hang up or answer nonsense: the gateway answers 4xx within the relay
/// timeout (so the MTA keeps the message), closes its side, and serves the next message. A
/// next hop's own 5xx is the one failure passed on as 5xx. Every fault here meets a new
/// connection (no kept connections), so the greeting faults are met too.
#[test]
fn next_hop_faults_give_4xx_in_bounded_time_and_the_gateway_keeps_serving() {
    next_hop_faults(
        "idle_connections = 0\n",
        &[
            HopMode::SilentGreeting,
            HopMode::StallAfterDot,
            HopMode::DropAfter354,
            HopMode::GarbageGreeting,
            HopMode::GarbageAfterDot,
            HopMode::Refuse554,
        ],
    );
}

/// The same faults in the middle of a kept connection (the default): each one costs that
/// connection, and the next message goes out on a new one.
#[test]
fn next_hop_faults_on_a_kept_connection_give_the_same_answers() {
    next_hop_faults(
        "",
        &[
            HopMode::StallAfterDot,
            HopMode::DropAfter354,
            HopMode::GarbageAfterDot,
            HopMode::Refuse554,
        ],
    );
}

fn next_hop_faults(relay: &str, faults: &[HopMode]) {
    let hop = FaultyHop::start();
    let (gw, port) = enrolled_gateway(hop.addr, &format!("timeout_secs = 2\n{relay}"));
    let _serve = serve(&gw, port);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut client = common::smtp::Client::connect(addr);
    let timeout = Duration::from_secs(2);
    let mut n = 1000;
    let mut report = Vec::new();
    // A first message through a healthy hop, so that with kept connections the first fault
    // meets one.
    let (code, text, _) = client.transaction(&message(n));
    assert_eq!(code, 250, "{text}");
    for &fault in faults {
        n += 1;
        hop.set(fault);
        let (code, text, took) = client.transaction(&message(n));
        if fault == HopMode::Refuse554 {
            assert!(
                code / 100 == 5 && text.contains("hop policy says no"),
                "the next hop's 5xx is passed on with its text: {text}"
            );
        } else {
            assert_eq!(code / 100, 4, "{fault:?}: expected 4xx, got {text}");
        }
        assert_eq!(
            text.lines().count(),
            1,
            "{fault:?}: the next hop's words must not add reply lines: {text}"
        );
        // A timeout needs the timeout; everything else is answered at once. Either way the
        // reply comes well within timeout + slack, never after the 60 s default.
        assert!(
            took < timeout + Duration::from_secs(3),
            "{fault:?}: the 4xx took {took:?}"
        );
        if matches!(fault, HopMode::SilentGreeting | HopMode::StallAfterDot) {
            assert!(
                took >= timeout - Duration::from_millis(100),
                "{fault:?}: answered before the timeout ({took:?}): {text}"
            );
        }
        report.push(format!(
            "{fault:?}: {} in {:.2}s",
            text.trim(),
            took.as_secs_f64()
        ));

        // The same session goes on, and the next message gets through a healthy hop.
        hop.set(HopMode::Good);
        n += 1;
        let before = hop.stored.lock().unwrap().len();
        let (code, text, _) = client.transaction(&message(n));
        assert_eq!(code, 250, "after {fault:?}: {text}");
        let stored = hop.stored.lock().unwrap();
        assert_eq!(stored.len(), before + 1);
        assert!(
            stored[before].contains(&format!("<kill-{n}@acme.test>")),
            "after {fault:?}"
        );
    }
    // The gateway closed the stalled connection when it gave up (no leaked relay session).
    let closed = hop.stall_closed_after.lock().unwrap().clone();
    assert_eq!(
        closed.len(),
        1,
        "the stalled next-hop connection was not closed by the gateway"
    );
    assert!(closed[0] < timeout + Duration::from_secs(3), "{closed:?}");
    let (code, text) = client.command("QUIT");
    assert_eq!(code, 221, "{text}");
    eprintln!("next-hop faults:\n  {}", report.join("\n  "));
}

// ---- STARTTLS with a server certificate from our own CA (`ca issue-server`) ----

/// A gateway whose listener offers STARTTLS with a certificate `ca issue-server` issued.
/// Returns the gateway, its port, and our CA certificate file.
fn tls_gateway(sink: &Sink) -> (Gw, u16, std::path::PathBuf) {
    let (gw, port) = enrolled_gateway(sink.addr, "");
    let ca = gw.path("ca.pem");
    let out = gw.enable_starttls("gw.acme.test");
    assert!(out.contains("tls_cert"), "{out}");
    (gw, port, ca)
}

#[test]
fn ca_issue_server_writes_a_tls_certificate_and_key_and_records_it() {
    use std::os::unix::fs::PermissionsExt;
    let sink = Sink::start();
    let (gw, _port, ca) = tls_gateway(&sink);
    let (cert, key) = (gw.path("tls.crt"), gw.path("tls.key"));
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode {mode:o}");
    let key_pem = std::fs::read_to_string(&key).unwrap();
    assert!(
        key_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS #8"
    );
    let d = gw.dir.path();
    // OpenSSL is the judge: a server certificate for the name, chaining to our CA, matching
    // the key.
    let out = common::openssl_ok(
        d,
        &[
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "gw.acme.test",
            cert.to_str().unwrap(),
        ],
    );
    assert!(out.contains(": OK"), "{out}");
    let text = common::openssl_ok(d, &["x509", "-in", "tls.crt", "-noout", "-text"]);
    assert!(
        text.contains("DNS:gw.acme.test") && text.contains("TLS Web Server Authentication"),
        "{text}"
    );
    let a = common::openssl_ok(d, &["x509", "-in", "tls.crt", "-noout", "-pubkey"]);
    let b = common::openssl_ok(d, &["pkey", "-in", "tls.key", "-pubout"]);
    assert_eq!(a, b, "the key belongs to the certificate");
    let serial = common::openssl_ok(d, &["x509", "-in", "tls.crt", "-noout", "-serial"]);
    let serial = serial
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    let audit = gw.ok(&["audit"]);
    assert!(
        audit.contains("ca.issue-server") && audit.to_ascii_lowercase().contains(&serial),
        "audited with its serial {serial}:\n{audit}"
    );

    // Never over an existing file; a bad host name or a taken file issues nothing.
    let before = gw.ok(&["audit", "--json"]);
    let e = gw.fails(
        &[
            "ca",
            "issue-server",
            "gw.acme.test",
            "--cert-out",
            gw.path("new.crt").to_str().unwrap(),
            "--key-out",
            key.to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("must not exist"), "{e}");
    assert!(!gw.path("new.crt").exists(), "nothing left behind");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), key_pem, "untouched");
    let e = gw.fails(
        &[
            "ca",
            "issue-server",
            "not a host",
            "--cert-out",
            gw.path("x.crt").to_str().unwrap(),
            "--key-out",
            gw.path("x.key").to_str().unwrap(),
        ],
        2,
    );
    assert!(e.contains("not a host name"), "{e}");
    assert!(!gw.path("x.crt").exists() && !gw.path("x.key").exists());
    assert_eq!(gw.ok(&["audit", "--json"]), before, "nothing issued");
}

/// Runs a command with stdin, bounded in time; returns (success, stdout+stderr).
fn run_bounded(cmd: &mut Command, input: &[u8], limit: Duration) -> (bool, String) {
    use std::io::{Read, Write};
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let mut e = String::new();
        let _ = err.read_to_string(&mut e);
        s + &e
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = reader.join().unwrap();
    match status {
        Some(st) => (st.success(), text),
        None => (false, format!("timed out after {limit:?}\n{text}")),
    }
}

/// OpenSSL's s_client does STARTTLS, verifies the chain to our CA and the host name, and sends
/// a message through the encrypted session; it reaches the sink, signed.
#[test]
fn starttls_end_to_end_with_openssl_s_client() {
    common::require("openssl", "openssl");
    let sink = Sink::start();
    let (gw, port, ca) = tls_gateway(&sink);
    let _serve = serve(&gw, port);
    let session = "EHLO client.test\nMAIL FROM:<alice@acme.test>\nRCPT TO:<carol@acme.test>\nDATA\nFrom: alice@acme.test\nTo: carol@acme.test\nSubject: over TLS\nMessage-ID: <tls-1@acme.test>\n\nSent over STARTTLS.\n.\nQUIT\n";
    let (ok, out) = run_bounded(
        Command::new("openssl")
            .current_dir(gw.dir.path())
            .args(["s_client", "-starttls", "smtp", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-CAfile"])
            .arg(&ca)
            .args([
                "-verify_return_error",
                "-verify_hostname",
                "gw.acme.test",
                "-servername",
                "gw.acme.test",
                "-crlf",
                "-ign_eof",
            ]),
        session.as_bytes(),
        Duration::from_secs(30),
    );
    assert!(ok, "openssl s_client failed:\n{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(
        out.contains("250 2.0.0 ok") && out.contains("221 2.0.0"),
        "the message was accepted over TLS:\n{out}"
    );
    let got = sink.wait_for(1);
    assert_eq!(got.len(), 1, "{out}");
    let text = String::from_utf8_lossy(&got[0].data);
    assert!(
        text.contains("<tls-1@acme.test>")
            && text.contains("Sent over STARTTLS.")
            && text.contains("multipart/signed"),
        "{text}"
    );
}

/// RFC 3207 section 4.2 (CVE-2011-0411): commands pipelined after STARTTLS arrived in clear
/// text and are never executed. The only reply before the handshake is 220; after it, the
/// injected MAIL has no effect.
#[test]
fn commands_pipelined_after_starttls_are_not_executed() {
    use std::io::{Read, Write};
    use tokio_rustls::rustls;
    let sink = Sink::start();
    let (gw, port, ca) = tls_gateway(&sink);
    let _serve = serve(&gw, port);
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = std::io::BufReader::new(tcp.try_clone().unwrap());
    assert_eq!(common::smtp::read_reply(&mut r).0, 220);
    tcp.write_all(b"EHLO client.test\r\n").unwrap();
    let (code, ehlo) = common::smtp::read_reply(&mut r);
    assert!(code == 250 && ehlo.contains("STARTTLS"), "{ehlo}");

    // One write: STARTTLS and an injected command.
    tcp.write_all(b"STARTTLS\r\nMAIL FROM:<x@y.test>\r\n")
        .unwrap();
    let (code, text) = common::smtp::read_reply(&mut r);
    assert_eq!(code, 220, "{text}");
    assert!(r.buffer().is_empty(), "more after 220: {:?}", r.buffer());
    tcp.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut more = [0u8; 256];
    match tcp.read(&mut more) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!(
            "the server answered the injected command in clear text: {other:?} {:?}",
            other
                .as_ref()
                .map(|&n| String::from_utf8_lossy(&more[..n]).into_owned())
        ),
    }
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();

    // The handshake, verifying the server against our CA only.
    let name = rustls::pki_types::ServerName::try_from("gw.acme.test").unwrap();
    let conn = rustls::ClientConnection::new(common::tls_client_trusting(&ca), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let reply = |tls: &mut rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>,
                 cmd: &str| {
        tls.write_all(cmd.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let mut b = [0u8; 1024];
        // Read until a final reply line ("ddd ").
        loop {
            let n = tls.read(&mut b).expect("read over TLS");
            assert!(n > 0, "connection closed after {cmd:?}");
            buf.extend_from_slice(&b[..n]);
            let s = String::from_utf8_lossy(&buf).into_owned();
            if s.ends_with("\r\n")
                && s.lines()
                    .last()
                    .is_some_and(|l| l.as_bytes().get(3) == Some(&b' '))
            {
                return s;
            }
        }
    };
    // Had the injected MAIL been executed, a RCPT would now be accepted.
    let t = reply(&mut tls, "RCPT TO:<carol@acme.test>\r\n");
    assert!(t.starts_with("503"), "the injected MAIL took effect: {t}");
    let t = reply(&mut tls, "EHLO client.test\r\n");
    assert!(t.starts_with("250") && !t.contains("STARTTLS"), "{t}");
    assert!(tls.conn.peer_certificates().is_some_and(|c| !c.is_empty()));
    let t = reply(&mut tls, "QUIT\r\n");
    assert!(t.starts_with("221"), "{t}");
    assert!(sink.messages().is_empty());
}

// ---- SIGHUP ----

/// Waits until the gateway's log contains `needle` `count` times (bounded).
fn wait_for_log(gw: &Gw, needle: &str, count: usize) {
    for _ in 0..400 {
        let log = std::fs::read_to_string(gw.path("serve.log")).unwrap_or_default();
        if log.matches(needle).count() >= count {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the gateway never logged {needle:?}:\n{}", log_tail(gw));
}

fn sighup(s: &Serve) {
    let st = Command::new("kill")
        .args(["-HUP", &s.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(st.success());
}

/// SIGHUP puts a changed [policy] in force for the next transaction, on a session that stays
/// open across the reload; a configuration that does not load changes nothing and is logged
/// with its reason; the gateway keeps running throughout.
#[test]
fn sighup_reloads_the_policy_without_dropping_connections() {
    let sink = Sink::start();
    let (gw, port) = enrolled_gateway(sink.addr, "");
    let mut s = serve(&gw, port);
    let mut client = common::smtp::Client::connect(s.addr);
    let to_secret = |n: u64| {
        format!(
            "From: alice@acme.test\r\nTo: x@secret.test\r\nSubject: s{n}\r\nMessage-ID: <hup-{n}@acme.test>\r\n\r\nhello\r\n"
        )
        .into_bytes()
    };
    // Opportunistic encryption: no certificate for x@secret.test, so signed only, accepted.
    let (code, text, _) = client.transaction_to("x@secret.test", &to_secret(1));
    assert_eq!(code, 250, "{text}");

    // Require encryption for secret.test, and change a setting that needs a restart.
    let original = std::fs::read_to_string(&gw.config).unwrap();
    let changed = format!(
        "{}\n[policy.domains.\"secret.test\"]\nencrypt = \"required\"\n",
        original.replacen(
            "authserv_id = \"gw.acme.test\"",
            "authserv_id = \"other.acme.test\"",
            1
        )
    );
    std::fs::write(&gw.config, &changed).unwrap();
    let t = Instant::now();
    sighup(&s);
    wait_for_log(&gw, "reloaded", 1);
    let reload_ms = t.elapsed().as_millis();
    let log = std::fs::read_to_string(gw.path("serve.log")).unwrap();
    assert!(
        log.contains("only take effect at the next start") && log.contains("authserv_id"),
        "the log names the setting that was not applied:\n{log}"
    );
    // Same session, new policy.
    let (code, text, _) = client.transaction_to("x@secret.test", &to_secret(2));
    assert_eq!(code, 550, "required encryption is now in force: {text}");
    assert!(text.contains("x@secret.test"), "{text}");

    // A broken file: logged with the reason, the running policy stays.
    std::fs::write(
        &gw.config,
        changed.replace("encrypt = \"required\"", "encrypt = \"always\""),
    )
    .unwrap();
    sighup(&s);
    wait_for_log(&gw, "reload failed", 1);
    let log = std::fs::read_to_string(gw.path("serve.log")).unwrap();
    assert!(
        log.contains("always") && log.contains("running configuration stays"),
        "{log}"
    );
    let (code, text, _) = client.transaction_to("x@secret.test", &to_secret(3));
    assert_eq!(code, 550, "the last good policy is still in force: {text}");
    let (code, text, _) = client.transaction(&message(77));
    assert_eq!(code, 250, "{text}");
    let (code, text) = client.command("QUIT");
    assert_eq!(code, 221, "{text}");
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "the gateway is still running after two SIGHUPs"
    );
    // Only the accepted messages reached the sink.
    let got = sink.messages();
    assert_eq!(got.len(), 2, "{}", got.len());
    eprintln!("SIGHUP reload applied within {reload_ms} ms");
    s.kill9();
}

/// relay.starttls: "required" never relays in clear to a next hop that does not offer
/// STARTTLS (4xx, the MTA keeps the message); "opportunistic" relays in clear to it.
#[test]
fn relay_starttls_required_refuses_a_next_hop_without_starttls() {
    let hop = FaultyHop::start();
    for (mode, want) in [("required", 451), ("opportunistic", 250)] {
        let port = free_port();
        let gw = Gw::with_config(&format!(
            "[listen]\naddress = \"127.0.0.1:{port}\"\n[relay]\nnext_hop = \"{}\"\nstarttls = \"{mode}\"\ntimeout_secs = 5\n",
            hop.addr
        ));
        gw.init_ca();
        let s = serve(&gw, port);
        let (code, text) = send(
            s.addr,
            "a@other.test",
            &["b@else.test"],
            b"From: a@other.test\r\nSubject: transit\r\n\r\nhi\r\n",
        );
        assert_eq!(code, want, "starttls = {mode}: {text}");
        if mode == "required" {
            assert!(text.contains("STARTTLS"), "{text}");
        }
    }
    assert_eq!(hop.stored.lock().unwrap().len(), 1);
}

/// `[listen] require_client_certificate`: mail only over TLS, and only from a client presenting
/// a certificate our CA issued (`ca issue-server --client`); a client without one fails the
/// handshake, and MAIL before STARTTLS gets 530.
#[test]
fn client_certificates_are_required_when_configured() {
    use std::io::{BufRead, BufReader, Write};
    common::require("openssl", "openssl");
    let sink = Sink::start();
    let (gw, port, ca) = tls_gateway(&sink);
    let (ccert, ckey) = (gw.path("mta.crt"), gw.path("mta.key"));
    gw.ok(&[
        "ca",
        "issue-server",
        "mta.acme.test",
        "--client",
        "--cert-out",
        ccert.to_str().unwrap(),
        "--key-out",
        ckey.to_str().unwrap(),
    ]);
    let text = common::openssl_ok(
        gw.dir.path(),
        &[
            "x509",
            "-in",
            ccert.to_str().unwrap(),
            "-noout",
            "-ext",
            "extendedKeyUsage",
        ],
    );
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    // The port under test is the submission listener (see `enrolled_gateway`).
    let config = std::fs::read_to_string(&gw.config).unwrap().replacen(
        "[submission]\n",
        "[submission]\nrequire_client_certificate = true\n",
        1,
    );
    std::fs::write(&gw.config, config).unwrap();
    let _serve = serve(&gw, port);

    // Plain text: MAIL is refused until STARTTLS.
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    w.write_all(b"HELO t\r\nMAIL FROM:<alice@acme.test>\r\n")
        .unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("530 5.7.0"), "{line}");

    let session = "EHLO mta.acme.test\nMAIL FROM:<alice@acme.test>\nRCPT TO:<carol@acme.test>\nDATA\nFrom: alice@acme.test\nSubject: mtls\n\nAuthenticated MTA.\n.\nQUIT\n";
    let s_client = |with_cert: bool| {
        let mut cmd = Command::new("openssl");
        cmd.current_dir(gw.dir.path())
            .args(["s_client", "-starttls", "smtp", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-CAfile")
            .arg(&ca)
            .args(["-verify_return_error", "-crlf", "-ign_eof"]);
        if with_cert {
            cmd.arg("-cert").arg(&ccert).arg("-key").arg(&ckey);
        }
        run_bounded(&mut cmd, session.as_bytes(), Duration::from_secs(30))
    };
    // Without a client certificate: no mail gets through.
    let (_, out) = s_client(false);
    assert!(!out.contains("250 2.0.0 ok"), "{out}");
    assert!(sink.messages().is_empty());
    // With one: accepted and relayed.
    let (ok, out) = s_client(true);
    assert!(ok && out.contains("250 2.0.0 ok"), "{out}");
    assert_eq!(sink.wait_for(1).len(), 1);

    // `ca issued` lists it; `ca revoke` reissues the CRL, and the running gateway refuses the
    // certificate from the next handshake on, without a restart.
    let issued = gw.ok(&["ca", "issued", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&issued).unwrap();
    let serial = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["purpose"] == "tls-client")
        .unwrap_or_else(|| panic!("no tls-client in {issued}"))["serial"]
        .as_str()
        .unwrap()
        .to_string();
    let table = gw.ok(&["ca", "issued"]);
    assert!(
        table.contains(&serial) && table.contains("mta.acme.test"),
        "{table}"
    );
    // A user's certificate is revoked with `user revoke`, not here.
    let alice = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["subject"] == "alice@acme.test")
        .unwrap()["serial"]
        .as_str()
        .unwrap()
        .to_string();
    let err = gw.fails(&["ca", "revoke", &alice], 2);
    assert!(err.contains("smimegw user revoke alice@acme.test"), "{err}");
    let out = gw.ok(&["ca", "revoke", &serial, "--reason", "keyCompromise"]);
    assert!(out.contains("CRL was reissued"), "{out}");
    let err = gw.fails(&["ca", "revoke", &serial], 2);
    assert!(err.contains("already revoked"), "{err}");
    let (_, out) = s_client(true);
    assert!(
        !out.contains("250 2.0.0 ok"),
        "a revoked client certificate still got mail through: {out}"
    );
    assert_eq!(sink.messages().len(), 1, "nothing more was relayed");
    let table = gw.ok(&["ca", "issued"]);
    assert!(table.contains("revoked"), "{table}");
}

/// SIGHUP reaches the whole transaction: the RCPT-time refusal (`refuse_at = "rcpt"`) and
/// `unknown_sender` read the reloaded `[policy]`, not the one the gateway started with.
#[test]
fn sighup_reload_applies_to_rcpt_checks_and_unknown_senders() {
    let sink = Sink::start();
    let (gw, port) = enrolled_gateway(sink.addr, "");
    let mut s = serve(&gw, port);
    let nobody = b"From: nobody@acme.test\r\nTo: y@other.test\r\nSubject: n\r\n\r\nhi\r\n";
    let mut client = common::smtp::Client::connect(s.addr);
    // As started: no RCPT-time refusal, and an unenrolled sender is relayed unsigned.
    let (code, text) = client.command("MAIL FROM:<alice@acme.test>");
    assert_eq!(code, 250, "{text}");
    let (code, text) = client.command("RCPT TO:<x@secret.test>");
    assert_eq!(code, 250, "{text}");
    let (code, text) = client.command("RSET");
    assert_eq!(code, 250, "{text}");
    let (code, text) = send(s.addr, "nobody@acme.test", &["y@other.test"], nobody);
    assert_eq!(code, 250, "{text}");

    let original = std::fs::read_to_string(&gw.config).unwrap();
    std::fs::write(
        &gw.config,
        format!(
            "{original}\n[policy]\nrefuse_at = \"rcpt\"\nunknown_sender = \"reject\"\n[policy.domains.\"secret.test\"]\nencrypt = \"required\"\n"
        ),
    )
    .unwrap();
    sighup(&s);
    wait_for_log(&gw, "reloaded", 1);
    // stderr is a file here, not a terminal: plain text, no colour codes (issue 15).
    let log = std::fs::read_to_string(gw.path("serve.log")).unwrap();
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a log file:\n{log}"
    );

    // The same session, after the reload: RCPT is refused for the recipient without a
    // certificate, and the unenrolled sender is refused at DATA.
    let (code, text) = client.command("MAIL FROM:<alice@acme.test>");
    assert_eq!(code, 250, "{text}");
    let (code, text) = client.command("RCPT TO:<x@secret.test>");
    assert_eq!(code, 550, "the reloaded refuse_at applies at RCPT: {text}");
    assert!(text.contains("x@secret.test"), "{text}");
    let (code, text) = client.command("QUIT");
    assert_eq!(code, 221, "{text}");
    let (code, text) = send(s.addr, "nobody@acme.test", &["y@other.test"], nobody);
    assert_eq!(code, 550, "the reloaded unknown_sender applies: {text}");
    assert!(
        text.contains("smimegw user enroll nobody@acme.test"),
        "{text}"
    );
    assert_eq!(
        sink.messages().len(),
        1,
        "only the first message was relayed"
    );
    s.kill9();
}
