//! The server side of `actix-session`: sessions live in the database, so logout really ends
//! them and every node sees the same ones. The cookie holds a random key; the table holds its
//! SHA-256.

use std::collections::HashMap;

use actix_session::storage::{
    generate_session_key, LoadError, SaveError, SessionKey, SessionStore, UpdateError,
};
use actix_web::cookie::time::Duration;

use std::sync::Arc;

use crate::core::credentials::{Credentials, Entry};
use crate::core::crypto::sha256_hex;
use crate::domain::Time;
use crate::server::api::auth::session_ids;
use crate::store::{self, sessions::SessionRow, Db};

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

impl SessionStore for DbSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let hash = key_hash(key);
        if let Some(hit) = self.credentials.sessions.get(&hash) {
            return Ok(Some(hit.value));
        }
        let lookup = hash.clone();
        let row = self
            .db
            .run(move |conn| Ok(store::sessions::find_live(conn, &lookup, Time::now())?))
            .await
            .map_err(|e| LoadError::Other(anyhow::anyhow!("{e}")))?;
        let Some(row) = row else { return Ok(None) };
        let state: HashMap<String, String> =
            serde_json::from_str(&row.state).map_err(|e| LoadError::Deserialization(e.into()))?;
        if !self.credentials.was_revoked(row.id) {
            self.credentials.sessions.put(
                hash,
                Entry {
                    id: row.id,
                    expires: Some(row.expires_at),
                    value: state.clone(),
                },
            );
        }
        Ok(Some(state))
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let (user_id, id) = session_ids(&state)
            .ok_or_else(|| SaveError::Other(anyhow::anyhow!("a session needs a signed-in user")))?;
        let json = serde_json::to_string(&state).map_err(|e| SaveError::Serialization(e.into()))?;
        let key = generate_session_key();
        let row = SessionRow {
            id,
            key_hash: key_hash(&key),
            user_id,
            state: json,
            expires_at: expiry(ttl),
            created_at: Time::now(),
        };
        self.db
            .run(move |conn| store::write_tx(conn, |conn| Ok(store::sessions::insert(conn, &row)?)))
            .await
            .map_err(|e| SaveError::Other(anyhow::anyhow!("{e}")))?;
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let json =
            serde_json::to_string(&state).map_err(|e| UpdateError::Serialization(e.into()))?;
        let hash = key_hash(&key);
        let expires = expiry(ttl);
        let found = self
            .db
            .run(move |conn| {
                store::write_tx(conn, |conn| {
                    Ok(store::sessions::update(conn, &hash, Some(&json), expires)?)
                })
            })
            .await
            .map_err(|e| UpdateError::Other(anyhow::anyhow!("{e}")))?;
        if found {
            Ok(key)
        } else {
            self.save(state, ttl)
                .await
                .map_err(|e| UpdateError::Other(anyhow::anyhow!("{e}")))
        }
    }

    async fn update_ttl(&self, key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        let hash = key_hash(key);
        self.credentials.sessions.forget_hash(&hash);
        let expires = expiry(ttl);
        self.db
            .run(move |conn| {
                store::write_tx(conn, |conn| {
                    Ok(store::sessions::update(conn, &hash, None, expires)?)
                })
            })
            .await
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        let hash = key_hash(key);
        self.credentials.sessions.forget_hash(&hash);
        self.db
            .run(move |conn| {
                store::write_tx(conn, |conn| {
                    Ok(store::sessions::delete_by_key(conn, &hash)?)
                })
            })
            .await
            .map(|_| ())
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}
