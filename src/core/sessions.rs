//! Sessions: stored by the SHA-256 of their cookie key (the server layer's session store calls
//! these), cached by `credentials`. Revoking one deletes the row and appends an internal event
//! that tells every node's hub to close the sockets bound to it (revocation reaches other nodes
//! through the log, like everything else).

use std::collections::HashMap;

use crate::core::credentials::{Credentials, Entry};
use crate::core::tokens;
use crate::domain::{Id, Time};
use crate::error::{Error, Result};
use crate::events::Writer;
use crate::store::{self, sessions::SessionRow, Db};
use serde::Serialize;

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

/// The longest `User-Agent` kept with a session, in characters.
pub const MAX_USER_AGENT: usize = 256;

/// What the server knows of a new session besides its state.
pub struct NewSession {
    /// The row id (the credential id its sockets are bound to).
    pub id: Id,
    pub user: Id,
    /// The SHA-256 of the cookie key.
    pub hash: String,
    /// The sign-in request's `User-Agent` (cut to [`MAX_USER_AGENT`] characters here).
    pub user_agent: Option<String>,
    pub expires: Time,
}

/// Stores a new session, unless its user has been deactivated (or deleted) meanwhile: the user
/// is read under a lock in the insert's transaction, so a sign-in racing a deactivation either
/// commits first (and the deactivation then revokes its session) or stores nothing (and its
/// cookie names no session: the next request is 401).
pub async fn create(db: &Db, new: NewSession, state: &HashMap<String, String>) -> Result<()> {
    let now = Time::now();
    let row = SessionRow {
        id: new.id,
        key_hash: new.hash,
        user_id: new.user,
        state: serde_json::to_string(state)?,
        expires_at: new.expires,
        created_at: now,
    };
    let agent: Option<String> = new
        .user_agent
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            let user = store::users::find_locking(conn, row.user_id)?;
            if !user.is_some_and(|u| u.deactivated_at.is_none() && u.deleted_at.is_none()) {
                return Ok(());
            }
            store::sessions::insert(conn, &row)?;
            Ok(store::sessions::set_details(
                conn,
                row.id,
                agent.as_deref(),
                now,
            )?)
        })
    })
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

/// A signed-in session as its user sees it in `GET /api/v1/sessions`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub id: Id,
    pub created_at: Time,
    /// When it was last used, to the minute.
    pub last_seen_at: Time,
    /// The `User-Agent` it signed in with.
    pub user_agent: Option<String>,
    /// Whether this is the session of the request that lists them.
    pub current: bool,
}

/// The live sessions of `user`, newest first; `current` marks the caller's.
pub async fn list(db: &Db, user: Id, current: Option<Id>) -> Result<Vec<SessionInfo>> {
    let rows = db
        .run(move |conn| Ok(store::sessions::list_live(conn, user, Time::now())?))
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| SessionInfo {
            id: row.id,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at.unwrap_or(row.created_at),
            user_agent: row.user_agent,
            current: Some(row.id) == current,
        })
        .collect())
}

/// Revokes one of `user`'s sessions exactly as a logout does (404 if it isn't theirs).
pub async fn revoke_own(writer: &Writer, user: Id, session: Id) -> Result<()> {
    writer
        .run(move |batch| {
            if store::sessions::owner(batch.conn(), session)? != Some(user) {
                return Err(Error::not_found("session_not_found", "no such session"));
            }
            store::sessions::delete(batch.conn(), session)?;
            tokens::revoke_in(batch, session)
        })
        .await
}

/// Records that the session `id` was used now (the caller throttles this).
pub async fn touch(db: &Db, id: Id) -> Result<()> {
    db.run(move |conn| {
        store::write_tx(conn, |conn| {
            Ok(store::sessions::touch(conn, id, Time::now())?)
        })
    })
    .await
}
