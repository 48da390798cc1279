//! The server layer: everything that speaks HTTP. The REST handlers (`api`), the read side
//! (`stream`: the WebSocket, Server-Sent Events and the long poll), the upgrade path that takes sockets out of
//! actix-http's dispatcher (`upgrade`), the shared state and start-up (`state`, `app`), the
//! process limits set at start (`limits`), and the HTTP client push notifications leave by
//! (`outbound`). Nothing below this folder knows actix or HTTP.

pub mod admin_cli;
pub mod api;
pub mod app;
pub mod limits;
pub mod outbound;
pub mod state;
pub mod stream;
pub mod upgrade;
