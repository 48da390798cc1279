//! The shapes clients see, in REST responses and in event payloads alike.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::core::attachments::Attachment;
use crate::domain::{Id, NotifyLevel, RequestStatus, Role, RoomKind, Time, UserKind};
use crate::error::Result;
use crate::store::messages::MessageRow;
use crate::store::rooms::RoomRow;
use crate::store::users::UserRow;
use crate::store::{self, DbConnection};

/// A user as anyone may see them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Id,
    pub username: String,
    pub display_name: String,
    pub kind: UserKind,
    /// The user's picture (`GET /api/v1/attachments/{id}`), if any.
    pub avatar_attachment_id: Option<Id>,
    pub created_at: Time,
    /// `true` once the account is deleted (absent otherwise): the name reads "Deleted user",
    /// and clients show every message by this author as deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl From<&UserRow> for User {
    fn from(row: &UserRow) -> User {
        User {
            id: row.id,
            username: row.username.clone(),
            display_name: row.display_name.clone(),
            kind: row.kind,
            avatar_attachment_id: row.avatar_attachment_id,
            created_at: row.created_at,
            deleted: row.deleted_at.is_some(),
        }
    }
}

/// A message. A deleted one keeps its place with `body: null` (a tombstone).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub id: Id,
    pub room_id: Id,
    pub author_id: Id,
    pub body: Option<String>,
    pub reply_to: Option<Id>,
    pub created_at: Time,
    pub edited_at: Option<Time>,
    pub deleted_at: Option<Time>,
    pub attachments: Vec<Attachment>,
    pub reactions: Vec<Reaction>,
    /// The users the message mentions, sorted by id (`[]` if none, and for a tombstone). An
    /// outcome stored before mentions existed reads back with `[]`.
    #[serde(default)]
    #[schema(required = true)]
    pub mention_ids: Vec<Id>,
}

/// One emoji on a message: how many reacted with it, and who (oldest first).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Reaction {
    pub emoji: String,
    pub count: usize,
    pub user_ids: Vec<Id>,
}

impl From<&MessageRow> for Message {
    fn from(row: &MessageRow) -> Message {
        Message {
            id: row.id,
            room_id: row.room_id,
            author_id: row.author_id,
            body: row.deleted_at.is_none().then(|| row.body.clone()),
            reply_to: row.reply_to,
            created_at: row.created_at,
            edited_at: row.edited_at,
            deleted_at: row.deleted_at,
            attachments: Vec::new(),
            reactions: Vec::new(),
            mention_ids: Vec::new(),
        }
    }
}

impl Message {
    /// Attaches reactions given as (emoji, user) pairs, grouped by emoji in first-use order.
    pub fn with_reactions<'a>(mut self, pairs: impl IntoIterator<Item = (&'a str, Id)>) -> Message {
        for (emoji, user) in pairs {
            match self.reactions.iter_mut().find(|r| r.emoji == emoji) {
                Some(r) => {
                    r.count += 1;
                    r.user_ids.push(user);
                }
                None => self.reactions.push(Reaction {
                    emoji: emoji.to_string(),
                    count: 1,
                    user_ids: vec![user],
                }),
            }
        }
        self
    }
}

/// A member of a room: the user and their role (`owner`, `admin` or `member`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Member {
    #[serde(flatten)]
    pub user: User,
    pub role: Role,
}

/// A room with its current members and its newest message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Room {
    pub id: Id,
    pub kind: RoomKind,
    /// Null for a direct room: clients show the other member's name.
    pub name: Option<String>,
    pub created_by: Id,
    pub created_at: Time,
    pub members: Vec<Member>,
    pub last_message: Option<Message>,
    /// For the caller only (absent in events): messages by others after their read marker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unread_count: Option<i64>,
    /// For the caller only (absent in events): mentions of them in others' messages after
    /// their read marker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mention_count: Option<i64>,
    /// For the caller only (absent in events): their notification setting for the room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Notifications>,
}

/// A member's notification setting for a room. `none`, or a `muted_until` still ahead,
/// silences the room's pushes, mentions included; `mentions` lets only mentions through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Notifications {
    pub level: NotifyLevel,
    /// Silent until then (RFC 3339, UTC), or null.
    pub muted_until: Option<Time>,
}

impl Default for Notifications {
    /// Every room starts here: everything notifies, nothing is muted.
    fn default() -> Notifications {
        Notifications {
            level: NotifyLevel::All,
            muted_until: None,
        }
    }
}

impl Room {
    pub fn new(row: &RoomRow, members: Vec<Member>, last_message: Option<Message>) -> Room {
        Room {
            id: row.id,
            kind: row.kind,
            name: row.name.clone(),
            created_by: row.created_by,
            created_at: row.created_at,
            members,
            last_message,
            unread_count: None,
            mention_count: None,
            notifications: None,
        }
    }
}

/// A friend: the user and when the friendship began.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Friend {
    pub user: User,
    pub since: Time,
    /// In the friend list: whether they are online (false when they don't share their
    /// presence). Null in the block list.
    #[serde(default)]
    #[schema(required = true)]
    pub online: Option<bool>,
    /// In the friend list: when they came online (online) or their last stream ended
    /// (offline); null if never seen or not shared, and in the block list.
    #[serde(default)]
    #[schema(required = true)]
    pub last_seen_at: Option<Time>,
}

/// A pending (or just accepted) friend request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FriendRequest {
    pub id: Id,
    pub from: User,
    pub to: User,
    /// `pending`, or `accepted` when the request answered one the other user had already sent.
    pub status: RequestStatus,
    pub created_at: Time,
}

/// Message views with their reactions, attachments and mentions: one query each for all of
/// them.
pub(crate) fn message_views(conn: &mut DbConnection, rows: &[MessageRow]) -> Result<Vec<Message>> {
    let ids: Vec<Id> = rows.iter().map(|r| r.id).collect();
    let reactions = store::messages::reactions_on(conn, &ids)?;
    let attachments = store::attachments::of_messages(conn, &ids)?;
    let mut mentions: std::collections::HashMap<Id, Vec<Id>> = std::collections::HashMap::new();
    for (message, user) in store::notifications::mentions_on(conn, &ids)? {
        mentions.entry(message).or_default().push(user);
    }
    Ok(rows
        .iter()
        .map(|row| {
            let mine = reactions
                .iter()
                .filter(|(m, _, _)| *m == row.id)
                .map(|(_, emoji, user)| (emoji.as_str(), *user));
            let mut message = Message::from(row).with_reactions(mine);
            if row.deleted_at.is_none() {
                message.attachments = attachments
                    .iter()
                    .filter(|a| a.message_id == Some(row.id))
                    .map(Attachment::from)
                    .collect();
                message.mention_ids = mentions.remove(&row.id).unwrap_or_default();
                message.mention_ids.sort();
            }
            message
        })
        .collect())
}
