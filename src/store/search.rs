//! Message search over the full-text indexes of migration `2026-12-07-000007_message_search`:
//! FTS5 (`message_search`, rowid = the message's seq) on SQLite, a GIN index over
//! `to_tsvector('simple', body)` on PostgreSQL. Every term is a word prefix and all must match.
//!
//! The query shape is the same on both: the index gives the matching messages, newest first,
//! each kept only if its room is one the user is a current member of (the visibility rule of
//! history), up to the page's size. SQLite walks the FTS doclist from the newest rowid down and
//! stops at the page's end; PostgreSQL chooses between the GIN index and the rooms' history
//! index by its statistics, under a statement time limit.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::sql_types::DbUuid;
use super::DbConnection;
use crate::domain::Id;

#[derive(QueryableByName)]
struct Hit {
    #[diesel(sql_type = DbUuid)]
    id: Id,
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

/// What to search for and where.
pub struct Search<'a> {
    /// Lower-case words (letters, digits, marks only: `domain::search::SearchQuery`).
    pub terms: &'a [String],
    pub user: Id,
    /// Only this room (the caller has checked the user is a member).
    pub room: Option<Id>,
    /// Only messages older than this seq.
    pub before_seq: Option<i64>,
    pub limit: i64,
    /// PostgreSQL's statement time limit for the search, in milliseconds (0: none).
    pub timeout_ms: u64,
}

/// The most rooms whose tokens go into one index query (see [`search`]); a caller in more
/// rooms gets one query per this many, merged.
pub const MAX_ROOM_FILTER: usize = 200;

/// The FTS5 query: every term a quoted prefix of a word of `body` (`body : "term"*`), all of
/// them required, and the message's `room` token one of the rooms'.
fn fts5_query(terms: &[String], rooms: &[Id]) -> String {
    let words = terms
        .iter()
        .map(|t| format!("body : \"{}\"*", t.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ");
    let any = rooms
        .iter()
        .map(|r| format!("room : r{}", r.0.simple()))
        .collect::<Vec<_>>()
        .join(" OR ");
    format!("{words} AND ({any})")
}

/// The tsquery of the words: every term a quoted prefix (`'term':*`), all of them required.
fn tsquery(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("'{}':*", t.replace('\\', "\\\\").replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(" & ")
}

/// The tsquery of the rooms (`tsquery` input syntax: lexemes taken as they are): one of the
/// rooms' `#<hex id>` lexemes.
fn rooms_tsquery(rooms: &[Id]) -> String {
    rooms
        .iter()
        .map(|r| format!("'#{}'", r.0.simple()))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The rooms the user is a current member of.
fn rooms_of(conn: &mut DbConnection, user: Id) -> QueryResult<Vec<Id>> {
    use super::schema::room_memberships;
    room_memberships::table
        .filter(room_memberships::user_id.eq(user))
        .filter(room_memberships::left_event_id.is_null())
        .select(room_memberships::room_id)
        .load(conn)
}

/// The ids of the matching messages the user may see, newest first.
///
/// The caller's rooms (or the one room asked for) are part of the index query, so the index
/// skips other rooms' hits itself instead of handing each to the join (a word common elsewhere
/// but absent from the caller's rooms would otherwise be walked hit by hit). A caller in more
/// than [`MAX_ROOM_FILTER`] rooms gets one query per that many rooms, each giving its newest
/// `limit`, merged: the newest `limit` of all. The join on the current memberships decides
/// what is visible either way.
pub fn search(conn: &mut DbConnection, s: &Search<'_>) -> QueryResult<Vec<Id>> {
    let rooms = match s.room {
        Some(room) => vec![room],
        None => rooms_of(conn, s.user)?,
    };
    let mut hits: Vec<Hit> = Vec::new();
    for chunk in rooms.chunks(MAX_ROOM_FILTER) {
        hits.extend(search_in(conn, s, chunk)?);
    }
    hits.sort_by_key(|h| std::cmp::Reverse(h.seq));
    hits.truncate(s.limit.max(0) as usize);
    Ok(hits.into_iter().map(|h| h.id).collect())
}

/// [`search`] in some of the caller's rooms (1 to [`MAX_ROOM_FILTER`]).
fn search_in(conn: &mut DbConnection, s: &Search<'_>, rooms: &[Id]) -> QueryResult<Vec<Hit>> {
    let before = s.before_seq.unwrap_or(i64::MAX);
    let room_clause = if s.room.is_some() {
        " AND m.room_id = $5"
    } else {
        ""
    };
    let hits: Vec<Hit> = match conn {
        DbConnection::Sqlite(c) => {
            // CROSS JOIN keeps the FTS table the outer loop, so its rowid order is the result's
            // and the LIMIT stops the walk; `?n` numbering lets the room be optional.
            let sql = format!(
                "SELECT m.id AS id, m.seq AS seq FROM message_search CROSS JOIN messages m \
                 ON m.seq = message_search.rowid \
                 WHERE message_search MATCH $1 AND message_search.rowid < $2 \
                 AND m.deleted_at IS NULL \
                 AND m.room_id IN (SELECT room_id FROM room_memberships \
                                   WHERE user_id = $3 AND left_event_id IS NULL){room_clause} \
                 ORDER BY message_search.rowid DESC LIMIT $4"
            )
            .replace('$', "?");
            let q = diesel::sql_query(sql)
                .bind::<Text, _>(fts5_query(s.terms, rooms))
                .bind::<BigInt, _>(before)
                .bind::<DbUuid, _>(s.user)
                .bind::<BigInt, _>(s.limit);
            match s.room {
                Some(room) => q.bind::<DbUuid, _>(room).load(c)?,
                None => q.load(c)?,
            }
        }
        DbConnection::Postgresql(c) => {
            // The expression of the index `messages_search` (migration
            // 2026-12-07-000007_message_search), word for word, or the index isn't used.
            // MATERIALIZED: one GIN scan (the caller's rooms are in the tsquery), then the
            // memberships. Left to itself the planner looped over the memberships and ran the
            // GIN scan once per room (285 ms instead of 15 for a word common elsewhere).
            let sql = "WITH hits AS MATERIALIZED ( \
                   SELECT m.id, m.seq, m.room_id FROM messages m \
                   WHERE (to_tsvector('simple'::regconfig, m.body) \
                          || array_to_tsvector(ARRAY['#' || replace(m.room_id::text, '-', '')])) \
                         @@ (to_tsquery('simple'::regconfig, $1) && $6::tsquery) \
                   AND m.deleted_at IS NULL AND m.seq < $2) \
                 SELECT id, seq FROM hits \
                 WHERE room_id IN (SELECT room_id FROM room_memberships \
                                   WHERE user_id = $3 AND left_event_id IS NULL) \
                 AND ($5::uuid IS NULL OR room_id = $5::uuid) \
                 ORDER BY seq DESC LIMIT $4";
            let timeout = s.timeout_ms;
            c.transaction(|c| {
                if timeout > 0 {
                    diesel::sql_query(format!("SET LOCAL statement_timeout = {timeout}"))
                        .execute(c)?;
                }
                diesel::sql_query(sql)
                    .bind::<Text, _>(tsquery(s.terms))
                    .bind::<BigInt, _>(before)
                    .bind::<DbUuid, _>(s.user)
                    .bind::<BigInt, _>(s.limit)
                    .bind::<diesel::sql_types::Nullable<DbUuid>, _>(s.room)
                    .bind::<Text, _>(rooms_tsquery(rooms))
                    .load(c)
            })?
        }
    };
    Ok(hits)
}

/// Whether a store error is PostgreSQL cancelling the search at its time limit.
pub fn timed_out(error: &diesel::result::Error) -> bool {
    matches!(error, diesel::result::Error::DatabaseError(_, info)
        if info.message().contains("statement timeout"))
}

/// The seq of a message in a room the user is a current member of (a search cursor).
pub fn visible_seq(conn: &mut DbConnection, user: Id, message: Id) -> QueryResult<Option<i64>> {
    use super::schema::{messages, room_memberships};
    messages::table
        .inner_join(
            room_memberships::table.on(room_memberships::room_id
                .eq(messages::room_id)
                .and(room_memberships::user_id.eq(user))
                .and(room_memberships::left_event_id.is_null())),
        )
        .filter(messages::id.eq(message))
        .select(messages::seq)
        .first(conn)
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_quote_every_term_as_a_prefix() {
        let terms = vec!["서울".to_string(), "hello".to_string()];
        let other: Id = "0a1b2c3d-0000-4000-8000-000000000002".parse().unwrap();
        assert_eq!(
            fts5_query(&terms, &[other]),
            "body : \"서울\"* AND body : \"hello\"* AND (room : r0a1b2c3d000040008000000000000002)"
        );
        assert_eq!(tsquery(&terms), "'서울':* & 'hello':*");
        let room: Id = "0a1b2c3d-0000-4000-8000-000000000001".parse().unwrap();
        assert_eq!(
            fts5_query(&terms[..1], &[room]),
            "body : \"서울\"* AND (room : r0a1b2c3d000040008000000000000001)"
        );
        assert_eq!(
            rooms_tsquery(&[room, other]),
            "'#0a1b2c3d000040008000000000000001' | '#0a1b2c3d000040008000000000000002'"
        );
    }
}
