//! Erasing an account (`core::deletion`): one statement per table for everything the user
//! wrote or holds, so the cost is a few index scans however many messages they sent.

use diesel::prelude::*;

use super::schema::{
    api_tokens, attachments, blocks, events, friend_requests, friendships, idempotency_keys,
    message_mentions, messages, push_subscriptions, reactions, room_notifications, sessions,
    stream_tickets, users,
};
use super::DbConnection;
use crate::domain::{Id, Time};

/// What a deleted user's row shows instead of their name.
pub const DELETED_DISPLAY_NAME: &str = "Deleted user";

/// The prefix of a released tombstone's username: ':' is outside what a username may contain,
/// so no registration can take it.
pub const RELEASED_PREFIX: &str = "deleted:";

/// Turns the user's row into a tombstone: no password matches `!`, the name and picture go,
/// administration ends. The username stays (taken) until the hold ends.
pub fn tombstone_user(conn: &mut DbConnection, user: Id, at: Time) -> QueryResult<()> {
    diesel::update(users::table.find(user))
        .set((
            users::deleted_at.eq(Some(at)),
            users::password_hash.eq("!"),
            users::display_name.eq(DELETED_DISPLAY_NAME),
            users::avatar_attachment_id.eq(None::<Id>),
            users::admin.eq(false),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The user's bots that are not deleted yet.
pub fn live_bots_of(conn: &mut DbConnection, owner: Id) -> QueryResult<Vec<Id>> {
    users::table
        .filter(users::owner_id.eq(Some(owner)))
        .filter(users::deleted_at.is_null())
        .select(users::id)
        .load(conn)
}

/// Deletes every session and token of the user, and their stream tickets and push
/// subscriptions; returns the ids of the sessions and tokens (each gets `credential.revoked`).
pub fn delete_credentials(conn: &mut DbConnection, user: Id) -> QueryResult<Vec<Id>> {
    let mut ids: Vec<Id> = sessions::table
        .filter(sessions::user_id.eq(user))
        .select(sessions::id)
        .load(conn)?;
    ids.extend(
        api_tokens::table
            .filter(api_tokens::user_id.eq(user))
            .select(api_tokens::id)
            .load::<Id>(conn)?,
    );
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user))).execute(conn)?;
    diesel::delete(api_tokens::table.filter(api_tokens::user_id.eq(user))).execute(conn)?;
    diesel::delete(stream_tickets::table.filter(stream_tickets::user_id.eq(user))).execute(conn)?;
    diesel::delete(push_subscriptions::table.filter(push_subscriptions::user_id.eq(user)))
        .execute(conn)?;
    Ok(ids)
}

/// Deletes the user's uploads (attached or not, the avatar included) and the attachments of
/// their messages; returns their ids, whose files go after the commit.
pub fn delete_attachments(conn: &mut DbConnection, user: Id) -> QueryResult<Vec<Id>> {
    let theirs = messages::table
        .filter(messages::author_id.eq(user))
        .select(messages::id.nullable());
    let target = attachments::table.filter(
        attachments::owner_id
            .eq(user)
            .or(attachments::message_id.eq_any(theirs)),
    );
    let ids: Vec<Id> = target.select(attachments::id).load(conn)?;
    let theirs = messages::table
        .filter(messages::author_id.eq(user))
        .select(messages::id.nullable());
    diesel::delete(
        attachments::table.filter(
            attachments::owner_id
                .eq(user)
                .or(attachments::message_id.eq_any(theirs)),
        ),
    )
    .execute(conn)?;
    Ok(ids)
}

/// Turns every message of the user into a tombstone (as a deleted message: empty body,
/// `deleted_at` set, no reactions or mentions), and erases the bodies from the log: each
/// `message.created` event (its id is the message's `seq`) and each `message.updated` of theirs
/// then carries the tombstone. Returns how many messages were live.
pub fn tombstone_messages(conn: &mut DbConnection, user: Id, at: Time) -> QueryResult<usize> {
    let theirs = || {
        messages::table
            .filter(messages::author_id.eq(user))
            .select(messages::id)
    };
    diesel::delete(reactions::table.filter(reactions::message_id.eq_any(theirs())))
        .execute(conn)?;
    diesel::delete(message_mentions::table.filter(message_mentions::message_id.eq_any(theirs())))
        .execute(conn)?;
    scrub_log(conn, user, at)?;
    diesel::update(
        messages::table
            .filter(messages::author_id.eq(user))
            .filter(messages::deleted_at.is_null()),
    )
    .set((messages::body.eq(""), messages::deleted_at.eq(Some(at))))
    .execute(conn)
}

/// Rewrites the log's copies of the user's messages as tombstones, in two statements: the
/// `message.created` events by id (= the message's seq, through `messages_author`), the
/// `message.updated` ones in the rooms the user wrote in, matched by the payload's author.
fn scrub_log(conn: &mut DbConnection, user: Id, at: Time) -> QueryResult<()> {
    use diesel::dsl::sql;
    use diesel::sql_types::Text;
    let deleted_at = serde_json::to_string(&at)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let deleted_at = deleted_at.trim_matches('"').to_string();
    let author = user.to_string();
    let seqs = || {
        messages::table
            .filter(messages::author_id.eq(user))
            .select(messages::seq)
    };
    let rooms = || {
        messages::table
            .filter(messages::author_id.eq(user))
            .select(messages::room_id.nullable())
            .distinct()
    };
    match conn {
        DbConnection::Sqlite(c) => {
            let tombstone = || {
                sql::<Text>(
                    "json_set(payload, '$.body', json('null'), '$.attachments', json('[]'), \
                     '$.mention_ids', json('[]'), '$.deleted_at', ",
                )
                .bind::<Text, _>(deleted_at.clone())
                .sql(")")
            };
            diesel::update(events::table.filter(events::id.eq_any(seqs())))
                .set(events::payload.eq(tombstone()))
                .execute(c)?;
            diesel::update(
                events::table
                    .filter(events::room_id.eq_any(rooms()))
                    .filter(events::kind.eq("message.updated"))
                    .filter(sql::<Text>("json_extract(payload, '$.author_id')").eq(author.clone())),
            )
            .set(events::payload.eq(tombstone()))
            .execute(c)?;
        }
        DbConnection::Postgresql(c) => {
            let tombstone = || {
                sql::<Text>(
                    "(payload::jsonb || jsonb_build_object('body', NULL, 'attachments', \
                     '[]'::jsonb, 'mention_ids', '[]'::jsonb, 'deleted_at', ",
                )
                .bind::<Text, _>(deleted_at.clone())
                .sql("::text))::text")
            };
            diesel::update(events::table.filter(events::id.eq_any(seqs())))
                .set(events::payload.eq(tombstone()))
                .execute(c)?;
            diesel::update(
                events::table
                    .filter(events::room_id.eq_any(rooms()))
                    .filter(events::kind.eq("message.updated"))
                    .filter(sql::<Text>("payload::jsonb->>'author_id'").eq(author.clone())),
            )
            .set(events::payload.eq(tombstone()))
            .execute(c)?;
        }
    }
    Ok(())
}

/// Deletes what the user left on others' things and their own settings: their reactions,
/// notification settings, idempotency keys (whose stored answers hold message bodies), and
/// blocks either way.
pub fn delete_traces(conn: &mut DbConnection, user: Id) -> QueryResult<()> {
    diesel::delete(reactions::table.filter(reactions::user_id.eq(user))).execute(conn)?;
    diesel::delete(room_notifications::table.filter(room_notifications::user_id.eq(user)))
        .execute(conn)?;
    diesel::delete(idempotency_keys::table.filter(idempotency_keys::user_id.eq(user)))
        .execute(conn)?;
    diesel::delete(blocks::table.filter(blocks::blocker.eq(user).or(blocks::blocked.eq(user))))
        .execute(conn)?;
    Ok(())
}

/// Deletes the user's friendships and returns the former friends.
pub fn delete_friendships(conn: &mut DbConnection, user: Id) -> QueryResult<Vec<Id>> {
    let friends: Vec<Id> = super::social::friends_of(conn, user)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    diesel::delete(
        friendships::table.filter(
            friendships::user_low
                .eq(user)
                .or(friendships::user_high.eq(user)),
        ),
    )
    .execute(conn)?;
    Ok(friends)
}

/// Deletes the pending friend requests from and to the user and returns them.
pub fn delete_requests(
    conn: &mut DbConnection,
    user: Id,
) -> QueryResult<Vec<super::social::RequestRow>> {
    let either = || {
        friend_requests::table.filter(
            friend_requests::from_user
                .eq(user)
                .or(friend_requests::to_user.eq(user)),
        )
    };
    let rows = either()
        .select(super::social::RequestRow::as_select())
        .load(conn)?;
    diesel::delete(either()).execute(conn)?;
    Ok(rows)
}

/// Frees the usernames of accounts deleted before `cutoff`, at most `limit` a call: each
/// tombstone is renamed `deleted:<id>`, which no registration can take. Returns how many.
pub fn release_usernames(conn: &mut DbConnection, cutoff: Time, limit: i64) -> QueryResult<usize> {
    let held: Vec<Id> = users::table
        .filter(users::deleted_at.lt(cutoff))
        .filter(users::username.not_like(format!("{RELEASED_PREFIX}%")))
        .select(users::id)
        .limit(limit)
        .load(conn)?;
    for id in &held {
        diesel::update(users::table.find(id))
            .set(users::username.eq(released_name(*id)))
            .execute(conn)?;
    }
    Ok(held.len())
}

/// The username a tombstone takes once its hold is over.
pub fn released_name(id: Id) -> String {
    format!("{RELEASED_PREFIX}{}", id.0.simple())
}
