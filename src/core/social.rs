//! Friends and blocks.
//!
//! A friend request to someone who already asked you accepts theirs; asking twice returns the
//! pending request; asking a friend returns the friendship. A block works both ways: no direct
//! room, no friend request, no direct message in either direction, and it ends a friendship
//! and any pending request. The blocked user learns of it only through the `blocked` error.

use std::collections::HashMap;

use serde::Serialize;

use crate::core::event::{self, Event, Pair, RequestGone};
use crate::core::presence;
use crate::core::views::{Friend, FriendRequest, User};
use crate::domain::{Id, RequestStatus, Time};
use crate::error::{Error, Result};
use crate::events::{Batch, To, Writer};
use crate::store::{self, social::RequestRow, Db, DbConnection};

/// A user who may be asked, blocked or listed (not a deleted account).
fn user(conn: &mut DbConnection, id: Id) -> Result<User> {
    store::users::find(conn, id)?
        .filter(|u| u.deleted_at.is_none())
        .map(|u| User::from(&u))
        .ok_or_else(|| Error::not_found("user_not_found", "no such user"))
}

fn request_view(
    conn: &mut DbConnection,
    row: &RequestRow,
    status: RequestStatus,
) -> Result<FriendRequest> {
    Ok(FriendRequest {
        id: row.id,
        from: user(conn, row.from_user)?,
        to: user(conn, row.to_user)?,
        status,
        created_at: row.created_at,
    })
}

/// What `request` did.
pub enum Requested {
    /// A new pending request (201).
    Created(FriendRequest, i64),
    /// The same pending request as before, or a friendship that exists or was just made (200).
    Existing(FriendRequest, Option<i64>),
}

/// Asks `other` to be friends (see the module doc for the rules).
pub async fn request(writer: &Writer, me: Id, other: Id) -> Result<Requested> {
    if me == other {
        return Err(Error::validation("user_id", "you can't befriend yourself"));
    }
    writer
        .run(move |batch| {
            user(batch.conn(), other)?;
            if store::social::blocked_either_way(batch.conn(), me, other)? {
                return Err(Error::blocked());
            }
            let now = Time::now();
            if let Some(since) = store::social::friends_since(batch.conn(), me, other)? {
                let row = RequestRow {
                    id: Id::new(),
                    from_user: me,
                    to_user: other,
                    created_at: since,
                };
                return Ok(Requested::Existing(
                    request_view(batch.conn(), &row, RequestStatus::Accepted)?,
                    None,
                ));
            }
            if let Some(mine) = store::social::find_request_between(batch.conn(), me, other)? {
                return Ok(Requested::Existing(
                    request_view(batch.conn(), &mine, RequestStatus::Pending)?,
                    None,
                ));
            }
            if let Some(theirs) = store::social::find_request_between(batch.conn(), other, me)? {
                let event = befriend(batch, &theirs, now)?;
                return Ok(Requested::Existing(
                    request_view(batch.conn(), &theirs, RequestStatus::Accepted)?,
                    Some(event),
                ));
            }
            let row = RequestRow {
                id: Id::new(),
                from_user: me,
                to_user: other,
                created_at: now,
            };
            store::social::insert_request(batch.conn(), &row)?;
            let view = request_view(batch.conn(), &row, RequestStatus::Pending)?;
            let event = event::append(
                batch,
                &Event::FriendRequested(view.clone()),
                To::Users(&[me, other]),
                now,
            )?;
            Ok(Requested::Created(view, event))
        })
        .await
}

/// Turns a pending request into a friendship and tells both users.
fn befriend(batch: &mut Batch<'_>, request: &RequestRow, now: Time) -> Result<i64> {
    store::social::delete_request(batch.conn(), request.id)?;
    store::social::insert_friendship(batch.conn(), request.from_user, request.to_user, now)?;
    let users = [request.from_user, request.to_user];
    let payload = Pair {
        user_ids: users,
        request_id: Some(request.id),
    };
    event::append(
        batch,
        &Event::FriendAccepted(payload),
        To::Users(&users),
        now,
    )
}

fn request_to_me(batch: &mut Batch<'_>, me: Id, id: Id, mine: bool) -> Result<RequestRow> {
    let row = store::social::find_request(batch.conn(), id)?;
    match row {
        Some(row) if (if mine { row.from_user } else { row.to_user }) == me => Ok(row),
        _ => Err(Error::not_found(
            "friend_request_not_found",
            "no such friend request",
        )),
    }
}

/// Accepts a request sent to the caller. Returns the new friend and the event id.
pub async fn accept(writer: &Writer, me: Id, id: Id) -> Result<(Friend, i64)> {
    writer
        .run(move |batch| {
            let row = request_to_me(batch, me, id, false)?;
            let now = Time::now();
            let event = befriend(batch, &row, now)?;
            let seen = presence::seen_by(batch.conn(), me, row.from_user)?;
            let friend = Friend {
                user: user(batch.conn(), row.from_user)?,
                since: now,
                online: seen.online,
                last_seen_at: seen.last_seen_at,
            };
            Ok((friend, event))
        })
        .await
}

/// Declines a request sent to the caller. Only the caller's own sessions hear of it: the
/// sender is not told (their request simply never turns into a friendship).
pub async fn decline(writer: &Writer, me: Id, id: Id) -> Result<i64> {
    writer
        .run(move |batch| {
            let row = request_to_me(batch, me, id, false)?;
            store::social::delete_request(batch.conn(), row.id)?;
            request_gone(batch, &row, Event::FriendDeclined, &[me])
        })
        .await
}

/// Withdraws a request the caller sent; both users hear of it.
pub async fn cancel(writer: &Writer, me: Id, id: Id) -> Result<i64> {
    writer
        .run(move |batch| {
            let row = request_to_me(batch, me, id, true)?;
            store::social::delete_request(batch.conn(), row.id)?;
            request_gone(
                batch,
                &row,
                Event::FriendCancelled,
                &[row.from_user, row.to_user],
            )
        })
        .await
}

/// Announces that a pending request is gone (`friend.declined` or `friend.cancelled`) to `to`.
fn request_gone(
    batch: &mut Batch<'_>,
    row: &RequestRow,
    kind: fn(RequestGone) -> Event,
    to: &[Id],
) -> Result<i64> {
    let payload = RequestGone {
        request_id: row.id,
        from_user_id: row.from_user,
        to_user_id: row.to_user,
    };
    event::append(batch, &kind(payload), To::Users(to), Time::now())
}

/// Ends a friendship (nothing happens if there was none).
pub async fn unfriend(writer: &Writer, me: Id, other: Id) -> Result<()> {
    writer
        .run(move |batch| end_friendship(batch, me, other).map(|_| ()))
        .await
}

fn end_friendship(batch: &mut Batch<'_>, a: Id, b: Id) -> Result<Option<i64>> {
    if !store::social::delete_friendship(batch.conn(), a, b)? {
        return Ok(None);
    }
    let payload = Pair {
        user_ids: [a, b],
        request_id: None,
    };
    event::append(
        batch,
        &Event::FriendRemoved(payload),
        To::Users(&[a, b]),
        Time::now(),
    )
    .map(Some)
}

/// Pending requests to and from the caller.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Requests {
    pub incoming: Vec<FriendRequest>,
    pub outgoing: Vec<FriendRequest>,
}

pub async fn requests(db: &Db, me: Id) -> Result<Requests> {
    db.run(move |conn| {
        let (incoming, outgoing) = store::social::requests_of(conn, me)?;
        Ok(Requests {
            incoming: incoming
                .iter()
                .map(|r| request_view(conn, r, RequestStatus::Pending))
                .collect::<Result<_>>()?,
            outgoing: outgoing
                .iter()
                .map(|r| request_view(conn, r, RequestStatus::Pending))
                .collect::<Result<_>>()?,
        })
    })
    .await
}

/// The caller's friends, by username.
pub async fn friends(db: &Db, me: Id) -> Result<Vec<Friend>> {
    db.run(move |conn| {
        let pairs = store::social::friends_of(conn, me)?;
        listed(conn, pairs, true)
    })
    .await
}

/// Users with a time, by username; `friends`: with their presence (friends may see it).
fn listed(conn: &mut DbConnection, pairs: Vec<(Id, Time)>, friends: bool) -> Result<Vec<Friend>> {
    let ids: Vec<Id> = pairs.iter().map(|(id, _)| *id).collect();
    let users = store::users::find_many(conn, &ids)?;
    let seen = if friends {
        presence::of_friends(conn, &ids)?
    } else {
        HashMap::new()
    };
    let mut list: Vec<Friend> = pairs
        .into_iter()
        .filter_map(|(id, since)| {
            let seen = seen.get(&id).copied().unwrap_or_default();
            users.iter().find(|u| u.id == id).map(|u| Friend {
                user: User::from(u),
                since,
                online: seen.online,
                last_seen_at: seen.last_seen_at,
            })
        })
        .collect();
    list.sort_by(|a, b| a.user.username.cmp(&b.user.username));
    Ok(list)
}

/// Blocks `other`: ends the friendship and any pending request between the two.
pub async fn block(writer: &Writer, me: Id, other: Id) -> Result<()> {
    if me == other {
        return Err(Error::validation("user_id", "you can't block yourself"));
    }
    writer
        .run(move |batch| {
            user(batch.conn(), other)?;
            if !store::social::insert_block(batch.conn(), me, other, Time::now())? {
                return Ok(());
            }
            end_friendship(batch, me, other)?;
            // Pending requests go quietly: only the blocker's sessions hear of it, so the
            // blocked user isn't told about a request they never withdrew.
            for row in store::social::delete_requests_between(batch.conn(), me, other)? {
                request_gone(batch, &row, Event::FriendCancelled, &[me])?;
            }
            Ok(())
        })
        .await
}

/// Lifts a block (nothing happens if there was none).
pub async fn unblock(writer: &Writer, me: Id, other: Id) -> Result<()> {
    writer
        .run(move |batch| Ok(store::social::delete_block(batch.conn(), me, other).map(|_| ())?))
        .await
}

/// The users the caller blocks, with when (as `{user, since}`).
pub async fn blocks(db: &Db, me: Id) -> Result<Vec<Friend>> {
    db.run(move |conn| {
        let pairs = store::social::blocked_by(conn, me)?;
        listed(conn, pairs, false)
    })
    .await
}
