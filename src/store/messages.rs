//! Message rows and the history queries (paged by the message's position in the log).

use crate::domain::{Id, Time};
use diesel::prelude::*;

use super::schema::{messages, reactions, room_memberships};
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

/// Inserts many messages in one statement.
pub fn insert_many(conn: &mut DbConnection, rows: &[MessageRow]) -> QueryResult<()> {
    super::insert_many!(conn, messages::table, rows)
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

/// Replaces a message's body and sets its edit time.
pub fn edit(conn: &mut DbConnection, id: Id, body: &str, at: Time) -> QueryResult<()> {
    diesel::update(messages::table.find(id))
        .set((messages::body.eq(body), messages::edited_at.eq(Some(at))))
        .execute(conn)
        .map(|_| ())
}

/// Turns a message into a tombstone: the body is erased, the place in history stays.
pub fn tombstone(conn: &mut DbConnection, id: Id, at: Time) -> QueryResult<()> {
    diesel::update(messages::table.find(id))
        .set((messages::body.eq(""), messages::deleted_at.eq(Some(at))))
        .execute(conn)?;
    diesel::delete(reactions::table.filter(reactions::message_id.eq(id))).execute(conn)?;
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
