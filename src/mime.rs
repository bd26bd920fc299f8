//! MIME entities as bytes: split, inspect and rebuild messages without disturbing what we do not
//! touch.
//!
//! S/MIME is byte-sensitive: a detached signature covers the first part of a multipart/signed
//! exactly as sent (RFC 8551 section 3.5), and after decryption the inner entity must come out
//! byte for byte. So this module works on raw bytes and offsets, never on a re-serialised parse
//! tree. Header values are interpreted only where we must (Content-Type and its parameters,
//! Content-Transfer-Encoding); addresses are `crate::address`'s.

use base64::Engine as _;

use crate::limits::{LimitError, Limits};

/// Why a message could not be taken apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MimeError {
    /// A multipart without a boundary parameter.
    #[error("multipart entity without a boundary parameter")]
    NoBoundary,
    /// The boundary never appears (or the closing delimiter is missing).
    #[error("multipart boundary \"{0}\" not found in the body")]
    BoundaryMissing(String),
    /// A bound of [`Limits`] was exceeded (nesting, header count or size, time).
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// Base64 that does not decode.
    #[error("invalid base64 in {0}")]
    BadBase64(&'static str),
    /// The system random number generator failed (a boundary needs it).
    #[error("the system random number generator failed while making a MIME boundary")]
    Randomness,
    /// A multipart/signed without its two parts.
    #[error("multipart/signed needs exactly two parts, found {0}")]
    SignedParts(usize),
}

/// One header field, as it appeared (name and raw value including folding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Field name as written.
    pub name: String,
    /// The whole field, name through the line ending (folded lines included), exactly as received.
    pub raw: Vec<u8>,
}

impl Header {
    /// The unfolded value, trimmed (bytes outside UTF-8 become U+FFFD).
    pub fn value(&self) -> String {
        let text = String::from_utf8_lossy(&self.raw);
        let v = text.split_once(':').map(|(_, v)| v).unwrap_or("");
        v.replace("\r\n", "")
            .replace('\n', "")
            .replace('\t', " ")
            .trim()
            .to_string()
    }

    /// Whether this is a Content-* header (the ones that describe the entity rather than the
    /// message, RFC 2045 section 9 / RFC 8551 section 3.1: they move inside the CMS envelope).
    pub fn is_content_header(&self) -> bool {
        self.name.to_ascii_lowercase().starts_with("content-")
    }

    /// Case-insensitive name comparison.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// An entity: its header fields and its body, borrowed from the message bytes.
#[derive(Clone, Debug)]
pub struct Entity<'a> {
    /// Header fields in order.
    pub headers: Vec<Header>,
    /// The blank line that ended the header (CRLF, LF, or empty when there was no body).
    pub separator: &'a [u8],
    /// Everything after the blank line.
    pub body: &'a [u8],
}

/// Splits raw bytes into header fields and body. Accepts CRLF and bare LF line ends; a missing
/// blank line means the whole input is header (no body).
pub fn parse_entity(raw: &[u8]) -> Entity<'_> {
    let mut headers: Vec<Header> = Vec::new();
    let mut pos = 0;
    loop {
        if pos >= raw.len() {
            return Entity {
                headers,
                separator: &raw[raw.len()..],
                body: &raw[raw.len()..],
            };
        }
        let line_end = memchr_nl(&raw[pos..])
            .map(|i| pos + i + 1)
            .unwrap_or(raw.len());
        let line = &raw[pos..line_end];
        if line == b"\r\n" || line == b"\n" {
            return Entity {
                headers,
                separator: line,
                body: &raw[line_end..],
            };
        }
        if (line[0] == b' ' || line[0] == b'\t') && !headers.is_empty() {
            if let Some(h) = headers.last_mut() {
                h.raw.extend_from_slice(line);
            }
        } else {
            let name_end = line.iter().position(|&b| b == b':');
            match name_end {
                Some(n) if n > 0 => headers.push(Header {
                    name: String::from_utf8_lossy(&line[..n]).trim().to_string(),
                    raw: line.to_vec(),
                }),
                // Not a header line: the header ended without a blank line (RFC 5322 violation);
                // treat the rest as body so nothing is lost.
                _ => {
                    return Entity {
                        headers,
                        separator: &raw[pos..pos],
                        body: &raw[pos..],
                    };
                }
            }
        }
        pos = line_end;
    }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}

impl Entity<'_> {
    /// First header with this name.
    pub fn header(&self, name: &str) -> Option<&Header> {
        self.headers.iter().find(|h| h.is(name))
    }

    /// The parsed Content-Type (default text/plain; charset=us-ascii, RFC 2045 section 5.2).
    pub fn content_type(&self) -> ContentType {
        self.header("Content-Type")
            .map(|h| ContentType::parse(&h.value()))
            .unwrap_or_else(ContentType::default_text)
    }

    /// The Content-Transfer-Encoding, lowercased (default 7bit).
    pub fn transfer_encoding(&self) -> String {
        self.header("Content-Transfer-Encoding")
            .map(|h| h.value().to_ascii_lowercase())
            .unwrap_or_else(|| "7bit".into())
    }

    /// The body with its transfer encoding removed (base64 and quoted-printable).
    pub fn decoded_body(&self) -> Result<Vec<u8>, MimeError> {
        match self.transfer_encoding().as_str() {
            "base64" => decode_base64(self.body),
            "quoted-printable" => Ok(decode_qp(self.body)),
            _ => Ok(self.body.to_vec()),
        }
    }
}

/// Walks the whole MIME tree once and checks it against `limits`: nesting depth, header fields
/// per entity, size of each field, and the deadline at every entity. Called before anything
/// recurses into a message, so that later passes work on input of known shape. Structural faults
/// that are not limits (a multipart without its boundary) are left to the passes that care.
pub fn check_limits(raw: &[u8], limits: &Limits) -> Result<(), MimeError> {
    let mut seen = 0;
    check_entity(raw, limits, 0, &mut seen)
}

/// `seen` counts the entities walked so far, across the whole message.
fn check_entity(
    raw: &[u8],
    limits: &Limits,
    depth: usize,
    seen: &mut usize,
) -> Result<(), MimeError> {
    limits.check_time()?;
    *seen += 1;
    if *seen > limits.parts {
        return Err(LimitError::Parts {
            limit: limits.parts,
        }
        .into());
    }
    if depth > limits.mime_depth {
        return Err(LimitError::MimeDepth {
            limit: limits.mime_depth,
        }
        .into());
    }
    let e = parse_entity(raw);
    if e.headers.len() > limits.headers {
        return Err(LimitError::Headers {
            count: e.headers.len(),
            limit: limits.headers,
        }
        .into());
    }
    if let Some(h) = e.headers.iter().find(|h| h.raw.len() > limits.header_size) {
        return Err(LimitError::HeaderSize {
            name: h.name.chars().take(64).collect(),
            size: h.raw.len(),
            limit: limits.header_size,
        }
        .into());
    }
    let ct = e.content_type();
    if !ct.is_multipart() {
        return Ok(());
    }
    let Some(boundary) = ct.param("boundary") else {
        return Ok(());
    };
    let Ok(parts) = split_multipart(e.body, boundary) else {
        return Ok(());
    };
    for p in parts {
        check_entity(p, limits, depth + 1, seen)?;
    }
    Ok(())
}

/// A parsed Content-Type value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentType {
    /// `type/subtype`, lowercased.
    pub mime_type: String,
    /// Parameters (names lowercased, values unquoted).
    pub params: Vec<(String, String)>,
}

impl ContentType {
    fn default_text() -> Self {
        Self {
            mime_type: "text/plain".into(),
            params: vec![("charset".into(), "us-ascii".into())],
        }
    }

    /// Parses `type/subtype; name=value; name="quoted value"` (RFC 2045 section 5.1), leniently.
    pub fn parse(value: &str) -> Self {
        let mut parts = split_params(value).into_iter();
        let mime_type = parts
            .next()
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| t.contains('/'))
            .unwrap_or_else(|| "text/plain".into());
        let params = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                let v = v.trim();
                let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
                    v[1..v.len() - 1]
                        .replace("\\\"", "\"")
                        .replace("\\\\", "\\")
                } else {
                    v.to_string()
                };
                Some((k.trim().to_ascii_lowercase(), v))
            })
            .collect();
        Self { mime_type, params }
    }

    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is `multipart/*`.
    pub fn is_multipart(&self) -> bool {
        self.mime_type.starts_with("multipart/")
    }
}

/// Splits on `;` outside quotes.
fn split_params(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// The parts of a multipart body, each exactly as between its delimiters (RFC 2046 section
/// 5.1.1: the CRLF before a delimiter belongs to the delimiter, not to the part).
pub fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<&'a [u8]>, MimeError> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    // Find each delimiter line: at the start of the body or after a line end. Searching for the
    // delimiter (not walking every line) keeps a multi-megabyte part cheap.
    let mut starts: Vec<(usize, usize, bool)> = Vec::new(); // (line start, after line, is close)
    for pos in memchr::memmem::find_iter(body, d) {
        if pos > 0 && body[pos - 1] != b'\n' {
            continue;
        }
        let line_end = memchr_nl(&body[pos..])
            .map(|i| pos + i + 1)
            .unwrap_or(body.len());
        let line = &body[pos..line_end];
        let rest = &line[d.len()..];
        let close = rest.starts_with(b"--");
        let tail = if close { &rest[2..] } else { rest };
        // Only transport padding may follow the boundary on its line.
        if tail
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            starts.push((pos, line_end, close));
            if close {
                break;
            }
        }
    }
    if starts.is_empty() {
        return Err(MimeError::BoundaryMissing(boundary.to_string()));
    }
    let mut parts = Vec::new();
    for w in starts.windows(2) {
        let (_, part_start, close) = w[0];
        if close {
            break;
        }
        let (next_line_start, _, _) = w[1];
        // Strip the line ending that precedes the next delimiter.
        let mut end = next_line_start;
        if end > part_start && body[end - 1] == b'\n' {
            end -= 1;
            if end > part_start && body[end - 1] == b'\r' {
                end -= 1;
            }
        }
        parts.push(&body[part_start..end.max(part_start)]);
    }
    if !starts.last().is_some_and(|s| s.2) {
        // No closing delimiter: the last part runs to the end (lenient, as most readers are),
        // unless there was only an opening delimiter.
        let (_, part_start, _) = *starts.last().unwrap_or(&(0, 0, false));
        if starts.len() == 1 {
            return Err(MimeError::BoundaryMissing(boundary.to_string()));
        }
        parts.push(&body[part_start..]);
    }
    Ok(parts)
}

/// Whether every line ending already is CRLF (no bare CR, no bare LF), so [`to_crlf`] would
/// return the input unchanged. Conservative at the edges: a leading LF or a trailing CR counts
/// as bare, so pieces of a message can be checked one by one.
pub fn is_crlf(data: &[u8]) -> bool {
    for i in memchr::memchr2_iter(b'\r', b'\n', data) {
        let ok = if data[i] == b'\r' {
            data.get(i + 1) == Some(&b'\n')
        } else {
            i > 0 && data[i - 1] == b'\r'
        };
        if !ok {
            return false;
        }
    }
    true
}

/// [`to_crlf`], borrowing the input when it already is canonical (the common case, which then
/// costs a scan instead of a copy).
pub fn to_crlf_cow(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if is_crlf(data) {
        std::borrow::Cow::Borrowed(data)
    } else {
        std::borrow::Cow::Owned(to_crlf(data))
    }
}

/// Converts every line ending to CRLF (RFC 8551 section 3.1.1: canonical form before signing).
pub fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    let mut prev = 0u8;
    for &b in data {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        if prev == b'\r' && b != b'\n' {
            // A bare CR: make it a line ending too.
            out.push(b'\n');
        }
        out.push(b);
        prev = b;
    }
    if prev == b'\r' {
        out.push(b'\n');
    }
    out
}

/// Whether bytes are 7-bit safe for SMTP: no 8-bit bytes, no NUL, no bare CR or LF after
/// canonicalisation, lines of at most 998 octets (RFC 5322 section 2.1.1).
pub fn is_7bit_safe(data: &[u8]) -> bool {
    // Branch-free per block so the compiler vectorises the scan (it runs over whole messages).
    let clean = data.chunks(64).all(|block| {
        let (mut or, mut nul) = (0u8, false);
        for &b in block {
            or |= b;
            nul |= b == 0;
        }
        or < 0x80 && !nul
    });
    if !clean {
        return false;
    }
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', data) {
        if nl - start > 998 {
            return false;
        }
        start = nl + 1;
    }
    data.len() - start <= 998
}

/// Base64 with 76-column lines and CRLF line ends (RFC 2045 section 6.8).
pub fn encode_base64_lines(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_base64_lines_into(data, &mut out);
    out
}

/// [`encode_base64_lines`] appended to `out`, written in place: no intermediate string.
pub fn encode_base64_lines_into(data: &[u8], out: &mut Vec<u8>) {
    // 57 input bytes make one 76-character line; encode many lines per call.
    const LINE_IN: usize = 57;
    const LINES: usize = 64;
    let lines = data.len().div_ceil(LINE_IN);
    let text_len = data.len().div_ceil(3) * 4;
    let start = out.len();
    out.resize(start + text_len + 2 * lines, 0);
    let mut at = start;
    let mut text = [0u8; LINE_IN * LINES / 3 * 4];
    for block in data.chunks(LINE_IN * LINES) {
        let n = base64::engine::general_purpose::STANDARD
            .encode_slice(block, &mut text)
            .unwrap_or(0);
        for line in text[..n].chunks(76) {
            out[at..at + line.len()].copy_from_slice(line);
            out[at + line.len()..at + line.len() + 2].copy_from_slice(b"\r\n");
            at += line.len() + 2;
        }
    }
    out.truncate(at);
}

/// `prefix` followed by `data` as [`encode_base64_lines`] would write it, built in `data`'s own
/// buffer: the data is moved to the end of the grown buffer and encoded from the front, so a
/// large body is never held twice (once binary, once as text). The text of each block read is
/// never longer than the room freed before it: base64 lines take 78 bytes per 57 read, and the
/// data starts at least 21/57 of its length past the end of the prefix.
pub fn encode_base64_lines_in_place(prefix: &[u8], mut data: Vec<u8>) -> Vec<u8> {
    const LINE_IN: usize = 57;
    const BLOCK: usize = LINE_IN * 64;
    let len = data.len();
    let total = prefix.len() + len.div_ceil(3) * 4 + 2 * len.div_ceil(LINE_IN);
    data.reserve_exact(total - len);
    data.resize(total, 0);
    let from = total - len;
    data.copy_within(0..len, from);
    data[..prefix.len()].copy_from_slice(prefix);
    let mut at = prefix.len();
    let mut read = from;
    let mut block = [0u8; BLOCK];
    let mut text = [0u8; BLOCK / 3 * 4];
    while read < total {
        let n_in = (total - read).min(BLOCK);
        block[..n_in].copy_from_slice(&data[read..read + n_in]);
        read += n_in;
        let n = base64::engine::general_purpose::STANDARD
            .encode_slice(&block[..n_in], &mut text)
            .unwrap_or(0);
        for line in text[..n].chunks(76) {
            data[at..at + line.len()].copy_from_slice(line);
            data[at + line.len()..at + line.len() + 2].copy_from_slice(b"\r\n");
            at += line.len() + 2;
        }
    }
    data.truncate(at);
    data
}

/// Decodes base64, ignoring whitespace and line breaks (RFC 2045 section 6.8).
pub fn decode_base64(data: &[u8]) -> Result<Vec<u8>, MimeError> {
    if let Some(decoded) = decode_base64_lines(data) {
        return Ok(decoded);
    }
    let clean: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&clean)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&clean))
        .map_err(|_| MimeError::BadBase64("body"))
}

/// The fast path of [`decode_base64`], for what every encoder writes: line breaks are the only
/// whitespace. The text between them is gathered into a small buffer and decoded a block at a
/// time, so a 10 MiB body is neither copied whole nor filtered byte by byte. `None` sends the
/// input to the general path (other whitespace, padding in the middle, no padding, garbage),
/// which then decides.
fn decode_base64_lines(data: &[u8]) -> Option<Vec<u8>> {
    const BLOCK: usize = 8192;
    let engine = &base64::engine::general_purpose::STANDARD;
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 3);
    let mut buf = vec![0u8; BLOCK];
    let mut n = 0;
    let mut from = 0;
    let ends = memchr::memchr2_iter(b'\r', b'\n', data).chain(std::iter::once(data.len()));
    for end in ends {
        let mut seg = &data[from..end];
        from = end + 1;
        while !seg.is_empty() {
            let k = (BLOCK - n).min(seg.len());
            buf[n..n + k].copy_from_slice(&seg[..k]);
            n += k;
            seg = &seg[k..];
            if n == BLOCK {
                // A whole number of quads, none of them padded: padding ends the data.
                if buf[BLOCK - 1] == b'=' {
                    return None;
                }
                engine.decode_vec(&buf[..], &mut out).ok()?;
                n = 0;
            }
        }
    }
    engine.decode_vec(&buf[..n], &mut out).ok()?;
    Some(out)
}

/// Quoted-printable encoding with soft line breaks at 76 columns and CRLF line ends (RFC 2045
/// section 6.7). Line ends in the input are kept as hard line breaks.
pub fn encode_qp(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 8);
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut col = 0;
        for (j, &b) in line.iter().enumerate() {
            let last = j + 1 == line.len();
            let literal =
                (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
            // A leading "." or "From " could be mangled by transports; encode them.
            let risky_start =
                col == 0 && (b == b'.' || (b == b'F' && line[j..].starts_with(b"From ")));
            let piece: Vec<u8> = if literal && !risky_start {
                vec![b]
            } else {
                format!("={b:02X}").into_bytes()
            };
            if col + piece.len() > 75 {
                out.extend_from_slice(b"=\r\n");
                col = 0;
            }
            out.extend_from_slice(&piece);
            col += piece.len();
        }
    }
    out
}

/// Decodes quoted-printable, leniently (invalid escapes are kept as they are).
pub fn decode_qp(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b == b'=' {
            if data.get(i + 1..i + 3) == Some(b"\r\n") {
                i += 3;
                continue;
            }
            if data.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if let Some(h) = data.get(i + 1..i + 3)
                && let Ok(s) = std::str::from_utf8(h)
                && let Ok(v) = u8::from_str_radix(s, 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// A boundary that cannot occur in base64 or quoted-printable text (the "=_" sequence, RFC 2045
/// section 6.7 note) and is unique per message.
pub fn new_boundary(tag: &str) -> Result<String, MimeError> {
    use aws_lc_rs::rand::SecureRandom;
    let mut r = [0u8; 12];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut r)
        .map_err(|_| MimeError::Randomness)?;
    Ok(format!("----=_{tag}_{}", hex::encode(r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_split_keeps_bytes() {
        let raw = b"From: A <a@x.test>\r\nSubject: hi\r\n there\r\nContent-Type: text/plain;\r\n charset=\"utf-8\"\r\n\r\nbody\r\n";
        let e = parse_entity(raw);
        assert_eq!(e.headers.len(), 3);
        assert_eq!(e.headers[1].value(), "hi there");
        assert_eq!(e.content_type().param("charset"), Some("utf-8"));
        assert_eq!(e.body, b"body\r\n");
        let rebuilt: Vec<u8> = e
            .headers
            .iter()
            .flat_map(|h| h.raw.clone())
            .chain(e.separator.iter().copied())
            .chain(e.body.iter().copied())
            .collect();
        assert_eq!(rebuilt, raw);
    }

    #[test]
    fn multipart_parts_are_exact() {
        let body = b"preamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\n\r\nsecond\r\n\r\n--b1--\r\nepilogue";
        let parts = split_multipart(body, "b1").unwrap();
        assert_eq!(
            parts,
            vec![
                &b"Content-Type: text/plain\r\n\r\nhello"[..],
                &b"\r\nsecond\r\n"[..]
            ]
        );
        assert!(split_multipart(b"no delimiters", "b1").is_err());
    }

    #[test]
    fn fast_paths_agree_with_the_simple_definitions() {
        let samples: [&[u8]; 12] = [
            b"",
            b"a\r\nb\r\n",
            b"a\nb",
            b"a\rb",
            b"\nb",
            b"a\r",
            b"\r\n",
            b"no line end",
            b"caf\xc3\xa9\r\n",
            b"nul\0\r\n",
            &[b'x'; 999],
            &[b'x'; 998],
        ];
        for s in samples {
            assert_eq!(is_crlf(s), to_crlf(s) == s, "{s:?}");
            assert_eq!(*to_crlf_cow(s), *to_crlf(s));
            let simple = !s.iter().any(|&b| b >= 0x80 || b == 0)
                && s.split(|&b| b == b'\n').all(|l| l.len() <= 998);
            assert_eq!(is_7bit_safe(s), simple, "{s:?}");
        }
        let long_line = [vec![b'y'; 70], b"\n".to_vec(), vec![b'z'; 999]].concat();
        assert!(!is_7bit_safe(&long_line));
        for len in [
            0, 1, 2, 3, 56, 57, 58, 114, 3647, 3648, 3649, 7296, 7297, 10_000, 100_001,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let text = base64::engine::general_purpose::STANDARD.encode(&data);
            let simple: Vec<u8> = text
                .as_bytes()
                .chunks(76)
                .flat_map(|c| [c, b"\r\n"].concat())
                .collect();
            let lines = encode_base64_lines(&data);
            assert_eq!(lines, simple, "{len}");
            assert_eq!(decode_base64(&lines).unwrap(), data);
            // In place: the same text after any prefix, whatever the length.
            for prefix in [&b""[..], b"H: v\r\n\r\n", &[b'p'; 5000]] {
                let mut want = prefix.to_vec();
                want.extend_from_slice(&simple);
                let got = encode_base64_lines_in_place(prefix, data.clone());
                assert_eq!(got, want, "{len} after {}", prefix.len());
            }
            // Other whitespace and missing padding still decode (the general path).
            let spaced: Vec<u8> = text.bytes().flat_map(|b| [b, b' ']).collect();
            assert_eq!(decode_base64(&spaced).unwrap(), data);
            assert_eq!(
                decode_base64(text.trim_end_matches('=').as_bytes()).unwrap(),
                data
            );
        }
        assert!(decode_base64(b"@@@@").is_err());
        // Padding in the middle is not base64, also when it falls at the end of a fast-path
        // block; CR and LF alone are line breaks wherever they are.
        let mut padded = vec![b'Q'; 8190];
        padded.extend_from_slice(b"==QUJD");
        assert!(decode_base64(&padded).is_err());
        assert_eq!(decode_base64(b"QU\rJ\nD").unwrap(), b"ABC");
        let body = b"--b\r\nx--b\r\n\r\n--b\r\nsecond\r\n--b--\r\n";
        assert_eq!(
            split_multipart(body, "b").unwrap(),
            vec![&b"x--b\r\n"[..], &b"second"[..]]
        );
    }

    #[test]
    fn qp_round_trip_and_crlf() {
        let text = "Grüße, a long line ".repeat(10).into_bytes();
        let qp = encode_qp(&text);
        assert!(is_7bit_safe(&qp));
        assert_eq!(decode_qp(&qp), text);
        assert_eq!(to_crlf(b"a\nb\r\nc\rd"), b"a\r\nb\r\nc\r\nd");
        assert_eq!(
            ContentType::parse("Multipart/Signed; boundary=\"a;b\"; micalg=sha-256")
                .param("boundary"),
            Some("a;b")
        );
    }
}
