//! Push notifications for devices that hold no socket (docs/notifications.md): a worker reads
//! the event log from its own durable cursor and turns each `message.created` into Web Push and
//! FCM requests for the members who should hear of it.
//!
//! This layer speaks HTTP only through [`transport::Transport`], which the server layer
//! implements with its HTTP client: the rules of who gets what, and the requests' encryption
//! and signatures, live here without actix.

pub mod deliver;
pub mod fcm;
pub mod notification;
pub mod transport;
pub mod webpush;
pub mod worker;
