//! Push services on loopback for the tests: a Web Push service checking what the server sends
//! as the real one would, cryptography included.

mod jwt;
mod keys;
mod server;
mod webpush;

pub use keys::PushKeys;
pub use server::Reply;
pub use webpush::{WebPushDelivery, WebPushReceiver};
