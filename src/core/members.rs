//! The life of a room: renaming, adding and removing members, leaving, roles, read markers.
//!
//! Roles: the `owner` may do everything, including naming other owners and admins; an `admin`
//! may rename the room, add members and remove plain members; a `member` may leave. A room
//! always keeps an owner while it has members: the last owner hands over before leaving.
//! Direct rooms have exactly their two members: no renaming, adding or leaving.

pub use crate::core::event::ReadMarker;
use crate::core::event::{self, Event, MemberEvent};
use crate::core::rooms::load;
use crate::core::views::{Room, User};
use crate::domain::{Id, Role, RoomKind, RoomName, Time};
use crate::error::{Error, Result};
use crate::events::{Batch, To, Writer};
use crate::store::{self, rooms::MembershipRow, rooms::RoomRow};

/// The caller's room and stay, or 404.
fn room_of(batch: &mut Batch<'_>, user: Id, room: Id) -> Result<(RoomRow, MembershipRow)> {
    let row = store::rooms::find_for_member(batch.conn(), room, user)?
        .ok_or_else(Error::room_not_found)?;
    let stay =
        store::rooms::membership(batch.conn(), room, user)?.ok_or_else(Error::room_not_found)?;
    Ok((row, stay))
}

fn group_only(row: &RoomRow) -> Result<()> {
    if row.kind == RoomKind::Direct {
        return Err(Error::conflict(
            "direct_room",
            "a direct room always has exactly its two members and no name",
        ));
    }
    Ok(())
}

/// Renames a group room (owner or admin). Returns the room and the `room.updated` event id.
pub async fn rename(writer: &Writer, user: Id, room: Id, name: String) -> Result<(Room, i64)> {
    let name = RoomName::parse(&name).map_err(|why| Error::validation("name", why))?;
    writer
        .run(move |batch| {
            let (row, stay) = room_of(batch, user, room)?;
            group_only(&row)?;
            if stay.role.rank() < Role::Admin.rank() {
                return Err(Error::not_allowed(
                    "only owners and admins may rename the room",
                ));
            }
            store::rooms::rename(batch.conn(), room, &name.into_inner())?;
            let row = store::rooms::find_for_member(batch.conn(), room, user)?
                .ok_or_else(Error::room_not_found)?;
            let view = load(batch.conn(), row, None)?;
            let event = event::append(
                batch,
                &Event::RoomUpdated(view),
                To::Room(room),
                Time::now(),
            )?;
            let row = store_row(batch, room, user)?;
            let mine = load(batch.conn(), row, Some(user))?;
            Ok((mine, event))
        })
        .await
}

fn store_row(batch: &mut Batch<'_>, room: Id, user: Id) -> Result<RoomRow> {
    store::rooms::find_for_member(batch.conn(), room, user)?.ok_or_else(Error::room_not_found)
}

/// Adds a user to a group room (owner or admin). `None` when they were already a member.
pub async fn add(writer: &Writer, user: Id, room: Id, new_member: Id) -> Result<Option<i64>> {
    writer
        .run(move |batch| {
            let (row, stay) = room_of(batch, user, room)?;
            group_only(&row)?;
            if stay.role.rank() < Role::Admin.rank() {
                return Err(Error::not_allowed("only owners and admins may add members"));
            }
            let added = store::users::find(batch.conn(), new_member)?
                .filter(|u| u.deleted_at.is_none())
                .ok_or_else(|| Error::not_found("user_not_found", "no such user"))?;
            if store::rooms::membership(batch.conn(), room, new_member)?.is_some() {
                return Ok(None);
            }
            let payload = MemberEvent {
                room_id: room,
                user_id: new_member,
                user: User::from(&added),
                role: Role::Member,
                by: Some(user),
            };
            let event = event::append(
                batch,
                &Event::MemberJoined(payload),
                To::Room(room),
                Time::now(),
            )?;
            store::rooms::insert_memberships(
                batch.conn(),
                &[MembershipRow {
                    room_id: room,
                    user_id: new_member,
                    role: Role::Member,
                    joined_event_id: event,
                    left_event_id: None,
                    last_read_seq: event,
                }],
            )?;
            Ok(Some(event))
        })
        .await
}

/// Removes `member` from the room, or lets the caller leave (`member == user`).
pub async fn remove(writer: &Writer, user: Id, room: Id, member: Id) -> Result<i64> {
    writer
        .run(move |batch| {
            let (row, stay) = room_of(batch, user, room)?;
            group_only(&row)?;
            let target = if member == user {
                stay.clone()
            } else {
                store::rooms::membership(batch.conn(), room, member)?.ok_or_else(|| {
                    Error::not_found("member_not_found", "that user is not a member")
                })?
            };
            if member != user && stay.role.rank() <= target.role.rank() {
                return Err(Error::not_allowed(
                    "owners may remove admins and members, admins may remove members",
                ));
            }
            if target.role == Role::Owner
                && store::rooms::count_role(batch.conn(), room, Role::Owner)? == 1
            {
                let others = store::rooms::current_members(batch.conn(), &[room])?.len() > 1;
                if others {
                    return Err(Error::conflict(
                        "last_owner",
                        "the last owner must make someone else owner before leaving",
                    ));
                }
            }
            let left = store::users::find(batch.conn(), member)?
                .ok_or_else(|| Error::not_found("user_not_found", "no such user"))?;
            let payload = MemberEvent {
                room_id: room,
                user_id: member,
                user: User::from(&left),
                role: target.role,
                by: (member != user).then_some(user),
            };
            let event = event::append(
                batch,
                &Event::MemberLeft(payload),
                To::Room(room),
                Time::now(),
            )?;
            store::rooms::end_stay(batch.conn(), room, member, event)?;
            // A later stay starts from the default setting, as a new member's would.
            store::notifications::forget(batch.conn(), room, member)?;
            Ok(event)
        })
        .await
}

/// Gives a member another role (owners only). An owner may step down only if another remains.
pub async fn set_role(
    writer: &Writer,
    user: Id,
    room: Id,
    member: Id,
    role: &str,
) -> Result<(Role, i64)> {
    let role = Role::parse(role).ok_or_else(|| {
        Error::validation(
            "role",
            format!("must be one of {}", Role::names().join(", ")),
        )
    })?;
    writer
        .run(move |batch| {
            let (row, stay) = room_of(batch, user, room)?;
            group_only(&row)?;
            if stay.role != Role::Owner {
                return Err(Error::not_allowed("only owners may change roles"));
            }
            let target = store::rooms::membership(batch.conn(), room, member)?
                .ok_or_else(|| Error::not_found("member_not_found", "that user is not a member"))?;
            if target.role == Role::Owner
                && role != Role::Owner
                && store::rooms::count_role(batch.conn(), room, Role::Owner)? == 1
            {
                return Err(Error::conflict(
                    "last_owner",
                    "a room needs at least one owner",
                ));
            }
            store::rooms::set_role(batch.conn(), room, member, role)?;
            let changed = store::users::find(batch.conn(), member)?
                .ok_or_else(|| Error::not_found("user_not_found", "no such user"))?;
            let payload = MemberEvent {
                room_id: room,
                user_id: member,
                user: User::from(&changed),
                role,
                by: Some(user),
            };
            event::append(
                batch,
                &Event::MemberUpdated(payload),
                To::Room(room),
                Time::now(),
            )
        })
        .await
        .map(|event| (role, event))
}

/// Moves the caller's read marker forward to `message` (never back). `read.updated` goes to
/// the caller's sessions so that badges clear everywhere; the event id is `None` if the marker
/// was already there or beyond.
pub async fn mark_read(
    writer: &Writer,
    user: Id,
    room: Id,
    message: Id,
) -> Result<(ReadMarker, Option<i64>)> {
    writer
        .run(move |batch| {
            let (_, row) =
                crate::core::messages::find_for_member(batch.conn(), user, room, message)?;
            let moved = store::rooms::advance_read(batch.conn(), room, user, row.seq)?;
            let unread_count = store::messages::unread_counts(batch.conn(), user, &[room])?
                .first()
                .map(|(_, n)| *n)
                .unwrap_or(0);
            let mention_count = store::notifications::mention_counts(batch.conn(), user, &[room])?
                .first()
                .map(|(_, n)| *n)
                .unwrap_or(0);
            let marker = ReadMarker {
                room_id: room,
                message_id: message,
                unread_count,
                mention_count,
            };
            let event = if moved {
                Some(event::append(
                    batch,
                    &Event::ReadUpdated(marker.clone()),
                    To::Users(&[user]),
                    Time::now(),
                )?)
            } else {
                None
            };
            Ok((marker, event))
        })
        .await
}
