//! A capturing SMTP sink and a minimal SMTP client for end-to-end tests over loopback.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One message the sink accepted.
#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub rcpts: Vec<String>,
    /// The message, dot-unstuffed.
    pub data: Vec<u8>,
    /// The bytes after the 354 exactly as they came, the final "." line included.
    pub raw: Vec<u8>,
}

/// A sink on 127.0.0.1 that accepts (or refuses, by code) every message and keeps what it accepted.
///
/// It reads lines the lenient way, as Postfix does with `smtpd_forbid_bare_newline = no` (the
/// default before 3.9): a line ends at LF, and a line "." ends the data whether CRLF or a bare
/// LF ends it. A client that lets a bare LF through before a dot would end the data early here,
/// and what follows would run as commands: the sink shows SMTP smuggling as a second message.
pub struct Sink {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Reply code at the end of DATA: 250 accept, 4xx/5xx refuse.
    pub data_code: Arc<AtomicU16>,
    /// Counters and the hang-up mode, shared with the connection threads.
    pub stats: Arc<SinkStats>,
}

/// What the sink saw of its connections, and how it ends them.
#[derive(Default)]
pub struct SinkStats {
    /// Connections accepted.
    pub connections: AtomicUsize,
    /// QUIT commands answered.
    pub quits: AtomicUsize,
    /// After accepting a message: [`KEEP`] the connection, [`DROP`] it silently, or answer the
    /// next command with 421 and close ([`SAY_421`]), as a next hop closing idle clients does.
    pub after_data: AtomicU8,
}

pub const KEEP: u8 = 0;
pub const DROP: u8 = 1;
pub const SAY_421: u8 = 2;

impl SinkStats {
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
    pub fn quits(&self) -> usize {
        self.quits.load(Ordering::SeqCst)
    }
}

impl Sink {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let data_code = Arc::new(AtomicU16::new(250));
        let stats = Arc::new(SinkStats::default());
        let (r, c, st) = (received.clone(), data_code.clone(), stats.clone());
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                st.connections.fetch_add(1, Ordering::SeqCst);
                let (r, c, st) = (r.clone(), c.clone(), st.clone());
                std::thread::spawn(move || {
                    let _ = serve_one(s, r, c, &st);
                });
            }
        });
        Self {
            addr,
            received,
            data_code,
            stats,
        }
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `n` messages arrived (bounded).
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            if self.received.lock().unwrap().len() >= n {
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.messages()
    }
}

fn serve_one(
    s: TcpStream,
    store: Arc<Mutex<Vec<Received>>>,
    code: Arc<AtomicU16>,
    stats: &SinkStats,
) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    w.write_all(b"220 sink ESMTP\r\n")?;
    let (mut from, mut rcpts) = (String::new(), Vec::new());
    let mut line = String::new();
    let mut delivered = false;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if delivered && stats.after_data.load(Ordering::SeqCst) == SAY_421 {
            w.write_all(b"421 4.4.2 sink: idle too long, closing\r\n")?;
            return Ok(());
        }
        let up = line.to_ascii_uppercase();
        if up.starts_with("EHLO") {
            w.write_all(b"250-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n")?;
        } else if up.starts_with("HELO") {
            w.write_all(b"250 sink\r\n")?;
        } else if up.starts_with("MAIL FROM:") {
            from = addr(&line);
            rcpts.clear();
            w.write_all(b"250 ok\r\n")?;
        } else if up.starts_with("RCPT TO:") {
            rcpts.push(addr(&line));
            w.write_all(b"250 ok\r\n")?;
        } else if up.starts_with("DATA") {
            w.write_all(b"354 go\r\n")?;
            let (mut data, mut raw) = (Vec::new(), Vec::new());
            loop {
                let mut l = Vec::new();
                if r.read_until(b'\n', &mut l)? == 0 {
                    return Ok(());
                }
                raw.extend_from_slice(&l);
                if l == b".\r\n" || l == b".\n" {
                    break;
                }
                if l.starts_with(b"..") {
                    l.remove(0);
                }
                data.extend_from_slice(&l);
            }
            let c = code.load(Ordering::SeqCst);
            if c == 250 {
                store.lock().unwrap().push(Received {
                    from: from.clone(),
                    rcpts: rcpts.clone(),
                    data,
                    raw,
                });
                w.write_all(b"250 2.0.0 stored\r\n")?;
                delivered = true;
                if stats.after_data.load(Ordering::SeqCst) == DROP {
                    return Ok(());
                }
            } else {
                w.write_all(format!("{c} sink says no\r\n").as_bytes())?;
            }
        } else if up.starts_with("QUIT") {
            stats.quits.fetch_add(1, Ordering::SeqCst);
            w.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else if up.starts_with("RSET") || up.starts_with("NOOP") {
            w.write_all(b"250 ok\r\n")?;
        } else {
            w.write_all(b"502 no\r\n")?;
        }
    }
}

fn addr(line: &str) -> String {
    let s = line.find('<').map(|i| i + 1).unwrap_or(0);
    let e = line.rfind('>').unwrap_or(line.len());
    line[s..e.max(s)].to_string()
}

/// Reads one (possibly multi-line) SMTP reply: (code, full text).
pub fn read_reply(r: &mut BufReader<TcpStream>) -> (u16, String) {
    let mut all = String::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap_or(0) == 0 {
            return (0, all);
        }
        all.push_str(&l);
        if l.len() < 4 || l.as_bytes()[3] != b'-' {
            let code = l.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            return (code, all);
        }
    }
}

/// Sends one message; returns the reply to the end of DATA (or the first failing reply).
pub fn send(addr: SocketAddr, from: &str, rcpts: &[&str], msg: &[u8]) -> (u16, String) {
    send_raw(addr, from, rcpts, &stuffed(msg))
}

/// The data `send` writes after the 354: a dot doubled at the start of every line (a bare LF
/// starts one here too), a final CRLF when missing, and the end of data.
pub fn stuffed(msg: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for line in msg.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            body.push(b'.');
        }
        body.extend_from_slice(line);
    }
    if !body.ends_with(b"\r\n") {
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b".\r\n");
    body
}

/// Like [`send`], but `data` goes after the 354 exactly as given: the caller stuffs it and
/// ends it (a client that sends a bare LF or CR where it likes).
pub fn send_raw(addr: SocketAddr, from: &str, rcpts: &[&str], data: &[u8]) -> (u16, String) {
    let s = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => return (0, e.to_string()),
    };
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let (c, t) = read_reply(&mut r);
    if c != 220 {
        return (c, t);
    }
    let mut step = |cmd: String, expect: u16| -> Result<(), (u16, String)> {
        w.write_all(cmd.as_bytes())
            .map_err(|e| (0, e.to_string()))?;
        let (c, t) = read_reply(&mut r);
        if c == expect { Ok(()) } else { Err((c, t)) }
    };
    if let Err(e) = step("EHLO client.test\r\n".into(), 250) {
        return e;
    }
    if let Err(e) = step(format!("MAIL FROM:<{from}>\r\n"), 250) {
        return e;
    }
    for rc in rcpts {
        if let Err(e) = step(format!("RCPT TO:<{rc}>\r\n"), 250) {
            return e;
        }
    }
    if let Err(e) = step("DATA\r\n".into(), 354) {
        return e;
    }
    let mut w2 = r.get_ref().try_clone().unwrap();
    if let Err(e) = w2.write_all(data) {
        return (0, e.to_string());
    }
    let res = read_reply(&mut r);
    let _ = w2.write_all(b"QUIT\r\n");
    let mut rest = String::new();
    let _ = r.read_to_string(&mut rest);
    res
}

/// The canonical form of a message as the next hop must store it: every bare CR and bare LF
/// made CRLF, and a final CRLF.
pub fn canonical(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 2);
    for (i, &b) in msg.iter().enumerate() {
        match b {
            b'\r' | b'\n' if b == b'\n' && i > 0 && msg[i - 1] == b'\r' => {}
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            _ => out.push(b),
        }
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Where `raw` has a CR not followed by LF or an LF not preceded by CR (empty: CRLF only).
pub fn bare_line_ends(raw: &[u8]) -> Vec<usize> {
    (0..raw.len())
        .filter(|&i| match raw[i] {
            b'\r' => raw.get(i + 1) != Some(&b'\n'),
            b'\n' => i == 0 || raw[i - 1] != b'\r',
            _ => false,
        })
        .collect()
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `addr`.
pub fn wait_listening(addr: SocketAddr) -> bool {
    for _ in 0..400 {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// An SMTP client that keeps one session open across transactions, like an MTA.
pub struct Client {
    r: std::io::BufReader<std::net::TcpStream>,
    w: std::net::TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(90))).unwrap();
        let w = s.try_clone().unwrap();
        let mut c = Self {
            r: std::io::BufReader::new(s),
            w,
        };
        let (code, text) = read_reply(&mut c.r);
        assert_eq!(code, 220, "{text}");
        let (code, text) = c.command("EHLO client.test");
        assert_eq!(code, 250, "{text}");
        c
    }

    pub fn command(&mut self, cmd: &str) -> (u16, String) {
        use std::io::Write;
        self.w.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        read_reply(&mut self.r)
    }

    /// One transaction; returns the reply to the final dot and how long it took to come.
    pub fn transaction(&mut self, msg: &[u8]) -> (u16, String, Duration) {
        self.transaction_to("carol@acme.test", msg)
    }

    /// One transaction from alice to `rcpt`.
    pub fn transaction_to(&mut self, rcpt: &str, msg: &[u8]) -> (u16, String, Duration) {
        use std::io::Write;
        for (cmd, want) in [
            ("MAIL FROM:<alice@acme.test>".to_string(), 250),
            (format!("RCPT TO:<{rcpt}>"), 250),
            ("DATA".to_string(), 354),
        ] {
            let (code, text) = self.command(&cmd);
            assert_eq!(code, want, "{cmd}: {text}");
        }
        let mut body = msg.to_vec();
        body.extend_from_slice(b".\r\n");
        self.w.write_all(&body).unwrap();
        let t = std::time::Instant::now();
        let (code, text) = read_reply(&mut self.r);
        (code, text, t.elapsed())
    }
}
