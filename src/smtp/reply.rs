//! Every reply the gateway chooses (as opposed to the protocol's own answers in
//! `session.rs`): refusals from the gateway, what the next hop did, and the server's own
//! conditions. One place, so that each condition has one code, one enhanced status code
//! (RFC 3463) and one wording, and every temporary one tells the sender to try again later.

use crate::gateway::Refusal;

/// An SMTP reply: code, enhanced status code, text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The basic code (RFC 5321).
    pub code: u16,
    /// The enhanced status code (RFC 3463).
    pub enhanced: &'static str,
    /// The text, one line.
    pub text: String,
}

impl Reply {
    fn new(code: u16, enhanced: &'static str, text: impl Into<String>) -> Self {
        Self {
            code,
            enhanced,
            text: text.into(),
        }
    }

    /// A temporary failure: the text says to try again later.
    fn later(code: u16, enhanced: &'static str, why: impl std::fmt::Display) -> Self {
        Self::new(code, enhanced, format!("{why}; try again later"))
    }

    /// The reply to a gateway refusal. Policy refusals are 550 5.7.1 (delivery not
    /// authorised); a message that cannot be processed is 554 5.6.0 (media error); a busy
    /// machine or an unreadable directory 451 4.3.0; a key that cannot be used just now
    /// 451 4.7.0.
    pub fn refusal(r: &Refusal) -> Self {
        match r {
            Refusal::NoCertificate { .. }
            | Refusal::FromMismatch { .. }
            | Refusal::NotEnrolled { .. } => Self::new(550, "5.7.1", r.to_string()),
            Refusal::Unprocessable { .. } => Self::new(554, "5.6.0", r.to_string()),
            Refusal::CannotSign { .. } | Refusal::CannotEncrypt { .. } => {
                Self::later(451, "4.7.0", r)
            }
            Refusal::Busy { .. } | Refusal::DirectoryUnavailable => Self::later(451, "4.3.0", r),
        }
    }

    /// A refused recipient at RCPT time: for a missing certificate, only the address (the
    /// message-level hint about signed mail would repeat for every recipient).
    pub fn recipient_refusal(r: &Refusal) -> Self {
        match r {
            Refusal::NoCertificate { recipients } => Self::new(
                550,
                "5.7.1",
                format!(
                    "encryption is required for {} but no valid certificate is known",
                    recipients.join(", ")
                ),
            ),
            other => Self::refusal(other),
        }
    }

    /// Every copy went to the next hop.
    pub fn relayed(copies: usize) -> Self {
        Self::new(
            250,
            "2.0.0",
            format!(
                "ok: {copies} cop{} relayed",
                if copies == 1 { "y" } else { "ies" }
            ),
        )
    }

    /// The next hop deferred a copy.
    pub fn next_hop_deferred(why: impl std::fmt::Display) -> Self {
        Self::later(451, "4.4.1", why)
    }

    /// The next hop refused a copy for good; its reason is passed on.
    pub fn next_hop_refused(why: String) -> Self {
        Self::new(554, "5.0.0", why)
    }

    /// Processing failed inside the gateway (a worker that panicked, no processing slot).
    pub fn internal_error() -> Self {
        Self::later(451, "4.3.0", "internal error while processing")
    }

    /// Processing was abandoned at the time budget.
    pub fn abandoned(why: impl std::fmt::Display) -> Self {
        Self::later(451, "4.3.0", why)
    }

    /// More sessions than `max_sessions`: said at connect, then the connection closes.
    pub fn too_many_connections() -> Self {
        Self::later(421, "4.7.0", "too many connections")
    }

    /// A client outside `allowed_clients`: said at connect, then the connection closes (the
    /// gateway is never an open relay).
    pub fn client_not_allowed(ip: std::net::IpAddr) -> Self {
        Self::new(
            554,
            "5.7.1",
            format!("{ip} is not allowed to relay through this gateway"),
        )
    }

    /// The client stayed silent past the command or data timeout.
    pub fn idle_timeout() -> Self {
        Self::new(421, "4.4.2", "timeout, closing")
    }

    /// The gateway is stopping; the sender retries elsewhere or later.
    pub fn shutting_down() -> Self {
        Self::later(421, "4.3.2", "gateway shutting down")
    }

    /// The reply on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        super::session::reply(self.code, self.enhanced, &self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_code_and_temporary_ones_say_try_again_later() {
        let cases = [
            Refusal::NoCertificate {
                recipients: vec!["a@x.test".into()],
            },
            Refusal::FromMismatch {
                why: "two From fields".into(),
                sender: "a@x.test".into(),
            },
            Refusal::NotEnrolled {
                sender: "a@x.test".into(),
            },
            Refusal::CannotSign {
                sender: "a@x.test".into(),
                why: "key".into(),
            },
            Refusal::CannotEncrypt { why: "rng".into() },
            Refusal::Unprocessable {
                why: "depth".into(),
            },
            Refusal::Busy {
                why: "time budget".into(),
            },
            Refusal::DirectoryUnavailable,
        ];
        for r in &cases {
            let reply = Reply::refusal(r);
            assert_eq!(
                r.is_temporary(),
                reply.code / 100 == 4,
                "{r:?} -> {reply:?}"
            );
            assert!(reply.enhanced.starts_with(&(reply.code / 100).to_string()));
        }
        assert_eq!(
            Reply::refusal(&Refusal::DirectoryUnavailable).text,
            "the certificate directory is unavailable; try again later"
        );
        assert_eq!(
            Reply::recipient_refusal(&cases[0]).text,
            "encryption is required for a@x.test but no valid certificate is known"
        );
    }
}
