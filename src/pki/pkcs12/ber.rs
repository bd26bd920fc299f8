//! BER to DER, as far as PKCS #12 files need it.
//!
//! RFC 7292 only asks for BER, and NSS (so Firefox and Thunderbird, the usual source of a
//! user's existing S/MIME identity) writes indefinite lengths everywhere and splits OCTET
//! STRINGs into constructed segments. The `der` crate reads DER only, so each layer is
//! normalised before it is decoded: indefinite lengths become definite, constructed universal
//! OCTET STRINGs become primitive, non-minimal lengths become minimal.
//!
//! Contents of OCTET STRINGs are opaque here, which is what keeps this correct: the MAC covers
//! the authenticated safe's octets exactly as written, and certificates are copied untouched.
//! An implicitly tagged constructed string (`encryptedContent [0] IMPLICIT`) cannot be told
//! apart from an explicit tag without the schema, so it is left constructed and its reader
//! joins the segments ([`join_segments`]).

use der::asn1::OctetStringRef;
use der::{Decode, Reader, SliceReader};
use zeroize::Zeroizing;

use super::Pkcs12Error;

/// Deeper than any real PKCS #12 layer; bounds recursion on hostile input.
const MAX_DEPTH: usize = 32;

const OCTET_STRING: u8 = 0x04;
const CONSTRUCTED_OCTET_STRING: u8 = 0x24;

fn malformed(what: &str) -> Pkcs12Error {
    Pkcs12Error::Malformed(format!("BER: {what}"))
}

/// Re-encodes one BER element (and nothing after it) as DER. The output is zeroized on drop
/// because decrypted key material passes through here.
pub(super) fn to_der(input: &[u8]) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
    let mut out = Zeroizing::new(Vec::with_capacity(input.len() + 16));
    let used = element(input, 0, &mut out)?;
    if used != input.len() {
        return Err(malformed("trailing data after the encoded value"));
    }
    Ok(out)
}

struct Header<'a> {
    tag: &'a [u8],
    constructed: bool,
    /// `None` for the indefinite form.
    len: Option<usize>,
    header_len: usize,
}

fn header(buf: &[u8]) -> Result<Header<'_>, Pkcs12Error> {
    let truncated = || malformed("truncated");
    let first = *buf.first().ok_or_else(truncated)?;
    let mut pos = 1;
    if first & 0x1f == 0x1f {
        // High tag number form: base-128, at most four more octets for any tag we could meet.
        loop {
            let b = *buf.get(pos).ok_or_else(truncated)?;
            pos += 1;
            if b & 0x80 == 0 {
                break;
            }
            if pos > 5 {
                return Err(malformed("tag number too large"));
            }
        }
    }
    let tag = &buf[..pos];
    let constructed = first & 0x20 != 0;
    let l = *buf.get(pos).ok_or_else(truncated)?;
    pos += 1;
    let len = match l {
        0x00..=0x7f => Some(usize::from(l)),
        0x80 if constructed => None,
        0x80 => return Err(malformed("indefinite length on a primitive value")),
        0x81..=0x84 => {
            let n = usize::from(l & 0x7f);
            let bytes = buf.get(pos..pos + n).ok_or_else(truncated)?;
            pos += n;
            Some(
                bytes
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            )
        }
        _ => return Err(malformed("length too large")),
    };
    if let Some(len) = len
        && buf.len() - pos < len
    {
        return Err(truncated());
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

/// Normalises the element at the start of `buf` into `out`; returns the bytes it occupied.
fn element(buf: &[u8], depth: usize, out: &mut Vec<u8>) -> Result<usize, Pkcs12Error> {
    if depth > MAX_DEPTH {
        return Err(malformed("nested too deeply"));
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
                    None => return Err(malformed("missing end-of-contents")),
                }
            }
        }
    };

    if h.tag == [CONSTRUCTED_OCTET_STRING] {
        let joined = join_segments(&content)?;
        out.push(OCTET_STRING);
        push_len(out, joined.len());
        out.extend_from_slice(&joined);
    } else {
        out.extend_from_slice(h.tag);
        push_len(out, content.len());
        out.extend_from_slice(&content);
    }
    Ok(end)
}

/// Concatenates a run of DER OCTET STRING segments (the contents of a constructed string whose
/// own segments have already been normalised).
pub(super) fn join_segments(segments: &[u8]) -> Result<Zeroizing<Vec<u8>>, Pkcs12Error> {
    let mut joined = Zeroizing::new(Vec::with_capacity(segments.len()));
    let mut reader =
        SliceReader::new(segments).map_err(|_| malformed("constructed string too long"))?;
    while !reader.is_finished() {
        let seg = <&OctetStringRef>::decode(&mut reader)
            .map_err(|_| malformed("a constructed OCTET STRING segment is not an OCTET STRING"))?;
        joined.extend_from_slice(seg.as_bytes());
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
        // A non-minimal length is made minimal; DER passes through unchanged.
        assert_eq!(
            *to_der(&[0x04, 0x81, 0x01, 0xff]).unwrap(),
            [0x04, 0x01, 0xff]
        );
        let der = [0x30, 0x03, 0x02, 0x01, 0x05];
        assert_eq!(*to_der(&der).unwrap(), der);
    }

    #[test]
    fn broken_ber_is_an_error() {
        for bad in [
            &[0x30, 0x80, 0x05, 0x00][..],            // no end-of-contents
            &[0x04, 0x80, 0x00, 0x00],                // indefinite primitive
            &[0x30, 0x05, 0x05, 0x00],                // length beyond the input
            &[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9], // absurd length
            &[0x24, 0x03, 0x02, 0x01, 0x00],          // segment that is not an OCTET STRING
            &[0x05, 0x00, 0x00],                      // trailing data
            &[],
        ] {
            assert!(to_der(bad).is_err(), "{bad:02x?}");
        }
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend_from_slice(&[0x30, 0x80]);
        }
        assert!(to_der(&deep).is_err());
    }
}
