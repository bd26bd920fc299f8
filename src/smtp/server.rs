//! The tokio side of the inbound listener: accept, check the client address, move bytes between
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

use crate::gateway::{Decision, Gateway, message_id};
use crate::smtp::relay::{Relay, RelayOutcome};
use crate::smtp::session::{Action, Session, SessionConfig, Transaction, reply};

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
    /// Transactions processed at once: as many as cores. Signing and decryption are CPU work;
    /// with one blocking thread per session, 512 sessions meant 512 threads sharing two cores,
    /// every message finishing late and memory growing. Sessions wait here, in order.
    pub processing: tokio::sync::Semaphore,
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
            .write_all(&reply(
                554,
                "5.7.1",
                &format!("{} is not allowed to relay through this gateway", peer.ip()),
            ))
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
            .write_all(&reply(
                421,
                "4.7.0",
                "too many connections, try again later",
            ))
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
                            ctx.tls_errors.log(peer.ip(), &e.to_string());
                            return;
                        }
                    }
                }
                Action::Process(tx) => {
                    let (code, enhanced, text) = transact(&ctx, tx, &peer).await;
                    let more = session.transaction_done(code, enhanced, &text);
                    pending.extend(more);
                }
            }
        }
        if session.is_closed() {
            return;
        }
        if *shutdown.borrow() && !session.in_data() {
            let _ = stream
                .write_all(&reply(
                    421,
                    "4.3.2",
                    "gateway shutting down, try again later",
                ))
                .await;
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
                let _ = stream
                    .write_all(&reply(421, "4.4.2", "timeout, closing"))
                    .await;
                return;
            }
        };
        pending.extend(session.feed(&buf[..n]));
    }
}

/// Processes one transaction and relays every copy; the reply is 250 only when the next hop
/// accepted all of them (otherwise the MTA keeps the message and retries: a duplicate is
/// possible, a loss is not).
async fn transact(
    ctx: &ServerContext,
    tx: Transaction,
    peer: &SocketAddr,
) -> (u16, &'static str, String) {
    let started = Instant::now();
    let mid = message_id(&tx.message);
    let mail_from = tx.mail_from.clone();
    let gw = ctx.gateway.clone();
    // The transaction moves into the worker and is dropped there once processed: the message
    // as received is not held while the copies are relayed (for a 25 MiB message that is 25
    // MiB less at the peak).
    // The semaphore is never closed; a failure would only mean processing without a permit.
    let permit = ctx.processing.acquire().await.ok();
    let decision = match tokio::task::spawn_blocking(move || gw.process(&tx)).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(message_id = %mid, error = %e, "processing failed");
            return (
                451,
                "4.3.0",
                "internal error while processing; try again later".into(),
            );
        }
    };
    // Relaying is I/O: the next session may process meanwhile.
    drop(permit);
    match decision {
        Decision::Refuse {
            code,
            enhanced,
            text,
        } => {
            tracing::info!(message_id = %mid, %peer, from = %mail_from, action = "refused", code, reason = %text, ms = started.elapsed().as_millis() as u64, "message");
            (code, enhanced, text)
        }
        Decision::Relay(copies) => {
            let count = copies.len();
            // Each copy is dropped as soon as the next hop has it.
            for c in copies {
                match ctx.relay.send(&mail_from, &c.recipients, &c.message).await {
                    RelayOutcome::Accepted => {
                        tracing::info!(message_id = %mid, %peer, from = %mail_from, rcpts = %c.recipients.join(","), direction = %c.direction, action = %c.action, verdict = %c.verdict, ms = started.elapsed().as_millis() as u64, "message");
                    }
                    RelayOutcome::Temporary(why) => {
                        tracing::warn!(message_id = %mid, reason = %why, "next hop deferred");
                        return (451, "4.4.1", format!("{why}; try again later"));
                    }
                    RelayOutcome::Permanent(why) => {
                        tracing::warn!(message_id = %mid, reason = %why, "next hop refused");
                        return (554, "5.0.0", why);
                    }
                }
            }
            (
                250,
                "2.0.0",
                format!(
                    "ok: {} cop{} relayed",
                    count,
                    if count == 1 { "y" } else { "ies" }
                ),
            )
        }
    }
}
