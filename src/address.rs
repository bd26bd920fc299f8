//! The author of a message, as RFC 5322 section 3.6.2 defines it: exactly one `From:` field
//! holding a mailbox-list. The gateway trusts a signature for a message only when that list is
//! exactly one mailbox whose address the signer's certificate names (RFC 8550 section 3), and the
//! signing identity of outbound mail is that one mailbox too.
//!
//! The field value is read with mail-parser, a full RFC 5322 / RFC 2047 parser: comments
//! (`a@x.test (Alice)`), quoted local parts and display names (`"Doe, J." <j@x.test>`), groups
//! (`team: a@x.test, b@x.test;`) and encoded words in display names all come out as the
//! mailboxes a mail client shows. A hand-written "last `<...>`" heuristic reads
//! `"<ceo@acme.test>" <eve@evil.test>` as the CEO; this module does not.
//!
//! The fields are counted with [`crate::mime::parse_entity`], the header split every other step of
//! the gateway uses, and by mail-parser; when the two disagree the field is [`FromField::Unparsable`]
//! rather than whichever count suits an attacker.

use mail_parser::{Address, HeaderName, MessageParser};

use crate::mime::parse_entity;

/// The From field(s) of a message header, as RFC 5322 3.6.2 sees them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FromField {
    /// Exactly one field with exactly one mailbox: its addr-spec, lower-cased.
    One(String),
    /// No From field (RFC 5322 section 3.6 requires one).
    Missing,
    /// This many From fields (RFC 5322 section 3.6 allows one).
    Several(usize),
    /// One field, but not one mailbox: this many mailboxes (groups count their members; a group
    /// is never a mailbox, even with one member, since RFC 5322 has no group in `From:`).
    NotOneMailbox(usize),
    /// One field whose value is no mailbox-list (no addr-spec, or the parsers disagree).
    Unparsable,
}

impl FromField {
    /// The single mailbox's address, if there is one.
    pub fn address(&self) -> Option<&str> {
        match self {
            Self::One(a) => Some(a),
            _ => None,
        }
    }

    /// A short stable code for logs and result headers.
    pub fn code(&self) -> &'static str {
        match self {
            Self::One(_) => "from-ok",
            Self::Missing => "from-missing",
            Self::Several(_) => "from-several",
            Self::NotOneMailbox(_) => "from-not-one-mailbox",
            Self::Unparsable => "from-unparsable",
        }
    }
}

impl std::fmt::Display for FromField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::One(a) => write!(f, "From {a}"),
            Self::Missing => f.write_str("the message has no From field"),
            Self::Several(n) => write!(f, "the message has {n} From fields, not one"),
            Self::NotOneMailbox(n) => {
                write!(
                    f,
                    "the From field holds {n} mailbox(es) or a group, not one mailbox"
                )
            }
            Self::Unparsable => f.write_str("the From field is not a valid mailbox"),
        }
    }
}

/// The From field(s) of `raw_message` (the whole message, or just its header).
pub fn from_field(raw_message: &[u8]) -> FromField {
    let entity = parse_entity(raw_message);
    match entity.headers.iter().filter(|h| h.is("From")).count() {
        0 => return FromField::Missing,
        1 => {}
        n => return FromField::Several(n),
    }
    // The header alone: the body is not needed, and mail-parser must see the same header
    // that `parse_entity` did.
    let header_len: usize = entity.headers.iter().map(|h| h.raw.len()).sum();
    let mut header = raw_message[..header_len.min(raw_message.len())].to_vec();
    header.extend_from_slice(b"\r\n");
    let Some(parsed) = MessageParser::new().parse_headers(&header) else {
        return FromField::Unparsable;
    };
    let theirs: Vec<_> = parsed
        .headers()
        .iter()
        .filter(|h| h.name == HeaderName::From)
        .collect();
    if theirs.len() != 1 {
        return if theirs.len() > 1 {
            FromField::Several(theirs.len())
        } else {
            FromField::Unparsable
        };
    }
    match theirs[0].value.as_address() {
        Some(Address::List(list)) => match list.as_slice() {
            [one] => match one.address.as_deref().map(str::trim) {
                Some(a) if is_addr_spec(a) => FromField::One(a.to_ascii_lowercase()),
                _ => FromField::Unparsable,
            },
            [] => FromField::Unparsable,
            many => FromField::NotOneMailbox(many.len()),
        },
        Some(Address::Group(groups)) => {
            FromField::NotOneMailbox(groups.iter().map(|g| g.addresses.len()).sum())
        }
        None => FromField::Unparsable,
    }
}

/// Whether `a` looks like an addr-spec: one `@` with something on both sides, and nothing a
/// header or an address comparison should not carry (whitespace, controls, angle brackets).
fn is_addr_spec(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !a
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(header: &str) -> FromField {
        from_field(format!("{header}\r\nSubject: s\r\n\r\nbody\r\n").as_bytes())
    }

    #[test]
    fn one_mailbox_in_its_usual_spellings() {
        for h in [
            "From: alice@acme.test",
            "From: Alice <Alice@ACME.test>",
            "From: \"Doe, Alice\" <alice@acme.test>",
            "From: alice@acme.test (Alice in a comment)",
            "From: =?utf-8?q?Al=C3=AFce?= <alice@acme.test>",
            "From: Alice\r\n <alice@acme.test>",
            "from: <alice@acme.test>",
        ] {
            assert_eq!(from(h), FromField::One("alice@acme.test".into()), "{h}");
        }
    }

    /// The old heuristic took the last `<...>`, and read a quoted display name as the address.
    #[test]
    fn a_quoted_display_name_is_not_the_address() {
        assert_eq!(
            from("From: \"<ceo@acme.test>\" <eve@evil.test>"),
            FromField::One("eve@evil.test".into())
        );
        assert_eq!(
            from("From: eve@evil.test (<ceo@acme.test>)"),
            FromField::One("eve@evil.test".into())
        );
    }

    #[test]
    fn everything_but_one_mailbox_in_one_field() {
        assert_eq!(from("Subject: no from"), FromField::Missing);
        assert_eq!(
            from("From: a@acme.test\r\nFrom: b@evil.test"),
            FromField::Several(2)
        );
        assert_eq!(
            from("From: a@acme.test, b@evil.test"),
            FromField::NotOneMailbox(2)
        );
        assert_eq!(
            from("From: team: a@acme.test, b@evil.test;"),
            FromField::NotOneMailbox(2)
        );
        assert_eq!(
            from("From: team: a@acme.test;"),
            FromField::NotOneMailbox(1)
        );
        assert_eq!(from("From: undisclosed"), FromField::Unparsable);
        // RFC 2047 section 5: no encoded-word in an addr-spec; decoded, it must not become one.
        let encoded = from("From: =?utf-8?q?alice=40acme.test?=");
        assert_ne!(
            encoded,
            FromField::One("alice@acme.test".into()),
            "{encoded:?}"
        );
        let encoded = from("From: =?utf-8?q?alice=40acme.test?= <eve@evil.test>");
        assert_eq!(encoded, FromField::One("eve@evil.test".into()));
        assert_eq!(from("From:"), FromField::Unparsable);
    }
}
