//! The metrics listener: one request per connection, bounded in size, time and concurrency, so a
//! misbehaving client cannot hold the gateway's resources.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::Metrics;
use super::http;

/// How long a client may take to send its request, and we to answer it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait in the kernel's accept queue.
pub const MAX_CONNECTIONS: usize = 16;

/// What the listener serves.
pub struct MetricsState {
    /// The counters and histograms.
    pub metrics: Arc<Metrics>,
    /// Takes what the rest of the gateway reports (called on a blocking thread: it reads the
    /// directory).
    pub snapshot: Arc<dyn Fn() -> super::Snapshot + Send + Sync>,
    /// Readiness: `Err(why)` when the directory cannot be read (on a blocking thread).
    pub health: Arc<dyn Fn() -> Result<(), String> + Send + Sync>,
    /// Who may read it (`Host` names, bearer token).
    pub access: super::access::Access,
}

/// Serves `/metrics` and `/healthz` until `shutdown` turns true.
pub async fn run(
    listener: TcpListener,
    state: Arc<MetricsState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return; }
                continue;
            }
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return; }
                continue;
            }
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, handle(stream, state)).await;
            drop(permit);
        });
    }
}

async fn handle(mut stream: TcpStream, state: Arc<MetricsState>) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let request = loop {
        match http::parse_request(&buf) {
            Ok(Some(r)) => break Ok(r),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            // parse_request refuses a head of MAX_REQUEST bytes, so the buffer never holds
            // more than MAX_REQUEST plus one chunk.
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let response = match request {
        Err(e) => {
            let (code, reason) = e.status();
            http::response(
                code,
                reason,
                "text/plain",
                format!("{e}\n").as_bytes(),
                false,
            )
        }
        Ok(req) => match state.access.check(&req) {
            Ok(()) => respond(&req, state).await,
            Err(denied) => {
                let (code, reason) = denied.status();
                let fields: &[(&str, &str)] = if code == 401 {
                    &[("WWW-Authenticate", "Bearer realm=\"smimegw\"")]
                } else {
                    &[]
                };
                http::response_with(
                    code,
                    reason,
                    fields,
                    "text/plain",
                    format!("{denied}\n").as_bytes(),
                    req.head,
                )
            }
        },
    };
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
    // Lingering close: read (a bounded amount of) what the client still sends, so that closing
    // with unread bytes does not reset the connection before the client read our answer.
    let mut drained = 0usize;
    while drained < 64 * 1024 {
        match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
}

async fn respond(req: &http::Request, state: Arc<MetricsState>) -> Vec<u8> {
    let head = req.head;
    match req.path.as_str() {
        "/metrics" => {
            // Directory reads block: keep them off the async workers.
            let body =
                tokio::task::spawn_blocking(move || state.metrics.render(&(state.snapshot)()))
                    .await
                    .unwrap_or_else(|e| format!("# metrics rendering failed: {e}\n"));
            http::response(
                200,
                "OK",
                super::encode::CONTENT_TYPE,
                body.as_bytes(),
                head,
            )
        }
        "/healthz" => {
            let health = tokio::task::spawn_blocking(move || (state.health)()).await;
            match health {
                Ok(Ok(())) => http::response(200, "OK", "text/plain", b"ok\n", head),
                Ok(Err(e)) => http::response(
                    503,
                    "Service Unavailable",
                    "text/plain",
                    format!("not ready: directory unavailable: {e}\n").as_bytes(),
                    head,
                ),
                Err(e) => http::response(
                    503,
                    "Service Unavailable",
                    "text/plain",
                    format!("not ready: health check failed: {e}\n").as_bytes(),
                    head,
                ),
            }
        }
        _ => http::response(
            404,
            "Not Found",
            "text/plain",
            b"not found: this listener serves /metrics and /healthz\n",
            head,
        ),
    }
}
