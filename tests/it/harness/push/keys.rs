//! A browser's side of a Web Push subscription: its P-256 key pair and auth secret (RFC 8291).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

/// The keys a browser makes for one subscription; they decrypt what is pushed to it.
#[derive(Clone)]
pub struct PushKeys {
    key_pair: ece::EcKeyComponents,
    auth: [u8; 16],
}

impl Default for PushKeys {
    fn default() -> Self {
        PushKeys::new()
    }
}

impl PushKeys {
    /// A fresh P-256 key pair and 16-byte auth secret.
    pub fn new() -> PushKeys {
        let (key_pair, auth) =
            ece::generate_keypair_and_auth_secret().expect("generate a P-256 key pair");
        PushKeys {
            key_pair: key_pair
                .raw_components()
                .expect("the key pair's components"),
            auth,
        }
    }

    /// The public key (uncompressed point), base64url without padding, as `keys.p256dh`.
    pub fn p256dh(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key_pair.public_key())
    }

    /// The auth secret, base64url without padding, as `keys.auth`.
    pub fn auth(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.auth)
    }

    /// The subscription as a browser's `PushSubscription.toJSON()` gives it.
    pub fn subscription_json(&self, endpoint: &str) -> Value {
        json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": { "p256dh": self.p256dh(), "auth": self.auth() },
        })
    }

    /// Decrypts an aes128gcm body (RFC 8188 with RFC 8291's keys).
    pub fn decrypt(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        // RFC 8291 §4: one record, so the body is the header and at most `rs` octets.
        let (header, rest) = body
            .split_at_checked(21)
            .ok_or_else(|| format!("the body is {} bytes, shorter than a header", body.len()))?;
        let rs = u32::from_be_bytes([header[16], header[17], header[18], header[19]]) as usize;
        let key_id_len = header[20] as usize;
        if key_id_len != 65 {
            return Err(format!(
                "the header's keyid is {key_id_len} bytes, not the sender's 65-byte public key"
            ));
        }
        let records = rest.len().saturating_sub(key_id_len);
        if records > rs {
            return Err(format!(
                "the body holds {records} bytes of records with rs={rs}: more than one record"
            ));
        }
        ece::decrypt(&self.key_pair, &self.auth, body).map_err(|e| format!("decrypt: {e}"))
    }
}
