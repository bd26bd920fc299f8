//! [`ChainCache`]: validations remembered, since the same chains arrive in mail all day.

use super::*;

/// Cache key: everything the verdict depends on, with time reduced to the hour.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    leaf: [u8; 32],
    untrusted: Vec<[u8; 32]>,
    usage: Option<Usage>,
    email: Option<String>,
    hour: i64,
    generation: u64,
}

/// Remembers successful validations so the mail hot path validates a chain about once an hour.
///
/// Callers bump `generation` whenever the [`TrustContext`] changes (new CRL, anchor or
/// cross-certificate); entries of older generations are never returned. A hit is also
/// re-checked against the path's validity period, so a certificate that expires within the
/// hour is not served from the cache after it expired. Failures are not cached.
#[derive(Debug)]
pub struct ChainCache {
    entries: Mutex<HashMap<CacheKey, ValidatedPath>>,
    capacity: usize,
    validations: AtomicU64,
}

impl Default for ChainCache {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl ChainCache {
    /// A cache holding at most `capacity` paths.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            validations: AtomicU64::new(0),
        }
    }

    /// [`validate`], answered from the cache when the same question was answered successfully
    /// in the same hour and context generation.
    pub fn validate(
        &self,
        ctx: &TrustContext,
        generation: u64,
        q: &Query<'_>,
    ) -> Result<ValidatedPath, PathError> {
        let key = CacheKey {
            leaf: q.leaf.fingerprint(),
            untrusted: q.untrusted.iter().map(Cert::fingerprint).collect(),
            usage: q.usage,
            email: q.email.map(|e| e.trim().to_ascii_lowercase()),
            hour: q.at.div_euclid(3600),
            generation,
        };
        {
            let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(p) = map.get(&key)
                && p.valid_from() <= q.at
                && q.at <= p.valid_until()
            {
                return Ok(p.clone());
            }
        }
        self.validations.fetch_add(1, Ordering::Relaxed);
        let p = validate(ctx, q)?;
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity {
            // Drop what can no longer be hit (older generation or hour), then everything.
            map.retain(|k, _| k.generation == generation && k.hour >= key.hour);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(key, p.clone());
        Ok(p)
    }

    /// How many validations actually ran (cache misses).
    pub fn validations(&self) -> u64 {
        self.validations.load(Ordering::Relaxed)
    }

    /// Number of cached paths.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
