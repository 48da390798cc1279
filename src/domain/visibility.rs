//! Who may see an event: the one rule, used by the replay query (`store::events::visible_range`,
//! for a socket's catch-up and the long poll) and by the live hub (`realtime::hub`).
//!
//! An event is addressed either to a room or to listed users (its audience), never both. A
//! room's event is seen by the users whose stay in the room covers it: from the event that let
//! them in to the one that took them out, both included (a leaver receives their own leave
//! event, and nothing after). An audience event is seen by its audience. An internal event
//! (`credential.revoked`) is addressed to nobody, so nobody sees it.

use super::Id;

/// One user's stay in one room, as event ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stay {
    /// The event that let them in (`room.created` or `member.joined`).
    pub joined: i64,
    /// The event that took them out (`member.left`), if they left.
    pub left: Option<i64>,
}

impl Stay {
    /// A stay that began at `joined` and goes on.
    pub fn from(joined: i64) -> Stay {
        Stay { joined, left: None }
    }

    /// Whether the stay covers event `id`.
    pub fn covers(&self, id: i64) -> bool {
        self.joined <= id && self.left.is_none_or(|left| id <= left)
    }
}

/// How an event is addressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressed {
    /// To the members of this room.
    Room(Id),
    /// To the users of its audience (or, when it has none, to nobody).
    Audience,
}

impl Addressed {
    /// An event row's addressing: its room, or its audience when it has no room.
    pub fn of(room: Option<Id>) -> Addressed {
        room.map_or(Addressed::Audience, Addressed::Room)
    }
}

/// May a user see event `id`, addressed `to`? `stay` is their stay in the event's room (if
/// any: ignored for audience events), `in_audience` whether they are in its audience (ignored
/// for room events).
pub fn may_see(id: i64, to: Addressed, stay: Option<Stay>, in_audience: bool) -> bool {
    match to {
        Addressed::Room(_) => stay.is_some_and(|s| s.covers(id)),
        Addressed::Audience => in_audience,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stay_covers_its_join_and_leave_events_and_nothing_outside() {
        let room = Addressed::Room(Id::new());
        let stay = Stay {
            joined: 10,
            left: Some(20),
        };
        let seen: Vec<i64> = (8..=22)
            .filter(|id| may_see(*id, room, Some(stay), false))
            .collect();
        assert_eq!(seen, (10..=20).collect::<Vec<_>>());
        assert!(may_see(1_000_000, room, Some(Stay::from(10)), false));
        // No stay: nothing of the room, whatever the audience says.
        assert!(!may_see(15, room, None, true));
    }

    #[test]
    fn an_audience_event_goes_to_its_audience_only() {
        assert!(may_see(5, Addressed::Audience, None, true));
        assert!(!may_see(5, Addressed::Audience, Some(Stay::from(1)), false));
        assert_eq!(Addressed::of(None), Addressed::Audience);
    }
}
