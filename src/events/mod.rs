//! The event log: what kinds of events exist, how one is appended (inside a writer batch), and
//! the frame a socket receives for it. Every change a client can see is an event row first.

pub mod writer;

use serde::Serialize;

use crate::domain::{Id, Time};
use crate::error::Result;
use crate::store::{self, events::EventRow};

pub use writer::{Batch, Writer};

/// The kinds of events. The names are part of the API (`docs/events.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MessageCreated,
    MessageUpdated,
    MessageDeleted,
    ReactionAdded,
    ReactionRemoved,
    RoomCreated,
    RoomUpdated,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    ReadUpdated,
    FriendRequested,
    FriendAccepted,
    FriendDeclined,
    FriendCancelled,
    FriendRemoved,
    UserUpdated,
    /// Internal: a session or token ended; sockets bound to it close. Never sent to clients.
    CredentialRevoked,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::MessageCreated => "message.created",
            Kind::MessageUpdated => "message.updated",
            Kind::MessageDeleted => "message.deleted",
            Kind::ReactionAdded => "reaction.added",
            Kind::ReactionRemoved => "reaction.removed",
            Kind::RoomCreated => "room.created",
            Kind::RoomUpdated => "room.updated",
            Kind::MemberJoined => "member.joined",
            Kind::MemberLeft => "member.left",
            Kind::MemberUpdated => "member.updated",
            Kind::ReadUpdated => "read.updated",
            Kind::FriendRequested => "friend.requested",
            Kind::FriendAccepted => "friend.accepted",
            Kind::FriendDeclined => "friend.declined",
            Kind::FriendCancelled => "friend.cancelled",
            Kind::FriendRemoved => "friend.removed",
            Kind::UserUpdated => "user.updated",
            Kind::CredentialRevoked => "credential.revoked",
        }
    }

    /// Every kind.
    pub const ALL: [Kind; 18] = [
        Kind::MessageCreated,
        Kind::MessageUpdated,
        Kind::MessageDeleted,
        Kind::ReactionAdded,
        Kind::ReactionRemoved,
        Kind::RoomCreated,
        Kind::RoomUpdated,
        Kind::MemberJoined,
        Kind::MemberLeft,
        Kind::MemberUpdated,
        Kind::ReadUpdated,
        Kind::FriendRequested,
        Kind::FriendAccepted,
        Kind::FriendDeclined,
        Kind::FriendCancelled,
        Kind::FriendRemoved,
        Kind::UserUpdated,
        Kind::CredentialRevoked,
    ];

    /// The kind a stored name stands for.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether clients receive events stored under `name` (internal kinds only drive the
    /// server; a kind this node doesn't know, from a newer node, is passed on).
    pub fn is_public(name: &str) -> bool {
        Kind::parse(name) != Some(Kind::CredentialRevoked)
    }
}

/// Who receives an event: the members of a room (during their stay), or listed users.
#[derive(Debug, Clone, Copy)]
pub enum To<'a> {
    Room(Id),
    Users(&'a [Id]),
    /// Nobody: an internal event.
    Server,
}

/// Appends an event in the batch's transaction and returns its id (the client's cursor).
pub fn append(
    batch: &mut Batch<'_>,
    kind: Kind,
    to: To<'_>,
    data: &impl Serialize,
    at: Time,
) -> Result<i64> {
    let payload = serde_json::to_string(data)?;
    let room_id = match to {
        To::Room(room) => Some(room),
        To::Users(_) | To::Server => None,
    };
    let id = store::events::insert(
        batch.conn(),
        &store::events::NewEvent {
            kind: kind.as_str(),
            room_id,
            payload: &payload,
            created_at: at,
        },
    )?;
    if let To::Users(users) = to {
        let mut users = users.to_vec();
        users.sort();
        users.dedup();
        store::events::insert_audience(batch.conn(), id, &users)?;
    }
    batch.appended(id);
    Ok(id)
}

/// A cursor as clients see it: opaque text (today the event id in decimal).
pub fn cursor(id: i64) -> String {
    id.to_string()
}

/// Reads a cursor a client sent back.
pub fn parse_cursor(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id >= 0)
}

/// The socket frame of an event row, serialized once however many sockets receive it.
/// The payload is already JSON and goes in as it is (a `RawValue`: not parsed again).
pub fn frame(row: &EventRow) -> String {
    #[derive(serde::Serialize)]
    struct Frame<'a> {
        r#type: &'static str,
        id: String,
        event: &'a str,
        room_id: Option<Id>,
        created_at: Time,
        data: &'a serde_json::value::RawValue,
    }
    // Payloads are written by `append` from a Serialize value, so they are JSON; a row that
    // isn't (a hand-edited database) is sent with `null` data rather than a broken frame.
    let null = serde_json::value::RawValue::NULL;
    let data = serde_json::from_str::<&serde_json::value::RawValue>(&row.payload).unwrap_or(null);
    let frame = Frame {
        r#type: "event",
        id: cursor(row.id),
        event: &row.kind,
        room_id: row.room_id,
        created_at: row.created_at,
        data,
    };
    // Strings, an id, a time and already-valid JSON: serializing them has no way to fail.
    serde_json::to_string(&frame).expect("a frame serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_valid_json_with_the_payload_inside() {
        let row = EventRow {
            id: 42,
            kind: "message.created".into(),
            room_id: Some(Id::new()),
            payload: r#"{"body":"hi \"there\""}"#.into(),
            created_at: Time::now(),
        };
        let v: serde_json::Value = serde_json::from_str(&frame(&row)).unwrap();
        assert_eq!(v["type"], "event");
        assert_eq!(v["id"], "42");
        assert_eq!(v["event"], "message.created");
        assert_eq!(v["data"]["body"], "hi \"there\"");
    }

    #[test]
    fn every_kind_parses_back_from_its_name_and_only_revocations_are_internal() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                Kind::is_public(kind.as_str()),
                kind != Kind::CredentialRevoked
            );
        }
        assert_eq!(Kind::parse("message.exploded"), None);
        // The OpenAPI document names a schema for every kind clients see.
        let public = Kind::ALL
            .iter()
            .filter(|k| **k != Kind::CredentialRevoked)
            .count();
        assert_eq!(crate::server::api::openapi::EVENT_SCHEMAS.len(), public);
        // ALL is written by hand: every documented kind must be in it.
        for (name, _) in crate::server::api::openapi::EVENT_SCHEMAS {
            assert!(
                Kind::parse(name).is_some(),
                "{name} is missing from Kind::ALL"
            );
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        assert_eq!(parse_cursor(&cursor(7)), Some(7));
        assert_eq!(parse_cursor("-1"), None);
        assert_eq!(parse_cursor("abc"), None);
    }
}
