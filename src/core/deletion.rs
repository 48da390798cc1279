//! Deleting an account (the user's own, with their password, or a bot by its owner): one writer
//! transaction that leaves the user row as a tombstone and erases the rest (docs/accounts.md
//! says exactly what goes and what stays).
//!
//! Its cost is bounded by the user's rooms, credentials and friends, not by their messages:
//! messages, reactions, mentions, attachments and the log's copies of their bodies go in one
//! statement per table (`store::erasure`). Clients hear of it through one `member.left` per
//! room, `friend.removed` / `friend.cancelled` per friendship or request, and one
//! `user.updated` (with `deleted: true`) to everyone who shared a room with the user or was
//! their friend; they show that author's messages as deleted from then on.

use std::path::Path;

use crate::core::event::{self, Event, MemberEvent, Pair, RequestGone, UserUpdated};
use crate::core::views::User;
use crate::core::work::Pool;
use crate::core::{attachments, crypto, tokens};
use crate::domain::{Id, Role, RoomKind, Time, UserKind};
use crate::error::{Error, Result};
use crate::events::{Batch, To, Writer};
use crate::store::{self, Db};

/// What an erasure leaves to do after the commit.
#[derive(Debug, Default)]
struct Erased {
    /// Sessions and tokens revoked (the node's credential cache forgets them at once).
    credentials: Vec<Id>,
    /// Attachments whose files go once the transaction has committed.
    files: Vec<Id>,
}

impl Erased {
    fn add(&mut self, other: Erased) {
        self.credentials.extend(other.credentials);
        self.files.extend(other.files);
    }
}

/// Deletes `user`'s account and the bots they own, if `password` is theirs (403
/// `wrong_password` otherwise, and nothing changes). The check runs in the bounded hash pool.
/// Returns the revoked credentials.
pub async fn delete_account(
    db: &Db,
    writer: &Writer,
    hashes: &Pool,
    data_dir: &Path,
    user: Id,
    password: String,
) -> Result<Vec<Id>> {
    // A place in the hashing queue first: when it is full, refuse before any query.
    let admission = hashes.admit()?;
    let row = db
        .run(move |conn| Ok(store::users::find(conn, user)?))
        .await?
        .ok_or_else(Error::unauthenticated)?;
    let stored = row.password_hash;
    hashes
        .run(admission, move || {
            if crypto::verify_password(&password, &stored) {
                Ok(())
            } else {
                Err(Error::forbidden(
                    "wrong_password",
                    "password is not this account's password",
                ))
            }
        })
        .await?;
    let erased = writer
        .run(move |batch| {
            let now = Time::now();
            let mut erased = Erased::default();
            for bot in store::erasure::live_bots_of(batch.conn(), user)? {
                erased.add(erase(batch, bot, now)?);
            }
            erased.add(erase(batch, user, now)?);
            Ok(erased)
        })
        .await?;
    Ok(finish(data_dir, erased))
}

/// Deletes the bot `bot` of `owner` (404 `user_not_found` if it isn't one of theirs) as an
/// account is deleted. Returns the revoked credentials (the bot's tokens).
pub async fn delete_bot(writer: &Writer, data_dir: &Path, owner: Id, bot: Id) -> Result<Vec<Id>> {
    let erased = writer
        .run(move |batch| {
            match store::users::find(batch.conn(), bot)? {
                Some(row)
                    if row.kind == UserKind::Bot
                        && row.owner_id == Some(owner)
                        && row.deleted_at.is_none() => {}
                _ => return Err(Error::not_found("user_not_found", "you own no such bot")),
            }
            erase(batch, bot, Time::now())
        })
        .await?;
    Ok(finish(data_dir, erased))
}

/// After the commit: the files go; the revoked credentials are returned.
fn finish(data_dir: &Path, erased: Erased) -> Vec<Id> {
    for id in erased.files {
        attachments::remove_files(data_dir, id);
    }
    erased.credentials
}

/// Erases one account in the batch's transaction (nothing if it is already deleted).
fn erase(batch: &mut Batch<'_>, user: Id, now: Time) -> Result<Erased> {
    let row = store::users::find(batch.conn(), user)?.ok_or_else(Error::unauthenticated)?;
    if row.deleted_at.is_some() {
        return Ok(Erased::default());
    }
    // Who hears of it, taken while the user still has rooms and friends.
    let mut audience = store::rooms::co_members(batch.conn(), user)?;
    audience.extend(
        store::social::friends_of(batch.conn(), user)?
            .into_iter()
            .map(|(id, _)| id),
    );
    audience.retain(|id| *id != user);
    store::erasure::tombstone_user(batch.conn(), user, now)?;
    let tombstone = store::users::find(batch.conn(), user)?
        .map(|r| User::from(&r))
        .ok_or_else(Error::unauthenticated)?;

    // Every credential, each revoked as a logout is, so its sockets close on every node.
    let credentials = tokens::revoke_all_of(batch, user)?;

    leave_rooms(batch, &tombstone, now)?;

    let files = store::erasure::delete_attachments(batch.conn(), user)?;
    store::erasure::tombstone_messages(batch.conn(), user, now)?;
    store::erasure::delete_traces(batch.conn(), user)?;

    for friend in store::erasure::delete_friendships(batch.conn(), user)? {
        let payload = Pair {
            user_ids: [user, friend],
            request_id: None,
        };
        event::append(
            batch,
            &Event::FriendRemoved(payload),
            To::Users(&[friend]),
            now,
        )?;
    }
    for request in store::erasure::delete_requests(batch.conn(), user)? {
        let other = if request.from_user == user {
            request.to_user
        } else {
            request.from_user
        };
        let payload = RequestGone {
            request_id: request.id,
            from_user_id: request.from_user,
            to_user_id: request.to_user,
        };
        event::append(
            batch,
            &Event::FriendCancelled(payload),
            To::Users(&[other]),
            now,
        )?;
    }

    if !audience.is_empty() {
        event::append(
            batch,
            &Event::UserUpdated(UserUpdated { user: tombstone }),
            To::Users(&audience),
            now,
        )?;
    }
    Ok(Erased { credentials, files })
}

/// Ends every stay of the user, as leaving does (`member.left` to the room). A group room
/// whose last owner this was gets a new owner first (`member.updated`): the longest-standing
/// admin, else the longest-standing member. A group left empty stays, memberless: archived,
/// since nobody can reach it or add anyone to it again (docs/accounts.md). A direct room stays
/// with the other member.
fn leave_rooms(batch: &mut Batch<'_>, user: &User, now: Time) -> Result<()> {
    let (groups, direct): (Vec<_>, Vec<_>) =
        store::rooms::list_for_member(batch.conn(), user.id, i64::MAX)?
            .into_iter()
            .partition(|r| r.kind == RoomKind::Group);
    let groups: Vec<Id> = groups.iter().map(|r| r.id).collect();
    let all: Vec<Id> = groups
        .iter()
        .copied()
        .chain(direct.iter().map(|r| r.id))
        .collect();
    // Every member of those rooms, oldest stay first, in one query.
    let members = store::rooms::current_members(batch.conn(), &all)?;
    for &room in &all {
        let here: Vec<_> = members.iter().filter(|m| m.room_id == room).collect();
        let Some(mine) = here.iter().find(|m| m.user_id == user.id) else {
            continue;
        };
        // Oldest stay first; a tie (members added with the room) goes by user id.
        let mut others: Vec<_> = here.iter().filter(|m| m.user_id != user.id).collect();
        others.sort_by_key(|m| (m.joined_event_id, m.user_id));
        let group = groups.contains(&room);
        if group
            && mine.role == Role::Owner
            && !others.is_empty()
            && !others.iter().any(|m| m.role == Role::Owner)
        {
            let heir = others
                .iter()
                .find(|m| m.role == Role::Admin)
                .or_else(|| others.first())
                .map(|m| m.user_id);
            if let Some(heir) = heir {
                hand_over(batch, room, heir, now)?;
            }
        }
        let payload = MemberEvent {
            room_id: room,
            user_id: user.id,
            user: user.clone(),
            role: mine.role,
            by: None,
        };
        let event = event::append(batch, &Event::MemberLeft(payload), To::Room(room), now)?;
        store::rooms::end_stay(batch.conn(), room, user.id, event)?;
    }
    Ok(())
}

/// Makes `heir` an owner of `room`, as an owner's role change does (`member.updated`, with no
/// `by`: the server did it).
fn hand_over(batch: &mut Batch<'_>, room: Id, heir: Id, now: Time) -> Result<()> {
    store::rooms::set_role(batch.conn(), room, heir, Role::Owner)?;
    let row = store::users::find(batch.conn(), heir)?
        .ok_or_else(|| Error::not_found("user_not_found", "no such user"))?;
    let payload = MemberEvent {
        room_id: room,
        user_id: heir,
        user: User::from(&row),
        role: Role::Owner,
        by: None,
    };
    event::append(batch, &Event::MemberUpdated(payload), To::Room(room), now)?;
    Ok(())
}
