//! The tokio side of a listener (`[listen]` or `[submission]`, each in its role): accept, check the client address, move bytes between
//! the socket and the [`Session`] state machine, run transactions through the gateway and the
//! relay, and answer the MTA only after the next hop answered us.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::gateway::{Decision, Gateway, Transaction, message_id};
use crate::metrics::{Metrics, Outcome};
use crate::policy::Listener;
use crate::smtp::relay::{Relay, RelayOutcome};
use crate::smtp::reply::Reply;
use crate::smtp::session::{Action, Session, SessionConfig};

/// Timeouts of a session (RFC 5321 section 4.5.3.2 suggests 5 minutes per command and 10 for
/// the DATA block).
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// Waiting for a command.
    pub command: Duration,
    /// Waiting for the next chunk of DATA.
    pub data: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            command: Duration::from_secs(300),
            data: Duration::from_secs(600),
        }
    }
}

/// Everything a session task needs.
pub struct ServerContext {
    /// Message processing.
    pub gateway: Arc<Gateway>,
    /// The role of this listener: what the gateway may do to the mail it takes.
    pub listener: Listener,
    /// The next hop.
    pub relay: Relay,
    /// Session limits.
    pub session: SessionConfig,
    /// Networks allowed to connect.
    pub allowed: Vec<IpNet>,
    /// STARTTLS acceptor, when configured.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Most concurrent sessions.
    pub max_sessions: usize,
    /// Sessions now running.
    pub active: AtomicUsize,
    /// Rate limiter for repeated TLS errors.
    pub tls_errors: crate::smtp::ratelimit::RateLimitedLog,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// How long one message may be processed (`limits.max_processing_secs`) before the MTA gets
    /// 451 4.3.0 and the session moves on.
    pub processing_timeout: Duration,
    /// Transactions processed at once: as many as cores. Signing and decryption are CPU work;
    /// with one blocking thread per session, 512 sessions meant 512 threads sharing two cores,
    /// every message finishing late and memory growing. Sessions wait here, in order.
    pub processing: Arc<tokio::sync::Semaphore>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Accepts connections until `shutdown` turns true, then waits up to `grace` for sessions in
/// flight (a transaction being relayed is finished, never cut).
pub async fn run(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    mut shutdown: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() { break; }
            }
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let ctx = ctx.clone();
                let sd = shutdown.clone();
                tasks.spawn(async move { handle(stream, peer, ctx, sd).await });
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    let deadline = Instant::now() + grace;
    while !tasks.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!(
                sessions = tasks.len(),
                "grace period over; closing remaining sessions"
            );
            tasks.abort_all();
            break;
        }
        let _ = tokio::time::timeout(left, tasks.join_next()).await;
    }
}

fn allowed(ctx: &ServerContext, peer: &SocketAddr) -> bool {
    let ip = match peer.ip() {
        std::net::IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(std::net::IpAddr::V4)
            .unwrap_or(std::net::IpAddr::V6(v6)),
        v4 => v4,
    };
    ctx.allowed.iter().any(|n| n.contains(&ip))
}

async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<ServerContext>,
    shutdown: watch::Receiver<bool>,
) {
    let mut stream: Box<dyn Io> = Box::new(stream);
    if !allowed(&ctx, &peer) {
        tracing::warn!(%peer, "refused: client not in listen.allowed_clients");
        let _ = stream
            .write_all(&Reply::client_not_allowed(peer.ip()).to_bytes())
            .await;
        return;
    }
    let active = ctx.active.fetch_add(1, Ordering::SeqCst) + 1;
    struct Guard<'a>(&'a AtomicUsize);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let _guard = Guard(&ctx.active);
    if active > ctx.max_sessions {
        let _ = stream
            .write_all(&Reply::too_many_connections().to_bytes())
            .await;
        return;
    }
    let mut session = Session::new(SessionConfig {
        starttls: ctx.tls.is_some(),
        ..ctx.session.clone()
    });
    if stream.write_all(&session.greeting()).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: std::collections::VecDeque<Action> = Default::default();
    loop {
        while let Some(action) = pending.pop_front() {
            match action {
                Action::Send(bytes) => {
                    if stream.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Action::Close => {
                    let _ = stream.shutdown().await;
                    return;
                }
                Action::StartTls => {
                    let Some(acceptor) = ctx.tls.clone() else {
                        return;
                    };
                    let _ = stream.flush().await;
                    // Only a plain TCP stream can be upgraded; the session never asks twice.
                    let plain: Box<dyn Io> = stream;
                    match acceptor.accept(plain).await {
                        Ok(tls) => {
                            stream = Box::new(tls);
                            session.tls_established();
                        }
                        Err(e) => {
                            ctx.metrics.tls_handshake_failed();
                            ctx.tls_errors.log(peer.ip(), &e.to_string());
                            return;
                        }
                    }
                }
                Action::CheckRecipient { sender, recipient } => {
                    let refused = check_recipient(&ctx, sender, recipient).await;
                    pending.extend(session.recipient_checked(refused));
                }
                Action::Process(tx) => {
                    let r = transact(&ctx, tx, &peer).await;
                    let more = session.transaction_done(r.code, r.enhanced, &r.text);
                    pending.extend(more);
                }
            }
        }
        if session.is_closed() {
            return;
        }
        if *shutdown.borrow() && !session.in_data() {
            let _ = stream.write_all(&Reply::shutting_down().to_bytes()).await;
            return;
        }
        let wait = if session.in_data() {
            ctx.timeouts.data
        } else {
            ctx.timeouts.command
        };
        let n = match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
            Err(_) => {
                let _ = stream.write_all(&Reply::idle_timeout().to_bytes()).await;
                return;
            }
        };
        pending.extend(session.feed(&buf[..n]));
    }
}

/// Processes one transaction and relays every copy; the reply is 250 only when the next hop
/// accepted all of them (otherwise the MTA keeps the message and retries: a duplicate is
/// possible, a loss is not).
/// The RCPT-time check, on a blocking thread when it needs the directory (never on a tokio
/// worker): `None` accepts the recipient.
async fn check_recipient(ctx: &ServerContext, sender: String, recipient: String) -> Option<Reply> {
    if !ctx.gateway.checks_recipients() {
        return None;
    }
    let gw = ctx.gateway.clone();
    let listener = ctx.listener;
    match tokio::task::spawn_blocking(move || gw.check_recipient(listener, &sender, &recipient))
        .await
    {
        Ok(Ok(())) => None,
        Ok(Err(refusal)) => Some(Reply::recipient_refusal(&refusal)),
        Err(e) => {
            tracing::error!(error = %e, "recipient check failed");
            Some(Reply::internal_error())
        }
    }
}

async fn transact(ctx: &ServerContext, tx: Transaction, peer: &SocketAddr) -> Reply {
    let started = Instant::now();
    let mid = message_id(&tx.message);
    let mail_from = tx.mail_from.clone();
    let gw = ctx.gateway.clone();
    let listener = ctx.listener;
    // As many transactions are processed at once as there are cores (signing and decryption are
    // CPU work). The permit moves into the worker, so a worker abandoned over its time budget
    // keeps its slot until it really stops. The semaphore is never closed.
    let Ok(permit) = ctx.processing.clone().acquire_owned().await else {
        return Reply::internal_error();
    };
    // The transaction moves into the worker and is dropped there once processed: the message
    // as received is not held while the copies are relayed (for a 25 MiB message that is 25
    // MiB less at the peak). The worker checks the time budget at every MIME and CMS layer and
    // stops there; the timer below frees the session even if one step (say, a single huge RSA
    // operation) overruns it; the worker then finishes its step and its result is dropped.
    let work = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let t0 = Instant::now();
        let d = gw.process_at(&tx, listener, started);
        (d, t0.elapsed())
    });
    let decision = match tokio::time::timeout(ctx.processing_timeout, work).await {
        Ok(Ok((d, crypto))) => {
            ctx.metrics.crypto(crypto);
            d
        }
        Ok(Err(e)) => {
            tracing::error!(message_id = %mid, error = %e, "processing failed");
            return Reply::internal_error();
        }
        Err(_) => {
            let why = crate::limits::LimitError::Time {
                secs: ctx.processing_timeout.as_secs(),
            };
            tracing::warn!(message_id = %mid, %peer, reason = %why, "processing abandoned");
            return Reply::abandoned(why);
        }
    };
    match decision {
        Decision::Refuse { refusal, direction } => {
            let r = Reply::refusal(&refusal);
            tracing::info!(message_id = %mid, %peer, from = %mail_from, action = "refused", code = r.code, reason = %r.text, ms = started.elapsed().as_millis() as u64, "message");
            ctx.metrics.message(&direction.to_string(), "refused", "-");
            ctx.metrics.end_to_end(Outcome::Refused, started.elapsed());
            r
        }
        Decision::Relay(copies) => {
            let count = copies.len();
            // Each copy is dropped as soon as the next hop has it.
            for c in copies {
                match ctx.relay.send(&mail_from, &c.recipients, &c.message).await {
                    RelayOutcome::Accepted => {
                        tracing::info!(message_id = %mid, %peer, from = %mail_from, rcpts = %c.recipients.join(","), direction = %c.direction, action = %c.action, verdict = %c.verdict, ms = started.elapsed().as_millis() as u64, "message");
                        ctx.metrics
                            .message(&c.direction.to_string(), c.kind.as_str(), &c.verdict);
                    }
                    RelayOutcome::Temporary(why) => {
                        tracing::warn!(message_id = %mid, reason = %why, "next hop deferred");
                        ctx.metrics
                            .message(&c.direction.to_string(), "next_hop_deferred", "-");
                        ctx.metrics
                            .end_to_end(Outcome::NextHopFailed, started.elapsed());
                        return Reply::next_hop_deferred(why);
                    }
                    RelayOutcome::Permanent(why) => {
                        tracing::warn!(message_id = %mid, reason = %why, "next hop refused");
                        ctx.metrics
                            .message(&c.direction.to_string(), "next_hop_refused", "-");
                        ctx.metrics
                            .end_to_end(Outcome::NextHopFailed, started.elapsed());
                        return Reply::next_hop_refused(why);
                    }
                }
            }
            ctx.metrics.end_to_end(Outcome::Relayed, started.elapsed());
            Reply::relayed(count)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::{ReadTx, Store, StoreError, WriteTx};
    use std::sync::{Condvar, Mutex};

    /// A store whose reads wait until the test opens the gate: a worker stuck in one step (a
    /// hung disk, a huge RSA operation) that no cooperative deadline check can interrupt.
    struct Gated {
        inner: Box<dyn Store>,
        gate: Arc<(Mutex<bool>, Condvar)>,
    }

    impl Store for Gated {
        fn read(&self) -> Result<Box<dyn ReadTx + '_>, StoreError> {
            let (open, cv) = &*self.gate;
            let mut g = open.lock().unwrap();
            while !*g {
                g = cv.wait(g).unwrap();
            }
            self.inner.read()
        }
        fn write(&self) -> Result<Box<dyn WriteTx + '_>, StoreError> {
            self.inner.write()
        }
        fn describe(&self) -> String {
            self.inner.describe()
        }
    }

    /// The session stops waiting for a worker once the message's time budget is spent: the MTA
    /// gets 451 4.3.0 naming the limit while the worker is still blocked (outbound mail reads the
    /// sender's identity from the directory, whose reads are held shut here).
    #[test]
    fn a_worker_over_its_time_budget_does_not_hold_the_session() {
        let (_tmp, config, dir) = crate::gateway::tests::scratch("");
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let g = gate.clone();
        let dir = dir.map_store(move |inner| Box::new(Gated { inner, gate: g }));
        let ctx = ServerContext {
            gateway: Arc::new(Gateway::new(dir)),
            listener: Listener::Submission,
            relay: Relay::new(&config.relay, "gw.test", Duration::from_secs(1)).unwrap(),
            session: SessionConfig::default(),
            allowed: Vec::new(),
            tls: None,
            timeouts: Timeouts::default(),
            max_sessions: 1,
            active: AtomicUsize::new(0),
            tls_errors: crate::smtp::ratelimit::RateLimitedLog::new("t", Duration::from_secs(1)),
            processing_timeout: Duration::from_millis(50),
            metrics: Arc::new(crate::metrics::Metrics::default()),
            processing: Arc::new(tokio::sync::Semaphore::new(1)),
        };
        let tx = Transaction {
            mail_from: "alice@acme.test".into(),
            rcpt_to: vec!["bob@partner.test".into()],
            message: b"From: alice@acme.test\r\nSubject: x\r\n\r\nbody\r\n".to_vec(),
            helo: "mta.test".into(),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let Reply {
            code,
            enhanced,
            text,
        } = rt.block_on(transact(&ctx, tx, &peer));
        assert_eq!((code, enhanced), (451, "4.3.0"), "{text}");
        assert!(text.contains("limits.max_processing_secs"), "{text}");
        // The abandoned worker still holds the only processing slot until it stops.
        assert_eq!(ctx.processing.available_permits(), 0);
        let (open, cv) = &*gate;
        *open.lock().unwrap() = true;
        cv.notify_all();
        rt.block_on(async {
            let _slot = ctx.processing.acquire().await.unwrap();
        });
    }
}
