//! Web Push (RFC 8030): the payload encrypted for the browser (aes128gcm, RFC 8291) and the
//! request signed with the server's VAPID key (RFC 8292).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use base64::Engine as _;
use jwt_simple::prelude::ES256KeyPair;
use web_push::{
    ContentEncoding, PartialVapidSignatureBuilder, SubscriptionInfo, Urgency, VapidSignature,
    VapidSignatureBuilder, WebPushMessageBuilder,
};

use crate::push::notification::{Notification, Outcome};
use crate::push::transport::{Failure, Outgoing, Reply};
use crate::store::push::SubscriptionRow;
use crate::store::{secrets, DbConnection};

/// How long a push service keeps a notification for a device that is offline: a day-old chat
/// notification is still worth showing, an older one the device learns from the app itself.
pub const TTL: Duration = Duration::from_secs(24 * 3600);

/// The largest payload (the notification's JSON) one encrypted record holds.
pub const MAX_PAYLOAD_BYTES: usize = 3052;

/// The name of the generated key in `server_secrets`.
const SECRET: &str = "vapid_private_key";

/// The server's VAPID key and subject, ready to sign requests.
#[derive(Clone)]
pub struct WebPush {
    signer: PartialVapidSignatureBuilder,
    public_key: Vec<u8>,
    subject: String,
    /// Signed VAPID tokens by audience (a push service's origin) and when they were made:
    /// signing (ES256) was half the worker's time when each push signed its own.
    signatures: Arc<Mutex<HashMap<String, (VapidSignature, Instant)>>>,
}

/// How long a signed VAPID token is reused; it is valid for 12 hours from its signing.
pub const SIGNATURE_REUSE: Duration = Duration::from_secs(3600);
/// The most audiences whose tokens are kept (more are signed again as they come).
const SIGNATURES_KEPT: usize = 1024;

impl std::fmt::Debug for WebPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebPush")
            .field("public_key", &encode(&self.public_key))
            .field("subject", &self.subject)
            .finish()
    }
}

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new VAPID private key: a random P-256 scalar, 32 bytes.
pub fn generate_key() -> Vec<u8> {
    ES256KeyPair::generate().to_bytes()
}

/// The VAPID private key: `configured` (`HUBBUB_VAPID_PRIVATE_KEY`, base64url of the 32-byte
/// scalar), else the one kept in the database, made on first use, so that every node signs with
/// the same key and browsers' subscriptions (bound to the public key) survive restarts.
pub fn private_key(configured: Option<&str>, conn: &mut DbConnection) -> anyhow::Result<Vec<u8>> {
    let key = match configured {
        Some(text) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .context("HUBBUB_VAPID_PRIVATE_KEY is not base64url")?,
        None => secrets::get_or_create(conn, SECRET, generate_key)
            .context("cannot read or store the VAPID key")?,
    };
    check_key(&key).with_context(|| match configured {
        Some(_) => "HUBBUB_VAPID_PRIVATE_KEY is not a P-256 private key (base64url of 32 bytes)",
        None => "the VAPID key stored in the database is not a P-256 private key",
    })?;
    Ok(key)
}

fn check_key(key: &[u8]) -> anyhow::Result<ES256KeyPair> {
    // jwt-simple panics on a slice of another length.
    if key.len() != 32 {
        bail!("{} bytes instead of 32", key.len());
    }
    ES256KeyPair::from_bytes(key).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The `aud` of a VAPID token: the endpoint's origin, its port kept unless it is the scheme's
/// default (web-push's own default drops any port, which push services then refuse).
pub fn audience(endpoint: &str) -> Option<String> {
    let url = url::Url::parse(endpoint).ok()?;
    url.host()?;
    Some(url.origin().ascii_serialization())
}

/// The `Topic` of a notification: the same for every attempt at one event, so that a retry
/// replaces a copy the push service still holds instead of adding a second (at most 32
/// base64url characters).
pub fn topic(event_id: i64) -> String {
    format!("ev{event_id}")
}

impl WebPush {
    /// Signs with `private_key` (the raw 32-byte scalar) and puts `subject` (`mailto:` or
    /// `https:`) in every token.
    pub fn new(private_key: &[u8], subject: &str) -> anyhow::Result<WebPush> {
        check_key(private_key).context("the VAPID private key is invalid")?;
        let signer = VapidSignatureBuilder::from_base64_no_sub(&encode(private_key))
            .map_err(|e| anyhow::anyhow!("the VAPID private key is invalid: {e}"))?;
        Ok(WebPush {
            public_key: signer.get_public_key(),
            signer,
            subject: subject.to_string(),
            signatures: Arc::default(),
        })
    }

    /// The public key, as browsers' `applicationServerKey` wants it: the 65-byte uncompressed
    /// P-256 point.
    pub fn public_key(&self) -> Vec<u8> {
        self.public_key.clone()
    }

    /// The request that delivers `notification` to the Web Push `subscription`: its JSON
    /// encrypted for the browser, signed, with `TTL`, `Urgency: high` and the event's `Topic`.
    /// `Err` says why this subscription can't be sent to (not a retryable failure).
    pub fn request(
        &self,
        subscription: &SubscriptionRow,
        notification: &Notification,
    ) -> Result<Outgoing, String> {
        let (Some(p256dh), Some(auth)) = (&subscription.p256dh, &subscription.auth) else {
            return Err("the subscription has no keys".into());
        };
        let info = SubscriptionInfo::new(subscription.target.as_str(), p256dh, auth);
        let audience = audience(&info.endpoint).ok_or("the endpoint is not an absolute URL")?;
        let payload = serde_json::to_vec(&notification.payload).map_err(|e| e.to_string())?;
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(format!(
                "the payload is {} bytes, more than {MAX_PAYLOAD_BYTES}",
                payload.len()
            ));
        }
        let signature = self.signature(&info, audience)?;
        let mut message = WebPushMessageBuilder::new(&info);
        message.set_payload(ContentEncoding::Aes128Gcm, &payload);
        message.set_vapid_signature(signature);
        message.set_ttl(TTL.as_secs() as u32);
        message.set_urgency(Urgency::High);
        message.set_topic(topic(notification.event_id));
        let message = message.build().map_err(|e| format!("building: {e}"))?;
        // web-push's request as the transport's: its headers but `Content-Length`, which the
        // transport sets from the body.
        let (parts, body) =
            web_push::request_builder::build_request::<Vec<u8>>(message).into_parts();
        let headers = parts
            .headers
            .iter()
            .filter(|(name, _)| name.as_str() != "content-length")
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
            .collect();
        Ok(Outgoing {
            url: parts.uri.to_string(),
            headers,
            body,
        })
    }
}

/// What a push service's answer means.
impl WebPush {
    /// The VAPID token for `audience`: the one signed within [`SIGNATURE_REUSE`], or a new one.
    fn signature(
        &self,
        info: &SubscriptionInfo,
        audience: String,
    ) -> Result<VapidSignature, String> {
        let mut kept = self.signatures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((signature, at)) = kept.get(&audience) {
            if at.elapsed() < SIGNATURE_REUSE {
                return Ok(signature.clone());
            }
        }
        let mut builder = self.signer.clone().add_sub_info(info);
        builder.add_claim("aud", audience.as_str());
        builder.add_claim("sub", self.subject.as_str());
        let signature = builder.build().map_err(|e| format!("signing: {e}"))?;
        if kept.len() >= SIGNATURES_KEPT {
            kept.clear();
        }
        kept.insert(audience, (signature.clone(), Instant::now()));
        Ok(signature)
    }
}

pub fn classify(answer: Result<Reply, Failure>) -> Outcome {
    match answer {
        Ok(reply) => match reply.status {
            200..=299 => Outcome::Delivered,
            404 | 410 => Outcome::Gone,
            429 | 500..=599 => Outcome::Retry(reply.retry_after),
            status => Outcome::Failed(format!(
                "the push service answered {status}: {}",
                String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)])
            )),
        },
        Err(Failure::Forbidden(why)) => Outcome::Failed(why),
        Err(Failure::Timeout | Failure::Network(_)) => Outcome::Retry(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Id, PushKind, Time};
    use jwt_simple::prelude::{Clock, ECDSAP256PublicKeyLike, ES256PublicKey, JWTClaims};

    fn subscription(endpoint: &str) -> (SubscriptionRow, Box<dyn ece::LocalKeyPair>, Vec<u8>) {
        let (keys, auth) = ece::generate_keypair_and_auth_secret().unwrap();
        let public = keys.raw_components().unwrap().public_key().to_vec();
        let row = SubscriptionRow {
            id: Id::new(),
            user_id: Id::new(),
            credential_id: Id::new(),
            kind: PushKind::WebPush,
            target: endpoint.into(),
            p256dh: Some(encode(&public)),
            auth: Some(encode(&auth)),
            created_at: Time::now(),
        };
        (row, keys, auth.to_vec())
    }

    fn notification() -> Notification {
        let payload = serde_json::json!({"type": "message", "room_id": "r1", "body": "héllo"});
        Notification {
            event_id: 4242,
            payload: payload.as_object().unwrap().clone(),
        }
    }

    fn header<'a>(request: &'a Outgoing, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The claims of the request's VAPID token, checked against `public_key`.
    fn claims(request: &Outgoing, public_key: &[u8]) -> JWTClaims<serde_json::Value> {
        let auth = header(request, "authorization").expect("Authorization");
        let rest = auth.strip_prefix("vapid t=").expect("vapid scheme");
        let (token, k) = rest.split_once(", k=").expect("t and k");
        assert_eq!(k, encode(public_key), "k is the server's public key");
        ES256PublicKey::from_bytes(public_key)
            .unwrap()
            .verify_token::<serde_json::Value>(token, None)
            .expect("the token's signature verifies with the public key")
    }

    #[test]
    fn the_browser_decrypts_the_notification_and_the_signature_verifies() {
        let key = generate_key();
        let push = WebPush::new(&key, "mailto:ops@example.com").unwrap();
        let (row, keys, auth) = subscription("https://push.example.net:8443/send/abc");

        let request = push.request(&row, &notification()).unwrap();

        assert_eq!(request.url, "https://push.example.net:8443/send/abc");
        let plain = ece::decrypt(&keys.raw_components().unwrap(), &auth, &request.body).unwrap();
        let sent: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(sent, serde_json::Value::Object(notification().payload));
        assert_eq!(header(&request, "content-encoding"), Some("aes128gcm"));
        assert_eq!(header(&request, "ttl"), Some("86400"));
        assert_eq!(header(&request, "urgency"), Some("high"));
        assert_eq!(header(&request, "topic"), Some("ev4242"));
        assert_eq!(header(&request, "content-length"), None);
        let claims = claims(&request, &push.public_key());
        let audiences = claims.audiences.unwrap().into_string().unwrap();
        assert_eq!(audiences, "https://push.example.net:8443");
        assert_eq!(claims.subject.as_deref(), Some("mailto:ops@example.com"));
        let exp = claims.expires_at.unwrap().as_secs();
        let now = Clock::now_since_epoch().as_secs();
        assert!(exp > now && exp <= now + 24 * 3600, "exp within a day");
    }

    #[test]
    fn the_audience_drops_the_default_port_and_keeps_any_other() {
        let push = WebPush::new(&generate_key(), "https://example.com/contact").unwrap();
        let (row, _, _) = subscription("https://fcm.googleapis.com:443/fcm/send/x");
        let request = push.request(&row, &notification()).unwrap();
        let claims = claims(&request, &push.public_key());
        assert_eq!(
            claims.audiences.unwrap().into_string().unwrap(),
            "https://fcm.googleapis.com"
        );
        assert_eq!(
            audience("http://127.0.0.1:8080/x").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            audience("https://[::1]:444/x").unwrap(),
            "https://[::1]:444"
        );
    }

    #[test]
    fn one_signed_token_serves_a_push_service_for_an_hour_and_each_service_has_its_own() {
        let push = WebPush::new(&generate_key(), "mailto:a@b.c").unwrap();
        let (a1, _, _) = subscription("https://push.example.net/a");
        let (a2, _, _) = subscription("https://push.example.net/b");
        let (b, _, _) = subscription("https://other.example.org/c");
        let auth = |row: &SubscriptionRow| {
            let request = push.request(row, &notification()).unwrap();
            header(&request, "authorization").map(str::to_owned)
        };
        let first = auth(&a1);
        assert_eq!(auth(&a2), first, "the same origin reuses its token");
        let other = auth(&b);
        assert_ne!(other, first, "another origin gets a token of its own");
        let claims = claims(
            &push.request(&b, &notification()).unwrap(),
            &push.public_key(),
        );
        assert_eq!(
            claims.audiences.unwrap().into_string().unwrap(),
            "https://other.example.org"
        );
        // An hour later the token is signed again.
        {
            let mut kept = push.signatures.lock().unwrap();
            let entry = kept.get_mut("https://push.example.net").unwrap();
            entry.1 -= SIGNATURE_REUSE;
        }
        assert_ne!(auth(&a1), first);
    }

    #[test]
    fn a_retry_carries_the_same_topic_and_another_event_another() {
        let push = WebPush::new(&generate_key(), "mailto:a@b.c").unwrap();
        let (row, _, _) = subscription("https://push.example.net/x");
        let first = push.request(&row, &notification()).unwrap();
        let again = push.request(&row, &notification()).unwrap();
        let other = push
            .request(
                &row,
                &Notification {
                    event_id: i64::MAX,
                    ..notification()
                },
            )
            .unwrap();
        assert_eq!(header(&first, "topic"), header(&again, "topic"));
        assert_ne!(header(&first, "topic"), header(&other, "topic"));
        assert!(topic(i64::MAX).len() <= 32);
        assert_ne!(first.body, again.body, "each copy is encrypted afresh");
    }

    #[test]
    fn keys_of_the_wrong_size_or_out_of_range_are_refused_not_a_panic() {
        assert!(WebPush::new(&[1u8; 31], "mailto:a@b.c").is_err());
        assert!(WebPush::new(&[0u8; 32], "mailto:a@b.c").is_err());
        assert!(WebPush::new(&[0xffu8; 32], "mailto:a@b.c").is_err());
        let mut conn = crate::store::testing::database();
        assert!(private_key(Some("!!"), &mut conn).is_err());
        assert!(private_key(Some(&encode(&[1u8; 16])), &mut conn).is_err());
        let good = generate_key();
        assert_eq!(private_key(Some(&encode(&good)), &mut conn).unwrap(), good);
    }

    #[test]
    fn the_generated_key_is_made_once_and_kept() {
        let mut conn = crate::store::testing::database();
        let first = private_key(None, &mut conn).unwrap();
        let again = private_key(None, &mut conn).unwrap();
        assert_eq!(first, again);
        assert!(WebPush::new(&first, "mailto:a@b.c").is_ok());
    }

    #[test]
    fn a_subscription_without_keys_or_a_payload_too_large_fails_to_build() {
        let push = WebPush::new(&generate_key(), "mailto:a@b.c").unwrap();
        let (mut row, _, _) = subscription("https://push.example.net/x");
        let mut big = notification();
        big.payload
            .insert("body".into(), "x".repeat(MAX_PAYLOAD_BYTES).into());
        assert!(push.request(&row, &big).is_err());
        row.auth = None;
        assert!(push.request(&row, &notification()).is_err());
    }

    #[test]
    fn answers_are_classified() {
        let reply = |status: u16, retry: Option<u64>| {
            Ok(Reply {
                status,
                retry_after: retry.map(Duration::from_secs),
                body: b"nope".to_vec(),
            })
        };
        assert_eq!(classify(reply(201, None)), Outcome::Delivered);
        assert_eq!(classify(reply(404, None)), Outcome::Gone);
        assert_eq!(classify(reply(410, None)), Outcome::Gone);
        assert_eq!(
            classify(reply(429, Some(30))),
            Outcome::Retry(Some(Duration::from_secs(30)))
        );
        assert_eq!(classify(reply(503, None)), Outcome::Retry(None));
        assert!(matches!(classify(reply(413, None)), Outcome::Failed(_)));
        assert!(matches!(classify(reply(400, None)), Outcome::Failed(_)));
        assert!(matches!(classify(reply(403, None)), Outcome::Failed(_)));
        assert!(matches!(
            classify(Err(Failure::Forbidden("loopback".into()))),
            Outcome::Failed(_)
        ));
        assert_eq!(classify(Err(Failure::Timeout)), Outcome::Retry(None));
        assert_eq!(
            classify(Err(Failure::Network("reset".into()))),
            Outcome::Retry(None)
        );
    }
}
