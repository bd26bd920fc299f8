//! Transactions of the byte interface: database transactions for writers and snapshots, the
//! node's cache for reads by key on the message path.

use super::*;

impl PgStore {
    fn begin(&self, kind: Kind) -> Tx<'_> {
        Tx {
            store: self,
            kind,
            client: RefCell::new(None),
            state: Cell::new(State::Fresh),
            broken: Cell::new(false),
            wrote: Cell::new(false),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing sent yet (no connection taken from the pool).
    Fresh,
    /// A read answered from the cache or by single statements: no transaction is open.
    Statements,
    /// `BEGIN` sent: the transaction ends with `COMMIT` or, on drop, `ROLLBACK`.
    Open,
    /// Committed.
    Finished,
}

/// A transaction. A write transaction is a database transaction under the writers' lock. A
/// read transaction whose first request is a record by key serves records from the node's
/// cache (one statement on a miss); one that starts with a scan or the audit log (exports,
/// listings) is a `REPEATABLE READ` snapshot.
struct Tx<'a> {
    store: &'a PgStore,
    kind: Kind,
    /// Taken from the pool at the first statement.
    client: RefCell<Option<Object>>,
    state: Cell<State>,
    /// The connection failed (it was closed, not returned to the pool).
    broken: Cell<bool>,
    /// Something was written: the commit bumps the generation.
    wrote: Cell<bool>,
}

impl Tx<'_> {
    /// One statement; in a transaction (its `BEGIN` sent with the first) or on its own.
    fn round_trip(&self, op: Op, in_transaction: bool) -> Result<Answer, StoreError> {
        if self.broken.get() {
            return Err(self
                .store
                .fail("the transaction's connection failed earlier; nothing was written"));
        }
        let taken = self.client.borrow_mut().take();
        let client = match taken {
            Some(c) => c,
            None => self.store.client()?,
        };
        let begin = match (self.state.get(), in_transaction) {
            (State::Fresh, true) => {
                self.state.set(State::Open);
                Some(match self.kind {
                    Kind::Read => BEGIN_READ,
                    Kind::Write => BEGIN_WRITE,
                })
            }
            (State::Fresh, false) => {
                self.state.set(State::Statements);
                None
            }
            _ => None,
        };
        let timeout = self.store.timeout;
        self.store
            .round_trips
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (client, answer) =
            self.store.block_on(async move {
                let work = async {
                    match begin {
                        Some(b) => {
                            // Sent back to back: one round trip.
                            let (began, answer) =
                                tokio::join!(client.batch_execute(b), exec(&client, op));
                            began.and(answer)
                        }
                        None => exec(&client, op).await,
                    }
                };
                match tokio::time::timeout(timeout + Duration::from_secs(1), work).await {
                    Ok(Ok(answer)) => (Some(client), Ok(answer)),
                    Ok(Err(e)) => {
                        let _ = Object::take(client);
                        (None, Err(pg_message(&e)))
                    }
                    Err(_) => {
                        let _ = Object::take(client);
                        (
                        None,
                        Err("no answer within directory.timeout_secs; the connection was closed"
                            .to_string()),
                    )
                    }
                }
            })?;
        if client.is_none() {
            self.broken.set(true);
        }
        *self.client.borrow_mut() = client;
        answer.map_err(|m| self.store.fail(m))
    }

    /// Whether reads go to the open transaction rather than the cache.
    fn transactional(&self) -> bool {
        self.kind == Kind::Write || self.state.get() == State::Open
    }

    /// A read by key on the message path: from the cache while the generation holds.
    fn cached_get(&self, table: &'static str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let lookup = self.store.cache().lookup(table, key);
        match lookup {
            cache::Lookup::Hit(v) => Ok(v),
            cache::Lookup::Miss(epoch) => {
                match self.round_trip(Op::Get(table, key.to_string()), false)? {
                    Answer::Value(v) => {
                        self.store.cache().put(table, key, v.clone(), epoch);
                        Ok(v)
                    }
                    _ => Err(unexpected(self.store)),
                }
            }
            cache::Lookup::Stale(epoch) => {
                match self.round_trip(Op::GetWithGeneration(table, key.to_string()), false)? {
                    Answer::ValueAt(generation, v) => {
                        let mut cache = self.store.cache();
                        if let Some(epoch) = cache.confirm(generation, epoch) {
                            cache.put(table, key, v.clone(), epoch);
                        }
                        Ok(v)
                    }
                    _ => Err(unexpected(self.store)),
                }
            }
        }
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        let Some(client) = self.client.get_mut().take() else {
            return;
        };
        if self.state.get() != State::Open {
            // Committed, or no transaction was opened: the connection is clean.
            return;
        }
        // Roll back after the caller has moved on; the connection returns to the pool only
        // once it is clean again.
        self.store.handle.spawn(async move {
            if client.batch_execute("ROLLBACK").await.is_err() {
                let _ = Object::take(client);
            }
        });
    }
}

fn unexpected(store: &PgStore) -> StoreError {
    store.fail("the database answered a statement with the wrong kind of result")
}

impl ReadTx for Tx<'_> {
    fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if !self.transactional() {
            return self.cached_get(table.name(), key);
        }
        match self.round_trip(Op::Get(table.name(), key.to_string()), true)? {
            Answer::Value(v) => Ok(v),
            _ => Err(unexpected(self.store)),
        }
    }

    fn scan(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let in_transaction = self.state.get() != State::Statements;
        match self.round_trip(Op::Scan(table.name()), in_transaction)? {
            Answer::Rows(rows) => Ok(rows),
            _ => Err(unexpected(self.store)),
        }
    }

    fn audit_log(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let in_transaction = self.state.get() != State::Statements;
        let Answer::Audit(rows) = self.round_trip(Op::Audit, in_transaction)? else {
            return Err(unexpected(self.store));
        };
        rows.into_iter()
            .map(|(seq, bytes)| {
                let mut entry: AuditEntry =
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                        table: "audit",
                        key: seq.to_string(),
                        message: e.to_string(),
                    })?;
                entry.seq = seq as u64;
                Ok(entry)
            })
            .collect()
    }
}

impl WriteTx for Tx<'_> {
    fn put(&mut self, table: Table, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.round_trip(Op::Put(table.name(), key.to_string(), value.to_vec()), true)?;
        self.wrote.set(true);
        Ok(())
    }

    fn insert_new(&mut self, table: Table, key: &str, value: &[u8]) -> Result<bool, StoreError> {
        match self.round_trip(
            Op::InsertNew(table.name(), key.to_string(), value.to_vec()),
            true,
        )? {
            Answer::Changed(c) => {
                self.wrote.set(self.wrote.get() || c);
                Ok(c)
            }
            _ => Err(unexpected(self.store)),
        }
    }

    fn delete(&mut self, table: Table, key: &str) -> Result<bool, StoreError> {
        match self.round_trip(Op::Delete(table.name(), key.to_string()), true)? {
            Answer::Changed(c) => {
                self.wrote.set(self.wrote.get() || c);
                Ok(c)
            }
            _ => Err(unexpected(self.store)),
        }
    }

    fn append_audit(&mut self, entry: &AuditEntry) -> Result<u64, StoreError> {
        let bare = AuditEntry {
            seq: 0,
            ..entry.clone()
        };
        let bytes = serde_json::to_vec(&bare).map_err(|e| self.store.fail(e.to_string()))?;
        match self.round_trip(Op::Append(bytes), true)? {
            Answer::Seq(seq) => {
                self.wrote.set(true);
                Ok(seq as u64)
            }
            _ => Err(unexpected(self.store)),
        }
    }

    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        if self.state.get() != State::Open {
            // Nothing was sent: nothing to commit.
            self.state.set(State::Finished);
            return Ok(());
        }
        let wrote = self.wrote.get();
        let op = if wrote { Op::CommitWrites } else { Op::Commit };
        self.round_trip(op, true)?;
        self.state.set(State::Finished);
        if wrote {
            self.store.cache().clear();
        }
        Ok(())
    }
}

impl Store for PgStore {
    fn read(&self) -> Result<Box<dyn ReadTx + '_>, StoreError> {
        Ok(Box::new(self.begin(Kind::Read)))
    }

    fn write(&self) -> Result<Box<dyn WriteTx + '_>, StoreError> {
        Ok(Box::new(self.begin(Kind::Write)))
    }

    fn describe(&self) -> String {
        self.url.clone()
    }

    /// Readiness: a connection, and the schema this build reads.
    fn health(&self) -> Result<(), StoreError> {
        self.check_schema()
    }

    fn round_trips(&self) -> Option<u64> {
        Some(self.round_trips.load(std::sync::atomic::Ordering::Relaxed))
    }
}
