//! The test push services themselves, before the server is pointed at them: what a real client
//! library sends is taken, decrypted and verified; what is signed or addressed wrongly is not.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::ES256KeyPair;
use serde_json::json;
use web_push::request_builder::build_request;
use web_push::{
    ContentEncoding, SubscriptionInfo, Urgency, VapidSignatureBuilder, WebPushMessageBuilder,
};

use crate::harness::push::{PushKeys, Reply, WebPushDelivery, WebPushReceiver};
use crate::harness::{send_raw, Resp};

/// A VAPID key pair as the server holds it: the private scalar and the public point, base64url.
fn vapid_key() -> (String, String) {
    let private = URL_SAFE_NO_PAD.encode(ES256KeyPair::generate().to_bytes());
    let public = VapidSignatureBuilder::from_base64_no_sub(&private)
        .expect("a VAPID key")
        .get_public_key();
    (private, URL_SAFE_NO_PAD.encode(public))
}

/// A request as built by a client library, in plain parts.
struct Push {
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A push as the `web-push` crate builds it; `aud` is its default (the origin without the
/// port) when `None`.
fn web_push_request(
    endpoint: &str,
    keys: &PushKeys,
    vapid_private: &str,
    aud: Option<&str>,
    payload: &[u8],
) -> Push {
    let info = SubscriptionInfo::new(endpoint, &keys.p256dh(), &keys.auth());
    let mut signature = VapidSignatureBuilder::from_base64(vapid_private, &info).expect("key");
    if let Some(aud) = aud {
        signature.add_claim("aud", aud);
    }
    signature.add_claim("sub", "mailto:ops@hubbub.example");
    let mut message = WebPushMessageBuilder::new(&info);
    message.set_payload(ContentEncoding::Aes128Gcm, payload);
    message.set_ttl(60);
    message.set_topic("room-7".into());
    message.set_urgency(Urgency::High);
    message.set_vapid_signature(signature.build().expect("a VAPID signature"));
    let request = build_request::<Vec<u8>>(message.build().expect("a message"));
    Push {
        url: request.uri().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().expect("text").to_owned()))
            .collect(),
        body: request.into_body(),
    }
}

impl Push {
    fn header(&self, name: &str) -> &str {
        let (_, value) = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .expect("the header");
        value
    }

    fn set_header(&mut self, name: &str, value: String) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value));
    }
}

async fn post(push: &Push) -> Resp {
    let mut request = awc::Client::default().post(&push.url);
    for (name, value) in &push.headers {
        // awc sets the length of the body it sends.
        if !name.eq_ignore_ascii_case("content-length") {
            request = request.insert_header((name.as_str(), value.as_str()));
        }
    }
    send_raw(request, push.body.clone()).await
}

#[actix_web::test]
async fn a_web_push_from_the_web_push_crate_is_verified_and_decrypted() {
    // Arrange
    let receiver = WebPushReceiver::start();
    let (private, public) = vapid_key();
    receiver.vapid_key(&public);
    let keys = PushKeys::new();
    let endpoint = receiver.register("alice-laptop", keys.clone());
    assert_eq!(endpoint, receiver.endpoint("alice-laptop"));
    let origin = endpoint.trim_end_matches("/push/alice-laptop");
    let payload = json!({ "room": "general", "body": "héllo 👋" });
    let push = web_push_request(
        &endpoint,
        &keys,
        &private,
        Some(origin),
        payload.to_string().as_bytes(),
    );

    // Act
    let answer = post(&push).await;

    // Assert
    assert_eq!(answer.status, 201);
    assert_eq!(receiver.rejections(), Vec::<String>::new());
    let deliveries: Vec<WebPushDelivery> = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert_eq!(delivery.name, "alice-laptop");
    assert_eq!(delivery.payload, payload);
    assert_eq!(delivery.ttl, 60);
    assert_eq!(delivery.topic.as_deref(), Some("room-7"));
    assert_eq!(delivery.urgency.as_deref(), Some("high"));
    assert_eq!(receiver.deliveries_for("alice-laptop"), deliveries);
    assert_eq!(receiver.deliveries_for("bob-phone"), vec![]);
    assert_eq!(receiver.attempts("alice-laptop"), 1);
    let plaintext = keys.decrypt(&push.body).expect("the keys decrypt the body");
    assert_eq!(plaintext, payload.to_string().as_bytes());
}

#[actix_web::test]
async fn a_web_push_signed_by_another_key_is_rejected() {
    // Arrange
    let receiver = WebPushReceiver::start();
    let (_, server_public) = vapid_key();
    let (other_private, other_public) = vapid_key();
    receiver.vapid_key(&server_public);
    let subscription = receiver.subscribe("alice-laptop");
    assert_eq!(subscription["endpoint"], receiver.endpoint("alice-laptop"));
    let keys = PushKeys::new();
    receiver.register("bob-phone", keys.clone());
    let origin = receiver.endpoint("").trim_end_matches("/push/").to_owned();
    let signed_by_other = web_push_request(
        &receiver.endpoint("bob-phone"),
        &keys,
        &other_private,
        Some(&origin),
        b"{}",
    );
    // The other key's JWT presented with the server's key as `k`.
    let mut forged = web_push_request(
        &receiver.endpoint("bob-phone"),
        &keys,
        &other_private,
        Some(&origin),
        b"{}",
    );
    let authorization = forged
        .header("Authorization")
        .replace(&other_public, &server_public);
    forged.set_header("Authorization", authorization);

    // Act
    let other_key = post(&signed_by_other).await;
    let forged = post(&forged).await;

    // Assert
    assert_eq!(other_key.status, 403);
    assert_eq!(forged.status, 401);
    assert_eq!(receiver.deliveries(), vec![]);
    assert_eq!(receiver.attempts("bob-phone"), 2);
    let rejections = receiver.rejections();
    assert_eq!(rejections.len(), 2, "{rejections:?}");
    assert!(
        rejections[0].contains("k is not the server's VAPID public key"),
        "{rejections:?}"
    );
    assert!(
        rejections[1].contains("signature does not verify"),
        "{rejections:?}"
    );
}

#[actix_web::test]
async fn a_web_push_whose_aud_lacks_the_port_is_rejected() {
    // Arrange: web-push's default `aud` is the scheme and host alone.
    let receiver = WebPushReceiver::start();
    let (private, public) = vapid_key();
    receiver.vapid_key(&public);
    let keys = PushKeys::new();
    let endpoint = receiver.register("alice-laptop", keys.clone());
    let push = web_push_request(&endpoint, &keys, &private, None, b"{}");

    // Act
    let answer = post(&push).await;

    // Assert
    assert_eq!(answer.status, 401);
    assert_eq!(answer.body["code"], 401);
    assert_eq!(receiver.deliveries(), vec![]);
    let rejections = receiver.rejections();
    assert_eq!(rejections.len(), 1);
    assert!(
        rejections[0].contains(r#"aud is "http://127.0.0.1", not"#),
        "{rejections:?}"
    );
}

#[actix_web::test]
async fn a_web_push_encrypted_for_other_keys_is_rejected() {
    // Arrange
    let receiver = WebPushReceiver::start();
    let (private, public) = vapid_key();
    receiver.vapid_key(&public);
    let endpoint = receiver.register("alice-laptop", PushKeys::default());
    let origin = endpoint.trim_end_matches("/push/alice-laptop");
    let push = web_push_request(&endpoint, &PushKeys::new(), &private, Some(origin), b"{}");

    // Act
    let answer = post(&push).await;

    // Assert
    assert_eq!(answer.status, 400);
    assert_eq!(receiver.deliveries(), vec![]);
    let rejections = receiver.rejections();
    assert!(
        rejections.len() == 1 && rejections[0].contains("decrypt"),
        "{rejections:?}"
    );
}

#[actix_web::test]
async fn scripted_web_push_answers_come_in_order_then_201() {
    // Arrange
    let receiver = WebPushReceiver::start();
    let (private, public) = vapid_key();
    receiver.vapid_key(&public);
    let keys = PushKeys::new();
    let endpoint = receiver.register("alice-laptop", keys.clone());
    let origin = endpoint.trim_end_matches("/push/alice-laptop");
    receiver.script(
        "alice-laptop",
        vec![Reply::status(429).retry_after(1), Reply::status(410)],
    );
    let push = web_push_request(&endpoint, &keys, &private, Some(origin), b"[1]");

    // Act
    let first = post(&push).await;
    let second = post(&push).await;
    let third = post(&push).await;

    // Assert
    assert_eq!(first.status, 429);
    assert_eq!(first.header("retry-after").as_deref(), Some("1"));
    assert_eq!(second.status, 410);
    assert_eq!(second.body["code"], 410);
    assert_eq!(third.status, 201);
    assert_eq!(receiver.attempts("alice-laptop"), 3);
    assert_eq!(receiver.rejections(), Vec::<String>::new());
    let deliveries = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].payload, json!([1]));
}
