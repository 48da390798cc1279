//! A user's own credentials: changing the password signs out their other sessions (sockets
//! included) and keeps tokens; the sessions list shows each device and signs one out.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{send, Bearer, TestApp, TestUser};

const NEW_PASSWORD: &str = "violet tractor umbrella 42";

async fn change(user: &TestUser, app: &TestApp, current: &str, new: &str) -> crate::harness::Resp {
    let body = json!({ "current_password": current, "new_password": new });
    user.post(app, "/api/v1/me/password", &body).await
}

#[actix_web::test]
async fn password_change_closes_other_sessions_keeps_this_one_and_tokens() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let other = alice.second_session(&app).await;
    let token = Bearer::create_token(&app, &alice, json!(["read", "send"])).await;
    let mut other_ws = other.socket(&app, None).await;
    let mut own_ws = alice.socket(&app, None).await;
    let mut token_ws = token.socket(&app, None).await;

    // Act
    let started = Instant::now();
    let resp = change(&alice, &app, &alice.password, NEW_PASSWORD).await;

    // Assert
    assert_eq!(resp.status, 204, "{}", resp.body);
    let (code, _) = other_ws.expect_close(Duration::from_secs(2)).await;
    assert_eq!(code, 4100);
    assert!(started.elapsed() < Duration::from_secs(2));
    other
        .get(&app, "/api/v1/me")
        .await
        .expect_error(401, "unauthenticated");
    own_ws.expect_silence(300).await;
    token_ws.expect_silence(100).await;
    alice.get(&app, "/api/v1/me").await.expect(200);
    token.get(&app, "/api/v1/me").await.expect(200);
    app.login("alice", &alice.password)
        .await
        .expect_error(401, "invalid_credentials");
    app.login("alice", NEW_PASSWORD).await.expect(200);
}

#[actix_web::test]
async fn wrong_current_password_is_403_and_changes_nothing() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let other = alice.second_session(&app).await;

    // Act
    let resp = change(&alice, &app, "not my password", NEW_PASSWORD).await;

    // Assert
    resp.expect_error(403, "wrong_password");
    other.get(&app, "/api/v1/me").await.expect(200);
    app.login("alice", &alice.password).await.expect(200);
    app.login("alice", NEW_PASSWORD)
        .await
        .expect_error(401, "invalid_credentials");
}

#[actix_web::test]
async fn weak_new_password_is_422_and_changes_nothing() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let other = alice.second_session(&app).await;

    // Act
    let weak = change(&alice, &app, &alice.password, "password").await;
    let short = change(&alice, &app, &alice.password, "abc").await;

    // Assert
    for resp in [weak, short] {
        assert_eq!(resp.status, 422, "{}", resp.body);
        assert!(
            resp.body.to_string().contains("new_password"),
            "{}",
            resp.body
        );
    }
    other.get(&app, "/api/v1/me").await.expect(200);
    app.login("alice", &alice.password).await.expect(200);
}

#[actix_web::test]
async fn a_token_cannot_change_the_password() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let token = Bearer::create_token(&app, &alice, json!(["read", "send"])).await;

    // Act
    let body = json!({ "current_password": alice.password, "new_password": NEW_PASSWORD });
    let resp = token.post(&app, "/api/v1/me/password", &body).await;

    // Assert
    resp.expect_error(403, "session_required");
    app.login("alice", &alice.password).await.expect(200);
}

#[actix_web::test]
async fn password_guesses_draw_from_the_sign_in_rate_limit() {
    // Arrange: 3 sign-ins, registrations or password changes per minute per client address.
    let app = TestApp::builder()
        .env("HUBBUB_RATE_LOGIN_PER_MIN", "3")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    for guess in ["guess one", "guess two"] {
        change(&alice, &app, guess, NEW_PASSWORD)
            .await
            .expect_error(403, "wrong_password");
    }

    // Act
    let limited = change(&alice, &app, &alice.password, NEW_PASSWORD).await;

    // Assert
    limited.expect_error(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    alice.get(&app, "/api/v1/me").await.expect(200);
}

/// Signs `user` in again with a `User-Agent`; returns the new session's user.
async fn sign_in_with_agent(app: &TestApp, user: &TestUser, agent: &str) -> TestUser {
    let body = json!({ "username": user.username, "password": user.password });
    let resp = send(
        app.post("/api/v1/sessions")
            .insert_header(("User-Agent", agent)),
        Some(&body),
    )
    .await;
    let cookie = resp.session_cookie().expect("login sets a session cookie");
    resp.expect(200);
    TestUser {
        cookie,
        ..user.clone()
    }
}

fn sessions(page: &Value) -> &Vec<Value> {
    page["sessions"].as_array().expect("sessions array")
}

#[actix_web::test]
async fn sessions_list_shows_each_session_with_its_agent_and_the_current_one() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let phone = sign_in_with_agent(&app, &alice, "HubbubPhone/1.0").await;
    let bob = app.register("bob").await;

    // Act
    let page = phone.get(&app, "/api/v1/sessions").await.expect(200);

    // Assert
    let list = sessions(&page);
    assert_eq!(list.len(), 2, "{page}");
    assert_eq!(list[0]["current"], true, "newest first: {page}");
    assert_eq!(list[0]["user_agent"], "HubbubPhone/1.0");
    assert_eq!(list[1]["current"], false);
    for s in list {
        assert!(
            s["created_at"].is_string() && s["last_seen_at"].is_string(),
            "{s}"
        );
    }
    let bobs = bob.get(&app, "/api/v1/sessions").await.expect(200);
    assert_eq!(sessions(&bobs).len(), 1, "only the caller's: {bobs}");
}

#[actix_web::test]
async fn deleting_another_session_closes_its_socket_and_its_cookie_gets_401() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let laptop = sign_in_with_agent(&app, &alice, "HubbubLaptop/2.0").await;
    let mut laptop_ws = laptop.socket(&app, None).await;
    let mut own_ws = alice.socket(&app, None).await;
    let page = alice.get(&app, "/api/v1/sessions").await.expect(200);
    let target = sessions(&page)
        .iter()
        .find(|s| s["current"] == false)
        .expect("the laptop's session")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act
    let resp = alice
        .delete(&app, &format!("/api/v1/sessions/{target}"))
        .await;

    // Assert
    assert_eq!(resp.status, 204, "{}", resp.body);
    let (code, _) = laptop_ws.expect_close(Duration::from_secs(2)).await;
    assert_eq!(code, 4100);
    laptop
        .get(&app, "/api/v1/me")
        .await
        .expect_error(401, "unauthenticated");
    own_ws.expect_silence(200).await;
    let page = alice.get(&app, "/api/v1/sessions").await.expect(200);
    assert_eq!(sessions(&page).len(), 1, "{page}");
}

#[actix_web::test]
async fn deleting_the_current_session_is_a_logout() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let mut ws = alice.socket(&app, None).await;
    let page = alice.get(&app, "/api/v1/sessions").await.expect(200);
    let id = sessions(&page)[0]["id"].as_str().unwrap().to_owned();

    // Act
    let resp = alice.delete(&app, &format!("/api/v1/sessions/{id}")).await;

    // Assert
    assert_eq!(resp.status, 204, "{}", resp.body);
    let (code, _) = ws.expect_close(Duration::from_secs(2)).await;
    assert_eq!(code, 4100);
    alice
        .get(&app, "/api/v1/me")
        .await
        .expect_error(401, "unauthenticated");
}

#[actix_web::test]
async fn deleting_someone_elses_session_is_404_and_it_survives() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let page = bob.get(&app, "/api/v1/sessions").await.expect(200);
    let bobs = sessions(&page)[0]["id"].as_str().unwrap().to_owned();

    // Act
    let resp = alice
        .delete(&app, &format!("/api/v1/sessions/{bobs}"))
        .await;

    // Assert
    resp.expect_error(404, "session_not_found");
    bob.get(&app, "/api/v1/me").await.expect(200);
}

#[actix_web::test]
#[ignore = "needs PostgreSQL and Redis: set HUBBUB_TEST_POSTGRES_URL and HUBBUB_TEST_REDIS_URL"]
async fn on_two_nodes_a_password_change_or_a_session_delete_closes_sockets_on_the_other() {
    // Arrange: the doorbell alone must carry it (the fallback poll is a minute).
    let slow = [("HUBBUB_POLL_INTERVAL_MS", "60000")];
    let (a, b) = crate::cluster::two_nodes(None, &slow).await;
    let alice = a.register("alice").await;
    let phone = alice.second_session(&a).await;
    let laptop = alice.second_session(&a).await;
    let mut phone_ws = phone.socket(&b, None).await;
    let mut own_ws = alice.socket(&b, None).await;

    // Act 1: sign the phone out from its id, on node a
    let page = phone.get(&a, "/api/v1/sessions").await.expect(200);
    let phone_id = sessions(&page)
        .iter()
        .find(|s| s["current"] == true)
        .expect("the phone's own session")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = Instant::now();
    alice
        .delete(&a, &format!("/api/v1/sessions/{phone_id}"))
        .await
        .expect(204);

    // Assert 1
    let (code, _) = phone_ws.expect_close(Duration::from_secs(2)).await;
    assert_eq!(code, 4100);
    assert!(started.elapsed() < Duration::from_millis(1500));

    // Act 2: the laptop, with a socket on each node, changes the password on node b
    let mut alice_ws_a = alice.socket(&a, None).await;
    let mut laptop_ws_a = laptop.socket(&a, None).await;
    let mut laptop_ws_b = laptop.socket(&b, None).await;
    let started = Instant::now();
    let resp = change(&laptop, &b, &alice.password, NEW_PASSWORD).await;

    // Assert 2: the first session's sockets close on both nodes; the laptop's stay open on both
    assert_eq!(resp.status, 204, "{}", resp.body);
    let (code, _) = own_ws.expect_close(Duration::from_secs(2)).await;
    assert_eq!(code, 4100);
    let (code, _) = alice_ws_a.expect_close(Duration::from_secs(2)).await;
    assert_eq!(code, 4100);
    assert!(started.elapsed() < Duration::from_millis(1500));
    laptop.get(&a, "/api/v1/me").await.expect(200);
    // A room the laptop makes afterwards reaches both its sockets: they were kept, not just
    // left unread (next_event fails on a close).
    let room = laptop.create_room(&a, "after the change", &[]).await;
    for ws in [&mut laptop_ws_a, &mut laptop_ws_b] {
        while ws.next_event().await["room_id"] != room["id"] {}
    }
    alice
        .get(&b, "/api/v1/me")
        .await
        .expect_error(401, "unauthenticated");
}

/// A Web Push subscription body with a browser's fresh keys.
fn webpush(endpoint: &str) -> Value {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let (keys, auth) = ece::generate_keypair_and_auth_secret().unwrap();
    let public = keys.raw_components().unwrap().public_key().to_vec();
    let keys = json!({ "p256dh": b64(&public), "auth": b64(&auth) });
    json!({ "kind": "webpush", "endpoint": endpoint, "keys": keys })
}

#[actix_web::test]
async fn a_password_change_deletes_the_other_sessions_push_subscriptions_only() {
    // Arrange: any endpoint taken (the tests' endpoints resolve nowhere)
    let app = TestApp::builder()
        .env("HUBBUB_PUSH_ALLOW_INSECURE", "true")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let phone = alice.second_session(&app).await;
    let path = "/api/v1/push/subscriptions";
    let kept = alice
        .post(&app, path, &webpush("https://push.example.net/laptop"))
        .await
        .expect(201);
    phone
        .post(&app, path, &webpush("https://push.example.net/phone"))
        .await
        .expect(201);

    // Act
    let resp = change(&alice, &app, &alice.password, NEW_PASSWORD).await;

    // Assert
    assert_eq!(resp.status, 204, "{}", resp.body);
    let list = alice.get(&app, path).await.expect(200);
    let ids: Vec<&Value> = list["subscriptions"]
        .as_array()
        .expect("subscriptions")
        .iter()
        .map(|s| &s["id"])
        .collect();
    assert_eq!(ids, vec![&kept["id"]], "{list}");
}
