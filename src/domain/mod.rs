//! Validated values: a `Username` or a `MessageBody` that exists is a valid one.

mod id;
mod kinds;
mod text;
pub mod visibility;

pub use id::{DbTime, DbUuid, Id, Time};
pub use kinds::{NotifyLevel, PushKind, RequestStatus, Role, RoomKind, UserKind};
pub use text::{
    allowed_in_bodies, refused_in_names, DisplayName, Label, MessageBody, Password, RoomName,
    Username,
};
