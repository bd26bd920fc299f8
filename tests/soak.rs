//! Soak: `smimegw serve` under steady load over loopback SMTP (internal mail signed, inbound
//! mail from a cross-certified partner verified and harvested, outbound mail to that partner
//! signed and encrypted), sampling the gateway's resident memory (VmRSS) and open file
//! descriptors (/proc/PID/fd) every few seconds. After a warm-up, both must stay flat.
//!
//! "Flat" is measured at quiet points (load paused for a moment, so connections in flight do
//! not count): after warm-up, half-way, and at the end.
//! - File descriptors: the same at every quiet point, within 2 (a descriptor per message, or
//!   per connection, leaking would add thousands).
//! - Memory: growth over the second half at most 8 MiB plus 256 bytes per message sent in it.
//!   The allocator keeps freed memory in per-thread arenas and the chain cache fills once, so a
//!   flat gateway still moves by a few MiB; a leak of even one copy of each message (several
//!   KiB) over thousands of messages exceeds the bound many times.
//!
//! CI runs it for 90 s; `SMIMEGW_SOAK_SECS` changes the duration (`scripts/soak --minutes N`
//! runs it longer, in release mode). Samples are printed (visible with `--nocapture`, and in
//! the failure message).

mod common;

use std::net::SocketAddr;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Gw;
use common::smtp::{Sink, free_port, send, wait_listening};

const CLIENTS: usize = 4;

/// Envelope sender, recipients and message of one kind of load.
type Envelope = (String, Vec<String>, Vec<u8>);

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    at: f64,
    rss_kib: u64,
    fds: usize,
    sent: u64,
}

fn sample(pid: u32, started: Instant, sent: u64) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    Sample {
        at: started.elapsed().as_secs_f64(),
        rss_kib,
        fds,
        sent,
    }
}

fn show(s: &Sample, label: &str) -> String {
    format!(
        "t={:>7.1}s  rss={:>7} KiB  fds={:>4}  messages={:>7}  {label}",
        s.at, s.rss_kib, s.fds, s.sent
    )
}

/// The load: each client sends one message at a time, each over its own connection, cycling
/// through the three kinds, until `stop`.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// Users' mail goes to the submission listener, the partner's to the inbound one, as an MTA
/// would route them.
fn start_load(
    (smtp, submission): (SocketAddr, SocketAddr),
    messages: Arc<Vec<Envelope>>,
    sent: Arc<AtomicU64>,
    failed: Arc<std::sync::Mutex<Vec<String>>>,
) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let threads = (0..CLIENTS)
        .map(|c| {
            let (stop, messages, sent, failed) =
                (stop.clone(), messages.clone(), sent.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let (from, to, msg) = &messages[i % messages.len()];
                    let to: Vec<&str> = to.iter().map(String::as_str).collect();
                    let listener = if from.ends_with("@acme.test") {
                        submission
                    } else {
                        smtp
                    };
                    let (code, text) = send(listener, from, &to, msg);
                    if code == 250 {
                        sent.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.lock().unwrap().push(format!("{code} {text}"));
                    }
                    i += 1;
                }
            })
        })
        .collect();
    Load { stop, threads }
}

impl Load {
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
    }
}

#[test]
fn rss_and_file_descriptors_stay_flat_under_steady_load() {
    let secs: u64 = std::env::var("SMIMEGW_SOAK_SECS")
        .ok()
        .map(|v| v.parse().expect("SMIMEGW_SOAK_SECS is a number of seconds"))
        .unwrap_or(90);
    assert!(secs >= 30, "SMIMEGW_SOAK_SECS must be at least 30");
    let warmup = Duration::from_secs((secs / 4).max(10));
    let half = Duration::from_secs((secs - warmup.as_secs()) / 2);

    let sink = Sink::start();
    let (port, sub) = (free_port(), free_port());
    let gw = Gw::with_config(&format!(
        "authserv_id = \"gw.acme.test\"\n[listen]\naddress = \"127.0.0.1:{port}\"\n[submission]\naddress = \"127.0.0.1:{sub}\"\n[relay]\nnext_hop = \"{}\"\n",
        sink.addr
    ));
    gw.init_ca();
    for who in ["alice", "carol"] {
        gw.enroll(&format!("{who}@acme.test"), who, "p256");
    }
    let partner = common::partner::setup(&gw);
    let body = "Soak test body line.\r\n".repeat(100);
    let internal = format!(
        "From: alice@acme.test\r\nTo: carol@acme.test\r\nSubject: soak\r\nMessage-ID: <soak@acme.test>\r\n\r\n{body}"
    )
    .into_bytes();
    let outbound =
        format!("From: alice@acme.test\r\nTo: bob@partner.test\r\nSubject: soak out\r\n\r\n{body}")
            .into_bytes();
    let inbound = partner.signed(&gw, "alice@acme.test", "soak in", &body);
    let messages = Arc::new(vec![
        (
            "alice@acme.test".to_string(),
            vec!["carol@acme.test".to_string()],
            internal,
        ),
        (
            "bob@partner.test".to_string(),
            vec!["alice@acme.test".to_string()],
            inbound,
        ),
        (
            "alice@acme.test".to_string(),
            vec!["bob@partner.test".to_string()],
            outbound,
        ),
    ]);

    let serve = Serve(
        gw.serve_command()
            .env_remove("SMIMEGW_LOG")
            .spawn()
            .unwrap(),
    );
    let pid = serve.0.id();
    let smtp: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(wait_listening(smtp), "serve did not start");

    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut log: Vec<String> = Vec::new();
    let mut quiet: Vec<Sample> = Vec::new();
    let mut delivered = 0usize;

    // warm-up, first half, second half; a quiet sample after each.
    for (phase, length) in [
        ("warm-up", warmup),
        ("first half", half),
        ("second half", half),
    ] {
        let load = start_load(
            (smtp, gw.submission_addr()),
            messages.clone(),
            sent.clone(),
            failed.clone(),
        );
        let until = Instant::now() + length;
        while Instant::now() < until {
            std::thread::sleep(Duration::from_secs(3).min(until - Instant::now()));
            // Keep the sink's memory bounded on long runs.
            delivered += std::mem::take(&mut *sink.received.lock().unwrap()).len();
            let s = sample(pid, started, sent.load(Ordering::Relaxed));
            let line = show(&s, phase);
            println!("{line}");
            log.push(line);
        }
        load.stop();
        // Quiet: let the last relays and closes finish.
        std::thread::sleep(Duration::from_millis(1500));
        let s = sample(pid, started, sent.load(Ordering::Relaxed));
        let line = show(&s, &format!("quiet after {phase}"));
        println!("{line}");
        log.push(line);
        quiet.push(s);
    }
    delivered += std::mem::take(&mut *sink.received.lock().unwrap()).len();
    let report = log.join("\n");

    let failed = failed.lock().unwrap();
    assert!(
        failed.is_empty(),
        "{} message(s) not accepted, first: {}\n{report}",
        failed.len(),
        failed[0]
    );
    let total = sent.load(Ordering::Relaxed);
    assert_eq!(
        delivered as u64, total,
        "every accepted message at the sink"
    );
    assert!(total >= 100, "the load ran ({total} messages)\n{report}");

    let (b0, b1, b2) = (quiet[0], quiet[1], quiet[2]);
    for s in [b1, b2] {
        assert!(
            s.fds.abs_diff(b0.fds) <= 2,
            "open descriptors went from {} after warm-up to {}\n{report}",
            b0.fds,
            s.fds
        );
    }
    let in_second_half = b2.sent - b1.sent;
    let allowed_kib = 8 * 1024 + in_second_half * 256 / 1024;
    let growth = b2.rss_kib.saturating_sub(b1.rss_kib);
    println!(
        "{total} messages in {:.0} s; fds {} / {} / {}; RSS growth over the second half {growth} KiB (allowed {allowed_kib} KiB for {in_second_half} messages)",
        started.elapsed().as_secs_f64(),
        b0.fds,
        b1.fds,
        b2.fds
    );
    assert!(
        growth <= allowed_kib,
        "RSS grew by {growth} KiB over the second half ({in_second_half} messages, allowed {allowed_kib} KiB)\n{report}"
    );
}
