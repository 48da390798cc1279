//! Message sends, written together: a [`SendGroup`] is one kind of group the writer runs (see
//! `events::writer::Group`), so every send that queued up one after another is checked and written with one statement per table for the whole group
//! instead of about eight per send, which is what a send costs on PostgreSQL (each statement is
//! a round trip) and most of what it costs on SQLite (each statement is parsed and stepped).
//!
//! For a group of N sends the statements are: the stored outcomes of their idempotency keys (if
//! any has one), their authors' stays in their rooms, the reservation of the event ids, then
//! one insert each for the events, the messages and the idempotency records, and one update
//! for the rooms. Replies, attachments and direct rooms add their own checks to the sends that
//! have them. Mentions add two statements to the group, whatever the number of sends that have
//! them: the mentioned users' stays in the rooms, and the insert of the mentions.
//!
//! A send that fails its checks (404, 403, 409, 422) writes nothing, so it needs no savepoint;
//! the group fails as a whole only when the database does, and then every caller hears it.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::core::event::Kind;
use crate::core::views::{message_views, Attachment, Message};
use crate::domain::{Id, RoomKind, Time};
use crate::error::{Error, Result};
use crate::events::writer::{finish_with, same_kind, Finish, Group};
use crate::events::{self, Batch, Writer};
use crate::store::{
    self, attachments::AttachmentRow, distinct, idempotency::IdempotencyRow, messages::MessageRow,
    messages::NewMessage, notifications::MentionRow, DbConnection,
};

/// Sends a message, checked and written with the sends next to it in the writer's batch, and
/// returns its answer once the batch has committed.
pub async fn submit(writer: &Writer, request: SendRequest) -> Result<Sent> {
    let (tx, rx) = oneshot::channel();
    let group = SendGroup {
        sends: vec![(Box::new(request), tx)],
    };
    writer.group(Box::new(group), rx).await
}

/// Consecutive sends of one batch, each with its caller's reply channel.
struct SendGroup {
    sends: Vec<(Box<SendRequest>, oneshot::Sender<Result<Sent>>)>,
}

impl Group for SendGroup {
    fn absorb(&mut self, next: Box<dyn Group>) -> std::result::Result<(), Box<dyn Group>> {
        self.sends.extend(same_kind::<SendGroup>(next)?.sends);
        Ok(())
    }

    /// Its statements are one per table for the group (`store::messages::append_sent`), and a
    /// group is at most the writer's batch: a few MB of journal at most.
    fn bounded_statements(&self) -> bool {
        true
    }

    fn run(self: Box<Self>, batch: &mut Batch<'_>) -> (bool, Vec<Finish>) {
        let (requests, replies): (Vec<_>, Vec<_>) = self.sends.into_iter().unzip();
        match write(batch, &requests) {
            Ok(outcomes) => {
                let finishes = replies
                    .into_iter()
                    .zip(outcomes)
                    .map(|(tx, outcome)| finish_with(tx, outcome))
                    .collect();
                (true, finishes)
            }
            Err(e) => {
                let finishes = replies
                    .into_iter()
                    .map(|tx| finish_with(tx, Err(e.for_another())))
                    .collect();
                (false, finishes)
            }
        }
    }
}

/// A send, checked as far as it can be without the database.
pub struct SendRequest {
    pub author: Id,
    pub room: Id,
    /// Already validated (may be empty for a photo-only message).
    pub body: String,
    pub reply_to: Option<Id>,
    /// Distinct, at most `MAX_ATTACHMENTS`.
    pub attachment_ids: Vec<Id>,
    /// Distinct, sorted, at most `MAX_MENTIONS`; each must be a current member of the room.
    pub mention_ids: Vec<Id>,
    /// The client's `Idempotency-Key`, if it sent one.
    pub key: Option<Keyed>,
}

/// An `Idempotency-Key` and the hash of the request it came with, which tells a retry (same
/// request) from a reuse of the key for another request.
pub struct Keyed {
    pub key: String,
    pub request_hash: String,
}

/// A message as it was sent, and its event: the outcome of a send, and what a retry with the
/// same `Idempotency-Key` gets back (stored as JSON with the key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sent {
    pub message: Message,
    #[serde(rename = "event_id", deserialize_with = "event_id")]
    pub event: i64,
}

/// An event id as stored: a number, or (in keys stored before 2026-12-06, which kept the HTTP
/// answer) the cursor's text.
fn event_id<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Id(i64),
        Cursor(String),
    }
    match Stored::deserialize(d)? {
        Stored::Id(id) => Ok(id),
        Stored::Cursor(text) => events::parse_cursor(&text)
            .ok_or_else(|| serde::de::Error::custom("not an event cursor")),
    }
}

/// What the checks decided for one send.
enum Verdict {
    /// A retry: the stored outcome, nothing written.
    Stored(Sent),
    /// A retry of a send earlier in this group (the answer is known once that one is written).
    SameAs(usize),
    /// A new message, to be written.
    New(Box<MessageRow>, Vec<AttachmentRow>),
}

/// Checks and writes the sends, in order. Returns each send's answer (or its client error);
/// `Err` only when the database failed, in which case the caller rolls the group back.
pub fn write(batch: &mut Batch<'_>, sends: &[Box<SendRequest>]) -> Result<Vec<Result<Sent>>> {
    let conn = batch.conn();
    let known = Known::load(conn, sends)?;
    let mut claimed: HashSet<Id> = HashSet::new();
    // The new sends of this group that carry a key: (index, request hash) by (author, key).
    let mut keyed: HashMap<(Id, &str), (usize, &str)> = HashMap::new();
    let mut verdicts: Vec<Result<Verdict>> = Vec::with_capacity(sends.len());
    for (i, send) in sends.iter().enumerate() {
        let verdict = check(conn, send, &known, &keyed, &mut claimed);
        if let Err(e) = &verdict {
            if e.is_server_fault() {
                return Err(e.for_another());
            }
        }
        if let (Ok(Verdict::New(..)), Some(k)) = (&verdict, &send.key) {
            keyed.insert((send.author, k.key.as_str()), (i, k.request_hash.as_str()));
        }
        verdicts.push(verdict);
    }

    // The new messages, in order, with their views (the payload of their event and the body
    // of their answer).
    let mut new: Vec<NewMessage> = Vec::new();
    let mut views: Vec<Message> = Vec::new();
    for (send, verdict) in sends.iter().zip(&verdicts) {
        if let Ok(Verdict::New(row, files)) = verdict {
            let mut message = Message::from(&**row);
            // In the order the client listed them.
            message.attachments = send
                .attachment_ids
                .iter()
                .filter_map(|id| files.iter().find(|f| f.id == *id))
                .map(Attachment::from)
                .collect();
            message.mention_ids = send.mention_ids.clone();
            new.push(NewMessage {
                row: (**row).clone(),
                payload: serde_json::to_string(&message)?,
            });
            views.push(message);
        }
    }
    let ids = store::messages::append_sent(conn, Kind::MessageCreated.as_str(), &mut new)?;

    let mut written = new.iter().zip(views.iter().zip(&ids));
    let mut records = Vec::new();
    let mut mentions = Vec::new();
    let mut answers: Vec<Slot> = Vec::with_capacity(sends.len());
    for (send, verdict) in sends.iter().zip(verdicts) {
        match verdict {
            Ok(Verdict::New(..)) => {}
            Ok(Verdict::Stored(sent)) => {
                answers.push(Slot::Done(Ok(sent)));
                continue;
            }
            Ok(Verdict::SameAs(first)) => {
                answers.push(Slot::SameAs(first));
                continue;
            }
            Err(e) => {
                answers.push(Slot::Done(Err(e)));
                continue;
            }
        }
        let (m, (message, id)) = written.next().ok_or_else(|| {
            Error::internal(anyhow::anyhow!("fewer messages written than checked"))
        })?;
        let sent = Sent {
            message: message.clone(),
            event: *id,
        };
        if let Some(k) = &send.key {
            records.push(IdempotencyRow {
                user_id: send.author,
                key: k.key.clone(),
                request_hash: k.request_hash.clone(),
                // The event's id only: a retry's answer is rebuilt from the event (`complete`).
                outcome: format!(r#"{{"event_id":{id}}}"#),
                created_at: m.row.created_at,
            });
        }
        if !send.attachment_ids.is_empty() {
            store::attachments::attach(conn, &send.attachment_ids, m.row.id)?;
        }
        mentions.extend(send.mention_ids.iter().map(|&user| MentionRow {
            message_id: m.row.id,
            user_id: user,
            room_id: m.row.room_id,
            seq: m.row.seq,
        }));
        answers.push(Slot::Done(Ok(sent)));
    }
    store::idempotency::insert_many(conn, &records)?;
    store::notifications::insert_mentions(conn, &mentions)?;
    if let Some(last) = ids.iter().max() {
        batch.appended(*last);
    }

    // Retries of a send of this group get its answer.
    let sent: Vec<Option<Sent>> = answers
        .iter()
        .map(|slot| match slot {
            Slot::Done(Ok(sent)) => Some(sent.clone()),
            _ => None,
        })
        .collect();
    Ok(answers
        .into_iter()
        .map(|slot| match slot {
            Slot::Done(answer) => answer,
            Slot::SameAs(first) => sent[first].clone().ok_or_else(|| {
                Error::internal(anyhow::anyhow!("a retry's first send has no answer"))
            }),
        })
        .collect())
}

/// A send's answer, or the index of the earlier send of the group whose answer it repeats.
enum Slot {
    Done(Result<Sent>),
    SameAs(usize),
}

/// What the database knows about the whole group, read once.
struct Known {
    /// Stored answers by (user, key).
    answers: HashMap<(Id, String), IdempotencyRow>,
    /// The kind of each room an author is in now, by (room, author).
    stays: HashMap<(Id, Id), RoomKind>,
    /// The current members of the group's direct rooms.
    direct: HashMap<Id, Vec<Id>>,
    /// Blocks between those members, as (blocker, blocked).
    blocks: HashSet<(Id, Id)>,
    /// The current stays, as (room, user), of the users the sends mention in their rooms (and
    /// perhaps more).
    mentionable: HashSet<(Id, Id)>,
}

impl Known {
    /// In a direct room, a block between the two members (either way) stops messages.
    fn blocked(&self, room: Id, author: Id) -> bool {
        self.direct.get(&room).is_some_and(|members| {
            members.iter().any(|&other| {
                other != author
                    && (self.blocks.contains(&(author, other))
                        || self.blocks.contains(&(other, author)))
            })
        })
    }
}

impl Known {
    fn load(conn: &mut DbConnection, sends: &[Box<SendRequest>]) -> Result<Known> {
        let keyed: Vec<&SendRequest> = sends
            .iter()
            .map(|s| &**s)
            .filter(|s| s.key.is_some())
            .collect();
        let answers = if keyed.is_empty() {
            HashMap::new()
        } else {
            let pairs: Vec<(Id, &str)> = keyed
                .iter()
                .filter_map(|s| s.key.as_ref().map(|k| (s.author, k.key.as_str())))
                .collect();
            let mut rows = store::idempotency::find_any(conn, &pairs)?;
            complete(conn, &mut rows)?;
            rows.into_iter()
                .map(|row| ((row.user_id, row.key.clone()), row))
                .collect()
        };
        let pairs: Vec<(Id, Id)> = sends.iter().map(|s| (s.room, s.author)).collect();
        let stays: HashMap<(Id, Id), RoomKind> =
            store::rooms::current_stays_with_kind(conn, &pairs)?
                .into_iter()
                .map(|(room, user, kind)| ((room, user), kind))
                .collect();
        // Direct rooms: their members and the blocks between them, one query each for the
        // whole group rather than two per send.
        let direct_rooms = distinct(
            stays
                .iter()
                .filter(|(_, kind)| **kind == RoomKind::Direct)
                .map(|((room, _), _)| *room),
        );
        let mut direct: HashMap<Id, Vec<Id>> = HashMap::new();
        for stay in store::rooms::current_members(conn, &direct_rooms)? {
            direct.entry(stay.room_id).or_default().push(stay.user_id);
        }
        let members = distinct(direct.values().flatten().copied());
        let blocks = store::social::blocks_among(conn, &members)?
            .into_iter()
            .collect();
        // The mentioned users' stays: one query for the whole group.
        let mentioning = || sends.iter().filter(|s| !s.mention_ids.is_empty());
        let mentionable = store::rooms::current_stays_among(
            conn,
            &distinct(mentioning().map(|s| s.room)),
            &distinct(mentioning().flat_map(|s| s.mention_ids.iter().copied())),
        )?
        .into_iter()
        .collect();
        Ok(Known {
            answers,
            stays,
            direct,
            blocks,
            mentionable,
        })
    }
}

/// Makes each stored outcome a whole `Sent` again. A key stored since 2026-12-07 keeps only its
/// send's event id (`{"event_id":N}`), not the answer: the message is the payload of that
/// `message.created` event, the same JSON the first answer was made from, so a retry's answer
/// is the same byte for byte, and the key's row is about a third of the size (a keyed send
/// writes its row in the same commit as the message; the key table holds a day of them).
/// Older keys kept the whole answer and are left as they are. One query for all the retries of
/// a group, none for a group without retries.
fn complete(conn: &mut DbConnection, rows: &mut [IdempotencyRow]) -> Result<()> {
    #[derive(Deserialize)]
    struct Stored {
        #[serde(deserialize_with = "event_id")]
        event_id: i64,
        message: Option<serde::de::IgnoredAny>,
    }
    let mut short: Vec<(usize, i64)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let stored: Stored = serde_json::from_str(&row.outcome)?;
        if stored.message.is_none() {
            short.push((i, stored.event_id));
        }
    }
    if short.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = short.iter().map(|&(_, id)| id).collect();
    let mut payloads: HashMap<i64, String> =
        store::events::payloads(conn, &ids)?.into_iter().collect();
    // An event pruned while its key lives (the event retention set shorter than the keys'
    // lifetime): the message as it is now.
    let pruned: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| !payloads.contains_key(id))
        .collect();
    if !pruned.is_empty() {
        let found = store::messages::find_by_seqs(conn, &pruned)?;
        for (row, view) in found.iter().zip(message_views(conn, &found)?) {
            payloads.insert(row.seq, serde_json::to_string(&view)?);
        }
    }
    for (i, id) in short {
        let payload = payloads.get(&id).ok_or_else(|| {
            Error::internal(anyhow::anyhow!("the message of a stored key is gone"))
        })?;
        rows[i].outcome = format!(r#"{{"message":{payload},"event_id":{id}}}"#);
    }
    Ok(())
}

/// Decides one send: a stored outcome, a retry of an earlier send of the group, a new message,
/// or a client error.
fn check(
    conn: &mut DbConnection,
    send: &SendRequest,
    known: &Known,
    keyed: &HashMap<(Id, &str), (usize, &str)>,
    claimed: &mut HashSet<Id>,
) -> Result<Verdict> {
    if let Some(Keyed { key, request_hash }) = &send.key {
        let reused = || {
            Error::conflict(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )
        };
        if let Some(done) = known.answers.get(&(send.author, key.clone())) {
            if done.request_hash != *request_hash {
                return Err(reused());
            }
            return Ok(Verdict::Stored(serde_json::from_str(&done.outcome)?));
        }
        if let Some(&(first, hash)) = keyed.get(&(send.author, key.as_str())) {
            if hash != request_hash {
                return Err(reused());
            }
            return Ok(Verdict::SameAs(first));
        }
    }
    let kind = known
        .stays
        .get(&(send.room, send.author))
        .ok_or_else(Error::room_not_found)?;
    if *kind == RoomKind::Direct && known.blocked(send.room, send.author) {
        return Err(Error::blocked());
    }
    let strangers: Vec<String> = send
        .mention_ids
        .iter()
        .filter(|user| !known.mentionable.contains(&(send.room, **user)))
        .map(Id::to_string)
        .collect();
    if !strangers.is_empty() {
        return Err(Error::validation(
            "mention_ids",
            format!("not members of this room: {}", strangers.join(", ")),
        ));
    }
    if let Some(parent) = send.reply_to {
        if store::messages::find_in_room(conn, send.room, parent)?.is_none() {
            return Err(Error::validation(
                "reply_to",
                "no such message in this room",
            ));
        }
    }
    let files = store::attachments::find_many(conn, &send.attachment_ids)?;
    let usable = files.len() == send.attachment_ids.len()
        && files.iter().all(|f| {
            f.owner_id == send.author && f.message_id.is_none() && !claimed.contains(&f.id)
        });
    if !usable {
        return Err(Error::validation(
            "attachment_ids",
            "each must be an upload of yours not attached to another message",
        ));
    }
    claimed.extend(send.attachment_ids.iter().copied());
    let row = MessageRow {
        id: Id::new(),
        room_id: send.room,
        seq: 0,
        author_id: send.author,
        body: send.body.clone(),
        reply_to: send.reply_to,
        created_at: Time::now(),
        edited_at: None,
        deleted_at: None,
    };
    Ok(Verdict::New(Box::new(row), files))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::crypto::sha256_hex;
    use crate::store::testing::{database, room as group_room, stay, user};
    use crate::store::{attachments::AttachmentRow, schema};
    use diesel::prelude::*;

    fn request(author: Id, room: Id, body: &str, key: Option<&str>) -> Box<SendRequest> {
        Box::new(SendRequest {
            author,
            room,
            body: body.into(),
            reply_to: None,
            attachment_ids: Vec::new(),
            mention_ids: Vec::new(),
            key: key.map(|key| Keyed {
                key: key.to_string(),
                request_hash: sha256_hex(format!("{room}{body}").as_bytes()),
            }),
        })
    }

    #[test]
    fn an_outcome_stored_before_outcomes_were_stored_reads_back() {
        // Keys stored by earlier versions kept the HTTP answer, whose event id is the cursor.
        let sent = Sent {
            message: Message::from(&MessageRow {
                id: Id::new(),
                room_id: Id::new(),
                seq: 7,
                author_id: Id::new(),
                body: "hi".into(),
                reply_to: None,
                created_at: Time::now(),
                edited_at: None,
                deleted_at: None,
            }),
            event: 7,
        };
        let now = serde_json::to_string(&sent).unwrap();
        let before = now.replace(r#""event_id":7"#, r#""event_id":"7""#);
        assert_ne!(now, before);
        let read: Sent = serde_json::from_str(&before).unwrap();
        assert_eq!(serde_json::to_string(&read).unwrap(), now);
        assert!(
            serde_json::from_str::<Sent>(&now.replace(r#""event_id":7"#, r#""event_id":"x""#))
                .is_err()
        );
        // Outcomes stored before mentions existed have no `mention_ids`: none.
        let unmentioned = now.replace(r#","mention_ids":[]"#, "");
        assert_ne!(unmentioned, now);
        let read: Sent = serde_json::from_str(&unmentioned).unwrap();
        assert_eq!(serde_json::to_string(&read).unwrap(), now);
    }

    #[test]
    fn a_key_stores_its_event_id_and_a_retry_gets_the_answer_back_from_the_event() {
        let mut conn = database();
        let alice = user(&mut conn, "alice");
        let room = group_room(&mut conn, alice);
        stay(&mut conn, room, alice, 1, None);
        let send = |conn: &mut DbConnection, body: &str, key: &str| {
            let mut batch = Batch::for_test(conn);
            write(&mut batch, &[request(alice, room, body, Some(key))])
                .unwrap()
                .remove(0)
                .unwrap()
        };
        let json = |sent: &Sent| serde_json::to_string(sent).unwrap();
        let first = send(&mut conn, "hello", "k1");
        let other = send(&mut conn, "again", "k2");

        // The row keeps the event id only, not the message.
        let stored: Vec<String> = schema::idempotency_keys::table
            .select(schema::idempotency_keys::outcome)
            .order(schema::idempotency_keys::key)
            .load(&mut conn)
            .unwrap();
        assert_eq!(
            stored,
            [
                format!(r#"{{"event_id":{}}}"#, first.event),
                format!(r#"{{"event_id":{}}}"#, other.event)
            ]
        );

        // A retry, later, in a group with a new send: the same answer, byte for byte, and
        // nothing written for it.
        let mut batch = Batch::for_test(&mut conn);
        let answers = write(
            &mut batch,
            &[
                request(alice, room, "hello", Some("k1")),
                request(alice, room, "new", Some("k3")),
            ],
        )
        .unwrap();
        assert_eq!(json(answers[0].as_ref().unwrap()), json(&first));
        assert_ne!(answers[1].as_ref().unwrap().message.id, first.message.id);
        let messages: i64 = schema::messages::table
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(messages, 3);

        // The event pruned while the key lives (retention shorter than the keys' lifetime):
        // the message as the messages table has it, the same here.
        diesel::delete(schema::events::table.filter(schema::events::id.eq(other.event)))
            .execute(&mut conn)
            .unwrap();
        assert_eq!(json(&send(&mut conn, "again", "k2")), json(&other));
        // Both gone: the server's fault, not a new message.
        diesel::delete(schema::events::table.filter(schema::events::id.eq(first.event)))
            .execute(&mut conn)
            .unwrap();
        diesel::update(schema::messages::table.filter(schema::messages::seq.eq(first.event)))
            .set(schema::messages::seq.eq(-1))
            .execute(&mut conn)
            .unwrap();
        let mut batch = Batch::for_test(&mut conn);
        let answer = write(&mut batch, &[request(alice, room, "hello", Some("k1"))]);
        assert!(answer.is_err());
        let messages: i64 = schema::messages::table
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(messages, 3);
    }

    fn outcome(answer: &Result<Sent>) -> &'static str {
        match answer {
            Ok(_) => "sent",
            Err(e) => e.code,
        }
    }

    #[test]
    fn one_group_decides_each_send_in_order_and_writes_the_new_ones_together() {
        // Arrange: a group room of alice and bob, carol outside it, an upload of alice's.
        let mut conn = database();
        let (alice, bob, carol) = (
            user(&mut conn, "alice"),
            user(&mut conn, "bob"),
            user(&mut conn, "carol"),
        );
        let room = group_room(&mut conn, alice);
        stay(&mut conn, room, alice, 0, None);
        stay(&mut conn, room, bob, 0, None);
        let photo = Id::new();
        store::attachments::insert(
            &mut conn,
            &AttachmentRow {
                id: photo,
                owner_id: alice,
                content_type: "image/png".into(),
                size: 1,
                width: 1,
                height: 1,
                thumb_content_type: "image/png".into(),
                message_id: None,
                position: 0,
                created_at: Time::now(),
            },
        )
        .unwrap();
        let with_photo = |author| {
            let mut r = request(author, room, "", None);
            r.attachment_ids = vec![photo];
            r
        };
        let sends = vec![
            request(alice, room, "x", Some("k")), // new
            request(alice, room, "x", Some("k")), // a retry of 0 in the same group
            request(alice, room, "y", Some("k")), // the key reused for another body
            request(carol, room, "hi", None),     // not a member
            with_photo(alice),                    // new, takes the photo
            with_photo(alice),                    // the photo is taken by 4
            with_photo(bob),                      // not bob's photo
            request(bob, room, "z", Some("k")),   // keys are per user: new
        ];

        // Act
        let mut batch = Batch::for_test(&mut conn);
        let answers = write(&mut batch, &sends).unwrap();
        let head = batch.last_event();

        // Assert
        let outcomes: Vec<&str> = answers.iter().map(outcome).collect();
        assert_eq!(
            outcomes,
            [
                "sent",
                "sent",
                "idempotency_key_reused",
                "room_not_found",
                "sent",
                "validation_failed",
                "validation_failed",
                "sent"
            ]
        );
        let body = |i: usize| serde_json::to_string(answers[i].as_ref().unwrap()).unwrap();
        assert_eq!(
            body(1),
            body(0),
            "a retry in the same group gets the same answer"
        );
        let rows: Vec<(i64, String)> = schema::messages::table
            .select((schema::messages::seq, schema::messages::body))
            .order(schema::messages::seq.asc())
            .load(&mut conn)
            .unwrap();
        let events: Vec<i64> = schema::events::table
            .select(schema::events::id)
            .order(schema::events::id.asc())
            .load(&mut conn)
            .unwrap();
        assert_eq!(events, [1, 2, 3], "one event per new message, no holes");
        assert_eq!(head, 3);
        let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(seqs, events, "a message's seq is its event's id");
        let bodies: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        assert_eq!(bodies, ["x", "", "z"]);
        let sent: serde_json::Value = serde_json::from_str(&body(4)).unwrap();
        assert_eq!(sent["event_id"], 2);
        let carrier = store::attachments::find(&mut conn, photo).unwrap().unwrap();
        assert_eq!(
            carrier.message_id.map(|m| m.to_string()).as_deref(),
            sent["message"]["id"].as_str()
        );
        assert_eq!(sent["message"]["attachments"][0]["id"], photo.to_string());
        let last: serde_json::Value = serde_json::from_str(&body(7)).unwrap();
        let room_row = store::rooms::find_for_member(&mut conn, room, bob)
            .unwrap()
            .unwrap();
        assert_eq!(
            room_row.last_message_id.map(|m| m.to_string()).as_deref(),
            last["message"]["id"].as_str()
        );

        // A later group: the stored outcome comes back, and ids go on after the last.
        let again = vec![
            request(alice, room, "x", Some("k")),
            request(alice, room, "w", None),
        ];
        let mut batch = Batch::for_test(&mut conn);
        let answers = write(&mut batch, &again).unwrap();
        let stored = serde_json::to_string(answers[0].as_ref().unwrap()).unwrap();
        assert_eq!(
            stored,
            body(0),
            "a retry gets the outcome of the first send"
        );
        assert_eq!(answers[1].as_ref().unwrap().event, 4);
        let appended = store::events::insert(
            &mut conn,
            &store::events::NewEvent {
                kind: Kind::RoomUpdated.as_str(),
                room_id: Some(room),
                payload: "{}",
                created_at: Time::now(),
                expires_at: None,
            },
        )
        .unwrap();
        assert_eq!(
            appended, 5,
            "an append without an id continues after reserved ones"
        );
    }

    #[test]
    fn mentions_must_be_current_members_of_the_room_and_are_stored_with_their_message() {
        // Arrange: alice and bob in `room`, carol gone from it; carol and alice in `other`.
        let mut conn = database();
        let (alice, bob, carol) = (
            user(&mut conn, "alice"),
            user(&mut conn, "bob"),
            user(&mut conn, "carol"),
        );
        let room = group_room(&mut conn, alice);
        stay(&mut conn, room, alice, 0, None);
        stay(&mut conn, room, bob, 0, None);
        stay(&mut conn, room, carol, 0, Some(0));
        let other = group_room(&mut conn, carol);
        stay(&mut conn, other, carol, 0, None);
        stay(&mut conn, other, alice, 0, None);
        let mentioning = |author, room, users: &[Id]| {
            let mut r = request(author, room, "hi", None);
            r.mention_ids = distinct(users.iter().copied());
            r
        };
        let sends = vec![
            mentioning(alice, room, &[bob, alice]), // herself too: allowed
            mentioning(alice, room, &[bob, carol]), // carol left the room
            mentioning(alice, other, &[carol]),     // but is in this one
            mentioning(bob, room, &[]),
        ];

        // Act
        let mut batch = Batch::for_test(&mut conn);
        let answers = write(&mut batch, &sends).unwrap();

        // Assert
        let outcomes: Vec<&str> = answers.iter().map(outcome).collect();
        assert_eq!(outcomes, ["sent", "validation_failed", "sent", "sent"]);
        let refused = answers[1].as_ref().unwrap_err();
        let why = &refused.fields.as_ref().unwrap()["mention_ids"];
        assert!(why.contains(&carol.to_string()) && !why.contains(&bob.to_string()));
        let sent = |i: usize| answers[i].as_ref().unwrap().message.clone();
        assert_eq!(sent(0).mention_ids, distinct([alice, bob].into_iter()));
        assert_eq!(sent(2).mention_ids, [carol]);
        assert!(sent(3).mention_ids.is_empty());
        for i in [0, 2, 3] {
            let stored = store::notifications::mentions_of(&mut conn, sent(i).id).unwrap();
            assert_eq!(stored, sent(i).mention_ids, "send {i}");
        }
        let rows: Vec<MentionRow> = schema::message_mentions::table
            .select(MentionRow::as_select())
            .load(&mut conn)
            .unwrap();
        assert_eq!(rows.len(), 3, "nothing of the refused send");
        let seq: i64 = schema::messages::table
            .find(sent(2).id)
            .select(schema::messages::seq)
            .first(&mut conn)
            .unwrap();
        assert!(rows
            .iter()
            .any(|r| r.user_id == carol && r.room_id == other && r.seq == seq));
    }

    /// Every statement of a group of sends is kept prepared after the first group: SQLite parses
    /// a statement that is not in diesel's cache (`sql_query`, any `UPDATE`, an `IN` list whose
    /// length varies) at every group, in the writer's thread, where a profile found two such
    /// parses to be 4 % of its time.
    #[test]
    fn a_group_of_sends_parses_no_statement_after_the_first() {
        use std::sync::{Arc, Mutex};
        let mut conn = database();
        let (alice, bob) = (user(&mut conn, "alice"), user(&mut conn, "bob"));
        let rooms = [group_room(&mut conn, alice), group_room(&mut conn, bob)];
        for room in rooms {
            stay(&mut conn, room, alice, 1, None);
            stay(&mut conn, room, bob, 1, None);
        }
        // (statement started, statement put in diesel's cache), as SQL texts.
        type Seen = (Vec<String>, Vec<String>);
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let DbConnection::Sqlite(c) = &mut conn else {
            unreachable!("the test database is SQLite")
        };
        let log = seen.clone();
        c.set_instrumentation(move |event: diesel::connection::InstrumentationEvent<'_>| {
            let mut seen = log.lock().unwrap();
            match event {
                diesel::connection::InstrumentationEvent::StartQuery { query, .. } => {
                    let text = query.to_string();
                    let sql = text.split(" -- binds:").next().unwrap_or_default();
                    seen.0.push(sql.trim().to_string());
                }
                diesel::connection::InstrumentationEvent::CacheQuery { sql, .. } => {
                    seen.1.push(sql.trim().to_string());
                }
                _ => {}
            }
        });
        let mut n = 0;
        let mut group = |conn: &mut DbConnection| {
            let sends: Vec<_> = [(alice, 0), (bob, 0), (alice, 1), (bob, 1), (alice, 0)]
                .into_iter()
                .map(|(author, room)| {
                    n += 1;
                    let key = format!("k{n}");
                    request(author, rooms[room], &format!("m{n}"), Some(&key))
                })
                .collect();
            let mut batch = Batch::for_test(conn);
            let answers = write(&mut batch, &sends).unwrap();
            assert!(answers.iter().all(|a| a.is_ok()));
        };
        group(&mut conn);
        let first = seen.lock().unwrap().0.len();
        group(&mut conn);
        let (started, cached) = seen.lock().unwrap().clone();
        let second = &started[first..];
        assert!(
            second.len() >= 5,
            "the group ran its statements: {second:?}"
        );
        let parsed: Vec<&String> = second.iter().filter(|sql| !cached.contains(sql)).collect();
        assert!(parsed.is_empty(), "parsed again: {parsed:#?}");
        let messages: i64 = schema::messages::table
            .count()
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(messages, 10);
        // Each room's newest message is the last of the group sent to it.
        for (room, body) in [(rooms[0], "m10"), (rooms[1], "m9")] {
            let newest: Option<Id> = schema::rooms::table
                .find(room)
                .select(schema::rooms::last_message_id)
                .first(&mut conn)
                .unwrap();
            let id: Id = schema::messages::table
                .filter(schema::messages::body.eq(body))
                .select(schema::messages::id)
                .first(&mut conn)
                .unwrap();
            assert_eq!(newest, Some(id));
        }
    }
}
