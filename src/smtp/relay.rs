//! Relay to the next hop (lettre over tokio): the processed bytes go out raw, with the original
//! envelope sender and the recipients of one treatment group.
//!
//! The outcome maps onto what the MTA needs to hear (DESIGN.md, "no queue, no loss"): the next
//! hop's 250 becomes our 250; anything temporary, unreachable or unclear becomes 4xx so the MTA
//! keeps the message and retries; only the next hop's own 5xx becomes 5xx, with its text.

use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncTransport, Tokio1Executor};

use crate::config::{RelayConfig, StartTls};

/// The outcome of relaying one copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayOutcome {
    /// The next hop accepted it.
    Accepted,
    /// Try again later (4xx to the MTA).
    Temporary(String),
    /// The next hop refused it for good (5xx to the MTA, with its text).
    Permanent(String),
}

/// A configured relay.
#[derive(Clone)]
pub struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    next_hop: String,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Relay({})", self.next_hop)
    }
}

/// Why the relay could not be configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// `relay.next_hop` is not host:port.
    #[error("relay.next_hop = \"{0}\": expected host:port, e.g. \"127.0.0.1:10026\"")]
    BadNextHop(String),
    /// TLS parameters could not be built.
    #[error("relay TLS for {host}: {reason}")]
    Tls {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
}

impl Relay {
    /// Builds the relay from `[relay]`.
    pub fn new(
        config: &RelayConfig,
        helo_name: &str,
        timeout: Duration,
    ) -> Result<Self, RelayError> {
        let (host, port) = config
            .next_hop
            .rsplit_once(':')
            .and_then(|(h, p)| {
                Some((
                    h.trim_matches(|c| c == '[' || c == ']'),
                    p.parse::<u16>().ok()?,
                ))
            })
            .ok_or_else(|| RelayError::BadNextHop(config.next_hop.clone()))?;
        let tls = match config.starttls {
            StartTls::Off => Tls::None,
            mode => {
                let params = TlsParameters::new(host.to_string()).map_err(|e| RelayError::Tls {
                    host: host.to_string(),
                    reason: e.to_string(),
                })?;
                if mode == StartTls::Required {
                    Tls::Required(params)
                } else {
                    Tls::Opportunistic(params)
                }
            }
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(timeout))
            .hello_name(lettre::transport::smtp::extension::ClientId::Domain(
                helo_name.to_string(),
            ))
            .build();
        Ok(Self {
            transport,
            next_hop: config.next_hop.clone(),
        })
    }

    /// Sends one copy. Never panics on bad addresses: an address lettre cannot represent is a
    /// permanent failure naming it.
    pub async fn send(&self, mail_from: &str, rcpt_to: &[String], message: &[u8]) -> RelayOutcome {
        let from = if mail_from.is_empty() {
            None
        } else {
            match mail_from.parse::<Address>() {
                Ok(a) => Some(a),
                Err(e) => return RelayOutcome::Permanent(format!("sender <{mail_from}>: {e}")),
            }
        };
        let mut to = Vec::new();
        for r in rcpt_to {
            match r.parse::<Address>() {
                Ok(a) => to.push(a),
                Err(e) => return RelayOutcome::Permanent(format!("recipient <{r}>: {e}")),
            }
        }
        let envelope = match Envelope::new(from, to) {
            Ok(e) => e,
            Err(e) => return RelayOutcome::Permanent(format!("envelope: {e}")),
        };
        match self.transport.send_raw(&envelope, message).await {
            Ok(_) => RelayOutcome::Accepted,
            Err(e) if e.is_permanent() => {
                RelayOutcome::Permanent(format!("next hop {}: {e}", self.next_hop))
            }
            Err(e) => RelayOutcome::Temporary(format!("next hop {}: {e}", self.next_hop)),
        }
    }
}
