//! What one delivery carries and how it ended: shared by the senders (`webpush`, `fcm`) and
//! the worker, and re-exported by [`crate::push::deliver`].

use std::time::Duration;

/// What to deliver: the event it comes from (its dedupe key) and the JSON object the device
/// receives.
#[derive(Debug, Clone)]
pub struct Notification {
    pub event_id: i64,
    pub payload: serde_json::Map<String, serde_json::Value>,
}

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The push service took it.
    Delivered,
    /// The subscription is gone for good (Web Push 404/410, FCM `UNREGISTERED`): delete it.
    Gone,
    /// Try again later (429, 5xx, timeouts, network errors), after the wait if one was given.
    Retry(Option<Duration>),
    /// Don't try again (another 4xx, a forbidden address, a subscription that can't be used).
    Failed(String),
}

impl Outcome {
    /// Its label in `hubbub_push_sent_total{outcome}`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Gone => "gone",
            Outcome::Retry(_) => "retry",
            Outcome::Failed(_) => "failed",
        }
    }
}
