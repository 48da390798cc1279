//! The event log: how an event is appended (inside a writer batch), and the frame a socket
//! receives for it. Every change a client can see is an event row first. The log holds each
//! event as a kind's name and a JSON payload; what the kinds are and what their payloads hold
//! is core's event model (`core::event`).

pub mod writer;

use crate::domain::{Id, Time};
use crate::error::Result;
use crate::store::{self, events::EventRow};

pub use writer::{Batch, Writer};

/// Who receives an event: the members of a room (during their stay), or listed users.
#[derive(Debug, Clone, Copy)]
pub enum To<'a> {
    Room(Id),
    Users(&'a [Id]),
    /// Nobody: an internal event.
    Server,
}

/// Appends an event of kind `kind` with the JSON `payload` in the batch's transaction and
/// returns its id (the client's cursor). `expires`: when a short-lived event stops mattering
/// (replay skips it after that, maintenance deletes it); `None` for a permanent event.
pub fn append(
    batch: &mut Batch<'_>,
    kind: &'static str,
    to: To<'_>,
    payload: &str,
    at: Time,
    expires: Option<Time>,
) -> Result<i64> {
    let room_id = match to {
        To::Room(room) => Some(room),
        To::Users(_) | To::Server => None,
    };
    let id = store::events::insert(
        batch.conn(),
        &store::events::NewEvent {
            kind,
            room_id,
            payload,
            created_at: at,
            expires_at: expires,
        },
    )?;
    if let To::Users(users) = to {
        let mut users = users.to_vec();
        users.sort();
        users.dedup();
        store::events::insert_audience(batch.conn(), id, &users)?;
    }
    batch.appended(id);
    Ok(id)
}

/// A cursor as clients see it: opaque text (today the event id in decimal).
pub fn cursor(id: i64) -> String {
    id.to_string()
}

/// Reads a cursor a client sent back.
pub fn parse_cursor(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id >= 0)
}

/// The socket frame of an event row, serialized once however many sockets receive it.
/// The payload is already JSON and goes in as it is (a `RawValue`: not parsed again).
pub fn frame(row: &EventRow) -> String {
    #[derive(serde::Serialize)]
    struct Frame<'a> {
        r#type: &'static str,
        id: String,
        event: &'a str,
        room_id: Option<Id>,
        created_at: Time,
        data: &'a serde_json::value::RawValue,
    }
    // Payloads are written by `core::event::append` from a typed event, so they are JSON; a row that
    // isn't (a hand-edited database) is sent with `null` data rather than a broken frame.
    let null = serde_json::value::RawValue::NULL;
    let data = serde_json::from_str::<&serde_json::value::RawValue>(&row.payload).unwrap_or(null);
    let frame = Frame {
        r#type: "event",
        id: cursor(row.id),
        event: &row.kind,
        room_id: row.room_id,
        created_at: row.created_at,
        data,
    };
    // Strings, an id, a time and already-valid JSON can't fail to serialize; were it ever to,
    // the socket gets the event's kind and cursor with `null` data (and the log says why)
    // rather than the tailer panicking.
    serde_json::to_string(&frame).unwrap_or_else(|e| {
        tracing::error!(event = row.id, error = %e, "an event frame did not serialize");
        serde_json::json!({
            "type": "event",
            "id": cursor(row.id),
            "event": row.kind,
            "room_id": row.room_id,
            "data": null,
        })
        .to_string()
    })
}

/// The event type (`message.created`…) of a frame made by [`frame`], read without parsing it:
/// the frame's fields come in a fixed order, and its `event` is the first `"event":"` in it (the
/// fields before it, `type` and `id`, can't hold that text). An SSE stream names each message
/// with it.
pub fn frame_kind(frame: &str) -> Option<&str> {
    const KEY: &str = "\"event\":\"";
    let start = frame.find(KEY)? + KEY.len();
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_of_a_frame_is_its_event_even_when_the_payload_names_another() {
        let row = EventRow {
            id: 7,
            kind: "reaction.added".into(),
            room_id: None,
            payload: r#"{"event":"message.created","type":"event"}"#.into(),
            created_at: Time::now(),
            expires_at: None,
        };
        assert_eq!(frame_kind(&frame(&row)), Some("reaction.added"));
        assert_eq!(frame_kind(r#"{"type":"hello"}"#), None);
    }

    #[test]
    fn a_frame_is_valid_json_with_the_payload_inside() {
        let row = EventRow {
            id: 42,
            kind: "message.created".into(),
            room_id: Some(Id::new()),
            payload: r#"{"body":"hi \"there\""}"#.into(),
            created_at: Time::now(),
            expires_at: None,
        };
        let v: serde_json::Value = serde_json::from_str(&frame(&row)).unwrap();
        assert_eq!(v["type"], "event");
        assert_eq!(v["id"], "42");
        assert_eq!(v["event"], "message.created");
        assert_eq!(v["data"]["body"], "hi \"there\"");
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        assert_eq!(parse_cursor(&cursor(7)), Some(7));
        assert_eq!(parse_cursor("-1"), None);
        assert_eq!(parse_cursor("abc"), None);
    }
}
