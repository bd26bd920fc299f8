//! Why a path does not validate: the errors an administrator reads, ranked so that the path
//! that got furthest is the one reported.

use super::*;

/// Why a certificate is not trusted. Each variant names the certificate concerned by subject
/// and serial, so an administrator can find it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// A certificate of the path is past its notAfter.
    #[error("certificate {subject} (serial {serial}) expired on {}", format_time(*not_after))]
    Expired {
        /// Subject DN.
        subject: String,
        /// Serial, hex.
        serial: String,
        /// notAfter, Unix seconds.
        not_after: i64,
    },
    /// A certificate of the path is before its notBefore.
    #[error("certificate {subject} (serial {serial}) is not valid before {}", format_time(*not_before))]
    NotYetValid {
        /// Subject DN.
        subject: String,
        /// Serial, hex.
        serial: String,
        /// notBefore, Unix seconds.
        not_before: i64,
    },
    /// A CRL of the certificate's issuer lists it.
    #[error(
        "certificate {subject} (serial {serial}) was revoked on {}{}",
        format_time(*revoked_at),
        reason.map(|r| format!(" (reason: {r})")).unwrap_or_default()
    )]
    Revoked {
        /// Subject DN.
        subject: String,
        /// Serial, hex.
        serial: String,
        /// The reasonCode of the CRL entry.
        reason: Option<RevocationReason>,
        /// revocationDate, Unix seconds.
        revoked_at: i64,
    },
    /// The chain ends at a self-issued certificate that is not a trust anchor.
    #[error(
        "certificate chain ends at {subject} (serial {serial}), which is not a trusted root \
         (add it as a trusted root or cross-certify it)"
    )]
    UntrustedRoot {
        /// Subject DN of the untrusted root.
        subject: String,
        /// Serial, hex.
        serial: String,
    },
    /// No known or presented certificate is the issuer of this one.
    #[error(
        "issuer {issuer} of certificate {subject} (serial {serial}) is not among the trusted, \
         known or presented certificates"
    )]
    NoIssuer {
        /// Subject DN of the certificate whose issuer is missing.
        subject: String,
        /// Serial, hex.
        serial: String,
        /// The missing issuer's name.
        issuer: String,
    },
    /// keyUsage or extendedKeyUsage does not allow the requested use.
    #[error(
        "certificate {subject} (serial {serial}) may not be used for {usage}: it lacks {needed}"
    )]
    WrongUsage {
        /// Subject DN.
        subject: String,
        /// Serial, hex.
        serial: String,
        /// The use asked for.
        usage: Usage,
        /// What the certificate would need.
        needed: String,
    },
    /// A name of the certificate is outside a CA's name constraints.
    #[error(
        "certificate {subject} (serial {serial}): {email} {detail}, as required by the name \
         constraints of {constraint_from}"
    )]
    NameConstraintViolated {
        /// Subject DN of the constrained certificate.
        subject: String,
        /// Serial, hex.
        serial: String,
        /// The offending name (`email:...` for addresses).
        email: String,
        /// The CA certificate whose constraints it violates: subject, serial and (for a
        /// cross-certificate, whose subject is the foreign root's) its issuer.
        constraint_from: String,
        /// The rule, in words (`is outside the permitted rfc822Name subtrees (...)`).
        detail: String,
    },
    /// The issuer's signature does not verify.
    #[error(
        "certificate {subject} (serial {serial}): the signature does not verify with the key of \
         its issuer {issuer}"
    )]
    BadSignature {
        /// Subject DN.
        subject: String,
        /// Serial, hex.
        serial: String,
        /// Subject DN of the issuer tried.
        issuer: String,
    },
    /// The leaf is not for the address asked about.
    #[error(
        "certificate {subject} (serial {serial}) is for {}, not {email}",
        if cert_addresses.is_empty() { "no e-mail address".to_string() } else { cert_addresses.join(", ") }
    )]
    AddressMismatch {
        /// The address asked about.
        email: String,
        /// The certificate's addresses.
        cert_addresses: Vec<String>,
        /// Subject DN.
        subject: String,
        /// Serial, hex.
        serial: String,
    },
    /// A CA's pathLenConstraint is exceeded.
    #[error(
        "CA certificate {ca_subject} (serial {ca_serial}) allows {max} intermediate CA \
         certificate(s) below it, the chain has {found}"
    )]
    PathLenExceeded {
        /// Subject DN of the CA.
        ca_subject: String,
        /// Serial, hex.
        ca_serial: String,
        /// Its pathLenConstraint.
        max: u8,
        /// Intermediates found below it.
        found: usize,
    },
    /// A certificate that issued another is not allowed to.
    #[error(
        "certificate {subject} (serial {serial}) is not a CA but issued a certificate: {reason}"
    )]
    NotACa {
        /// Subject DN.
        subject: String,
        /// Serial, hex.
        serial: String,
        /// basicConstraints or keyUsage, in words.
        reason: String,
    },
    /// The certificate cannot be processed safely.
    #[error("certificate {subject} (serial {serial}) is malformed: {reason}")]
    Malformed {
        /// Subject DN.
        subject: String,
        /// Serial, hex.
        serial: String,
        /// What is wrong.
        reason: String,
    },
    /// The leaf is for an internal address and the path ends at a bundled root that may not
    /// vouch for those.
    #[error(
        "certificate {subject} (serial {serial}) is for {email}, an internal address; only our \
         CA (or a root imported with --internal-too) vouches for it, not {anchor}"
    )]
    InternalAddress {
        /// Subject DN.
        subject: String,
        /// Serial, hex.
        serial: String,
        /// The internal address.
        email: String,
        /// Label of the bundled root the path ends at.
        anchor: String,
    },
    /// The signature algorithm or key is one we do not accept.
    #[error("certificate {subject} (serial {serial}): {reason}")]
    UnsupportedAlgorithm {
        /// Subject DN.
        subject: String,
        /// Serial, hex.
        serial: String,
        /// Which algorithm, in words.
        reason: String,
    },
}

impl PathError {
    /// A short stable code for machine-readable output and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not-yet-valid",
            Self::Revoked { .. } => "revoked",
            Self::UntrustedRoot { .. } => "untrusted",
            Self::NoIssuer { .. } => "no-issuer",
            Self::WrongUsage { .. } => "wrong-usage",
            Self::NameConstraintViolated { .. } => "name-constraints",
            Self::BadSignature { .. } => "bad-signature",
            Self::AddressMismatch { .. } => "address-mismatch",
            Self::PathLenExceeded { .. } => "pathlen",
            Self::NotACa { .. } => "not-ca",
            Self::Malformed { .. } => "malformed",
            Self::UnsupportedAlgorithm { .. } => "unsupported-algorithm",
            Self::InternalAddress { .. } => "internal-address",
        }
    }

    /// How far validation of a complete path got before this failure: among several candidate
    /// paths, the failure with the highest rank is the most useful one to report.
    pub(super) fn rank(&self) -> u8 {
        match self {
            Self::NoIssuer { .. } | Self::UntrustedRoot { .. } => 0,
            Self::Malformed { .. } => 1,
            Self::UnsupportedAlgorithm { .. } | Self::BadSignature { .. } => 2,
            Self::NotACa { .. } | Self::PathLenExceeded { .. } => 3,
            Self::NameConstraintViolated { .. } | Self::InternalAddress { .. } => 4,
            Self::Revoked { .. } => 5,
            Self::Expired { .. } | Self::NotYetValid { .. } => 6,
            Self::WrongUsage { .. } => 7,
            Self::AddressMismatch { .. } => 8,
        }
    }
}

/// Subject for messages: the DN, or the addresses when the DN is empty.
pub(super) fn who(c: &Cert) -> String {
    if c.subject().is_empty() {
        format!("<empty subject> ({})", c.email_addresses().join(", "))
    } else {
        c.subject_string()
    }
}

/// A CA certificate for messages: a cross-certificate carries the foreign root's subject, so
/// its issuer is what tells it apart from that root.
pub(super) fn describe_ca(c: &Cert) -> String {
    if c.is_self_issued() {
        format!("{} (serial {})", who(c), c.serial_hex())
    } else {
        format!(
            "{} (serial {}, issued by {})",
            who(c),
            c.serial_hex(),
            c.issuer_string()
        )
    }
}
