//! The reads of a data export (`core::export`): the user's own messages and uploads a page at
//! a time (keyset paging on the `messages_author` and `attachments_owner` indexes), their
//! rooms, and the per-user export clock.

use diesel::prelude::*;

use super::attachments::AttachmentRow;
use super::messages::MessageRow;
use super::schema::{attachments, events, messages, room_memberships, rooms, users};
use super::DbConnection;
use crate::domain::{Id, Role, RoomKind, Time};

/// Up to `limit` of the user's messages after position `after`, by position. Tombstones
/// included (the caller skips or shows them).
pub fn messages_after(
    conn: &mut DbConnection,
    user: Id,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<MessageRow>> {
    messages::table
        .filter(messages::author_id.eq(user))
        .filter(messages::seq.gt(after))
        .order(messages::seq.asc())
        .limit(limit)
        .select(MessageRow::as_select())
        .load(conn)
}

/// Up to `limit` of the user's uploads with an id above `after`, by id.
pub fn uploads_after(
    conn: &mut DbConnection,
    user: Id,
    after: Option<Id>,
    limit: i64,
) -> QueryResult<Vec<AttachmentRow>> {
    let mut query = attachments::table
        .filter(attachments::owner_id.eq(user))
        .order(attachments::id.asc())
        .limit(limit)
        .select(AttachmentRow::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(attachments::id.gt(after));
    }
    query.load(conn)
}

/// A room the user is in, as the export lists it.
pub struct RoomStay {
    pub id: Id,
    pub kind: RoomKind,
    pub name: Option<String>,
    pub role: Role,
    /// When the stay began (`None` once its event is past retention).
    pub joined_at: Option<Time>,
}

/// A row of [`rooms_of`]'s query: room id, kind, name, role, join time.
type StayRow = (Id, RoomKind, Option<String>, Role, Option<Time>);

/// The rooms the user is a current member of, oldest stay first.
pub fn rooms_of(conn: &mut DbConnection, user: Id) -> QueryResult<Vec<RoomStay>> {
    let rows: Vec<StayRow> = room_memberships::table
        .inner_join(rooms::table)
        .left_join(events::table.on(events::id.eq(room_memberships::joined_event_id)))
        .filter(room_memberships::user_id.eq(user))
        .filter(room_memberships::left_event_id.is_null())
        .order(room_memberships::joined_event_id.asc())
        .select((
            rooms::id,
            rooms::kind,
            rooms::name,
            room_memberships::role,
            events::created_at.nullable(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, kind, name, role, joined_at)| RoomStay {
            id,
            kind,
            name,
            role,
            joined_at,
        })
        .collect())
}

/// Starts an export for `user` if their last one began at or before `cutoff` (or never):
/// `Ok(None)` when it may go (the clock now reads `now`), `Ok(Some(last))` when it may not.
/// One conditional update, so two nodes can't both start one.
pub fn claim_export(
    conn: &mut DbConnection,
    user: Id,
    now: Time,
    cutoff: Time,
) -> QueryResult<Option<Time>> {
    let claimed = diesel::update(
        users::table.find(user).filter(
            users::last_export_at
                .is_null()
                .or(users::last_export_at.le(cutoff)),
        ),
    )
    .set(users::last_export_at.eq(Some(now)))
    .execute(conn)?;
    if claimed > 0 {
        return Ok(None);
    }
    let last: Option<Time> = users::table
        .find(user)
        .select(users::last_export_at)
        .first(conn)
        .optional()?
        .flatten();
    Ok(Some(last.unwrap_or(now)))
}
