//! What the push worker reads and keeps: its cursor in the log, who holds the worker's role
//! (an advisory lock on PostgreSQL, a lease row on SQLite), and the members a message may be
//! pushed to.

use diesel::prelude::*;
use diesel::sql_types::Bool;

use super::schema::{messages, room_memberships, server_state};
use super::DbConnection;
use crate::domain::Id;

const CURSOR: &str = "push_cursor";
const LEASE_HOLDER: &str = "push_lease_holder";
const LEASE_UNTIL: &str = "push_lease_until_ms";
/// The session-level advisory lock whose holder is the deployment's push worker (PostgreSQL).
/// The other keys in use: 7242469 (appends, `begin_append`), 7242470 (migrations).
const LOCK_KEY: i64 = 7242471;

fn get(conn: &mut DbConnection, name: &str) -> QueryResult<Option<i64>> {
    server_state::table
        .find(name)
        .select(server_state::value)
        .first(conn)
        .optional()
}

fn set(conn: &mut DbConnection, name: &str, value: i64) -> QueryResult<()> {
    let updated = diesel::update(server_state::table.find(name))
        .set(server_state::value.eq(value))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(server_state::table)
            .values((server_state::name.eq(name), server_state::value.eq(value)))
            .execute(conn)?;
    }
    Ok(())
}

/// The id of the last event whose pushes were handed over; set to `head` on first use, so a
/// new deployment doesn't push its past. Run in a write transaction.
pub fn cursor_or_init(conn: &mut DbConnection, head: i64) -> QueryResult<i64> {
    match get(conn, CURSOR)? {
        Some(cursor) => Ok(cursor),
        None => {
            set(conn, CURSOR, head)?;
            Ok(head)
        }
    }
}

/// Moves the cursor forward (never back). Run in a write transaction.
pub fn advance_cursor(conn: &mut DbConnection, to: i64) -> QueryResult<()> {
    if get(conn, CURSOR)?.is_none_or(|at| at < to) {
        set(conn, CURSOR, to)?;
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// PostgreSQL: takes the worker's advisory lock for this connection's session, if no other
/// session holds it. It is held until the connection closes (a dead node's is released when
/// its connection drops).
pub fn try_lock(conn: &mut DbConnection) -> QueryResult<bool> {
    diesel::sql_query(format!("SELECT pg_try_advisory_lock({LOCK_KEY}) AS locked"))
        .get_result::<Locked>(conn)
        .map(|row| row.locked)
}

/// SQLite: takes or renews the worker's lease for `holder` until `until_ms` if it is free,
/// expired (before `now_ms`) or already `holder`'s. Run in a write transaction.
pub fn take_lease(
    conn: &mut DbConnection,
    holder: i64,
    now_ms: i64,
    until_ms: i64,
) -> QueryResult<bool> {
    let current = get(conn, LEASE_HOLDER)?;
    let expires = get(conn, LEASE_UNTIL)?.unwrap_or(0);
    if current.is_some_and(|c| c != holder) && expires >= now_ms {
        return Ok(false);
    }
    set(conn, LEASE_HOLDER, holder)?;
    set(conn, LEASE_UNTIL, until_ms)?;
    Ok(true)
}

/// SQLite: whether `holder` holds the lease (checked before the cursor moves, so that a node
/// that lost it can't move the cursor of the node that took over).
pub fn holds_lease(conn: &mut DbConnection, holder: i64) -> QueryResult<bool> {
    Ok(get(conn, LEASE_HOLDER)? == Some(holder))
}

/// SQLite: gives the lease up (a clean shutdown), so another node takes over at once.
pub fn release_lease(conn: &mut DbConnection, holder: i64) -> QueryResult<()> {
    if holds_lease(conn, holder)? {
        set(conn, LEASE_UNTIL, 0)?;
    }
    Ok(())
}

/// A member a message may be pushed to: in the room when the message was sent and still, and
/// not yet read up to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reader {
    pub user: Id,
    pub last_read_seq: i64,
}

/// The members of `room` who joined before event `event` and are still there, other than
/// `author`, whose read marker is before `seq`.
pub fn unread_members(
    conn: &mut DbConnection,
    room: Id,
    event: i64,
    seq: i64,
    author: Id,
) -> QueryResult<Vec<Reader>> {
    room_memberships::table
        .filter(room_memberships::room_id.eq(room))
        .filter(room_memberships::left_event_id.is_null())
        .filter(room_memberships::joined_event_id.lt(event))
        .filter(room_memberships::user_id.ne(author))
        .filter(room_memberships::last_read_seq.lt(seq))
        .select((room_memberships::user_id, room_memberships::last_read_seq))
        .load::<(Id, i64)>(conn)
        .map(|rows| {
            rows.into_iter()
                .map(|(user, last_read_seq)| Reader {
                    user,
                    last_read_seq,
                })
                .collect()
        })
}

/// Each of `users`' unread messages in `room` (others' live messages after their marker).
pub fn unread_in_room(
    conn: &mut DbConnection,
    room: Id,
    users: &[Id],
) -> QueryResult<Vec<(Id, i64)>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    messages::table
        .inner_join(
            room_memberships::table.on(room_memberships::room_id
                .eq(messages::room_id)
                .and(room_memberships::left_event_id.is_null())),
        )
        .filter(messages::room_id.eq(room))
        .filter(room_memberships::user_id.eq_any(users))
        .filter(messages::seq.gt(room_memberships::last_read_seq))
        .filter(messages::author_id.ne(room_memberships::user_id))
        .filter(messages::deleted_at.is_null())
        .group_by(room_memberships::user_id)
        .select((room_memberships::user_id, diesel::dsl::count_star()))
        .load(conn)
}

/// Which of `rooms` have a current member with a push subscription (live or not).
pub fn rooms_with_subscribers(conn: &mut DbConnection, rooms: &[Id]) -> QueryResult<Vec<Id>> {
    use super::schema::push_subscriptions;
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    room_memberships::table
        .inner_join(
            push_subscriptions::table.on(push_subscriptions::user_id.eq(room_memberships::user_id)),
        )
        .filter(room_memberships::room_id.eq_any(rooms))
        .filter(room_memberships::left_event_id.is_null())
        .select(room_memberships::room_id)
        .distinct()
        .load(conn)
}

/// A room's name (`None` for a direct room).
pub fn room_name(conn: &mut DbConnection, room: Id) -> QueryResult<Option<String>> {
    use super::schema::rooms;
    rooms::table
        .find(room)
        .select(rooms::name)
        .first::<Option<String>>(conn)
        .optional()
        .map(Option::flatten)
}
