//! A user's data export (`GET /api/v1/me/export`): what they are (profile, friends, blocks,
//! rooms) and what they wrote (their messages and uploads), never others' messages. The server
//! streams it: [`start`] claims the per-user clock and reads the small parts, then
//! [`messages_page`] and [`uploads_page`] read the rest a page at a time, so that the document
//! is never whole in memory. The format is in docs/api.md ("Exporting one's data").

use std::time::Duration;

use serde::Serialize;

use crate::core::views::{Attachment, Friend, User};
use crate::domain::{Id, Role, RoomKind, Time};
use crate::error::{Class, Error, Result};
use crate::store::{self, Db};

/// The version of the export's format, written at its top.
pub const FORMAT: &str = "hubbub-export/1";

/// Messages (or uploads) read per page.
pub const PAGE: i64 = 200;

/// A room as the export lists it.
#[derive(Debug, Serialize)]
pub struct ExportRoom {
    pub id: Id,
    pub name: Option<String>,
    pub kind: RoomKind,
    pub role: Role,
    /// When the user's stay began (`null` once that event is past retention).
    pub joined_at: Option<Time>,
}

/// An uploaded file's metadata, with where to fetch it.
#[derive(Debug, Serialize)]
pub struct ExportAttachment {
    #[serde(flatten)]
    pub attachment: Attachment,
    pub url: String,
    pub thumbnail_url: String,
    /// The message that carries it (`null`: unattached, or the profile picture).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Id>,
    pub created_at: Time,
}

/// One of the user's messages.
#[derive(Debug, Serialize)]
pub struct ExportMessage {
    pub id: Id,
    pub room_id: Id,
    pub created_at: Time,
    pub edited_at: Option<Time>,
    pub reply_to: Option<Id>,
    pub body: String,
    pub attachments: Vec<ExportAttachment>,
}

/// The part of an export read before the pages.
#[derive(Debug, Serialize)]
pub struct Head {
    pub format: &'static str,
    pub exported_at: Time,
    pub profile: User,
    pub friends: Vec<Friend>,
    pub blocks: Vec<Friend>,
    pub rooms: Vec<ExportRoom>,
}

fn attachment(row: &store::attachments::AttachmentRow) -> ExportAttachment {
    ExportAttachment {
        attachment: Attachment::from(row),
        url: format!("/api/v1/attachments/{}", row.id),
        thumbnail_url: format!("/api/v1/attachments/{}/thumbnail", row.id),
        message_id: row.message_id,
        created_at: row.created_at,
    }
}

/// Starts an export: claims the user's export clock (429 `rate_limited` with `Retry-After` if
/// their last one began less than `interval` ago, on any node) and reads the head.
pub async fn start(db: &Db, user: Id, interval: Duration) -> Result<Head> {
    let head = db
        .run(move |conn| {
            let now = Time::now();
            let span = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
            let cutoff = Time(now.0.checked_sub_signed(span).unwrap_or(now.0));
            if let Some(last) = store::write_tx(conn, |conn| {
                store::export::claim_export(conn, user, now, cutoff)
            })? {
                let next = last.0.checked_add_signed(span).unwrap_or(last.0);
                let wait = (next - now.0).num_seconds().max(1) as u64;
                return Err(Error::busy(
                    Class::TooMany,
                    "rate_limited",
                    format!("one export per {} s; retry in {wait} s", interval.as_secs()),
                    wait,
                ));
            }
            let profile = store::users::find(conn, user)?
                .map(|u| User::from(&u))
                .ok_or_else(Error::unauthenticated)?;
            let rooms = store::export::rooms_of(conn, user)?
                .into_iter()
                .map(|r| ExportRoom {
                    id: r.id,
                    name: r.name,
                    kind: r.kind,
                    role: r.role,
                    joined_at: r.joined_at,
                })
                .collect();
            Ok((now, profile, rooms))
        })
        .await?;
    let (exported_at, profile, rooms) = head;
    Ok(Head {
        format: FORMAT,
        exported_at,
        profile,
        friends: crate::core::social::friends(db, user).await?,
        blocks: crate::core::social::blocks(db, user).await?,
        rooms,
    })
}

/// The user's messages after position `after` (start at 0), up to [`PAGE`], and the position
/// to read on from (`None`: that was the last page). Deleted messages are left out.
pub async fn messages_page(
    db: &Db,
    user: Id,
    after: i64,
) -> Result<(Vec<ExportMessage>, Option<i64>)> {
    db.run(move |conn| {
        let rows = store::export::messages_after(conn, user, after, PAGE)?;
        let next = (rows.len() as i64 == PAGE)
            .then(|| rows.last().map(|r| r.seq))
            .flatten();
        let live: Vec<_> = rows
            .into_iter()
            .filter(|r| r.deleted_at.is_none())
            .collect();
        let ids: Vec<Id> = live.iter().map(|r| r.id).collect();
        let files = store::attachments::of_messages(conn, &ids)?;
        let messages = live
            .into_iter()
            .map(|r| ExportMessage {
                attachments: files
                    .iter()
                    .filter(|f| f.message_id == Some(r.id))
                    .map(attachment)
                    .collect(),
                id: r.id,
                room_id: r.room_id,
                created_at: r.created_at,
                edited_at: r.edited_at,
                reply_to: r.reply_to,
                body: r.body,
            })
            .collect();
        Ok((messages, next))
    })
    .await
}

/// The user's uploads after id `after`, up to [`PAGE`], and the id to read on from.
pub async fn uploads_page(
    db: &Db,
    user: Id,
    after: Option<Id>,
) -> Result<(Vec<ExportAttachment>, Option<Id>)> {
    db.run(move |conn| {
        let rows = store::export::uploads_after(conn, user, after, PAGE)?;
        let next = (rows.len() as i64 == PAGE)
            .then(|| rows.last().map(|r| r.id))
            .flatten();
        Ok((rows.iter().map(attachment).collect(), next))
    })
    .await
}
