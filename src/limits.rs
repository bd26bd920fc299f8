//! Bounds on the work one message may cause: how deep its MIME and S/MIME structure may go, how
//! many and how large its header fields may be, and how long its processing may take.
//!
//! The gateway sits on every message of a company and reads whatever the Internet sends, so each
//! parser that recurses or accumulates gets its bound from here instead of a global constant
//! (the constants remain, as the defaults). The values come from `[limits]` in the
//! configuration; [`Limits::default`] is what the offline commands use.
//!
//! What happens at a limit is decided by the caller, not here: inbound mail is delivered
//! unchanged with a result header naming the limit, outbound mail that must be protected is
//! refused with `554 5.6.0`, and a message over its time budget gets `451 4.3.0` (see
//! `gateway/` and `smtp/reply.rs`).

use std::time::{Duration, Instant};

/// Deepest MIME nesting (a leaf inside 32 nested multiparts). Real mail rarely goes past 5; S/MIME
/// adds at most two levels per layer.
pub const MAX_MIME_DEPTH: usize = 32;
/// Most header fields in one entity (the message header, or one part's header). Heavily relayed
/// mail carries a few hundred Received fields at most.
pub const MAX_HEADERS: usize = 1000;
/// Most MIME entities in one message: the message itself and every body part at any depth.
/// Bounds the work the per-entity limits would otherwise multiply (a message of many small
/// parts, each with its headers). Mail with a few hundred attachments stays well under it.
pub const MAX_PARTS: usize = 10_000;
/// Largest single header field in bytes, folded lines included (Postfix's `header_size_limit`).
pub const MAX_HEADER_SIZE: usize = 102_400;
/// Most S/MIME layers unwrapped (signed inside encrypted inside signed...).
pub const MAX_CMS_LAYERS: usize = 4;
/// Longest SMTP command line we accept by default, line end included (RFC 5321 section
/// 4.5.3.1.4 says 512; SMTPUTF8 and long parameters need more, and smtp-proto's own bound is
/// 4096).
pub const MAX_COMMAND_LINE: usize = 2048;
/// Seconds one message may spend being parsed, decrypted, verified, signed and encrypted. A
/// 50 MB message needs about a second of CPU in a release build; the rest is headroom for a
/// busy machine.
pub const MAX_PROCESSING_SECS: u64 = 120;

/// One limit that a message exceeded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// MIME nesting deeper than allowed.
    #[error("MIME nesting deeper than {limit} levels (limits.max_mime_depth)")]
    MimeDepth {
        /// The limit.
        limit: usize,
    },
    /// Too many header fields in one entity.
    #[error("{count} header fields in one entity, more than {limit} (limits.max_headers)")]
    Headers {
        /// How many there were (counted up to the first one over the limit).
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Too many MIME entities in the message.
    #[error("more than {limit} MIME parts in the message (limits.max_parts)")]
    Parts {
        /// The limit.
        limit: usize,
    },
    /// One header field too large.
    #[error("header field {name} of {size} bytes, more than {limit} (limits.max_header_size)")]
    HeaderSize {
        /// The field name (cut to 64 characters).
        name: String,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// More S/MIME layers than allowed.
    #[error("more than {limit} S/MIME layers (limits.max_cms_layers)")]
    CmsLayers {
        /// The limit.
        limit: usize,
    },
    /// The time budget of the message is spent.
    #[error("processing took longer than {secs} s (limits.max_processing_secs)")]
    Time {
        /// The budget in seconds.
        secs: u64,
    },
}

/// The bounds for one message. Cheap to copy; the deadline is set when processing starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest MIME nesting: entities below the top one, counted from 0.
    pub mime_depth: usize,
    /// Most header fields per entity.
    pub headers: usize,
    /// Most MIME entities in one message, the top one included.
    pub parts: usize,
    /// Largest header field in bytes.
    pub header_size: usize,
    /// Most S/MIME layers unwrapped.
    pub cms_layers: usize,
    /// The time budget in seconds (for messages).
    pub processing_secs: u64,
    /// When the budget runs out; `None` means no deadline (offline commands).
    pub deadline: Option<Instant>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            mime_depth: MAX_MIME_DEPTH,
            headers: MAX_HEADERS,
            parts: MAX_PARTS,
            header_size: MAX_HEADER_SIZE,
            cms_layers: MAX_CMS_LAYERS,
            processing_secs: MAX_PROCESSING_SECS,
            deadline: None,
        }
    }
}

impl Limits {
    /// The same bounds with the time budget starting at `start`.
    pub fn starting(self, start: Instant) -> Self {
        Self {
            deadline: start.checked_add(self.budget()),
            ..self
        }
    }

    /// The time budget as a duration.
    pub fn budget(&self) -> Duration {
        Duration::from_secs(self.processing_secs)
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// The cooperative check made at every MIME and CMS layer boundary: an error once the
    /// deadline has passed, so a worker stops within one layer of its budget.
    pub fn check_time(&self) -> Result<(), LimitError> {
        if self.expired() {
            return Err(LimitError::Time {
                secs: self.processing_secs,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn deadline_is_cooperative_and_optional() {
        let l = Limits::default();
        assert!(l.check_time().is_ok(), "no deadline without a start");
        let past = Instant::now()
            .checked_sub(Duration::from_secs(1000))
            .unwrap();
        let l = Limits {
            processing_secs: 1,
            ..Limits::default()
        }
        .starting(past);
        assert_eq!(l.check_time(), Err(LimitError::Time { secs: 1 }));
        let l = Limits::default().starting(Instant::now());
        assert!(l.check_time().is_ok());
    }

    /// A text leaf inside `depth` nested multipart/mixed entities (boundaries b0 innermost).
    pub(crate) fn nested(depth: usize) -> Vec<u8> {
        nested_with(depth, "leaf")
    }

    fn nested_with(depth: usize, leaf: &str) -> Vec<u8> {
        let mut body = format!("Content-Type: text/plain\r\n\r\n{leaf}\r\n").into_bytes();
        for i in 0..depth {
            let mut outer =
                format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                    .into_bytes();
            outer.extend_from_slice(&body);
            outer.extend_from_slice(format!("\r\n--b{i}--\r\n").as_bytes());
            body = outer;
        }
        body
    }

    #[test]
    fn the_mime_walk_enforces_each_limit() {
        use crate::mime::{MimeError, check_limits};
        let l = Limits {
            mime_depth: 3,
            headers: 5,
            header_size: 1000,
            ..Limits::default()
        };
        assert_eq!(check_limits(&nested(3), &l), Ok(()));
        assert_eq!(
            check_limits(&nested(4), &l),
            Err(MimeError::Limit(LimitError::MimeDepth { limit: 3 }))
        );
        let many = format!("{}\r\nbody", "X-A: 1\r\n".repeat(6));
        assert_eq!(
            check_limits(many.as_bytes(), &l),
            Err(MimeError::Limit(LimitError::Headers { count: 6, limit: 5 }))
        );
        let long = format!("Subject: {}\r\n\r\nbody", "s".repeat(1000));
        assert!(matches!(
            check_limits(long.as_bytes(), &l),
            Err(MimeError::Limit(LimitError::HeaderSize { size: 1011, .. }))
        ));
        // Parts are counted across the whole message, not per multipart: two multiparts of
        // three leaves each under the top one make 1 + 2 + 6 = 9 entities.
        let inner = |b: &str| {
            format!(
                "Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\n{}--{b}--\r\n",
                format!("--{b}\r\n\r\nleaf\r\n").repeat(3)
            )
        };
        let tree = format!(
            "Content-Type: multipart/mixed; boundary=\"top\"\r\n\r\n--top\r\n{}\r\n--top\r\n{}\r\n--top--\r\n",
            inner("x"),
            inner("y")
        );
        assert_eq!(
            check_limits(tree.as_bytes(), &Limits { parts: 9, ..l }),
            Ok(())
        );
        assert_eq!(
            check_limits(tree.as_bytes(), &Limits { parts: 8, ..l }),
            Err(MimeError::Limit(LimitError::Parts { limit: 8 }))
        );
        // Broken structure is not a limit: the walk leaves it to the passes that care.
        let broken = b"Content-Type: multipart/mixed\r\n\r\nno boundary";
        assert_eq!(check_limits(broken, &l), Ok(()));
        let late = Limits {
            processing_secs: 2,
            ..l
        }
        .starting(Instant::now().checked_sub(Duration::from_secs(5)).unwrap());
        assert_eq!(
            check_limits(&nested(1), &late),
            Err(MimeError::Limit(LimitError::Time { secs: 2 }))
        );
    }

    #[test]
    fn signing_stops_at_the_configured_depth_and_deadline() {
        use crate::pki::ca::Ca;
        use crate::pki::profile::{CertificateParams, simple_name};
        use crate::pki::{KeyAlgorithm, PrivateKey};
        use crate::smime::message::{SmimeError, sign_within};
        use crate::smime::signed::{SignOptions, Signer};
        let ca = Ca::new_root("Limits Root", KeyAlgorithm::P256, 30).unwrap();
        let key = PrivateKey::generate(KeyAlgorithm::P256).unwrap();
        let cert = ca
            .issue(
                &CertificateParams::smime_signing(
                    "a@acme.test",
                    simple_name("A", None).unwrap(),
                    10,
                ),
                &key.spki(),
            )
            .unwrap();
        let signers = [Signer {
            cert: &cert,
            key: &key,
            chain: &[],
            encryption_cert: None,
        }];
        // 8-bit content, so that the transport-safe pass has to descend.
        let mut msg = b"From: a@acme.test\r\n".to_vec();
        msg.extend_from_slice(&nested_with(5, "caf\u{e9}"));
        let opts = SignOptions::default();
        let shallow = Limits {
            mime_depth: 2,
            ..Limits::default()
        };
        assert!(matches!(
            sign_within(&msg, &signers, false, &opts, &shallow),
            Err(SmimeError::Mime(crate::mime::MimeError::Limit(
                LimitError::MimeDepth { limit: 2 }
            )))
        ));
        assert!(sign_within(&msg, &signers, false, &opts, &Limits::default()).is_ok());
        let late = Limits::default().starting(
            Instant::now()
                .checked_sub(Duration::from_secs(1000))
                .unwrap(),
        );
        assert!(matches!(
            sign_within(&msg, &signers, false, &opts, &late),
            Err(SmimeError::Mime(crate::mime::MimeError::Limit(
                LimitError::Time { .. }
            )))
        ));
    }
}
