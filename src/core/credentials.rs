//! A cache of live credentials (session keys and API tokens, by the hash the database keeps),
//! so that authenticating a request costs no database round trip.
//!
//! Revocation stays immediate: a logout or token deletion forgets the entry on this node at
//! once, and the `credential.revoked` event makes every node's hub forget it too (within the
//! doorbell's latency). Entries are re-checked against the database after `TTL` anyway, and
//! expiry times are checked on every use.
//!
//! The caches are moka's: bounded, with a time to live; past `MAX_ENTRIES` the least useful
//! entries are evicted one by one, never all at once.

use std::collections::HashMap;
use std::time::Duration;

use moka::sync::Cache as Moka;

use crate::domain::{Id, Time};

/// How long an entry is trusted before the database is asked again.
const TTL: Duration = Duration::from_secs(60);
/// The most entries each cache keeps (a cache, not a store).
const MAX_ENTRIES: u64 = 100_000;

/// What is known of a credential.
#[derive(Debug, Clone)]
pub struct Entry<T: Clone> {
    /// The credential's id (session or token id), for revocation.
    pub id: Id,
    pub expires: Option<Time>,
    pub value: T,
}

/// Ids revoked lately, shared by a node's caches; each is remembered for twice the `TTL`,
/// longer than any entry put before or during its revocation can live.
///
/// Unbounded on purpose: a bounded moka cache may refuse a new key (its admission policy), and
/// a revocation must never be refused. It holds two minutes of logouts and token deletions.
type Revoked = Moka<Id, ()>;

fn revoked_set(ttl: Duration) -> Revoked {
    Moka::builder().time_to_live(ttl * 2).build()
}

/// A map from secret hashes to what they authenticate.
pub struct Cache<T: Clone + Send + Sync + 'static> {
    entries: Moka<String, Entry<T>>,
    revoked: Revoked,
}

impl<T: Clone + Send + Sync + 'static> Default for Cache<T> {
    fn default() -> Self {
        Cache::new(MAX_ENTRIES, TTL, revoked_set(TTL))
    }
}

impl<T: Clone + Send + Sync + 'static> Cache<T> {
    fn new(capacity: u64, ttl: Duration, revoked: Revoked) -> Self {
        let entries = Moka::builder()
            .max_capacity(capacity)
            .time_to_live(ttl)
            // For `forget_id`: a credential is revoked by its id, not by the hash it is kept under.
            .support_invalidation_closures()
            .build();
        Cache { entries, revoked }
    }

    /// The live entry for `hash`, if cached, fresh, unexpired and not revoked.
    pub fn get(&self, hash: &str) -> Option<Entry<T>> {
        let entry = self.entries.get(hash)?;
        let live = entry.expires.is_none_or(|at| at > Time::now());
        // A lookup that read its row just before the revocation committed may have put it back
        // after `forget_id` ran: the revoked set still refuses it.
        (live && !self.revoked.contains_key(&entry.id)).then_some(entry)
    }

    /// Caches `entry` under `hash`, unless its credential was revoked lately.
    pub fn put(&self, hash: String, entry: Entry<T>) {
        if !self.revoked.contains_key(&entry.id) {
            self.entries.insert(hash, entry);
        }
    }

    pub fn forget_hash(&self, hash: &str) {
        self.entries.invalidate(hash);
    }

    /// Forgets every entry of credential `id` (revocation): `get` never returns them again, and
    /// moka removes them in its next maintenance.
    pub fn forget_id(&self, id: Id) {
        // It fails only without `support_invalidation_closures`, which `new` enables.
        let _ = self
            .entries
            .invalidate_entries_if(move |_, entry| entry.id == id);
    }
}

/// The session and token caches of a node.
pub struct Credentials {
    /// Session key hash → the session's stored state.
    pub sessions: Cache<HashMap<String, String>>,
    /// Token hash → (user, scopes as stored).
    pub tokens: Cache<(Id, String)>,
    /// Recently revoked ids. A lookup that read a row just before its revocation committed
    /// must not put it back after the revocation was forgotten here.
    revoked: Revoked,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials::new(MAX_ENTRIES, TTL)
    }
}

impl Credentials {
    fn new(capacity: u64, ttl: Duration) -> Self {
        let revoked = revoked_set(ttl);
        Credentials {
            sessions: Cache::new(capacity, ttl, revoked.clone()),
            tokens: Cache::new(capacity, ttl, revoked.clone()),
            revoked,
        }
    }

    /// Forgets a revoked credential, whatever its kind, and refuses to cache it again.
    pub fn revoke(&self, id: Id) {
        // First the mark, then the entries: from here on no `get` serves the id, even an entry
        // put back by a lookup that raced with this revocation.
        self.revoked.insert(id, ());
        self.sessions.forget_id(id);
        self.tokens.forget_id(id);
    }

    /// Whether `id` was revoked lately (then it is not cached, whatever a lookup read).
    pub fn was_revoked(&self, id: Id) -> bool {
        self.revoked.contains_key(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: Id, expires: Option<Time>) -> Entry<(Id, String)> {
        Entry {
            id,
            expires,
            value: (Id::new(), "read".to_string()),
        }
    }

    #[test]
    fn a_revoked_or_expired_credential_is_not_served_from_the_cache() {
        let cache = Credentials::default();
        let id = Id::new();
        cache.tokens.put("h".into(), token(id, None));
        assert!(cache.tokens.get("h").is_some());
        cache.revoke(id);
        assert!(cache.tokens.get("h").is_none());
        assert!(cache.was_revoked(id));

        let other = Id::new();
        let past = Time::now() - chrono::Duration::seconds(1);
        cache.tokens.put("h2".into(), token(other, Some(past)));
        assert!(cache.tokens.get("h2").is_none());
    }

    #[test]
    fn revocation_forgets_every_hash_of_the_credential_and_no_other() {
        // Arrange: one session cached under two hashes, another session beside it.
        let cache = Credentials::default();
        let (id, other) = (Id::new(), Id::new());
        let session = |id| Entry {
            id,
            expires: None,
            value: HashMap::from([("user".to_string(), "u".to_string())]),
        };
        cache.sessions.put("a".into(), session(id));
        cache.sessions.put("b".into(), session(id));
        cache.sessions.put("c".into(), session(other));

        // Act
        cache.revoke(id);
        cache.sessions.entries.run_pending_tasks();

        // Assert: gone from `get`, and removed from the cache, not only hidden.
        assert!(cache.sessions.get("a").is_none());
        assert!(cache.sessions.get("b").is_none());
        assert!(!cache.sessions.entries.contains_key("a"));
        assert!(cache.sessions.get("c").is_some());
    }

    #[test]
    fn an_entry_put_back_after_its_revocation_is_never_served() {
        // A lookup read the row, then the revocation ran, then the lookup cached what it read.
        let cache = Credentials::default();
        let id = Id::new();
        cache.revoke(id);
        cache.tokens.put("h".into(), token(id, None));
        assert!(cache.tokens.get("h").is_none());
        // Even one that bypassed `put`'s check.
        cache.tokens.entries.insert("h".into(), token(id, None));
        assert!(cache.tokens.get("h").is_none());
    }

    #[test]
    fn an_entry_is_trusted_for_the_ttl_only() {
        let cache = Credentials::new(10, Duration::from_millis(50));
        cache.tokens.put("h".into(), token(Id::new(), None));
        assert!(cache.tokens.get("h").is_some());
        std::thread::sleep(Duration::from_millis(100));
        assert!(cache.tokens.get("h").is_none());
    }

    #[test]
    fn the_cache_stays_bounded_without_dropping_everything_at_once() {
        // Arrange: a full cache whose entries are in use.
        let capacity = 100;
        let cache = Credentials::new(capacity, TTL);
        let hashes: Vec<String> = (0..capacity).map(|i| format!("h{i}")).collect();
        for hash in &hashes {
            cache.tokens.put(hash.clone(), token(Id::new(), None));
            assert!(cache.tokens.get(hash).is_some());
        }
        cache.tokens.entries.run_pending_tasks();

        // Act: ten times its capacity in new entries.
        for i in 0..10 * capacity {
            cache.tokens.put(format!("new{i}"), token(Id::new(), None));
            cache.tokens.entries.run_pending_tasks();
            // Assert: never more than the capacity, and never emptied.
            let kept = cache.tokens.entries.entry_count();
            assert!(kept <= capacity, "{kept} entries kept");
            assert!(kept >= capacity - 1, "only {kept} entries kept");
        }

        // Assert: the entries in use are still served.
        let served = hashes
            .iter()
            .filter(|h| cache.tokens.get(h).is_some())
            .count();
        assert!(
            served >= 90,
            "{served} of the {capacity} entries in use kept"
        );
    }
}
