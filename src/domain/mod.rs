//! Validated values: a `Username` or a `MessageBody` that exists is a valid one.

mod id;
mod text;

pub use id::{Id, Time};
pub use text::{
    allowed_in_bodies, refused_in_names, DisplayName, Label, MessageBody, Password, RoomName,
    Username,
};
