//! Getting committed events to the sockets of this node: the doorbell (a watch channel the
//! writer rings after each commit), the tailer that reads the log, and the hub that fans out.

pub mod doorbell;
pub mod hub;
pub mod queue;
pub mod tailer;

pub use hub::{Close, Hub};
