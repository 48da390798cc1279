//! The event log table: appends, the per-user replay query, the head, and pruning.

use crate::domain::{Id, Time};
use diesel::prelude::*;

use super::schema::{event_audience, events, room_memberships, server_state};
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events)]
pub struct EventRow {
    pub id: i64,
    pub kind: String,
    pub room_id: Option<Id>,
    pub payload: String,
    pub created_at: Time,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = events)]
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub room_id: Option<Id>,
    pub payload: &'a str,
    pub created_at: Time,
}

/// An event with the id reserved for it by [`reserve`] (many go in one statement).
#[derive(Debug, Insertable)]
#[diesel(table_name = events, treat_none_as_default_value = false)]
pub struct NumberedEvent {
    pub id: i64,
    pub kind: &'static str,
    pub room_id: Option<Id>,
    pub payload: String,
    pub created_at: Time,
}

#[derive(QueryableByName)]
struct Reserved {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// Reserves `n` event ids, in increasing order, for rows inserted with [`insert_numbered`].
/// The caller holds the event-log lock, so no other append can take an id in between or
/// commit a higher one first. On PostgreSQL the ids come from the identity's sequence, on
/// SQLite from `sqlite_sequence` (the highest id ever used, which inserting them advances), so
/// appends with [`insert`] that follow continue after them.
pub fn reserve(conn: &mut DbConnection, n: usize) -> QueryResult<Vec<i64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    match conn {
        DbConnection::Postgresql(c) => {
            let mut ids: Vec<i64> = diesel::sql_query(
                "SELECT nextval(pg_get_serial_sequence('events', 'id')) AS id \
                 FROM generate_series(1, $1)",
            )
            .bind::<diesel::sql_types::BigInt, _>(n as i64)
            .load::<Reserved>(c)?
            .into_iter()
            .map(|r| r.id)
            .collect();
            ids.sort_unstable();
            Ok(ids)
        }
        DbConnection::Sqlite(c) => {
            let last = diesel::sql_query(
                "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) AS id",
            )
            .get_result::<Reserved>(c)?
            .id;
            Ok((1..=n as i64).map(|i| last + i).collect())
        }
    }
}

/// Appends events whose ids [`reserve`] gave, in one statement.
pub fn insert_numbered(conn: &mut DbConnection, rows: &[NumberedEvent]) -> QueryResult<()> {
    super::insert_many!(conn, events::table, rows)
}

/// Appends one event and returns its id. The caller holds the event-log lock.
pub fn insert(conn: &mut DbConnection, event: &NewEvent<'_>) -> QueryResult<i64> {
    diesel::insert_into(events::table)
        .values(event)
        .returning(events::id)
        .get_result(conn)
}

/// Adds the users who receive an event that belongs to no room.
pub fn insert_audience(conn: &mut DbConnection, event: i64, users: &[Id]) -> QueryResult<()> {
    for user in users {
        diesel::insert_into(event_audience::table)
            .values((
                event_audience::event_id.eq(event),
                event_audience::user_id.eq(user),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The audiences of the events in `(after, upto]`, as (event, user) pairs.
pub fn audiences(conn: &mut DbConnection, after: i64, upto: i64) -> QueryResult<Vec<(i64, Id)>> {
    event_audience::table
        .filter(event_audience::event_id.gt(after))
        .filter(event_audience::event_id.le(upto))
        .select((event_audience::event_id, event_audience::user_id))
        .load(conn)
}

/// The id of the newest event (0 for an empty log).
pub fn head(conn: &mut DbConnection) -> QueryResult<i64> {
    let max: Option<i64> = events::table
        .select(diesel::dsl::max(events::id))
        .first(conn)?;
    Ok(max.unwrap_or(0))
}

/// Events in `(after, upto]`, oldest first, at most `limit` (the tailer's read).
pub fn range(
    conn: &mut DbConnection,
    after: i64,
    upto: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    let mut query = events::table
        .filter(events::id.gt(after))
        .select(EventRow::as_select())
        .order(events::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(upto) = upto {
        query = query.filter(events::id.le(upto));
    }
    query.load(conn)
}

/// Events in `(after, upto]` that `user` may see, oldest first: events addressed to the user
/// (their audience), and events of rooms during the user's stays in them (from the join event
/// to the leave event, both included).
pub fn visible_range(
    conn: &mut DbConnection,
    user: Id,
    after: i64,
    upto: i64,
    limit: i64,
) -> QueryResult<Vec<EventRow>> {
    let stay = room_memberships::table
        .filter(room_memberships::room_id.nullable().eq(events::room_id))
        .filter(room_memberships::user_id.eq(user))
        .filter(room_memberships::joined_event_id.le(events::id))
        .filter(
            room_memberships::left_event_id
                .is_null()
                .or(room_memberships::left_event_id
                    .assume_not_null()
                    .ge(events::id)),
        );
    let audience = event_audience::table
        .filter(event_audience::event_id.eq(events::id))
        .filter(event_audience::user_id.eq(user));
    events::table
        .filter(events::id.gt(after))
        .filter(events::id.le(upto))
        .filter(diesel::dsl::exists(stay).or(diesel::dsl::exists(audience)))
        .select(EventRow::as_select())
        .order(events::id.asc())
        .limit(limit)
        .load(conn)
}

const PRUNED_THROUGH: &str = "events_pruned_through";

/// The id up to which events have been pruned: a cursor below it can't be resumed.
pub fn pruned_through(conn: &mut DbConnection) -> QueryResult<i64> {
    let value: Option<i64> = server_state::table
        .find(PRUNED_THROUGH)
        .select(server_state::value)
        .first(conn)
        .optional()?;
    Ok(value.unwrap_or(0))
}

/// Deletes events created before `cutoff`, records the highest id deleted, and returns how many
/// went. Run in a write transaction.
pub fn prune(conn: &mut DbConnection, cutoff: Time) -> QueryResult<usize> {
    let highest: Option<i64> = events::table
        .filter(events::created_at.lt(cutoff))
        .select(diesel::dsl::max(events::id))
        .first(conn)?;
    let Some(highest) = highest else { return Ok(0) };
    let deleted = diesel::delete(events::table.filter(events::id.le(highest))).execute(conn)?;
    diesel::delete(event_audience::table.filter(event_audience::event_id.le(highest)))
        .execute(conn)?;
    let updated = diesel::update(server_state::table.find(PRUNED_THROUGH))
        .set(server_state::value.eq(highest))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(server_state::table)
            .values((
                server_state::name.eq(PRUNED_THROUGH),
                server_state::value.eq(highest),
            ))
            .execute(conn)?;
    }
    Ok(deleted)
}
