//! The test push services themselves, before the server is pointed at them: what a real client
//! library sends is taken, decrypted and verified; what is signed or addressed wrongly is not.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{Claims, ES256KeyPair, RS256KeyPair, RSAKeyPairLike};
use serde_json::{json, Value};
use web_push::request_builder::build_request;
use web_push::{
    ContentEncoding, SubscriptionInfo, Urgency, VapidSignatureBuilder, WebPushMessageBuilder,
};

use crate::harness::push::{
    FcmDelivery, FcmReceiver, PushKeys, Reply, WebPushDelivery, WebPushReceiver,
};
use crate::harness::{send, send_raw, Resp};

const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";

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

/// The service account file the receiver writes, read back as the server would read it.
fn service_account(receiver: &FcmReceiver) -> Value {
    let dir = std::env::temp_dir().join(format!("hubbub-fcm-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = receiver.service_account(&dir);
    let json = std::fs::read(&path).expect("read the service account");
    let _ = std::fs::remove_dir_all(&dir);
    serde_json::from_slice(&json).expect("service account JSON")
}

/// A JWT bearer assertion for `aud`, signed by the PKCS#8 PEM `private_key`.
fn assertion(account: &Value, private_key: &str, aud: &str) -> String {
    let key = RS256KeyPair::from_pem(private_key)
        .expect("an RSA key")
        .with_key_id(account["private_key_id"].as_str().expect("private_key_id"));
    let scope = json!({ "scope": FCM_SCOPE });
    let Value::Object(scope) = scope else {
        unreachable!()
    };
    let claims = Claims::with_custom_claims(scope, jwt_simple::prelude::Duration::from_hours(1))
        .with_issuer(account["client_email"].as_str().expect("client_email"))
        .with_audience(aud);
    key.sign(claims).expect("sign")
}

/// `POST token_uri` with the JWT bearer grant.
async fn grant(token_uri: &str, assertion: &str) -> Resp {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
        .append_pair("assertion", assertion)
        .finish();
    let request = awc::Client::default()
        .post(token_uri)
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
    send_raw(request, form.into_bytes()).await
}

/// An access token for the receiver's own service account.
async fn access_token(receiver: &FcmReceiver) -> String {
    let account = service_account(receiver);
    let key = account["private_key"].as_str().expect("private_key");
    let token_uri = account["token_uri"].as_str().expect("token_uri");
    let answer = grant(token_uri, &assertion(&account, key, token_uri)).await;
    answer.expect(200)["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// `POST …/messages:send` with `bearer`.
async fn send_message(receiver: &FcmReceiver, bearer: &str, message: &Value) -> Resp {
    let url = format!(
        "{}/v1/projects/{}/messages:send",
        receiver.base_url(),
        receiver.project_id()
    );
    let request = awc::Client::default()
        .post(url)
        .insert_header(("Authorization", format!("Bearer {bearer}")));
    send(request, Some(message)).await
}

fn message(device: &str) -> Value {
    json!({ "message": {
        "token": device,
        "data": { "room_id": "r1", "body": "héllo", "count": "2" },
        "android": { "priority": "high", "collapse_key": "room-r1", "ttl": "3600s" },
        "apns": {
            "headers": { "apns-priority": "10", "apns-collapse-id": "room-r1" },
            "payload": { "aps": { "content-available": 1 } },
        },
    }})
}

#[actix_web::test]
async fn an_fcm_message_sent_with_the_service_accounts_token_is_recorded() {
    // Arrange
    let receiver = FcmReceiver::start();
    let account = service_account(&receiver);
    assert_eq!(account["type"], "service_account");
    assert_eq!(account["project_id"], receiver.project_id());
    assert_eq!(account["token_uri"], receiver.token_url());
    let key = account["private_key"].as_str().expect("private_key");
    assert!(
        key.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "PKCS#8: {key}"
    );
    let token_uri = account["token_uri"].as_str().expect("token_uri");

    // Act
    let token = grant(token_uri, &assertion(&account, key, token_uri)).await;
    let token = token.expect(200);
    let bearer = token["access_token"].as_str().expect("access_token");
    let sent = send_message(&receiver, bearer, &message("device-1")).await;

    // Assert
    assert_eq!(token["expires_in"], 3600);
    assert_eq!(token["token_type"], "Bearer");
    let name = sent.expect(200)["name"].as_str().expect("name").to_owned();
    assert!(name.starts_with("projects/hubbub-test/messages/"), "{name}");
    assert_eq!(receiver.rejections(), Vec::<String>::new());
    let deliveries: Vec<FcmDelivery> = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(deliveries.len(), 1);
    let delivery = &deliveries[0];
    assert_eq!(delivery.token, "device-1");
    assert_eq!(
        Value::Object(delivery.data.clone()),
        json!({ "room_id": "r1", "body": "héllo", "count": "2" })
    );
    assert_eq!(delivery.collapse_key, "room-r1");
    assert_eq!(delivery.raw, message("device-1"));
    assert_eq!(receiver.deliveries_for("device-1"), deliveries);
    assert_eq!(receiver.token_requests(), 1);
    assert_eq!(receiver.attempts("device-1"), 1);
}

#[actix_web::test]
async fn an_assertion_signed_by_another_key_or_for_another_audience_is_refused() {
    // Arrange
    let receiver = FcmReceiver::start();
    let account = service_account(&receiver);
    let key = account["private_key"].as_str().expect("private_key");
    let token_uri = account["token_uri"].as_str().expect("token_uri");
    let other = openssl::rsa::Rsa::generate(2048).expect("RSA key");
    let other = openssl::pkey::PKey::from_rsa(other).expect("RSA key");
    let other = String::from_utf8(other.private_key_to_pem_pkcs8().expect("PEM")).expect("text");

    // Act
    let other_key = grant(token_uri, &assertion(&account, &other, token_uri)).await;
    let google_aud = assertion(&account, key, "https://oauth2.googleapis.com/token");
    let other_aud = grant(token_uri, &google_aud).await;

    // Assert
    assert_eq!(other_key.status, 400);
    assert_eq!(other_key.body["error"], "invalid_grant");
    assert_eq!(other_aud.status, 400);
    assert_eq!(other_aud.body["error"], "invalid_grant");
    assert_eq!(receiver.token_requests(), 2);
    let rejections = receiver.rejections();
    assert_eq!(rejections.len(), 2, "{rejections:?}");
    assert!(rejections[0].contains("does not verify"), "{rejections:?}");
    assert!(
        rejections[1].contains("is not the token_uri"),
        "{rejections:?}"
    );
}

#[actix_web::test]
async fn a_bearer_not_issued_or_expired_gets_401_and_a_revoked_one_401_alone() {
    // Arrange
    let receiver = FcmReceiver::start();
    let revoked = access_token(&receiver).await;
    receiver.revoke_tokens();
    receiver.token_lifetime(0);
    let expired = access_token(&receiver).await;

    // Act
    let unknown = send_message(&receiver, "ya29.not-issued", &message("device-1")).await;
    let expired = send_message(&receiver, &expired, &message("device-1")).await;
    let revoked = send_message(&receiver, &revoked, &message("device-1")).await;

    // Assert
    for answer in [&unknown, &expired, &revoked] {
        assert_eq!(answer.status, 401);
        assert_eq!(answer.body["error"]["code"], 401);
        assert_eq!(answer.body["error"]["status"], "UNAUTHENTICATED");
    }
    assert_eq!(receiver.deliveries(), vec![]);
    assert_eq!(receiver.attempts("device-1"), 3);
    let rejections = receiver.rejections();
    assert_eq!(
        rejections.len(),
        2,
        "the revoked token is no rejection: {rejections:?}"
    );
    assert!(rejections[0].contains("was not issued"), "{rejections:?}");
    assert!(rejections[1].contains("expired"), "{rejections:?}");
}

#[actix_web::test]
async fn scripted_fcm_answers_have_googles_shapes() {
    // Arrange
    let receiver = FcmReceiver::start();
    receiver.script_token(vec![Reply::status(503)]);
    let account = service_account(&receiver);
    let key = account["private_key"].as_str().expect("private_key");
    let token_uri = account["token_uri"].as_str().expect("token_uri");
    let refused = grant(token_uri, &assertion(&account, key, token_uri)).await;
    let bearer = access_token(&receiver).await;
    receiver.script("device-1", vec![Reply::status(404)]);
    receiver.script(
        "device-2",
        vec![
            Reply::status(429).retry_after(7),
            Reply::status(503).retry_after(2),
        ],
    );

    // Act
    let unregistered = send_message(&receiver, &bearer, &message("device-1")).await;
    let quota = send_message(&receiver, &bearer, &message("device-2")).await;
    let unavailable = send_message(&receiver, &bearer, &message("device-2")).await;
    let delivered = send_message(&receiver, &bearer, &message("device-2")).await;

    // Assert
    assert_eq!(refused.status, 503);
    assert_eq!(receiver.token_requests(), 2);
    assert_eq!(unregistered.status, 404);
    assert_eq!(
        unregistered.body,
        json!({"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}})
    );
    assert_eq!(quota.status, 429);
    assert_eq!(quota.header("retry-after").as_deref(), Some("7"));
    assert_eq!(quota.body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        quota.body["error"]["details"][0]["errorCode"],
        "QUOTA_EXCEEDED"
    );
    assert_eq!(unavailable.status, 503);
    assert_eq!(unavailable.header("retry-after").as_deref(), Some("2"));
    assert_eq!(unavailable.body["error"]["status"], "UNAVAILABLE");
    delivered.expect(200);
    assert_eq!(receiver.attempts("device-1"), 1);
    assert_eq!(receiver.attempts("device-2"), 3);
    assert_eq!(receiver.deliveries_for("device-1"), vec![]);
    assert_eq!(receiver.deliveries_for("device-2").len(), 1);
    assert_eq!(receiver.rejections(), Vec::<String>::new());
}

#[actix_web::test]
async fn an_fcm_message_with_non_string_data_or_no_collapse_key_is_rejected() {
    // Arrange
    let receiver = FcmReceiver::start();
    let bearer = access_token(&receiver).await;
    let mut number = message("device-1");
    number["message"]["data"]["count"] = json!(2);
    let mut no_collapse_key = message("device-1");
    no_collapse_key["message"]["android"] = json!({ "priority": "high" });

    // Act
    let number = send_message(&receiver, &bearer, &number).await;
    let no_collapse_key = send_message(&receiver, &bearer, &no_collapse_key).await;

    // Assert
    for answer in [&number, &no_collapse_key] {
        assert_eq!(answer.status, 400);
        assert_eq!(answer.body["error"]["status"], "INVALID_ARGUMENT");
    }
    assert_eq!(receiver.deliveries(), vec![]);
    let rejections = receiver.rejections();
    assert_eq!(rejections.len(), 2, "{rejections:?}");
    assert!(
        rejections[0].contains("message.data.count is 2, not a string"),
        "{rejections:?}"
    );
    assert!(rejections[1].contains("collapse_key"), "{rejections:?}");
}
