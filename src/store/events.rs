//! The event log table: appends, the per-user replay query, the head, and pruning (of the old
//! log, and early of short-lived events once expired).

use crate::domain::visibility::{may_see, Addressed, Stay};
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
    /// When a short-lived event (typing) stops mattering; `None` for a permanent one.
    pub expires_at: Option<Time>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = events)]
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub room_id: Option<Id>,
    pub payload: &'a str,
    pub created_at: Time,
    /// `None`: a permanent event.
    pub expires_at: Option<Time>,
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

/// The highest event id ever used, on SQLite (0 before the first). A type of its own with a
/// static query id, so that diesel keeps it prepared (`sql_query` is parsed at every run, and
/// this runs once per batch of sends).
struct LastEventId;

impl diesel::query_builder::Query for LastEventId {
    type SqlType = diesel::sql_types::BigInt;
}

super::kept_prepared!(LastEventId);

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for LastEventId {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        out.push_sql("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)");
        Ok(())
    }
}

/// Reserves `n` event ids on SQLite, in increasing order, for rows inserted with
/// [`insert_numbered`]. The caller holds the write lock, so no other append can take an id in
/// between. They follow `sqlite_sequence` (the highest id ever used, which inserting them
/// advances), so appends with [`insert`] that follow continue after them. (PostgreSQL takes its
/// ids from the sequence inside `messages::append_sent`'s statement.)
pub fn reserve(conn: &mut DbConnection, n: usize) -> QueryResult<Vec<i64>> {
    let DbConnection::Sqlite(conn) = conn else {
        return Err(diesel::result::Error::QueryBuilderError(
            "on PostgreSQL, event ids are taken inside messages::append_sent".into(),
        ));
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let last: i64 = LastEventId.get_result(conn)?;
    Ok((1..=n as i64).map(|i| last + i).collect())
}

/// Appends events whose ids [`reserve`] gave (`insert_many!`).
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

/// The payloads of these events, by id (those pruned are missing).
pub fn payloads(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<(i64, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    events::table
        .filter(events::id.eq_any(ids))
        .select((events::id, events::payload))
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

/// How many event ids one query of [`visible_range`] looks at, at most.
const SCAN_WINDOW: i64 = 1000;

/// Events in `(after, upto]` that `user` may see (`domain::visibility::may_see`), oldest
/// first, at most `limit`. Fewer than `limit` means every visible event up to `upto` is there.
/// Short-lived events that expired by `now` are left out, like events of another room: the
/// caller's cursor still moves past them (a page that isn't full ends at `upto`).
///
/// The user's stays that overlap the range are read first (a handful of rows); the events
/// query then only tests membership in a list of rooms and in the user's audience rows, both
/// computed once per query rather than per event, and the stay bounds are applied here.
///
/// The range is read in windows of [`SCAN_WINDOW`] ids, so that no query's cost depends on how
/// far the client is behind: with stale statistics (a log that grew since the last ANALYZE)
/// PostgreSQL estimates the range as tiny and plans a scan of all of it plus a sort, which made
/// each 500-row page of a 10,000-event catch-up cost 20 ms.
pub fn visible_range(
    conn: &mut DbConnection,
    user: Id,
    after: i64,
    upto: i64,
    limit: i64,
    now: Time,
) -> QueryResult<Vec<EventRow>> {
    let stays: Vec<(Id, i64, Option<i64>)> = room_memberships::table
        .filter(room_memberships::user_id.eq(user))
        .filter(room_memberships::joined_event_id.le(upto))
        .filter(
            room_memberships::left_event_id
                .is_null()
                .or(room_memberships::left_event_id.assume_not_null().gt(after)),
        )
        .select((
            room_memberships::room_id,
            room_memberships::joined_event_id,
            room_memberships::left_event_id,
        ))
        .load(conn)?;
    let rooms = super::distinct(stays.iter().map(|(room, _, _)| *room));
    // The query finds the candidates; the rule decides. A user may have stayed in a room more
    // than once: any of the stays may cover the event.
    let visible = |row: &EventRow| {
        let to = Addressed::of(row.room_id);
        // Only the audience clause selects events without a room.
        let in_audience = row.room_id.is_none();
        stays
            .iter()
            .filter(|(room, _, _)| Some(*room) == row.room_id)
            .map(|(_, joined, left)| {
                Some(Stay {
                    joined: *joined,
                    left: *left,
                })
            })
            .chain([None])
            .any(|stay| may_see(row.id, to, stay, in_audience))
    };
    let mut rows: Vec<EventRow> = Vec::new();
    let mut from = after;
    while from < upto && (rows.len() as i64) < limit {
        let until = upto.min(from.saturating_add(SCAN_WINDOW));
        let wanted = limit - rows.len() as i64;
        let audience = event_audience::table
            .filter(event_audience::user_id.eq(user))
            .filter(event_audience::event_id.gt(from))
            .filter(event_audience::event_id.le(until))
            .select(event_audience::event_id);
        let window: Vec<EventRow> = events::table
            .filter(events::id.gt(from))
            .filter(events::id.le(until))
            .filter(
                events::room_id
                    .assume_not_null()
                    .eq_any(&rooms)
                    .or(events::id.eq_any(audience)),
            )
            .filter(
                events::expires_at
                    .is_null()
                    .or(events::expires_at.assume_not_null().gt(now)),
            )
            .select(EventRow::as_select())
            .order(events::id.asc())
            .limit(wanted)
            .load(conn)?;
        from = match window.last() {
            Some(last) if window.len() as i64 == wanted => last.id,
            _ => until,
        };
        rows.extend(window.into_iter().filter(|row| visible(row)));
    }
    Ok(rows)
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

/// Deletes short-lived events that expired before `now` (and their audiences), at most `limit`
/// of them, oldest first; returns how many went. Run in a write transaction. They leave holes
/// in the log, which cursors already allow (ids may have holes); the pruned horizon doesn't
/// move, since no permanent event went.
pub fn prune_expired(conn: &mut DbConnection, now: Time, limit: i64) -> QueryResult<usize> {
    let expired: Vec<i64> = events::table
        .filter(events::expires_at.assume_not_null().lt(now))
        .select(events::id)
        .order(events::expires_at.assume_not_null().asc())
        .limit(limit)
        .load(conn)?;
    if expired.is_empty() {
        return Ok(0);
    }
    diesel::delete(event_audience::table.filter(event_audience::event_id.eq_any(&expired)))
        .execute(conn)?;
    diesel::delete(events::table.filter(events::id.eq_any(&expired))).execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{database, room, stay, user};

    fn append(conn: &mut DbConnection, room: Option<Id>) -> i64 {
        insert(
            conn,
            &NewEvent {
                kind: "message.created",
                room_id: room,
                payload: "{}",
                created_at: Time::now(),
                expires_at: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn visible_range_keeps_to_stays_and_audience_across_many_windows() {
        // Arrange: 2,600 events of a room alice is not in; among them, events of her room
        // during two stays and between them, and events addressed to her or to someone else.
        let mut conn = database();
        let (alice, bob) = (user(&mut conn, "alice"), user(&mut conn, "bob"));
        let (mine, other) = (room(&mut conn, alice), room(&mut conn, bob));
        let mut expected = Vec::new();
        for i in 1..=2600_i64 {
            let id = match i {
                10 | 1500 | 1700 | 2400 => append(&mut conn, Some(mine)),
                2000 | 2001 => append(&mut conn, None),
                _ => append(&mut conn, Some(other)),
            };
            assert_eq!(id, i);
            if matches!(i, 10 | 1500 | 2000 | 2400) {
                expected.push(i);
            }
        }
        stay(&mut conn, mine, alice, 5, Some(1600)); // 1700 falls between her stays
        stay(&mut conn, mine, alice, 2300, None);
        insert_audience(&mut conn, 2000, &[alice]).unwrap();
        insert_audience(&mut conn, 2001, &[bob]).unwrap();

        // Act
        let ids = |rows: Vec<EventRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let all = ids(visible_range(&mut conn, alice, 0, 2600, 500, Time::now()).unwrap());
        let first = ids(visible_range(&mut conn, alice, 0, 2600, 2, Time::now()).unwrap());
        let rest = ids(visible_range(&mut conn, alice, 1500, 2600, 2, Time::now()).unwrap());
        let upto = ids(visible_range(&mut conn, alice, 0, 1999, 500, Time::now()).unwrap());

        // Assert
        assert_eq!(all, expected);
        assert_eq!(first, [10, 1500], "a full page stops at the limit");
        assert_eq!(rest, [2000, 2400]);
        assert_eq!(upto, [10, 1500], "nothing after upto");
    }

    #[test]
    fn expired_short_lived_events_are_skipped_by_replay_and_pruned_leaving_the_horizon() {
        // Arrange: in alice's room, a message, a short-lived event that expired, one that
        // hasn't, and another message.
        let mut conn = database();
        let alice = user(&mut conn, "alice");
        let mine = room(&mut conn, alice);
        let now = Time::now();
        let at = |secs: i64| Time(now.0 + chrono::Duration::seconds(secs));
        let short = |conn: &mut DbConnection, expires: Time| {
            insert(
                conn,
                &NewEvent {
                    kind: "typing.updated",
                    room_id: Some(mine),
                    payload: "{}",
                    created_at: now,
                    expires_at: Some(expires),
                },
            )
            .unwrap()
        };
        let first = append(&mut conn, Some(mine));
        let expired = short(&mut conn, at(-1));
        let live = short(&mut conn, at(60));
        let last = append(&mut conn, Some(mine));
        stay(&mut conn, mine, alice, 0, None);
        let ids = |rows: Vec<EventRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();

        // Act, Assert: replay leaves the expired one out, as if it were another room's.
        let seen = ids(visible_range(&mut conn, alice, 0, last, 500, now).unwrap());
        assert_eq!(seen, [first, live, last]);
        let later = ids(visible_range(&mut conn, alice, 0, last, 500, at(61)).unwrap());
        assert_eq!(later, [first, last], "both expired by then");
        assert_eq!(
            ids(visible_range(&mut conn, alice, first, expired, 500, now).unwrap()),
            Vec::<i64>::new(),
            "a range of only expired events is empty, not an error"
        );

        // Pruning takes only what expired, and the pruned horizon stays where it was.
        assert_eq!(prune_expired(&mut conn, now, 100).unwrap(), 1);
        assert_eq!(prune_expired(&mut conn, now, 100).unwrap(), 0);
        assert_eq!(pruned_through(&mut conn).unwrap(), 0);
        let left = ids(range(&mut conn, 0, None, 100).unwrap());
        assert_eq!(left, [first, live, last]);
        assert_eq!(prune_expired(&mut conn, at(61), 100).unwrap(), 1);
        assert_eq!(head(&mut conn).unwrap(), last);
    }
}
