//! Push services on loopback for the tests: a Web Push service and FCM (with Google's token
//! endpoint), each checking what the server sends as the real one would, cryptography included.

mod fcm;
mod fcm_v1;
mod jwt;
mod keys;
mod server;
mod webpush;

pub use fcm::FcmReceiver;
pub use fcm_v1::FcmDelivery;
pub use keys::PushKeys;
pub use server::Reply;
pub use webpush::{WebPushDelivery, WebPushReceiver};
