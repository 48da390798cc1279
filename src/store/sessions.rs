//! Browser session rows: the server side of `actix-session`, so a session can be revoked.
//! The cookie carries a random key; only its SHA-256 is stored.

use crate::domain::{Id, Time};
use diesel::prelude::*;

use super::schema::sessions;
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: Id,
    pub key_hash: String,
    pub user_id: Id,
    pub state: String,
    pub expires_at: Time,
    pub created_at: Time,
}

/// A session as its user's list shows it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionListing {
    pub id: Id,
    pub created_at: Time,
    /// The sign-in request's `User-Agent` (at most 256 characters).
    pub user_agent: Option<String>,
    /// When the session was last used (to the minute; `None` before the first touch).
    pub last_seen_at: Option<Time>,
}

/// The live (unexpired) session with this key hash.
pub fn find_live(
    conn: &mut DbConnection,
    key_hash: &str,
    now: Time,
) -> QueryResult<Option<SessionRow>> {
    sessions::table
        .filter(sessions::key_hash.eq(key_hash))
        .filter(sessions::expires_at.gt(now))
        .select(SessionRow::as_select())
        .first(conn)
        .optional()
}

/// When the session `id` expires, if it still exists.
pub fn expiry(conn: &mut DbConnection, id: Id) -> QueryResult<Option<Time>> {
    sessions::table
        .find(id)
        .select(sessions::expires_at)
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut DbConnection, row: &SessionRow) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Replaces the state and expiry of the session with this key hash; false if it is gone.
pub fn update(
    conn: &mut DbConnection,
    key_hash: &str,
    state: Option<&str>,
    expires_at: Time,
) -> QueryResult<bool> {
    let target = sessions::table.filter(sessions::key_hash.eq(key_hash));
    let n = match state {
        Some(state) => diesel::update(target)
            .set((
                sessions::state.eq(state),
                sessions::expires_at.eq(expires_at),
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set(sessions::expires_at.eq(expires_at))
            .execute(conn)?,
    };
    Ok(n > 0)
}

/// Deletes the session with this key hash and returns its id, if it existed.
pub fn delete_by_key(conn: &mut DbConnection, key_hash: &str) -> QueryResult<Option<Id>> {
    let id = sessions::table
        .filter(sessions::key_hash.eq(key_hash))
        .select(sessions::id)
        .first::<Id>(conn)
        .optional()?;
    if let Some(id) = id {
        diesel::delete(sessions::table.find(id)).execute(conn)?;
    }
    Ok(id)
}

/// The user's live sessions, newest first.
pub fn list_live(conn: &mut DbConnection, user: Id, now: Time) -> QueryResult<Vec<SessionListing>> {
    sessions::table
        .filter(sessions::user_id.eq(user))
        .filter(sessions::expires_at.gt(now))
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .select(SessionListing::as_select())
        .load(conn)
}

/// The ids of the user's sessions other than `keep`.
pub fn ids_of_user_except(conn: &mut DbConnection, user: Id, keep: Id) -> QueryResult<Vec<Id>> {
    sessions::table
        .filter(sessions::user_id.eq(user))
        .filter(sessions::id.ne(keep))
        .select(sessions::id)
        .load(conn)
}

/// The user who owns the session `id`, if it exists.
pub fn owner(conn: &mut DbConnection, id: Id) -> QueryResult<Option<Id>> {
    sessions::table
        .find(id)
        .select(sessions::user_id)
        .first(conn)
        .optional()
}

/// Stores what the sessions list shows of a new session: its `User-Agent` and first use.
pub fn set_details(
    conn: &mut DbConnection,
    id: Id,
    user_agent: Option<&str>,
    now: Time,
) -> QueryResult<()> {
    diesel::update(sessions::table.find(id))
        .set((
            sessions::user_agent.eq(user_agent),
            sessions::last_seen_at.eq(Some(now)),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Records that the session `id` was used at `now`.
pub fn touch(conn: &mut DbConnection, id: Id, now: Time) -> QueryResult<()> {
    diesel::update(sessions::table.find(id))
        .set(sessions::last_seen_at.eq(Some(now)))
        .execute(conn)
        .map(|_| ())
}

/// Deletes the session `id`; true if it existed.
pub fn delete(conn: &mut DbConnection, id: Id) -> QueryResult<bool> {
    Ok(diesel::delete(sessions::table.find(id)).execute(conn)? > 0)
}

/// Deletes sessions that expired before `now` and returns their ids.
pub fn delete_expired(conn: &mut DbConnection, now: Time) -> QueryResult<Vec<Id>> {
    let ids: Vec<Id> = sessions::table
        .filter(sessions::expires_at.le(now))
        .select(sessions::id)
        .limit(1000)
        .load(conn)?;
    if !ids.is_empty() {
        diesel::delete(sessions::table.filter(sessions::id.eq_any(&ids))).execute(conn)?;
    }
    Ok(ids)
}

/// The ids of every session of `user`.
pub fn ids_of_user(conn: &mut DbConnection, user: Id) -> QueryResult<Vec<Id>> {
    sessions::table
        .filter(sessions::user_id.eq(user))
        .select(sessions::id)
        .load(conn)
}
