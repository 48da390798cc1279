//! The server side of `actix-session`: sessions live in the database, so logout really ends
//! them and every node sees the same ones. The cookie holds a random key; the table holds its
//! SHA-256.

use std::collections::HashMap;

use actix_session::storage::{
    generate_session_key, LoadError, SaveError, SessionKey, SessionStore, UpdateError,
};
use actix_web::cookie::time::Duration;

use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use crate::core::credentials::Credentials;
use crate::core::crypto::sha256_hex;
use crate::core::sessions;
use crate::domain::Id;
use crate::domain::Time;
use crate::server::api::auth::{session_ids, session_user_agent};
use crate::store::Db;

/// Sessions in the `sessions` table.
#[derive(Clone)]
pub struct DbSessionStore {
    db: Db,
    /// Live sessions by key hash: a request's session costs no query when cached.
    credentials: Arc<Credentials>,
    /// When this node last wrote each session's `last_seen_at`: at most once a minute each.
    seen: Arc<Mutex<HashMap<Id, Instant>>>,
}

/// How often a session's `last_seen_at` is written (per node).
const TOUCH_EVERY: StdDuration = StdDuration::from_secs(60);
/// Past this many remembered sessions, the ones not touched within a minute are forgotten.
const SEEN_PRUNE_AT: usize = 10_000;

impl DbSessionStore {
    pub fn new(db: Db, credentials: Arc<Credentials>) -> DbSessionStore {
        DbSessionStore {
            db,
            credentials,
            seen: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Whether the session `id` is due a `last_seen_at` write (and marks it written).
    fn due(&self, id: Id) -> bool {
        let now = Instant::now();
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        if seen
            .get(&id)
            .is_some_and(|at| now.duration_since(*at) < TOUCH_EVERY)
        {
            return false;
        }
        if seen.len() >= SEEN_PRUNE_AT {
            seen.retain(|_, at| now.duration_since(*at) < TOUCH_EVERY);
        }
        seen.insert(id, now);
        true
    }
}

fn key_hash(key: &SessionKey) -> String {
    sha256_hex(key.as_ref().as_bytes())
}

fn expiry(ttl: &Duration) -> Time {
    Time::now() + chrono::Duration::seconds(ttl.whole_seconds().max(1))
}

/// What actix-session's errors carry: the error as text (its cause is logged where it arose).
fn other(e: crate::error::Error) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

impl SessionStore for DbSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let state = sessions::find_live(&self.db, &self.credentials, key_hash(key))
            .await
            .map_err(|e| LoadError::Other(other(e)))?;
        if let Some((_, id)) = state.as_ref().and_then(session_ids) {
            if self.due(id) {
                // Only the sessions list reads it: a failed write costs nothing but freshness.
                if let Err(e) = sessions::touch(&self.db, id).await {
                    tracing::warn!(error = %e, "could not record a session's last use");
                }
            }
        }
        Ok(state)
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let (user_id, id) = session_ids(&state)
            .ok_or_else(|| SaveError::Other(anyhow::anyhow!("a session needs a signed-in user")))?;
        let key = generate_session_key();
        self.due(id);
        let new = sessions::NewSession {
            id,
            user: user_id,
            hash: key_hash(&key),
            user_agent: session_user_agent(&state),
            expires: expiry(ttl),
        };
        sessions::create(&self.db, new, &state)
            .await
            .map_err(|e| SaveError::Other(other(e)))?;
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let found = sessions::extend(
            &self.db,
            &self.credentials,
            key_hash(&key),
            Some(&state),
            expiry(ttl),
        )
        .await
        .map_err(|e| UpdateError::Other(other(e)))?;
        if found {
            Ok(key)
        } else {
            self.save(state, ttl)
                .await
                .map_err(|e| UpdateError::Other(anyhow::anyhow!("{e}")))
        }
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        sessions::extend(
            &self.db,
            &self.credentials,
            key_hash(key),
            None,
            expiry(ttl),
        )
        .await
        .map(|_| ())
        .map_err(other)
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        sessions::end(&self.db, &self.credentials, key_hash(key))
            .await
            .map_err(other)
    }
}
