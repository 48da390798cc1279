//! What request handlers and socket sessions share: handed to them as `web::Data<AppState>`.

use std::sync::Arc;

use crate::config::Settings;
use crate::core::credentials::Credentials;
use crate::core::presence::Presence;
use crate::core::typing::Typists;
use crate::core::work::Pool;
use crate::events::Writer;
use crate::metrics::Metrics;
use crate::push::deliver::Senders;
use crate::realtime::{doorbell, Hub};
use crate::store::Db;

/// The server's shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub writer: Writer,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    /// Live sessions and tokens, so that authentication needs no query.
    pub credentials: Arc<Credentials>,
    /// The cross-node doorbell's state, for `/readyz`.
    pub doorbell: Arc<doorbell::Status>,
    /// Image decodes and re-encodes, bounded (see `core::work`).
    pub images: Pool,
    /// Password hashes and checks (argon2, 19 MiB each), bounded.
    pub hashes: Pool,
    /// Push notifications' keys and senders (the VAPID key, FCM's service account), for the
    /// API (the public key, whether FCM is on) and the push worker.
    pub push: Arc<Senders>,
    /// Who is typing where, as this node has appended it (the typing throttle).
    pub typists: Arc<Typists>,
    /// This node's streams per user, for presence.
    pub presence: Arc<Presence>,
}
