//! Message rows and the history queries (paged by the message's position in the log).

use crate::domain::{Id, Time};
use diesel::prelude::*;

use super::schema::messages;
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages)]
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

pub fn insert(conn: &mut DbConnection, row: &MessageRow) -> QueryResult<()> {
    diesel::insert_into(messages::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
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
