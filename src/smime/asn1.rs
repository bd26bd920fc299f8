//! Just enough DER walking and writing for SignedData, where the exact bytes matter, and for
//! reading EnvelopedData without copying its (possibly large) ciphertext.
//!
//! Signatures in CMS are over bytes as received (the signed attributes, the certificates), so the
//! reader slices elements out of the normalised input instead of decoding and re-encoding them;
//! the writer assembles the message from pieces whose encodings are already fixed. Input reaching
//! here has been through [`crate::ber::to_der`]: definite, minimal lengths only.

/// One element: its first tag octet, its contents, and the whole encoding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    pub(crate) content: &'a [u8],
    pub(crate) raw: &'a [u8],
}

/// Reads the element at the start of `buf`; returns it and what follows it.
pub(crate) fn read(buf: &[u8]) -> Result<(Tlv<'_>, &[u8]), &'static str> {
    let tag = *buf.first().ok_or("truncated element")?;
    if tag & 0x1f == 0x1f {
        return Err("high tag numbers do not occur in SignedData or EnvelopedData");
    }
    let first = *buf.get(1).ok_or("truncated length")?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err("unsupported length form");
        }
        let bytes = buf.get(2..2 + n).ok_or("truncated length")?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n)
    };
    let end = header.checked_add(len).ok_or("impossible length")?;
    let content = buf.get(header..end).ok_or("length beyond the data")?;
    Ok((
        Tlv {
            tag,
            content,
            raw: &buf[..end],
        },
        &buf[end..],
    ))
}

/// The elements of a constructed value's contents, in order.
pub(crate) fn children(mut content: &[u8]) -> Result<Vec<Tlv<'_>>, &'static str> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (t, rest) = read(content)?;
        out.push(t);
        content = rest;
    }
    Ok(out)
}

/// Encodes one element with a definite, minimal length.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    push_header(&mut out, tag, content.len());
    out.extend_from_slice(content);
    out
}

/// Appends a tag and a definite, minimal length, for contents written afterwards (in place, so
/// that a large content is written once).
pub(crate) fn push_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// The encoded size of an element with `len` content octets (one tag octet).
pub(crate) fn encoded_len(len: usize) -> usize {
    let len_octets = if len < 0x80 {
        1
    } else {
        1 + (usize::BITS - len.leading_zeros()).div_ceil(8) as usize
    };
    1 + len_octets + len
}

/// A DER `SET OF` from already encoded elements: sorted (X.690 section 11.6) and without
/// duplicates (the same certificate named twice, say).
pub(crate) fn set_of(tag: u8, mut elements: Vec<Vec<u8>>) -> Vec<u8> {
    elements.sort();
    elements.dedup();
    tlv(tag, &elements.concat())
}

/// The same element with its first tag octet replaced: `[0] IMPLICIT SET OF` to `SET OF` and
/// back (RFC 5652 section 5.4: the signature covers the signed attributes with the SET tag).
pub(crate) fn retag(raw: &[u8], tag: u8) -> Vec<u8> {
    let mut v = raw.to_vec();
    if let Some(first) = v.first_mut() {
        *first = tag;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_and_refuses_overruns() {
        let long = vec![7u8; 300];
        let enc = tlv(0x04, &long);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(encoded_len(300), enc.len());
        for n in [0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 24] {
            assert_eq!(encoded_len(n), tlv(0x04, &vec![0; n]).len(), "{n}");
        }
        let (t, rest) = read(&enc).unwrap();
        assert_eq!((t.tag, t.content, rest.len()), (0x04, &long[..], 0));
        assert!(read(&[0x30, 0x05, 0x01]).is_err());
        assert!(read(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(read(&[0x30, 0x88, 1, 2, 3, 4, 5, 6, 7, 8]).is_err());
        assert!(read(&[0x1f, 0x01, 0x00]).is_err());
        assert!(read(&[]).is_err());
        let set = set_of(0x31, vec![vec![2, 1, 5], vec![2, 1, 3], vec![2, 1, 5]]);
        assert_eq!(set, [0x31, 6, 2, 1, 3, 2, 1, 5]);
    }
}
