//! The PostgreSQL backend: one directory shared by a fleet of gateways.
//!
//! The byte interface of [`Store`] maps onto two tables: `smimegw_records (tbl, key, value)` and
//! the append-only `smimegw_audit (seq, entry)`, with `smimegw_schema` holding the version the
//! migrations below have reached.
//!
//! How the guarantees of the embedded store carry over to several nodes:
//! - **One writer at a time, fleet-wide.** Every write transaction takes the same transaction-
//!   scoped advisory lock first, so writers on all nodes run one after another, exactly as redb
//!   runs its writers in one process. Nothing can interleave, so there are no serialisation
//!   failures to retry; serial numbers (inserted with `ON CONFLICT DO NOTHING`) and audit
//!   sequence numbers (`max + 1` under the lock) are unique across the fleet and the audit chain
//!   has one head. Writes are rare (lifecycle commands, a newly harvested certificate); reads,
//!   which every message makes, never wait for the lock.
//! - **Reads on the message path** come from the node's cache of records, valid while the
//!   fleet's generation (bumped in the commit of every write transaction of every node) stays
//!   the same, and confirmed at most every 250 ms (`cache.rs`): a warm message costs no round
//!   trip, and a change on another node is in force here within a quarter of a second. A read
//!   transaction that starts with a scan or the audit log (exports, listings) is a
//!   `REPEATABLE READ, READ ONLY` snapshot instead, its `BEGIN` in the same round trip as its
//!   first statement and its `ROLLBACK` sent after the caller has moved on.
//! - **Never blocking the SMTP workers.** The driver (tokio-postgres with a deadpool pool) runs
//!   on a small runtime of its own; the synchronous interface hands each round trip to it and
//!   waits on a channel, so the calling thread (a blocking-pool thread on the message path)
//!   blocks, and no tokio worker ever runs a `block_on`.
//! - **Failure.** Every connection attempt and every statement is bounded by `timeout_secs`; a
//!   connection that failed or timed out is closed, never reused; the pool opens fresh ones, so
//!   the gateway recovers by itself when the server is back. Errors are
//!   [`StoreError::Backend`], which the message path answers with 451 4.3.0.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::types::Type;

mod cache;
mod tls;
mod tx;

use super::{AuditEntry, ReadTx, Store, StoreError, Table, WriteTx};
use crate::config::{DatabaseTls, DirectoryConfig};

/// The schema version this build creates and reads.
pub const PG_SCHEMA_VERSION: i32 = 2;

/// The migrations, in order: each brings the schema from the version before it to its own.
/// A migration runs inside the transaction that records its version, under the writers' lock.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE smimegw_records (
         tbl text NOT NULL,
         key text COLLATE \"C\" NOT NULL,
         value bytea NOT NULL,
         PRIMARY KEY (tbl, key)
     );
     CREATE TABLE smimegw_audit (
         seq bigint PRIMARY KEY,
         entry bytea NOT NULL
     );",
    ),
    (
        2,
        // Bumped by every write transaction in its commit: nodes cache records while it stays
        // the same (see cache.rs).
        "CREATE TABLE smimegw_generation (
             id integer PRIMARY KEY CHECK (id = 1),
             g bigint NOT NULL
         );
         INSERT INTO smimegw_generation VALUES (1, 0);",
    ),
];

const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
/// Every writer takes the same advisory lock (its key is the ASCII of "smimegw" as a number);
/// waiting for it is bounded by the session's `lock_timeout` (see [`PgStore::open`]).
const BEGIN_WRITE: &str =
    "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(32489921896081271)";

/// Whether opening may bring the schema up to date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Migrate {
    /// Create or upgrade the schema (`directory migrate`, `ca init`, `serve`, `directory import`).
    Apply,
    /// Refuse an older schema with the command that upgrades it (every other command).
    Refuse,
}

/// The PostgreSQL-backed directory.
pub struct PgStore {
    /// The driver's runtime; shut down in the background on drop, since the store may be
    /// dropped inside another runtime's task.
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    url: String,
    timeout: Duration,
    /// Round trips made (statements), for the metric.
    round_trips: std::sync::atomic::AtomicU64,
    /// Records read on the message path, while the fleet's generation stays the same.
    cache: std::sync::Mutex<cache::ReadCache>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.url)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// A round trip's answer.
enum Answer {
    Value(Option<Vec<u8>>),
    ValueAt(i64, Option<Vec<u8>>),
    Rows(Vec<(String, Vec<u8>)>),
    Audit(Vec<(i64, Vec<u8>)>),
    Changed(bool),
    Seq(i64),
    Done,
}

/// One statement of the byte interface.
enum Op {
    Get(&'static str, String),
    /// A record and the generation it belongs to, in one statement (one snapshot).
    GetWithGeneration(&'static str, String),
    Scan(&'static str),
    Audit,
    Put(&'static str, String, Vec<u8>),
    InsertNew(&'static str, String, Vec<u8>),
    Delete(&'static str, String),
    Append(Vec<u8>),
    Commit,
    /// Commit a transaction that wrote, telling every node's cache (see cache.rs).
    CommitWrites,
}

async fn exec(client: &tokio_postgres::Client, op: Op) -> Result<Answer, tokio_postgres::Error> {
    Ok(match op {
        Op::Get(tbl, key) => Answer::Value(
            client
                .query_typed_opt(
                    "SELECT value FROM smimegw_records WHERE tbl = $1 AND key = $2",
                    &[(&tbl, Type::TEXT), (&key, Type::TEXT)],
                )
                .await?
                .map(|row| row.get(0)),
        ),
        Op::GetWithGeneration(tbl, key) => {
            let row = client
                .query_typed_one(
                    "SELECT (SELECT g FROM smimegw_generation WHERE id = 1),
                            (SELECT value FROM smimegw_records WHERE tbl = $1 AND key = $2)",
                    &[(&tbl, Type::TEXT), (&key, Type::TEXT)],
                )
                .await?;
            Answer::ValueAt(row.get(0), row.get(1))
        }
        Op::Scan(tbl) => Answer::Rows(
            client
                .query_typed(
                    "SELECT key, value FROM smimegw_records WHERE tbl = $1 ORDER BY key",
                    &[(&tbl, Type::TEXT)],
                )
                .await?
                .into_iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect(),
        ),
        Op::Audit => Answer::Audit(
            client
                .query_typed("SELECT seq, entry FROM smimegw_audit ORDER BY seq", &[])
                .await?
                .into_iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect(),
        ),
        Op::Put(tbl, key, value) => {
            client
                .execute_typed(
                    "INSERT INTO smimegw_records (tbl, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (tbl, key) DO UPDATE SET value = EXCLUDED.value",
                    &[
                        (&tbl, Type::TEXT),
                        (&key, Type::TEXT),
                        (&value, Type::BYTEA),
                    ],
                )
                .await?;
            Answer::Done
        }
        Op::InsertNew(tbl, key, value) => Answer::Changed(
            client
                .execute_typed(
                    "INSERT INTO smimegw_records (tbl, key, value) VALUES ($1, $2, $3)
                     ON CONFLICT (tbl, key) DO NOTHING",
                    &[
                        (&tbl, Type::TEXT),
                        (&key, Type::TEXT),
                        (&value, Type::BYTEA),
                    ],
                )
                .await?
                == 1,
        ),
        Op::Delete(tbl, key) => Answer::Changed(
            client
                .execute_typed(
                    "DELETE FROM smimegw_records WHERE tbl = $1 AND key = $2",
                    &[(&tbl, Type::TEXT), (&key, Type::TEXT)],
                )
                .await?
                == 1,
        ),
        Op::Append(entry) => Answer::Seq(
            client
                .query_typed_one(
                    "INSERT INTO smimegw_audit (seq, entry)
                     SELECT coalesce(max(seq), 0) + 1, $1 FROM smimegw_audit RETURNING seq",
                    &[(&entry, Type::BYTEA)],
                )
                .await?
                .get(0),
        ),
        Op::Commit => {
            client.batch_execute("COMMIT").await?;
            Answer::Done
        }
        Op::CommitWrites => {
            client
                .batch_execute("UPDATE smimegw_generation SET g = g + 1 WHERE id = 1; COMMIT")
                .await?;
            Answer::Done
        }
    })
}

/// A driver error as an administrator needs it: the server's message and SQLSTATE, or the
/// connection failure with its cause.
fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

impl PgStore {
    /// Connects (the pool opens connections as they are needed, the first one now), checks
    /// the schema, and with [`Migrate::Apply`] creates or upgrades it.
    pub fn open(
        config: &DirectoryConfig,
        config_file: &Path,
        migrate: Migrate,
    ) -> Result<Self, StoreError> {
        let store = Self::connect(config, config_file)?;
        match migrate {
            Migrate::Apply => {
                store.migrate()?;
            }
            Migrate::Refuse => store.check_schema()?,
        }
        Ok(store)
    }

    /// Connects without looking at the schema (for `directory migrate`, which reports the
    /// version it found).
    pub fn connect(config: &DirectoryConfig, config_file: &Path) -> Result<Self, StoreError> {
        let url = config.url.clone();
        let fail = |message: String| StoreError::Backend {
            path: PathBuf::from(&url),
            message,
        };
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| fail(format!("not a usable URL: {e}")))?;
        let timeout = Duration::from_secs(config.timeout_secs);
        pg.connect_timeout(timeout);
        pg.application_name("smimegw");
        // The server enforces the same bound on each statement and on waiting for the writers'
        // lock, so a slow server answers with its own error before the client gives up; a
        // client that stopped in the middle of a transaction loses it (and the lock) after a
        // minute.
        let ms = timeout.as_millis();
        pg.options(format!(
            "-c statement_timeout={ms} -c lock_timeout={ms} -c idle_in_transaction_session_timeout={}",
            ms.max(60_000)
        ));
        if let Some(file) = &config.password_file {
            let file = resolve(config_file, file);
            let text = std::fs::read_to_string(&file).map_err(|e| {
                fail(format!(
                    "cannot read directory.password_file {}: {e}",
                    file.display()
                ))
            })?;
            let password = text.lines().next().unwrap_or("").to_string();
            if password.is_empty() {
                return Err(fail(format!(
                    "directory.password_file {} is empty",
                    file.display()
                )));
            }
            pg.password(password);
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match config.tls {
            DatabaseTls::Off => {
                pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
                Manager::from_config(pg, tokio_postgres::NoTls, manager_config)
            }
            DatabaseTls::Require | DatabaseTls::VerifyFull => {
                pg.ssl_mode(tokio_postgres::config::SslMode::Require);
                let tls = tls::tls_config(config, config_file).map_err(fail)?;
                Manager::from_config(
                    pg,
                    tokio_postgres_rustls::MakeRustlsConnect::new(tls),
                    manager_config,
                )
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("smimegw-db")
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the database runtime: {e}")))?;
        let pool = {
            let _guard = runtime.enter();
            Pool::builder(manager)
                .max_size(config.pool_size)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(timeout))
                .create_timeout(Some(timeout))
                .recycle_timeout(Some(timeout))
                .build()
                .map_err(|e| fail(format!("cannot build the connection pool: {e}")))?
        };
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            pool,
            url,
            timeout,
            round_trips: Default::default(),
            cache: Default::default(),
        })
    }

    fn fail(&self, message: impl Into<String>) -> StoreError {
        StoreError::Backend {
            path: PathBuf::from(&self.url),
            message: message.into(),
        }
    }

    /// Runs `fut` on the driver's runtime and waits for it on this thread.
    fn block_on<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| self.fail("the database task ended without an answer"))
    }

    /// A connection from the pool.
    fn client(&self) -> Result<Object, StoreError> {
        let pool = self.pool.clone();
        let url = self.url.clone();
        self.block_on(async move { pool.get().await })?
            .map_err(|e| {
                let detail = match &e {
                    deadpool_postgres::PoolError::Backend(pe) => pg_message(pe),
                    other => other.to_string(),
                };
                StoreError::Backend {
                    path: PathBuf::from(url),
                    message: format!("cannot connect to the database: {detail}"),
                }
            })
    }

    /// The schema version recorded in the database (`None`: no smimegw schema there).
    fn schema_version(&self) -> Result<Option<i32>, StoreError> {
        let client = self.client()?;
        self.round_trips
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let timeout = self.timeout;
        let answer = self.block_on(async move {
            let r = tokio::time::timeout(
                timeout,
                client.query_typed_opt("SELECT version FROM smimegw_schema WHERE id = 1", &[]),
            )
            .await;
            match r {
                Ok(Ok(row)) => Ok(row.map(|r| r.get::<_, i32>(0))),
                Ok(Err(e))
                    if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) =>
                {
                    Ok(None)
                }
                Ok(Err(e)) => {
                    let _ = Object::take(client);
                    Err(pg_message(&e))
                }
                Err(_) => {
                    let _ = Object::take(client);
                    Err("no answer within directory.timeout_secs".to_string())
                }
            }
        })?;
        answer.map_err(|m| self.fail(m))
    }

    /// Refuses a missing, older or newer schema, naming the command that fixes it.
    pub fn check_schema(&self) -> Result<(), StoreError> {
        match self.schema_version()? {
            None => Err(StoreError::NotInitialised(PathBuf::from(&self.url))),
            Some(v) if v == PG_SCHEMA_VERSION => Ok(()),
            Some(v) if v > PG_SCHEMA_VERSION => Err(StoreError::IncompatibleVersion {
                path: PathBuf::from(&self.url),
                found: v.to_string(),
                expected: PG_SCHEMA_VERSION as u32,
            }),
            Some(v) => Err(self.fail(format!(
                "the database schema is version {v}, this smimegw needs version {PG_SCHEMA_VERSION}: run `smimegw directory migrate` (serve does it at start)"
            ))),
        }
    }

    /// Creates or upgrades the schema; returns the versions before and after. Runs under the
    /// writers' lock, so nodes starting together migrate once.
    pub fn migrate(&self) -> Result<(i32, i32), StoreError> {
        let client = self.client()?;
        let timeout = self.timeout;
        let result = self.block_on(async move {
            let work = async {
                client.batch_execute(BEGIN_WRITE).await?;
                client
                    .batch_execute(
                        "CREATE TABLE IF NOT EXISTS smimegw_schema (
                             id integer PRIMARY KEY CHECK (id = 1),
                             version integer NOT NULL
                         )",
                    )
                    .await?;
                let from: i32 = client
                    .query_typed_opt("SELECT version FROM smimegw_schema WHERE id = 1", &[])
                    .await?
                    .map(|r| r.get(0))
                    .unwrap_or(0);
                if from > PG_SCHEMA_VERSION {
                    client.batch_execute("ROLLBACK").await?;
                    return Ok(Err(from));
                }
                for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > from) {
                    client.batch_execute(sql).await?;
                    client
                        .execute_typed(
                            "INSERT INTO smimegw_schema (id, version) VALUES (1, $1)
                             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
                            &[(version, Type::INT4)],
                        )
                        .await?;
                }
                client.batch_execute("COMMIT").await?;
                Ok::<_, tokio_postgres::Error>(Ok(from))
            };
            let r = tokio::time::timeout(timeout * 4, work).await;
            match r {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => {
                    let _ = Object::take(client);
                    Err(pg_message(&e))
                }
                Err(_) => {
                    let _ = Object::take(client);
                    Err("the migration did not finish within 4 x directory.timeout_secs".into())
                }
            }
        })?;
        match result.map_err(|m| self.fail(format!("migrating the schema: {m}")))? {
            Ok(from) => Ok((from, PG_SCHEMA_VERSION)),
            Err(newer) => Err(StoreError::IncompatibleVersion {
                path: PathBuf::from(&self.url),
                found: newer.to_string(),
                expected: PG_SCHEMA_VERSION as u32,
            }),
        }
    }

    /// The database URL (it never holds a password).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, cache::ReadCache> {
        // A poisoned lock only means a thread panicked mid-update: start over.
        self.cache.lock().unwrap_or_else(|e| {
            let mut c = e.into_inner();
            c.clear();
            c
        })
    }
}

/// A file named in the configuration, relative to the configuration file's folder.
fn resolve(config_file: &Path, file: &Path) -> PathBuf {
    if file.is_absolute() {
        return file.to_path_buf();
    }
    config_file
        .parent()
        .map(|d| d.join(file))
        .unwrap_or_else(|| file.to_path_buf())
}
