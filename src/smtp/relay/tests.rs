use super::*;
use crate::smtp::data::tests::{canonical, crlf_only, framing_bytes};

/// A reply to STARTTLS must end the chunk it came in: anything after it would stay in
/// lettre's read buffer across the TLS upgrade and be read as protected. A reply split over
/// several reads, or multi-line, is fine; bytes before STARTTLS are not watched.
#[test]
fn plain_text_after_the_starttls_reply_is_refused() {
    let mut g = StartTlsGuard::default();
    assert_eq!(g.read(b"250-hop\r\n250 STARTTLS\r\n"), Ok(()));
    g.wrote(b"STARTTLS\r\n");
    assert_eq!(g.read(b"220 go ahead\r\n250 AUTH PLAIN\r\n"), Err(INJECTED));

    let mut g = StartTlsGuard::default();
    g.wrote(b"starttls\r\n");
    assert_eq!(g.read(b"220-first\r\n220 "), Ok(()));
    assert_eq!(g.read(b"ready\r"), Ok(()));
    assert_eq!(g.read(b"\n"), Ok(()));
    assert_eq!(g, StartTlsGuard::Idle);
    // After the reply, the TLS handshake's bytes are not looked at.
    assert_eq!(g.read(b"\x16\x03\x03\x00\x7a anything\n more"), Ok(()));

    let mut g = StartTlsGuard::default();
    g.wrote(b"STARTTLS\r\n");
    assert_eq!(g.read(b"220 ok\r\n\x16"), Err(INJECTED));
}
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// lettre over memory: the other end of the duplex is the test's next hop.
#[derive(Debug)]
struct Memory(DuplexStream);

impl AsyncRead for Memory {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Memory {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Memory {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        Ok(([127, 0, 0, 1], 25).into())
    }
}

/// Where a receiver that reads lines the RFC way ends the data: the first <CRLF>.<CRLF>,
/// the DATA command's CRLF counting before the first line.
fn end_of_data(wire: &[u8]) -> Option<usize> {
    let framed = [b"\r\n".as_slice(), wire].concat();
    memchr::memmem::find(&framed, b"\r\n.\r\n").map(|at| at + 3)
}

/// Every byte [`send_data`] writes for `message` in chunks of `chunk_len`, as the next hop
/// reads them: it answers 250 at the first end of data and then reads on until lettre is
/// gone, so anything written after that end is in the result too.
async fn wire(message: &[u8], chunk_len: usize) -> Vec<u8> {
    let (client, mut hop) = tokio::io::duplex(1 << 16);
    let next_hop = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        hop.write_all(b"220 hop\r\n").await.unwrap();
        while !got.ends_with(b"\r\n") {
            let n = hop.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        got.clear();
        hop.write_all(b"250 hop\r\n").await.unwrap();
        while end_of_data(&got).is_none() {
            let n = hop.read(&mut buf).await.unwrap();
            assert!(n > 0, "lettre closed before the end of data");
            got.extend_from_slice(&buf[..n]);
        }
        hop.write_all(b"250 2.0.0 ok\r\n").await.unwrap();
        hop.read_to_end(&mut got).await.unwrap();
        got
    });
    let mut conn = AsyncSmtpConnection::connect_with_transport(
        Box::new(Memory(client)),
        &ClientId::Domain("gw.test".into()),
    )
    .await
    .unwrap();
    send_data(&mut conn, message, chunk_len).await.unwrap();
    drop(conn);
    next_hop.await.unwrap()
}

/// The data as the next hop stores it (RFC 5321 section 4.5.2): up to the end of data, one
/// dot removed from every line that starts with one.
fn unstuffed(wire: &[u8], end: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for line in wire[..end - 3].split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}

/// What the wire must be for `message`: CRLF only, one end of data at its very end, and the
/// canonical message (with a final CRLF) inside.
fn check_wire(message: &[u8], wire: &[u8]) -> Result<(), String> {
    let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if !crlf_only(wire) {
        return Err(format!("a bare CR or LF on the wire: {:?}", show(wire)));
    }
    let end = end_of_data(wire);
    if end != Some(wire.len()) {
        return Err(format!(
            "the next hop ends the data at {end:?} of {}: {:?}",
            wire.len(),
            show(wire)
        ));
    }
    let mut want = canonical(message);
    if !want.ends_with(b"\r\n") {
        want.extend_from_slice(b"\r\n");
    }
    let got = unstuffed(wire, wire.len());
    if got != want {
        return Err(format!("stored {:?}, sent {:?}", show(&got), show(&want)));
    }
    Ok(())
}

/// The relay's memory bound: a CRLF-clean message of the largest size goes out as borrowed
/// slices of itself, never copied whole (and with a bare LF, one chunk at a time).
#[test]
fn a_crlf_clean_25_mib_message_is_not_copied() {
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\r\n";
    let message = line.repeat((25usize << 20).div_ceil(line.len()));
    let mut sent = 0;
    for chunk in data::relay_chunks(&message, DATA_CHUNK) {
        assert!(matches!(chunk, std::borrow::Cow::Borrowed(_)));
        assert!(chunk.len() <= DATA_CHUNK);
        sent += chunk.len();
    }
    assert_eq!(
        sent,
        message.len() - 2,
        "all but the final CRLF, which lettre writes"
    );
    let mut bare = message.clone();
    let at = (DATA_CHUNK * 3..)
        .find(|&i| bare[i].is_ascii_alphabetic())
        .unwrap();
    bare[at] = b'\n';
    let owned = data::relay_chunks(&bare, DATA_CHUNK)
        .filter(|c| matches!(c, std::borrow::Cow::Owned(_)))
        .count();
    assert_eq!(owned, 1);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// SMTP smuggling into the next hop: a bare LF or CR next to a dot inside decrypted or
/// unwrapped content, at its start or its end, in any chunking, never ends the data early.
#[test]
fn smuggled_end_of_data_never_reaches_the_next_hop() {
    let smuggled = "MAIL FROM:<ceo@acme.test>\r\nRCPT TO:<victim@x.test>\r\nDATA\r\nforged\r\n";
    let rt = runtime();
    for variant in ["\n.\r\n", "\r.\r\n", "\n.\n", "\r\n.\n", "\r\n.\r\n"] {
        for message in [
            format!("Subject: x\r\n\r\ntext{variant}{smuggled}"),
            format!("{variant}{smuggled}"),
            format!("Subject: x\r\n\r\ntext{variant}"),
        ] {
            for chunk_len in [1, 2, 3, 5, 7, 64, DATA_CHUNK] {
                let wire = rt.block_on(wire(message.as_bytes(), chunk_len));
                if let Err(e) = check_wire(message.as_bytes(), &wire) {
                    panic!("{message:?} in chunks of {chunk_len}: {e}");
                }
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    /// For any message and any chunk size, through lettre: the data has CRLF line ends
    /// only, the end of data exactly once and at its end, and un-stuffed it is the
    /// canonical message.
    #[test]
    fn any_message_reaches_the_next_hop_canonical(
        message in framing_bytes(160),
        chunk_len in 1usize..48,
    ) {
        let wire = runtime().block_on(wire(&message, chunk_len));
        if let Err(e) = check_wire(&message, &wire) {
            proptest::prop_assert!(false, "chunks of {}: {}", chunk_len, e);
        }
    }
}

#[test]
fn next_hop_text_becomes_one_bounded_line() {
    assert_eq!(
        one_line("error at: HELLO\r\n250 fake\rline\t x"),
        "error at: HELLO 250 fake line x"
    );
    let long = one_line(&"é".repeat(1000));
    assert!(long.len() <= 403 && long.ends_with("..."), "{}", long.len());
}

#[tokio::test]
async fn idle_timeout_fires_once_and_stays_failed() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"220 hi\r\n").await.unwrap();
        // Then silence, holding the connection.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut s = IdleTimeout::new(tcp, Duration::from_millis(200));
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"220 hi\r\n");
    let t = std::time::Instant::now();
    let e = s.read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(
        t.elapsed() >= Duration::from_millis(190),
        "{:?}",
        t.elapsed()
    );
    assert!(e.to_string().contains("relay.timeout_secs"), "{e}");
    let t = std::time::Instant::now();
    assert!(s.write_all(b"QUIT\r\n").await.is_err());
    assert!(t.elapsed() < Duration::from_millis(100), "failed at once");
    peer.abort();
}
