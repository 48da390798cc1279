//! Messages: sending (idempotent, one transaction with its event) and reading history.

use std::path::Path;

use serde::Serialize;

use crate::core::crypto::sha256_hex;
use crate::core::event::{self, Event};
pub use crate::core::send_group::Sent;
use crate::core::send_group::{self, Keyed, SendRequest};
use crate::core::views::{message_views, Message};
use crate::domain::{Id, MessageBody, Role, RoomKind, Time};
use crate::error::{Error, Result};
use crate::events::{To, Writer};
use crate::store::rooms::MembershipRow;
use crate::store::{self, messages::MessageRow, messages::Page, Db, DbConnection};

/// The longest `Idempotency-Key` accepted.
pub const MAX_KEY_LEN: usize = 255;

/// A send as the client asked for it.
pub struct Send {
    pub room: Id,
    pub body: String,
    pub reply_to: Option<Id>,
    pub attachment_ids: Vec<Id>,
    /// Users to mention: current members of the room (the author may be one).
    pub mention_ids: Vec<Id>,
    pub idempotency_key: Option<String>,
}

/// The most attachments one message carries.
pub const MAX_ATTACHMENTS: usize = 10;

/// The most users one message mentions (each is checked, stored and counted).
pub const MAX_MENTIONS: usize = 50;

/// Checks a client's idempotency key: 1–255 printable ASCII characters.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| (0x21..=0x7e).contains(&b))
    {
        return Err(Error::bad_request(
            "invalid_idempotency_key",
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} printable ASCII characters"),
        ));
    }
    Ok(())
}

/// Sends a message: the message row, its `message.created` event and the idempotency record
/// commit together. A retry with the same key gets the stored outcome (so the same answer) and writes nothing; the
/// same key with another request is 409.
pub async fn send(writer: &Writer, author: Id, send: Send) -> Result<Sent> {
    // A photo may go without text; otherwise the body must be a valid one.
    let photo_only = send.body.trim().is_empty() && !send.attachment_ids.is_empty();
    let body = if photo_only {
        String::new()
    } else {
        MessageBody::parse(&send.body)
            .map_err(|why| Error::validation("body", why))?
            .as_str()
            .to_string()
    };
    let mut seen = std::collections::HashSet::new();
    let attachment_ids: Vec<Id> = send
        .attachment_ids
        .iter()
        .copied()
        .filter(|id| seen.insert(*id))
        .collect();
    if attachment_ids.len() > MAX_ATTACHMENTS {
        return Err(Error::validation(
            "attachment_ids",
            format!("at most {MAX_ATTACHMENTS} attachments"),
        ));
    }
    // Sorted: the order of mentions means nothing, and history reads them back sorted.
    let mention_ids = store::distinct(send.mention_ids.iter().copied());
    if mention_ids.len() > MAX_MENTIONS {
        return Err(Error::validation(
            "mention_ids",
            format!("at most {MAX_MENTIONS} users"),
        ));
    }
    if let Some(key) = &send.idempotency_key {
        check_key(key)?;
    }
    // Only a keyed send is ever compared with another.
    let key = send.idempotency_key.map(|key| {
        let mut request = serde_json::json!({
            "room": send.room,
            "body": body,
            "reply_to": send.reply_to,
            "attachment_ids": attachment_ids,
        });
        // Only when there are some, so that keys stored before mentions existed still match
        // their retries.
        if !mention_ids.is_empty() {
            request["mention_ids"] = serde_json::json!(mention_ids);
        }
        Keyed {
            key,
            request_hash: sha256_hex(request.to_string().as_bytes()),
        }
    });
    send_group::submit(
        writer,
        SendRequest {
            author,
            room: send.room,
            body,
            reply_to: send.reply_to,
            attachment_ids,
            mention_ids,
            key,
        },
    )
    .await
}

/// Where a history page starts.
pub enum Anchor {
    Latest,
    Before(Id),
    After(Id),
}

/// A page of history, oldest first, with the anchors of the neighbouring pages.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct History {
    pub messages: Vec<Message>,
    pub next_before: Option<Id>,
    pub next_after: Option<Id>,
}

/// The most messages one page returns.
pub const MAX_PAGE: i64 = 100;

/// Reads a page of the room's history for a member.
pub async fn history(db: &Db, user: Id, room: Id, anchor: Anchor, limit: i64) -> Result<History> {
    db.run(move |conn| {
        store::rooms::find_for_member(conn, room, user)?.ok_or_else(Error::room_not_found)?;
        let seq_of = |conn: &mut _, id: Id| -> Result<i64> {
            store::messages::find_in_room(conn, room, id)?
                .map(|m| m.seq)
                .ok_or_else(|| Error::bad_request("invalid_cursor", "no such message in this room"))
        };
        let page = match anchor {
            Anchor::Latest => Page::Latest,
            Anchor::Before(id) => Page::Before(seq_of(conn, id)?),
            Anchor::After(id) => Page::After(seq_of(conn, id)?),
        };
        let rows = store::messages::page(conn, room, page, limit)?;
        let messages = message_views(conn, &rows)?;
        let (first, last) = match (rows.first(), rows.last()) {
            (Some(f), Some(l)) => (f, l),
            _ => {
                return Ok(History {
                    messages: Vec::new(),
                    next_before: None,
                    next_after: None,
                })
            }
        };
        let older = store::messages::exists_beyond(conn, room, first.seq, true)?;
        let newer = store::messages::exists_beyond(conn, room, last.seq, false)?;
        Ok(History {
            next_before: older.then_some(first.id),
            next_after: newer.then_some(last.id),
            messages,
        })
    })
    .await
}

/// In a direct room, a block between the two members stops messages both ways.
pub(crate) fn check_direct_not_blocked(
    conn: &mut DbConnection,
    room: Id,
    author: Id,
) -> Result<()> {
    for stay in store::rooms::current_members(conn, &[room])? {
        if stay.user_id != author && store::social::blocked_either_way(conn, author, stay.user_id)?
        {
            return Err(Error::blocked());
        }
    }
    Ok(())
}

/// A message of a room the caller is a member of: (the caller's stay, the message), or 404.
pub(crate) fn find_for_member(
    conn: &mut DbConnection,
    user: Id,
    room: Id,
    message: Id,
) -> Result<(MembershipRow, MessageRow)> {
    let stay = store::rooms::membership(conn, room, user)?.ok_or_else(Error::room_not_found)?;
    let row = store::messages::find_in_room(conn, room, message)?
        .ok_or_else(|| Error::not_found("message_not_found", "no such message in this room"))?;
    Ok((stay, row))
}

/// A message the caller is about to change (edit, delete, react): the room's kind, the
/// caller's stay, the message. In a direct room a block between the two stops all of it.
pub(crate) fn for_change(
    conn: &mut DbConnection,
    user: Id,
    room: Id,
    message: Id,
) -> Result<(bool, MembershipRow, MessageRow)> {
    let (stay, row) = find_for_member(conn, user, room, message)?;
    let direct = store::rooms::find_for_member(conn, room, user)?
        .is_some_and(|r| r.kind == RoomKind::Direct);
    if direct {
        check_direct_not_blocked(conn, room, user)?;
    }
    Ok((direct, stay, row))
}

/// Edits a message's body (author only). Returns the edited message and its event.
pub async fn edit(writer: &Writer, user: Id, room: Id, message: Id, body: String) -> Result<Sent> {
    let body = MessageBody::parse(&body).map_err(|why| Error::validation("body", why))?;
    writer
        .run(move |batch| {
            let (_, _, row) = for_change(batch.conn(), user, room, message)?;
            if row.author_id != user {
                return Err(Error::not_allowed("only the author may edit a message"));
            }
            if row.deleted_at.is_some() {
                return Err(Error::conflict(
                    "message_deleted",
                    "this message was deleted",
                ));
            }
            let now = Time::now();
            store::messages::edit(batch.conn(), message, body.as_str(), now)?;
            let updated = store::messages::find_in_room(batch.conn(), room, message)?
                .ok_or_else(|| Error::internal(anyhow::anyhow!("edited message vanished")))?;
            let view = message_views(batch.conn(), std::slice::from_ref(&updated))?.remove(0);
            let event = event::append(
                batch,
                &Event::MessageUpdated(view.clone()),
                To::Room(room),
                now,
            )?;
            Ok(Sent {
                message: view,
                event,
            })
        })
        .await
}

/// Deletes a message (its author, or a room owner or admin): it becomes a tombstone.
/// Deleting a tombstone again changes nothing.
/// Its photos go with it (rows in the transaction, files after the commit). Deleting one's own
/// message is always allowed, even after a block.
pub async fn delete(
    writer: &Writer,
    data_dir: &Path,
    user: Id,
    room: Id,
    message: Id,
) -> Result<()> {
    erase(writer, data_dir, move |conn| {
        let (stay, row) = find_for_member(conn, user, room, message)?;
        let direct = store::rooms::find_for_member(conn, room, user)?
            .is_some_and(|r| r.kind == RoomKind::Direct);
        // In a direct room nobody moderates: each deletes only their own messages.
        if row.author_id != user && (direct || stay.role == Role::Member) {
            return Err(Error::not_allowed(
                "only the author (or, in a group room, an owner or admin) may delete a message",
            ));
        }
        Ok(row)
    })
    .await
}

/// Deletes any message, in any room, for a server administrator (the caller has checked that
/// they are one): the same deletion as [`delete`], the same `message.deleted` event to the room.
/// 404 `message_not_found` for an unknown id; a tombstone again changes nothing.
pub async fn delete_as_admin(writer: &Writer, data_dir: &Path, message: Id) -> Result<()> {
    erase(writer, data_dir, move |conn| {
        store::messages::find_many(conn, &[message])?
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found("message_not_found", "no such message"))
    })
    .await
}

/// A deletion: in one writer transaction, `check` finds the message (or refuses), then it
/// becomes a tombstone, its attachments' rows go, and `message.deleted` is appended to its room;
/// the attachments' files are removed after the commit. A tombstone is left as it is.
async fn erase<F>(writer: &Writer, data_dir: &Path, check: F) -> Result<()>
where
    F: FnOnce(&mut DbConnection) -> Result<MessageRow> + std::marker::Send + 'static,
{
    let files = writer
        .run(move |batch| {
            let row = check(batch.conn())?;
            if row.deleted_at.is_some() {
                return Ok(Vec::new());
            }
            let (room, message) = (row.room_id, row.id);
            let now = Time::now();
            store::messages::tombstone(batch.conn(), message, now)?;
            let files = store::attachments::detach_and_delete(batch.conn(), message)?;
            let gone = store::messages::find_in_room(batch.conn(), room, message)?
                .ok_or_else(|| Error::internal(anyhow::anyhow!("deleted message vanished")))?;
            let view = Message::from(&gone);
            event::append(batch, &Event::MessageDeleted(view), To::Room(room), now)?;
            Ok(files)
        })
        .await?;
    for id in files {
        crate::core::attachments::remove_files(data_dir, id);
    }
    Ok(())
}
