//! The answer of a write that appended an event.

use serde::Serialize;

/// A write's answer: the object plus the id of the event the write appended, if any (the id
/// the event's frame carries on the socket).
#[derive(Serialize, utoipa::ToSchema)]
pub struct WithEvent<T: Serialize> {
    #[serde(flatten)]
    pub inner: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl<T: Serialize> WithEvent<T> {
    pub fn new(inner: T, event: Option<i64>) -> WithEvent<T> {
        WithEvent {
            inner,
            event_id: event.map(crate::events::cursor),
        }
    }
}
