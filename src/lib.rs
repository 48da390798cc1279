//! hubbub: a self-hostable chat backend. Clients send through REST and receive through a
//! read-only WebSocket that pushes only events already persisted.

pub mod config;
pub mod core;
pub mod domain;
pub mod error;
pub mod events;
pub mod metrics;
pub mod push;
pub mod realtime;
pub mod server;
pub mod store;
