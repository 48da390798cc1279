//! Attachment rows: metadata and who may see them. The bytes are files (`core::attachments`).

use diesel::prelude::*;

use super::schema::{attachments, messages, room_memberships};
use super::DbConnection;
use crate::domain::{Id, Time};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = attachments)]
pub struct AttachmentRow {
    pub id: Id,
    pub owner_id: Id,
    pub content_type: String,
    pub size: i64,
    pub width: i32,
    pub height: i32,
    pub thumb_content_type: String,
    pub message_id: Option<Id>,
    pub position: i32,
    pub created_at: Time,
}

pub fn insert(conn: &mut DbConnection, row: &AttachmentRow) -> QueryResult<()> {
    diesel::insert_into(attachments::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: Id) -> QueryResult<Option<AttachmentRow>> {
    attachments::table
        .find(id)
        .select(AttachmentRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_many(conn: &mut DbConnection, ids: &[Id]) -> QueryResult<Vec<AttachmentRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    attachments::table
        .filter(attachments::id.eq_any(ids))
        .select(AttachmentRow::as_select())
        .load(conn)
}

/// The attachments carried by these messages.
pub fn of_messages(conn: &mut DbConnection, messages: &[Id]) -> QueryResult<Vec<AttachmentRow>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    attachments::table
        .filter(
            attachments::message_id.eq_any(messages.iter().map(|m| Some(*m)).collect::<Vec<_>>()),
        )
        .select(AttachmentRow::as_select())
        .order(attachments::position.asc())
        .load(conn)
}

/// Attaches to a message those of `ids` still unattached, in that order; returns how many it
/// took.
pub fn attach(conn: &mut DbConnection, ids: &[Id], message: Id) -> QueryResult<usize> {
    let mut taken = 0;
    for (position, id) in ids.iter().enumerate() {
        taken += diesel::update(
            attachments::table
                .filter(attachments::id.eq(id))
                .filter(attachments::message_id.is_null()),
        )
        .set((
            attachments::message_id.eq(Some(message)),
            attachments::position.eq(position as i32),
        ))
        .execute(conn)?;
    }
    Ok(taken)
}

/// Deletes the attachments of a message (it was deleted) and returns their ids, whose files
/// go once the transaction has committed.
pub fn detach_and_delete(conn: &mut DbConnection, message: Id) -> QueryResult<Vec<Id>> {
    let ids: Vec<Id> = attachments::table
        .filter(attachments::message_id.eq(Some(message)))
        .select(attachments::id)
        .load(conn)?;
    diesel::delete(attachments::table.filter(attachments::message_id.eq(Some(message))))
        .execute(conn)?;
    Ok(ids)
}

/// Whether `user` is a current member of the room of the message that carries `attachment`.
pub fn visible_through_room(
    conn: &mut DbConnection,
    attachment: Id,
    user: Id,
) -> QueryResult<bool> {
    let room: Option<Id> = attachments::table
        .inner_join(messages::table.on(attachments::message_id.eq(messages::id.nullable())))
        .filter(attachments::id.eq(attachment))
        .filter(messages::deleted_at.is_null())
        .select(messages::room_id)
        .first(conn)
        .optional()?;
    let Some(room) = room else { return Ok(false) };
    diesel::select(diesel::dsl::exists(
        room_memberships::table
            .filter(room_memberships::room_id.eq(room))
            .filter(room_memberships::user_id.eq(user))
            .filter(room_memberships::left_event_id.is_null()),
    ))
    .get_result(conn)
}

/// Unattached uploads older than `cutoff` (to be deleted with their files).
pub fn stale(conn: &mut DbConnection, cutoff: Time) -> QueryResult<Vec<Id>> {
    attachments::table
        .filter(attachments::message_id.is_null())
        .filter(attachments::created_at.lt(cutoff))
        .select(attachments::id)
        .limit(1000)
        .load(conn)
}

pub fn delete(conn: &mut DbConnection, id: Id) -> QueryResult<bool> {
    Ok(diesel::delete(attachments::table.find(id)).execute(conn)? > 0)
}
