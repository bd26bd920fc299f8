//! Notice templates: plain text, one file per kind in `<configuration directory>/notices/`
//! (`expiring.txt`, `renewed.txt`, `approved.txt`, `denied.txt`, `digest.txt`), read at every
//! pass so that an edit needs no restart; a kind without a file uses the built-in text below.
//!
//! A file's first line is `Subject: ...`, then a blank line, then the body. `{name}` is
//! replaced by the value of `name` ([`Kind::placeholders`] lists them); any other text in braces
//! stays as written.
//!
//! Values come from the directory, and some from users (a display name is whatever a CSR's
//! common name said). In the Subject, a value carrying a control character (CR, LF, any other
//! C0 control or DEL) is left out, never cleaned up: a header field must not be split or a new
//! one forged (RFC 5322 section 2.2), and a repaired value could read as something else. In the
//! body such characters become spaces, except the line ends of the values the gateway writes in
//! several lines (the digest's lists).

use std::path::{Path, PathBuf};

/// The kinds of notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A certificate the gateway cannot renew expires in N days (to the user).
    Expiring,
    /// A certificate the gateway holds the key of was renewed (to the user, certificate attached).
    Renewed,
    /// A request was approved (to the requester, certificate attached).
    Approved,
    /// A request was denied (to the requester).
    Denied,
    /// The administrators' daily digest.
    Digest,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [
        Kind::Expiring,
        Kind::Renewed,
        Kind::Approved,
        Kind::Denied,
        Kind::Digest,
    ];

    /// The name used in file names and notice records.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Expiring => "expiring",
            Kind::Renewed => "renewed",
            Kind::Approved => "approved",
            Kind::Denied => "denied",
            Kind::Digest => "digest",
        }
    }

    /// The placeholders this kind fills in.
    pub fn placeholders(self) -> &'static [&'static str] {
        match self {
            Kind::Expiring => &[
                "user",
                "email",
                "role",
                "days",
                "serial",
                "not_after",
                "what_to_do",
                "from",
            ],
            Kind::Renewed => &["user", "email", "serial", "not_after", "what_to_do", "from"],
            Kind::Approved => &[
                "user",
                "email",
                "request_id",
                "role",
                "serial",
                "not_after",
                "from",
            ],
            Kind::Denied => &["user", "email", "request_id", "role", "reason", "from"],
            Kind::Digest => &[
                "date",
                "days",
                "pending_count",
                "pending",
                "expiring_count",
                "expiring",
                "crls",
                "harvest_failures",
                "ca",
                "from",
            ],
        }
    }

    /// Values written in several lines (the digest's lists): their line ends are kept in the body.
    fn multiline(name: &str) -> bool {
        matches!(name, "pending" | "expiring" | "crls" | "what_to_do")
    }

    fn default_text(self) -> &'static str {
        match self {
            Kind::Expiring => {
                "Subject: Your S/MIME certificate expires in {days} days\n\n\
                 Hello {user},\n\n\
                 your S/MIME {role} certificate for {email} (serial {serial}) expires on\n\
                 {not_after}. After that date you can no longer sign mail with it, and mail\n\
                 encrypted to it cannot be sent to you.\n\n\
                 What to do:\n{what_to_do}\n\n\
                 -- \nsmimegw, for your mail administrators ({from})\n"
            }
            Kind::Renewed => {
                "Subject: Your S/MIME certificate was renewed\n\n\
                 Hello {user},\n\n\
                 the mail gateway renewed your S/MIME certificate for {email}. The new\n\
                 certificate (serial {serial}) is valid until {not_after} and is attached to\n\
                 this message.\n\n{what_to_do}\n\n\
                 -- \nsmimegw, for your mail administrators ({from})\n"
            }
            Kind::Approved => {
                "Subject: Your certificate request was approved\n\n\
                 Hello {user},\n\n\
                 your certificate request {request_id} for {email} was approved. The new\n\
                 {role} certificate (serial {serial}, valid until {not_after}) is attached:\n\
                 import it into your mail client, where the private key you made the request\n\
                 with already is.\n\n\
                 -- \nsmimegw, for your mail administrators ({from})\n"
            }
            Kind::Denied => {
                "Subject: Your certificate request was denied\n\n\
                 Hello {user},\n\n\
                 your certificate request {request_id} for {email} ({role}) was denied:\n\n\
                 {reason}\n\n\
                 Ask your mail administrator what to change, then send a new request.\n\n\
                 -- \nsmimegw, for your mail administrators ({from})\n"
            }
            Kind::Digest => {
                "Subject: smimegw digest {date}: {pending_count} pending request(s), {expiring_count} certificate(s) expiring\n\n\
                 Pending certificate requests ({pending_count}; smimegw request list):\n{pending}\n\n\
                 Certificates expiring within {days} days ({expiring_count}):\n{expiring}\n\n\
                 CRLs whose next update is due within 2 days:\n{crls}\n\n\
                 Certificate harvest failures on this gateway since it started: {harvest_failures}\n\n\
                 {ca}\n\n\
                 -- \nsmimegw ({from})\n"
            }
        }
    }
}

/// A template: the Subject line and the body, with placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    subject: String,
    body: String,
}

/// Why a template file could not be used (the built-in text is used instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The file could not be read.
    #[error("notice template {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not `Subject: ...`, a blank line, the body.
    #[error(
        "notice template {path}: {reason} (expected a first line `Subject: ...`, a blank line, then the body)"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Template {
    /// Parses template text.
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
        let first = first.trim_end_matches('\r');
        let subject = match first.split_once(':') {
            Some((name, value)) if name.eq_ignore_ascii_case("subject") => value.trim(),
            _ => return Err("the first line is not `Subject: ...`".into()),
        };
        if subject.chars().any(char::is_control) {
            return Err("the Subject line holds a control character".into());
        }
        let body = rest
            .strip_prefix("\r\n")
            .or_else(|| rest.strip_prefix('\n'))
            .unwrap_or(rest);
        Ok(Self {
            subject: subject.to_string(),
            body: body.to_string(),
        })
    }

    /// The built-in template of a kind.
    pub fn builtin(kind: Kind) -> Self {
        // They do (a unit test reads every one); were one broken, its text would still go.
        Self::parse(kind.default_text()).unwrap_or_else(|_| Self {
            subject: "smimegw notice".into(),
            body: kind.default_text().into(),
        })
    }

    /// The template of a kind from `dir` (`<kind>.txt`), or the built-in one when there is no
    /// such file. A file that cannot be used is an error naming it.
    pub fn load(dir: &Path, kind: Kind) -> Result<Self, TemplateError> {
        let path = dir.join(format!("{}.txt", kind.name()));
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map_err(|reason| TemplateError::Malformed {
                path: path.clone(),
                reason,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::builtin(kind)),
            Err(source) => Err(TemplateError::Read { path, source }),
        }
    }

    /// The Subject and the body with the placeholders filled in (see the module doc for what
    /// happens to control characters).
    pub fn render(&self, values: &[(&str, String)]) -> (String, String) {
        let subject = substitute(&self.subject, values, |_, v| {
            if v.chars().any(char::is_control) {
                String::new()
            } else {
                v.to_string()
            }
        });
        let body = substitute(&self.body, values, |name, v| {
            let keep = Kind::multiline(name);
            v.chars()
                .filter(|c| *c != '\r')
                .map(|c| {
                    if c.is_control() && !(keep && c == '\n') && c != '\t' {
                        ' '
                    } else {
                        c
                    }
                })
                .collect()
        });
        // The template's own Subject was checked when it was read; what was put into it has
        // no control character left. Checked once more, since a header is at stake.
        let subject = if subject.chars().any(char::is_control) {
            String::from("smimegw notice")
        } else {
            subject.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        (subject, body)
    }
}

/// Replaces every `{name}` whose name is in `values` by `f(name, value)`, in one pass: a value
/// that itself contains `{...}` is not expanded again.
fn substitute(text: &str, values: &[(&str, String)], f: impl Fn(&str, &str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(n, v)| (close, f(n, v)))
        }) {
            Some((close, v)) => {
                out.push_str(&v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_template_parses_and_uses_only_its_placeholders() {
        for kind in Kind::ALL {
            let t = Template::builtin(kind);
            let values: Vec<(&str, String)> = kind
                .placeholders()
                .iter()
                .map(|p| (*p, "X".to_string()))
                .collect();
            let (s, b) = t.render(&values);
            assert!(!s.contains('{') && !b.contains('{'), "{kind:?}: {s} / {b}");
        }
    }

    #[test]
    fn a_value_with_cr_or_lf_never_reaches_the_subject() {
        let t = Template::parse("Subject: For {user} ({days} days)\n\nHi {user},\n{pending}\n")
            .unwrap();
        let (s, b) = t.render(&[
            ("user", "Eve\r\nBcc: victim@x.test".into()),
            ("days", "7".into()),
            ("pending", "a\nb".into()),
        ]);
        assert_eq!(s, "For (7 days)");
        assert_eq!(b, "Hi Eve Bcc: victim@x.test,\na\nb\n");
        // A value is not expanded twice, and unknown braces stay.
        let t = Template::parse("Subject: {user} {other}\n\n").unwrap();
        let (s, _) = t.render(&[("user", "{days}".into()), ("days", "1".into())]);
        assert_eq!(s, "{days} {other}");
    }

    #[test]
    fn template_files_are_read_and_checked() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(
            Template::load(tmp.path(), Kind::Denied).unwrap(),
            Template::builtin(Kind::Denied)
        );
        std::fs::write(
            tmp.path().join("denied.txt"),
            "Subject: No\r\n\r\nBody {reason}\r\n",
        )
        .unwrap();
        let t = Template::load(tmp.path(), Kind::Denied).unwrap();
        assert_eq!(
            t.render(&[("reason", "r".into())]),
            ("No".into(), "Body r\r\n".into())
        );
        std::fs::write(tmp.path().join("digest.txt"), "Hello\n\nbody").unwrap();
        let e = Template::load(tmp.path(), Kind::Digest)
            .unwrap_err()
            .to_string();
        assert!(e.contains("digest.txt") && e.contains("Subject"), "{e}");
    }
}
