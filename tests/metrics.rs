//! The metrics listener over real loopback HTTP: after real messages went through `serve`, the
//! Prometheus counters and histograms show them with the right labels, the expiry gauges match
//! the directory, and `/healthz` follows the directory's availability.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Child;
use std::time::Duration;

use common::smtp::{Sink, free_port, send, wait_listening};
use common::{Gw, http_raw};

/// A running `smimegw serve`, killed on drop.
struct Serve {
    child: Child,
    smtp: SocketAddr,
    http: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gateway(sink: &Sink, extra_listen: &str, extra: &str) -> (Gw, u16, u16) {
    let (port, mport, sub) = (free_port(), free_port(), free_port());
    let gw = Gw::with_config(&format!(
        "authserv_id = \"gw.acme.test\"\n[submission]\naddress = \"127.0.0.1:{sub}\"\n[listen]\naddress = \"127.0.0.1:{port}\"\n{extra_listen}[relay]\nnext_hop = \"{}\"\ntimeout_secs = 5\n[metrics]\nlisten = \"127.0.0.1:{mport}\"\n{extra}",
        sink.addr
    ));
    (gw, port, mport)
}

fn serve(gw: &Gw, port: u16, mport: u16) -> Serve {
    let child = gw.spawn_serve();
    let smtp: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let http: SocketAddr = format!("127.0.0.1:{mport}").parse().unwrap();
    let s = Serve { child, smtp, http };
    assert!(
        wait_listening(smtp) && wait_listening(http),
        "smimegw serve did not start listening: {}",
        std::fs::read_to_string(gw.path("serve.log")).unwrap_or_default()
    );
    s
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test\r\n\r\n").as_bytes(),
    )
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn must(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

fn rfc3339(s: &str) -> i64 {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

const PLAIN: &[u8] = b"From: Alice <alice@acme.test>\r\nTo: carol@acme.test\r\nSubject: m\r\nMessage-ID: <m1@acme.test>\r\n\r\nHello.\r\n";

#[test]
fn messages_latencies_tls_failures_expiry_and_harvest_show_in_metrics() {
    let sink = Sink::start();
    // dave's 10-day certificate is what the expiry gauge is checked with: `serve` must not
    // renew it at start (ca.renew_before_days).
    let (gw, port, mport) = gateway(
        &sink,
        "",
        "[policy.domains.\"secret.test\"]\nencrypt = \"required\"\n[ca]\nrenew_before_days = 0\n",
    );
    gw.init_ca();
    for (who, days) in [("alice", "700"), ("carol", "700"), ("dave", "10")] {
        gw.ok(&[
            "user",
            "enroll",
            &format!("{who}@acme.test"),
            "--name",
            who,
            "--key",
            "p256",
            "--days",
            days,
        ]);
    }
    let partner = common::partner::setup(&gw);
    // STARTTLS on the listener, to count a failed handshake.
    gw.enable_starttls("gw.acme.test");
    let s = serve(&gw, port, mport);

    let (code, body) = get(s.http, "/healthz");
    assert_eq!((code, body.as_str()), (200, "ok\n"));

    // Before any mail: expiry gauges match the directory, nothing counted yet.
    let (code, m) = get(s.http, "/metrics");
    assert_eq!(code, 200, "{m}");
    assert!(m.contains("# TYPE smimegw_messages_total counter"), "{m}");
    assert!(!m.contains("smimegw_messages_total{"), "{m}");
    let users: serde_json::Value =
        serde_json::from_str(&gw.ok(&["user", "list", "--json"])).unwrap();
    let mut gauges = 0;
    for u in users.as_array().unwrap() {
        let email = u["email"].as_str().unwrap();
        for c in u["certificates"].as_array().unwrap() {
            let role = c["role"].as_str().unwrap().to_ascii_lowercase();
            let want = rfc3339(c["not_after"].as_str().unwrap()) - now();
            let got = must(
                &m,
                &format!("smimegw_certificate_expiry_seconds{{user=\"{email}\",role=\"{role}\"}}"),
            );
            assert!(
                (got - want as f64).abs() < 120.0,
                "{email} {role}: gauge {got}, directory says {want}"
            );
            gauges += 1;
        }
    }
    assert_eq!(gauges, 6, "two certificates for each of three users");
    let dave = must(
        &m,
        "smimegw_certificate_expiry_seconds{user=\"dave@acme.test\",role=\"signing\"}",
    );
    assert!(
        (dave - 10.0 * 86_400.0).abs() < 120.0,
        "dave's 10-day certificate: {dave}"
    );
    assert!(must(&m, "smimegw_ca_expiry_seconds") > 3000.0 * 86_400.0);
    assert_eq!(must(&m, "smimegw_harvested_certificates"), 0.0);
    assert_eq!(must(&m, "smimegw_directory_up"), 1.0);

    // Real mail of every kind.
    for _ in 0..2 {
        let (c, t) = send(
            gw.submission_addr(),
            "alice@acme.test",
            &["carol@acme.test"],
            PLAIN,
        );
        assert_eq!(c, 250, "{t}");
    }
    let (c, t) = send(s.smtp, "x@outside.test", &["carol@acme.test"], PLAIN);
    assert_eq!(c, 250, "{t}");
    let signed = partner.signed(&gw, "alice@acme.test", "from bob", "Signed by bob.");
    let (c, t) = send(s.smtp, "bob@partner.test", &["alice@acme.test"], &signed);
    assert_eq!(c, 250, "{t}");
    let (c, t) = send(
        gw.submission_addr(),
        "alice@acme.test",
        &["bob@partner.test"],
        PLAIN,
    );
    assert_eq!(c, 250, "{t}");
    let (c, t) = send(
        gw.submission_addr(),
        "alice@acme.test",
        &["x@secret.test"],
        PLAIN,
    );
    assert_eq!(c, 550, "{t}");
    sink.data_code
        .store(451, std::sync::atomic::Ordering::SeqCst);
    let (c, t) = send(
        gw.submission_addr(),
        "alice@acme.test",
        &["carol@acme.test"],
        PLAIN,
    );
    assert_eq!(c, 451, "{t}");
    sink.data_code
        .store(250, std::sync::atomic::Ordering::SeqCst);
    let got = sink.wait_for(5);
    assert_eq!(got.len(), 5);
    assert!(
        String::from_utf8_lossy(&got[3].data).contains("smime=pass"),
        "bob's message verified"
    );

    // A client that starts TLS and then sends garbage.
    {
        let mut tcp = TcpStream::connect(s.smtp).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 512];
        let _ = tcp.read(&mut buf).unwrap();
        tcp.write_all(b"EHLO x.test\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let _ = tcp.read(&mut buf).unwrap();
        tcp.write_all(b"STARTTLS\r\n").unwrap();
        let n = tcp.read(&mut buf).unwrap();
        assert!(
            buf[..n].starts_with(b"220"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
        tcp.write_all(b"this is not a TLS ClientHello\r\n\r\n")
            .unwrap();
        let _ = tcp.read(&mut buf);
    }

    let mut m = String::new();
    for _ in 0..50 {
        m = get(s.http, "/metrics").1;
        if sample(&m, "smimegw_tls_handshake_failures_total") == Some(1.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for (series, want) in [
        (
            "{direction=\"internal\",action=\"signed\",verdict=\"-\"}",
            2.0,
        ),
        (
            "{direction=\"inbound\",action=\"annotated\",verdict=\"none\"}",
            1.0,
        ),
        (
            "{direction=\"inbound\",action=\"verified\",verdict=\"pass\"}",
            1.0,
        ),
        (
            "{direction=\"outbound\",action=\"signed_encrypted\",verdict=\"-\"}",
            1.0,
        ),
        (
            "{direction=\"outbound\",action=\"refused\",verdict=\"-\"}",
            1.0,
        ),
        (
            "{direction=\"internal\",action=\"next_hop_deferred\",verdict=\"-\"}",
            1.0,
        ),
    ] {
        assert_eq!(
            must(&m, &format!("smimegw_messages_total{series}")),
            want,
            "{series}\n{m}"
        );
    }
    let counted: usize = m
        .lines()
        .filter(|l| l.starts_with("smimegw_messages_total{"))
        .count();
    assert_eq!(counted, 6, "no other series: {m}");
    // Seven transactions were processed; five relayed, one refused, one failed at the next hop.
    assert_eq!(must(&m, "smimegw_crypto_duration_seconds_count"), 7.0);
    assert_eq!(
        must(&m, "smimegw_crypto_duration_seconds_bucket{le=\"+Inf\"}"),
        7.0
    );
    assert!(must(&m, "smimegw_crypto_duration_seconds_sum") > 0.0);
    for (outcome, n) in [("relayed", 5.0), ("refused", 1.0), ("next_hop_failed", 1.0)] {
        assert_eq!(
            must(
                &m,
                &format!("smimegw_message_duration_seconds_count{{outcome=\"{outcome}\"}}")
            ),
            n,
            "{outcome}\n{m}"
        );
        assert_eq!(
            must(
                &m,
                &format!(
                    "smimegw_message_duration_seconds_bucket{{outcome=\"{outcome}\",le=\"+Inf\"}}"
                )
            ),
            n
        );
    }
    assert_eq!(must(&m, "smimegw_tls_handshake_failures_total"), 1.0, "{m}");
    assert_eq!(must(&m, "smimegw_harvested_certificates"), 1.0, "{m}");
    assert_eq!(must(&m, "smimegw_harvest_failures_total"), 0.0);
}

#[test]
fn healthz_is_503_while_the_directory_is_moved_away_and_200_when_it_is_back() {
    let sink = Sink::start();
    let (gw, port, mport) = gateway(&sink, "", "");
    gw.init_ca();
    let s = serve(&gw, port, mport);
    assert_eq!(get(s.http, "/healthz"), (200, "ok\n".to_string()));

    // The data directory disappears from under the running gateway (an admin's mv, a lost
    // mount): the gateway's open file still answers, but the directory the administrators and
    // the next start see is gone, so the gateway is not ready.
    let away = gw.path("data.away");
    std::fs::rename(gw.data_dir(), &away).unwrap();
    let (code, body) = get(s.http, "/healthz");
    assert_eq!(code, 503, "{body}");
    assert!(
        body.starts_with("not ready: directory unavailable:")
            && body.contains("smimegw.redb")
            && body.contains("moved or deleted"),
        "{body}"
    );
    let (code, m) = get(s.http, "/metrics");
    assert_eq!(code, 200, "a scrape still works: {m}");
    assert_eq!(must(&m, "smimegw_directory_up"), 0.0, "{m}");
    assert!(!m.contains("smimegw_certificate_expiry_seconds{"), "{m}");
    // HEAD gets the status without a body (HTTP/1.1 needs a Host field, RFC 9112 3.2).
    let (code, body) = http_raw(s.http, b"HEAD /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!((code, body.as_str()), (503, ""));

    std::fs::rename(&away, gw.data_dir()).unwrap();
    assert_eq!(get(s.http, "/healthz"), (200, "ok\n".to_string()));
    assert_eq!(
        must(&get(s.http, "/metrics").1, "smimegw_directory_up"),
        1.0
    );
}

#[test]
fn the_metrics_listener_refuses_what_it_does_not_serve_and_keeps_serving() {
    let sink = Sink::start();
    let (gw, port, mport) = gateway(&sink, "", "");
    gw.init_ca();
    let s = serve(&gw, port, mport);
    assert_eq!(get(s.http, "/nope").0, 404);
    assert_eq!(
        http_raw(
            s.http,
            b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        )
        .0,
        405
    );
    assert_eq!(http_raw(s.http, b"garbage\r\n\r\n").0, 400);
    let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 20_000));
    assert_eq!(http_raw(s.http, &huge).0, 431);
    // A client that connects and says nothing is dropped after the request timeout, and does
    // not block others meanwhile.
    let idle = TcpStream::connect(s.http).unwrap();
    assert_eq!(get(s.http, "/healthz").0, 200);
    drop(idle);
    assert_eq!(get(s.http, "/metrics").0, 200);

    // Disabled: nothing listens.
    drop(s);
    let (gw2, port2, mport2) = gateway(&sink, "", "");
    let text = std::fs::read_to_string(&gw2.config)
        .unwrap()
        .replace("[metrics]\n", "[metrics]\nenabled = false\n");
    std::fs::write(&gw2.config, text).unwrap();
    gw2.init_ca();
    let child = gw2.spawn_serve();
    let s2 = Serve {
        child,
        smtp: format!("127.0.0.1:{port2}").parse().unwrap(),
        http: format!("127.0.0.1:{mport2}").parse().unwrap(),
    };
    assert!(wait_listening(s2.smtp));
    assert!(TcpStream::connect(s2.http).is_err(), "metrics disabled");
}

/// The relay's kept connections are visible: opened, reused, found closed, and kept now.
#[test]
fn next_hop_connection_reuse_shows_in_metrics() {
    use common::smtp::DROP;
    let sink = Sink::start();
    let (gw, port, mport) = gateway(&sink, "", "");
    gw.init_ca();
    let s = serve(&gw, port, mport);
    let transit = b"From: x@a.test\r\nTo: y@b.test\r\nSubject: t\r\n\r\nbody\r\n";
    let relay = |n: usize| {
        for _ in 0..n {
            let (c, t) = send(s.smtp, "x@a.test", &["y@b.test"], transit);
            assert_eq!(c, 250, "{t}");
        }
    };
    let series = |text: &str| {
        [
            "smimegw_relay_connections_total{event=\"opened\"}",
            "smimegw_relay_connections_total{event=\"reused\"}",
            "smimegw_relay_connections_total{event=\"found_closed\"}",
            "smimegw_relay_idle_connections",
        ]
        .map(|k| must(text, k))
    };
    relay(3);
    let (code, text) = get(s.http, "/metrics");
    assert_eq!(code, 200);
    assert_eq!(series(&text), [1.0, 2.0, 0.0, 1.0], "{text}");
    // The next hop now hangs up after each message: the kept connection is found closed once,
    // and the message goes on a new one.
    sink.stats
        .after_data
        .store(DROP, std::sync::atomic::Ordering::SeqCst);
    relay(2);
    let (_, text) = get(s.http, "/metrics");
    assert_eq!(series(&text), [2.0, 4.0, 1.0, 1.0], "{text}");
    assert_eq!(sink.wait_for(5).len(), 5);
}

/// The listener answers only to loopback host names (a web page that rebinds its own name to
/// 127.0.0.1 gets 403), and with `bearer_token_file` only to requests carrying the token.
#[test]
fn foreign_host_names_and_missing_tokens_are_refused() {
    let sink = Sink::start();
    let (gw, port, mport) = gateway(&sink, "", "");
    gw.init_ca();
    let token = gw.path("metrics.token");
    std::fs::write(&token, "0123456789abcdef\n").unwrap();
    let text = std::fs::read_to_string(&gw.config).unwrap().replacen(
        "[metrics]\n",
        &format!("[metrics]\nbearer_token_file = \"{}\"\n", token.display()),
        1,
    );
    std::fs::write(&gw.config, text).unwrap();
    let s = serve(&gw, port, mport);
    let request = |host: &str, auth: &str| {
        http_raw(
            s.http,
            format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n").as_bytes(),
        )
    };
    let (code, body) = request(
        "attacker.test",
        "Authorization: Bearer 0123456789abcdef\r\n",
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("metrics.allowed_hosts"), "{body}");
    let (code, body) = request(&format!("localhost:{mport}"), "");
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("bearer token"), "{body}");
    let (code, body) = request(
        &format!("localhost:{mport}"),
        "Authorization: Bearer wrong\r\n",
    );
    assert_eq!(code, 401, "{body}");
    let (code, body) = request(
        &format!("127.0.0.1:{mport}"),
        "Authorization: Bearer 0123456789abcdef\r\n",
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("smimegw_directory_up 1"), "{body}");
    // Two Host fields are a bad request, whatever the first says.
    let (code, _) = http_raw(
        s.http,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nHost: attacker.test\r\n\r\n",
    );
    assert_eq!(code, 400);
}
