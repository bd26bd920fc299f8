//! Just enough HTTP/1.1 for a scrape: one GET per connection, parsed without I/O.
//!
//! The listener feeds the bytes it has read to [`parse_request`], which says "need more", gives a
//! typed request, or names what is wrong; it never allocates more than [`MAX_REQUEST`] bytes' worth
//! of input. Besides the request line (RFC 9112 section 3) two header fields are read: `Host`
//! (RFC 9112 section 3.2: exactly one), which the listener checks against the names it answers
//! to, and `Authorization`, for an optional bearer token (RFC 6750); the others are ignored.

/// The largest request head accepted (request line and header fields). Prometheus sends a few
/// hundred bytes.
pub const MAX_REQUEST: usize = 8 * 1024;

/// A parsed request: only GET and HEAD are served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Whether the body should be left out (HEAD).
    pub head: bool,
    /// The path, without the query string.
    pub path: String,
    /// The `Host` field's value, trimmed.
    pub host: Option<String>,
    /// The `Authorization` field's value, trimmed.
    pub authorization: Option<String>,
}

/// Why a request cannot be served; each maps to one status code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The head is longer than [`MAX_REQUEST`].
    #[error("request head longer than {MAX_REQUEST} bytes")]
    TooLarge,
    /// Not an HTTP/1.x request line.
    #[error("malformed request line")]
    Malformed,
    /// A method other than GET or HEAD.
    #[error("method {0} not allowed (only GET and HEAD)")]
    Method(String),
    /// A header field that may appear once appears twice (`Host`, `Authorization`).
    #[error("more than one {0} header field")]
    Repeated(&'static str),
}

impl HttpError {
    /// The status line's code and reason.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            HttpError::TooLarge => (431, "Request Header Fields Too Large"),
            HttpError::Malformed => (400, "Bad Request"),
            HttpError::Method(_) => (405, "Method Not Allowed"),
            HttpError::Repeated(_) => (400, "Bad Request"),
        }
    }
}

/// Parses what has arrived so far: `Ok(None)` while the head is incomplete (an empty line ends
/// it; a bare LF is accepted as line end, RFC 9112 section 2.2).
pub fn parse_request(buf: &[u8]) -> Result<Option<Request>, HttpError> {
    let end = find_head_end(buf);
    let Some(end) = end else {
        return if buf.len() >= MAX_REQUEST {
            Err(HttpError::TooLarge)
        } else {
            Ok(None)
        };
    };
    if end > MAX_REQUEST {
        return Err(HttpError::TooLarge);
    }
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(end);
    let line = std::str::from_utf8(&buf[..line_end])
        .map_err(|_| HttpError::Malformed)?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed);
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(HttpError::Malformed);
    }
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        other if !other.is_empty() && other.bytes().all(|b| b.is_ascii_uppercase()) => {
            return Err(HttpError::Method(other.to_string()));
        }
        _ => return Err(HttpError::Malformed),
    };
    let path = target.split('?').next().unwrap_or(target).to_string();
    let (mut host, mut authorization) = (None, None);
    for field in buf[line_end.min(end)..end].split(|&b| b == b'\n') {
        let field = String::from_utf8_lossy(field);
        let Some((name, value)) = field.split_once(':') else {
            continue;
        };
        let (slot, name) = if name.eq_ignore_ascii_case("host") {
            (&mut host, "Host")
        } else if name.eq_ignore_ascii_case("authorization") {
            (&mut authorization, "Authorization")
        } else {
            continue;
        };
        if slot.is_some() {
            return Err(HttpError::Repeated(name));
        }
        *slot = Some(value.trim().to_string());
    }
    Ok(Some(Request {
        head,
        path,
        host,
        authorization,
    }))
}

/// The index just past the empty line that ends the head, if it has arrived.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + p;
        let rest = &buf[nl + 1..];
        if rest.starts_with(b"\n") {
            return Some(nl + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        i = nl + 1;
    }
    None
}

/// A complete response; the connection is closed after it (`Connection: close`).
pub fn response(code: u16, reason: &str, content_type: &str, body: &[u8], head: bool) -> Vec<u8> {
    response_with(code, reason, &[], content_type, body, head)
}

/// [`response`] with more header fields (name, value), such as `WWW-Authenticate`.
pub fn response_with(
    code: u16,
    reason: &str,
    fields: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
    head: bool,
) -> Vec<u8> {
    let extra: String = fields
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_request_parses_once_complete() {
        let full =
            b"GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9925\r\nAccept: text/plain\r\n\r\n";
        for cut in 0..full.len() - 1 {
            assert_eq!(parse_request(&full[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(
            parse_request(full),
            Ok(Some(Request {
                head: false,
                path: "/metrics".into(),
                host: Some("127.0.0.1:9925".into()),
                authorization: None,
            }))
        );
        assert_eq!(
            parse_request(b"HEAD /healthz HTTP/1.0\n\n")
                .unwrap()
                .unwrap(),
            Request {
                head: true,
                path: "/healthz".into(),
                host: None,
                authorization: None,
            }
        );
        let r = parse_request(
            b"GET / HTTP/1.1\r\nhOsT:  localhost \r\nAUTHORIZATION: Bearer x y\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.host.as_deref(), Some("localhost"));
        assert_eq!(r.authorization.as_deref(), Some("Bearer x y"));
    }

    /// Two Host fields could be read differently by a proxy in front and by us (RFC 9112
    /// section 3.2 says 400); two Authorization fields likewise.
    #[test]
    fn repeated_host_or_authorization_is_a_bad_request() {
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: evil.test\r\n\r\n"),
            Err(HttpError::Repeated("Host"))
        );
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nAuthorization: a\r\nauthorization: b\r\n\r\n"),
            Err(HttpError::Repeated("Authorization"))
        );
        assert_eq!(HttpError::Repeated("Host").status().0, 400);
    }

    #[test]
    fn bad_requests_are_named() {
        assert_eq!(
            parse_request(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Err(HttpError::Method("POST".into()))
        );
        assert_eq!(
            parse_request(b"GET /metrics\r\n\r\n"),
            Err(HttpError::Malformed)
        );
        assert_eq!(
            parse_request(b"GET metrics HTTP/1.1\r\n\r\n"),
            Err(HttpError::Malformed)
        );
        assert_eq!(
            parse_request(b"\xff\xfe / HTTP/1.1\r\n\r\n"),
            Err(HttpError::Malformed)
        );
        let long = vec![b'a'; MAX_REQUEST];
        assert_eq!(parse_request(&long), Err(HttpError::TooLarge));
        assert_eq!(HttpError::TooLarge.status().0, 431);
    }

    #[test]
    fn responses_carry_length_and_close() {
        let r = String::from_utf8(response(
            503,
            "Service Unavailable",
            "text/plain",
            b"no",
            false,
        ))
        .unwrap();
        assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{r}");
        assert!(
            r.contains("Content-Length: 2\r\n") && r.ends_with("\r\n\r\nno"),
            "{r}"
        );
        let h = response(200, "OK", "text/plain", b"abc", true);
        assert!(h.ends_with(b"\r\n\r\n"));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_request(&bytes);
        }
    }
}
