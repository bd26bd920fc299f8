//! Who gets what treatment: direction per recipient, and the signing and encryption policy
//! inherited global -> domain -> user.

use crate::config::{CipherChoice, Config, EncryptMode, PolicyRule, SignatureForm};

/// Which listener a transaction came in on: the role decides what the gateway may do to it,
/// before any address is looked at. Mail from the world must never be signed (an outsider who
/// writes `MAIL FROM:<ceo@acme.test>` on port 25 must not get the CEO's signature over their
/// text), so only the submission listener, wired to the MTA services users authenticate to,
/// signs and encrypts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Listener {
    /// `[listen]`: mail from the world (the MTA's port-25 smtpd). Decrypted, verified and
    /// annotated for internal recipients, relayed unchanged otherwise; never signed or
    /// encrypted.
    Inbound,
    /// `[submission]`: mail users submitted (submission with SASL, pickup). Signed and
    /// encrypted by policy; never decrypted.
    Submission,
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Inbound => "inbound",
            Self::Submission => "submission",
        })
    }
}

/// Where a message goes, seen from our domains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Internal sender to an external recipient: sign and encrypt.
    Outbound,
    /// Anyone to an internal recipient from outside: decrypt and verify.
    Inbound,
    /// Internal sender to internal recipient: sign only unless policy says otherwise.
    Internal,
    /// External sender to external recipient: not ours to touch (relayed unchanged).
    Transit,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Outbound => "outbound",
            Self::Inbound => "inbound",
            Self::Internal => "internal",
            Self::Transit => "transit",
        })
    }
}

/// The resolved treatment of one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Treatment {
    /// Direction.
    pub direction: Direction,
    /// Sign (outbound and internal).
    pub sign: bool,
    /// Encrypt (outbound and internal).
    pub encrypt: EncryptModeKey,
    /// Signature form.
    pub signature: SignatureForm,
    /// Content cipher policy.
    pub cipher: CipherChoice,
}

/// [`EncryptMode`] with an order, so treatments can group recipients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EncryptModeKey {
    /// Never.
    Never,
    /// When every certificate is known.
    Opportunistic,
    /// Always, or refuse.
    Required,
}

impl From<EncryptMode> for EncryptModeKey {
    fn from(m: EncryptMode) -> Self {
        match m {
            EncryptMode::Never => Self::Never,
            EncryptMode::Opportunistic => Self::Opportunistic,
            EncryptMode::Required => Self::Required,
        }
    }
}

fn domain_of(addr: &str) -> String {
    addr.rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('.').to_ascii_lowercase())
        .unwrap_or_default()
}

/// The direction of one recipient (RFC 5321 envelope addresses), within what the listener's
/// role allows: the inbound listener only opens mail for internal recipients (whatever the
/// envelope sender claims), the submission listener only protects mail from internal senders
/// (and never opens any).
pub fn direction(config: &Config, listener: Listener, sender: &str, recipient: &str) -> Direction {
    match listener {
        Listener::Inbound if config.is_internal(recipient) => Direction::Inbound,
        Listener::Inbound => Direction::Transit,
        Listener::Submission => match (config.is_internal(sender), config.is_internal(recipient)) {
            (true, false) => Direction::Outbound,
            (true, true) => Direction::Internal,
            (false, _) => Direction::Transit,
        },
    }
}

struct Resolved {
    sign: bool,
    encrypt: EncryptMode,
    signature: SignatureForm,
    cipher: CipherChoice,
}

fn apply(rule: Option<&PolicyRule>, r: &mut Resolved) {
    if let Some(rule) = rule {
        let PolicyRule {
            sign,
            encrypt,
            signature,
            cipher,
        } = rule;
        if let Some(s) = sign {
            r.sign = *s;
        }
        if let Some(e) = encrypt {
            r.encrypt = *e;
        }
        if let Some(s) = signature {
            r.signature = *s;
        }
        if let Some(c) = cipher {
            r.cipher = *c;
        }
    }
}

/// The treatment of one recipient: global policy, then the recipient's domain, then the user
/// (the internal sender for outbound mail, and the recipient itself when it has a rule).
/// Internal mail defaults to sign only (`encrypt = never`) unless a rule says otherwise.
pub fn treatment(config: &Config, listener: Listener, sender: &str, recipient: &str) -> Treatment {
    let direction = direction(config, listener, sender, recipient);
    let p = &config.policy;
    let mut r = Resolved {
        sign: p.sign.unwrap_or(true),
        encrypt: match direction {
            Direction::Internal => EncryptMode::Never,
            _ => p.encrypt.unwrap_or(EncryptMode::Opportunistic),
        },
        signature: p.signature.unwrap_or(SignatureForm::Detached),
        cipher: p.cipher.unwrap_or(CipherChoice::Auto),
    };
    apply(p.domains.get(&domain_of(recipient)), &mut r);
    apply(p.users.get(&sender.to_ascii_lowercase()), &mut r);
    apply(p.users.get(&recipient.to_ascii_lowercase()), &mut r);
    match direction {
        Direction::Outbound | Direction::Internal => Treatment {
            direction,
            sign: r.sign,
            encrypt: r.encrypt.into(),
            signature: r.signature,
            cipher: r.cipher,
        },
        Direction::Inbound | Direction::Transit => Treatment {
            direction,
            sign: false,
            encrypt: EncryptModeKey::Never,
            signature: SignatureForm::Detached,
            cipher: CipherChoice::Auto,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(extra: &str) -> Config {
        Config::parse(
            &format!("data_dir = \"/x\"\ninternal_domains = [\"acme.test\"]\n{extra}"),
            Path::new("t.toml"),
            None,
        )
        .unwrap()
    }

    #[test]
    fn directions_and_inheritance() {
        let c = cfg(
            "[policy]\nencrypt = \"opportunistic\"\n[policy.domains.\"partner.test\"]\nencrypt = \"required\"\n[policy.users.\"ceo@acme.test\"]\nsign = false\n",
        );
        let sub = |from: &str, to: &str| treatment(&c, Listener::Submission, from, to);
        let t = sub("a@acme.test", "b@other.test");
        assert_eq!(t.direction, Direction::Outbound);
        assert!(t.sign);
        assert_eq!(t.encrypt, EncryptModeKey::Opportunistic);
        assert_eq!(
            sub("a@acme.test", "b@partner.test").encrypt,
            EncryptModeKey::Required
        );
        assert!(!sub("ceo@acme.test", "b@partner.test").sign);
        let i = sub("a@acme.test", "b@acme.test");
        assert_eq!(
            (i.direction, i.sign, i.encrypt),
            (Direction::Internal, true, EncryptModeKey::Never)
        );
        // Submission never opens mail: an external sender's mail is relayed as it is.
        assert_eq!(
            sub("x@other.test", "b@acme.test").direction,
            Direction::Transit
        );
        assert_eq!(
            sub("x@other.test", "y@else.test").direction,
            Direction::Transit
        );
    }

    /// The signing oracle of issue 11: on the inbound listener nothing is signed or encrypted,
    /// whatever internal address the envelope sender claims.
    #[test]
    fn the_inbound_listener_never_signs_whatever_the_sender() {
        let c = cfg("[policy]\nencrypt = \"required\"\nsign = true\n");
        for (from, to, direction) in [
            ("ceo@acme.test", "b@acme.test", Direction::Inbound),
            ("ceo@acme.test", "b@other.test", Direction::Transit),
            ("x@other.test", "b@acme.test", Direction::Inbound),
            ("x@other.test", "y@else.test", Direction::Transit),
        ] {
            let t = treatment(&c, Listener::Inbound, from, to);
            assert_eq!(t.direction, direction, "{from} -> {to}");
            assert!(!t.sign, "{from} -> {to}");
            assert_eq!(t.encrypt, EncryptModeKey::Never, "{from} -> {to}");
        }
    }
}
