//! Sessions: stored by the SHA-256 of their cookie key (the server layer's session store calls
//! these), cached by `credentials`. Revoking one deletes the row and appends an internal event
//! that tells every node's hub to close the sockets bound to it (revocation reaches other nodes
//! through the log, like everything else).

use std::collections::HashMap;

use crate::core::credentials::{Credentials, Entry};
use crate::core::tokens;
use crate::domain::{Id, Time};
use crate::error::Result;
use crate::events::Writer;
use crate::store::{self, sessions::SessionRow, Db};

/// Deletes the session and appends `credential.revoked` in the same transaction.
pub async fn revoke(writer: &Writer, session: Id) -> Result<()> {
    writer
        .run(move |batch| {
            store::sessions::delete(batch.conn(), session)?;
            tokens::revoke_in(batch, session)
        })
        .await
}

/// The state of the live session whose key hashes to `hash`: from the credential cache when
/// it's there, else from the database (and then cached, unless it was revoked meanwhile).
pub async fn find_live(
    db: &Db,
    credentials: &Credentials,
    hash: String,
) -> Result<Option<HashMap<String, String>>> {
    if let Some(hit) = credentials.sessions.get(&hash) {
        return Ok(Some(hit.value));
    }
    let lookup = hash.clone();
    let row = db
        .run(move |conn| Ok(store::sessions::find_live(conn, &lookup, Time::now())?))
        .await?;
    let Some(row) = row else { return Ok(None) };
    let state: HashMap<String, String> = serde_json::from_str(&row.state)?;
    if !credentials.was_revoked(row.id) {
        credentials.sessions.put(
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

/// Stores a new session of `user` (row id `id`) under the key hash `hash`.
pub async fn create(
    db: &Db,
    id: Id,
    user: Id,
    hash: String,
    state: &HashMap<String, String>,
    expires: Time,
) -> Result<()> {
    let row = SessionRow {
        id,
        key_hash: hash,
        user_id: user,
        state: serde_json::to_string(state)?,
        expires_at: expires,
        created_at: Time::now(),
    };
    db.run(move |conn| store::write_tx(conn, |conn| Ok(store::sessions::insert(conn, &row)?)))
        .await
}

/// Moves a session's expiry (and replaces its state, when given); `false` if it is gone. The
/// cached entry is forgotten, so the next request reads the new expiry.
pub async fn extend(
    db: &Db,
    credentials: &Credentials,
    hash: String,
    state: Option<&HashMap<String, String>>,
    expires: Time,
) -> Result<bool> {
    credentials.sessions.forget_hash(&hash);
    let json = state.map(serde_json::to_string).transpose()?;
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            Ok(store::sessions::update(
                conn,
                &hash,
                json.as_deref(),
                expires,
            )?)
        })
    })
    .await
}

/// Ends the session whose key hashes to `hash` (sign-out through the cookie), and the push
/// subscriptions made with it.
pub async fn end(db: &Db, credentials: &Credentials, hash: String) -> Result<()> {
    credentials.sessions.forget_hash(&hash);
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            if let Some(id) = store::sessions::delete_by_key(conn, &hash)? {
                store::push::delete_for_credentials(conn, &[id])?;
            }
            Ok(())
        })
    })
    .await
}
