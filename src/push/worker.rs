//! The push worker: one per deployment, reading the event log from its own durable cursor.
//!
//! - **One runs.** On PostgreSQL the node that holds a session-level advisory lock runs it (a
//!   dead node's connection drops and another node takes the lock within [`ELECTION_EVERY`]);
//!   on SQLite, a lease row renewed every few seconds ([`LEASE`]).
//! - **Only committed events.** It reads the log after its cursor, in id order, and waits until
//!   an event is `HUBBUB_PUSH_GRACE_MS` old, so that a member who read the message on another
//!   device in the meantime isn't pushed (their read marker is checked then).
//! - **At least once.** The cursor moves past an event only after each of its pushes was
//!   delivered or given up, in a transaction that checks this node still holds the role. A
//!   crash in between sends those pushes again, with the same dedupe key (the event id: Web
//!   Push's `Topic`, FCM's collapse key, `event_id` in the payload).
//! - **Bounded.** At most `HUBBUB_PUSH_QUEUE` deliveries are held at once (the worker reads no
//!   further while they are; a single event with more pushes than that is the one exception,
//!   sent alone), `HUBBUB_PUSH_CONCURRENCY` of them in flight; each is tried [`ATTEMPTS`] times
//!   with back-off, honouring `Retry-After` up to [`LONGEST_WAIT`], and given up at its
//!   [`deadline`] whatever it is waiting for.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Deserialize;
use serde_json::{json, Map};
use tokio::sync::watch;

use crate::config::PushSettings;
use crate::core::event::Kind;
use crate::core::notifications;
use crate::domain::{Id, NotifyLevel, Time};
use crate::error::{Error, Result};
use crate::events;
use crate::metrics::Metrics;
use crate::push::deliver::{Notification, Outcome, Senders};
use crate::push::transport::Transport;
use crate::store::{self, events::EventRow, push::SubscriptionRow, Backend, DbConnection};
use crate::store::{push_worker, Dedicated, Manager};

/// How often a node that doesn't run the worker tries to take the role.
pub const ELECTION_EVERY: Duration = Duration::from_secs(2);
/// SQLite: how long the lease lasts without a renewal (the worker renews it every loop, at
/// least every [`ELECTION_EVERY`]).
pub const LEASE: Duration = Duration::from_secs(10);
/// Tries per delivery (the first and the retries).
pub const ATTEMPTS: u32 = 4;
/// The longest wait before a retry, whatever `Retry-After` asked for.
pub const LONGEST_WAIT: Duration = Duration::from_secs(30);
/// Events read per query.
const PAGE: i64 = 256;
/// The longest a body preview (`HUBBUB_PUSH_PREVIEW`) gets, in characters.
const PREVIEW_CHARS: usize = 120;

/// Everything the worker needs.
pub struct Worker {
    pub manager: Manager,
    pub senders: Arc<Senders>,
    pub transport: Box<dyn Transport>,
    pub settings: PushSettings,
    pub metrics: Arc<Metrics>,
    /// This node's doorbell (the newest event it wrote): wakes the worker early.
    pub doorbell: watch::Receiver<i64>,
    /// How often to look at the log without a ring (other nodes' writes).
    pub poll: Duration,
}

/// One push to send: a subscription and what it gets.
#[derive(Debug, Clone)]
pub struct Job {
    pub subscription: SubscriptionRow,
    pub notification: Notification,
}

/// How this node holds the worker's role.
enum Role {
    /// PostgreSQL: the advisory lock of the dedicated connection's session.
    Lock,
    /// SQLite: the lease row, under this node's random holder id.
    Lease(i64),
}

impl Worker {
    /// Runs until `stop` turns true: waits for the role, then works until it loses it.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let role = match self.manager.backend() {
            Backend::Postgres => Role::Lock,
            Backend::Sqlite => Role::Lease(rand::random::<i64>().abs().max(1)),
        };
        let mut db = Dedicated::new(self.manager.clone());
        loop {
            if *stop.borrow() {
                return;
            }
            match elect(&mut db, &role).await {
                Ok(true) => {
                    tracing::info!("this node runs the push worker");
                    self.metrics.push_leader.store(1, Ordering::Relaxed);
                    let ended = self.work(&mut db, &role, &mut stop).await;
                    self.metrics.push_leader.store(0, Ordering::Relaxed);
                    match ended {
                        Ok(()) => {
                            if let Role::Lease(me) = role {
                                let _ = db
                                    .run(move |c| {
                                        store::write_tx(c, |c| {
                                            push_worker::release_lease(c, me).map_err(Error::from)
                                        })
                                    })
                                    .await;
                            }
                            return; // stopped
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "the push worker stopped; electing again")
                        }
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "push worker election failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(ELECTION_EVERY) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Works as the deployment's worker until `stop` (`Ok`) or until the role is lost or the
    /// database fails (`Err`).
    async fn work(
        &mut self,
        db: &mut Dedicated,
        role: &Role,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<()> {
        let mut cursor = db
            .run(|c| {
                let head = store::events::head(c)?;
                Ok(store::write_tx(c, |c| {
                    push_worker::cursor_or_init(c, head)
                })?)
            })
            .await?;
        let mut renewed = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            if renewed.elapsed() >= ELECTION_EVERY {
                if !elect(db, role).await? {
                    return Err(Error::internal(anyhow::anyhow!("lost the push lease")));
                }
                renewed = tokio::time::Instant::now();
            }
            let (rows, head) = db
                .run(move |c| {
                    let rows = store::events::range(c, cursor, None, PAGE)?;
                    Ok((rows, store::events::head(c)?))
                })
                .await?;
            self.metrics
                .push_lag_events
                .store(head.saturating_sub(cursor) as u64, Ordering::Relaxed);
            let now = Time::now();
            let grace = chrono::Duration::from_std(self.settings.grace).unwrap_or_default();
            let due_at = |row: &EventRow| row.created_at.0 + grace;
            let due: Vec<EventRow> = rows
                .iter()
                .take_while(|row| due_at(row) <= now.0)
                .cloned()
                .collect();
            if due.is_empty() {
                // Sleep until the first event is due, or until something new may be there.
                let wait = match rows.first() {
                    Some(row) => (due_at(row) - now.0).to_std().unwrap_or_default(),
                    None => self.poll,
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait.min(self.poll).max(Duration::from_millis(5))) => {}
                    _ = self.doorbell.changed(), if rows.is_empty() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let settings = self.settings.clone();
            let (jobs, through) = db.run(move |c| plan(c, &due, &settings, now)).await?;
            let gone = self.deliver(jobs).await;
            let fence = match role {
                Role::Lock => None,
                Role::Lease(me) => Some(*me),
            };
            db.run(move |c| {
                store::write_tx(c, |c| {
                    if let Some(me) = fence {
                        if !push_worker::holds_lease(c, me)? {
                            return Err(Error::internal(anyhow::anyhow!("lost the push lease")));
                        }
                    }
                    for id in &gone {
                        store::push::delete(c, *id)?;
                    }
                    push_worker::advance_cursor(c, through)?;
                    Ok(())
                })
            })
            .await?;
            cursor = through;
        }
    }

    /// Sends the jobs, `concurrency` at a time, each with its retries; returns the
    /// subscriptions found gone.
    async fn deliver(&self, jobs: Vec<Job>) -> Vec<Id> {
        let mut waiting = jobs.into_iter();
        let mut held = waiting.len();
        let mut running = FuturesUnordered::new();
        let mut gone = Vec::new();
        loop {
            while running.len() < self.settings.concurrency {
                match waiting.next() {
                    Some(job) => running.push(self.deliver_within_deadline(job)),
                    None => break,
                }
            }
            self.metrics
                .push_queue
                .store(held as u64, Ordering::Relaxed);
            match running.next().await {
                Some(Some(id)) => {
                    gone.push(id);
                    held -= 1;
                }
                Some(None) => held -= 1,
                None => break,
            }
        }
        self.metrics.push_queue.store(0, Ordering::Relaxed);
        gone
    }

    /// One job, given up (`failed`) when it isn't done within [`deadline`]: an FCM try may
    /// take more than one request (an access token first, a fresh one after a 401), and the
    /// events behind it wait for it.
    async fn deliver_within_deadline(&self, job: Job) -> Option<Id> {
        let (kind, id) = (job.subscription.kind.as_str(), job.subscription.id);
        let limit = deadline(self.settings.timeout);
        match tokio::time::timeout(limit, self.deliver_one(job)).await {
            Ok(gone) => gone,
            Err(_) => {
                self.metrics.push_sent(kind, "failed");
                tracing::debug!(subscription = %id, ?limit, "push given up at its deadline");
                None
            }
        }
    }

    /// One job, tried up to [`ATTEMPTS`] times; `Some(id)` when its subscription is gone.
    async fn deliver_one(&self, job: Job) -> Option<Id> {
        let kind = job.subscription.kind.as_str();
        for attempt in 1..=ATTEMPTS {
            let outcome = self
                .senders
                .send(&*self.transport, &job.subscription, &job.notification)
                .await;
            let last = attempt == ATTEMPTS;
            match outcome {
                Outcome::Retry(_) if last => {
                    self.metrics.push_sent(kind, "failed");
                    tracing::debug!(subscription = %job.subscription.id, "push given up after retries");
                    return None;
                }
                Outcome::Retry(wait) => {
                    self.metrics.push_sent(kind, "retry");
                    let wait = wait.unwrap_or(backoff(attempt)).min(LONGEST_WAIT);
                    tokio::time::sleep(wait).await;
                }
                Outcome::Gone => {
                    self.metrics.push_sent(kind, "gone");
                    return Some(job.subscription.id);
                }
                Outcome::Failed(why) => {
                    self.metrics.push_sent(kind, "failed");
                    tracing::debug!(subscription = %job.subscription.id, why, "push failed");
                    return None;
                }
                Outcome::Delivered => {
                    self.metrics.push_sent(kind, "delivered");
                    return None;
                }
            }
        }
        None
    }
}

/// The longest one delivery holds the worker (and so the events behind it): every try taking
/// the whole request `timeout` (`HUBBUB_PUSH_TIMEOUT_SECS`) and the longest wait before each
/// retry; 130 s with the defaults (docs/operations.md).
pub fn deadline(timeout: Duration) -> Duration {
    timeout * ATTEMPTS + LONGEST_WAIT * (ATTEMPTS - 1)
}

/// The wait before retry number `attempt` when the push service named none: 1 s, 2 s, 4 s…
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(5))
}

/// Takes or keeps the worker's role; `Ok(false)`: another node holds it.
async fn elect(db: &mut Dedicated, role: &Role) -> Result<bool> {
    match role {
        Role::Lock => db.run(|c| Ok(push_worker::try_lock(c)?)).await,
        Role::Lease(me) => {
            let me = *me;
            db.run(move |c| {
                let now = Time::now().0.timestamp_millis();
                let until = now + LEASE.as_millis() as i64;
                store::write_tx(c, |c| {
                    push_worker::take_lease(c, me, now, until).map_err(Error::from)
                })
            })
            .await
        }
    }
}

/// What the worker reads of a `message.created` payload.
#[derive(Deserialize)]
struct Created {
    id: Id,
    room_id: Id,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    mention_ids: Vec<Id>,
}

/// The pushes of the due events, in order, as many events' as `settings.queue` holds (the
/// first event's all the same when it alone has more); and the id of the last event they
/// cover (the cursor's next place).
pub fn plan(
    conn: &mut DbConnection,
    due: &[EventRow],
    settings: &PushSettings,
    now: Time,
) -> Result<(Vec<Job>, i64)> {
    let messages: Vec<(i64, Option<Created>)> = due
        .iter()
        .map(|row| {
            let created = (Kind::parse(&row.kind) == Some(Kind::MessageCreated))
                .then(|| serde_json::from_str::<Created>(&row.payload))
                .and_then(|parsed| {
                    parsed
                        .map_err(|e| {
                            tracing::warn!(event = row.id, error = %e, "unreadable message.created")
                        })
                        .ok()
                });
            (row.id, created)
        })
        .collect();
    // One query for the page says which rooms have a member with a subscription: a message
    // elsewhere costs nothing more (most of them, on a server where few devices subscribed).
    let rooms = store::distinct(
        messages
            .iter()
            .filter_map(|(_, m)| Some(m.as_ref()?.room_id)),
    );
    let heard: HashSet<Id> = push_worker::rooms_with_subscribers(conn, &rooms)?
        .into_iter()
        .collect();
    let mut jobs: Vec<Job> = Vec::new();
    let mut through = 0;
    for (id, message) in messages {
        if jobs.len() >= settings.queue {
            break;
        }
        if let Some(message) = message.filter(|m| heard.contains(&m.room_id)) {
            let pushes = for_message(conn, id, &message, settings, now)?;
            // An event's pushes are held together (the cursor passes it once they are all
            // out): one that would overflow the queue waits for the next round, unless the
            // queue is empty, so that an event with more pushes than the queue holds still
            // goes out (alone).
            if !jobs.is_empty() && jobs.len() + pushes.len() > settings.queue {
                break;
            }
            jobs.extend(pushes);
        }
        through = id;
    }
    Ok((jobs, through))
}

/// The pushes of one new message: to each member other than the author who was there when
/// it was sent and still is, hasn't read it, whose level allows it (`mentions`: only when
/// mentioned), isn't muted, and has no block with the author either way — one per
/// subscription of theirs.
fn for_message(
    conn: &mut DbConnection,
    event: i64,
    message: &Created,
    settings: &PushSettings,
    now: Time,
) -> Result<Vec<Job>> {
    let Some(row) = store::messages::find_many(conn, &[message.id])?
        .into_iter()
        .next()
    else {
        return Ok(Vec::new()); // gone with its room's history
    };
    if row.deleted_at.is_some() {
        return Ok(Vec::new()); // deleted within the grace period
    }
    let readers = push_worker::unread_members(conn, row.room_id, event, row.seq, row.author_id)?;
    if readers.is_empty() {
        return Ok(Vec::new());
    }
    let users: Vec<Id> = readers.iter().map(|r| r.user).collect();
    let subscriptions = store::push::for_users_live(conn, &users, now)?;
    if subscriptions.is_empty() {
        return Ok(Vec::new());
    }
    let mut candidates: Vec<Id> = store::distinct(subscriptions.iter().map(|s| s.user_id));
    let settings_of: HashMap<Id, (NotifyLevel, Option<Time>)> =
        store::notifications::levels_for(conn, row.room_id, &candidates)?
            .into_iter()
            .map(|(user, level, until)| (user, (level, until)))
            .collect();
    let mentioned: HashSet<Id> = message.mention_ids.iter().copied().collect();
    let mut with_author = candidates.clone();
    with_author.push(row.author_id);
    let blocks: HashSet<(Id, Id)> = store::social::blocks_among(conn, &with_author)?
        .into_iter()
        .collect();
    candidates.retain(|user| {
        let setting = settings_of.get(user).copied();
        let blocked =
            blocks.contains(&(*user, row.author_id)) || blocks.contains(&(row.author_id, *user));
        notifications::notifies(setting, mentioned.contains(user), now) && !blocked
    });
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let unread: HashMap<Id, i64> = push_worker::unread_in_room(conn, row.room_id, &candidates)?
        .into_iter()
        .collect();
    let preview = if settings.preview {
        let sender = store::users::find(conn, row.author_id)?.map(|u| u.display_name);
        let room_name = push_worker::room_name(conn, row.room_id)?;
        let body: Option<String> = message
            .body
            .as_deref()
            .filter(|b| !b.is_empty())
            .map(|b| b.chars().take(PREVIEW_CHARS).collect());
        Some((sender, room_name, body))
    } else {
        None
    };
    let keep: HashSet<Id> = candidates.into_iter().collect();
    Ok(subscriptions
        .into_iter()
        .filter(|s| keep.contains(&s.user_id))
        .map(|subscription| {
            let mut payload = Map::new();
            payload.insert("type".into(), json!(Kind::MessageCreated.as_str()));
            payload.insert("room_id".into(), json!(message.room_id));
            payload.insert("message_id".into(), json!(message.id));
            payload.insert("event_id".into(), json!(events::cursor(event)));
            payload.insert(
                "unread_count".into(),
                json!(unread.get(&subscription.user_id).copied().unwrap_or(1)),
            );
            payload.insert(
                "mentioned".into(),
                json!(mentioned.contains(&subscription.user_id)),
            );
            if let Some((sender, room_name, body)) = &preview {
                payload.insert("sender_name".into(), json!(sender));
                payload.insert("room_name".into(), json!(room_name));
                payload.insert("body".into(), json!(body));
            }
            Job {
                subscription,
                notification: Notification {
                    event_id: event,
                    payload,
                },
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;

    use super::*;
    use crate::domain::PushKind;
    use crate::store::messages::{MessageRow, NewMessage};
    use crate::store::schema::{push_subscriptions, room_notifications};
    use crate::store::testing::{database, room, stay, user};

    fn settings() -> PushSettings {
        crate::config::Settings::from_lookup(|_| None).unwrap().push
    }

    /// A subscription made by a new session of `user` that ends at `expires_at`.
    fn subscribe_until(conn: &mut DbConnection, user: Id, expires_at: Time) -> Id {
        let session = Id::new();
        store::sessions::insert(
            conn,
            &store::sessions::SessionRow {
                id: session,
                key_hash: session.to_string(),
                user_id: user,
                state: "{}".into(),
                expires_at,
                created_at: Time::now(),
            },
        )
        .unwrap();
        let id = Id::new();
        diesel::insert_into(push_subscriptions::table)
            .values(&SubscriptionRow {
                id,
                user_id: user,
                credential_id: session,
                kind: PushKind::WebPush,
                target: format!("https://push.example/{id}"),
                p256dh: Some("k".into()),
                auth: Some("a".into()),
                created_at: Time::now(),
            })
            .execute(conn)
            .unwrap();
        id
    }

    fn subscribe(conn: &mut DbConnection, user: Id) -> Id {
        subscribe_until(conn, user, Time(Time::now().0 + chrono::Duration::days(1)))
    }

    /// Sends a message as `author` in `room` mentioning `mentions`; returns its event row.
    fn send(conn: &mut DbConnection, room: Id, author: Id, mentions: &[Id]) -> EventRow {
        let id = Id::new();
        let row = MessageRow {
            id,
            room_id: room,
            seq: 0,
            author_id: author,
            body: "hello there".into(),
            reply_to: None,
            created_at: Time::now(),
            edited_at: None,
            deleted_at: None,
        };
        let payload = json!({
            "id": id, "room_id": room, "author_id": author, "body": "hello there",
            "mention_ids": mentions,
        })
        .to_string();
        let mut new = vec![NewMessage { row, payload }];
        let ids = store::messages::append_sent(conn, "message.created", &mut new).unwrap();
        store::events::range(conn, ids[0] - 1, Some(ids[0]), 1)
            .unwrap()
            .remove(0)
    }

    fn level(conn: &mut DbConnection, room: Id, user: Id, level: NotifyLevel, until: Option<Time>) {
        diesel::insert_into(room_notifications::table)
            .values((
                room_notifications::room_id.eq(room),
                room_notifications::user_id.eq(user),
                room_notifications::level.eq(level),
                room_notifications::muted_until.eq(until),
            ))
            .execute(conn)
            .unwrap();
    }

    /// The users the planned jobs go to.
    fn recipients(jobs: &[Job]) -> HashSet<Id> {
        jobs.iter().map(|j| j.subscription.user_id).collect()
    }

    #[test]
    fn a_message_is_pushed_to_the_members_who_should_hear_of_it_and_to_no_one_else() {
        let mut conn = database();
        let c = &mut conn;
        let [author, plain, mentions_only, mentioned, silent, muted, was_muted, blocker, reader, newcomer, gone, unsubscribed, expired] =
            [
                "author",
                "plain",
                "monly",
                "mentioned",
                "silent",
                "muted",
                "wasmuted",
                "blocker",
                "reader",
                "newcomer",
                "gone",
                "unsub",
                "expired",
            ]
            .map(|name| user(c, name));
        let r = room(c, author);
        for u in [
            author,
            plain,
            mentions_only,
            mentioned,
            silent,
            muted,
            was_muted,
            blocker,
            reader,
            unsubscribed,
            expired,
        ] {
            stay(c, r, u, 0, None);
        }
        stay(c, r, gone, 0, Some(0));
        // Signed in on a session that has expired (not yet pruned): that device hears nothing.
        subscribe_until(
            c,
            expired,
            Time(Time::now().0 - chrono::Duration::seconds(1)),
        );
        for u in [
            author,
            plain,
            mentions_only,
            mentioned,
            silent,
            muted,
            was_muted,
            blocker,
            reader,
            newcomer,
            gone,
        ] {
            subscribe(c, u);
        }
        level(c, r, mentions_only, NotifyLevel::Mentions, None);
        level(c, r, mentioned, NotifyLevel::Mentions, None);
        level(c, r, silent, NotifyLevel::None, None);
        let hour = chrono::Duration::hours(1);
        level(
            c,
            r,
            muted,
            NotifyLevel::All,
            Some(Time(Time::now().0 + hour)),
        );
        level(
            c,
            r,
            was_muted,
            NotifyLevel::All,
            Some(Time(Time::now().0 - hour)),
        );
        store::social::insert_block(c, blocker, author, Time::now()).unwrap();

        // `silent` is mentioned too: `none` silences mentions.
        let event = send(c, r, author, &[mentioned, silent]);
        // The reader read it on another device during the grace period.
        store::rooms::advance_read(c, r, reader, event.id).unwrap();
        // The newcomer joined after the message.
        stay(c, r, newcomer, event.id + 1, None);

        let (jobs, through) =
            plan(c, std::slice::from_ref(&event), &settings(), Time::now()).unwrap();

        assert_eq!(through, event.id);
        assert_eq!(
            recipients(&jobs),
            HashSet::from([plain, mentioned, was_muted]),
            "only members whose level, mute, blocks and read marker allow it"
        );
        let job = jobs
            .iter()
            .find(|j| j.subscription.user_id == mentioned)
            .unwrap();
        let p = &job.notification.payload;
        assert_eq!(job.notification.event_id, event.id);
        assert_eq!(p["type"], "message.created");
        assert_eq!(p["event_id"], json!(events::cursor(event.id)));
        assert_eq!(p["room_id"], json!(r));
        assert_eq!(p["unread_count"], 1);
        assert_eq!(p["mentioned"], true);
        assert!(
            p.get("body").is_none(),
            "no text without HUBBUB_PUSH_PREVIEW"
        );
    }

    #[test]
    fn a_block_either_way_between_author_and_member_silences_the_push() {
        let mut conn = database();
        let c = &mut conn;
        let [author, blocks_author, blocked_by_author, plain] =
            ["author", "blocker", "shunned", "plain"].map(|name| user(c, name));
        let r = room(c, author);
        for u in [author, blocks_author, blocked_by_author, plain] {
            stay(c, r, u, 0, None);
            subscribe(c, u);
        }
        store::social::insert_block(c, blocks_author, author, Time::now()).unwrap();
        store::social::insert_block(c, author, blocked_by_author, Time::now()).unwrap();
        let event = send(c, r, author, &[blocks_author, blocked_by_author]);

        let (jobs, through) =
            plan(c, std::slice::from_ref(&event), &settings(), Time::now()).unwrap();

        assert_eq!(through, event.id);
        assert_eq!(
            recipients(&jobs),
            HashSet::from([plain]),
            "neither the member who blocked the author nor the one the author blocked, \
             mentioned or not"
        );
    }

    #[test]
    fn the_preview_and_the_unread_count_are_the_recipients_own() {
        let mut conn = database();
        let c = &mut conn;
        let (author, bob) = (user(c, "author"), user(c, "bob"));
        let r = room(c, author);
        stay(c, r, author, 0, None);
        stay(c, r, bob, 0, None);
        subscribe(c, bob);
        send(c, r, author, &[]);
        let second = send(c, r, author, &[]);
        let mut with_preview = settings();
        with_preview.preview = true;

        let (jobs, _) = plan(c, std::slice::from_ref(&second), &with_preview, Time::now()).unwrap();

        assert_eq!(jobs.len(), 1);
        let p = &jobs[0].notification.payload;
        assert_eq!(p["unread_count"], 2, "both messages are unread");
        assert_eq!(p["sender_name"], "author");
        assert_eq!(p["room_name"], "room");
        assert_eq!(p["body"], "hello there");
        assert_eq!(p["mentioned"], false);
    }

    #[test]
    fn a_message_deleted_within_the_grace_period_and_other_events_push_nothing() {
        let mut conn = database();
        let c = &mut conn;
        let (author, bob) = (user(c, "author"), user(c, "bob"));
        let r = room(c, author);
        stay(c, r, author, 0, None);
        stay(c, r, bob, 0, None);
        subscribe(c, bob);
        let deleted = send(c, r, author, &[]);
        let message: Created = serde_json::from_str(&deleted.payload).unwrap();
        store::messages::tombstone(c, message.id, Time::now()).unwrap();
        let other = EventRow {
            kind: "room.updated".into(),
            ..deleted.clone()
        };

        let (jobs, through) = plan(c, &[deleted.clone(), other], &settings(), Time::now()).unwrap();

        assert!(jobs.is_empty());
        assert_eq!(through, deleted.id, "the cursor still moves past them");
    }

    #[test]
    fn planning_holds_no_more_than_the_queue_unless_one_event_alone_has_more() {
        let mut conn = database();
        let c = &mut conn;
        let author = user(c, "author");
        let r = room(c, author);
        stay(c, r, author, 0, None);
        for i in 0..3 {
            let u = user(c, &format!("member{i}"));
            stay(c, r, u, 0, None);
            subscribe(c, u);
        }
        // Three pushes per event.
        let events: Vec<EventRow> = (0..3).map(|_| send(c, r, author, &[])).collect();
        let with_queue = |queue: usize| PushSettings {
            queue,
            ..settings()
        };

        let (four, four_through) = plan(c, &events, &with_queue(4), Time::now()).unwrap();
        let (six, six_through) = plan(c, &events, &with_queue(6), Time::now()).unwrap();
        let (two, two_through) = plan(c, &events, &with_queue(2), Time::now()).unwrap();

        assert_eq!(
            (four.len(), four_through),
            (3, events[0].id),
            "the second event's 3 would make 6 > 4: it waits for the next round"
        );
        assert_eq!(
            (six.len(), six_through),
            (6, events[1].id),
            "two events fill the queue exactly; the third waits"
        );
        assert_eq!(
            (two.len(), two_through),
            (3, events[0].id),
            "an event with more pushes than the queue holds goes out alone"
        );
    }

    #[test]
    fn messages_in_rooms_where_nobody_subscribed_are_passed_over() {
        let mut conn = database();
        let c = &mut conn;
        let (author, bob, carol) = (user(c, "author"), user(c, "bob"), user(c, "carol"));
        let (quiet, heard) = (room(c, author), room(c, author));
        for (r, u) in [
            (quiet, author),
            (quiet, carol),
            (heard, author),
            (heard, bob),
        ] {
            stay(c, r, u, 0, None);
        }
        subscribe(c, bob);
        let events = [
            send(c, quiet, author, &[]),
            send(c, heard, author, &[]),
            send(c, quiet, author, &[]),
        ];

        let (jobs, through) = plan(c, &events, &settings(), Time::now()).unwrap();

        assert_eq!(recipients(&jobs), HashSet::from([bob]));
        assert_eq!(jobs[0].notification.event_id, events[1].id);
        assert_eq!(through, events[2].id);
    }

    #[test]
    fn one_lease_holder_at_a_time_and_an_expired_lease_is_taken_over() {
        let mut conn = database();
        let c = &mut conn;
        assert!(push_worker::take_lease(c, 1, 1_000, 11_000).unwrap());
        assert!(
            !push_worker::take_lease(c, 2, 5_000, 15_000).unwrap(),
            "held"
        );
        assert!(
            push_worker::take_lease(c, 1, 5_000, 15_000).unwrap(),
            "renewed"
        );
        assert!(
            push_worker::take_lease(c, 2, 15_001, 25_001).unwrap(),
            "expired"
        );
        assert!(
            !push_worker::holds_lease(c, 1).unwrap(),
            "the old holder is fenced out"
        );
        push_worker::release_lease(c, 2).unwrap();
        assert!(
            push_worker::take_lease(c, 1, 15_002, 25_002).unwrap(),
            "released"
        );
    }

    #[test]
    fn the_cursor_starts_at_the_head_and_only_moves_forward() {
        let mut conn = database();
        let c = &mut conn;
        assert_eq!(push_worker::cursor_or_init(c, 7).unwrap(), 7);
        assert_eq!(push_worker::cursor_or_init(c, 9).unwrap(), 7, "kept");
        push_worker::advance_cursor(c, 12).unwrap();
        push_worker::advance_cursor(c, 10).unwrap();
        assert_eq!(push_worker::cursor_or_init(c, 0).unwrap(), 12);
    }

    #[test]
    fn one_delivery_holds_the_worker_for_at_most_130_s_with_the_default_timeout() {
        // docs/operations.md ("Delivery") quotes this bound, which the worker enforces: every
        // try times out, and the push service asks for the longest wait before each retry.
        let timeout = settings().timeout;
        assert_eq!(timeout, Duration::from_secs(10));
        assert_eq!(deadline(timeout), Duration::from_secs(130));
        // Without Retry-After, the back-off alone: 4 × 10 s + 1 + 2 + 4 s.
        let backoffs: Duration = (1..ATTEMPTS).map(backoff).sum();
        assert_eq!(timeout * ATTEMPTS + backoffs, Duration::from_secs(47));
    }

    #[test]
    fn retries_back_off_doubling() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(40), Duration::from_secs(32));
    }
}
