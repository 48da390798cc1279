//! The shapes clients see, in REST responses and in event payloads alike.

use serde::Serialize;

use crate::domain::{Id, Time};
use crate::store::messages::MessageRow;
use crate::store::rooms::RoomRow;
use crate::store::users::UserRow;

/// A user as anyone may see them.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: Id,
    pub username: String,
    pub display_name: String,
    pub created_at: Time,
}

impl From<&UserRow> for User {
    fn from(row: &UserRow) -> User {
        User {
            id: row.id,
            username: row.username.clone(),
            display_name: row.display_name.clone(),
            created_at: row.created_at,
        }
    }
}

/// A message. A deleted one keeps its place with `body: null` (a tombstone).
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: Id,
    pub room_id: Id,
    pub author_id: Id,
    pub body: Option<String>,
    pub reply_to: Option<Id>,
    pub created_at: Time,
    pub edited_at: Option<Time>,
    pub deleted_at: Option<Time>,
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
        }
    }
}

/// A room with its current members and its newest message.
#[derive(Debug, Clone, Serialize)]
pub struct Room {
    pub id: Id,
    /// `group` or `direct`.
    pub kind: String,
    /// Null for a direct room: clients show the other member's name.
    pub name: Option<String>,
    pub created_by: Id,
    pub created_at: Time,
    pub members: Vec<User>,
    pub last_message: Option<Message>,
}

impl Room {
    pub fn new(row: &RoomRow, members: Vec<User>, last_message: Option<Message>) -> Room {
        Room {
            id: row.id,
            kind: row.kind.clone(),
            name: row.name.clone(),
            created_by: row.created_by,
            created_at: row.created_at,
            members,
            last_message,
        }
    }
}
