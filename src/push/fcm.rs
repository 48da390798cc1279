//! Firebase Cloud Messaging, HTTP v1: a service account's OAuth token (JWT bearer grant, RS256,
//! from the account's own `token_uri`), cached until it expires, and the v1 message.

/// A service account and its cached access token.
pub struct Fcm {}
