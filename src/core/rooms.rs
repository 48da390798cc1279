//! Rooms: creating group rooms, the one direct room of two users, and reading them.
//! Only current members see a room; to anyone else it doesn't exist (404).

use std::collections::{BTreeSet, HashMap};

use crate::config::DmPolicy;
use crate::core::event::{self, Event};
use crate::core::views::{message_views, Member, Message, Notifications, Room, User};
use crate::domain::{Id, Role, RoomKind, RoomName, Time};
use crate::error::{Error, Result};
use crate::events::{Batch, To, Writer};
use crate::store::{self, rooms::MembershipRow, rooms::RoomRow, Db, DbConnection};

/// The most members a room can be created with.
pub const MAX_INITIAL_MEMBERS: usize = 1000;
/// The most rooms one list returns.
const MAX_LISTED: i64 = 500;

/// Creates a group room owned by `creator` with the given members (the creator is always one).
/// Returns the room and the id of its `room.created` event.
pub async fn create_group(
    writer: &Writer,
    creator: Id,
    name: &str,
    member_ids: Vec<Id>,
) -> Result<(Room, i64)> {
    let name = RoomName::parse(name).map_err(|why| Error::validation("name", why))?;
    let mut members: BTreeSet<Id> = member_ids.into_iter().collect();
    members.insert(creator);
    if members.len() > MAX_INITIAL_MEMBERS {
        return Err(Error::validation(
            "member_ids",
            format!("at most {MAX_INITIAL_MEMBERS} members"),
        ));
    }
    writer
        .run(move |batch| {
            let ids: Vec<Id> = members.into_iter().collect();
            let mut users = store::users::find_many(batch.conn(), &ids)?;
            // A deleted account can't be added to anything.
            users.retain(|u| u.deleted_at.is_none());
            if users.len() != ids.len() {
                let known: BTreeSet<Id> = users.iter().map(|u| u.id).collect();
                let unknown: Vec<String> = ids
                    .iter()
                    .filter(|i| !known.contains(i))
                    .map(Id::to_string)
                    .collect();
                return Err(Error::validation(
                    "member_ids",
                    format!("unknown user ids: {}", unknown.join(", ")),
                ));
            }
            let row = new_room(creator, RoomKind::Group, Some(name.into_inner()), None);
            create(batch, row, users.iter().map(User::from).collect())
        })
        .await
}

/// The direct room of `me` and `other`, created on first use. Returns the room and, when this
/// call created it, the id of its `room.created` event.
pub async fn open_direct(
    writer: &Writer,
    policy: DmPolicy,
    me: Id,
    other: Id,
) -> Result<(Room, Option<i64>)> {
    if me == other {
        return Err(Error::validation(
            "user_id",
            "a direct room needs another user",
        ));
    }
    let (low, high) = if me < other { (me, other) } else { (other, me) };
    let key = format!("{low}:{high}");
    writer
        .run(move |batch| {
            let found = store::users::find(batch.conn(), other)?;
            if found.is_none_or(|u| u.deleted_at.is_some()) {
                return Err(Error::not_found("user_not_found", "no such user"));
            }
            if store::social::blocked_either_way(batch.conn(), me, other)? {
                return Err(Error::blocked());
            }
            if policy == DmPolicy::Friends
                && store::social::friends_since(batch.conn(), me, other)?.is_none()
            {
                return Err(Error::forbidden(
                    "not_friends",
                    "on this server, direct rooms are only for friends",
                ));
            }
            if let Some(row) = store::rooms::find_by_dm_key(batch.conn(), &key)? {
                return Ok((load(batch.conn(), row, Some(me))?, None));
            }
            let users = store::users::find_many(batch.conn(), &[me, other])?;
            if users.len() != 2 {
                return Err(Error::not_found("user_not_found", "no such user"));
            }
            let row = new_room(me, RoomKind::Direct, None, Some(key));
            let (room, event) = create(batch, row, users.iter().map(User::from).collect())?;
            Ok((room, Some(event)))
        })
        .await
}

fn new_room(creator: Id, kind: RoomKind, name: Option<String>, dm_key: Option<String>) -> RoomRow {
    let now = Time::now();
    RoomRow {
        id: Id::new(),
        kind,
        name,
        dm_key,
        created_by: creator,
        created_at: now,
        last_message_id: None,
        last_activity_at: now,
    }
}

/// Inserts the room, its `room.created` event, and the members' stays starting at that event.
fn create(batch: &mut Batch<'_>, row: RoomRow, mut users: Vec<User>) -> Result<(Room, i64)> {
    users.sort_by(|a, b| a.username.cmp(&b.username));
    store::rooms::insert(batch.conn(), &row)?;
    let members = users
        .into_iter()
        .map(|user| Member {
            role: if user.id == row.created_by {
                Role::Owner
            } else {
                Role::Member
            },
            user,
        })
        .collect();
    let room = Room::new(&row, members, None);
    let event = event::append(
        batch,
        &Event::RoomCreated(room.clone()),
        To::Room(row.id),
        row.created_at,
    )?;
    let stays: Vec<MembershipRow> = room
        .members
        .iter()
        .map(|m| MembershipRow {
            room_id: row.id,
            user_id: m.user.id,
            role: m.role,
            joined_event_id: event,
            left_event_id: None,
            last_read_seq: event,
        })
        .collect();
    store::rooms::insert_memberships(batch.conn(), &stays)?;
    Ok((room, event))
}

/// The room, if `user` is a member of it.
pub async fn get(db: &Db, user: Id, room: Id) -> Result<Room> {
    db.run(move |conn| {
        let row =
            store::rooms::find_for_member(conn, room, user)?.ok_or_else(Error::room_not_found)?;
        load(conn, row, Some(user))
    })
    .await
}

/// The caller's rooms, most recently active first, each with members and last message.
pub async fn list(db: &Db, user: Id) -> Result<Vec<Room>> {
    db.run(move |conn| {
        let rows = store::rooms::list_for_member(conn, user, MAX_LISTED)?;
        load_many(conn, rows, Some(user))
    })
    .await
}

/// The room as `viewer` sees it (with their unread count), or as an event carries it (`None`).
pub(crate) fn load(conn: &mut DbConnection, row: RoomRow, viewer: Option<Id>) -> Result<Room> {
    let mut rooms = load_many(conn, vec![row], viewer)?;
    rooms.pop().ok_or_else(Error::room_not_found)
}

/// Fills in members and last messages for many rooms (and the viewer's counts and setting) in a
/// fixed number of queries, whatever their number.
fn load_many(conn: &mut DbConnection, rows: Vec<RoomRow>, viewer: Option<Id>) -> Result<Vec<Room>> {
    let room_ids: Vec<Id> = rows.iter().map(|r| r.id).collect();
    let stays = store::rooms::current_members(conn, &room_ids)?;
    let user_ids: Vec<Id> = stays
        .iter()
        .map(|s| s.user_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let users: HashMap<Id, User> = store::users::find_many(conn, &user_ids)?
        .iter()
        .map(|u| (u.id, User::from(u)))
        .collect();
    let last_ids: Vec<Id> = rows.iter().filter_map(|r| r.last_message_id).collect();
    let last_rows = store::messages::find_many(conn, &last_ids)?;
    let last: HashMap<Id, Message> = message_views(conn, &last_rows)?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    // The viewer's own figures: one grouped query each for all the rooms.
    let mut unread: HashMap<Id, i64> = HashMap::new();
    let mut mentions: HashMap<Id, i64> = HashMap::new();
    let mut settings: HashMap<Id, Notifications> = HashMap::new();
    if let Some(viewer) = viewer {
        unread.extend(store::messages::unread_counts(conn, viewer, &room_ids)?);
        mentions.extend(store::notifications::mention_counts(
            conn, viewer, &room_ids,
        )?);
        settings.extend(
            store::notifications::settings_of(conn, viewer, &room_ids)?
                .into_iter()
                .map(|s| {
                    let setting = Notifications {
                        level: s.level,
                        muted_until: s.muted_until,
                    };
                    (s.room_id, setting)
                }),
        );
    }
    let mut members: HashMap<Id, Vec<Member>> = HashMap::new();
    for stay in &stays {
        if let Some(user) = users.get(&stay.user_id) {
            members.entry(stay.room_id).or_default().push(Member {
                user: user.clone(),
                role: stay.role,
            });
        }
    }
    Ok(rows
        .iter()
        .map(|row| {
            let mut list = members.remove(&row.id).unwrap_or_default();
            list.sort_by(|a, b| a.user.username.cmp(&b.user.username));
            let last_message = row.last_message_id.and_then(|id| last.get(&id).cloned());
            let mut room = Room::new(row, list, last_message);
            if viewer.is_some() {
                room.unread_count = Some(unread.get(&row.id).copied().unwrap_or(0));
                room.mention_count = Some(mentions.get(&row.id).copied().unwrap_or(0));
                room.notifications = Some(settings.get(&row.id).copied().unwrap_or_default());
            }
            room
        })
        .collect())
}
