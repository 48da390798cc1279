//! The hub: which sockets on this node may see each event, and their bounded queues.
//!
//! It holds the membership of every room as of its position in the log (loaded once at start,
//! then kept current by the membership events it dispatches), so registering a socket costs no
//! query and the picture can't race the log. Dispatch never waits: a full queue marks the
//! socket a slow consumer, which closes and resumes from the database.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use bytestring::ByteString;

use super::queue::{self, Refused};

use crate::core::credentials::Credentials;
use crate::domain::Id;
use crate::metrics::Metrics;

/// One event as the hub dispatches it.
#[derive(Debug, Clone)]
pub struct Dispatch {
    pub id: i64,
    pub room: Option<Id>,
    /// The users an event without a room goes to.
    pub audience: Vec<Id>,
    /// The frame, serialized once; `None` for internal events.
    pub frame: Option<ByteString>,
    pub effect: Effect,
}

/// What an event changes in the hub's picture.
#[derive(Debug, Clone)]
pub enum Effect {
    None,
    /// These users are members of the room from this event on (inclusive).
    Joined(Vec<Id>),
    /// This user is no longer a member after this event (which they still receive).
    Left(Id),
    /// Sockets bound to this credential close.
    Revoked(Id),
}

/// Why the server closes a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    /// The queue overflowed: reconnect with `since=` the last cursor received.
    Resume,
    /// The credential was revoked (logout, token deleted): don't retry.
    Revoked,
    /// The credential expired: don't retry with it.
    Expired,
    /// The server is shutting down: reconnect (to another node, or later).
    ShuttingDown,
}

/// A frame queued for a socket.
pub type Frame = (i64, ByteString);

/// What a socket gets when it registers.
pub struct Registration {
    pub socket: u64,
    /// The hub's position: every visible event after it will arrive on `frames`.
    pub position: i64,
    /// The socket's queue, which also says why the hub closed it.
    pub frames: queue::Receiver,
}

struct Socket {
    id: u64,
    credential: Id,
    frames: queue::Sender,
}

#[derive(Default)]
struct State {
    position: i64,
    rooms: HashMap<Id, HashSet<Id>>,
    sockets: HashMap<Id, Vec<Socket>>,
    next_socket: u64,
    shutting_down: bool,
}

/// The node's hub, shared by the tailer and the stream sessions.
pub struct Hub {
    state: Mutex<State>,
    metrics: Arc<Metrics>,
    credentials: Arc<Credentials>,
}

impl Hub {
    /// A hub at `position` with the memberships `(room, user)` as they stood there.
    pub fn new(
        position: i64,
        memberships: Vec<(Id, Id)>,
        metrics: Arc<Metrics>,
        credentials: Arc<Credentials>,
    ) -> Hub {
        let mut rooms: HashMap<Id, HashSet<Id>> = HashMap::new();
        for (room, user) in memberships {
            rooms.entry(room).or_default().insert(user);
        }
        Hub {
            state: Mutex::new(State {
                position,
                rooms,
                ..State::default()
            }),
            metrics,
            credentials,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock can't leave the maps half-updated in a way that
        // matters more than stopping delivery would; keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The id of the last event dispatched.
    pub fn position(&self) -> i64 {
        self.lock().position
    }

    /// Registers a socket of `user`, opened with `credential`, with a queue of `capacity`.
    /// Returns `None` when the server is shutting down.
    pub fn register(&self, user: Id, credential: Id, capacity: usize) -> Option<Registration> {
        let (tx, frames) = queue::queue(capacity);
        let mut state = self.lock();
        if state.shutting_down {
            return None;
        }
        state.next_socket += 1;
        let socket = state.next_socket;
        state.sockets.entry(user).or_default().push(Socket {
            id: socket,
            credential,
            frames: tx,
        });
        self.metrics.open_sockets.fetch_add(1, Ordering::Relaxed);
        Some(Registration {
            socket,
            position: state.position,
            frames,
        })
    }

    /// Forgets a socket (it closed).
    pub fn unregister(&self, user: Id, socket: u64) {
        let mut state = self.lock();
        if let Some(list) = state.sockets.get_mut(&user) {
            let before = list.len();
            list.retain(|s| s.id != socket);
            if list.len() < before {
                self.metrics.open_sockets.fetch_sub(1, Ordering::Relaxed);
            }
            if list.is_empty() {
                state.sockets.remove(&user);
            }
        }
    }

    /// Delivers events, in order, to the local sockets allowed to see them.
    pub fn dispatch(&self, events: &[Dispatch]) {
        let mut state = self.lock();
        let mut deliveries = 0u64;
        for event in events {
            if event.id <= state.position {
                continue;
            }
            state.position = event.id;
            if let (Effect::Joined(users), Some(room)) = (&event.effect, event.room) {
                state
                    .rooms
                    .entry(room)
                    .or_default()
                    .extend(users.iter().copied());
            }
            if let Some(frame) = &event.frame {
                let mut recipients: Vec<Id> = Vec::new();
                if let Some(room) = event.room {
                    if let Some(members) = state.rooms.get(&room) {
                        recipients.extend(members.iter().filter(|u| state.sockets.contains_key(u)));
                    }
                }
                recipients.extend(
                    event
                        .audience
                        .iter()
                        .filter(|u| state.sockets.contains_key(u)),
                );
                for user in recipients {
                    deliveries += deliver(&mut state, &self.metrics, user, event.id, frame);
                }
            }
            match &event.effect {
                Effect::Left(user) => {
                    if let Some(members) = event.room.and_then(|r| state.rooms.get_mut(&r)) {
                        members.remove(user);
                    }
                }
                Effect::Revoked(credential) => {
                    self.credentials.revoke(*credential);
                    close_where(&mut state, |s| s.credential == *credential, Close::Revoked)
                }
                Effect::None | Effect::Joined(_) => {}
            }
        }
        self.metrics
            .events_dispatched
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        self.metrics
            .deliveries
            .fetch_add(deliveries, Ordering::Relaxed);
    }

    /// Closes every socket bound to `credential`.
    pub fn close_credential(&self, credential: Id, why: Close) {
        close_where(&mut self.lock(), |s| s.credential == credential, why);
    }

    /// Closes every socket and refuses new ones (shutdown).
    pub fn close_all(&self, why: Close) {
        let mut state = self.lock();
        state.shutting_down = true;
        close_where(&mut state, |_| true, why);
    }
}

/// Queues the frame on each socket of `user`; a full queue closes that socket with `Resume`.
fn deliver(state: &mut State, metrics: &Metrics, user: Id, id: i64, frame: &ByteString) -> u64 {
    let Some(list) = state.sockets.get_mut(&user) else {
        return 0;
    };
    let mut delivered = 0;
    list.retain(|socket| match socket.frames.try_send((id, frame.clone())) {
        Ok(()) => {
            delivered += 1;
            true
        }
        Err(Refused::Full) => {
            metrics.slow_consumer_closes.fetch_add(1, Ordering::Relaxed);
            metrics.open_sockets.fetch_sub(1, Ordering::Relaxed);
            socket.frames.close(Close::Resume);
            false
        }
        Err(Refused::Closed) => {
            metrics.open_sockets.fetch_sub(1, Ordering::Relaxed);
            false
        }
    });
    if list.is_empty() {
        state.sockets.remove(&user);
    }
    delivered
}

fn close_where(state: &mut State, matches: impl Fn(&Socket) -> bool, why: Close) {
    for list in state.sockets.values() {
        for socket in list.iter().filter(|s| matches(s)) {
            socket.frames.close(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: i64, room: Id) -> Dispatch {
        Dispatch {
            id,
            room: Some(room),
            audience: Vec::new(),
            frame: Some(ByteString::from(format!("frame {id}"))),
            effect: Effect::None,
        }
    }

    #[test]
    fn members_receive_room_events_and_others_do_not() {
        let (room, alice, bob) = (Id::new(), Id::new(), Id::new());
        let hub = Hub::new(0, vec![(room, alice)], Arc::default(), Arc::default());
        let mut a = hub.register(alice, Id::new(), 8).unwrap();
        let mut b = hub.register(bob, Id::new(), 8).unwrap();
        hub.dispatch(&[message(1, room)]);
        assert_eq!(a.frames.try_recv().unwrap().0, 1);
        assert!(b.frames.try_recv().is_none());
    }

    #[test]
    fn a_full_queue_closes_the_socket_with_resume() {
        let (room, alice) = (Id::new(), Id::new());
        let hub = Hub::new(0, vec![(room, alice)], Arc::default(), Arc::default());
        let a = hub.register(alice, Id::new(), 1).unwrap();
        hub.dispatch(&[message(1, room), message(2, room)]);
        assert_eq!(a.frames.closed(), Some(Close::Resume));
    }

    #[test]
    fn a_leaver_gets_the_leave_event_and_nothing_after() {
        let (room, alice) = (Id::new(), Id::new());
        let hub = Hub::new(0, vec![(room, alice)], Arc::default(), Arc::default());
        let mut a = hub.register(alice, Id::new(), 8).unwrap();
        let mut leave = message(1, room);
        leave.effect = Effect::Left(alice);
        hub.dispatch(&[leave, message(2, room)]);
        assert_eq!(a.frames.try_recv().unwrap().0, 1);
        assert!(a.frames.try_recv().is_none());
    }
}
