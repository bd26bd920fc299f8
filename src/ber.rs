//! BER to DER normalisation for everything other software sends us.
//!
//! RFC 5652 (CMS) and RFC 7292 (PKCS #12) allow BER, and real writers use it: OpenSSL's
//! `-stream` and most mail clients emit indefinite lengths and split content into constructed
//! OCTET STRING segments; NSS exports PKCS #12 the same way. The RustCrypto types decode DER only,
//! so input passes through [`to_der`] first: indefinite lengths become definite, constructed
//! UNIVERSAL OCTET STRINGs become one primitive OCTET STRING, lengths are re-encoded minimally, and
//! SET elements are put in DER order when they are not already (X.690 11.6; `der` rejects unsorted
//! sets). The contents of OCTET STRINGs are copied untouched, so MACs and signatures over them
//! still verify. An implicitly tagged segmented string (`encryptedContent [0] IMPLICIT OCTET
//! STRING`) cannot be told from an explicit tag without the schema, so it stays constructed and
//! its reader joins the segments with [`join_segments`].
//!
//! Input is untrusted: nesting depth is bounded and every length is checked against the bytes
//! present. Output is zeroized on drop, since decrypted key material passes through here.

use zeroize::Zeroizing;

/// Deepest nesting accepted (CMS in S/MIME needs about 15; certificates add a few).
pub const MAX_DEPTH: usize = 48;

const OCTET_STRING: u8 = 0x04;
const CONSTRUCTED_OCTET_STRING: u8 = 0x24;
const SET: u8 = 0x31;

/// Why the bytes are not usable BER.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BerError {
    /// Ran out of bytes inside an element.
    #[error("truncated BER")]
    Truncated,
    /// A length of more than four octets, or longer than the input.
    #[error("impossible BER length")]
    BadLength,
    /// Structurally wrong (indefinite primitive, bad segment, end-of-contents out of place).
    #[error("malformed BER: {0}")]
    Malformed(&'static str),
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("BER nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Bytes left over after the top-level element.
    #[error("{0} trailing bytes after the BER element")]
    Trailing(usize),
}

struct Header<'a> {
    tag: &'a [u8],
    constructed: bool,
    /// `None` for the indefinite form.
    len: Option<usize>,
    header_len: usize,
}

fn header(buf: &[u8]) -> Result<Header<'_>, BerError> {
    let first = *buf.first().ok_or(BerError::Truncated)?;
    let mut pos = 1;
    if first & 0x1f == 0x1f {
        // High tag number form: base-128; four more octets cover any tag we could meet.
        loop {
            let b = *buf.get(pos).ok_or(BerError::Truncated)?;
            pos += 1;
            if b & 0x80 == 0 {
                break;
            }
            if pos > 5 {
                return Err(BerError::Malformed("tag number too large"));
            }
        }
    }
    let tag = &buf[..pos];
    if tag == [0x00] {
        return Err(BerError::Malformed("end-of-contents out of place"));
    }
    let constructed = first & 0x20 != 0;
    let l = *buf.get(pos).ok_or(BerError::Truncated)?;
    pos += 1;
    let len = match l {
        0x00..=0x7f => Some(usize::from(l)),
        0x80 if constructed => None,
        0x80 => {
            return Err(BerError::Malformed(
                "indefinite length on a primitive value",
            ));
        }
        0x81..=0x84 => {
            let n = usize::from(l & 0x7f);
            let bytes = buf.get(pos..pos + n).ok_or(BerError::Truncated)?;
            pos += n;
            Some(
                bytes
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            )
        }
        _ => return Err(BerError::BadLength),
    };
    if let Some(len) = len
        && buf.len() - pos < len
    {
        return Err(BerError::BadLength);
    }
    Ok(Header {
        tag,
        constructed,
        len,
        header_len: pos,
    })
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Splits DER content into its elements (each with header).
fn split_der(mut content: &[u8]) -> Result<Vec<&[u8]>, BerError> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let h = header(content)?;
        let total = h.header_len
            + h.len
                .ok_or(BerError::Malformed("indefinite length in DER"))?;
        out.push(&content[..total]);
        content = &content[total..];
    }
    Ok(out)
}

/// Normalises the element at the start of `buf` into `out`; returns the bytes it occupied.
fn element(buf: &[u8], depth: usize, out: &mut Vec<u8>) -> Result<usize, BerError> {
    if depth > MAX_DEPTH {
        return Err(BerError::TooDeep);
    }
    let h = header(buf)?;
    let start = h.header_len;
    if !h.constructed {
        let len = h.len.unwrap_or(0);
        out.extend_from_slice(h.tag);
        push_len(out, len);
        out.extend_from_slice(&buf[start..start + len]);
        return Ok(start + len);
    }

    let mut content = Zeroizing::new(Vec::new());
    let end = match h.len {
        Some(len) => {
            let end = start + len;
            let mut pos = start;
            while pos < end {
                pos += element(&buf[pos..end], depth + 1, &mut content)?;
            }
            end
        }
        None => {
            let mut pos = start;
            loop {
                match buf.get(pos..pos + 2) {
                    Some([0, 0]) => break pos + 2,
                    Some(_) => pos += element(&buf[pos..], depth + 1, &mut content)?,
                    None => return Err(BerError::Truncated),
                }
            }
        }
    };

    if h.tag == [CONSTRUCTED_OCTET_STRING] {
        let joined = join_segments(&content)?;
        out.push(OCTET_STRING);
        push_len(out, joined.len());
        out.extend_from_slice(&joined);
    } else if h.tag == [SET] {
        let mut parts = split_der(&content)?;
        if parts.windows(2).any(|w| w[0] > w[1]) {
            parts.sort();
        }
        out.push(SET);
        push_len(out, content.len());
        for p in parts {
            out.extend_from_slice(p);
        }
    } else {
        out.extend_from_slice(h.tag);
        push_len(out, content.len());
        out.extend_from_slice(&content);
    }
    Ok(end)
}

/// Re-encodes one BER element (the whole input, nothing may follow it) as DER.
pub fn to_der(input: &[u8]) -> Result<Zeroizing<Vec<u8>>, BerError> {
    let mut out = Zeroizing::new(Vec::with_capacity(input.len() + 16));
    let used = element(input, 0, &mut out)?;
    if used != input.len() {
        return Err(BerError::Trailing(input.len() - used));
    }
    Ok(out)
}

/// Normalised bytes: the input itself when it already was DER (the common case: smimegw and
/// OpenSSL without `-stream` write DER), else a zeroized normalised copy.
pub enum Der<'a> {
    /// The input, already DER.
    Borrowed(&'a [u8]),
    /// A normalised copy.
    Owned(Zeroizing<Vec<u8>>),
}

impl std::ops::Deref for Der<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Borrowed(b) => b,
            Self::Owned(v) => v,
        }
    }
}

/// [`to_der`] without the copy when the input already is DER, as [`to_der`] would write it (a
/// 10 MiB message's ciphertext used to be copied once per nesting level, then zeroized).
pub fn to_der_view(input: &[u8]) -> Result<Der<'_>, BerError> {
    if is_der(input, 0) == Some(input.len()) {
        Ok(Der::Borrowed(input))
    } else {
        to_der(input).map(Der::Owned)
    }
}

/// Whether the element at the start of `buf` is exactly what [`element`] would write for it
/// (definite minimal lengths, no constructed OCTET STRING, SET elements in order); returns the
/// bytes it occupies. `None` means "normalise it" (or an error [`element`] will report).
fn is_der(buf: &[u8], depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let h = header(buf).ok()?;
    let len = h.len?;
    // Minimal length octets: what push_len would write.
    let tag_len = h.tag.len();
    let len_octets = h.header_len - tag_len;
    let minimal = if len < 0x80 {
        1
    } else {
        1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
    };
    if len_octets != minimal {
        return None;
    }
    let end = h.header_len + len;
    if !h.constructed {
        return Some(end);
    }
    if h.tag == [CONSTRUCTED_OCTET_STRING] {
        return None;
    }
    let mut pos = h.header_len;
    let mut prev: Option<&[u8]> = None;
    while pos < end {
        let n = is_der(&buf[pos..end], depth + 1)?;
        let child = &buf[pos..pos + n];
        if h.tag == [SET] && prev.is_some_and(|p| p > child) {
            return None;
        }
        prev = Some(child);
        pos += n;
    }
    Some(end)
}

/// Concatenates a run of DER OCTET STRING segments: the content of a constructed string whose
/// segments [`to_der`] has already normalised (used for implicitly tagged strings).
pub fn join_segments(segments: &[u8]) -> Result<Zeroizing<Vec<u8>>, BerError> {
    let mut joined = Zeroizing::new(Vec::with_capacity(segments.len()));
    for seg in split_der(segments)? {
        let h = header(seg)?;
        if h.tag != [OCTET_STRING] {
            return Err(BerError::Malformed(
                "a constructed OCTET STRING segment is not an OCTET STRING",
            ));
        }
        joined.extend_from_slice(&seg[h.header_len..]);
    }
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indefinite_lengths_and_segmented_strings_become_der() {
        // SEQUENCE (indefinite) { OCTET STRING constructed (indefinite) { "ab", "c" }, NULL }
        let ber = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00, 0x05,
            0x00, 0x00, 0x00,
        ];
        assert_eq!(
            *to_der(&ber).unwrap(),
            [0x30, 0x07, 0x04, 0x03, b'a', b'b', b'c', 0x05, 0x00]
        );
        assert_eq!(
            *to_der(&[0x04, 0x81, 0x01, 0xff]).unwrap(),
            [0x04, 0x01, 0xff]
        );
        let der = [0x30, 0x03, 0x02, 0x01, 0x05];
        assert_eq!(*to_der(&der).unwrap(), der);
    }

    #[test]
    fn der_input_is_borrowed_and_ber_input_normalised() {
        let long = [vec![0x04, 0x81, 0xc8], vec![7u8; 200]].concat();
        let der_inputs: [&[u8]; 4] = [
            &[0x30, 0x03, 0x02, 0x01, 0x05],
            &[0x31, 0x06, 0x02, 0x01, 0x03, 0x02, 0x01, 0x05],
            &[0xa0, 0x02, 0x05, 0x00],
            &long,
        ];
        for d in der_inputs {
            assert!(
                matches!(to_der_view(d).unwrap(), Der::Borrowed(_)),
                "{d:02x?}"
            );
            assert_eq!(&*to_der_view(d).unwrap(), d);
        }
        let ber_inputs: [&[u8]; 4] = [
            // Non-minimal length, unsorted SET, indefinite length, constructed OCTET STRING.
            &[0x04, 0x81, 0x01, 0xff],
            &[0x31, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03],
            &[0x30, 0x80, 0x05, 0x00, 0x00, 0x00],
            &[0x24, 0x03, 0x04, 0x01, 0x41],
        ];
        for b in ber_inputs {
            let v = to_der_view(b).unwrap();
            assert!(matches!(v, Der::Owned(_)), "{b:02x?}");
            assert_eq!(*v, **to_der(b).unwrap());
        }
        assert!(to_der_view(&[0x04, 0x01, 0x41, 0x99]).is_err());
        assert!(to_der_view(&[0x30, 0x05, 0x01]).is_err());
    }

    #[test]
    fn implicit_segments_stay_for_the_schema_aware_reader() {
        // [0] constructed (indefinite) { OCTET STRING "ab", OCTET STRING "c" }
        let ber = [
            0xa0, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0x00, 0x00,
        ];
        let der = to_der(&ber).unwrap();
        assert_eq!(der[0], 0xa0);
        assert_eq!(*join_segments(&der[2..]).unwrap(), *b"abc");
    }

    #[test]
    fn unsorted_sets_are_sorted() {
        let ber = [0x31, 0x81, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03];
        assert_eq!(
            *to_der(&ber).unwrap(),
            [0x31, 0x06, 0x02, 0x01, 0x03, 0x02, 0x01, 0x05]
        );
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        assert_eq!(
            to_der(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            Err(BerError::BadLength)
        );
        assert!(matches!(
            to_der(&[0x04, 0x80, 0x00, 0x00]),
            Err(BerError::Malformed(_))
        ));
        assert!(to_der(&[0x30, 0x80, 0x04, 0x01]).is_err());
        let mut deep = Vec::new();
        for _ in 0..200 {
            deep.extend_from_slice(&[0x30, 0x80]);
        }
        assert_eq!(to_der(&deep), Err(BerError::TooDeep));
        assert_eq!(
            to_der(&[0x04, 0x01, 0x41, 0x99]),
            Err(BerError::Trailing(1))
        );
        let ok = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x00, 0x00, 0x00, 0x00,
        ];
        for i in 0..ok.len() {
            assert!(to_der(&ok[..i]).is_err(), "prefix {i}");
        }
    }
}
