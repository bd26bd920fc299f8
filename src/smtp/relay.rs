//! Relay to the next hop (lettre's SMTP client over tokio): the processed bytes go out with the
//! original envelope sender and the recipients of one treatment group, in canonical form (CRLF
//! line ends only, every line dot-stuffed: [`super::data`]), whatever a sender put inside a
//! layer the gateway decrypted or unwrapped.
//!
//! The outcome maps onto what the MTA needs to hear (DESIGN.md, "no queue, no loss"): the next
//! hop's 250 becomes our 250; anything temporary, unreachable or unclear becomes 4xx so the MTA
//! keeps the message and retries; only the next hop's own 5xx becomes 5xx, with its text.
//!
//! Every step is bounded by `relay.timeout_secs`: connecting, and each wait for the next hop to
//! answer or to take more bytes. lettre's own async timeout covers only the connect (0.11), so
//! the connection is driven here over a stream with an idle timeout; a next hop that stalls
//! (say, after the final dot) costs one timeout and a 4xx, never a hung session.
//!
//! Connections are kept for reuse (`relay.idle_connections`, `relay.idle_secs`), as an MTA's
//! own SMTP client caches them: connecting, the greeting, EHLO and a TLS handshake cost more
//! than the transaction itself. Only a connection whose last transaction the next hop accepted
//! is kept. A kept connection the next hop closed meanwhile fails before MAIL is accepted, when
//! nothing of the message has reached the next hop, so the message is sent again once on a new
//! connection.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::config::{RelayConfig, StartTls};
use crate::smtp::data;

/// The outcome of relaying one copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayOutcome {
    /// The next hop accepted it.
    Accepted,
    /// Try again later (4xx to the MTA).
    Temporary(String),
    /// The next hop refused it for good (5xx to the MTA, with its text).
    Permanent(String),
}

/// A configured relay.
#[derive(Clone)]
pub struct Relay {
    host: String,
    port: u16,
    /// STARTTLS parameters, and whether TLS is required.
    tls: Option<(TlsParameters, bool)>,
    hello: ClientId,
    timeout: Duration,
    next_hop: String,
    pool: Arc<Pool>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Relay({})", self.next_hop)
    }
}

/// Why the relay could not be configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// `relay.next_hop` is not host:port.
    #[error("relay.next_hop = \"{0}\": expected host:port, e.g. \"127.0.0.1:10026\"")]
    BadNextHop(String),
    /// TLS parameters could not be built.
    #[error("relay TLS for {host}: {reason}")]
    Tls {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
}

impl Relay {
    /// Builds the relay from `[relay]`; `timeout` bounds the connect and every wait on the next
    /// hop. No connection is made until the first message.
    pub fn new(
        config: &RelayConfig,
        helo_name: &str,
        timeout: Duration,
    ) -> Result<Self, RelayError> {
        let (host, port) = config
            .next_hop
            .rsplit_once(':')
            .and_then(|(h, p)| {
                Some((
                    h.trim_matches(|c| c == '[' || c == ']'),
                    p.parse::<u16>().ok()?,
                ))
            })
            .ok_or_else(|| RelayError::BadNextHop(config.next_hop.clone()))?;
        let tls = match config.starttls {
            StartTls::Off => None,
            mode => {
                let params = TlsParameters::new(host.to_string()).map_err(|e| RelayError::Tls {
                    host: host.to_string(),
                    reason: e.to_string(),
                })?;
                Some((params, mode == StartTls::Required))
            }
        };
        Ok(Self {
            host: host.to_string(),
            port,
            tls,
            hello: ClientId::Domain(helo_name.to_string()),
            timeout,
            next_hop: config.next_hop.clone(),
            pool: Arc::new(Pool::new(config.idle_connections, config.idle())),
        })
    }

    /// Closes every kept connection with QUIT (at shutdown, so the next hop logs a clean end).
    pub async fn close_idle(&self) {
        let all = self.pool.drain(|_| true);
        quit_all(all).await;
    }

    /// How many connections are kept open right now.
    pub fn idle_count(&self) -> usize {
        self.pool.len()
    }

    /// Connections opened, kept ones reused, and kept ones found closed, since start: how well
    /// the kept connections serve (for `/metrics`).
    pub fn connection_counts(&self) -> ConnectionCounts {
        let c = &self.pool.counts;
        ConnectionCounts {
            opened: c[OPENED].load(Ordering::Relaxed),
            reused: c[REUSED].load(Ordering::Relaxed),
            found_closed: c[FOUND_CLOSED].load(Ordering::Relaxed),
        }
    }

    /// Sends one copy. Never panics on bad addresses: an address lettre cannot represent is a
    /// permanent failure naming it.
    pub async fn send(&self, mail_from: &str, rcpt_to: &[String], message: &[u8]) -> RelayOutcome {
        let from = if mail_from.is_empty() {
            None
        } else {
            match mail_from.parse::<Address>() {
                Ok(a) => Some(a),
                Err(e) => return RelayOutcome::Permanent(format!("sender <{mail_from}>: {e}")),
            }
        };
        let mut to = Vec::new();
        for r in rcpt_to {
            match r.parse::<Address>() {
                Ok(a) => to.push(a),
                Err(e) => return RelayOutcome::Permanent(format!("recipient <{r}>: {e}")),
            }
        }
        let envelope = match Envelope::new(from, to) {
            Ok(e) => e,
            Err(e) => return RelayOutcome::Permanent(format!("envelope: {e}")),
        };
        let hop = &self.next_hop;
        match self.transact(&envelope, message).await {
            Ok(()) => RelayOutcome::Accepted,
            Err(Failure::Smtp(e)) if e.is_permanent() => {
                RelayOutcome::Permanent(one_line(&format!("next hop {hop}: {e}")))
            }
            Err(Failure::Smtp(e)) => {
                RelayOutcome::Temporary(one_line(&format!("next hop {hop}: {e}")))
            }
            Err(Failure::Other(why)) => {
                RelayOutcome::Temporary(one_line(&format!("next hop {hop}: {why}")))
            }
        }
    }

    /// One transaction, on a kept connection when there is one. On any error the connection is
    /// closed (lettre aborts it), never kept.
    async fn transact(&self, envelope: &Envelope, message: &[u8]) -> Result<(), Failure> {
        if let Some(mut conn) = self.pool.take() {
            self.pool.count(REUSED);
            match send_chunked(&mut conn, envelope, message).await {
                Ok(()) => {
                    self.pool.put(conn);
                    return Ok(());
                }
                Err(SendError::Unused(e)) if closed_meanwhile(&e) => {
                    self.pool.count(FOUND_CLOSED);
                    tracing::debug!(next_hop = %self.next_hop, error = %e, "kept connection was closed by the next hop; sending on a new one");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut conn = self.connect().await?;
        self.pool.count(OPENED);
        send_chunked(&mut conn, envelope, message).await?;
        self.pool.put(conn);
        Ok(())
    }

    /// A new connection: TCP, greeting, EHLO and STARTTLS as configured.
    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let tcp = match tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(Failure::Other(format!("cannot connect: {e}"))),
            Err(_) => {
                return Err(Failure::Other(format!(
                    "no connection within {} s (relay.timeout_secs)",
                    self.timeout.as_secs()
                )));
            }
        };
        let _ = tcp.set_nodelay(true);
        let stream = IdleTimeout::new(tcp, self.timeout);
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
            .await
            .map_err(Failure::Smtp)?;
        if let Some((params, required)) = &self.tls {
            if conn.can_starttls() {
                conn.starttls(params.clone(), &self.hello)
                    .await
                    .map_err(Failure::Smtp)?;
            } else if *required {
                conn.abort().await;
                return Err(Failure::Other(
                    "does not offer STARTTLS, and relay.starttls = \"required\"".into(),
                ));
            }
        }
        Ok(conn)
    }
}

/// Whether a kept connection failed because the next hop had closed it while it waited: no
/// complete reply (the socket was closed: lettre reports an I/O error or an incomplete
/// response), or 421, "service closing transmission channel". A real reply to MAIL is the
/// next hop's answer to this message and stands.
fn closed_meanwhile(e: &lettre::transport::smtp::Error) -> bool {
    match e.status() {
        // A next hop that stalls would stall a new connection as well.
        None => !e.is_timeout(),
        Some(code) => code.to_string() == "421",
    }
}

/// Connection events since the relay was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// New connections that reached EHLO (and STARTTLS when configured).
    pub opened: u64,
    /// Transactions started on a kept connection.
    pub reused: u64,
    /// Kept connections the next hop had closed meanwhile (the message went on a new one).
    pub found_closed: u64,
}

const OPENED: usize = 0;
const REUSED: usize = 1;
const FOUND_CLOSED: usize = 2;

/// Idle connections to the next hop, newest last. Taking the newest first keeps the fewest
/// connections busy and uses the one least likely to have been closed by the next hop.
struct Pool {
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    max: usize,
    idle_for: Duration,
    reaper: AtomicBool,
    /// [`OPENED`], [`REUSED`], [`FOUND_CLOSED`].
    counts: [AtomicU64; 3],
}

impl Pool {
    fn new(max: usize, idle_for: Duration) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            max,
            idle_for,
            reaper: AtomicBool::new(false),
            counts: Default::default(),
        }
    }

    fn count(&self, event: usize) {
        if let Some(c) = self.counts.get(event) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(AsyncSmtpConnection, Instant)>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    /// The newest connection, unless it has waited `idle_for` (then all have, and they are
    /// closed here rather than at the reaper's next round).
    fn take(&self) -> Option<AsyncSmtpConnection> {
        let (found, old) = {
            let mut idle = self.lock();
            let old = if idle
                .last()
                .is_some_and(|(_, since)| since.elapsed() >= self.idle_for)
            {
                std::mem::take(&mut *idle)
            } else {
                Vec::new()
            };
            (idle.pop().map(|(c, _)| c), old)
        };
        if !old.is_empty() {
            tokio::spawn(quit_all(old.into_iter().map(|(c, _)| c).collect()));
        }
        found
    }

    /// Keeps a connection whose transaction succeeded, or closes it when the pool is full.
    fn put(self: &Arc<Self>, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let overflow = {
            let mut idle = self.lock();
            if idle.len() < self.max {
                idle.push((conn, Instant::now()));
                None
            } else {
                Some(conn)
            }
        };
        match overflow {
            Some(conn) => {
                tokio::spawn(quit_all(vec![conn]));
            }
            None => self.start_reaper(),
        }
    }

    /// Removes the connections whose idle start matches.
    fn drain(&self, pick: impl Fn(Instant) -> bool) -> Vec<AsyncSmtpConnection> {
        let mut idle = self.lock();
        let (gone, kept): (Vec<_>, Vec<_>) = idle.drain(..).partition(|(_, since)| pick(*since));
        *idle = kept;
        gone.into_iter().map(|(c, _)| c).collect()
    }

    /// Closes connections idle for `idle_for`, checking four times per `idle_for` (so none
    /// stays open more than a quarter longer); the task ends with the relay.
    fn start_reaper(self: &Arc<Self>) {
        if self.reaper.swap(true, Ordering::SeqCst) {
            return;
        }
        let pool: Weak<Self> = Arc::downgrade(self);
        let period = (self.idle_for / 4).max(Duration::from_millis(100));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(p) = pool.upgrade() else { return };
                let old = p.drain(|since| since.elapsed() >= p.idle_for);
                drop(p);
                quit_all(old).await;
            }
        });
    }
}

/// QUIT on each connection, a second at most each: a next hop that does not answer is simply
/// dropped.
async fn quit_all(conns: Vec<AsyncSmtpConnection>) {
    for mut c in conns {
        let _ = tokio::time::timeout(Duration::from_secs(1), c.quit()).await;
    }
}

/// What a next hop answered to a probe (`smimegw doctor`): the same connection, EHLO and
/// STARTTLS the relay would make, without sending mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// No TCP connection (refused, unreachable, timed out).
    Unreachable(String),
    /// Connected, but the greeting or EHLO failed.
    NotSmtp(String),
    /// SMTP works; STARTTLS is not offered.
    Plain,
    /// STARTTLS is offered but the handshake failed (typically the certificate: unknown issuer,
    /// wrong name, expired).
    TlsFailed(String),
    /// STARTTLS works and the certificate verified for the next hop's name.
    Tls,
}

impl Relay {
    /// The host part of `relay.next_hop` (the name the next hop's certificate must carry).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Connects, says EHLO and, when offered, starts TLS with exactly the parameters the relay
    /// uses (the system's trust anchors, or `SSL_CERT_FILE`, and the next hop's host name),
    /// then says QUIT.
    pub async fn probe(&self) -> Probe {
        let tcp = match tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Probe::Unreachable(format!("cannot connect: {e}")),
            Err(_) => {
                return Probe::Unreachable(format!(
                    "no connection within {} s",
                    self.timeout.as_secs()
                ));
            }
        };
        let stream = IdleTimeout::new(tcp, self.timeout);
        let mut conn = match AsyncSmtpConnection::connect_with_transport(
            Box::new(stream),
            &self.hello,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => return Probe::NotSmtp(error_chain(&e)),
        };
        if !conn.can_starttls() {
            let _ = conn.quit().await;
            return Probe::Plain;
        }
        let params = match &self.tls {
            Some((p, _)) => p.clone(),
            None => match TlsParameters::new(self.host.clone()) {
                Ok(p) => p,
                Err(e) => return Probe::TlsFailed(error_chain(&e)),
            },
        };
        match conn.starttls(params, &self.hello).await {
            Ok(()) => {
                let _ = conn.quit().await;
                Probe::Tls
            }
            Err(e) => Probe::TlsFailed(error_chain(&e)),
        }
    }
}

/// Bytes of the message canonicalised, dot-stuffed and written per step.
const DATA_CHUNK: usize = 64 * 1024;

/// lettre's `AsyncSmtpConnection::send`, except that the message goes out in chunks of
/// [`DATA_CHUNK`]: `send` dot-stuffs the whole message into one new buffer first, a second copy
/// as large as the message (36 MiB for a 25 MiB message signed and encrypted). The MAIL
/// parameters follow lettre's rules (RFC 6531 SMTPUTF8 for non-ASCII addresses, RFC 6152
/// 8BITMIME for non-ASCII content); on any error the connection is aborted, as lettre does (a
/// refusal for want of SMTPUTF8 or 8BITMIME is temporary, as lettre's own is).
async fn send_chunked(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    message: &[u8],
) -> Result<(), SendError> {
    use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
    use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
    let mut params = Vec::new();
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a: &Address| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            conn.abort().await;
            return Err(SendError::Failed(Failure::Other(
                "the envelope has non-ASCII addresses but the next hop does not offer SMTPUTF8"
                    .into(),
            )));
        }
        params.push(MailParameter::SmtpUtfEight);
    }
    if !message.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            conn.abort().await;
            return Err(SendError::Failed(Failure::Other(
                "the message has 8-bit content but the next hop does not offer 8BITMIME".into(),
            )));
        }
        params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    if let Err(e) = conn
        .command(Mail::new(envelope.from().cloned(), params))
        .await
    {
        conn.abort().await;
        return Err(SendError::Unused(e));
    }
    let steps = async {
        for to in envelope.to() {
            conn.command(Rcpt::new(to.clone(), vec![])).await?;
        }
        conn.command(Data).await?;
        send_data(conn, message, DATA_CHUNK).await
    };
    match steps.await {
        Ok(_) => Ok(()),
        Err(e) => {
            conn.abort().await;
            Err(SendError::Failed(Failure::Smtp(e)))
        }
    }
}

/// Sends the data of one copy after DATA was accepted, and reads the reply. Every copy the
/// relay sends (inbound, outbound, transit, unchanged) passes here, and only here, through
/// [`data::relay_chunks`]: CRLF line ends only and every line dot-stuffed, so the next hop ends
/// the data where we do and nowhere before (SMTP smuggling, see [`data`]).
async fn send_data(
    conn: &mut AsyncSmtpConnection,
    message: &[u8],
    chunk_len: usize,
) -> Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error> {
    conn.message_iter(data::relay_chunks(message, chunk_len))
        .await
}

/// How far a failed transaction got.
enum SendError {
    /// MAIL was not accepted: nothing of the message reached the next hop.
    Unused(lettre::transport::smtp::Error),
    /// Any later failure, or one found before MAIL was sent.
    Failed(Failure),
}

impl From<SendError> for Failure {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Unused(e) => Failure::Smtp(e),
            SendError::Failed(f) => f,
        }
    }
}

/// An error with its causes, on one line (lettre puts the TLS library's reason in a source).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    one_line(&s)
}

/// The next hop's words become part of our reply to the MTA: one line of printable text,
/// bounded, whatever the next hop sent (a reply line must not be split or forged by it).
fn one_line(text: &str) -> String {
    const MAX: usize = 400;
    let mut out = String::with_capacity(text.len().min(MAX));
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        if out.len() + c.len_utf8() > MAX {
            out.push_str("...");
            break;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

enum Failure {
    Smtp(lettre::transport::smtp::Error),
    Other(String),
}

/// Watches the plain-text bytes around STARTTLS for what the next hop sends after its reply to
/// STARTTLS and before the TLS handshake (RFC 3207 section 4.2 says the client must discard it;
/// CVE-2011-0411 and its many descendants are clients that did not). lettre reads replies
/// through a buffer that it keeps across the upgrade, so such bytes would be read after the
/// handshake as if the next hop had said them under TLS (an EHLO reply, a 250 to our data).
/// This refuses them instead: a reply to STARTTLS must end the chunk it arrives in.
#[derive(Debug, Default, PartialEq, Eq)]
enum StartTlsGuard {
    /// No STARTTLS written yet, or its reply has been read: nothing to watch.
    #[default]
    Idle,
    /// STARTTLS written; reading its reply. `line` holds the start of the current line (up to
    /// the four bytes that tell a final line, `250 `, from a continued one, `250-`).
    Reply { line: Vec<u8>, last: bool },
}

/// What the next hop sent after its STARTTLS reply.
const INJECTED: &str = "the next hop sent bytes after its reply to STARTTLS, before the TLS handshake (plain-text injection, RFC 3207 section 4.2); refused";

impl StartTlsGuard {
    /// Called with every chunk written in plain text.
    fn wrote(&mut self, bytes: &[u8]) {
        if bytes.len() >= 8 && bytes[..8].eq_ignore_ascii_case(b"STARTTLS") {
            *self = Self::Reply {
                line: Vec::new(),
                last: false,
            };
        }
    }

    /// Called with every chunk read; `Err` when bytes follow the final line of the reply.
    fn read(&mut self, bytes: &[u8]) -> Result<(), &'static str> {
        let Self::Reply { line, last } = self else {
            return Ok(());
        };
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                if *last {
                    *self = Self::Idle;
                    return if i + 1 < bytes.len() {
                        Err(INJECTED)
                    } else {
                        Ok(())
                    };
                }
                line.clear();
                continue;
            }
            if line.len() < 4 {
                line.push(b);
                if line.len() == 4 {
                    *last = line[3] == b' ';
                }
            }
        }
        Ok(())
    }
}

/// A TCP stream whose reads and writes fail with `TimedOut` after `timeout` without progress.
/// Once timed out it stays failed, so lettre's QUIT on the way out does not wait a second time.
/// It also refuses plain text injected after a STARTTLS reply ([`StartTlsGuard`]).
#[derive(Debug)]
struct IdleTimeout {
    inner: TcpStream,
    timeout: Duration,
    read_deadline: Option<Pin<Box<Sleep>>>,
    write_deadline: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
    starttls: StartTlsGuard,
}

impl IdleTimeout {
    fn new(inner: TcpStream, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            read_deadline: None,
            write_deadline: None,
            timed_out: false,
            starttls: StartTlsGuard::default(),
        }
    }

    fn error(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "no answer within {} s (relay.timeout_secs)",
                self.timeout.as_secs()
            ),
        )
    }

    /// After the inner stream said Pending: arms the deadline (once per wait) and reports
    /// whether it has passed.
    fn expired(
        deadline: &mut Option<Pin<Box<Sleep>>>,
        timeout: Duration,
        cx: &mut Context<'_>,
    ) -> bool {
        let sleep = deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        sleep.as_mut().poll(cx).is_ready()
    }

    fn poll_io<T>(
        &mut self,
        cx: &mut Context<'_>,
        write: bool,
        op: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if self.timed_out {
            return Poll::Ready(Err(self.error()));
        }
        let deadline = if write {
            &mut self.write_deadline
        } else {
            &mut self.read_deadline
        };
        match op(Pin::new(&mut self.inner), cx) {
            Poll::Ready(r) => {
                *deadline = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                if Self::expired(deadline, self.timeout, cx) {
                    *deadline = None;
                    self.timed_out = true;
                    Poll::Ready(Err(self.error()))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl AsyncRead for IdleTimeout {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = this.poll_io(cx, false, |s, cx| s.poll_read(cx, buf));
        if let Poll::Ready(Ok(())) = &polled
            && let Err(why) = this.starttls.read(&buf.filled()[before..])
        {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, why)));
        }
        polled
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = this.poll_io(cx, true, |s, cx| s.poll_write(cx, buf));
        if let Poll::Ready(Ok(n)) = &polled {
            this.starttls.wrote(&buf[..*n]);
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_io(cx, true, |s, cx| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Closing must always be possible, timed out or not.
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for IdleTimeout {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.peer_addr()
    }
}

#[cfg(test)]
mod tests;
