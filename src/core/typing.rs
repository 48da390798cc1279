//! Typing: a member says they are (or stopped) typing in a room, and the room's members hear a
//! short-lived `typing.updated` event (`core::event::append_expiring`): pushed live like any
//! event, skipped by replay once expired, pruned early by maintenance.
//!
//! What keeps it cheap is [`Typists`], a per-node throttle: while a user keeps typing, at most
//! one `true` per user and room is appended every `throttle` (a repeat inside the window is a
//! 204 that writes nothing); a `false` is appended only after a `true` that hasn't expired; a
//! message sent through this node ends the typing without an event (clients clear on the
//! `message.created`). Its memory is bounded: entries end with their event, and at the cap a
//! new typist isn't announced. Several nodes each keep their own map (docs/events.md says what
//! that costs).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::core::event::{self, Event, TypingEvent};
use crate::core::messages::check_direct_not_blocked;
use crate::domain::{Id, RoomKind, Time};
use crate::error::{Error, Result};
use crate::events::{To, Writer};
use crate::store::{self, Db, DbConnection};

/// How typing behaves on this node (`HUBBUB_TYPING_*`).
#[derive(Debug, Clone, Copy)]
pub struct TypingSettings {
    /// How long a `typing: true` lasts (its event's `expires_at`).
    pub ttl: Duration,
    /// The least time between two appended `true`s of one user in one room.
    pub throttle: Duration,
    /// The most (user, room) pairs the node remembers as typing.
    pub max_entries: usize,
}

/// What a call asks of the log, decided from the node's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Append the event; `previous` is what the map held before, to put back if it fails.
    Append { previous: Option<Instant> },
    /// Nothing to append: a repeat inside the throttle window, a `false` when not typing, or
    /// the map is full.
    Quiet,
}

/// Who is typing where, as far as this node has appended: (user, room) → when their last
/// `true` was appended.
pub struct Typists {
    settings: TypingSettings,
    map: Mutex<HashMap<(Id, Id), Instant>>,
}

impl Typists {
    pub fn new(settings: TypingSettings) -> Typists {
        Typists {
            settings,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(Id, Id), Instant>> {
        // The map holds no invariant a panic could break halfway: keep using it.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides a call and records it (before the append, so that concurrent repeats don't
    /// both append).
    fn decide(&self, user: Id, room: Id, typing: bool, now: Instant) -> Step {
        let TypingSettings {
            ttl,
            throttle,
            max_entries,
        } = self.settings;
        let mut map = self.lock();
        let key = (user, room);
        let previous = map.get(&key).copied();
        let age = previous.map(|at| now.saturating_duration_since(at));
        if !typing {
            // Only a `true` that others may still be showing needs a `false`.
            map.remove(&key);
            return match age {
                Some(age) if age < ttl => Step::Append { previous },
                _ => Step::Quiet,
            };
        }
        if age.is_some_and(|age| age < throttle) {
            return Step::Quiet;
        }
        if previous.is_none() && map.len() >= max_entries {
            map.retain(|_, at| now.saturating_duration_since(*at) < ttl);
            if map.len() >= max_entries {
                return Step::Quiet;
            }
        }
        map.insert(key, now);
        Step::Append { previous }
    }

    /// Puts back what [`Typists::decide`] changed, when the append didn't happen.
    fn undo(&self, user: Id, room: Id, typing: bool, recorded: Instant, previous: Option<Instant>) {
        let mut map = self.lock();
        let key = (user, room);
        let current = map.get(&key).copied();
        // Only if nothing newer was recorded meanwhile.
        let ours = if typing {
            current == Some(recorded)
        } else {
            current.is_none()
        };
        if ours {
            match previous {
                Some(at) => map.insert(key, at),
                None => map.remove(&key),
            };
        }
    }

    /// A message from `user` in `room` ended their typing: clients clear it on the
    /// `message.created`, so no event; the next `true` is appended at once.
    pub fn message_sent(&self, user: Id, room: Id) {
        self.lock().remove(&(user, room));
    }

    /// Forgets typists whose last `true` has expired (the maintenance task calls it).
    pub fn shrink(&self) {
        let ttl = self.settings.ttl;
        let now = Instant::now();
        self.lock()
            .retain(|_, at| now.saturating_duration_since(*at) < ttl);
    }

    /// How many (user, room) pairs are remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no one is remembered as typing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `user` is (`typing`) or stopped being typing in `room`: appends `typing.updated` to the
    /// room's members unless the throttle says there is nothing new. Members only (404
    /// `room_not_found`); in a direct room, a block either way refuses it like a send (403
    /// `blocked`).
    pub async fn set(
        &self,
        db: &Db,
        writer: &Writer,
        user: Id,
        room: Id,
        typing: bool,
    ) -> Result<()> {
        let now = Instant::now();
        let Step::Append { previous } = self.decide(user, room, typing, now) else {
            // Nothing to write, but the answer is the same as if there were.
            return db.run(move |conn| check(conn, user, room)).await;
        };
        let ttl = chrono::Duration::from_std(self.settings.ttl).unwrap_or(chrono::Duration::MAX);
        let appended = writer
            .run(move |batch| {
                check(batch.conn(), user, room)?;
                let at = Time::now();
                let expires = Time(at.0.checked_add_signed(ttl).unwrap_or(at.0));
                let updated = Event::TypingUpdated(TypingEvent {
                    room_id: room,
                    user_id: user,
                    typing,
                    expires_at: expires,
                });
                event::append_expiring(batch, &updated, To::Room(room), at, expires)?;
                Ok(())
            })
            .await;
        if appended.is_err() {
            self.undo(user, room, typing, now, previous);
        }
        appended
    }
}

/// The caller may type in the room: a current member, and in a direct room no block either way.
fn check(conn: &mut DbConnection, user: Id, room: Id) -> Result<()> {
    let found =
        store::rooms::find_for_member(conn, room, user)?.ok_or_else(Error::room_not_found)?;
    if found.kind == RoomKind::Direct {
        check_direct_not_blocked(conn, room, user)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typists(max_entries: usize) -> Typists {
        Typists::new(TypingSettings {
            ttl: Duration::from_secs(8),
            throttle: Duration::from_secs(3),
            max_entries,
        })
    }

    fn appends(step: Step) -> bool {
        matches!(step, Step::Append { .. })
    }

    #[test]
    fn repeats_inside_the_window_append_nothing_and_false_only_follows_a_live_true() {
        let t = typists(10);
        let (user, room) = (Id::new(), Id::new());
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_millis(s);

        assert!(!appends(t.decide(user, room, false, at(0))), "not typing");
        assert!(appends(t.decide(user, room, true, at(0))));
        assert!(!appends(t.decide(user, room, true, at(1000))), "throttled");
        assert!(!appends(t.decide(user, room, true, at(2999))), "throttled");
        assert!(appends(t.decide(user, room, true, at(3000))), "window over");
        assert!(appends(t.decide(user, room, false, at(3100))), "stopped");
        assert!(
            !appends(t.decide(user, room, false, at(3200))),
            "already stopped"
        );
        assert!(
            appends(t.decide(user, room, true, at(3300))),
            "typing again at once"
        );
        assert!(
            !appends(t.decide(user, room, false, at(3300 + 8000))),
            "the true expired: nobody shows it any more"
        );
    }

    #[test]
    fn a_sent_message_ends_typing_and_a_failed_append_is_undone() {
        let t = typists(10);
        let (user, room) = (Id::new(), Id::new());
        let now = Instant::now();
        assert!(appends(t.decide(user, room, true, now)));
        t.message_sent(user, room);
        assert!(
            !appends(t.decide(user, room, false, now)),
            "not typing any more"
        );
        assert!(
            appends(t.decide(user, room, true, now)),
            "no throttle after a send"
        );

        let other = Id::new();
        let Step::Append { previous } = t.decide(user, other, true, now) else {
            panic!("first true appends");
        };
        t.undo(user, other, true, now, previous);
        assert!(
            appends(t.decide(user, other, true, now)),
            "the failed one didn't count"
        );
    }

    #[test]
    fn the_map_is_capped_and_expired_entries_make_room() {
        let t = typists(2);
        let start = Instant::now();
        let room = Id::new();
        assert!(appends(t.decide(Id::new(), room, true, start)));
        assert!(appends(t.decide(Id::new(), room, true, start)));
        assert!(!appends(t.decide(Id::new(), room, true, start)), "full");
        assert_eq!(t.len(), 2);
        let later = start + Duration::from_secs(9);
        assert!(
            appends(t.decide(Id::new(), room, true, later)),
            "expired ones went"
        );
        assert_eq!(t.len(), 1);
    }
}
