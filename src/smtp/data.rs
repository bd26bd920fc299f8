//! The message on the wire after DATA, both ways: [`DataDecoder`] reads what a client sends to
//! our listener, [`Canonicalizer`] (through [`relay_chunks`]) prepares every copy the relay
//! hands to the next hop.
//!
//! RFC 5321 section 4.1.1.4 ends the data with `<CRLF>.<CRLF>` and nothing else, and section
//! 2.3.8 allows no other line end. Receivers disagree on anything less: Postfix before 3.9
//! (`smtpd_forbid_bare_newline = no`, its default) ends DATA at `<LF>.<CR><LF>` or `<LF>.<LF>`
//! and reads what follows as commands. Content the gateway decrypts or unwraps comes from the
//! sender as it is, so a bare LF inside it would let an outsider end our DATA early at the
//! re-injection smtpd and run their own `MAIL FROM`/`RCPT TO` there, with no filter and a
//! trusted client address (SMTP smuggling, CVE-2023-51764 on Postfix's side). Hence:
//!
//! - **Sending.** Every relayed copy has CRLF line ends only (a bare CR or a bare LF becomes
//!   CRLF) and every line is dot-stuffed (section 4.5.2), so no receiver can find the end of
//!   data anywhere but at the end. The line ends are ours to fix ([`Canonicalizer`]); the
//!   stuffing and the terminator are lettre's: `AsyncSmtpConnection::message_iter` runs every
//!   part through its `ClientCodec`, which doubles a dot that follows CRLF (its state carries
//!   over from part to part) and then writes `<CRLF>.<CRLF>`. That codec is right for CRLF-only
//!   input and only for it (after a bare LF it does not stuff), which is exactly what the
//!   canonicalizer guarantees. Writing the stuffed bytes and the terminator ourselves would be
//!   cleaner, but lettre 0.11 offers no raw write on a connection (its `command` takes UTF-8
//!   text and waits for a reply, and after STARTTLS the stream is lettre's), so the two compose:
//!   canonical line ends here, stuffing there. A CRLF-clean chunk passes through borrowed (one
//!   `memchr2` scan, no copy); only a chunk with a bare CR or LF is rebuilt.
//! - **Receiving.** [`DataDecoder`] ends the data at `<CRLF>.<CRLF>` only (the CRLF of the DATA
//!   command counts for the first line, so an empty message is `.<CRLF>` at once) and removes
//!   the stuffed dot of a line that starts after CRLF. A dot after a bare LF, or a `.<CR><CR><LF>`
//!   line, is content. smtp-proto's `DataReceiver` ended the data at `<CRLF>.<CR><CR><LF>` and
//!   missed the end and the stuffed dot on the first line, so the session uses this instead.

use std::borrow::Cow;

use memchr::{memchr, memchr2_iter};

/// Makes message bytes canonical for SMTP, chunk by chunk: a CR not followed by LF and an LF
/// not preceded by CR each become CRLF; everything else passes unchanged. The state between
/// chunks is one bit (the last chunk ended in CR), so chunk boundaries never change the output.
#[derive(Clone, Debug, Default)]
pub struct Canonicalizer {
    /// The previous chunk ended in CR: its LF may start this one.
    pending_cr: bool,
}

impl Canonicalizer {
    /// A canonicalizer at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// The canonical form of `chunk`, given everything before it: `chunk` itself (borrowed)
    /// when it has no bare CR or LF, else a new buffer.
    pub fn encode<'a>(&mut self, chunk: &'a [u8]) -> Cow<'a, [u8]> {
        let Some(&last) = chunk.last() else {
            return Cow::Borrowed(chunk);
        };
        let after_cr = std::mem::replace(&mut self.pending_cr, last == b'\r');
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        let fresh = |len: usize| Vec::with_capacity(len + len / 16 + 2);
        if after_cr && chunk[0] != b'\n' {
            // The CR that ended the previous chunk was bare.
            out.get_or_insert_with(|| fresh(chunk.len())).push(b'\n');
        }
        for at in memchr2_iter(b'\r', b'\n', chunk) {
            let bare = if chunk[at] == b'\r' {
                // A CR at the very end is settled by the next chunk (or by `finish`).
                chunk.get(at + 1).is_some_and(|&b| b != b'\n')
            } else if at == 0 {
                !after_cr
            } else {
                chunk[at - 1] != b'\r'
            };
            if !bare {
                continue;
            }
            let v = out.get_or_insert_with(|| fresh(chunk.len()));
            if chunk[at] == b'\r' {
                v.extend_from_slice(&chunk[copied..=at]);
                v.push(b'\n');
                copied = at + 1;
            } else {
                v.extend_from_slice(&chunk[copied..at]);
                v.push(b'\r');
                copied = at;
            }
        }
        match out {
            None => Cow::Borrowed(chunk),
            Some(mut v) => {
                v.extend_from_slice(&chunk[copied..]);
                Cow::Owned(v)
            }
        }
    }

    /// What completes the message after its last chunk: the LF of a final bare CR, or nothing.
    pub fn finish(&mut self) -> &'static [u8] {
        if std::mem::take(&mut self.pending_cr) {
            b"\n"
        } else {
            b""
        }
    }
}

/// The canonical form of `chunks`, one message cut anywhere, for lettre's `message_iter`.
pub fn canonical_chunks<'a>(
    chunks: impl Iterator<Item = &'a [u8]>,
) -> impl Iterator<Item = Cow<'a, [u8]>> {
    let mut chunks = chunks.fuse();
    let mut canon = Canonicalizer::new();
    std::iter::from_fn(move || match chunks.next() {
        Some(c) => Some(canon.encode(c)),
        None => Some(canon.finish())
            .filter(|t| !t.is_empty())
            .map(Cow::Borrowed),
    })
}

/// The data of one relayed copy, `chunk_len` bytes of the message at a time (a chunk grows by
/// one byte for each bare CR or LF made CRLF), for lettre's `message_iter`. The message's own
/// last line end is left out: lettre writes `<CRLF>.<CRLF>` after the data, and the CRLF before
/// the dot belongs to the message (RFC 5321 section 4.1.1.4), so the next hop receives exactly
/// the canonical form of `message` (a message without a final line end gets one).
pub fn relay_chunks(message: &[u8], chunk_len: usize) -> impl Iterator<Item = Cow<'_, [u8]>> {
    canonical_chunks(without_final_line_end(message).chunks(chunk_len.max(1)))
}

/// `message` less its last line end in canonical form: CRLF, or a bare LF or CR (each of which
/// would have become CRLF).
pub fn without_final_line_end(message: &[u8]) -> &[u8] {
    message
        .strip_suffix(b"\r\n")
        .or_else(|| message.strip_suffix(b"\n"))
        .or_else(|| message.strip_suffix(b"\r"))
        .unwrap_or(message)
}

/// Where a [`DataDecoder`] is within a line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum At {
    /// At the start of a line (after CRLF, or after the DATA command).
    #[default]
    LineStart,
    /// A line began with a dot (removed: stuffing, or the end).
    Dot,
    /// A line began with a dot and a CR (kept back: LF next is the end).
    DotCr,
    /// Inside a line.
    Text,
    /// Inside a line, right after a CR.
    Cr,
}

/// Reads the data of one DATA command (RFC 5321 section 4.1.1.4): ends it at `<CRLF>.<CRLF>`
/// only, and removes the stuffed dot of every line (section 4.5.2). Line ends are kept as they
/// arrived; the relay canonicalises every copy it sends.
#[derive(Clone, Debug, Default)]
pub struct DataDecoder {
    at: At,
}

impl DataDecoder {
    /// A decoder right after the 354 reply to DATA.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the message bytes in `input` to `out`. Returns `Some(n)` once the end of data
    /// has been read, `n` being the bytes of `input` it took (the rest are commands); `None`
    /// when all of `input` was message.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let mut i = 0;
        while let Some(&b) = input.get(i) {
            match self.at {
                At::Text => match memchr(b'\r', &input[i..]) {
                    Some(n) => {
                        out.extend_from_slice(&input[i..=i + n]);
                        i += n + 1;
                        self.at = At::Cr;
                    }
                    None => {
                        out.extend_from_slice(&input[i..]);
                        return None;
                    }
                },
                At::Cr => {
                    out.push(b);
                    i += 1;
                    self.at = match b {
                        b'\n' => At::LineStart,
                        b'\r' => At::Cr,
                        _ => At::Text,
                    };
                }
                At::LineStart if b == b'.' => {
                    i += 1;
                    self.at = At::Dot;
                }
                At::Dot if b == b'\r' => {
                    i += 1;
                    self.at = At::DotCr;
                }
                At::LineStart | At::Dot => self.at = At::Text,
                At::DotCr if b == b'\n' => return Some(i + 1),
                At::DotCr => {
                    // ".<CR>" then more: the dot was stuffing, the CR is content.
                    out.push(b'\r');
                    self.at = At::Cr;
                }
            }
        }
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The canonical form, one byte at a time: the judge for the chunked code.
    pub(crate) fn canonical(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &b) in input.iter().enumerate() {
            match b {
                b'\r' => out.extend_from_slice(b"\r\n"),
                b'\n' if i > 0 && input[i - 1] == b'\r' => {}
                b'\n' => out.extend_from_slice(b"\r\n"),
                _ => out.push(b),
            }
        }
        out
    }

    fn encode_cut(input: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut pieces = Vec::new();
        let mut from = 0;
        for &c in cuts {
            let c = c.clamp(from, input.len());
            pieces.push(&input[from..c]);
            from = c;
        }
        pieces.push(&input[from..]);
        canonical_chunks(pieces.into_iter())
            .flat_map(|c| c.into_owned())
            .collect()
    }

    /// Every line end is CRLF.
    pub(crate) fn crlf_only(data: &[u8]) -> bool {
        data.iter().enumerate().all(|(i, &b)| match b {
            b'\r' => data.get(i + 1) == Some(&b'\n'),
            b'\n' => i > 0 && data[i - 1] == b'\r',
            _ => true,
        })
    }

    /// The smuggling variants: each would end DATA early at some receiver.
    const VARIANTS: [(&[u8], &[u8]); 5] = [
        (b"\n.\r\n", b"\r\n.\r\n"),
        (b"\r.\r\n", b"\r\n.\r\n"),
        (b"\n.\n", b"\r\n.\r\n"),
        (b"\r\n.\n", b"\r\n.\r\n"),
        (b"\r\n.\r\n", b"\r\n.\r\n"),
    ];

    const SMUGGLED: &[u8] = b"MAIL FROM:<ceo@acme.test>\r\nRCPT TO:<victim@x.test>\r\nDATA";

    #[test]
    fn smuggling_variants_become_crlf_inside_at_the_start_and_at_the_end_cut_anywhere() {
        for (variant, fixed) in VARIANTS {
            let placed: [(Vec<u8>, Vec<u8>); 3] = [
                (
                    [b"text".as_slice(), variant, SMUGGLED].concat(),
                    [b"text".as_slice(), fixed, SMUGGLED].concat(),
                ),
                ([variant, SMUGGLED].concat(), [fixed, SMUGGLED].concat()),
                (
                    [b"text".as_slice(), variant].concat(),
                    [b"text".as_slice(), fixed].concat(),
                ),
            ];
            for (input, want) in placed {
                assert_eq!(encode_cut(&input, &[]), want, "{input:?}");
                for cut in 0..=input.len() {
                    assert_eq!(encode_cut(&input, &[cut]), want, "{input:?} cut at {cut}");
                }
                let every: Vec<usize> = (1..input.len()).collect();
                assert_eq!(encode_cut(&input, &every), want, "{input:?} byte by byte");
            }
        }
    }

    #[test]
    fn crlf_clean_chunks_are_borrowed_not_copied() {
        let mut c = Canonicalizer::new();
        let a: &[u8] = b"From: a\r\n\r\nline\r";
        let b: &[u8] = b"\n.dot\r\nend";
        assert!(matches!(c.encode(a), Cow::Borrowed(x) if x == a));
        assert!(matches!(c.encode(b), Cow::Borrowed(x) if x == b));
        assert_eq!(c.finish(), b"");
        // A bare CR at the end of one chunk: the LF comes with the next one.
        assert_eq!(c.encode(b"x\r").as_ref(), b"x\r");
        assert_eq!(c.encode(b"y").as_ref(), b"\ny");
        assert_eq!(c.encode(b"z\r").as_ref(), b"z\r");
        assert_eq!(c.finish(), b"\n");
    }

    #[test]
    fn relay_chunks_leave_out_the_final_line_end_in_any_form() {
        let joined =
            |m: &[u8], n| -> Vec<u8> { relay_chunks(m, n).flat_map(|c| c.into_owned()).collect() };
        for (m, want) in [
            (b"a\r\nb\r\n".as_slice(), b"a\r\nb".as_slice()),
            (b"a\nb\n", b"a\r\nb"),
            (b"a\rb\r", b"a\r\nb"),
            (b"a\r\r", b"a\r\n"),
            (b"a\n\r", b"a\r\n"),
            (b"a", b"a"),
            (b"", b""),
        ] {
            for n in 1..=4 {
                assert_eq!(joined(m, n), want, "{m:?} in chunks of {n}");
            }
        }
    }

    fn decode(input: &[u8], cuts: &[usize]) -> (Vec<u8>, Option<usize>) {
        let mut d = DataDecoder::new();
        let mut out = Vec::new();
        let mut from = 0;
        for &c in cuts.iter().chain([input.len()].iter()) {
            let c = c.clamp(from, input.len());
            if let Some(n) = d.feed(&input[from..c], &mut out) {
                return (out, Some(from + n));
            }
            from = c;
        }
        (out, None)
    }

    #[test]
    fn decoder_ends_only_at_crlf_dot_crlf_and_unstuffs() {
        // (data, the message, what follows the end: None when there is no end)
        for (input, message, after) in [
            (
                b".\r\nQUIT\r\n".as_slice(),
                b"".as_slice(),
                Some(b"QUIT\r\n".as_slice()),
            ),
            (b"..a\r\n.\r\n", b".a\r\n", Some(b"")),
            (b"a\r\n..\r\n.\r\nX", b"a\r\n.\r\n", Some(b"X")),
            (b"a\n.\r\nMAIL\r\n.\r\n", b"a\n.\r\nMAIL\r\n", Some(b"")),
            (b"a\n.\nb\r\n.\r\n", b"a\n.\nb\r\n", Some(b"")),
            (b"a\r.\r\nb\r\n.\r\n", b"a\r.\r\nb\r\n", Some(b"")),
            (b"a\r\n.\nb\r\n.\r\n", b"a\r\n\nb\r\n", Some(b"")),
            (b"a\r\n.\r\r\nb\r\n.\r\n", b"a\r\n\r\r\nb\r\n", Some(b"")),
            (b"a\r\n.\rb\r\n.\r\n", b"a\r\n\rb\r\n", Some(b"")),
            (b"a\r\n.", b"a\r\n", None),
        ] {
            let end = after.map(|a| input.len() - a.len());
            for cut in 0..=input.len() {
                assert_eq!(
                    decode(input, &[cut]),
                    (message.to_vec(), end),
                    "{input:?} cut at {cut}"
                );
            }
        }
    }

    /// Messages of up to `max` bytes, mostly CR, LF and dots (the bytes that frame SMTP data),
    /// with any other byte among them.
    pub(crate) fn framing_bytes(max: usize) -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            proptest::prop_oneof![
                4 => proptest::sample::select(b"\r\n.".to_vec()),
                1 => proptest::num::u8::ANY,
            ],
            0..max,
        )
    }

    proptest::proptest! {
        /// For any bytes cut anywhere: CRLF line ends only, and the canonical form of the input
        /// whatever the cuts. (relay.rs checks the same through lettre's stuffing, on the wire.)
        #[test]
        fn any_input_any_cuts_gives_canonical_data(
            input in framing_bytes(200),
            mut cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            cuts.sort_unstable();
            let canon = encode_cut(&input, &cuts);
            proptest::prop_assert!(crlf_only(&canon), "{:?}", canon);
            proptest::prop_assert_eq!(&canon, &canonical(&input));
        }
    }
}
