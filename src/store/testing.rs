//! Fixtures for unit tests that need rows in a real (in-memory SQLite) database.

use super::rooms::{MembershipRow, RoomRow};
use super::users::UserRow;
use super::{DbConnection, Manager};
use crate::domain::{Id, Role, RoomKind, Time, UserKind};

/// A migrated in-memory SQLite database.
pub fn database() -> DbConnection {
    let mut conn = Manager::new(":memory:").open().expect("open :memory:");
    super::run_migrations(&mut conn).expect("migrate");
    conn
}

pub fn user(conn: &mut DbConnection, name: &str) -> Id {
    let id = Id::new();
    super::users::insert(
        conn,
        &UserRow {
            id,
            username: name.into(),
            display_name: name.into(),
            password_hash: String::new(),
            kind: UserKind::User,
            owner_id: None,
            avatar_attachment_id: None,
            created_at: Time::now(),
            admin: false,
            deactivated_at: None,
            deleted_at: None,
            last_export_at: None,
        },
    )
    .expect("insert user");
    id
}

/// A group room created by `creator`, with no members yet.
pub fn room(conn: &mut DbConnection, creator: Id) -> Id {
    let id = Id::new();
    super::rooms::insert(
        conn,
        &RoomRow {
            id,
            kind: RoomKind::Group,
            name: Some("room".into()),
            dm_key: None,
            created_by: creator,
            created_at: Time::now(),
            last_message_id: None,
            last_activity_at: Time::now(),
        },
    )
    .expect("insert room");
    id
}

/// A stay of `user` in `room` from event `joined` to event `left` (inclusive).
pub fn stay(conn: &mut DbConnection, room: Id, user: Id, joined: i64, left: Option<i64>) {
    super::rooms::insert_memberships(
        conn,
        &[MembershipRow {
            room_id: room,
            user_id: user,
            role: Role::Member,
            joined_event_id: joined,
            left_event_id: left,
            last_read_seq: 0,
        }],
    )
    .expect("insert stay");
}
