//! Why the gateway will not take a message or a recipient: reasons, not SMTP numbers. The SMTP
//! layer (`smtp::reply`) turns each into the reply the sending MTA hears.

use std::fmt;

/// A refusal, with what the sender needs to know to act on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Policy requires encryption to these recipients, and no valid certificate is known for
    /// them (permanent until someone imports one).
    NoCertificate {
        /// The recipients without a certificate.
        recipients: Vec<String>,
    },
    /// The message is not From the envelope sender, and `policy.from_mismatch = "refuse"`.
    FromMismatch {
        /// What is wrong with the From field.
        why: String,
        /// The envelope sender.
        sender: String,
    },
    /// Policy requires signed mail and the sender is not enrolled.
    NotEnrolled {
        /// The envelope sender.
        sender: String,
    },
    /// Signing failed for a reason that may pass (a key that could not be used just now).
    CannotSign {
        /// The signer.
        sender: String,
        /// Why.
        why: String,
    },
    /// Encryption failed for a reason that may pass.
    CannotEncrypt {
        /// Why.
        why: String,
    },
    /// The message must be signed or encrypted, and its MIME structure cannot be processed
    /// (or exceeds `[limits]`): the same bytes will fail the same way.
    Unprocessable {
        /// Why.
        why: String,
    },
    /// The message's time budget is spent, or the system could not give randomness: a busy
    /// or troubled machine, worth a retry.
    Busy {
        /// Why.
        why: String,
    },
    /// The certificate directory cannot be read (a lost disk or database): never turned into
    /// "no certificate", which would send mail unprotected.
    DirectoryUnavailable,
}

impl Refusal {
    /// Whether the sender should try again later (a 4xx), rather than give up (a 5xx).
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            Refusal::CannotSign { .. }
                | Refusal::CannotEncrypt { .. }
                | Refusal::Busy { .. }
                | Refusal::DirectoryUnavailable
        )
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoCertificate { recipients } => write!(
                f,
                "encryption is required for {} but no valid certificate is known; ask them to send you a signed message first, or import their certificate",
                recipients.join(", ")
            ),
            Refusal::FromMismatch { why, sender } => write!(
                f,
                "{why}; the gateway signs only when From: is the envelope sender <{sender}> (policy.from_mismatch = \"refuse\")"
            ),
            Refusal::NotEnrolled { sender } => write!(
                f,
                "{sender} is not enrolled for S/MIME here and policy requires signed mail; ask the administrator to run `smimegw user enroll {sender}`"
            ),
            Refusal::CannotSign { sender, why } => write!(f, "cannot sign as {sender}: {why}"),
            Refusal::CannotEncrypt { why } => write!(f, "cannot encrypt: {why}"),
            Refusal::Unprocessable { why } => write!(
                f,
                "this message must be signed or encrypted but its MIME structure cannot be processed: {why}"
            ),
            Refusal::Busy { why } => f.write_str(why),
            Refusal::DirectoryUnavailable => {
                f.write_str("the certificate directory is unavailable")
            }
        }
    }
}
