//! The header fields the gateway writes and removes: `Authentication-Results` (RFC 8601, method
//! `smime` of RFC 7281) and `X-Smimegw-Result`, its human summary. Every byte the gateway puts
//! into a message header is built here, and nowhere else.
//!
//! What goes in comes from strangers: the signer's address and the issuer's name are whatever a
//! certificate says, reasons quote CMS and path errors. So every value is written as valid
//! RFC 5322 / RFC 8601 syntax:
//!
//! - A property value (`body.smime-identifier=...`) is an RFC 8601 `pvalue`: a bare addr-spec,
//!   a token, or an RFC 2045 quoted-string with `"` and `\` escaped. A value that carries a
//!   control character (CR, LF, NUL, any other C0 control or DEL) is not a name anyone can
//!   act on, and a cleaned-up copy could read as someone else's: the property is left out,
//!   never repaired.
//! - Free text (the result comment and the `X-Smimegw-Result` summary) keeps its words; a control
//!   character in it is written as `U+000D` and so on, and runs of white space become one space.
//! - Non-ASCII characters are written as `U+00FC` and so on, everywhere. RFC 8601 allows UTF-8
//!   only under RFC 6532, that is when every hop speaks SMTPUTF8, which the gateway cannot know
//!   for the hop after next; raw 8-bit octets in a header are what RFC 5322 section 2.2 forbids.
//! - Fields are folded at white space so that lines stay within 78 octets where words allow
//!   and never exceed 998 (RFC 5322 section 2.1.1); a word too long for that is cut.
//!
//! And what is removed: an `Authentication-Results` field whose authserv-id is ours (RFC 8601
//! section 5: a receiver trusts only results its own ADMD wrote), with the authserv-id read as
//! section 2.2 writes it (comments and folding before it, the quoted-string form, any case, a
//! trailing dot, a version after it), and every `X-Smimegw-Result` field, since only we write
//! them. [`strip_forged`] does this for a message header; the gateway calls it for every message
//! whatever its direction, and again for each entity a decryption or unwrapping brings out
//! ([`strip_forged_layer`]), since a sender controls what is inside too.

use std::borrow::Cow;

use crate::mime::parse_entity;

/// The field the verdict is written into (RFC 8601).
pub const AUTHENTICATION_RESULTS: &str = "Authentication-Results";
/// The field with the gateway's human summary of the verdict.
pub const X_SMIMEGW_RESULT: &str = "X-Smimegw-Result";

/// Where lines are folded when the words allow (RFC 5322 section 2.1.1, "SHOULD be no more than
/// 78 characters").
const FOLD_AT: usize = 78;
/// The longest word written whole; longer ones are cut. With the field name and a folding space
/// in front, a line stays well below RFC 5322's hard limit of 998 octets.
const MAX_WORD: usize = 900;
/// A property value longer than this is left out rather than cut (a cut name is another name).
const MAX_PVALUE: usize = 512;

/// A `ptype.property=pvalue` (RFC 8601 section 2.2) ready to be written, or `None` when the value
/// cannot be written faithfully: it carries a control character, is empty, or is absurdly long.
/// The only way to build the `props` that [`fields`] takes.
pub fn property(name: &str, value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty()
        || value.len() > MAX_PVALUE
        || value.chars().any(is_control)
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
    {
        return None;
    }
    Some(format!("{name}={}", pvalue(value)))
}

/// The two fields for one verdict, ready to be put in front of a message: `Authentication-Results:
/// <authserv-id>; smime=<result> <props>` and `X-Smimegw-Result: <summary>`. `result` is the
/// RFC 7281 keyword, optionally followed by a comment (`fail (bad-signature)`); `props` are
/// [`property`] values joined by spaces.
pub fn fields(authserv_id: &str, result: &str, props: &str, summary: &str) -> Vec<u8> {
    let mut words = vec![format!("{};", value(authserv_id))];
    let (keyword, comment) = split_result(result);
    words.push(format!("smime={keyword}"));
    if let Some(c) = comment {
        words.extend(text_words(&escape_comment(&c)));
    }
    // The props come from `property`; a piece that is not one is dropped rather than trusted.
    words.extend(
        props
            .split_whitespace()
            .filter(|p| p.is_ascii() && !p.chars().any(is_control))
            .map(str::to_string),
    );
    // A quoted value with spaces is split above: [`fold`] writes the pieces back with one space
    // between them, or folds there (FWS inside a quoted-string, RFC 5322 section 3.2.4).
    let mut out = fold(AUTHENTICATION_RESULTS, &words);
    out.extend_from_slice(&fold(X_SMIMEGW_RESULT, &text_words(summary)));
    out
}

/// `result` split into its RFC 7281 keyword (letters, digits and hyphens only; `permerror` when
/// nothing is left) and the comment after it, without its parentheses.
fn split_result(result: &str) -> (String, Option<String>) {
    let result = result.trim();
    let end = result
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or(result.len());
    let keyword = result[..end].to_ascii_lowercase();
    let keyword = if keyword.is_empty() {
        "permerror".to_string()
    } else {
        keyword
    };
    let rest = result[end..].trim();
    let rest = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or(rest)
        .trim();
    (keyword, (!rest.is_empty()).then(|| rest.to_string()))
}

/// A comment (RFC 5322 section 3.2.2): parentheses and backslashes inside are quoted-pairs.
fn escape_comment(text: &str) -> String {
    let mut s = String::from("(");
    for c in sanitize_text(text).chars() {
        if matches!(c, '(' | ')' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push(')');
    s
}

/// Whether a character must never reach a header as it is: C0 controls (TAB included: white
/// space is written as SP), DEL and the C1 controls.
fn is_control(c: char) -> bool {
    c.is_control()
}

/// Printable US-ASCII with single spaces: controls and non-ASCII written as `U+XXXX`.
fn sanitize_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c == ' ' || c == '\t' {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            out.push_str(&format!("U+{:04X}", c as u32));
        }
    }
    out
}

/// The words of a free-text value, sanitised ([`fold`] cuts the ones too long for a line).
fn text_words(text: &str) -> Vec<String> {
    sanitize_text(text)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// `word` in pieces of at most [`MAX_WORD`] octets, never cut inside a character or a
/// quoted-pair (`\(`, `\"`), so that each cut is only a fold.
fn cut(mut word: &str) -> Vec<&str> {
    let mut out = Vec::new();
    while word.len() > MAX_WORD {
        let mut at = MAX_WORD;
        while !word.is_char_boundary(at) {
            at -= 1;
        }
        let backslashes = word.as_bytes()[..at]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 1 {
            at -= 1;
        }
        out.push(&word[..at]);
        word = &word[at..];
    }
    out.push(word);
    out
}

/// RFC 2045 token characters: printable US-ASCII except SPACE and tspecials.
fn is_token_char(c: char) -> bool {
    c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c)
}

/// A `value` (RFC 2045): a token as it is, anything else a quoted-string.
fn value(v: &str) -> String {
    if !v.is_empty() && v.chars().all(is_token_char) {
        v.to_string()
    } else {
        quoted(v)
    }
}

/// An RFC 8601 `pvalue`: a plain addr-spec (dot-atom local part, domain name) bare, otherwise a
/// `value`.
fn pvalue(v: &str) -> String {
    let dot_atom = |s: &str| {
        !s.is_empty()
            && s.split('.').all(|a| {
                !a.is_empty()
                    && a.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c))
            })
    };
    let domain = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    match v.rsplit_once('@') {
        Some((local, d)) if dot_atom(local) && domain(d) => v.to_string(),
        _ => value(v),
    }
}

/// A quoted-string (RFC 5322 section 3.2.4): `"` and `\` as quoted-pairs, the rest sanitised.
fn quoted(v: &str) -> String {
    let mut s = String::from("\"");
    for c in sanitize_text(v).chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// `Name: w1 w2 ...` with CRLF, folded before a word when the line would pass [`FOLD_AT`]. Words
/// are printable ASCII without spaces except inside quoted-strings, where a space is legal FWS;
/// a space inside a word is also a place to fold.
fn fold(name: &str, words: &[String]) -> Vec<u8> {
    let mut out =
        String::with_capacity(name.len() + 2 + words.iter().map(|w| w.len() + 1).sum::<usize>());
    out.push_str(name);
    out.push(':');
    let mut line = out.len();
    for word in words {
        for piece in word.split(' ') {
            let sep_fits = line + 1 + piece.len() <= FOLD_AT;
            if !sep_fits && line > name.len() + 2 && !piece.is_empty() {
                out.push_str("\r\n ");
                line = 1;
            } else {
                out.push(' ');
                line += 1;
            }
            // Last defence: no line may pass 998 octets whatever a caller passed in.
            for (j, chunk) in cut(piece).into_iter().enumerate() {
                if j > 0 {
                    out.push_str("\r\n ");
                    line = 1;
                }
                out.push_str(chunk);
                line += chunk.len();
            }
        }
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Whether an `Authentication-Results` value names `authserv_id` (RFC 8601 section 2.2:
/// `[CFWS] authserv-id [CFWS authres-version] ...`, authserv-id a `value`). Case and a trailing
/// dot do not matter (it is a domain name in practice); the value is unfolded first.
pub fn names_authserv_id(field_value: &str, authserv_id: &str) -> bool {
    match leading_value(field_value) {
        Some(id) => same_id(&id, authserv_id),
        None => false,
    }
}

fn same_id(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim();
        s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase()
    };
    !norm(b).is_empty() && norm(a) == norm(b)
}

/// The first `value` of a structured field: CFWS (white space, folding, nested comments with
/// quoted-pairs) skipped, then a quoted-string (unquoted) or the run of characters up to white
/// space, `;` or `(`.
fn leading_value(v: &str) -> Option<String> {
    let mut chars = v.chars().peekable();
    // [CFWS]
    loop {
        match chars.peek() {
            Some(c) if c.is_whitespace() => {
                chars.next();
            }
            Some('(') => {
                let mut depth = 0usize;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '(' => depth += 1,
                        ')' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => break,
        }
    }
    let mut id = String::new();
    if chars.peek() == Some(&'"') {
        chars.next();
        while let Some(c) = chars.next() {
            match c {
                '\\' => id.extend(chars.next()),
                '"' => break,
                '\r' | '\n' => {}
                _ => id.push(c),
            }
        }
    } else {
        for c in chars {
            if c.is_whitespace() || c == ';' || c == '(' {
                break;
            }
            id.push(c);
        }
    }
    (!id.is_empty()).then_some(id)
}

/// Whether a header field is one the gateway alone may write: an `Authentication-Results` that
/// names `authserv_id`, or any `X-Smimegw-Result`.
pub fn is_ours(h: &crate::mime::Header, authserv_id: &str) -> bool {
    h.is(X_SMIMEGW_RESULT)
        || (h.is(AUTHENTICATION_RESULTS) && names_authserv_id(&h.value(), authserv_id))
}

/// The message without the header fields that only the gateway may write ([`is_ours`]): borrowed
/// as it is when there are none (the usual case, no copy of a large message for nothing).
///
/// A message whose first line starts with white space has no header field to continue (RFC 5322
/// section 2.2.3 folds within a field only; [`parse_entity`] reads such a message as all body).
/// Put under our fields, that line would continue the last of them and add the sender's words
/// to our summary, so an empty line is put in front: the message stays body, as we read it.
pub fn strip_forged<'a>(raw: &'a [u8], authserv_id: &str) -> Cow<'a, [u8]> {
    if raw.starts_with(b" ") || raw.starts_with(b"\t") {
        return Cow::Owned([&b"\r\n"[..], raw].concat());
    }
    let e = parse_entity(raw);
    if !e.headers.iter().any(|h| is_ours(h, authserv_id)) {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    for h in e.headers.iter().filter(|h| !is_ours(h, authserv_id)) {
        out.extend_from_slice(&h.raw);
    }
    out.extend_from_slice(e.separator);
    out.extend_from_slice(e.body);
    Cow::Owned(out)
}

/// [`strip_forged`] for a message a decryption or unwrapping just made: its header, and when it
/// is a `message/rfc822` wrapper (how the inner entity's own header fields are kept, see
/// `smime::message`), the wrapped message's header too.
pub fn strip_forged_layer(raw: Vec<u8>, authserv_id: &str) -> Vec<u8> {
    let raw = match strip_forged(&raw, authserv_id) {
        Cow::Borrowed(_) => raw,
        Cow::Owned(o) => o,
    };
    let e = parse_entity(&raw);
    if e.content_type().mime_type != "message/rfc822" {
        return raw;
    }
    let head_len = raw.len() - e.body.len();
    match strip_forged(e.body, authserv_id) {
        Cow::Borrowed(_) => raw,
        Cow::Owned(inner) => {
            let mut out = raw[..head_len].to_vec();
            out.extend_from_slice(&inner);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(field: &[u8]) -> Vec<&[u8]> {
        field
            .strip_suffix(b"\r\n")
            .unwrap()
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .collect()
    }

    /// A field is one field: CR and LF only as CRLF followed by white space, no line over 998.
    pub(crate) fn assert_one_field(field: &[u8]) {
        let body = field.strip_suffix(b"\r\n").expect("ends with CRLF");
        for (i, &b) in body.iter().enumerate() {
            match b {
                b'\r' => assert!(
                    body.get(i + 1) == Some(&b'\n')
                        && matches!(body.get(i + 2), Some(b' ' | b'\t')),
                    "bare CR or unfolded line in {:?}",
                    String::from_utf8_lossy(field)
                ),
                b'\n' => assert_eq!(body[i - 1], b'\r'),
                _ => assert!(b == b' ' || b.is_ascii_graphic(), "octet {b:#x}"),
            }
        }
        for l in lines(field) {
            assert!(l.len() <= 998, "line of {} octets", l.len());
        }
        let e = parse_entity(field);
        assert_eq!(e.headers.len(), 1, "{:?}", String::from_utf8_lossy(field));
    }

    #[test]
    fn authserv_id_in_every_spelling_rfc_8601_allows() {
        for v in [
            "gw.test; smime=pass",
            "GW.Test; smime=pass",
            "gw.test.; smime=pass",
            "  gw.test ; smime=pass",
            "(comment) gw.test; smime=pass",
            "(nested (comment) \\) here) gw.test; smime=pass",
            "\"gw.test\"; smime=pass",
            "\"GW.TEST.\"; smime=pass",
            "\"gw\\.test\"; smime=pass",
            "gw.test 1; smime=pass",
            "gw.test (version) 1; smime=pass",
            "gw.test;smime=pass",
            "gw.test; none",
            "gw.test(c); smime=pass",
        ] {
            assert!(names_authserv_id(v, "gw.test"), "{v}");
        }
        for v in [
            "other.test; smime=pass",
            "gw.test.evil; smime=pass",
            "xgw.test; smime=pass",
            "\"gw.test x\"; smime=pass",
            "(gw.test) other.test; smime=pass",
            "",
            "(unterminated gw.test",
        ] {
            assert!(!names_authserv_id(v, "gw.test"), "{v}");
        }
    }

    #[test]
    fn forged_fields_are_removed_folded_or_not() {
        let raw = b"Received: x\r\nAuthentication-Results:\r\n (c)\r\n\t\"GW.test.\"\r\n 1; smime=pass\r\n\
                    authentication-results: other.test; smime=pass\r\n\
                    x-smimegw-result: whatever\r\nSubject: s\r\n\r\nbody\r\n";
        let out = strip_forged(raw, "gw.test");
        assert_eq!(
            &*out,
            &b"Received: x\r\nauthentication-results: other.test; smime=pass\r\nSubject: s\r\n\r\nbody\r\n"[..]
        );
        assert!(matches!(strip_forged(&out, "gw.test"), Cow::Borrowed(_)));
    }

    /// Before, `X-Smimegw-Result: not signed...` followed by ` but signed by the CEO` read as one
    /// field: the sender wrote the end of our summary.
    #[test]
    fn a_leading_continuation_line_cannot_continue_our_fields() {
        let raw = b" but signed by ceo@acme.test: pass\r\nFrom: b@y.test\r\n\r\nbody\r\n";
        let mut m = fields("gw.test", "none", "", "not signed, not encrypted");
        m.extend_from_slice(&strip_forged(raw, "gw.test"));
        let e = parse_entity(&m);
        assert_eq!(e.headers.len(), 2);
        assert_eq!(e.headers[1].value(), "not signed, not encrypted");
        assert_eq!(e.body, raw);
    }

    #[test]
    fn a_wrapped_inner_message_loses_its_forged_fields_too() {
        let raw = b"From: a@x.test\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n\
                    Authentication-Results: gw.test; smime=pass\r\nX-Smimegw-Result: ok\r\nFrom: b@y.test\r\n\r\nbody\r\n"
            .to_vec();
        let out = strip_forged_layer(raw, "gw.test");
        assert_eq!(
            out,
            b"From: a@x.test\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@y.test\r\n\r\nbody\r\n"
        );
    }

    #[test]
    fn values_from_certificates_cannot_add_fields() {
        assert_eq!(
            property("body.smime-identifier", "eve@x.test\r\nX-Evil: 1"),
            None
        );
        assert_eq!(property("body.smime-identifier", "eve@x.test\0"), None);
        assert_eq!(
            property("body.smime-identifier", "Eve@X.test").as_deref(),
            Some("body.smime-identifier=Eve@X.test")
        );
        assert_eq!(
            property("body.smime-issuer", "CN=A \"B\" \\C,O=Ü").as_deref(),
            Some("body.smime-issuer=\"CN=A \\\"B\\\" \\\\C,O=U+00DC\"")
        );
        assert_eq!(
            property("body.smime-identifier", "\"a b\"@x.test").as_deref(),
            Some("body.smime-identifier=\"\\\"a b\\\"@x.test\"")
        );
        let f = fields(
            "gw.test",
            "fail (bad\r\nX-Evil: (1))",
            "body.smime-serial=01",
            "signature by eve@x.test\r\nX-Evil: 1\r\n\r\nbody",
        );
        let text = String::from_utf8(f.clone()).unwrap();
        assert_eq!(
            text,
            "Authentication-Results: gw.test; smime=fail (badU+000DU+000AX-Evil: \\(1\\))\r\n body.smime-serial=01\r\n\
             X-Smimegw-Result: signature by eve@x.testU+000DU+000AX-Evil:\r\n 1U+000DU+000AU+000DU+000Abody\r\n"
        );
        let e = parse_entity(&f);
        assert_eq!(e.headers.len(), 2);
        for h in &e.headers {
            assert_one_field(&h.raw);
        }
    }

    #[test]
    fn a_long_word_is_cut_between_quoted_pairs() {
        let word = format!("{}\\(tail", "a".repeat(MAX_WORD - 1));
        let pieces = cut(&word);
        assert_eq!(pieces.len(), 2);
        assert!(pieces[1].starts_with("\\("), "{pieces:?}");
        assert_eq!(pieces.concat(), word);
    }

    #[test]
    fn long_values_are_folded_and_never_pass_998_octets() {
        let issuer = property("body.smime-issuer", &"CN=word ".repeat(40)).unwrap();
        let f = fields(
            "gw.test",
            "pass",
            &issuer,
            &format!("{} {}", "x".repeat(5000), "y ".repeat(300)),
        );
        let e = parse_entity(&f);
        assert_eq!(e.headers.len(), 2);
        for h in &e.headers {
            assert_one_field(&h.raw);
            // A line passes 78 octets only when it holds one word (after the name or the
            // folding space): there was nowhere to fold it.
            for l in lines(&h.raw) {
                let spaces = l.iter().filter(|&&b| b == b' ').count();
                assert!(
                    l.len() <= FOLD_AT || spaces <= 1,
                    "{}",
                    String::from_utf8_lossy(l)
                );
            }
        }
        // Unfolding gives back the value (folding only inserted CRLF before existing spaces).
        let ar = String::from_utf8_lossy(&e.headers[0].raw).replace("\r\n", "");
        assert!(ar.contains(&issuer), "{ar}");
    }

    proptest::proptest! {
        /// Whatever a certificate or an error text holds, the gateway writes exactly two fields,
        /// each folded legally, and mail-parser reads back exactly two.
        #[test]
        fn written_fields_are_always_two_legal_fields(
            id in "\\PC{0,40}",
            result in "\\PC{0,40}",
            ident in proptest::prelude::any::<String>(),
            issuer in proptest::prelude::any::<String>(),
            summary in proptest::prelude::any::<String>(),
            long in 0usize..3000,
        ) {
            let props: Vec<String> = [
                property("body.smime-identifier", &ident),
                property("body.smime-issuer", &format!("{issuer}{}", "z".repeat(long / 8))),
            ].into_iter().flatten().collect();
            let summary = format!("{summary}{}", "w".repeat(long));
            let f = fields(&id, &result, &props.join(" "), &summary);
            let e = parse_entity(&f);
            proptest::prop_assert_eq!(e.headers.len(), 2);
            proptest::prop_assert!(e.body.is_empty());
            for h in &e.headers {
                assert_one_field(&h.raw);
            }
            let mut with_body = f.clone();
            with_body.extend_from_slice(b"\r\nbody\r\n");
            let parsed = mail_parser::MessageParser::new().parse_headers(&with_body).unwrap();
            proptest::prop_assert_eq!(parsed.headers().len(), 2);
        }
    }
}
