//! The node's cache of directory records, kept coherent with the fleet by a generation number.
//!
//! Every message reads a handful of records (the trust generation, the sender's and the
//! recipients' records, harvested certificates); asked of the database each time, they cost
//! a round trip each and made the gateway wait on the server. Records change rarely, and every
//! write transaction of every node bumps `smimegw_generation` in the same commit, so a node
//! may answer reads from memory as long as the generation it last read is still the database's.
//! It asks at most every [`FRESH`]: a change made on another node is in force here within that
//! time (and at once for changes made through this process, which empty the cache on commit).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a confirmed generation is trusted before it is asked for again.
pub(super) const FRESH: Duration = Duration::from_millis(250);

/// More entries than this and the cache starts over (a bound on memory, not a working set).
const MAX_ENTRIES: usize = 50_000;

/// What a lookup found.
pub(super) enum Lookup {
    /// The record (or its absence) as of the generation in force.
    Hit(Option<Vec<u8>>),
    /// Not cached: read it, then [`ReadCache::put`] it with this epoch.
    Miss(u64),
    /// The generation must be confirmed first ([`ReadCache::confirm`] with this epoch).
    Stale(u64),
}

#[derive(Default)]
pub(super) struct ReadCache {
    /// The database generation the entries belong to.
    generation: Option<i64>,
    /// When `generation` was last confirmed by the database.
    confirmed: Option<Instant>,
    /// Counts every emptying: an answer read before one must not be cached after it.
    epoch: u64,
    entries: HashMap<(&'static str, String), Option<Vec<u8>>>,
}

impl ReadCache {
    pub(super) fn lookup(&self, table: &'static str, key: &str) -> Lookup {
        let fresh = self.confirmed.is_some_and(|at| at.elapsed() < FRESH);
        if !fresh {
            return Lookup::Stale(self.epoch);
        }
        match self.entries.get(&(table, key.to_string())) {
            Some(v) => Lookup::Hit(v.clone()),
            None => Lookup::Miss(self.epoch),
        }
    }

    /// Records the generation the database just gave (read after `epoch` was taken); a new
    /// generation empties the cache. Returns the epoch under which what was read together with
    /// the generation may be cached, or `None` when this process emptied the cache meanwhile
    /// (then nothing is confirmed, and the next read asks again).
    pub(super) fn confirm(&mut self, generation: i64, epoch: u64) -> Option<u64> {
        if epoch != self.epoch {
            return None;
        }
        if self.generation != Some(generation) {
            self.clear();
            self.generation = Some(generation);
        }
        self.confirmed = Some(Instant::now());
        Some(self.epoch)
    }

    /// Caches what a read (begun after `epoch` was taken) returned.
    pub(super) fn put(
        &mut self,
        table: &'static str,
        key: &str,
        value: Option<Vec<u8>>,
        epoch: u64,
    ) {
        if epoch != self.epoch {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries.insert((table, key.to_string()), value);
    }

    /// Forgets everything: after this process committed a write, and whenever the generation
    /// moved.
    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.generation = None;
        self.confirmed = None;
        self.epoch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(c: &ReadCache, k: &str) -> Option<Option<Vec<u8>>> {
        match c.lookup("users", k) {
            Lookup::Hit(v) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn answers_only_what_was_read_under_a_confirmed_generation() {
        let mut c = ReadCache::default();
        let Lookup::Stale(e) = c.lookup("users", "a") else {
            panic!("a new cache must ask for the generation first")
        };
        c.confirm(7, e).unwrap();
        let Lookup::Miss(e) = c.lookup("users", "a") else {
            panic!("nothing cached yet")
        };
        c.put("users", "a", Some(b"A".to_vec()), e);
        c.put("users", "gone", None, e);
        assert_eq!(hit(&c, "a"), Some(Some(b"A".to_vec())));
        assert_eq!(hit(&c, "gone"), Some(None), "absence is cached too");

        // The same generation again keeps the entries; another one empties them.
        c.confirm(7, c.epoch).unwrap();
        assert_eq!(hit(&c, "a"), Some(Some(b"A".to_vec())));
        let e = c.confirm(8, c.epoch).unwrap();
        assert!(hit(&c, "a").is_none());
        // What was read together with generation 8 is cached under the epoch confirm gives.
        c.put("users", "a", Some(b"A2".to_vec()), e);
        assert_eq!(hit(&c, "a"), Some(Some(b"A2".to_vec())));
    }

    #[test]
    fn an_answer_read_before_a_local_commit_is_never_cached_after_it() {
        let mut c = ReadCache::default();
        c.confirm(1, c.epoch).unwrap();
        let Lookup::Miss(e) = c.lookup("users", "a") else {
            panic!()
        };
        // This process commits a write while the read is on its way.
        c.clear();
        c.put("users", "a", Some(b"old".to_vec()), e);
        assert_eq!(c.confirm(1, e), None);
        assert!(matches!(c.lookup("users", "a"), Lookup::Stale(_)));
    }

    #[test]
    fn a_confirmation_expires() {
        let mut c = ReadCache::default();
        c.confirm(1, c.epoch).unwrap();
        c.confirmed = Some(Instant::now() - FRESH);
        assert!(matches!(c.lookup("users", "a"), Lookup::Stale(_)));
    }
}
