//! The server side of `actix-session`: sessions live in the database, so logout really ends
//! them and every node sees the same ones. The cookie holds a random key; the table holds its
//! SHA-256.

use std::collections::HashMap;

use actix_session::storage::{
    generate_session_key, LoadError, SaveError, SessionKey, SessionStore, UpdateError,
};
use actix_web::cookie::time::Duration;

use crate::api::auth::session_ids;
use crate::core::crypto::sha256_hex;
use crate::domain::Time;
use crate::store::{self, sessions::SessionRow, Db};

/// Sessions in the `sessions` table.
#[derive(Clone)]
pub struct DbSessionStore {
    db: Db,
}

impl DbSessionStore {
    pub fn new(db: Db) -> DbSessionStore {
        DbSessionStore { db }
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
        let row = self
            .db
            .run(move |conn| Ok(store::sessions::find_live(conn, &hash, Time::now())?))
            .await
            .map_err(|e| LoadError::Other(anyhow::anyhow!("{e}")))?;
        match row {
            None => Ok(None),
            Some(row) => serde_json::from_str(&row.state)
                .map(Some)
                .map_err(|e| LoadError::Deserialization(e.into())),
        }
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
