//! The hub: which sockets on this node may see each event, and their bounded queues.
//!
//! It holds the stays of every room's members as of its position in the log (loaded once at
//! start, then kept current by the membership events it dispatches), so registering a socket
//! costs no query and the picture can't race the log. Who receives an event is decided by the
//! same rule as the replay's (`domain::visibility::may_see`). Dispatch never waits: a full
//! queue marks the socket a slow consumer, which closes and resumes from the database.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use bytestring::ByteString;

use super::queue;
pub use super::queue::{Close, Frame};

use crate::domain::visibility::{may_see, Addressed, Stay};
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

/// What a socket (or a long poll) gets when it registers.
pub struct Registration {
    /// The hub's position: every visible event after it will arrive on `frames`.
    pub position: i64,
    /// The socket's queue, which also says why the hub closed it.
    pub frames: queue::Receiver,
    /// Its place in the hub, given back when dropped.
    pub lease: Lease,
}

/// A registration's place in the hub and its share of the caps. Dropping it (the socket task
/// ending, a long poll answering, or its future dropped by a client that left) forgets the
/// socket and frees its slots: nothing has to remember to unregister.
pub struct Lease {
    hub: Arc<Hub>,
    user: Id,
    socket: u64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.hub.release(self.user, self.socket);
    }
}

/// How many registrations (sockets and long polls) the hub holds at once.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// On this node, for all users.
    pub node: u64,
    /// Per user, across all their credentials.
    pub per_user: usize,
}

/// Why a registration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    ShuttingDown,
    /// The node holds `Caps::node` registrations.
    NodeFull,
    /// The user holds `Caps::per_user` registrations.
    UserFull,
}

struct Socket {
    id: u64,
    credential: Id,
    frames: queue::Sender,
}

#[derive(Default)]
struct State {
    position: i64,
    /// Each room's current members and when their stay began.
    rooms: HashMap<Id, HashMap<Id, Stay>>,
    sockets: HashMap<Id, Vec<Socket>>,
    /// Live leases per user, and in all (a socket the hub already dropped from `sockets`,
    /// a slow consumer say, holds its lease until its task ends).
    leases: HashMap<Id, usize>,
    leased: u64,
    next_socket: u64,
    shutting_down: bool,
}

/// The node's hub, shared by the tailer and the stream sessions.
pub struct Hub {
    state: Mutex<State>,
    metrics: Arc<Metrics>,
    caps: Caps,
}

impl Hub {
    /// A hub at `position` with the stays `(room, user, joined)` current there.
    pub fn new(
        position: i64,
        memberships: Vec<(Id, Id, i64)>,
        metrics: Arc<Metrics>,
        caps: Caps,
    ) -> Hub {
        let mut rooms: HashMap<Id, HashMap<Id, Stay>> = HashMap::new();
        for (room, user, joined) in memberships {
            rooms
                .entry(room)
                .or_default()
                .insert(user, Stay::from(joined));
        }
        Hub {
            state: Mutex::new(State {
                position,
                rooms,
                ..State::default()
            }),
            metrics,
            caps,
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

    /// Registers a socket (or long poll) of `user`, opened with `credential`, with a queue of
    /// `capacity`, if the node and the user are under their caps and the node isn't shutting
    /// down. The caps are checked and taken under one lock, so concurrent opens can't pass them.
    pub fn register(
        self: &Arc<Self>,
        user: Id,
        credential: Id,
        capacity: usize,
    ) -> Result<Registration, Refused> {
        let (tx, frames) = queue::queue(capacity);
        let mut state = self.lock();
        if state.shutting_down {
            return Err(Refused::ShuttingDown);
        }
        if state.leased >= self.caps.node {
            return Err(Refused::NodeFull);
        }
        let held = state.leases.entry(user).or_default();
        if *held >= self.caps.per_user {
            return Err(Refused::UserFull);
        }
        *held += 1;
        state.leased += 1;
        state.next_socket += 1;
        let socket = state.next_socket;
        state.sockets.entry(user).or_default().push(Socket {
            id: socket,
            credential,
            frames: tx,
        });
        self.metrics
            .open_sockets
            .store(state.leased, Ordering::Relaxed);
        Ok(Registration {
            position: state.position,
            frames,
            lease: Lease {
                hub: self.clone(),
                user,
                socket,
            },
        })
    }

    /// Gives a lease back: forgets its socket (if still there) and frees its slots.
    fn release(&self, user: Id, socket: u64) {
        let mut state = self.lock();
        if let Some(list) = state.sockets.get_mut(&user) {
            list.retain(|s| s.id != socket);
            if list.is_empty() {
                state.sockets.remove(&user);
            }
        }
        if let Some(held) = state.leases.get_mut(&user) {
            *held -= 1;
            if *held == 0 {
                state.leases.remove(&user);
            }
            state.leased -= 1;
        }
        self.metrics
            .open_sockets
            .store(state.leased, Ordering::Relaxed);
    }

    /// Registrations held now: on the node, and by `user`.
    pub fn held(&self, user: Id) -> (u64, usize) {
        let state = self.lock();
        (state.leased, state.leases.get(&user).copied().unwrap_or(0))
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
                let members = state.rooms.entry(room).or_default();
                for user in users {
                    members.entry(*user).or_insert(Stay::from(event.id));
                }
            }
            if let Some(frame) = &event.frame {
                // The candidates are the users with a socket here who are in the event's room
                // or audience; the rule decides which of them see it.
                let to = Addressed::of(event.room);
                let mut recipients: Vec<Id> = Vec::new();
                let connected = |user: &Id| state.sockets.contains_key(user);
                match to {
                    Addressed::Room(room) => {
                        let members = state.rooms.get(&room).into_iter().flatten();
                        recipients.extend(
                            members
                                .filter(|(user, stay)| {
                                    connected(user) && may_see(event.id, to, Some(**stay), false)
                                })
                                .map(|(user, _)| *user),
                        );
                    }
                    Addressed::Audience => recipients.extend(
                        event
                            .audience
                            .iter()
                            .filter(|user| connected(user) && may_see(event.id, to, None, true)),
                    ),
                }
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
        Err(queue::Refused::Full) => {
            metrics.slow_consumer_closes.fetch_add(1, Ordering::Relaxed);
            socket.frames.close(Close::Resume);
            false
        }
        Err(queue::Refused::Closed) => false,
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

    const CAPS: Caps = Caps {
        node: 3,
        per_user: 2,
    };

    fn hub(memberships: Vec<(Id, Id)>) -> Arc<Hub> {
        let stays = memberships
            .into_iter()
            .map(|(room, user)| (room, user, 0))
            .collect();
        Arc::new(Hub::new(0, stays, Arc::default(), CAPS))
    }

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
        let hub = hub(vec![(room, alice)]);
        let mut a = hub.register(alice, Id::new(), 8).unwrap();
        let mut b = hub.register(bob, Id::new(), 8).unwrap();
        hub.dispatch(&[message(1, room)]);
        assert_eq!(a.frames.try_recv().unwrap().0, 1);
        assert!(b.frames.try_recv().is_none());
    }

    #[test]
    fn a_full_queue_closes_the_socket_with_resume() {
        let (room, alice) = (Id::new(), Id::new());
        let hub = hub(vec![(room, alice)]);
        let a = hub.register(alice, Id::new(), 1).unwrap();
        hub.dispatch(&[message(1, room), message(2, room)]);
        assert_eq!(a.frames.closed(), Some(Close::Resume));
    }

    #[test]
    fn a_leaver_gets_the_leave_event_and_nothing_after() {
        let (room, alice) = (Id::new(), Id::new());
        let hub = hub(vec![(room, alice)]);
        let mut a = hub.register(alice, Id::new(), 8).unwrap();
        let mut leave = message(1, room);
        leave.effect = Effect::Left(alice);
        hub.dispatch(&[leave, message(2, room)]);
        assert_eq!(a.frames.try_recv().unwrap().0, 1);
        assert!(a.frames.try_recv().is_none());
    }

    #[test]
    fn a_user_past_their_cap_and_a_node_past_its_cap_are_refused() {
        let (alice, bob, carol) = (Id::new(), Id::new(), Id::new());
        let hub = hub(Vec::new());
        let a1 = hub.register(alice, Id::new(), 8).unwrap();
        let _a2 = hub.register(alice, Id::new(), 8).unwrap();
        assert_eq!(
            hub.register(alice, Id::new(), 8).err(),
            Some(Refused::UserFull)
        );
        let _b1 = hub.register(bob, Id::new(), 8).unwrap();
        assert_eq!(
            hub.register(carol, Id::new(), 8).err(),
            Some(Refused::NodeFull)
        );
        drop(a1);
        assert_eq!(hub.held(alice), (2, 1));
        assert!(hub.register(carol, Id::new(), 8).is_ok());
    }

    #[test]
    fn a_dropped_lease_frees_its_slots_even_after_the_hub_dropped_the_socket() {
        let (room, alice) = (Id::new(), Id::new());
        let hub = hub(vec![(room, alice)]);
        let a = hub.register(alice, Id::new(), 1).unwrap();
        // A slow consumer: the hub forgets the socket at once, the lease stays until its task ends.
        hub.dispatch(&[message(1, room), message(2, room)]);
        assert_eq!(a.frames.closed(), Some(Close::Resume));
        assert_eq!(hub.held(alice), (1, 1));
        assert_eq!(hub.metrics.open_sockets.load(Ordering::Relaxed), 1);
        drop(a);
        assert_eq!(hub.held(alice), (0, 0));
        assert_eq!(hub.metrics.open_sockets.load(Ordering::Relaxed), 0);
    }
}
