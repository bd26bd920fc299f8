//! The relay's kept connections to the next hop (`relay.idle_connections`, `relay.idle_secs`),
//! over loopback: one connection for many messages, QUIT once idle and at shutdown, and a
//! kept connection the next hop closed meanwhile replaced without losing or refusing mail.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::smtp::{DROP, SAY_421, Sink, free_port, send};
use common::{Gw, Serve, tls_next_hop};

fn serve(sink: &Sink, relay: &str) -> (Gw, Serve) {
    let port = free_port();
    let gw = Gw::with_config(&format!(
        "[listen]\naddress = \"127.0.0.1:{port}\"\n[relay]\nnext_hop = \"{}\"\n{relay}",
        sink.addr
    ));
    gw.init_ca();
    let serve = gw.serve_on(port);
    (gw, serve)
}

/// Transit mail (neither side internal): relayed as it is, so only the relay is under test.
const MSG: &[u8] = b"From: x@a.test\r\nTo: y@b.test\r\nSubject: relay\r\n\r\nbody\r\n";

fn relay_one(s: &Serve) {
    let (code, text) = send(s.addr, "x@a.test", &["y@b.test"], MSG);
    assert_eq!(code, 250, "{text}");
}

/// Polls `cond` for up to five seconds.
fn eventually(cond: impl Fn() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

#[test]
fn one_kept_connection_carries_message_after_message() {
    let sink = Sink::start();
    let (_gw, s) = serve(&sink, "");
    for _ in 0..5 {
        relay_one(&s);
    }
    assert_eq!(sink.wait_for(5).len(), 5);
    assert_eq!(
        sink.stats.connections(),
        1,
        "one connection for five messages"
    );
    assert_eq!(sink.stats.quits(), 0, "the kept connection is still open");
}

#[test]
fn idle_connections_zero_opens_and_quits_a_connection_per_message() {
    let sink = Sink::start();
    let (_gw, s) = serve(&sink, "idle_connections = 0\n");
    for _ in 0..3 {
        relay_one(&s);
    }
    assert_eq!(sink.wait_for(3).len(), 3);
    assert!(
        eventually(|| sink.stats.quits() == 3),
        "every connection ends with QUIT"
    );
    assert_eq!(sink.stats.connections(), 3);
}

#[test]
fn a_kept_connection_is_closed_with_quit_after_idle_secs() {
    let sink = Sink::start();
    let (_gw, s) = serve(&sink, "idle_secs = 1\n");
    relay_one(&s);
    let sent = Instant::now();
    assert!(
        eventually(|| sink.stats.quits() == 1),
        "no QUIT after idle_secs"
    );
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed too early: {waited:?}"
    );
    // The next message needs a new connection.
    relay_one(&s);
    assert_eq!(sink.wait_for(2).len(), 2);
    assert_eq!(sink.stats.connections(), 2);
}

/// The next hop may close a kept connection at any time (its own idle timeout, a restart). The
/// message that finds it closed goes out on a new connection: the MTA still hears 250, once.
#[test]
fn a_kept_connection_the_next_hop_closed_is_replaced_and_nothing_is_lost() {
    for (mode, how) in [(DROP, "closed silently"), (SAY_421, "421 then closed")] {
        let sink = Sink::start();
        sink.stats
            .after_data
            .store(mode, std::sync::atomic::Ordering::SeqCst);
        let (_gw, s) = serve(&sink, "");
        for _ in 0..3 {
            relay_one(&s);
        }
        let got = sink.wait_for(3);
        assert_eq!(got.len(), 3, "{how}: every message arrives exactly once");
        assert_eq!(
            sink.stats.connections(),
            3,
            "{how}: a new connection each time"
        );
    }
}

#[test]
fn shutdown_closes_kept_connections_with_quit() {
    let sink = Sink::start();
    let (_gw, mut s) = serve(&sink, "idle_secs = 300\n");
    relay_one(&s);
    assert_eq!(sink.wait_for(1).len(), 1);
    assert_eq!(sink.stats.quits(), 0);
    let st = Command::new("kill")
        .arg("-TERM")
        .arg(s.child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    let status = s.child.wait().unwrap();
    assert!(status.success(), "serve exits 0 after SIGTERM: {status}");
    assert!(
        eventually(|| sink.stats.quits() == 1),
        "the kept connection got no QUIT"
    );
}

/// The next hop is another smimegw offering STARTTLS with a certificate for `localhost` from
/// its own CA, trusted through SSL_CERT_FILE: with `starttls = "required"` mail goes over TLS,
/// message after message on the kept connection.
#[test]
fn kept_connections_work_over_required_starttls() {
    let sink = Sink::start();
    let (_hop, hop_serve, hop_ca) = tls_next_hop(sink.addr);
    let hop_port = hop_serve.addr.port();

    let port = free_port();
    let gw = Gw::with_config(&format!(
        "[listen]\naddress = \"127.0.0.1:{port}\"\n[relay]\nnext_hop = \"localhost:{hop_port}\"\nstarttls = \"required\"\n"
    ));
    gw.init_ca();
    let child = gw
        .serve_command()
        .env("SSL_CERT_FILE", &hop_ca)
        .spawn()
        .unwrap();
    let s = Serve::listening(child, port);
    for _ in 0..3 {
        relay_one(&s);
    }
    assert_eq!(sink.wait_for(3).len(), 3);
}

/// A next hop (or someone on the path) that follows its reply to STARTTLS with more plain text
/// in the same packet: lettre would keep those bytes across the TLS upgrade and read them as the
/// protected EHLO reply. The gateway refuses the connection, saying why, and nothing is sent.
#[test]
fn plain_text_injected_after_starttls_is_refused() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hop = listener.local_addr().unwrap();
    let injector = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut w = stream.try_clone().unwrap();
        let mut r = BufReader::new(stream);
        let mut line = String::new();
        w.write_all(b"220 hop.test ESMTP\r\n").unwrap();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("EHLO"), "{line}");
        w.write_all(b"250-hop.test\r\n250 STARTTLS\r\n").unwrap();
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("STARTTLS"), "{line}");
        // The reply, and in the same packet what the client must not believe.
        w.write_all(b"220 go ahead\r\n250-hop.test\r\n250 AUTH PLAIN\r\n")
            .unwrap();
        // Whatever comes next (a ClientHello, or nothing): read until the client gives up.
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut r, &mut rest);
        rest
    });
    let port = free_port();
    let gw = Gw::with_config(&format!(
        "[listen]\naddress = \"127.0.0.1:{port}\"\n[relay]\nnext_hop = \"{hop}\"\nstarttls = \"required\"\ntimeout_secs = 5\n"
    ));
    gw.init_ca();
    let s = gw.serve_on(port);
    let (code, text) = send(s.addr, "x@a.test", &["y@b.test"], MSG);
    assert_eq!(code / 100, 4, "{text}");
    assert!(text.contains("after its reply to STARTTLS"), "{text}");
    drop(s);
    let rest = injector.join().unwrap();
    assert!(
        !String::from_utf8_lossy(&rest).contains("MAIL FROM"),
        "nothing was sent after the injection"
    );
}
