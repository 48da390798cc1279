//! Validated values: a `Username` or a `MessageBody` that exists is a valid one.

mod id;
mod text;

pub use id::{Id, Time};
pub use text::{DisplayName, Label, MessageBody, Password, RoomName, Username};
