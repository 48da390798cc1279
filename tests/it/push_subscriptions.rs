//! Push subscriptions and the VAPID key, as a client sees them: the key is public and stable
//! (across restarts, and across nodes on one database), subscriptions are checked (keys on the
//! curve, no endpoint on the server's own networks), idempotent per endpoint, capped, and end
//! with the session or token that made them.

use std::time::{Duration, Instant};

use base64::Engine as _;
use jwt_simple::prelude::{ECDSAP256PublicKeyLike, ES256KeyPair};
use serde_json::{json, Value};

use crate::harness::{send, Bearer, SharedDb, TestApp, TestUser};
use crate::openapi::{document, fits};

const SUBSCRIPTIONS: &str = "/api/v1/push/subscriptions";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A browser's keys, as `PushSubscription.toJSON()` gives them.
fn browser_keys() -> Value {
    let (keys, auth) = ece::generate_keypair_and_auth_secret().unwrap();
    let public = keys.raw_components().unwrap().public_key().to_vec();
    json!({ "p256dh": b64(&public), "auth": b64(&auth) })
}

fn webpush(endpoint: &str) -> Value {
    json!({ "kind": "webpush", "endpoint": endpoint, "keys": browser_keys() })
}

/// A server that takes any endpoint (no DNS here: the tests' endpoints resolve nowhere).
async fn insecure() -> TestApp {
    TestApp::builder()
        .env("HUBBUB_PUSH_ALLOW_INSECURE", "true")
        .spawn()
        .await
}

async fn vapid_key(app: &TestApp) -> String {
    let body = send(app.get("/api/v1/push/vapid"), None).await.expect(200);
    body["public_key"].as_str().expect("public_key").to_owned()
}

async fn subscription_ids(app: &TestApp, user: &TestUser) -> Vec<String> {
    let list = user.get(app, SUBSCRIPTIONS).await.expect(200);
    list["subscriptions"]
        .as_array()
        .expect("subscriptions")
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A Google service-account file with a fresh key, in a temporary file.
fn service_account() -> std::path::PathBuf {
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
    let pem = openssl::pkey::PKey::from_rsa(rsa)
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
    let json = json!({
        "type": "service_account",
        "project_id": "hubbub-test",
        "private_key_id": "k1",
        "private_key": String::from_utf8(pem).unwrap(),
        "client_email": "push@hubbub-test.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    let path = std::env::temp_dir().join(format!("hubbub-fcm-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

#[actix_web::test]
async fn the_vapid_key_is_public_a_p256_point_and_the_same_after_a_restart() {
    // Arrange
    let mut app = TestApp::spawn().await;

    // Act
    let before = vapid_key(&app).await;
    app.restart().await;
    let after = vapid_key(&app).await;

    // Assert
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&before)
        .expect("base64url without padding");
    assert_eq!(bytes.len(), 65);
    assert_eq!(bytes[0], 4, "uncompressed");
    assert_eq!(
        before, after,
        "browsers' subscriptions are bound to this key"
    );
}

#[actix_web::test]
async fn a_configured_vapid_key_is_served_and_an_invalid_one_stops_the_start() {
    // Arrange
    let pair = ES256KeyPair::generate();
    let expected = b64(&pair.public_key().public_key().to_bytes_uncompressed());
    let configured = TestApp::builder()
        .env("HUBBUB_VAPID_PRIVATE_KEY", &b64(&pair.to_bytes()))
        .spawn()
        .await;
    let broken = TestApp::builder()
        .env("HUBBUB_VAPID_PRIVATE_KEY", "not-a-key")
        .create();

    // Act
    let served = vapid_key(&configured).await;
    let output = broken.run_cli(&["serve"]);

    // Assert
    assert_eq!(served, expected);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("HUBBUB_VAPID_PRIVATE_KEY"), "{stderr}");
}

#[actix_web::test]
#[ignore = "needs PostgreSQL: set HUBBUB_TEST_POSTGRES_URL"]
async fn two_nodes_on_one_database_sign_with_the_same_vapid_key() {
    // Arrange: both start at once, so both may find no key and race to store theirs.
    let db = SharedDb::create().expect("needs PostgreSQL: set HUBBUB_TEST_POSTGRES_URL");
    let mut a = TestApp::builder().shared_db(&db).create();
    let mut b = TestApp::builder().shared_db(&db).create();
    futures_util::join!(a.start(), b.start());

    // Act
    let (key_a, key_b) = (vapid_key(&a).await, vapid_key(&b).await);
    b.restart().await;

    // Assert
    assert_eq!(key_a, key_b);
    assert_eq!(vapid_key(&b).await, key_a);
}

#[actix_web::test]
async fn a_subscription_is_201_with_its_id_and_listed_for_its_owner() {
    // Arrange
    let app = insecure().await;
    let alice = app.register("alice").await;

    // Act
    let created = alice
        .post(
            &app,
            SUBSCRIPTIONS,
            &webpush("https://push.example.net/s/1"),
        )
        .await
        .expect(201);
    let list = alice.get(&app, SUBSCRIPTIONS).await.expect(200);

    // Assert
    let doc = document(&app).await;
    fits(&doc, "post", SUBSCRIPTIONS, 201, &created);
    fits(&doc, "get", SUBSCRIPTIONS, 200, &list);
    let vapid = send(app.get("/api/v1/push/vapid"), None).await.expect(200);
    fits(&doc, "get", "/api/v1/push/vapid", 200, &vapid);
    assert!(created["id"].is_string(), "{created}");
    assert_eq!(created["kind"], "webpush");
    assert!(created["created_at"].is_string(), "{created}");
    let listed = &list["subscriptions"][0];
    assert_eq!(listed["id"], created["id"]);
    assert_eq!(listed["endpoint"], "https://push.example.net/s/1");
    assert_eq!(listed["current"], true);
    assert_eq!(list["subscriptions"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn invalid_subscriptions_are_422_with_the_field_and_the_reason() {
    // Arrange
    let app = insecure().await;
    let alice = app.register("alice").await;
    let keys = browser_keys();
    let mut off_curve = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(keys["p256dh"].as_str().unwrap())
        .unwrap();
    off_curve[64] ^= 1;
    let long = format!("https://push.example.net/{}", "a".repeat(2048));
    let cases = [
        (json!({"kind": "apns", "token": "x"}), "kind"),
        (json!({"kind": "webpush", "keys": keys}), "endpoint"),
        (
            json!({"kind": "webpush", "endpoint": "push.example.net/x", "keys": keys}),
            "endpoint",
        ),
        (
            json!({"kind": "webpush", "endpoint": long, "keys": keys}),
            "endpoint",
        ),
        (
            json!({"kind": "webpush", "endpoint": "ftp://push.example.net/x", "keys": keys}),
            "endpoint",
        ),
        (
            json!({"kind": "webpush", "endpoint": "https://push.example.net/x"}),
            "keys.p256dh",
        ),
        (
            json!({"kind": "webpush", "endpoint": "https://push.example.net/x",
                   "keys": {"p256dh": b64(&off_curve), "auth": keys["auth"]}}),
            "keys.p256dh",
        ),
        (
            json!({"kind": "webpush", "endpoint": "https://push.example.net/x",
                   "keys": {"p256dh": b64(&[4u8; 33]), "auth": keys["auth"]}}),
            "keys.p256dh",
        ),
        (
            json!({"kind": "webpush", "endpoint": "https://push.example.net/x",
                   "keys": {"p256dh": keys["p256dh"], "auth": b64(&[1u8; 8])}}),
            "keys.auth",
        ),
    ];

    for (body, field) in cases {
        // Act
        let resp = alice.post(&app, SUBSCRIPTIONS, &body).await;

        // Assert
        let err = resp.expect_error(422, "validation_failed");
        assert!(
            err["fields"][field].as_str().is_some_and(|w| !w.is_empty()),
            "{body} → {err}"
        );
    }
    let fcm = json!({"kind": "fcm", "token": "device-token"});
    alice
        .post(&app, SUBSCRIPTIONS, &fcm)
        .await
        .expect_error(422, "fcm_not_configured");
    assert!(
        subscription_ids(&app, &alice).await.is_empty(),
        "nothing stored"
    );
}

#[actix_web::test]
async fn without_allow_insecure_endpoints_on_private_networks_or_plain_http_are_refused() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;

    for endpoint in [
        "https://127.0.0.1/x",
        "https://10.0.0.1/x",
        "https://192.168.1.20:8443/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[fd00::1]/x",
        "https://[::ffff:10.0.0.1]/x",
        "https://localhost/x",
        "http://example.com/x",
    ] {
        // Act
        let resp = alice.post(&app, SUBSCRIPTIONS, &webpush(endpoint)).await;

        // Assert
        let err = resp.expect_error(422, "validation_failed");
        let why = err["fields"]["endpoint"].as_str().unwrap_or_default();
        assert!(!why.is_empty(), "{endpoint}: {err}");
    }
    let err = alice
        .post(&app, SUBSCRIPTIONS, &webpush("https://10.0.0.1/x"))
        .await
        .expect_error(422, "validation_failed");
    assert!(
        err["fields"]["endpoint"]
            .as_str()
            .unwrap()
            .contains("private"),
        "{err}"
    );
    assert!(subscription_ids(&app, &alice).await.is_empty());
}

#[actix_web::test]
async fn the_same_endpoint_again_is_the_same_subscription_and_another_user_takes_it_over() {
    // Arrange
    let app = insecure().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let endpoint = "https://push.example.net/s/shared";
    let first = alice
        .post(&app, SUBSCRIPTIONS, &webpush(endpoint))
        .await
        .expect(201);

    // Act
    let again = alice
        .post(&app, SUBSCRIPTIONS, &webpush(endpoint))
        .await
        .expect(200);
    let second_session = alice.second_session(&app).await;
    let from_second = second_session
        .post(&app, SUBSCRIPTIONS, &webpush(endpoint))
        .await
        .expect(200);
    let list_first_session = alice.get(&app, SUBSCRIPTIONS).await.expect(200);
    let taken = bob
        .post(&app, SUBSCRIPTIONS, &webpush(endpoint))
        .await
        .expect(201);

    // Assert
    assert_eq!(again["id"], first["id"]);
    assert_eq!(from_second["id"], first["id"]);
    assert_eq!(
        list_first_session["subscriptions"][0]["current"], false,
        "now tied to the second session"
    );
    assert_ne!(taken["id"], first["id"]);
    assert!(subscription_ids(&app, &alice).await.is_empty());
    assert_eq!(
        subscription_ids(&app, &bob).await,
        vec![taken["id"].as_str().unwrap().to_owned()]
    );
    let path = format!("{SUBSCRIPTIONS}/{}", taken["id"].as_str().unwrap());
    alice
        .delete(&app, &path)
        .await
        .expect_error(404, "subscription_not_found");
}

#[actix_web::test]
async fn a_subscription_is_deleted_by_its_owner_only_and_then_404() {
    // Arrange
    let app = insecure().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let one = alice
        .post(
            &app,
            SUBSCRIPTIONS,
            &webpush("https://push.example.net/s/1"),
        )
        .await
        .expect(201);
    let two = alice
        .post(
            &app,
            SUBSCRIPTIONS,
            &webpush("https://push.example.net/s/2"),
        )
        .await
        .expect(201);
    let path = format!("{SUBSCRIPTIONS}/{}", one["id"].as_str().unwrap());

    // Act
    let by_bob = bob.delete(&app, &path).await;
    let by_alice = alice.delete(&app, &path).await;
    let again = alice.delete(&app, &path).await;
    let unknown = alice
        .delete(&app, &format!("{SUBSCRIPTIONS}/{}", uuid::Uuid::new_v4()))
        .await;

    // Assert
    by_bob.expect_error(404, "subscription_not_found");
    by_alice.expect(204);
    again.expect_error(404, "subscription_not_found");
    unknown.expect_error(404, "subscription_not_found");
    assert_eq!(
        subscription_ids(&app, &alice).await,
        vec![two["id"].as_str().unwrap().to_owned()]
    );
}

#[actix_web::test]
async fn a_session_holds_at_most_10_subscriptions_and_a_user_50() {
    // Arrange
    let app = insecure().await;
    let alice = app.register("alice").await;
    let mut sessions = vec![alice.clone()];
    for _ in 0..5 {
        sessions.push(alice.second_session(&app).await);
    }
    let mut n = 0;
    let mut subscribe = |session: &TestUser| {
        n += 1;
        let body = webpush(&format!("https://push.example.net/s/{n}"));
        let (app, session) = (&app, session.clone());
        async move { session.post(app, SUBSCRIPTIONS, &body).await }
    };

    // Act + Assert: ten on the first session, then it is full; four more sessions reach 50.
    for _ in 0..10 {
        subscribe(&sessions[0]).await.expect(201);
    }
    subscribe(&sessions[0])
        .await
        .expect_error(422, "too_many_push_subscriptions");
    for session in &sessions[1..5] {
        for _ in 0..10 {
            subscribe(session).await.expect(201);
        }
    }
    subscribe(&sessions[5])
        .await
        .expect_error(422, "too_many_push_subscriptions");
    assert_eq!(subscription_ids(&app, &alice).await.len(), 50);
    // Re-subscribing a held endpoint is no new subscription.
    alice
        .post(
            &app,
            SUBSCRIPTIONS,
            &webpush("https://push.example.net/s/1"),
        )
        .await
        .expect(200);
}

#[actix_web::test]
async fn signing_out_deletes_that_sessions_subscriptions_only() {
    // Arrange
    let app = insecure().await;
    let alice = app.register("alice").await;
    let phone = alice.second_session(&app).await;
    alice
        .post(
            &app,
            SUBSCRIPTIONS,
            &webpush("https://push.example.net/laptop"),
        )
        .await
        .expect(201);
    let kept = phone
        .post(
            &app,
            SUBSCRIPTIONS,
            &webpush("https://push.example.net/phone"),
        )
        .await
        .expect(201);

    // Act
    alice
        .delete(&app, "/api/v1/sessions/current")
        .await
        .expect(204);

    // Assert
    assert_eq!(
        subscription_ids(&app, &phone).await,
        vec![kept["id"].as_str().unwrap().to_owned()]
    );
}

#[actix_web::test]
async fn a_read_only_token_may_subscribe_and_deleting_the_token_deletes_its_subscriptions() {
    // Arrange
    let app = insecure().await;
    let alice = app.register("alice").await;
    let reader = Bearer::create_token(&app, &alice, json!(["read"])).await;
    let made = reader
        .post(
            &app,
            SUBSCRIPTIONS,
            &webpush("https://push.example.net/bot"),
        )
        .await
        .expect(201);
    let listed = reader.get(&app, SUBSCRIPTIONS).await.expect(200);

    // Act
    alice.delete(&app, &reader.token_path()).await.expect(204);

    // Assert
    assert_eq!(listed["subscriptions"][0]["id"], made["id"]);
    assert!(subscription_ids(&app, &alice).await.is_empty());
}

#[actix_web::test]
async fn an_expired_tokens_subscriptions_are_pruned_with_it() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_PUSH_ALLOW_INSECURE", "true")
        .env("HUBBUB_PRUNE_INTERVAL_SECS", "1")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let body = json!({ "name": "brief", "expires_in_s": 3 });
    let token = alice.post(&app, "/api/v1/tokens", &body).await.expect(201);
    let brief = Bearer::from_token(&alice.id, &token);
    brief
        .post(
            &app,
            SUBSCRIPTIONS,
            &webpush("https://push.example.net/brief"),
        )
        .await
        .expect(201);
    assert_eq!(subscription_ids(&app, &alice).await.len(), 1);

    // Act: the token expires, and maintenance runs every second.
    let started = Instant::now();
    while !subscription_ids(&app, &alice).await.is_empty() {
        // Assert
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the expired token's subscription is still there"
        );
        actix_rt::time::sleep(Duration::from_millis(250)).await;
    }
}

#[actix_web::test]
async fn fcm_tokens_are_taken_when_fcm_is_configured_and_checked() {
    // Arrange
    let credentials = service_account();
    let app = TestApp::builder()
        .env("HUBBUB_FCM_CREDENTIALS", credentials.to_str().unwrap())
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let token = "fcm-token:APA91b_example-1";

    // Act
    let created = alice
        .post(&app, SUBSCRIPTIONS, &json!({"kind": "fcm", "token": token}))
        .await
        .expect(201);
    let again = alice
        .post(&app, SUBSCRIPTIONS, &json!({"kind": "fcm", "token": token}))
        .await
        .expect(200);
    let spaced = alice
        .post(
            &app,
            SUBSCRIPTIONS,
            &json!({"kind": "fcm", "token": "has space"}),
        )
        .await;
    let missing = alice
        .post(&app, SUBSCRIPTIONS, &json!({"kind": "fcm"}))
        .await;

    // Assert
    assert_eq!(created["kind"], "fcm");
    assert_eq!(again["id"], created["id"]);
    let list = alice.get(&app, SUBSCRIPTIONS).await.expect(200);
    assert!(list["subscriptions"][0].get("endpoint").is_none(), "{list}");
    assert!(spaced.expect_error(422, "validation_failed")["fields"]["token"].is_string());
    assert!(missing.expect_error(422, "validation_failed")["fields"]["token"].is_string());
    let _ = std::fs::remove_file(credentials);
}

#[actix_web::test]
async fn subscription_writes_are_rate_limited_like_other_writes() {
    // Arrange: one write a second, a burst of five.
    let app = TestApp::builder()
        .env("HUBBUB_PUSH_ALLOW_INSECURE", "true")
        .env("HUBBUB_RATE_WRITES_PER_SEC", "1")
        .spawn()
        .await;
    let alice = app.register("alice").await;

    // Act
    let mut statuses = Vec::new();
    for n in 0..6 {
        let body = webpush(&format!("https://push.example.net/s/{n}"));
        statuses.push(alice.post(&app, SUBSCRIPTIONS, &body).await);
    }

    // Assert
    assert!(statuses[..5].iter().all(|r| r.status == 201));
    let limited = &statuses[5];
    limited.expect_error(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
}

#[actix_web::test]
async fn two_users_subscribing_one_endpoint_at_once_leave_one_owner_and_no_error() {
    // Arrange
    let app = insecure().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;

    for round in 0..5 {
        let endpoint = format!("https://push.example.net/race/{round}");

        let (for_alice, for_bob) = (webpush(&endpoint), webpush(&endpoint));

        // Act
        let (a, b) = futures_util::join!(
            alice.post(&app, SUBSCRIPTIONS, &for_alice),
            bob.post(&app, SUBSCRIPTIONS, &for_bob),
        );

        // Assert
        for resp in [&a, &b] {
            assert!(
                resp.status == 200 || resp.status == 201,
                "{}: {}",
                resp.status,
                resp.body
            );
        }
    }
    let held =
        subscription_ids(&app, &alice).await.len() + subscription_ids(&app, &bob).await.len();
    assert_eq!(held, 5, "each endpoint has one owner");
}
