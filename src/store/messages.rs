//! Message rows and the history queries (paged by the message's position in the log).

use crate::domain::{Id, Time};
use diesel::prelude::*;

use super::events::NumberedEvent;
use super::schema::{message_mentions, messages, reactions, room_memberships};
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages, treat_none_as_default_value = false)]
pub struct MessageRow {
    pub id: Id,
    pub room_id: Id,
    pub seq: i64,
    pub author_id: Id,
    pub body: String,
    pub reply_to: Option<Id>,
    pub created_at: Time,
    pub edited_at: Option<Time>,
    pub deleted_at: Option<Time>,
}

/// A message of a group of sends, with its `message.created` payload.
pub struct NewMessage {
    pub row: MessageRow,
    pub payload: String,
}

/// Appends the events (of `kind`, `message.created`) of a group of sends, inserts the messages with
/// `seq` = their event's id, and sets each room's newest message; returns the event ids, in
/// the order given. The caller holds the event-log lock.
///
/// SQLite: the ids are reserved, then the events inserted with one prepared statement run per
/// row, the messages with one statement for the group ([`MessagesSqlite`]: the search index
/// writes one segment per statement), and the rooms' newest messages with one.
/// PostgreSQL, where each statement is a round trip and diesel re-parses multi-row inserts:
/// one statement, prepared once, that takes the ids from the sequence and does all of it.
pub fn append_sent(
    conn: &mut DbConnection,
    kind: &'static str,
    new: &mut [NewMessage],
) -> QueryResult<Vec<i64>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let ids = match conn {
        DbConnection::Postgresql(pg) => {
            let numbered: Vec<(i64, i64)> = SentGroupPg::of(kind, new).load(pg)?;
            numbered.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
        }
        DbConnection::Sqlite(_) => append_sent_sqlite(conn, kind, new)?,
    };
    if ids.len() != new.len() {
        return Err(diesel::result::Error::QueryBuilderError(
            "fewer event ids than messages".into(),
        ));
    }
    for (m, id) in new.iter_mut().zip(&ids) {
        m.row.seq = *id;
    }
    Ok(ids)
}

/// [`append_sent`] on SQLite: the ids reserved, the events inserted with one prepared
/// statement run per row (`insert_many!`), the messages with one statement for them all
/// ([`MessagesSqlite`]), the rooms with one ([`RoomsTouchedSqlite`]).
fn append_sent_sqlite(
    conn: &mut DbConnection,
    kind: &'static str,
    new: &[NewMessage],
) -> QueryResult<Vec<i64>> {
    let ids = super::events::reserve(conn, new.len())?;
    let events: Vec<NumberedEvent> = new
        .iter()
        .zip(&ids)
        .map(|(m, id)| NumberedEvent {
            id: *id,
            kind,
            room_id: Some(m.row.room_id),
            payload: m.payload.clone(),
            created_at: m.row.created_at,
        })
        .collect();
    super::events::insert_numbered(conn, &events)?;
    let rows: Vec<MessageRow> = new
        .iter()
        .zip(&ids)
        .map(|(m, id)| MessageRow {
            seq: *id,
            ..m.row.clone()
        })
        .collect();
    if let DbConnection::Sqlite(c) = conn {
        MessagesSqlite::of(&rows)?.execute(c)?;
        RoomsTouchedSqlite::of(&rows)?.execute(c)?;
    }
    Ok(ids)
}

/// An id as `json_rows` carries it, for `unhex` in SQL.
fn hex(id: &Id) -> String {
    id.0.simple().to_string()
}

/// The rows as one JSON array for `json_each`, as [`MessagesSqlite`] and [`RoomsTouchedSqlite`]
/// bind them.
fn json_rows<T: serde::Serialize>(rows: &[T]) -> QueryResult<String> {
    serde_json::to_string(rows).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
}

/// Each room's newest message and last activity after a group of sends on SQLite, set by **one
/// statement** for the group's rooms (as JSON, like [`MessagesSqlite`]). diesel never keeps an
/// `UPDATE` prepared, so an update per room was parsed again for every room of every group
/// (4 % of the writer's time, by perf).
struct RoomsTouchedSqlite {
    rooms: String,
}

impl RoomsTouchedSqlite {
    fn of(rows: &[MessageRow]) -> QueryResult<RoomsTouchedSqlite> {
        // Each room's newest message is the last of the group in that room; each room once,
        // since an update that joins a room twice would take either row.
        let mut newest: std::collections::HashMap<Id, &MessageRow> =
            std::collections::HashMap::new();
        for row in rows {
            newest.insert(row.room_id, row);
        }
        let rooms: Vec<_> = newest
            .values()
            .map(|r| (hex(&r.room_id), hex(&r.id), r.created_at))
            .collect();
        Ok(RoomsTouchedSqlite {
            rooms: json_rows(&rooms)?,
        })
    }
}

super::kept_prepared!(RoomsTouchedSqlite);

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for RoomsTouchedSqlite {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        out.push_sql(
            "UPDATE rooms SET last_message_id = unhex(j.value ->> 1), \
             last_activity_at = j.value ->> 2 \
             FROM json_each(",
        );
        out.push_bind_param::<diesel::sql_types::Text, _>(&self.rooms)?;
        out.push_sql(") AS j WHERE rooms.id = unhex(j.value ->> 0)");
        Ok(())
    }
}

/// The messages of a group of sends on SQLite, inserted by **one statement**: their rows as
/// one JSON array, read back with `json_each` (ids as hex). SQLite opens a statement savepoint
/// for every statement that writes inside a transaction, and the search index (written by the
/// messages' insert trigger) flushes what it holds to a new segment of its own at every
/// savepoint: a statement per row made one segment per message, which the index then spent
/// its time merging; one statement makes one per group. The text is fixed whatever the row
/// count, so it is prepared once (a static query id, unlike `sql_query`).
struct MessagesSqlite {
    rows: String,
}

impl MessagesSqlite {
    fn of(rows: &[MessageRow]) -> QueryResult<MessagesSqlite> {
        // Tuples serialize as JSON arrays (times as their text, as `DbTime` stores them); the
        // bodies are borrowed, not copied.
        let rows: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    hex(&r.id),
                    hex(&r.room_id),
                    r.seq,
                    hex(&r.author_id),
                    r.body.as_str(),
                    r.reply_to.as_ref().map(hex),
                    r.created_at,
                    r.edited_at,
                    r.deleted_at,
                )
            })
            .collect();
        Ok(MessagesSqlite {
            rows: json_rows(&rows)?,
        })
    }
}

super::kept_prepared!(MessagesSqlite);

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for MessagesSqlite {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO messages \
             (id, room_id, seq, author_id, body, reply_to, created_at, edited_at, deleted_at) \
             SELECT unhex(value ->> 0), unhex(value ->> 1), value ->> 2, unhex(value ->> 3), \
             value ->> 4, unhex(value ->> 5), value ->> 6, value ->> 7, value ->> 8 \
             FROM json_each(",
        );
        out.push_bind_param::<diesel::sql_types::Text, _>(&self.rows)?;
        out.push_sql(")");
        Ok(())
    }
}

/// [`append_sent`] on PostgreSQL: arrays in, (position, event id) out. A type of its own with a
/// static query id, so that diesel keeps it prepared (`sql_query` never is).
struct SentGroupPg {
    kind: &'static str,
    payloads: Vec<String>,
    rooms: Vec<Id>,
    created: Vec<Time>,
    ids: Vec<Id>,
    authors: Vec<Id>,
    bodies: Vec<String>,
    replies: Vec<Option<Id>>,
}

impl SentGroupPg {
    fn of(kind: &'static str, new: &[NewMessage]) -> SentGroupPg {
        SentGroupPg {
            kind,
            payloads: new.iter().map(|m| m.payload.clone()).collect(),
            rooms: new.iter().map(|m| m.row.room_id).collect(),
            created: new.iter().map(|m| m.row.created_at).collect(),
            ids: new.iter().map(|m| m.row.id).collect(),
            authors: new.iter().map(|m| m.row.author_id).collect(),
            bodies: new.iter().map(|m| m.row.body.clone()).collect(),
            replies: new.iter().map(|m| m.row.reply_to).collect(),
        }
    }
}

impl diesel::query_builder::Query for SentGroupPg {
    type SqlType = (diesel::sql_types::BigInt, diesel::sql_types::BigInt);
}

super::kept_prepared!(SentGroupPg);

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for SentGroupPg {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use super::sql_types::{DbTime, DbUuid};
        use diesel::sql_types::{Array, Nullable, Text};
        // `ids` numbers the reserved ids in increasing order, whatever order nextval ran in,
        // so the n-th message gets the n-th smallest id; MATERIALIZED makes every CTE run once.
        out.push_sql("WITH input AS MATERIALIZED (SELECT * FROM unnest(");
        out.push_bind_param::<Array<Text>, _>(&self.payloads)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<DbUuid>, _>(&self.rooms)?;
        out.push_sql("::uuid[], ");
        out.push_bind_param::<Array<DbTime>, _>(&self.created)?;
        out.push_sql("::timestamptz[], ");
        out.push_bind_param::<Array<DbUuid>, _>(&self.ids)?;
        out.push_sql("::uuid[], ");
        out.push_bind_param::<Array<DbUuid>, _>(&self.authors)?;
        out.push_sql("::uuid[], ");
        out.push_bind_param::<Array<Text>, _>(&self.bodies)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Nullable<DbUuid>>, _>(&self.replies)?;
        out.push_sql(
            "::uuid[]) WITH ORDINALITY
                 AS t(payload, room_id, created_at, message_id, author_id, body, reply_to, n)
            ), ids AS MATERIALIZED (
                SELECT row_number() OVER (ORDER BY id) AS n, id FROM (
                    SELECT nextval(pg_get_serial_sequence('events', 'id')) AS id FROM input
                ) reserved
            ), numbered AS MATERIALIZED (
                SELECT ids.id, input.* FROM input JOIN ids USING (n)
            ), new_events AS (
                INSERT INTO events (id, kind, room_id, payload, created_at)
                SELECT id, ",
        );
        out.push_bind_param::<Text, _>(&self.kind)?;
        out.push_sql(
            "::text, room_id, payload, created_at FROM numbered
            ), new_messages AS (
                INSERT INTO messages (id, room_id, seq, author_id, body, reply_to, created_at)
                SELECT message_id, room_id, id, author_id, body, reply_to, created_at
                FROM numbered
            ), touched AS (
                UPDATE rooms SET last_message_id = newest.message_id,
                                 last_activity_at = newest.created_at
                FROM (SELECT DISTINCT ON (room_id) room_id, message_id, created_at
                      FROM numbered ORDER BY room_id, n DESC) newest
                WHERE rooms.id = newest.room_id
            )
            SELECT n, id FROM numbered ORDER BY n",
        );
        Ok(())
    }
}

pub fn find_in_room(conn: &mut DbConnection, room: Id, id: Id) -> QueryResult<Option<MessageRow>> {
    messages::table
        .filter(messages::id.eq(id))
        .filter(messages::room_id.eq(room))
        .select(MessageRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_many(conn: &mut DbConnection, ids: &[Id]) -> QueryResult<Vec<MessageRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    messages::table
        .filter(messages::id.eq_any(ids))
        .select(MessageRow::as_select())
        .load(conn)
}

/// The messages at these positions (a message's seq is its `message.created` event's id).
pub fn find_by_seqs(conn: &mut DbConnection, seqs: &[i64]) -> QueryResult<Vec<MessageRow>> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    messages::table
        .filter(messages::seq.eq_any(seqs))
        .select(MessageRow::as_select())
        .load(conn)
}

/// Which way a history page reads from its anchor.
#[derive(Debug, Clone, Copy)]
pub enum Page {
    /// The newest messages.
    Latest,
    /// Messages older than this position.
    Before(i64),
    /// Messages newer than this position.
    After(i64),
}

/// Up to `limit` messages of the room in the page's direction, returned oldest first.
pub fn page(
    conn: &mut DbConnection,
    room: Id,
    page: Page,
    limit: i64,
) -> QueryResult<Vec<MessageRow>> {
    let base = messages::table
        .filter(messages::room_id.eq(room))
        .select(MessageRow::as_select())
        .limit(limit)
        .into_boxed();
    let mut rows = match page {
        Page::Latest => base.order(messages::seq.desc()).load(conn)?,
        Page::Before(seq) => base
            .filter(messages::seq.lt(seq))
            .order(messages::seq.desc())
            .load(conn)?,
        Page::After(seq) => {
            return base
                .filter(messages::seq.gt(seq))
                .order(messages::seq.asc())
                .load(conn);
        }
    };
    rows.reverse();
    Ok(rows)
}

/// Whether the room has a message older (`older = true`) or newer than position `seq`.
pub fn exists_beyond(
    conn: &mut DbConnection,
    room: Id,
    seq: i64,
    older: bool,
) -> QueryResult<bool> {
    let in_room = messages::table.filter(messages::room_id.eq(room));
    if older {
        diesel::select(diesel::dsl::exists(in_room.filter(messages::seq.lt(seq)))).get_result(conn)
    } else {
        diesel::select(diesel::dsl::exists(in_room.filter(messages::seq.gt(seq)))).get_result(conn)
    }
}

/// Replaces a message's body and sets its edit time.
pub fn edit(conn: &mut DbConnection, id: Id, body: &str, at: Time) -> QueryResult<()> {
    diesel::update(messages::table.find(id))
        .set((messages::body.eq(body), messages::edited_at.eq(Some(at))))
        .execute(conn)
        .map(|_| ())
}

/// Turns a message into a tombstone: the body is erased, the place in history stays; its
/// reactions and mentions go with the body.
pub fn tombstone(conn: &mut DbConnection, id: Id, at: Time) -> QueryResult<()> {
    diesel::update(messages::table.find(id))
        .set((messages::body.eq(""), messages::deleted_at.eq(Some(at))))
        .execute(conn)?;
    diesel::delete(reactions::table.filter(reactions::message_id.eq(id))).execute(conn)?;
    diesel::delete(message_mentions::table.filter(message_mentions::message_id.eq(id)))
        .execute(conn)?;
    Ok(())
}

/// Adds a reaction; false if the user had already reacted so.
pub fn add_reaction(
    conn: &mut DbConnection,
    message: Id,
    user: Id,
    emoji: &str,
    at: Time,
) -> QueryResult<bool> {
    let exists = diesel::select(diesel::dsl::exists(
        reactions::table.find((message, user, emoji)),
    ))
    .get_result(conn)?;
    if exists {
        return Ok(false);
    }
    diesel::insert_into(reactions::table)
        .values((
            reactions::message_id.eq(message),
            reactions::user_id.eq(user),
            reactions::emoji.eq(emoji),
            reactions::created_at.eq(at),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Removes a reaction; false if there was none.
pub fn remove_reaction(
    conn: &mut DbConnection,
    message: Id,
    user: Id,
    emoji: &str,
) -> QueryResult<bool> {
    Ok(diesel::delete(reactions::table.find((message, user, emoji))).execute(conn)? > 0)
}

/// The reactions on these messages, as (message, emoji, user), oldest first.
pub fn reactions_on(conn: &mut DbConnection, ids: &[Id]) -> QueryResult<Vec<(Id, String, Id)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    reactions::table
        .filter(reactions::message_id.eq_any(ids))
        .select((reactions::message_id, reactions::emoji, reactions::user_id))
        .order(reactions::created_at.asc())
        .load(conn)
}

/// Unread messages per room for `user`: others' live messages after the member's read marker.
pub fn unread_counts(
    conn: &mut DbConnection,
    user: Id,
    rooms: &[Id],
) -> QueryResult<Vec<(Id, i64)>> {
    if rooms.is_empty() {
        return Ok(Vec::new());
    }
    messages::table
        .inner_join(
            room_memberships::table.on(room_memberships::room_id
                .eq(messages::room_id)
                .and(room_memberships::user_id.eq(user))
                .and(room_memberships::left_event_id.is_null())),
        )
        .filter(messages::room_id.eq_any(rooms))
        .filter(messages::seq.gt(room_memberships::last_read_seq))
        .filter(messages::author_id.ne(user))
        .filter(messages::deleted_at.is_null())
        .group_by(messages::room_id)
        .select((messages::room_id, diesel::dsl::count_star()))
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing;
    use diesel::connection::Connection;
    use diesel::sql_types::BigInt;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn count(conn: &mut DbConnection, sql: &str) -> i64 {
        let DbConnection::Sqlite(c) = conn else {
            unreachable!("an in-memory SQLite database")
        };
        diesel::sql_query(sql).get_result::<Count>(c).unwrap().n
    }

    /// The search index's segments: its data rows are numbered segment << 37 plus page, and
    /// rows below 1 << 37 are its bookkeeping.
    const SEGMENTS: &str = "SELECT count(DISTINCT id >> 37) AS n FROM message_search_data \
                            WHERE id >= 137438953472";

    #[test]
    fn a_group_of_sends_is_one_insert_that_keeps_every_column_and_one_search_segment() {
        let mut conn = testing::database();
        let (alice, bob) = (
            testing::user(&mut conn, "alice"),
            testing::user(&mut conn, "bob"),
        );
        let room = testing::room(&mut conn, alice);
        // No merges, so that the segments counted are the ones the sends wrote.
        count(
            &mut conn,
            "INSERT INTO message_search(message_search, rank) VALUES ('automerge', 0) \
             RETURNING 0 AS n",
        );
        let first = Id::new();
        let bodies = [
            "plain",
            "quotes \" and \\ backslash, 서울에서 🎉",
            "",
            "line\nbreak\ttab",
            "last one",
        ];
        let at = Time::now();
        let mut new: Vec<NewMessage> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| NewMessage {
                row: MessageRow {
                    id: if i == 0 { first } else { Id::new() },
                    room_id: room,
                    seq: 0,
                    author_id: if i % 2 == 0 { alice } else { bob },
                    body: body.to_string(),
                    reply_to: (i == 1).then_some(first),
                    created_at: at,
                    edited_at: None,
                    deleted_at: None,
                },
                payload: format!("{{\"n\":{i}}}"),
            })
            .collect();
        let ids = conn
            .transaction(|c| append_sent(c, "message.created", &mut new))
            .unwrap();
        assert_eq!(ids.len(), bodies.len());

        let mut stored = find_by_seqs(&mut conn, &ids).unwrap();
        stored.sort_by_key(|r| r.seq);
        assert_eq!(stored.len(), bodies.len());
        for (row, sent) in stored.iter().zip(&new) {
            assert_eq!(row.id, sent.row.id);
            assert_eq!(row.room_id, room);
            assert_eq!(row.seq, sent.row.seq);
            assert_eq!(row.author_id, sent.row.author_id);
            assert_eq!(row.body, sent.row.body);
            assert_eq!(row.reply_to, sent.row.reply_to);
            assert_eq!(row.created_at, at);
            assert_eq!((row.edited_at, row.deleted_at), (None, None));
        }
        // Stored as diesel stores them, so that every other query finds them.
        assert_eq!(find_many(&mut conn, &[first]).unwrap().len(), 1);
        assert_eq!(
            page(&mut conn, room, Page::Latest, 10).unwrap().len(),
            bodies.len()
        );

        // Four bodies to index (the empty one is not), written as one segment: a statement per
        // row flushed the index at each row's savepoint, one segment per message.
        assert_eq!(count(&mut conn, SEGMENTS), 1);
        assert_eq!(
            count(
                &mut conn,
                "SELECT count(*) AS n FROM message_search WHERE message_search MATCH 'body:서울*'"
            ),
            1
        );
        assert_eq!(
            count(&mut conn, "SELECT count(*) AS n FROM message_search"),
            4
        );
    }
}
