//! API tokens and stream tickets. Only SHA-256 hashes of the secrets are stored.

use diesel::prelude::*;

use super::schema::{api_tokens, stream_tickets};
use super::DbConnection;
use crate::domain::{Id, Time};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct TokenRow {
    pub id: Id,
    pub user_id: Id,
    pub name: String,
    pub token_hash: String,
    /// Comma-separated: `read`, `send`.
    pub scopes: String,
    pub created_at: Time,
    pub expires_at: Option<Time>,
}

pub fn insert(conn: &mut DbConnection, row: &TokenRow) -> QueryResult<()> {
    diesel::insert_into(api_tokens::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// How many tokens `user` holds, counted so that concurrent creations for one user queue
/// behind each other: in a write transaction, SQLite has one writer already; PostgreSQL locks
/// the user's row until the transaction ends.
pub fn count_locking(conn: &mut DbConnection, user: Id) -> QueryResult<i64> {
    super::users::lock(conn, user)?;
    api_tokens::table
        .filter(api_tokens::user_id.eq(user))
        .count()
        .get_result(conn)
}

/// The unexpired token with this hash.
pub fn find_live(conn: &mut DbConnection, hash: &str, now: Time) -> QueryResult<Option<TokenRow>> {
    api_tokens::table
        .filter(api_tokens::token_hash.eq(hash))
        .filter(
            api_tokens::expires_at
                .is_null()
                .or(api_tokens::expires_at.gt(now)),
        )
        .select(TokenRow::as_select())
        .first(conn)
        .optional()
}

pub fn find(conn: &mut DbConnection, id: Id) -> QueryResult<Option<TokenRow>> {
    api_tokens::table
        .find(id)
        .select(TokenRow::as_select())
        .first(conn)
        .optional()
}

pub fn list(conn: &mut DbConnection, user: Id) -> QueryResult<Vec<TokenRow>> {
    api_tokens::table
        .filter(api_tokens::user_id.eq(user))
        .select(TokenRow::as_select())
        .order(api_tokens::created_at.asc())
        .load(conn)
}

pub fn delete(conn: &mut DbConnection, id: Id) -> QueryResult<bool> {
    Ok(diesel::delete(api_tokens::table.find(id)).execute(conn)? > 0)
}

/// Deletes tokens that expired before `now` and returns their ids.
pub fn delete_expired(conn: &mut DbConnection, now: Time) -> QueryResult<Vec<Id>> {
    let ids: Vec<Id> = api_tokens::table
        .filter(api_tokens::expires_at.le(now))
        .select(api_tokens::id)
        .limit(1000)
        .load(conn)?;
    if !ids.is_empty() {
        diesel::delete(api_tokens::table.filter(api_tokens::id.eq_any(&ids))).execute(conn)?;
    }
    Ok(ids)
}

/// When the credential (a session or a token) expires: `Some(None)` for a token without
/// expiry, `None` when the credential no longer exists.
pub fn credential_expiry(conn: &mut DbConnection, id: Id) -> QueryResult<Option<Option<Time>>> {
    if let Some(at) = super::sessions::expiry(conn, id)? {
        return Ok(Some(Some(at)));
    }
    api_tokens::table
        .find(id)
        .select(api_tokens::expires_at)
        .first::<Option<Time>>(conn)
        .optional()
}

pub fn insert_ticket(
    conn: &mut DbConnection,
    hash: &str,
    user: Id,
    credential: Id,
    expires: Time,
) -> QueryResult<()> {
    diesel::insert_into(stream_tickets::table)
        .values((
            stream_tickets::ticket_hash.eq(hash),
            stream_tickets::user_id.eq(user),
            stream_tickets::credential_id.eq(credential),
            stream_tickets::expires_at.eq(expires),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Uses up a ticket: returns (user, credential) if it existed and had not expired. A ticket
/// works once: the delete is what redeems it, so two redeemers can't both win.
pub fn redeem_ticket(
    conn: &mut DbConnection,
    hash: &str,
    now: Time,
) -> QueryResult<Option<(Id, Id)>> {
    let found: Option<(Id, Id, Time)> = stream_tickets::table
        .find(hash)
        .select((
            stream_tickets::user_id,
            stream_tickets::credential_id,
            stream_tickets::expires_at,
        ))
        .first(conn)
        .optional()?;
    let Some((user, credential, expires)) = found else {
        return Ok(None);
    };
    let deleted = diesel::delete(stream_tickets::table.find(hash)).execute(conn)?;
    Ok((deleted == 1 && expires > now).then_some((user, credential)))
}

/// Forgets tickets that expired before `now`.
pub fn prune_tickets(conn: &mut DbConnection, now: Time) -> QueryResult<usize> {
    diesel::delete(stream_tickets::table.filter(stream_tickets::expires_at.le(now))).execute(conn)
}
