//! What the gateway counts, and the small HTTP listener that shows it: `/metrics` in the
//! Prometheus text format and `/healthz` for readiness.
//!
//! Counters and histograms live in memory ([`Metrics`], atomics plus one mutex-guarded map) and
//! are updated on the message path; certificate expiry and the harvested-certificate count are
//! read from the directory at each scrape, so they are never stale and cost nothing between
//! scrapes. [`http`] parses requests without I/O, [`encode`] writes the exposition format,
//! [`server`] moves bytes.

pub mod access;
pub mod encode;
pub mod http;
pub mod server;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use encode::{Encoder, Kind, format_value};

/// Buckets of the crypto histogram, in seconds: one ECDSA signature is well under a
/// millisecond, an RSA-4096 decryption of a 10 MiB message a good fraction of a second.
pub const CRYPTO_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets of the end-to-end histogram, in seconds: up to the relay timeout range.
pub const END_TO_END_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// A histogram with fixed buckets; lock-free to observe.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Non-cumulative counts per bucket; the last one is `+Inf`.
    counts: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending upper bounds in seconds).
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// How many observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn encode(&self, e: &mut Encoder, name: &str, labels: &[(&str, &str)]) {
        let mut cumulative = 0u64;
        let bucket = format!("{name}_bucket");
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = self
                .bounds
                .get(i)
                .map(|b| format_value(*b))
                .unwrap_or_else(|| "+Inf".into());
            let mut l = labels.to_vec();
            l.push(("le", &le));
            e.sample(&bucket, &l, cumulative as f64);
        }
        e.sample(
            &format!("{name}_sum"),
            labels,
            self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        );
        // The count is the +Inf bucket, so the two never disagree within one scrape.
        e.sample(&format!("{name}_count"), labels, cumulative as f64);
    }
}

/// How a transaction ended for the MTA, the label of the end-to-end histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Every copy was accepted by the next hop (250).
    Relayed,
    /// We refused it (policy, 5xx or 4xx from the treatment).
    Refused,
    /// The next hop deferred or refused a copy (4xx/5xx passed back).
    NextHopFailed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Relayed => "relayed",
            Outcome::Refused => "refused",
            Outcome::NextHopFailed => "next_hop_failed",
        }
    }
}

/// The in-memory metrics of one `serve` process.
#[derive(Debug)]
pub struct Metrics {
    /// Copies by (direction, action, verdict).
    messages: Mutex<BTreeMap<(String, String, String), u64>>,
    crypto: Histogram,
    end_to_end: [Histogram; 3],
    tls_failures: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            messages: Mutex::new(BTreeMap::new()),
            crypto: Histogram::new(CRYPTO_BUCKETS),
            end_to_end: [
                Histogram::new(END_TO_END_BUCKETS),
                Histogram::new(END_TO_END_BUCKETS),
                Histogram::new(END_TO_END_BUCKETS),
            ],
            tls_failures: AtomicU64::new(0),
        }
    }
}

/// The verdict label: the RFC 7281 result word (`pass`, `fail`, `none`, `neutral`, `temperror`,
/// `permerror`), `-` where no verification happens (outbound), else `other`. The full text (which
/// names signers) stays in the log; labels must have few values.
pub fn verdict_label(verdict: &str) -> &'static str {
    let word = verdict
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .next()
        .unwrap_or("");
    match word {
        "pass" => "pass",
        "fail" => "fail",
        "none" => "none",
        "neutral" => "neutral",
        "temperror" => "temperror",
        "permerror" => "permerror",
        "" | "-" => "-",
        _ => "other",
    }
}

impl Metrics {
    /// Counts one message copy (or one refused transaction) by direction, action and verdict.
    pub fn message(&self, direction: &str, action: &str, verdict: &str) {
        let key = (
            direction.to_string(),
            action.to_string(),
            verdict_label(verdict).to_string(),
        );
        let mut map = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(key).or_insert(0) += 1;
    }

    /// Records the time the S/MIME treatment of one transaction took.
    pub fn crypto(&self, d: Duration) {
        self.crypto.observe(d);
    }

    /// Records the time from the end of DATA to our reply.
    pub fn end_to_end(&self, outcome: Outcome, d: Duration) {
        self.end_to_end[outcome as usize].observe(d);
    }

    /// Counts a failed STARTTLS handshake on the listener.
    pub fn tls_handshake_failed(&self) {
        self.tls_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition: in-memory metrics, then what the rest of the gateway reported in
    /// `snapshot`. A directory that could not be read gives `smimegw_directory_up 0` and no
    /// directory gauges (never a failed scrape: the counters are still worth having).
    pub fn render(&self, snapshot: &Snapshot) -> String {
        let mut e = Encoder::default();
        e.family(
            "smimegw_messages_total",
            Kind::Counter,
            "Message copies handled, by direction (inbound, outbound, internal, transit), action and verdict (RFC 7281 result, - when not verified); refused and next-hop-failed transactions count once.",
        );
        {
            let map = self.messages.lock().unwrap_or_else(|e| e.into_inner());
            for ((d, a, v), n) in map.iter() {
                e.sample(
                    "smimegw_messages_total",
                    &[("direction", d), ("action", a), ("verdict", v)],
                    *n as f64,
                );
            }
        }
        e.family(
            "smimegw_crypto_duration_seconds",
            Kind::Histogram,
            "Time spent on the S/MIME treatment of one transaction (parse, sign, encrypt, decrypt, verify), without relaying.",
        );
        self.crypto
            .encode(&mut e, "smimegw_crypto_duration_seconds", &[]);
        e.family(
            "smimegw_message_duration_seconds",
            Kind::Histogram,
            "Time from the end of DATA to our reply to the MTA (treatment plus relaying), by outcome.",
        );
        for o in [Outcome::Relayed, Outcome::Refused, Outcome::NextHopFailed] {
            self.end_to_end[o as usize].encode(
                &mut e,
                "smimegw_message_duration_seconds",
                &[("outcome", o.as_str())],
            );
        }
        e.family(
            "smimegw_tls_handshake_failures_total",
            Kind::Counter,
            "STARTTLS handshakes that failed on the SMTP listener.",
        );
        e.sample(
            "smimegw_tls_handshake_failures_total",
            &[],
            self.tls_failures.load(Ordering::Relaxed) as f64,
        );
        e.family(
            "smimegw_harvest_failures_total",
            Kind::Counter,
            "Certificates from valid signatures that could not be stored (the message was delivered anyway).",
        );
        e.sample(
            "smimegw_harvest_failures_total",
            &[],
            snapshot.harvest_failures as f64,
        );
        e.family(
            "smimegw_revocation_fetches_total",
            Kind::Counter,
            "Revocation data fetched over HTTP, by kind (crl, ocsp) and outcome (ok, failed).",
        );
        for (kind, outcome, n) in &snapshot.revocation_fetches {
            e.sample(
                "smimegw_revocation_fetches_total",
                &[("kind", kind), ("outcome", outcome)],
                *n as f64,
            );
        }
        e.family(
            "smimegw_revocation_status_total",
            Kind::Counter,
            "Revocation status of validated certificate paths (signers and recipients): checked, revoked, unknown, disabled (fetch = false and no imported CRL).",
        );
        for (status, n) in &snapshot.revocation_status {
            e.sample(
                "smimegw_revocation_status_total",
                &[("status", status)],
                *n as f64,
            );
        }
        e.family(
            "smimegw_relay_connections_total",
            Kind::Counter,
            "Next-hop connection events: opened (new connection), reused (a transaction on a kept connection), found_closed (a kept connection the next hop had closed; the message went on a new one).",
        );
        for (event, n) in &snapshot.relay_connections {
            e.sample(
                "smimegw_relay_connections_total",
                &[("event", event)],
                *n as f64,
            );
        }
        e.family(
            "smimegw_relay_idle_connections",
            Kind::Gauge,
            "Connections to the next hop kept open for reuse right now (relay.idle_connections at most).",
        );
        e.sample(
            "smimegw_relay_idle_connections",
            &[],
            snapshot.relay_idle as f64,
        );
        directory_gauges(&mut e, snapshot);
        e.finish()
    }
}

/// What the rest of the gateway reports at one scrape: taken by `serve`, which holds the
/// gateway and the relay, and handed to [`Metrics::render`], so that metrics depend on nothing
/// along the message path.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Certificates from valid signatures that could not be stored.
    pub harvest_failures: u64,
    /// Revocation fetches by kind (crl, ocsp) and outcome (ok, failed).
    pub revocation_fetches: Vec<(&'static str, &'static str, u64)>,
    /// Revocation status of validated paths, by status.
    pub revocation_status: Vec<(&'static str, u64)>,
    /// Next-hop connection events, by event.
    pub relay_connections: Vec<(&'static str, u64)>,
    /// Next-hop connections kept open now.
    pub relay_idle: u64,
    /// Round trips to a database directory since start (`None` for the embedded store).
    pub directory_round_trips: Option<u64>,
    /// What the directory said, or why it could not be read.
    pub directory: Result<DirectoryGauges, String>,
}

/// The directory's gauges at one scrape.
#[derive(Clone, Debug, Default)]
pub struct DirectoryGauges {
    /// The time the expiries are measured from (seconds since the epoch).
    pub now: i64,
    /// Each active user's current certificates: address, role, notAfter.
    pub certificates: Vec<(String, String, i64)>,
    /// Our CA's notAfter.
    pub ca_not_after: i64,
    /// Harvested correspondents' certificates.
    pub harvested: usize,
}

fn directory_gauges(e: &mut Encoder, snapshot: &Snapshot) {
    if let Some(n) = snapshot.directory_round_trips {
        e.family(
            "smimegw_directory_round_trips_total",
            Kind::Counter,
            "Round trips to the PostgreSQL directory since start (statements; reads on the message path are answered from the node's cache while the fleet's generation holds), counted before this scrape's own.",
        );
        e.sample("smimegw_directory_round_trips_total", &[], n as f64);
    }
    e.family(
        "smimegw_directory_up",
        Kind::Gauge,
        "1 when the directory answered this scrape, 0 when it could not be read (see /healthz for why).",
    );
    let d = match &snapshot.directory {
        Ok(d) => {
            e.sample("smimegw_directory_up", &[], 1.0);
            d
        }
        Err(why) => {
            tracing::warn!(error = %why, "metrics: directory unavailable");
            e.sample("smimegw_directory_up", &[], 0.0);
            return;
        }
    };
    e.family(
        "smimegw_certificate_expiry_seconds",
        Kind::Gauge,
        "Seconds until each active user's current certificate expires (negative: expired), by user and role.",
    );
    for (user, role, not_after) in &d.certificates {
        e.sample(
            "smimegw_certificate_expiry_seconds",
            &[("user", user), ("role", role)],
            (not_after - d.now) as f64,
        );
    }
    e.family(
        "smimegw_ca_expiry_seconds",
        Kind::Gauge,
        "Seconds until our CA certificate expires.",
    );
    e.sample(
        "smimegw_ca_expiry_seconds",
        &[],
        (d.ca_not_after - d.now) as f64,
    );
    e.family(
        "smimegw_harvested_certificates",
        Kind::Gauge,
        "External correspondents' certificates harvested from valid signed mail.",
    );
    e.sample("smimegw_harvested_certificates", &[], d.harvested as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_matches() {
        let h = Histogram::new(&[0.01, 0.1]);
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_millis(50));
        h.observe(Duration::from_secs(3));
        let mut e = Encoder::default();
        h.encode(&mut e, "x", &[("outcome", "relayed")]);
        let t = e.finish();
        assert!(
            t.contains("x_bucket{outcome=\"relayed\",le=\"0.01\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("x_bucket{outcome=\"relayed\",le=\"0.1\"} 3\n"),
            "{t}"
        );
        assert!(
            t.contains("x_bucket{outcome=\"relayed\",le=\"+Inf\"} 4\n"),
            "{t}"
        );
        assert!(t.contains("x_count{outcome=\"relayed\"} 4\n"), "{t}");
        assert!(t.contains("x_sum{outcome=\"relayed\"} 3.105\n"), "{t}");
        assert_eq!(h.count(), 4);
    }

    #[test]
    fn verdicts_collapse_to_result_words() {
        assert_eq!(verdict_label("pass"), "pass");
        assert_eq!(verdict_label("pass; inner none"), "pass");
        assert_eq!(verdict_label("fail (bad-signature,pass)"), "fail");
        assert_eq!(verdict_label("-"), "-");
        assert_eq!(verdict_label("weird"), "other");
    }
}
