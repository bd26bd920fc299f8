//! Rate-limited logging of repeated errors: a peer failing TLS handshakes in a loop gets one
//! line, then one summary line per interval with the count, never a log flood.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Per-peer, per-message rate limiter for warnings.
pub struct RateLimitedLog {
    interval: Duration,
    what: &'static str,
    state: Mutex<HashMap<(IpAddr, String), (Instant, u64)>>,
}

impl RateLimitedLog {
    /// Logs at most one line per `interval` for each (peer, message) pair.
    pub fn new(what: &'static str, interval: Duration) -> Self {
        Self {
            interval,
            what,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Records an occurrence; returns whether a line was written (for tests).
    pub fn log(&self, peer: IpAddr, message: &str) -> bool {
        let now = Instant::now();
        let mut map = match self.state.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.len() > 10_000 {
            let interval = self.interval;
            map.retain(|_, (t, _)| now.duration_since(*t) < interval);
        }
        let entry = map
            .entry((peer, message.to_string()))
            .or_insert((now - self.interval * 2, 0));
        if now.duration_since(entry.0) >= self.interval {
            let suppressed = entry.1;
            entry.0 = now;
            entry.1 = 0;
            if suppressed > 0 {
                tracing::warn!(%peer, error = %message, suppressed, "{} (repeated {suppressed} more times in the last interval)", self.what);
            } else {
                tracing::warn!(%peer, error = %message, "{}", self.what);
            }
            true
        } else {
            entry.1 += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_suppressed_within_the_interval() {
        let l = RateLimitedLog::new("TLS handshake failed", Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(l.log(ip, "bad record"));
        for _ in 0..1000 {
            assert!(!l.log(ip, "bad record"));
        }
        assert!(l.log(ip, "another error"));
        assert!(l.log("127.0.0.2".parse().unwrap(), "bad record"));
    }
}
