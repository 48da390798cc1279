//! Friend requests, friendships and blocks. A friendship is stored once, as (low, high) ids.

use diesel::prelude::*;

use super::schema::{blocks, friend_requests, friendships};
use super::DbConnection;
use crate::domain::{Id, Time};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = friend_requests)]
pub struct RequestRow {
    pub id: Id,
    pub from_user: Id,
    pub to_user: Id,
    pub created_at: Time,
}

fn pair(a: Id, b: Id) -> (Id, Id) {
    if a < b {
        (a, b)
    } else {
        (b, a)
    }
}

pub fn find_request(conn: &mut DbConnection, id: Id) -> QueryResult<Option<RequestRow>> {
    friend_requests::table
        .find(id)
        .select(RequestRow::as_select())
        .first(conn)
        .optional()
}

/// The pending request from `from` to `to`, if any.
pub fn find_request_between(
    conn: &mut DbConnection,
    from: Id,
    to: Id,
) -> QueryResult<Option<RequestRow>> {
    friend_requests::table
        .filter(friend_requests::from_user.eq(from))
        .filter(friend_requests::to_user.eq(to))
        .select(RequestRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_request(conn: &mut DbConnection, row: &RequestRow) -> QueryResult<()> {
    diesel::insert_into(friend_requests::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn delete_request(conn: &mut DbConnection, id: Id) -> QueryResult<bool> {
    Ok(diesel::delete(friend_requests::table.find(id)).execute(conn)? > 0)
}

/// Deletes the pending requests between two users, either way, and returns them.
pub fn delete_requests_between(
    conn: &mut DbConnection,
    a: Id,
    b: Id,
) -> QueryResult<Vec<RequestRow>> {
    let between = friend_requests::table.filter(
        (friend_requests::from_user
            .eq(a)
            .and(friend_requests::to_user.eq(b)))
        .or(friend_requests::from_user
            .eq(b)
            .and(friend_requests::to_user.eq(a))),
    );
    let rows = between.select(RequestRow::as_select()).load(conn)?;
    for row in &rows {
        diesel::delete(friend_requests::table.find(row.id)).execute(conn)?;
    }
    Ok(rows)
}

/// Pending requests to `user` (incoming) and from `user` (outgoing), oldest first.
pub fn requests_of(
    conn: &mut DbConnection,
    user: Id,
) -> QueryResult<(Vec<RequestRow>, Vec<RequestRow>)> {
    let incoming = friend_requests::table
        .filter(friend_requests::to_user.eq(user))
        .select(RequestRow::as_select())
        .order(friend_requests::created_at.asc())
        .load(conn)?;
    let outgoing = friend_requests::table
        .filter(friend_requests::from_user.eq(user))
        .select(RequestRow::as_select())
        .order(friend_requests::created_at.asc())
        .load(conn)?;
    Ok((incoming, outgoing))
}

/// When `a` and `b` became friends, if they are.
pub fn friends_since(conn: &mut DbConnection, a: Id, b: Id) -> QueryResult<Option<Time>> {
    let (low, high) = pair(a, b);
    friendships::table
        .find((low, high))
        .select(friendships::created_at)
        .first(conn)
        .optional()
}

pub fn insert_friendship(conn: &mut DbConnection, a: Id, b: Id, at: Time) -> QueryResult<()> {
    let (low, high) = pair(a, b);
    diesel::insert_into(friendships::table)
        .values((
            friendships::user_low.eq(low),
            friendships::user_high.eq(high),
            friendships::created_at.eq(at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Ends a friendship; true if there was one.
pub fn delete_friendship(conn: &mut DbConnection, a: Id, b: Id) -> QueryResult<bool> {
    let (low, high) = pair(a, b);
    Ok(diesel::delete(friendships::table.find((low, high))).execute(conn)? > 0)
}

/// The friends of `user` with the time each friendship began.
pub fn friends_of(conn: &mut DbConnection, user: Id) -> QueryResult<Vec<(Id, Time)>> {
    let low: Vec<(Id, Time)> = friendships::table
        .filter(friendships::user_low.eq(user))
        .select((friendships::user_high, friendships::created_at))
        .load(conn)?;
    let high: Vec<(Id, Time)> = friendships::table
        .filter(friendships::user_high.eq(user))
        .select((friendships::user_low, friendships::created_at))
        .load(conn)?;
    Ok(low.into_iter().chain(high).collect())
}

/// The blocks between any two of these users, as (blocker, blocked).
pub fn blocks_among(conn: &mut DbConnection, users: &[Id]) -> QueryResult<Vec<(Id, Id)>> {
    if users.len() < 2 {
        return Ok(Vec::new());
    }
    blocks::table
        .filter(blocks::blocker.eq_any(users))
        .filter(blocks::blocked.eq_any(users))
        .select((blocks::blocker, blocks::blocked))
        .load(conn)
}

/// Whether either user blocks the other.
pub fn blocked_either_way(conn: &mut DbConnection, a: Id, b: Id) -> QueryResult<bool> {
    let query = blocks::table.filter(
        (blocks::blocker.eq(a).and(blocks::blocked.eq(b)))
            .or(blocks::blocker.eq(b).and(blocks::blocked.eq(a))),
    );
    diesel::select(diesel::dsl::exists(query)).get_result(conn)
}

/// Adds a block; false if it already existed.
pub fn insert_block(
    conn: &mut DbConnection,
    blocker: Id,
    blocked: Id,
    at: Time,
) -> QueryResult<bool> {
    let exists = diesel::select(diesel::dsl::exists(blocks::table.find((blocker, blocked))))
        .get_result(conn)?;
    if exists {
        return Ok(false);
    }
    diesel::insert_into(blocks::table)
        .values((
            blocks::blocker.eq(blocker),
            blocks::blocked.eq(blocked),
            blocks::created_at.eq(at),
        ))
        .execute(conn)?;
    Ok(true)
}

pub fn delete_block(conn: &mut DbConnection, blocker: Id, blocked: Id) -> QueryResult<bool> {
    Ok(diesel::delete(blocks::table.find((blocker, blocked))).execute(conn)? > 0)
}

/// The users `blocker` blocks, with when.
pub fn blocked_by(conn: &mut DbConnection, blocker: Id) -> QueryResult<Vec<(Id, Time)>> {
    blocks::table
        .filter(blocks::blocker.eq(blocker))
        .select((blocks::blocked, blocks::created_at))
        .order(blocks::created_at.asc())
        .load(conn)
}

/// Whether `blocker` blocks `user`.
pub fn blocks_user(conn: &mut DbConnection, blocker: Id, user: Id) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(blocks::table.find((blocker, user)))).get_result(conn)
}
