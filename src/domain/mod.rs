//! Validated values: a `Username` or a `MessageBody` that exists is a valid one.

mod id;
mod kinds;
pub mod search;
mod text;
pub mod visibility;

pub use id::{DbTime, DbUuid, Id, Time};
pub use kinds::{NotifyLevel, PushKind, RequestStatus, Role, RoomKind, UserKind};
pub use text::{
    allowed_in_bodies, allowed_in_notes, refused_in_names, DisplayName, Label, MessageBody, Note,
    Password, RoomName, Username,
};
