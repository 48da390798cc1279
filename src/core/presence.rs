//! Presence: a user is online while they hold a stream (WebSocket, SSE or long poll) on any
//! node, and offline a grace period after the last one ends. Their friends and direct-room
//! partners hear it as a short-lived `presence.updated`.
//!
//! How the pieces fit (docs/operations.md, "Presence"):
//! - Each node counts its streams per user in memory ([`Presence`]; an [`Online`] guard per
//!   stream). A user's first stream on the node records a `presence_streams` row (node, user);
//!   the row goes when their last stream there ended longer than the grace ago, so a client
//!   reconnecting within the grace writes nothing.
//! - Each node's task ([`Presence::run`]) heartbeats its `presence_nodes` row every tick, writes
//!   those rows, and sweeps the rows of nodes silent longer than the node timeout (a node that
//!   died without cleaning up).
//! - A user's announced state changes only by a compare-and-set on their `presence_states` row
//!   in the writer transaction that appends the event ([`reconcile`]): "online" is "has a
//!   stream row and shares their presence". Two nodes can't both announce one change.
//! - Flaps: at most one event per user per flap window. A change inside the window after the
//!   last announcement is held (`due_at`); when the window ends, the state then is announced if
//!   it differs from the one last announced, so a user who left and came back inside the window
//!   costs no event at all. Turning `share_presence` off is announced at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use crate::core::event::{self, Event, PresenceEvent};
use crate::domain::{Id, Time};
use crate::error::Result;
use crate::events::{Batch, To, Writer};
use crate::store::{self, DbConnection};

/// How long a short tick waits after a user's first stream, to take the arrivals meanwhile in
/// the same writer job.
const GATHER: Duration = Duration::from_millis(20);
/// How long a `presence.updated` stays in the log for replay: a client away longer reads
/// presence from `GET /api/v1/friends` again.
pub const EVENT_TTL: Duration = Duration::from_secs(600);
/// The most users one tick's writer job takes (each costs about ten queries; the job shares the
/// writer with the sends, so it is kept short). More waiting: the next job follows at once.
const PER_TICK: usize = 100;

/// How presence behaves (`HUBBUB_PRESENCE_*`).
#[derive(Debug, Clone, Copy)]
pub struct PresenceSettings {
    /// Off (`HUBBUB_PRESENCE=false`): streams aren't counted and nothing is announced.
    pub enabled: bool,
    /// How long after a user's last stream ends they still count as online.
    pub grace: Duration,
    /// At most one `presence.updated` per user per window.
    pub window: Duration,
    /// How often the node heartbeats, writes its stream rows and sweeps.
    pub tick: Duration,
    /// A node silent this long is taken for dead and its users' streams are forgotten.
    pub node_timeout: Duration,
    /// The most users this node tracks (at the cap, a new user's streams don't count).
    pub max_users: usize,
}

/// One user's streams on this node.
#[derive(Debug, Clone, Copy)]
struct Local {
    streams: usize,
    /// When their last stream here ended (unset while they hold one).
    ended: Option<(Instant, Time)>,
    /// Whether the node's row for them is (believed) written.
    recorded: bool,
}

/// What a tick writes for this node.
#[derive(Debug, Default, PartialEq)]
struct Pending {
    inserts: Vec<Id>,
    /// Users whose grace ran out, with when their last stream ended.
    deletes: Vec<(Id, Time)>,
}

/// This node's stream counts per user, and the task that records them.
pub struct Presence {
    node: Id,
    settings: PresenceSettings,
    map: Mutex<HashMap<Id, Local>>,
    wake: Notify,
    /// The node's row has been written once (a missing row after that means it was swept).
    started: AtomicBool,
}

/// A stream counted for presence; dropping it (the stream ending) starts the grace.
pub struct Online {
    presence: Option<Arc<Presence>>,
    user: Id,
}

impl Drop for Online {
    fn drop(&mut self) {
        if let Some(presence) = self.presence.take() {
            presence.close(self.user, Instant::now());
        }
    }
}

impl Presence {
    /// This node's presence, under a fresh node id.
    pub fn new(settings: PresenceSettings) -> Presence {
        Presence {
            node: Id::new(),
            settings,
            map: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            started: AtomicBool::new(false),
        }
    }

    pub fn settings(&self) -> PresenceSettings {
        self.settings
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Id, Local>> {
        // Counts a panic left halfway only misstate presence until the streams end.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a stream of `user` until the guard is dropped.
    pub fn open(self: &Arc<Self>, user: Id) -> Online {
        if !self.settings.enabled {
            return Online {
                presence: None,
                user,
            };
        }
        let mut map = self.lock();
        if !map.contains_key(&user) && map.len() >= self.settings.max_users {
            tracing::warn!("presence: the node tracks as many users as it may");
            return Online {
                presence: None,
                user,
            };
        }
        let local = map.entry(user).or_insert(Local {
            streams: 0,
            ended: None,
            recorded: false,
        });
        local.streams += 1;
        local.ended = None;
        let new = !local.recorded;
        drop(map);
        if new {
            self.wake.notify_one();
        }
        Online {
            presence: Some(self.clone()),
            user,
        }
    }

    fn close(&self, user: Id, now: Instant) {
        let mut map = self.lock();
        if let Some(local) = map.get_mut(&user) {
            local.streams = local.streams.saturating_sub(1);
            if local.streams == 0 {
                local.ended = Some((now, Time::now()));
            }
        }
    }

    /// How many users the node tracks (holding a stream, or inside the grace).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows to write: users who hold a stream and have no row, and users whose grace ran
    /// out and still have one. Entries with neither are forgotten.
    fn pending(&self, now: Instant) -> Pending {
        let grace = self.settings.grace;
        let mut pending = Pending::default();
        self.lock().retain(|user, local| {
            let wanted = local.streams > 0
                || local
                    .ended
                    .is_some_and(|(at, _)| now.saturating_duration_since(at) < grace);
            match (wanted, local.recorded) {
                (true, false) if pending.inserts.len() < PER_TICK => pending.inserts.push(*user),
                (false, true) if pending.deletes.len() < PER_TICK => {
                    let ended = local.ended.map_or_else(Time::now, |(_, t)| t);
                    pending.deletes.push((*user, ended));
                }
                (false, false) => return false,
                _ => {}
            }
            true
        });
        pending
    }

    /// What a tick wrote is now in the database.
    fn written(&self, pending: &Pending) {
        let mut map = self.lock();
        for user in &pending.inserts {
            if let Some(local) = map.get_mut(user) {
                local.recorded = true;
            }
        }
        for (user, _) in &pending.deletes {
            if let Some(local) = map.get_mut(user) {
                local.recorded = false;
            }
        }
    }

    /// Another node took this one for dead and swept its rows: write them all again.
    fn swept(&self) {
        for local in self.lock().values_mut() {
            local.recorded = false;
        }
        self.wake.notify_one();
    }

    /// One round: this node's rows and, when `full`, the heartbeat, the sweep of dead nodes and
    /// held-back changes. True if a full round left work for another one at once (a big sweep).
    pub async fn tick(&self, writer: &Writer, full: bool) -> Result<bool> {
        let pending = self.pending(Instant::now());
        let (node, settings) = (self.node, self.settings);
        let jobs = Pending {
            inserts: pending.inserts.clone(),
            deletes: pending.deletes.clone(),
        };
        let (alive, more) = writer
            .run(move |batch| {
                let now = Time::now();
                let alive = !full || store::presence::beat(batch.conn(), node, now)?;
                for user in &jobs.inserts {
                    store::presence::insert_stream(batch.conn(), node, *user)?;
                    reconcile(batch, *user, now, settings.window, false)?;
                }
                for (user, ended) in &jobs.deletes {
                    store::presence::delete_streams(batch.conn(), node, &[*user])?;
                    store::presence::ensure_state(batch.conn(), *user)?;
                    store::presence::set_left(batch.conn(), *user, *ended)?;
                    reconcile(batch, *user, now, settings.window, false)?;
                }
                if !full {
                    return Ok((alive, false));
                }
                let swept = sweep(batch, node, now, settings)?;
                let due = store::presence::due(batch.conn(), now, PER_TICK as i64)?;
                let more = swept || due.len() == PER_TICK;
                for user in due {
                    reconcile(batch, user, now, settings.window, false)?;
                }
                Ok((alive, more))
            })
            .await?;
        self.written(&pending);
        if pending.inserts.len() == PER_TICK || pending.deletes.len() == PER_TICK {
            // More than one job's worth: the next one follows at once.
            self.wake.notify_one();
        }
        let started = full && self.started.swap(true, Ordering::Relaxed);
        if !alive && started {
            tracing::warn!("presence: this node was taken for dead; recording its streams again");
            self.swept();
        }
        Ok(more)
    }

    /// Runs a full [`Presence::tick`] every tick, and a short one (this node's rows only) soon
    /// after a user's first stream opens, until `stop`. The short ones gather the arrivals of
    /// [`GATHER`] into one writer job.
    pub async fn run(self: Arc<Self>, writer: Writer, mut stop: watch::Receiver<bool>) {
        if !self.settings.enabled {
            return;
        }
        let mut last_full = Instant::now();
        let mut full = true;
        loop {
            if full {
                last_full = Instant::now();
            }
            let more = match self.tick(&writer, full).await {
                Ok(more) => more,
                Err(e) => {
                    tracing::warn!(error = %e, "presence tick failed");
                    false
                }
            };
            if more && !*stop.borrow() {
                continue; // the rest of a sweep, or of the held-back changes
            }
            let next_full = last_full + self.settings.tick;
            tokio::select! {
                _ = tokio::time::sleep_until(next_full.into()) => full = true,
                _ = self.wake.notified() => {
                    tokio::select! {
                        _ = tokio::time::sleep(GATHER) => {}
                        _ = stop.changed() => return,
                    }
                    full = Instant::now() >= next_full;
                }
                _ = stop.changed() => return,
            }
        }
    }
}

/// Forgets the streams of a node silent longer than the timeout, up to [`PER_TICK`] of them:
/// their users' states are reconciled (offline unless they hold a stream elsewhere), and
/// `left_at` is the node's last heartbeat. True if it swept anything (there may be more).
fn sweep(batch: &mut Batch<'_>, me: Id, now: Time, settings: PresenceSettings) -> Result<bool> {
    let timeout =
        chrono::Duration::from_std(settings.node_timeout).unwrap_or(chrono::Duration::MAX);
    let before = Time(now.0.checked_sub_signed(timeout).unwrap_or(now.0));
    // This node has just written its heartbeat; skip it all the same.
    let silent = store::presence::silent_nodes(batch.conn(), before)?;
    let Some(&(dead, heartbeat)) = silent.iter().find(|(node, _)| *node != me) else {
        return Ok(false);
    };
    let users = store::presence::users_on(batch.conn(), dead, PER_TICK as i64)?;
    store::presence::delete_streams(batch.conn(), dead, &users)?;
    for user in &users {
        store::presence::ensure_state(batch.conn(), *user)?;
        store::presence::set_left(batch.conn(), *user, heartbeat)?;
        reconcile(batch, *user, now, settings.window, false)?;
    }
    if users.len() < PER_TICK {
        store::presence::delete_node(batch.conn(), dead)?;
        tracing::info!(node = %dead, users = users.len(), "presence: swept a silent node");
    }
    Ok(true)
}

/// Brings `user`'s announced state in line with the truth (they share their presence and hold
/// a stream row somewhere): announces a change with a compare-and-set and appends
/// `presence.updated` in the same transaction, unless the flap window since the last
/// announcement is still open (then the change is held until it ends). `force`: announce now
/// whatever the window (the user stopped sharing).
fn reconcile(
    batch: &mut Batch<'_>,
    user: Id,
    now: Time,
    window: Duration,
    force: bool,
) -> Result<()> {
    store::presence::ensure_state(batch.conn(), user)?;
    let Some(row) = store::presence::state(batch.conn(), user)? else {
        return Ok(());
    };
    let truth = row.share && store::presence::has_streams(batch.conn(), user)?;
    if truth == row.online {
        if row.due_at.is_some() {
            store::presence::set_due(batch.conn(), user, None)?;
        }
        return Ok(());
    }
    if !force {
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        if let Some(open) = row.announced_at.map(|at| at + window) {
            if open > now {
                if row.due_at != Some(open) {
                    store::presence::set_due(batch.conn(), user, Some(open))?;
                }
                return Ok(());
            }
        }
    }
    let last_seen = match (row.share, truth) {
        (false, _) => None,
        (true, true) => Some(now),
        (true, false) => Some(row.left_at.unwrap_or(now)),
    };
    if !store::presence::announce(batch.conn(), user, row.online, truth, last_seen, now)? {
        return Ok(()); // another node announced it first
    }
    let audience = audience(batch.conn(), user)?;
    if audience.is_empty() {
        return Ok(());
    }
    let ttl = chrono::Duration::from_std(EVENT_TTL).unwrap_or(chrono::Duration::MAX);
    let updated = Event::PresenceUpdated(PresenceEvent {
        user_id: user,
        online: truth,
        last_seen_at: last_seen,
    });
    event::append_expiring(batch, &updated, To::Users(&audience), now, now + ttl)?;
    Ok(())
}

/// Who hears `user`'s presence: their friends and direct-room partners, without anyone
/// blocking or blocked by them. Members of bigger rooms they share don't.
fn audience(conn: &mut DbConnection, user: Id) -> Result<Vec<Id>> {
    let mut users: Vec<Id> = store::social::friends_of(conn, user)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    users.extend(store::presence::direct_partners(conn, user)?);
    users.sort();
    users.dedup();
    users.retain(|u| *u != user);
    if users.is_empty() {
        return Ok(users);
    }
    let mut everyone = users.clone();
    everyone.push(user);
    let blocks = store::social::blocks_among(conn, &everyone)?;
    users.retain(|u| {
        !blocks
            .iter()
            .any(|(a, b)| (*a == user && b == u) || (a == u && *b == user))
    });
    Ok(users)
}

/// A user's presence as one viewer may see it: `None` for both where the viewer may not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    pub online: Option<bool>,
    pub last_seen_at: Option<Time>,
}

impl Seen {
    fn of(row: Option<&store::presence::StateRow>) -> Seen {
        match row {
            Some(row) if row.share => Seen {
                online: Some(row.online),
                last_seen_at: row.last_seen_at,
            },
            // Not sharing: offline and never seen, to everyone.
            _ => Seen {
                online: Some(false),
                last_seen_at: None,
            },
        }
    }
}

/// `target`'s presence as `viewer` may see it: themselves, their friends and their
/// direct-room partners, unless either blocks the other.
pub fn seen_by(conn: &mut DbConnection, viewer: Id, target: Id) -> Result<Seen> {
    let visible = viewer == target
        || (!store::social::blocked_either_way(conn, viewer, target)?
            && (store::social::friends_since(conn, viewer, target)?.is_some()
                || store::presence::share_direct_room(conn, viewer, target)?));
    if !visible {
        return Ok(Seen::default());
    }
    let row = store::presence::state(conn, target)?;
    Ok(Seen::of(row.as_ref()))
}

/// The presence of the viewer's friends (who may all see it), by user.
pub fn of_friends(conn: &mut DbConnection, friends: &[Id]) -> Result<HashMap<Id, Seen>> {
    let rows = store::presence::states(conn, friends)?;
    Ok(friends
        .iter()
        .map(|id| (*id, Seen::of(rows.iter().find(|r| r.user_id == *id))))
        .collect())
}

/// Sets `share_presence`: off, the user looks offline and never seen to everyone, and those
/// who were told they were online hear it at once, whatever the flap window (privacy comes
/// first); on, they are announced as they are, like any change (within the window, so that
/// toggling the setting can't make more than two events per window).
pub async fn set_share(writer: &Writer, window: Duration, user: Id, share: bool) -> Result<()> {
    writer
        .run(move |batch| {
            store::presence::ensure_state(batch.conn(), user)?;
            store::presence::set_share(batch.conn(), user, share)?;
            reconcile(batch, user, Time::now(), window, !share)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(max_users: usize) -> Arc<Presence> {
        Arc::new(Presence::new(PresenceSettings {
            enabled: true,
            grace: Duration::from_secs(30),
            window: Duration::from_secs(60),
            tick: Duration::from_secs(1),
            node_timeout: Duration::from_secs(15),
            max_users,
        }))
    }

    #[test]
    fn a_reconnect_inside_the_grace_writes_nothing_and_the_last_end_deletes_after_it() {
        let p = presence(10);
        let user = Id::new();
        let start = Instant::now();

        let first = p.open(user);
        assert_eq!(p.pending(start).inserts, vec![user], "first stream: a row");
        p.written(&p.pending(start));
        let second = p.open(user);
        drop(first);
        assert_eq!(p.pending(start), Pending::default(), "still one stream");
        drop(second);
        let later = Instant::now();
        assert_eq!(p.pending(later), Pending::default(), "inside the grace");
        let again = p.open(user);
        assert_eq!(
            p.pending(later + Duration::from_secs(31)),
            Pending::default(),
            "back inside the grace: nothing to write"
        );
        drop(again);
        let ended = Instant::now();
        let gone = p.pending(ended + Duration::from_secs(31));
        assert_eq!(gone.deletes.len(), 1, "grace over: the row goes");
        p.written(&gone);
        assert_eq!(
            p.pending(ended + Duration::from_secs(31)),
            Pending::default()
        );
        assert!(p.is_empty(), "forgotten");
    }

    #[test]
    fn the_map_is_capped() {
        let p = presence(1);
        let _a = p.open(Id::new());
        let b = p.open(Id::new());
        assert!(b.presence.is_none(), "over the cap: not counted");
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn a_swept_node_writes_its_rows_again() {
        let p = presence(10);
        let user = Id::new();
        let _s = p.open(user);
        let now = Instant::now();
        p.written(&p.pending(now));
        assert_eq!(p.pending(now), Pending::default());
        p.swept();
        assert_eq!(p.pending(now).inserts, vec![user]);
    }
}
