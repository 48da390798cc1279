//! A cache of live credentials (session keys and API tokens, by the hash the database keeps),
//! so that authenticating a request costs no database round trip.
//!
//! Revocation stays immediate: a logout or token deletion forgets the entry on this node at
//! once, and the `credential.revoked` event makes every node's hub forget it too (within the
//! doorbell's latency). Entries are re-checked against the database after `TTL` anyway, and
//! expiry times are checked on every use.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::{Id, Time};

/// How long an entry is trusted before the database is asked again.
const TTL: Duration = Duration::from_secs(60);
/// The most entries kept; past it the cache starts over (a cache, not a store).
const MAX_ENTRIES: usize = 100_000;

/// What is known of a credential.
#[derive(Debug, Clone)]
pub struct Entry<T: Clone> {
    /// The credential's id (session or token id), for revocation.
    pub id: Id,
    pub expires: Option<Time>,
    pub value: T,
}

struct Slot<T: Clone> {
    entry: Entry<T>,
    cached_at: Instant,
}

/// A map from secret hashes to what they authenticate.
pub struct Cache<T: Clone> {
    slots: Mutex<HashMap<String, Slot<T>>>,
}

impl<T: Clone> Default for Cache<T> {
    fn default() -> Self {
        Cache {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone> Cache<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot<T>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live entry for `hash`, if cached, fresh and unexpired.
    pub fn get(&self, hash: &str) -> Option<Entry<T>> {
        let slots = self.lock();
        let slot = slots.get(hash)?;
        let fresh = slot.cached_at.elapsed() < TTL;
        let live = slot.entry.expires.is_none_or(|at| at > Time::now());
        (fresh && live).then(|| slot.entry.clone())
    }

    pub fn put(&self, hash: String, entry: Entry<T>) {
        let mut slots = self.lock();
        if slots.len() >= MAX_ENTRIES {
            slots.clear();
        }
        slots.insert(
            hash,
            Slot {
                entry,
                cached_at: Instant::now(),
            },
        );
    }

    pub fn forget_hash(&self, hash: &str) {
        self.lock().remove(hash);
    }

    /// Forgets every entry of credential `id` (revocation).
    pub fn forget_id(&self, id: Id) {
        self.lock().retain(|_, slot| slot.entry.id != id);
    }
}

/// The session and token caches of a node.
#[derive(Default)]
pub struct Credentials {
    /// Session key hash → the session's stored state.
    pub sessions: Cache<HashMap<String, String>>,
    /// Token hash → (user, scopes as stored).
    pub tokens: Cache<(Id, String)>,
    /// Recently revoked ids. A lookup that read a row just before its revocation committed
    /// must not put it back after the revocation was forgotten here.
    revoked: Mutex<HashMap<Id, Instant>>,
}

impl Credentials {
    /// Forgets a revoked credential, whatever its kind, and refuses to cache it again.
    pub fn revoke(&self, id: Id) {
        {
            let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
            if revoked.len() >= MAX_ENTRIES {
                revoked.retain(|_, at| at.elapsed() < TTL * 2);
            }
            revoked.insert(id, Instant::now());
        }
        self.sessions.forget_id(id);
        self.tokens.forget_id(id);
    }

    /// Whether `id` was revoked lately (then it is not cached, whatever a lookup read).
    pub fn was_revoked(&self, id: Id) -> bool {
        let revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        revoked.get(&id).is_some_and(|at| at.elapsed() < TTL * 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_or_expired_credential_is_not_served_from_the_cache() {
        let cache = Credentials::default();
        let (id, user) = (Id::new(), Id::new());
        let entry = |expires| Entry {
            id,
            expires,
            value: (user, "read".to_string()),
        };
        cache.tokens.put("h".into(), entry(None));
        assert!(cache.tokens.get("h").is_some());
        cache.revoke(id);
        assert!(cache.tokens.get("h").is_none());
        assert!(cache.was_revoked(id));
        cache.tokens.put(
            "h".into(),
            entry(Some(Time::now() - chrono::Duration::seconds(1))),
        );
        assert!(cache.tokens.get("h").is_none());
    }
}
