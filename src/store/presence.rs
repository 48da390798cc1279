//! Presence: the nodes' heartbeats, which node holds a stream of which user, and each user's
//! announced state and setting (`core::presence` says how they work together).

use diesel::prelude::*;

use super::schema::{presence_nodes, presence_states, presence_streams, room_memberships, rooms};
use super::DbConnection;
use crate::domain::{Id, RoomKind, Time};

/// A user's presence row. A user without one shares, is offline and was never seen.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = presence_states)]
pub struct StateRow {
    pub user_id: Id,
    /// The `share_presence` setting.
    pub share: bool,
    /// The state last announced (what `presence.updated` last said).
    pub online: bool,
    pub last_seen_at: Option<Time>,
    /// When the user's most recent stream ended (before the grace), for the offline event.
    pub left_at: Option<Time>,
    /// When the last `presence.updated` was appended (the flap window starts there).
    pub announced_at: Option<Time>,
    /// A change held back by the flap window is looked at again then.
    pub due_at: Option<Time>,
}

/// Records that `node` is alive at `now`; false if its row was gone (another node swept it as
/// dead), in which case it is written again.
pub fn beat(conn: &mut DbConnection, node: Id, now: Time) -> QueryResult<bool> {
    let updated = diesel::update(presence_nodes::table.find(node))
        .set(presence_nodes::heartbeat_at.eq(now))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(presence_nodes::table)
            .values((
                presence_nodes::node_id.eq(node),
                presence_nodes::heartbeat_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(updated > 0)
}

/// One or two of the nodes whose last heartbeat is older than `before`, with that heartbeat.
pub fn silent_nodes(conn: &mut DbConnection, before: Time) -> QueryResult<Vec<(Id, Time)>> {
    presence_nodes::table
        .filter(presence_nodes::heartbeat_at.lt(before))
        .select((presence_nodes::node_id, presence_nodes::heartbeat_at))
        .limit(2)
        .load(conn)
}

/// Forgets a node (its streams must be gone first).
pub fn delete_node(conn: &mut DbConnection, node: Id) -> QueryResult<()> {
    diesel::delete(presence_nodes::table.find(node))
        .execute(conn)
        .map(|_| ())
}

/// Up to `limit` users with a stream row on `node`.
pub fn users_on(conn: &mut DbConnection, node: Id, limit: i64) -> QueryResult<Vec<Id>> {
    presence_streams::table
        .filter(presence_streams::node_id.eq(node))
        .select(presence_streams::user_id)
        .limit(limit)
        .load(conn)
}

/// Records that `user` holds a stream on `node` (nothing if it is recorded already).
pub fn insert_stream(conn: &mut DbConnection, node: Id, user: Id) -> QueryResult<()> {
    let there: bool = diesel::select(diesel::dsl::exists(
        presence_streams::table.find((node, user)),
    ))
    .get_result(conn)?;
    if !there {
        diesel::insert_into(presence_streams::table)
            .values((
                presence_streams::node_id.eq(node),
                presence_streams::user_id.eq(user),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Forgets the streams of these users on `node`.
pub fn delete_streams(conn: &mut DbConnection, node: Id, users: &[Id]) -> QueryResult<()> {
    diesel::delete(
        presence_streams::table
            .filter(presence_streams::node_id.eq(node))
            .filter(presence_streams::user_id.eq_any(users)),
    )
    .execute(conn)
    .map(|_| ())
}

/// Whether `user` holds a stream on any node that hasn't been swept.
pub fn has_streams(conn: &mut DbConnection, user: Id) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        presence_streams::table.filter(presence_streams::user_id.eq(user)),
    ))
    .get_result(conn)
}

pub fn state(conn: &mut DbConnection, user: Id) -> QueryResult<Option<StateRow>> {
    presence_states::table
        .find(user)
        .select(StateRow::as_select())
        .first(conn)
        .optional()
}

/// The rows of these users (those who have one).
pub fn states(conn: &mut DbConnection, users: &[Id]) -> QueryResult<Vec<StateRow>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    presence_states::table
        .filter(presence_states::user_id.eq_any(users))
        .select(StateRow::as_select())
        .load(conn)
}

/// Makes sure `user` has a row (the defaults: sharing, offline, never seen).
pub fn ensure_state(conn: &mut DbConnection, user: Id) -> QueryResult<()> {
    let there: bool =
        diesel::select(diesel::dsl::exists(presence_states::table.find(user))).get_result(conn)?;
    if !there {
        diesel::insert_into(presence_states::table)
            .values((
                presence_states::user_id.eq(user),
                presence_states::share.eq(true),
                presence_states::online.eq(false),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Sets the `share_presence` setting (the row must exist).
pub fn set_share(conn: &mut DbConnection, user: Id, share: bool) -> QueryResult<()> {
    diesel::update(presence_states::table.find(user))
        .set(presence_states::share.eq(share))
        .execute(conn)
        .map(|_| ())
}

/// Records when a stream of the user's last ended (the row must exist).
pub fn set_left(conn: &mut DbConnection, user: Id, at: Time) -> QueryResult<()> {
    diesel::update(presence_states::table.find(user))
        .set(presence_states::left_at.eq(at))
        .execute(conn)
        .map(|_| ())
}

/// Holds a change back until `at` (`None`: nothing held).
pub fn set_due(conn: &mut DbConnection, user: Id, at: Option<Time>) -> QueryResult<()> {
    diesel::update(presence_states::table.find(user))
        .set(presence_states::due_at.eq(at))
        .execute(conn)
        .map(|_| ())
}

/// Up to `limit` users whose held-back change is due by `now`.
pub fn due(conn: &mut DbConnection, now: Time, limit: i64) -> QueryResult<Vec<Id>> {
    presence_states::table
        .filter(presence_states::due_at.le(now))
        .select(presence_states::user_id)
        .limit(limit)
        .load(conn)
}

/// The compare-and-set that announces a change: from `was` to `online`, only if the row still
/// says `was`. True if this call changed it (and so must append the event).
pub fn announce(
    conn: &mut DbConnection,
    user: Id,
    was: bool,
    online: bool,
    last_seen: Option<Time>,
    at: Time,
) -> QueryResult<bool> {
    let changed = diesel::update(
        presence_states::table
            .filter(presence_states::user_id.eq(user))
            .filter(presence_states::online.eq(was)),
    )
    .set((
        presence_states::online.eq(online),
        presence_states::last_seen_at.eq(last_seen),
        presence_states::announced_at.eq(Some(at)),
        presence_states::due_at.eq(None::<Time>),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// The users who share a direct room with `user` now.
pub fn direct_partners(conn: &mut DbConnection, user: Id) -> QueryResult<Vec<Id>> {
    let mine: Vec<Id> = room_memberships::table
        .inner_join(rooms::table)
        .filter(room_memberships::user_id.eq(user))
        .filter(room_memberships::left_event_id.is_null())
        .filter(rooms::kind.eq(RoomKind::Direct))
        .select(room_memberships::room_id)
        .load(conn)?;
    if mine.is_empty() {
        return Ok(Vec::new());
    }
    room_memberships::table
        .filter(room_memberships::room_id.eq_any(&mine))
        .filter(room_memberships::left_event_id.is_null())
        .filter(room_memberships::user_id.ne(user))
        .select(room_memberships::user_id)
        .distinct()
        .load(conn)
}

/// Whether `a` and `b` share a direct room now.
pub fn share_direct_room(conn: &mut DbConnection, a: Id, b: Id) -> QueryResult<bool> {
    Ok(direct_partners(conn, a)?.contains(&b))
}
