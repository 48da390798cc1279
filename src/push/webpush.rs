//! Web Push (RFC 8030): the payload encrypted for the browser (aes128gcm, RFC 8291) and the
//! request signed with the server's VAPID key (RFC 8292).

/// The server's VAPID key and subject, ready to sign requests.
pub struct WebPush {}
