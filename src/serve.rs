//! `smimegw serve`: the gateway daemon.
//!
//! First start creates what the configuration asks for (data directory, key-encryption key, CA
//! with `ca.auto_init = true`); every later start checks them and refuses to run half-configured.
//! Then it listens (`[listen]` for mail from the world, `[submission]` for mail users
//! submitted, each in its own role), relays, and on SIGTERM stops accepting, finishes the transactions in flight
//! within a grace period, and exits 0. SIGHUP re-reads the configuration file and puts its
//! `[policy]` in force for new transactions, without touching sessions.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use crate::config::{Config, ListenConfig};
use crate::directory::{Directory, DirectoryError};
use crate::gateway::Gateway;
use crate::metrics::Metrics;
use crate::metrics::server::MetricsState;
use crate::policy::Listener;
use crate::smtp::ratelimit::RateLimitedLog;
use crate::smtp::relay::{Relay, RelayError};
use crate::smtp::server::{self, ServerContext, Timeouts};
use crate::smtp::session::SessionConfig;

/// How long in-flight sessions get after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The directory could not be opened or created.
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    /// No CA and the configuration does not ask to create one.
    #[error(
        "the directory {0} has no CA: run `smimegw ca init --name \"...\"` (or `ca import`), or set auto_init = true under [ca] in {1}"
    )]
    NoCa(String, String),
    /// The relay is misconfigured.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// The listener could not be bound.
    #[error("cannot listen on {address} ({key} in {config}): {source}")]
    Bind {
        /// The address.
        address: String,
        /// The configuration key (`listen.address` or `submission.address`).
        key: String,
        /// The configuration file.
        config: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The metrics listener's access rules could not be loaded (the token file).
    #[error(transparent)]
    MetricsAccess(#[from] crate::metrics::access::AccessError),
    /// The metrics listener could not be bound.
    #[error(
        "cannot listen for metrics on {address} (metrics.listen in {config}): {source}; choose another address, or set enabled = false under [metrics]"
    )]
    MetricsBind {
        /// The address.
        address: String,
        /// The configuration file.
        config: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The STARTTLS certificate or key could not be loaded.
    #[error("STARTTLS certificate {cert} / key {key}: {reason}")]
    Tls {
        /// listen.tls_cert.
        cert: String,
        /// listen.tls_key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Opens (or on first start creates) the directory and the CA, as configured.
pub fn prepare(config: &Config) -> Result<Directory, ServeError> {
    let dir = if config.ca.auto_init {
        Directory::open_or_create(config)?
    } else {
        Directory::open_migrating(config)?
    };
    if !dir.has_ca()? {
        if !config.ca.auto_init {
            return Err(ServeError::NoCa(
                dir.describe(),
                config.source.display().to_string(),
            ));
        }
        let cert = dir.init_ca(&config.ca.name, config.ca.key, config.ca.days)?;
        dir.issue_crl()?;
        tracing::info!(ca = %cert.subject_string(), store = %dir.describe(), "created the CA (ca.auto_init)");
        eprintln!(
            "smimegw: created CA '{}' and key-encryption key in {}",
            cert.subject_string(),
            config.data_dir().display()
        );
    }
    Ok(dir)
}

fn tls_acceptor(
    listen: &ListenConfig,
    gateway: &Arc<Gateway>,
) -> Result<Option<tokio_rustls::TlsAcceptor>, ServeError> {
    let (Some(cert), Some(key)) = (&listen.tls_cert, &listen.tls_key) else {
        return Ok(None);
    };
    let err = |reason: String| ServeError::Tls {
        cert: cert.display().to_string(),
        key: key.display().to_string(),
        reason,
    };
    let cert_bytes = std::fs::read(cert).map_err(|e| err(e.to_string()))?;
    let key_bytes = zeroize::Zeroizing::new(std::fs::read(key).map_err(|e| err(e.to_string()))?);
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_bytes.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| err(format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(err("no certificate in the file".into()));
    }
    let key = rustls_pemfile::private_key(&mut key_bytes.as_slice())
        .map_err(|e| err(format!("bad PEM key: {e}")))?
        .ok_or_else(|| err("no private key in the file".into()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let builder = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err(e.to_string()))?;
    let builder = if listen.require_client_certificate {
        // Clients must present a certificate our CA issued and has not revoked; a revocation
        // is in force from the next handshake on.
        let verifier =
            crate::smtp::client_auth::ReloadingClientVerifier::new(gateway.clone(), provider)
                .map_err(|e| err(e.to_string()))?;
        builder.with_client_cert_verifier(Arc::new(verifier))
    } else {
        builder.with_no_client_auth()
    };
    let server = builder
        .with_single_cert(certs, key)
        .map_err(|e| err(e.to_string()))?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(server))))
}

/// Tells systemd about our state (`Type=notify`), when run under it.
fn sd_notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(_) => return,
    };
    let p = std::path::Path::new(&path);
    if let Err(e) = sock.send_to(state.as_bytes(), p) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// The open-file limit after [`raise_nofile_limit`]: what it was and what it is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NofileLimit {
    /// Soft limit found at start.
    pub before: u64,
    /// Soft limit in force now (the hard limit when raising worked).
    pub now: u64,
    /// The hard limit.
    pub hard: u64,
}

/// Raises the soft open-file limit (RLIMIT_NOFILE) to the hard limit.
///
/// Every SMTP session holds a descriptor, and so does every relay connection while it lasts,
/// so the customary soft limit of 1024 caps a gateway at some hundreds of sessions however
/// large `listen.max_sessions` is. The soft limit exists only to protect old programs that use
/// `select(2)`; tokio uses epoll, so, like other servers, we take what the hard limit allows.
/// Under systemd the unit's `LimitNOFILE=` sets both limits and nothing needs raising (the
/// unit's system call filter would refuse `setrlimit` anyway). A failure is returned for the
/// caller to log: the gateway still runs, with fewer sessions possible.
pub fn raise_nofile_limit() -> Result<NofileLimit, (NofileLimit, std::io::Error)> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // `None` means unlimited.
    let before = limit.current.unwrap_or(u64::MAX);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let mut out = NofileLimit {
        before,
        now: before,
        hard,
    };
    if before >= hard {
        return Ok(out);
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            out.now = hard;
            Ok(out)
        }
        Err(e) => Err((out, std::io::Error::from(e))),
    }
}

/// Connections the kernel may hold completed but not yet accepted (the kernel caps it at
/// `net.core.somaxconn`).
///
/// tokio's `TcpListener::bind` uses 128, as the standard library does. SMTP is server-speaks-first:
/// when a burst of connections overflows the queue, the kernel drops the client's final ACK,
/// the client believes it is connected and waits for a greeting that never comes (512 MTA
/// connections at once left 160 of them hanging for minutes in `benches/e2e.rs`).
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds the listener with [`LISTEN_BACKLOG`] (and SO_REUSEADDR, as tokio's `bind` sets it).
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Runs the gateway until SIGTERM or SIGINT (SIGHUP reloads `[policy]`).
pub fn run(config: &Config) -> Result<(), ServeError> {
    let limit = match raise_nofile_limit() {
        Ok(l) => {
            if l.now > l.before {
                tracing::info!(
                    from = l.before,
                    to = l.now,
                    "raised the open-file soft limit (RLIMIT_NOFILE) to the hard limit"
                );
            }
            l
        }
        Err((l, e)) => {
            tracing::warn!(
                soft = l.before,
                hard = l.hard,
                error = %e,
                "cannot raise the open-file soft limit (RLIMIT_NOFILE) to the hard limit"
            );
            l
        }
    };
    // A session holds one descriptor, and one more while it relays.
    let sessions =
        config.listen.max_sessions + config.submission.as_ref().map_or(0, |s| s.max_sessions);
    let needed = (sessions as u64).saturating_mul(2).saturating_add(64);
    if limit.now < needed {
        tracing::warn!(
            open_files = limit.now,
            max_sessions = sessions,
            "the open-file limit is below two descriptors per session (listen.max_sessions plus submission.max_sessions): connections beyond it fail at accept; raise LimitNOFILE= (systemd) or the hard limit (ulimit -Hn)"
        );
    }
    let dir = prepare(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(async_run(config, dir))
}

/// What the two listeners share: the gateway, the relay, the counters and the processing slots
/// (as many transactions at once as there are cores, whichever listener they came in on).
struct Shared {
    gateway: Arc<Gateway>,
    relay: Relay,
    metrics: Arc<Metrics>,
    processing: Arc<tokio::sync::Semaphore>,
    hostname: String,
}

/// One listener's socket and session context, in the role its table gives it.
fn listener(
    config: &Config,
    table: &str,
    listen: &ListenConfig,
    role: Listener,
    shared: &Shared,
) -> Result<(tokio::net::TcpListener, Arc<ServerContext>), ServeError> {
    let tls = tls_acceptor(listen, &shared.gateway)?;
    let socket = self::listen(listen.address).map_err(|source| ServeError::Bind {
        address: listen.address.to_string(),
        key: format!("{table}.address"),
        config: config.source.display().to_string(),
        source,
    })?;
    let ctx = Arc::new(ServerContext {
        gateway: shared.gateway.clone(),
        listener: role,
        relay: shared.relay.clone(),
        session: SessionConfig {
            hostname: shared.hostname.clone(),
            max_message_size: usize::try_from(listen.max_message_size).unwrap_or(usize::MAX),
            max_recipients: listen.max_recipients,
            starttls: tls.is_some(),
            max_errors: 20,
            check_recipients: true,
            require_tls: listen.require_client_certificate,
            max_command_line: listen.max_command_line,
        },
        allowed: listen.allowed_clients.clone(),
        tls,
        timeouts: Timeouts {
            command: Duration::from_secs(listen.command_timeout_secs),
            data: Duration::from_secs(listen.data_timeout_secs),
        },
        max_sessions: listen.max_sessions,
        active: AtomicUsize::new(0),
        tls_errors: RateLimitedLog::new("TLS handshake failed", Duration::from_secs(60)),
        metrics: shared.metrics.clone(),
        processing_timeout: config.limits.limits().budget(),
        processing: shared.processing.clone(),
    });
    Ok((socket, ctx))
}

async fn async_run(config: &Config, dir: Directory) -> Result<(), ServeError> {
    let hostname = crate::gateway::authserv_id(config);
    let relay = Relay::new(&config.relay, &hostname, config.relay.timeout())?;
    let signals = Signals::register();
    let shared = Shared {
        gateway: Arc::new(Gateway::new(dir)),
        relay: relay.clone(),
        metrics: Arc::new(Metrics::default()),
        processing: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )),
        hostname,
    };
    // The inbound listener binds last: once `[listen]` answers, `[submission]` does too.
    let submission = match &config.submission {
        Some(sub) => Some(listener(
            config,
            "submission",
            sub,
            Listener::Submission,
            &shared,
        )?),
        None => None,
    };
    let inbound = listener(config, "listen", &config.listen, Listener::Inbound, &shared)?;
    let access = crate::metrics::access::Access::from_config(&config.metrics)?;
    let metrics_listener = if config.metrics.enabled {
        Some(
            tokio::net::TcpListener::bind(config.metrics.listen)
                .await
                .map_err(|source| ServeError::MetricsBind {
                    address: config.metrics.listen.to_string(),
                    config: config.source.display().to_string(),
                    source,
                })?,
        )
    } else {
        None
    };
    let gateway = shared.gateway.clone();
    let (tx, rx) = tokio::sync::watch::channel(false);
    if let Some(l) = metrics_listener {
        tracing::info!(listen = %config.metrics.listen, "metrics and health on http://{}/metrics and /healthz", config.metrics.listen);
        let (g, r) = (gateway.clone(), relay.clone());
        let h = gateway.clone();
        let state = Arc::new(MetricsState {
            metrics: shared.metrics.clone(),
            snapshot: Arc::new(move || metrics_snapshot(&g, &r)),
            health: Arc::new(move || h.directory().health().map_err(|e| e.to_string())),
            access,
        });
        tokio::spawn(crate::metrics::server::run(l, state, rx.clone()));
    }
    let submission_address = config
        .submission
        .as_ref()
        .map_or("none (nothing is signed)".to_string(), |s| {
            s.address.to_string()
        });
    tracing::info!(listen = %config.listen.address, submission = %submission_address, relay = %config.relay.next_hop, "smimegw serving");
    eprintln!(
        "smimegw: listening on {} (inbound: decrypt and verify), submission on {}, relaying to {}",
        config.listen.address, submission_address, config.relay.next_hop
    );
    sd_notify("READY=1");
    let mut servers = vec![tokio::spawn(server::run(
        inbound.0,
        inbound.1,
        rx.clone(),
        SHUTDOWN_GRACE,
    ))];
    if let Some((socket, ctx)) = submission {
        servers.push(tokio::spawn(server::run(
            socket,
            ctx,
            rx.clone(),
            SHUTDOWN_GRACE,
        )));
    }
    // The notice task runs after each renewal pass too, so a renewal is announced at once.
    let poke = std::sync::Arc::new(tokio::sync::Notify::new());
    if config.notify.enabled {
        tokio::spawn(crate::notify::task(
            gateway.clone(),
            relay.clone(),
            lease_holder(&gateway),
            poke.clone(),
            rx.clone(),
        ));
    }
    if config.ca.renew_before_days > 0 {
        tokio::spawn(renewal(
            gateway.clone(),
            config.ca.clone(),
            poke,
            rx.clone(),
        ));
    }
    wait_for_signal(signals, config, &gateway).await;
    sd_notify("STOPPING=1");
    tracing::info!("shutting down: finishing transactions in flight");
    let _ = tx.send(true);
    for s in servers {
        let _ = s.await;
    }
    relay.close_idle().await;
    Ok(())
}

/// How this process names itself in the directory's leases (and notice claims): host and pid.
fn lease_holder(gateway: &Gateway) -> String {
    format!(
        "{} pid {}",
        crate::gateway::authserv_id(gateway.directory().config()),
        std::process::id()
    )
}

/// How often `serve` looks for certificates due for renewal (and once at start).
const RENEWAL_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// Renews, at start and every [`RENEWAL_INTERVAL`], the certificates the gateway holds keys for
/// that expire within `ca.renew_before_days`, as the gateway's own audited action; names the
/// certificates it cannot renew (CSR users, imports) in the log. Of several gateways on one
/// directory one renews at a time (the directory's renewal lease). After each pass it pokes the
/// notice task (`[notify]`), which announces the renewals and the certificates it cannot renew.
async fn renewal(
    gateway: Arc<Gateway>,
    ca: crate::config::CaConfig,
    notices: Arc<tokio::sync::Notify>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let holder = lease_holder(&gateway);
    loop {
        let (gw, holder2, ca2) = (gateway.clone(), holder.clone(), ca.clone());
        let run = tokio::task::spawn_blocking(move || {
            gw.directory().renew_expiring(
                ca2.renew_before_days,
                ca2.renew_rekey,
                ca2.user_days,
                false,
                Some(&holder2),
            )
        })
        .await;
        match run {
            Ok(Ok(Some(report))) => {
                for d in &report.renewed {
                    tracing::info!(user = %d.email, role = %d.role, serial = %d.serial, "renewed automatically (ca.renew_before_days)");
                }
                for d in &report.not_held {
                    tracing::warn!(user = %d.email, role = %d.role, serial = %d.serial, expires = %crate::pki::ca::rfc3339(d.not_after), "expires soon and the gateway cannot renew it (it does not hold the key): the user must send a new request or certificate");
                }
                for (email, why) in &report.failed {
                    tracing::error!(user = %email, error = %why, "automatic renewal failed; it is tried again at the next run");
                }
            }
            Ok(Ok(None)) => {
                tracing::debug!("renewal: another gateway holds the renewal lease");
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "renewal: the directory could not be read; tried again at the next run")
            }
            Err(e) => tracing::error!(error = %e, "renewal task failed"),
        }
        notices.notify_one();
        tokio::select! {
            _ = tokio::time::sleep(RENEWAL_INTERVAL) => {}
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}

/// The signals `serve` handles, registered before the listener binds (so that a SIGHUP sent
/// as soon as the port answers reloads instead of killing the default way).
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn register() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
            hup: signal(SignalKind::hangup()).ok(),
        }
    }
}

async fn next(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s.as_mut() {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Waits for SIGTERM or SIGINT; SIGHUP meanwhile reloads the policy.
async fn wait_for_signal(mut signals: Signals, config: &Config, gateway: &Gateway) {
    loop {
        tokio::select! {
            _ = next(&mut signals.term) => return,
            _ = next(&mut signals.int) => return,
            Some(()) = next(&mut signals.hup) => reload(config, gateway),
        }
    }
}

/// SIGHUP: re-reads the configuration file and puts its `[policy]` in force for new
/// transactions; sessions and transactions in flight are not touched. A file that does not load
/// changes nothing (the error is logged with the reason); settings outside `[policy]` that
/// changed are named in the log and take effect at the next start.
pub fn reload(config: &Config, gateway: &Gateway) {
    sd_notify("RELOADING=1");
    // The data directory stays the one in use, whether it came from the file or --data-dir.
    match Config::load(&config.source, Some(config.data_dir())) {
        Ok(new) => {
            let r = gateway.reload_policy(&new);
            tracing::info!(
                config = %config.source.display(),
                policy_changed = r.policy_changed,
                "reloaded: [policy] in force for new transactions"
            );
            if !r.needs_restart.is_empty() {
                tracing::warn!(
                    config = %config.source.display(),
                    keys = %r.needs_restart.join(", "),
                    "reload: these settings changed but only take effect at the next start"
                );
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "reload failed; the running configuration stays in force");
        }
    }
    sd_notify("READY=1");
}

/// What `/metrics` shows of the gateway, the relay and the directory at one scrape.
fn metrics_snapshot(
    gateway: &Gateway,
    relay: &crate::smtp::relay::Relay,
) -> crate::metrics::Snapshot {
    use std::sync::atomic::Ordering::Relaxed;
    let revocation = gateway.revocation();
    let f = revocation.fetcher().counts();
    let s = revocation.counts();
    let c = relay.connection_counts();
    let dir = gateway.directory();
    // Read before this scrape's own directory reads, as the metric's help says.
    let directory_round_trips = dir.store().round_trips();
    let directory = dir
        .health()
        .and_then(|()| Ok((dir.expiry_report()?, dir.harvested_count()?, dir.ca_cert()?)))
        .map(|(users, harvested, ca)| crate::metrics::DirectoryGauges {
            now: crate::pki::profile::now(),
            certificates: users
                .into_iter()
                .map(|u| (u.email, u.role.to_string(), u.not_after))
                .collect(),
            ca_not_after: ca.not_after(),
            harvested,
        })
        .map_err(|e| e.to_string());
    crate::metrics::Snapshot {
        harvest_failures: gateway.harvest_failures(),
        revocation_fetches: vec![
            ("crl", "ok", f.crl_ok.load(Relaxed)),
            ("crl", "failed", f.crl_failed.load(Relaxed)),
            ("ocsp", "ok", f.ocsp_ok.load(Relaxed)),
            ("ocsp", "failed", f.ocsp_failed.load(Relaxed)),
        ],
        revocation_status: vec![
            ("checked", s.checked.load(Relaxed)),
            ("revoked", s.revoked.load(Relaxed)),
            ("unknown", s.unknown.load(Relaxed)),
            ("disabled", s.disabled.load(Relaxed)),
        ],
        relay_connections: vec![
            ("opened", c.opened),
            ("reused", c.reused),
            ("found_closed", c.found_closed),
        ],
        relay_idle: relay.idle_count() as u64,
        directory_round_trips,
        directory,
    }
}
