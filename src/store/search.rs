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

/// The FTS5 query: every term a quoted prefix (`"term"*`), all of them required.
fn fts5_query(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("\"{}\"*", t.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The tsquery: every term a quoted prefix (`'term':*`), all of them required.
fn tsquery(terms: &[String]) -> String {
    terms
        .iter()
        .map(|t| format!("'{}':*", t.replace('\\', "\\\\").replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(" & ")
}

/// The ids of the matching messages the user may see, newest first.
pub fn search(conn: &mut DbConnection, s: &Search<'_>) -> QueryResult<Vec<Id>> {
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
                "SELECT m.id AS id FROM message_search CROSS JOIN messages m \
                 ON m.seq = message_search.rowid \
                 WHERE message_search MATCH $1 AND message_search.rowid < $2 \
                 AND m.deleted_at IS NULL \
                 AND m.room_id IN (SELECT room_id FROM room_memberships \
                                   WHERE user_id = $3 AND left_event_id IS NULL){room_clause} \
                 ORDER BY message_search.rowid DESC LIMIT $4"
            )
            .replace('$', "?");
            let q = diesel::sql_query(sql)
                .bind::<Text, _>(fts5_query(s.terms))
                .bind::<BigInt, _>(before)
                .bind::<DbUuid, _>(s.user)
                .bind::<BigInt, _>(s.limit);
            match s.room {
                Some(room) => q.bind::<DbUuid, _>(room).load(c)?,
                None => q.load(c)?,
            }
        }
        DbConnection::Postgresql(c) => {
            let sql = format!(
                "SELECT m.id AS id FROM messages m \
                 WHERE to_tsvector('simple'::regconfig, m.body) \
                       @@ to_tsquery('simple'::regconfig, $1) \
                 AND m.deleted_at IS NULL AND m.seq < $2 \
                 AND m.room_id IN (SELECT room_id FROM room_memberships \
                                   WHERE user_id = $3 AND left_event_id IS NULL){room_clause} \
                 ORDER BY m.seq DESC LIMIT $4"
            );
            let timeout = s.timeout_ms;
            c.transaction(|c| {
                if timeout > 0 {
                    diesel::sql_query(format!("SET LOCAL statement_timeout = {timeout}"))
                        .execute(c)?;
                }
                let q = diesel::sql_query(sql)
                    .bind::<Text, _>(tsquery(s.terms))
                    .bind::<BigInt, _>(before)
                    .bind::<DbUuid, _>(s.user)
                    .bind::<BigInt, _>(s.limit);
                match s.room {
                    Some(room) => q.bind::<DbUuid, _>(room).load(c),
                    None => q.load(c),
                }
            })?
        }
    };
    Ok(hits.into_iter().map(|h| h.id).collect())
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
        assert_eq!(fts5_query(&terms), "\"서울\"* AND \"hello\"*");
        assert_eq!(tsquery(&terms), "'서울':* & 'hello':*");
    }
}
