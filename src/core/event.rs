//! The event model: every kind of event and the type of its payload, declared once, in
//! [`model!`] below. Core appends [`Event`]s; the tailer reads back the ones that change what a
//! node holds; the OpenAPI document names each kind's payload schema from [`Kind::schema`].
//!
//! The log stores an event as its kind's name and its payload's JSON, side by side (`events`
//! keeps them without knowing the kinds); a frame sends them as `{"event": name, "data":
//! payload}`, which is how this enum is tagged.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::core::views::{FriendRequest, Message, Room, User};
use crate::domain::{Id, NotifyLevel, Role, Time};
use crate::error::{Error, Result};
use crate::events::{self, Batch, To};

/// Declares [`Kind`] (the names) and [`Event`] (the payloads) from one list.
macro_rules! model {
    ($($(#[$doc:meta])* $variant:ident = $name:literal ($payload:ident),)+) => {
        /// The kinds of events. The names are part of the API (`docs/events.md`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Kind {
            $($(#[$doc])* $variant,)+
        }

        /// An event: its kind and its payload.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(tag = "event", content = "data")]
        pub enum Event {
            $($(#[$doc])* #[serde(rename = $name)] $variant($payload),)+
        }

        impl Kind {
            /// Every kind.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$variant => $name,)+
                }
            }

            /// The name of its payload's schema in the OpenAPI document.
            pub fn schema(self) -> &'static str {
                match self {
                    $(Kind::$variant => stringify!($payload),)+
                }
            }
        }

        impl Event {
            pub fn kind(&self) -> Kind {
                match self {
                    $(Event::$variant(_) => Kind::$variant,)+
                }
            }

            /// The payload as stored: JSON.
            pub fn payload(&self) -> serde_json::Result<String> {
                match self {
                    $(Event::$variant(data) => serde_json::to_string(data),)+
                }
            }

            /// The event a stored kind and payload stand for.
            pub fn parse(kind: Kind, payload: &str) -> serde_json::Result<Event> {
                match kind {
                    $(Kind::$variant => serde_json::from_str(payload).map(Event::$variant),)+
                }
            }
        }
    };
}

model! {
    MessageCreated = "message.created" (Message),
    MessageUpdated = "message.updated" (Message),
    /// The message as a tombstone (`body: null`).
    MessageDeleted = "message.deleted" (Message),
    ReactionAdded = "reaction.added" (ReactionEvent),
    ReactionRemoved = "reaction.removed" (ReactionEvent),
    RoomCreated = "room.created" (Room),
    RoomUpdated = "room.updated" (Room),
    MemberJoined = "member.joined" (MemberEvent),
    MemberLeft = "member.left" (MemberEvent),
    MemberUpdated = "member.updated" (MemberEvent),
    ReadUpdated = "read.updated" (ReadMarker),
    FriendRequested = "friend.requested" (FriendRequest),
    FriendAccepted = "friend.accepted" (Pair),
    FriendDeclined = "friend.declined" (RequestGone),
    FriendCancelled = "friend.cancelled" (RequestGone),
    FriendRemoved = "friend.removed" (Pair),
    UserUpdated = "user.updated" (UserUpdated),
    /// A member changed their notification setting for a room: to their own devices only.
    NotificationsUpdated = "notifications.updated" (NotificationSettings),
    /// Short-lived: a member started or stopped typing in a room (`core::typing`).
    TypingUpdated = "typing.updated" (TypingEvent),
    /// Short-lived: a user came online or went offline, to their friends and direct-room
    /// partners (`core::presence`).
    PresenceUpdated = "presence.updated" (PresenceEvent),
    /// Internal: a session or token ended; sockets bound to it close. Never sent to clients
    /// (it is addressed to nobody).
    CredentialRevoked = "credential.revoked" (Revoked),
}

impl Kind {
    /// The kind a stored name stands for (`None`: a kind from a newer node).
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == name)
    }

    /// Whether clients receive events of this kind (internal ones only drive the server).
    pub fn is_public(self) -> bool {
        self != Kind::CredentialRevoked
    }

    /// Whether events of this kind are short-lived: appended with an expiry
    /// ([`append_expiring`]), skipped by replay once expired, pruned early by maintenance.
    pub fn is_short_lived(self) -> bool {
        matches!(self, Kind::TypingUpdated | Kind::PresenceUpdated)
    }
}

/// Appends `event` in the batch's transaction and returns its id (the client's cursor).
pub fn append(batch: &mut Batch<'_>, event: &Event, to: To<'_>, at: Time) -> Result<i64> {
    let kind = event.kind();
    if kind.is_short_lived() {
        return Err(Error::internal(anyhow::anyhow!(
            "{} is short-lived: append it with an expiry",
            kind.as_str()
        )));
    }
    let payload = event.payload()?;
    events::append(batch, kind.as_str(), to, &payload, at, None)
}

/// Appends a short-lived `event` that stops mattering at `expires`: live sockets get it like
/// any event, a replay after `expires` skips it, and maintenance deletes it soon after.
pub fn append_expiring(
    batch: &mut Batch<'_>,
    event: &Event,
    to: To<'_>,
    at: Time,
    expires: Time,
) -> Result<i64> {
    let kind = event.kind();
    if !kind.is_short_lived() {
        return Err(Error::internal(anyhow::anyhow!(
            "{} is permanent: it takes no expiry",
            kind.as_str()
        )));
    }
    let payload = event.payload()?;
    events::append(batch, kind.as_str(), to, &payload, at, Some(expires))
}

/// The payload of the short-lived `typing.updated`: `user_id` is (`typing: true`) or stopped
/// being (`false`) typing in `room_id`. Clients show it until `expires_at`, until a `false`,
/// or until a `message.created` from that user in that room, whichever comes first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TypingEvent {
    pub room_id: Id,
    pub user_id: Id,
    pub typing: bool,
    /// When this event stops mattering (RFC 3339, UTC): a client that heard nothing newer
    /// stops showing the user as typing then. Replay skips the event after it.
    pub expires_at: Time,
}

/// The payload of the short-lived `presence.updated`: `user_id` is now `online` or not.
/// `last_seen_at`: when they came online (online), when their last stream ended (offline), or
/// null when they stopped sharing their presence.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PresenceEvent {
    pub user_id: Id,
    pub online: bool,
    pub last_seen_at: Option<Time>,
}

/// The payload of `reaction.added` and `reaction.removed`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReactionEvent {
    pub message_id: Id,
    pub room_id: Id,
    pub user_id: Id,
    pub emoji: String,
}

/// The payload of `member.joined`, `member.left` and `member.updated`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberEvent {
    pub room_id: Id,
    pub user_id: Id,
    pub user: User,
    pub role: Role,
    /// Who added, removed or changed the member (absent when they left by themselves).
    pub by: Option<Id>,
}

/// The caller's read position in a room: the payload of `read.updated`, and the answer to
/// moving it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReadMarker {
    pub room_id: Id,
    pub message_id: Id,
    pub unread_count: i64,
    /// Mentions of the caller after the marker (`read.updated` events written before
    /// mentions existed read back with 0).
    #[serde(default)]
    #[schema(required = true)]
    pub mention_count: i64,
}

/// A member's notification setting for a room: the payload of `notifications.updated`, and
/// the answer to setting it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NotificationSettings {
    pub room_id: Id,
    pub level: NotifyLevel,
    /// Silent until then (RFC 3339, UTC), or null.
    pub muted_until: Option<Time>,
}

/// The payload of `friend.accepted` and `friend.removed`: the two users.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Pair {
    pub user_ids: [Id; 2],
    pub request_id: Option<Id>,
}

/// The payload of `friend.declined` and `friend.cancelled`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RequestGone {
    pub request_id: Id,
    pub from_user_id: Id,
    pub to_user_id: Id,
}

/// The payload of `user.updated`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserUpdated {
    pub user: User,
}

/// The payload of the internal `credential.revoked`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Revoked {
    pub credential_id: Id,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: Id::new(),
            username: "ada".into(),
            display_name: "Ada".into(),
            kind: crate::domain::UserKind::User,
            avatar_attachment_id: None,
            created_at: Time::now(),
            deleted: false,
        }
    }

    #[test]
    fn every_kind_parses_back_from_its_name_and_only_revocations_are_internal() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(*kind));
            assert_eq!(kind.is_public(), *kind != Kind::CredentialRevoked);
            assert_eq!(
                kind.is_short_lived(),
                matches!(kind, Kind::TypingUpdated | Kind::PresenceUpdated)
            );
        }
        assert_eq!(Kind::parse("message.exploded"), None);
    }

    #[test]
    fn a_stored_event_reads_back_as_the_same_kind_and_payload() {
        let joined = Event::MemberJoined(MemberEvent {
            room_id: Id::new(),
            user_id: Id::new(),
            user: user(),
            role: Role::Member,
            by: None,
        });
        let stored = joined.payload().unwrap();
        let back = Event::parse(joined.kind(), &stored).unwrap();
        assert_eq!(back.payload().unwrap(), stored);
        assert!(matches!(back, Event::MemberJoined(m) if m.role == Role::Member));
        // The serde tagging is the frame's shape: `event` beside `data`.
        let tagged = serde_json::to_value(&joined).unwrap();
        assert_eq!(tagged["event"], "member.joined");
        assert_eq!(tagged["data"]["role"], "member");
        // A payload of another shape is an error, not a default.
        assert!(Event::parse(Kind::MemberLeft, r#"{"credential_id":null}"#).is_err());
    }
}
