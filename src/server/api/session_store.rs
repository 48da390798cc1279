//! The server side of `actix-session`: sessions live in the database, so logout really ends
//! them and every node sees the same ones. The cookie holds a random key; the table holds its
//! SHA-256.

use std::collections::HashMap;

use actix_session::storage::{
    generate_session_key, LoadError, SaveError, SessionKey, SessionStore, UpdateError,
};
use actix_web::cookie::time::Duration;

use std::sync::Arc;

use crate::core::credentials::Credentials;
use crate::core::crypto::sha256_hex;
use crate::core::sessions;
use crate::domain::Time;
use crate::server::api::auth::session_ids;
use crate::store::Db;

/// Sessions in the `sessions` table.
#[derive(Clone)]
pub struct DbSessionStore {
    db: Db,
    /// Live sessions by key hash: a request's session costs no query when cached.
    credentials: Arc<Credentials>,
}

impl DbSessionStore {
    pub fn new(db: Db, credentials: Arc<Credentials>) -> DbSessionStore {
        DbSessionStore { db, credentials }
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
        sessions::find_live(&self.db, &self.credentials, key_hash(key))
            .await
            .map_err(|e| LoadError::Other(other(e)))
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let (user_id, id) = session_ids(&state)
            .ok_or_else(|| SaveError::Other(anyhow::anyhow!("a session needs a signed-in user")))?;
        let key = generate_session_key();
        sessions::create(&self.db, id, user_id, key_hash(&key), &state, expiry(ttl))
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
