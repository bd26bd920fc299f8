//! Who gets what treatment: direction per recipient, and the signing and encryption policy
//! inherited global -> domain -> user.

use crate::config::{CipherChoice, Config, EncryptMode, PolicyRule, SignatureForm};

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

/// The direction of one recipient (RFC 5321 envelope addresses).
pub fn direction(config: &Config, sender: &str, recipient: &str) -> Direction {
    match (config.is_internal(sender), config.is_internal(recipient)) {
        (true, false) => Direction::Outbound,
        (false, true) => Direction::Inbound,
        (true, true) => Direction::Internal,
        (false, false) => Direction::Transit,
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
pub fn treatment(config: &Config, sender: &str, recipient: &str) -> Treatment {
    let direction = direction(config, sender, recipient);
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
        let t = treatment(&c, "a@acme.test", "b@other.test");
        assert_eq!(t.direction, Direction::Outbound);
        assert!(t.sign);
        assert_eq!(t.encrypt, EncryptModeKey::Opportunistic);
        assert_eq!(
            treatment(&c, "a@acme.test", "b@partner.test").encrypt,
            EncryptModeKey::Required
        );
        assert!(!treatment(&c, "ceo@acme.test", "b@partner.test").sign);
        let i = treatment(&c, "a@acme.test", "b@acme.test");
        assert_eq!(
            (i.direction, i.sign, i.encrypt),
            (Direction::Internal, true, EncryptModeKey::Never)
        );
        assert_eq!(
            treatment(&c, "x@other.test", "b@acme.test").direction,
            Direction::Inbound
        );
        assert_eq!(
            treatment(&c, "x@other.test", "y@else.test").direction,
            Direction::Transit
        );
    }
}
