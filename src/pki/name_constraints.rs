//! Name constraints (RFC 5280 section 4.2.1.10): which names a CA may vouch for.
//!
//! They matter here because a cross-certificate for a partner's root is normally restricted to
//! the partner's mail domain: without this check the partner CA could issue a certificate for
//! any address, ours included.
//!
//! Implemented forms: rfc822Name (the one S/MIME needs), directoryName, dNSName and iPAddress.
//! A constraint of any other form only fails the check when the certificate actually carries a
//! name of that form (we cannot say whether it complies, so we do not vouch for it).

use std::fmt;

use x509_cert::ext::pkix::NameConstraints;
use x509_cert::ext::pkix::constraints::name::GeneralSubtree;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

use crate::oid;
use crate::pki::cert::{Cert, CertError, same_attribute};

/// One name a certificate claims, in the form constraints are matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertName {
    /// rfc822Name of the subjectAltName, or an emailAddress attribute of the subject DN.
    Email(String),
    /// dNSName.
    Dns(String),
    /// iPAddress: 4 or 16 octets.
    Ip(Vec<u8>),
    /// The subject DN (when not empty) or a directoryName of the subjectAltName.
    Directory(Name),
    /// A form we do not match: (form name, printable value).
    Other(&'static str, String),
}

impl fmt::Display for CertName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Email(s) => write!(f, "email:{s}"),
            Self::Dns(s) => write!(f, "DNS:{s}"),
            Self::Ip(b) => write!(f, "IP:{}", ip_text(b)),
            Self::Directory(n) => write!(f, "DirName:{n}"),
            Self::Other(form, v) => write!(f, "{form}:{v}"),
        }
    }
}

/// Why a certificate's names are outside a CA's constraints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// The CA lists permitted subtrees of this name's form and none contains it.
    #[error("{name} is outside every permitted {form} subtree ({permitted})")]
    NotPermitted {
        /// The offending name, e.g. `email:eve@evil.test`.
        name: String,
        /// The name form, e.g. `rfc822Name`.
        form: &'static str,
        /// The permitted subtrees of that form, comma-separated.
        permitted: String,
    },
    /// The name lies in an excluded subtree.
    #[error("{name} is in the excluded subtree {subtree}")]
    Excluded {
        /// The offending name.
        name: String,
        /// The excluded subtree that contains it.
        subtree: String,
    },
    /// The CA constrains a name form we do not evaluate, and the certificate has such a name.
    #[error("{name} cannot be checked against the CA's {form} constraints (not supported)")]
    Unsupported {
        /// The name we cannot judge.
        name: String,
        /// Its form.
        form: &'static str,
    },
    /// A subtree that cannot be applied: minimum/maximum, which RFC 5280 section 4.2.1.10
    /// forbids, or a base that is not a well-formed name of its form.
    #[error("name constraint {subtree} {reason}")]
    BadSubtree {
        /// The subtree.
        subtree: String,
        /// What is wrong with it, in words.
        reason: &'static str,
    },
    /// The certificate's name is not a well-formed name of a constrained form (an address
    /// with two `@` or an empty local part or domain, a dNSName with an empty label...): it
    /// can neither satisfy a permitted subtree nor be shown to lie outside an excluded one.
    #[error("{name} is not a well-formed {form}, so it cannot satisfy the CA's {form} constraints")]
    MalformedName {
        /// The offending name.
        name: String,
        /// Its form.
        form: &'static str,
    },
}

impl Violation {
    /// The broken rule without the name, e.g. `is outside the permitted rfc822Name subtrees
    /// (email:partner.test)`, for messages that name the certificate themselves.
    pub fn rule(&self) -> String {
        match self {
            Self::NotPermitted {
                form, permitted, ..
            } => format!("is outside the permitted {form} subtrees ({permitted})"),
            Self::Excluded { subtree, .. } => format!("is in the excluded subtree {subtree}"),
            Self::Unsupported { form, .. } => {
                format!("cannot be checked against {form} constraints (not supported)")
            }
            Self::BadSubtree { subtree, reason } => {
                format!("meets a name constraint {subtree} that {reason}")
            }
            Self::MalformedName { form, .. } => {
                format!("is not a well-formed {form}, so it cannot satisfy {form} constraints")
            }
        }
    }

    /// The name the violation is about (`its names` for [`Violation::BadSubtree`], which
    /// concerns the constraint rather than one name).
    pub fn name(&self) -> &str {
        match self {
            Self::NotPermitted { name, .. }
            | Self::Excluded { name, .. }
            | Self::Unsupported { name, .. }
            | Self::MalformedName { name, .. } => name,
            Self::BadSubtree { .. } => "its names",
        }
    }
}

/// Every name of `cert` that constraints apply to (RFC 5280 section 4.2.1.10): the subject DN
/// when not empty, each subjectAltName entry, and each emailAddress attribute of the subject.
///
/// The emailAddress attributes are checked even when a subjectAltName is present (RFC 5280
/// only requires it without one), as OpenSSL does: a legacy mail client may still read them.
pub fn names_of(cert: &Cert) -> Result<Vec<CertName>, CertError> {
    let mut out = Vec::new();
    if !cert.subject().is_empty() {
        out.push(CertName::Directory(cert.subject().clone()));
    }
    for atv in cert.subject().iter() {
        if atv.oid == oid::AT_EMAIL_ADDRESS {
            // Any string type: a constraint must not be dodged by an unusual encoding.
            let text = String::from_utf8_lossy(atv.value.value()).into_owned();
            out.push(CertName::Email(text));
        }
    }
    for g in cert.subject_alt_name()?.unwrap_or_default() {
        out.push(match g {
            GeneralName::Rfc822Name(s) => CertName::Email(s.as_str().to_string()),
            GeneralName::DnsName(s) => CertName::Dns(s.as_str().to_string()),
            GeneralName::IpAddress(o) => CertName::Ip(o.as_bytes().to_vec()),
            GeneralName::DirectoryName(n) => CertName::Directory(n),
            GeneralName::UniformResourceIdentifier(s) => {
                CertName::Other("uniformResourceIdentifier", s.as_str().to_string())
            }
            GeneralName::OtherName(o) if o.type_id == oid::ON_SMTP_UTF8_MAILBOX => {
                // RFC 9598 section 6: rfc822Name constraints govern SmtpUTF8Mailbox too; we do
                // not compare internationalised addresses, so treat it as an e-mail name that
                // can never satisfy a permitted subtree (see `matches`).
                CertName::Other("SmtpUTF8Mailbox", hex::encode(o.value.value()))
            }
            GeneralName::OtherName(o) => CertName::Other("otherName", o.type_id.to_string()),
            GeneralName::EdiPartyName(_) => CertName::Other("ediPartyName", String::new()),
            GeneralName::RegisteredId(id) => CertName::Other("registeredID", id.to_string()),
        });
    }
    Ok(out)
}

/// Checks every name of `cert` against one CA's name constraints.
pub fn check(constraints: &NameConstraints, cert: &Cert) -> Result<(), Violation> {
    let names = names_of(cert).map_err(|e| Violation::Unsupported {
        name: e.to_string(),
        form: "subjectAltName",
    })?;
    check_names(constraints, &names)
}

/// Checks names against one CA's constraints: no name may fall in an excluded subtree, and
/// every name of a form for which permitted subtrees exist must fall in one of them.
pub fn check_names(constraints: &NameConstraints, names: &[CertName]) -> Result<(), Violation> {
    let permitted = constraints
        .permitted_subtrees
        .as_deref()
        .unwrap_or_default();
    let excluded = constraints.excluded_subtrees.as_deref().unwrap_or_default();
    for st in permitted.iter().chain(excluded) {
        // RFC 5280: minimum MUST be zero and maximum MUST be absent.
        if st.minimum != 0 || st.maximum.is_some() {
            return Err(Violation::BadSubtree {
                subtree: subtree_text(&st.base),
                reason: "uses minimum/maximum, which RFC 5280 forbids",
            });
        }
    }
    for name in names {
        for st in excluded {
            match matches(&st.base, name) {
                Match::Yes => {
                    return Err(Violation::Excluded {
                        name: name.to_string(),
                        subtree: subtree_text(&st.base),
                    });
                }
                Match::Unknown(form) => {
                    return Err(Violation::Unsupported {
                        name: name.to_string(),
                        form,
                    });
                }
                Match::MalformedName(form) => {
                    return Err(Violation::MalformedName {
                        name: name.to_string(),
                        form,
                    });
                }
                Match::MalformedSubtree => return Err(malformed_subtree(&st.base)),
                Match::No | Match::OtherForm => {}
            }
        }
        let same_form: Vec<&GeneralSubtree> = permitted
            .iter()
            .filter(|st| !matches!(matches(&st.base, name), Match::OtherForm))
            .collect();
        if same_form.is_empty() {
            continue;
        }
        let mut unknown = None;
        let mut ok = false;
        for st in &same_form {
            match matches(&st.base, name) {
                Match::Yes => ok = true,
                Match::Unknown(form) => unknown = Some(form),
                Match::MalformedName(form) => {
                    return Err(Violation::MalformedName {
                        name: name.to_string(),
                        form,
                    });
                }
                Match::MalformedSubtree => return Err(malformed_subtree(&st.base)),
                Match::No | Match::OtherForm => {}
            }
        }
        if ok {
            continue;
        }
        if let Some(form) = unknown {
            return Err(Violation::Unsupported {
                name: name.to_string(),
                form,
            });
        }
        return Err(Violation::NotPermitted {
            name: name.to_string(),
            form: form_of(&same_form[0].base),
            permitted: same_form
                .iter()
                .map(|st| subtree_text(&st.base))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(())
}

/// Result of matching one name against one subtree.
enum Match {
    /// Same form, inside the subtree.
    Yes,
    /// Same form, outside.
    No,
    /// The subtree constrains another form; it says nothing about this name.
    OtherForm,
    /// The subtree concerns this name, but we cannot evaluate it (fail closed).
    Unknown(&'static str),
    /// The name is not well-formed in the subtree's form (fail closed).
    MalformedName(&'static str),
    /// The subtree's base is not a well-formed name of its form (fail closed).
    MalformedSubtree,
}

fn malformed_subtree(base: &GeneralName) -> Violation {
    Violation::BadSubtree {
        subtree: subtree_text(base),
        reason: "is not a well-formed name of its form",
    }
}

fn form_of(g: &GeneralName) -> &'static str {
    match g {
        GeneralName::OtherName(_) => "otherName",
        GeneralName::Rfc822Name(_) => "rfc822Name",
        GeneralName::DnsName(_) => "dNSName",
        GeneralName::DirectoryName(_) => "directoryName",
        GeneralName::EdiPartyName(_) => "ediPartyName",
        GeneralName::UniformResourceIdentifier(_) => "uniformResourceIdentifier",
        GeneralName::IpAddress(_) => "iPAddress",
        GeneralName::RegisteredId(_) => "registeredID",
    }
}

fn subtree_text(g: &GeneralName) -> String {
    match g {
        GeneralName::Rfc822Name(s) => format!("email:{}", s.as_str()),
        GeneralName::DnsName(s) => format!("DNS:{}", s.as_str()),
        GeneralName::DirectoryName(n) => format!("DirName:{n}"),
        GeneralName::UniformResourceIdentifier(s) => format!("URI:{}", s.as_str()),
        GeneralName::IpAddress(o) => format!("IP:{}", ip_text(o.as_bytes())),
        other => form_of(other).to_string(),
    }
}

fn ip_text(b: &[u8]) -> String {
    let addr = |b: &[u8]| -> String {
        match b.len() {
            4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                std::net::Ipv6Addr::from(a).to_string()
            }
            _ => hex::encode(b),
        }
    };
    match b.len() {
        8 | 32 => format!("{}/{}", addr(&b[..b.len() / 2]), addr(&b[b.len() / 2..])),
        _ => addr(b),
    }
}

fn matches(base: &GeneralName, name: &CertName) -> Match {
    let yes = |b: bool| if b { Match::Yes } else { Match::No };
    match (base, name) {
        (GeneralName::Rfc822Name(c), CertName::Email(e)) => email_match(c.as_str(), e),
        (GeneralName::Rfc822Name(_), CertName::Other("SmtpUTF8Mailbox", _)) => {
            Match::Unknown("rfc822Name")
        }
        (GeneralName::DnsName(c), CertName::Dns(d)) => dns_match(c.as_str(), d),
        (GeneralName::IpAddress(c), CertName::Ip(ip)) => yes(ip_matches(c.as_bytes(), ip)),
        (GeneralName::DirectoryName(c), CertName::Directory(n)) => yes(dn_matches(c, n)),
        (GeneralName::UniformResourceIdentifier(_), CertName::Other(f, _))
            if *f == "uniformResourceIdentifier" =>
        {
            Match::Unknown("uniformResourceIdentifier")
        }
        (GeneralName::OtherName(_), CertName::Other(f, _))
            if *f == "otherName" || *f == "SmtpUTF8Mailbox" =>
        {
            Match::Unknown("otherName")
        }
        (GeneralName::EdiPartyName(_), CertName::Other("ediPartyName", _)) => {
            Match::Unknown("ediPartyName")
        }
        (GeneralName::RegisteredId(_), CertName::Other("registeredID", _)) => {
            Match::Unknown("registeredID")
        }
        _ => Match::OtherForm,
    }
}

/// rfc822Name matching (RFC 5280 section 4.2.1.10): `user@host` is that mailbox, `host` every
/// mailbox at that host, `.domain` every mailbox at a host below the domain (not the domain
/// itself). A malformed address or constraint matches nothing (see [`Violation::MalformedName`]
/// for what that means under an excluded subtree).
///
/// The whole comparison ignores ASCII case. RFC 5280 section 7.5 keeps local parts
/// case-sensitive, but the gateway treats addresses case-insensitively everywhere (a mailbox
/// constraint must not be dodged by `Eve@` versus `eve@`), and [`Cert::email_addresses`]
/// lowercases.
pub fn email_matches(constraint: &str, email: &str) -> bool {
    matches!(email_match(constraint, email), Match::Yes)
}

fn email_match(constraint: &str, email: &str) -> Match {
    let Some((local, host)) = parse_mailbox(email) else {
        return Match::MalformedName("rfc822Name");
    };
    if constraint.contains('@') {
        match parse_mailbox(constraint) {
            Some((c_local, c_host)) => {
                bool_match(c_local.eq_ignore_ascii_case(local) && c_host.eq_ignore_ascii_case(host))
            }
            None => Match::MalformedSubtree,
        }
    } else if let Some(domain) = constraint.strip_prefix('.') {
        if !is_hostname(domain, false) {
            return Match::MalformedSubtree;
        }
        // `host` is a well-formed hostname, so a suffix after a dot is whole labels.
        let below = host.len() > constraint.len()
            && host.is_char_boundary(host.len() - constraint.len())
            && host[host.len() - constraint.len()..].eq_ignore_ascii_case(constraint);
        bool_match(below)
    } else if is_hostname(constraint, false) {
        bool_match(host.eq_ignore_ascii_case(constraint))
    } else {
        Match::MalformedSubtree
    }
}

fn bool_match(b: bool) -> Match {
    if b { Match::Yes } else { Match::No }
}

/// Splits a mailbox as RFC 5280 section 4.2.1.6 requires an rfc822Name to be (the `Mailbox`
/// of RFC 5321 section 4.1.2): a local part that is a dot-atom or a quoted string, `@`, and a
/// domain that is a hostname. `None` for anything else: no `@` or two outside quotes, an empty
/// local part or domain, stray dots, an address literal (which no constraint form can name).
pub fn parse_mailbox(s: &str) -> Option<(&str, &str)> {
    let at = if s.starts_with('"') {
        // Quoted string: any printable ASCII, backslash escapes the next character.
        let bytes = s.as_bytes();
        let mut i = 1;
        loop {
            match bytes.get(i)? {
                b'\\' => i += 2,
                b'"' => break i + 1,
                c if (0x20..0x7f).contains(c) => i += 1,
                _ => return None,
            }
        }
    } else {
        s.find('@')?
    };
    let (local, rest) = s.split_at(at);
    let host = rest.strip_prefix('@')?;
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let local_ok = local.starts_with('"')
        || (!local.is_empty()
            && local
                .split('.')
                .all(|a| !a.is_empty() && a.chars().all(atext)));
    (local_ok && is_hostname(host, false)).then_some((local, host))
}

/// Whether `s` is a hostname in the preferred name syntax (RFC 1034 section 3.5 as relaxed by
/// RFC 1123 section 2.1, which RFC 5280 section 4.2.1.6 requires of dNSName and of the domain
/// of an rfc822Name): labels of letters, digits and inner hyphens, 1 to 63 octets each, at most
/// 253 in all, no empty label (so no leading, trailing or doubled dot). With `wildcard`, the
/// first label may be `*` (a dNSName of a server certificate).
pub fn is_hostname(s: &str, wildcard: bool) -> bool {
    let s = if wildcard {
        s.strip_prefix("*.").unwrap_or(s)
    } else {
        s
    };
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// dNSName matching (RFC 5280 section 4.2.1.10): the name itself or any name with labels added
/// on the left; a leading dot (a common extension, as OpenSSL reads it) means subdomains only;
/// an empty constraint matches every name. A malformed name or constraint matches nothing.
pub fn dns_matches(constraint: &str, name: &str) -> bool {
    matches!(dns_match(constraint, name), Match::Yes)
}

fn dns_match(constraint: &str, name: &str) -> Match {
    if !is_hostname(name, true) {
        return Match::MalformedName("dNSName");
    }
    if constraint.is_empty() {
        return Match::Yes;
    }
    let (subdomains_only, base) = match constraint.strip_prefix('.') {
        Some(b) => (true, b),
        None => (false, constraint),
    };
    if !is_hostname(base, false) {
        return Match::MalformedSubtree;
    }
    let name = name.to_ascii_lowercase();
    let base = base.to_ascii_lowercase();
    let below = name.ends_with(&format!(".{base}"));
    bool_match(below || (!subdomains_only && name == base))
}

/// iPAddress matching: the constraint is address then mask (8 or 32 octets); the name, 4 or 16.
pub fn ip_matches(constraint: &[u8], ip: &[u8]) -> bool {
    if constraint.len() != ip.len() * 2 || !(ip.len() == 4 || ip.len() == 16) {
        return false;
    }
    let (addr, mask) = constraint.split_at(ip.len());
    ip.iter()
        .zip(addr)
        .zip(mask)
        .all(|((i, a), m)| i & m == a & m)
}

/// directoryName matching: the name's RDN sequence starts with the constraint's (RFC 5280
/// section 4.2.1.10), RDNs compared as for name chaining.
pub fn dn_matches(constraint: &Name, name: &Name) -> bool {
    if constraint.len() > name.len() {
        return false;
    }
    constraint.iter_rdn().zip(name.iter_rdn()).all(|(c, n)| {
        c.len() == n.len() && c.iter().all(|x| n.iter().any(|y| same_attribute(x, y)))
    })
}

#[cfg(test)]
mod tests;
