//! Bad input and cross-site requests: every 4xx carries the error envelope with a matching `X-Request-Id`, and writes nothing.

use serde_json::json;

use crate::harness::{send, send_raw, Resp, TestApp, TestUser};

async fn setup(app: &TestApp) -> (TestUser, String) {
    let alice = app.register("alice").await;
    let room = alice.create_room(app, "general", &[]).await;
    (alice, room["id"].as_str().unwrap().to_owned())
}

async fn assert_nothing_written(app: &TestApp, alice: &TestUser, room_id: &str) {
    let history = alice.history(app, room_id, "").await;
    assert_eq!(history["messages"], json!([]), "no message was written");
    let rooms = alice.get(app, "/api/v1/rooms").await.expect(200);
    assert_eq!(
        rooms["rooms"].as_array().unwrap().len(),
        1,
        "no room was written"
    );
}

#[actix_web::test]
async fn malformed_json_is_400_with_a_matching_request_id() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, room_id) = setup(&app).await;
    let req = alice
        .req(app.post(&format!("/api/v1/rooms/{room_id}/messages")))
        .insert_header(("Content-Type", "application/json"));

    // Act
    let resp = send_raw(req, b"{\"body\": \"unterminated".to_vec()).await;

    // Assert
    resp.expect_error(400, "malformed_json");
    assert_nothing_written(&app, &alice, &room_id).await;
}

#[actix_web::test]
async fn missing_fields_and_wrong_types_are_400_invalid_body() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, room_id) = setup(&app).await;
    let msg_path = format!("/api/v1/rooms/{room_id}/messages");

    // Act
    let no_body = alice.post(&app, &msg_path, &json!({ "text": "hi" })).await;
    let wrong_type = alice.post(&app, &msg_path, &json!({ "body": 42 })).await;
    let not_object = alice.post(&app, &msg_path, &json!(["body"])).await;
    let no_name = alice
        .post(&app, "/api/v1/rooms", &json!({ "member_ids": [] }))
        .await;
    let bad_user = send(
        app.post("/api/v1/users"),
        Some(&json!({ "username": "bob" })),
    )
    .await;

    // Assert
    for resp in [&no_body, &wrong_type, &not_object, &no_name, &bad_user] {
        resp.expect_error(400, "invalid_body");
    }
    assert_nothing_written(&app, &alice, &room_id).await;
    app.register("bob").await;
}

#[actix_web::test]
async fn a_json_array_is_not_taken_for_an_object_and_errors_name_fields_not_rust_types() {
    // Arrange: serde reads `["array room"]` into a one-field struct, element by element.
    let app = TestApp::spawn().await;
    let (alice, room_id) = setup(&app).await;
    let before = alice.get(&app, "/api/v1/me").await.expect(200);

    // Act
    let profile = alice.patch(&app, "/api/v1/me", &json!([null, null])).await;
    let room = alice
        .post(&app, "/api/v1/rooms", &json!(["array room"]))
        .await;
    let wrong_type = alice
        .post(
            &app,
            &format!("/api/v1/rooms/{room_id}/messages"),
            &json!({ "body": 42 }),
        )
        .await;

    // Assert
    profile.expect_error(400, "invalid_body");
    room.expect_error(400, "invalid_body");
    let err = wrong_type.expect_error(400, "invalid_body");
    assert!(err["fields"]["body"].is_string(), "{err}");
    for resp in [&profile, &room, &wrong_type] {
        let text = resp.body.to_string();
        assert!(
            !text.contains("struct") && !text.contains("Body"),
            "a Rust type leaked: {text}"
        );
    }
    assert_nothing_written(&app, &alice, &room_id).await;
    assert_eq!(alice.get(&app, "/api/v1/me").await.expect(200), before);
}

#[actix_web::test]
async fn a_non_uuid_path_id_is_400_invalid_path() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, room_id) = setup(&app).await;

    // Act
    let get_room = alice.get(&app, "/api/v1/rooms/not-a-uuid").await;
    let post_msg = alice
        .post(&app, "/api/v1/rooms/123/messages", &json!({ "body": "hi" }))
        .await;
    let get_user = alice.get(&app, "/api/v1/users/xyz").await;

    // Assert
    get_room.expect_error(400, "invalid_path");
    post_msg.expect_error(400, "invalid_path");
    get_user.expect_error(400, "invalid_path");
    assert_nothing_written(&app, &alice, &room_id).await;
}

#[actix_web::test]
async fn a_body_over_64_kib_is_413() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, room_id) = setup(&app).await;
    let huge = json!({ "body": "x".repeat(70 * 1024) });

    // Act
    let resp = alice
        .post(&app, &format!("/api/v1/rooms/{room_id}/messages"), &huge)
        .await;
    let room = alice
        .post(
            &app,
            "/api/v1/rooms",
            &json!({ "name": "y".repeat(70 * 1024), "member_ids": [] }),
        )
        .await;

    // Assert
    resp.expect_error(413, "payload_too_large");
    room.expect_error(413, "payload_too_large");
    assert_nothing_written(&app, &alice, &room_id).await;
}

#[actix_web::test]
async fn a_body_without_json_content_type_is_415() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, room_id) = setup(&app).await;
    let path = format!("/api/v1/rooms/{room_id}/messages");
    let body = br#"{"body":"hi"}"#.to_vec();

    // Act
    let missing = send_raw(alice.req(app.post(&path)), body.clone()).await;
    let text = send_raw(
        alice
            .req(app.post(&path))
            .insert_header(("Content-Type", "text/plain")),
        body,
    )
    .await;

    // Assert
    missing.expect_error(415, "unsupported_media_type");
    text.expect_error(415, "unsupported_media_type");
    assert_nothing_written(&app, &alice, &room_id).await;
}

#[actix_web::test]
async fn unknown_routes_and_methods_use_the_envelope() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;

    // Act
    let unknown = alice.get(&app, "/api/v1/nope").await;
    let unknown_post = alice.post(&app, "/api/v2/rooms", &json!({})).await;
    let wrong_method = send(
        alice.req(app.client.put(app.url("/api/v1/rooms"))),
        Some(&json!({})),
    )
    .await;

    // Assert
    unknown.expect_error(404, "not_found");
    unknown_post.expect_error(404, "not_found");
    wrong_method.expect_error(405, "method_not_allowed");
    let rooms = alice.get(&app, "/api/v1/rooms").await.expect(200);
    assert_eq!(rooms["rooms"], json!([]));
}

#[actix_web::test]
async fn health_endpoints_answer_and_every_response_has_a_request_id() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let health = send(app.get("/healthz"), None).await;
    let ready = send(app.get("/readyz"), None).await;

    // Assert
    assert_eq!(health.status, 200);
    assert_eq!(ready.status, 200);
    let (a, b) = (health.header("x-request-id"), ready.header("x-request-id"));
    assert!(
        a.as_deref().is_some_and(|id| !id.is_empty()),
        "X-Request-Id on /healthz"
    );
    assert!(b.is_some() && a != b, "a fresh X-Request-Id per response");
}

#[actix_web::test]
async fn only_allowed_origins_may_open_sockets_or_write_with_a_cookie() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_ALLOWED_ORIGINS", "https://app.example")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let path = format!("/api/v1/rooms/{}/messages", room["id"].as_str().unwrap());
    let own = app.origin();
    let cookie = ("Cookie", alice.cookie.as_str());
    let body = json!({ "body": "csrf?" });

    // Act
    let own_ws = app
        .try_socket(None, &[cookie, ("Origin", own.as_str())])
        .await;
    let app_ws = app
        .try_socket(None, &[cookie, ("Origin", "https://app.example")])
        .await;
    let evil_post = alice
        .post_with(&app, &path, &body, &[("Origin", "http://evil.example")])
        .await;
    let fetch_site = alice
        .post_with(&app, &path, &body, &[("Sec-Fetch-Site", "cross-site")])
        .await;
    let evil_room = alice
        .post_with(
            &app,
            "/api/v1/rooms",
            &json!({ "name": "x", "member_ids": [] }),
            &[("Origin", "null")],
        )
        .await;
    let evil_logout = send_delete_with_origin(&app, &alice, "http://evil.example").await;
    let own_post = alice
        .post_with(&app, &path, &body, &[("Origin", own.as_str())])
        .await;
    let app_post = alice
        .post_with(&app, &path, &body, &[("Origin", "https://app.example")])
        .await;

    // Assert
    assert!(own_ws.is_ok(), "the server's own origin may connect");
    assert!(app_ws.is_ok(), "HUBBUB_ALLOWED_ORIGINS may connect");
    evil_post.expect_error(403, "origin_not_allowed");
    fetch_site.expect_error(403, "origin_not_allowed");
    evil_room.expect_error(403, "origin_not_allowed");
    evil_logout.expect_error(403, "origin_not_allowed");
    own_post.expect(201);
    app_post.expect(201);
    let history = alice.history(&app, room["id"].as_str().unwrap(), "").await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        2,
        "refused writes wrote nothing"
    );
    let rooms = alice.get(&app, "/api/v1/rooms").await.expect(200);
    assert_eq!(rooms["rooms"].as_array().unwrap().len(), 1);
}

async fn send_delete_with_origin(app: &TestApp, user: &TestUser, origin: &str) -> Resp {
    let req = user.req(app.client.delete(app.url("/api/v1/sessions/current")));
    send(req.insert_header(("Origin", origin)), None).await
}

#[actix_web::test]
async fn writes_over_the_rate_limit_are_429_with_retry_after_and_write_nothing() {
    // Arrange: 1 write/s per credential, bursting to 5.
    let app = TestApp::builder()
        .env("HUBBUB_RATE_WRITES_PER_SEC", "1")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let path = format!("/api/v1/rooms/{}/messages", room["id"].as_str().unwrap());

    // Act
    let mut responses = Vec::new();
    for i in 0..8 {
        responses.push(
            alice
                .post(&app, &path, &json!({ "body": format!("m{i}") }))
                .await,
        );
    }

    // Assert
    let accepted = responses.iter().filter(|r| r.status == 201).count();
    let limited: Vec<&Resp> = responses.iter().filter(|r| r.status == 429).collect();
    assert_eq!(accepted + limited.len(), 8, "only 201 or 429");
    assert!(
        !limited.is_empty(),
        "8 quick writes at 1/s (burst 5) must hit the limit"
    );
    for resp in &limited {
        resp.expect_error(429, "rate_limited");
        let retry: u64 = resp
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!(retry >= 1);
        assert!(resp.header("x-ratelimit-limit").is_some());
        assert_eq!(resp.header("x-ratelimit-remaining").as_deref(), Some("0"));
    }
    let history = alice.history(&app, room["id"].as_str().unwrap(), "").await;
    assert_eq!(history["messages"].as_array().unwrap().len(), accepted);

    // Recovery: after waiting as told, a write goes through again.
    let wait: u64 = limited[limited.len() - 1]
        .header("retry-after")
        .unwrap()
        .parse()
        .unwrap();
    actix_web::rt::time::sleep(std::time::Duration::from_secs(wait)).await;
    alice
        .post(&app, &path, &json!({ "body": "after the wait" }))
        .await
        .expect(201);
}

#[actix_web::test]
async fn sign_ins_over_the_rate_limit_are_429() {
    // Arrange: 3 sign-ins or registrations per minute per client address.
    let app = TestApp::builder()
        .env("HUBBUB_RATE_LOGIN_PER_MIN", "3")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    app.login("alice", &alice.password).await.expect(200);
    app.login("alice", "wrong password")
        .await
        .expect_error(401, "invalid_credentials");

    // Act
    let limited = app.login("alice", &alice.password).await;

    // Assert
    limited.expect_error(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    assert!(limited.session_cookie().is_none());
}

#[actix_web::test]
async fn nul_controls_and_invisible_characters_are_refused_naming_the_field_on_both_backends() {
    // Arrange: on PostgreSQL a NUL in text was a 500; on SQLite it was stored.
    let app = TestApp::spawn().await;
    let (alice, room_id) = setup(&app).await;
    let msg_path = format!("/api/v1/rooms/{room_id}/messages");

    // Act + Assert
    for (resp, status, code, field) in [
        (
            alice
                .post(
                    &app,
                    "/api/v1/tokens",
                    &json!({ "name": "t\u{0}x", "scopes": ["read"] }),
                )
                .await,
            422,
            "validation_failed",
            "name",
        ),
        (
            alice
                .post(
                    &app,
                    "/api/v1/tokens",
                    &json!({ "name": "t\u{1b}x", "scopes": ["read"] }),
                )
                .await,
            422,
            "validation_failed",
            "name",
        ),
        (
            alice.get(&app, "/api/v1/users?prefix=a%00").await,
            400,
            "invalid_query",
            "prefix",
        ),
        (
            alice.get(&app, "/api/v1/users?prefix=a&after=b%00").await,
            400,
            "invalid_query",
            "after",
        ),
        (
            alice
                .patch(
                    &app,
                    "/api/v1/me",
                    &json!({ "display_name": "evil\u{202E}gpj.exe" }),
                )
                .await,
            422,
            "validation_failed",
            "display_name",
        ),
        (
            alice
                .patch(
                    &app,
                    "/api/v1/me",
                    &json!({ "display_name": "ad\u{200B}min" }),
                )
                .await,
            422,
            "validation_failed",
            "display_name",
        ),
        (
            alice
                .post(
                    &app,
                    "/api/v1/rooms",
                    &json!({ "name": "\u{FEFF}general", "member_ids": [] }),
                )
                .await,
            422,
            "validation_failed",
            "name",
        ),
        (
            alice
                .post(&app, &msg_path, &json!({ "body": "red\u{1b}[31m" }))
                .await,
            422,
            "validation_failed",
            "body",
        ),
        (
            send(
                app.post("/api/v1/users"),
                Some(&json!({ "username": "mallory", "password": "pass\u{0}word-long" })),
            )
            .await,
            422,
            "validation_failed",
            "password",
        ),
    ] {
        let err = resp.expect_error(status, code);
        assert!(err["fields"][field].is_string(), "{err}");
    }
    assert_nothing_written(&app, &alice, &room_id).await;
    let tokens = alice.get(&app, "/api/v1/tokens").await.expect(200);
    assert_eq!(tokens["tokens"], json!([]), "no token was written");
    let me = alice.get(&app, "/api/v1/me").await.expect(200);
    assert_eq!(me["display_name"], "alice");
    app.login("mallory", "pass\u{0}word-long")
        .await
        .expect_error(401, "invalid_credentials");
}
