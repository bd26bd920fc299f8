//! SMTP smuggling through the gateway (issue 11, part 2), over loopback through a real
//! `smimegw serve`: content with a bare LF or CR next to a dot, in a plain message, inside an
//! opaque signed message the gateway unwraps and inside an encrypted message it decrypts, must
//! reach the next hop as one canonical message. The next hop is the lenient sink (a line "."
//! ends its data however the line ends, as in Postfix before 3.9), which records the raw bytes:
//! a smuggled end of data would show there as a bare line end and as a second message.

mod common;

use std::time::{Duration, Instant};

use common::smtp::{Received, Sink, bare_line_ends, canonical, send_raw, stuffed};
use common::{Gw, Serve, wrap};

/// The variants of a fake end of data, each of which some receiver takes for the real one.
const VARIANTS: [&str; 5] = ["\n.\r\n", "\r.\r\n", "\n.\n", "\r\n.\n", "\r\n.\r\n"];

/// A whole second transaction, after the fake end: a forged internal sender to an outsider.
const SMUGGLED: &str = "MAIL FROM:<ceo@acme.test>\r\nRCPT TO:<victim@x.test>\r\nDATA\r\nFrom: ceo@acme.test\r\nTo: victim@x.test\r\nSubject: forged\r\n\r\nwire the money\r\n";

/// Bodies that carry `variant`: inside the text, at the very start, and at the very end.
fn bodies(variant: &str) -> [String; 3] {
    [
        format!("before{variant}{SMUGGLED}after\r\n"),
        format!("{variant}{SMUGGLED}"),
        format!("the end{variant}"),
    ]
}

/// A gateway for alice@acme.test relaying to `sink` on a new connection per copy, closed with
/// QUIT: the sink has read all the gateway wrote for a copy once it has seen that QUIT.
fn gateway(sink: &Sink) -> (Gw, Serve) {
    let (gw, port) = Gw::inbound(sink.addr, "idle_connections = 0\n");
    let serve = gw.serve_on(port);
    (gw, serve)
}

/// After the `n`-th copy was accepted: the sink holds exactly `n` messages, the last one
/// canonical on the wire and carrying `content` (canonical) inside, smuggled commands and all.
fn assert_one_canonical_copy(sink: &Sink, n: usize, content: &str, what: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while sink.stats.quits() < n && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = sink.messages();
    assert_eq!(
        got.len(),
        n,
        "{what}: the next hop saw {} messages for {n} copies: {:#?}",
        got.len(),
        got.iter()
            .map(|m| String::from_utf8_lossy(&m.raw).into_owned())
            .collect::<Vec<_>>()
    );
    let last = &got[n - 1];
    let raw = String::from_utf8_lossy(&last.raw);
    assert!(
        bare_line_ends(&last.raw).is_empty(),
        "{what}: bare CR or LF at {:?} on the wire: {raw:?}",
        bare_line_ends(&last.raw)
    );
    assert!(raw.ends_with("\r\n.\r\n"), "{what}: {raw:?}");
    let want = canonical(content.as_bytes());
    let want = want.strip_suffix(b"\r\n").unwrap_or(&want);
    assert!(
        last.data.windows(want.len()).any(|w| w == want),
        "{what}: the content did not arrive whole and canonical: {:?} not in {:?}",
        String::from_utf8_lossy(want),
        String::from_utf8_lossy(&last.data)
    );
}

/// Stuffs `msg` the RFC 5321 way only (a dot after CRLF), leaving bare LF and CR as they are,
/// and ends the data: a client that lets a bare LF through, as Postfix may.
fn data_as_is(msg: &str) -> Vec<u8> {
    let mut data = msg.replace("\r\n.", "\r\n..");
    if data.starts_with('.') {
        data.insert(0, '.');
    }
    if !data.ends_with("\r\n") {
        data.push_str("\r\n");
    }
    data.push_str(".\r\n");
    data.into_bytes()
}

/// For every variant and placement: sends the message `make` builds around the body (the
/// sender, and the data after the 354 as it goes on the wire), and checks the copy that
/// arrives. Returns the copies, in order.
fn each_body(
    sink: &Sink,
    serve: &Serve,
    what: &str,
    make: impl Fn(&str) -> (&'static str, Vec<u8>),
) -> Vec<Received> {
    let mut n = 0;
    for variant in VARIANTS {
        for body in bodies(variant) {
            let (from, data) = make(&body);
            let (code, text) = send_raw(serve.addr, from, &["alice@acme.test"], &data);
            assert_eq!(code, 250, "{what} {body:?}: {text}");
            n += 1;
            assert_one_canonical_copy(sink, n, &body, &format!("{what} {body:?}"));
        }
    }
    sink.messages()
}

#[test]
fn a_plain_message_with_a_bare_lf_before_a_dot_reaches_the_next_hop_as_one_canonical_message() {
    let sink = Sink::start();
    let (_gw, serve) = gateway(&sink);
    each_body(&sink, &serve, "plain", |body| {
        let msg = format!(
            "From: bob@partner.test\r\nTo: alice@acme.test\r\nSubject: plain\r\n\r\n{body}"
        );
        ("bob@partner.test", data_as_is(&msg))
    });
}

/// The inner entity of a signed or encrypted message: `body` inside, bytes as they are.
fn inner(body: &str) -> String {
    format!("Content-Type: text/plain\r\n\r\n{body}")
}

#[test]
fn unwrapped_opaque_signed_content_reaches_the_next_hop_as_one_canonical_message() {
    let sink = Sink::start();
    let (gw, serve) = gateway(&sink);
    each_body(&sink, &serve, "opaque signed", |body| {
        let msg = wrap::opaque_signed_untrusted(&gw, inner(body).as_bytes(), "alice@acme.test");
        ("mallory@evil.test", stuffed(&msg))
    });
}

#[test]
fn decrypted_content_reaches_the_next_hop_as_one_canonical_message() {
    let sink = Sink::start();
    let (gw, serve) = gateway(&sink);
    let alice = gw.cert_file("alice@acme.test", "encryption");
    let copies = each_body(&sink, &serve, "decrypted", |body| {
        let from = "bob@partner.test";
        let msg = wrap::encrypted(&gw, &alice, inner(body).as_bytes(), from, "alice@acme.test");
        (from, stuffed(&msg))
    });
    for m in copies {
        let data = String::from_utf8_lossy(&m.data);
        assert!(
            !data.contains("application/pkcs7-mime"),
            "not decrypted: {data}"
        );
    }
}
