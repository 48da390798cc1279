//! Rooms and memberships. A membership row is one stay in a room, bounded by the ids of the
//! events that began and ended it; that is what lets a replay show a member exactly the events
//! of their stay.

use crate::domain::{Id, Role, RoomKind, Time};
use diesel::prelude::*;

use super::schema::{room_memberships, rooms};
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = rooms)]
pub struct RoomRow {
    pub id: Id,
    pub kind: RoomKind,
    pub name: Option<String>,
    pub dm_key: Option<String>,
    pub created_by: Id,
    pub created_at: Time,
    pub last_message_id: Option<Id>,
    pub last_activity_at: Time,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = room_memberships)]
pub struct MembershipRow {
    pub room_id: Id,
    pub user_id: Id,
    pub role: Role,
    pub joined_event_id: i64,
    pub left_event_id: Option<i64>,
    pub last_read_seq: i64,
}

pub fn insert(conn: &mut DbConnection, row: &RoomRow) -> QueryResult<()> {
    diesel::insert_into(rooms::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn insert_memberships(conn: &mut DbConnection, rows: &[MembershipRow]) -> QueryResult<()> {
    // One statement per row: SQLite's multi-row INSERT has a bind-parameter limit.
    for row in rows {
        diesel::insert_into(room_memberships::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// The room, if `user` is a current member of it.
pub fn find_for_member(
    conn: &mut DbConnection,
    room: Id,
    user: Id,
) -> QueryResult<Option<RoomRow>> {
    rooms::table
        .inner_join(room_memberships::table)
        .filter(rooms::id.eq(room))
        .filter(room_memberships::user_id.eq(user))
        .filter(room_memberships::left_event_id.is_null())
        .select(RoomRow::as_select())
        .first(conn)
        .optional()
}

/// The current stays of these (room, user) pairs, with each room's kind, as (room, user, kind):
/// possibly a superset of the pairs asked about, which the caller matches.
///
/// PostgreSQL gets one query with two array parameters. SQLite gets one prepared query per
/// pair: an `IN (…)` list has a different text for every length, which SQLite would parse at
/// every call, and a lookup by primary key costs less than that parse.
pub fn current_stays_with_kind(
    conn: &mut DbConnection,
    pairs: &[(Id, Id)],
) -> QueryResult<Vec<(Id, Id, RoomKind)>> {
    let stays = || {
        rooms::table
            .inner_join(room_memberships::table)
            .filter(room_memberships::left_event_id.is_null())
            .select((rooms::id, room_memberships::user_id, rooms::kind))
    };
    match conn {
        DbConnection::Postgresql(c) => {
            if pairs.is_empty() {
                return Ok(Vec::new());
            }
            let rooms = super::distinct(pairs.iter().map(|p| p.0));
            let users = super::distinct(pairs.iter().map(|p| p.1));
            stays()
                .filter(rooms::id.eq_any(rooms))
                .filter(room_memberships::user_id.eq_any(users))
                .load(c)
        }
        DbConnection::Sqlite(c) => {
            let mut found = Vec::with_capacity(pairs.len());
            for (room, user) in super::distinct(pairs.iter().copied()) {
                found.extend(
                    stays()
                        .filter(rooms::id.eq(room))
                        .filter(room_memberships::user_id.eq(user))
                        .load::<(Id, Id, RoomKind)>(c)?,
                );
            }
            Ok(found)
        }
    }
}

/// The current stays of any of `users` in any of `rooms`, as (room, user): a superset of the
/// pairs a caller asks about, which it matches. One query on both backends, whatever the number
/// of pairs (the mentions of a group of sends).
pub fn current_stays_among(
    conn: &mut DbConnection,
    rooms: &[Id],
    users: &[Id],
) -> QueryResult<Vec<(Id, Id)>> {
    if rooms.is_empty() || users.is_empty() {
        return Ok(Vec::new());
    }
    room_memberships::table
        .filter(room_memberships::room_id.eq_any(rooms))
        .filter(room_memberships::user_id.eq_any(users))
        .filter(room_memberships::left_event_id.is_null())
        .select((room_memberships::room_id, room_memberships::user_id))
        .load(conn)
}

pub fn find_by_dm_key(conn: &mut DbConnection, key: &str) -> QueryResult<Option<RoomRow>> {
    rooms::table
        .filter(rooms::dm_key.eq(key))
        .select(RoomRow::as_select())
        .first(conn)
        .optional()
}

/// The rooms `user` is a current member of, most recently active first.
pub fn list_for_member(conn: &mut DbConnection, user: Id, limit: i64) -> QueryResult<Vec<RoomRow>> {
    rooms::table
        .inner_join(room_memberships::table)
        .filter(room_memberships::user_id.eq(user))
        .filter(room_memberships::left_event_id.is_null())
        .select(RoomRow::as_select())
        .order((rooms::last_activity_at.desc(), rooms::id.desc()))
        .limit(limit)
        .load(conn)
}

/// The current members of the given rooms.
pub fn current_members(
    conn: &mut DbConnection,
    room_ids: &[Id],
) -> QueryResult<Vec<MembershipRow>> {
    if room_ids.is_empty() {
        return Ok(Vec::new());
    }
    room_memberships::table
        .filter(room_memberships::room_id.eq_any(room_ids))
        .filter(room_memberships::left_event_id.is_null())
        .select(MembershipRow::as_select())
        .order(room_memberships::joined_event_id.asc())
        .load(conn)
}

/// Every membership as it stood just after event `at`: the hub's starting picture.
pub fn memberships_at(conn: &mut DbConnection, at: i64) -> QueryResult<Vec<(Id, Id, i64)>> {
    room_memberships::table
        .filter(room_memberships::joined_event_id.le(at))
        .filter(
            room_memberships::left_event_id
                .is_null()
                .or(room_memberships::left_event_id.assume_not_null().gt(at)),
        )
        .select((
            room_memberships::room_id,
            room_memberships::user_id,
            room_memberships::joined_event_id,
        ))
        .load(conn)
}

/// The user's current stay in the room, if they are a member.
pub fn membership(
    conn: &mut DbConnection,
    room: Id,
    user: Id,
) -> QueryResult<Option<MembershipRow>> {
    room_memberships::table
        .filter(room_memberships::room_id.eq(room))
        .filter(room_memberships::user_id.eq(user))
        .filter(room_memberships::left_event_id.is_null())
        .select(MembershipRow::as_select())
        .first(conn)
        .optional()
}

/// Ends the user's current stay at event `left_event` (they still see that event).
pub fn end_stay(conn: &mut DbConnection, room: Id, user: Id, left_event: i64) -> QueryResult<()> {
    diesel::update(
        room_memberships::table
            .filter(room_memberships::room_id.eq(room))
            .filter(room_memberships::user_id.eq(user))
            .filter(room_memberships::left_event_id.is_null()),
    )
    .set(room_memberships::left_event_id.eq(Some(left_event)))
    .execute(conn)
    .map(|_| ())
}

pub fn set_role(conn: &mut DbConnection, room: Id, user: Id, role: Role) -> QueryResult<()> {
    diesel::update(
        room_memberships::table
            .filter(room_memberships::room_id.eq(room))
            .filter(room_memberships::user_id.eq(user))
            .filter(room_memberships::left_event_id.is_null()),
    )
    .set(room_memberships::role.eq(role))
    .execute(conn)
    .map(|_| ())
}

/// Moves the member's read marker forward to `seq`; false if it was already there or beyond.
pub fn advance_read(conn: &mut DbConnection, room: Id, user: Id, seq: i64) -> QueryResult<bool> {
    let n = diesel::update(
        room_memberships::table
            .filter(room_memberships::room_id.eq(room))
            .filter(room_memberships::user_id.eq(user))
            .filter(room_memberships::left_event_id.is_null())
            .filter(room_memberships::last_read_seq.lt(seq)),
    )
    .set(room_memberships::last_read_seq.eq(seq))
    .execute(conn)?;
    Ok(n > 0)
}

/// How many current members of the room hold `role`.
pub fn count_role(conn: &mut DbConnection, room: Id, role: Role) -> QueryResult<i64> {
    room_memberships::table
        .filter(room_memberships::room_id.eq(room))
        .filter(room_memberships::left_event_id.is_null())
        .filter(room_memberships::role.eq(role))
        .count()
        .get_result(conn)
}

pub fn rename(conn: &mut DbConnection, room: Id, name: &str) -> QueryResult<()> {
    diesel::update(rooms::table.find(room))
        .set(rooms::name.eq(Some(name)))
        .execute(conn)
        .map(|_| ())
}

/// Everyone who shares a room with `user` now (the user included).
pub fn co_members(conn: &mut DbConnection, user: Id) -> QueryResult<Vec<Id>> {
    let mine: Vec<Id> = room_memberships::table
        .filter(room_memberships::user_id.eq(user))
        .filter(room_memberships::left_event_id.is_null())
        .select(room_memberships::room_id)
        .load(conn)?;
    if mine.is_empty() {
        return Ok(vec![user]);
    }
    room_memberships::table
        .filter(room_memberships::room_id.eq_any(&mine))
        .filter(room_memberships::left_event_id.is_null())
        .select(room_memberships::user_id)
        .distinct()
        .load(conn)
}
