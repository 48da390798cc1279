//! The rules: who may do what, and what each write stores. No actix here: the API and the
//! stream call these functions; they call the store and the event writer.

pub mod accounts;
pub mod admin;
pub mod attachments;
pub mod credentials;
pub mod crypto;
pub mod deletion;
pub mod event;
pub mod export;
pub mod maintenance;
pub mod members;
pub mod messages;
pub mod notifications;
pub mod presence;
pub mod push;
pub mod reactions;
pub mod replay;
pub mod reports;
pub mod rooms;
pub mod search;
pub mod send_group;
pub mod sessions;
pub mod social;
pub mod tokens;
pub mod typing;
pub mod views;
pub mod work;
