//! Typing (#19): `POST /api/v1/rooms/{id}/typing` appends a short-lived `typing.updated` to the
//! room's members, throttled per user and room; replay skips it once expired, maintenance
//! prunes it. Runs on PostgreSQL when HUBBUB_TEST_POSTGRES_URL is set.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{Bearer, Resp, Socket, TestApp, TestUser};

async fn typing(app: &TestApp, user: &TestUser, room: &str, on: bool) -> Resp {
    let path = format!("/api/v1/rooms/{room}/typing");
    user.post(app, &path, &json!({ "typing": on })).await
}

/// `GET /api/v1/events?since=&timeout=` with the user's cookie: (frames, cursor).
async fn poll(app: &TestApp, user: &TestUser, since: &str, timeout: u64) -> (Vec<Value>, String) {
    let page = user
        .get(
            app,
            &format!("/api/v1/events?since={since}&timeout={timeout}"),
        )
        .await
        .expect(200);
    let frames = page["events"].as_array().expect("events").clone();
    (frames, page["cursor"].as_str().expect("cursor").to_owned())
}

fn cursor(socket: &Socket) -> String {
    socket.hello["cursor"]
        .as_str()
        .expect("hello cursor")
        .to_owned()
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| panic!("a time: {v}"))
}

/// Asserts `frame` is `typing.updated` for `user` in `room` with `typing: on`.
fn assert_typing(frame: &Value, room: &str, user: &TestUser, on: bool) {
    assert_eq!(frame["event"], "typing.updated", "{frame}");
    assert_eq!(frame["room_id"], room);
    assert_eq!(frame["data"]["room_id"], room);
    assert_eq!(frame["data"]["user_id"], user.id.as_str());
    assert_eq!(frame["data"]["typing"], on);
}

#[actix_web::test]
async fn typing_reaches_the_members_sockets_and_long_polls_and_nobody_else() {
    // Arrange: alice's room with bob and carol; carol is removed; dave was never in it.
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let room = alice.create_room(&app, "den", &[&bob, &carol]).await;
    let room = room["id"].as_str().unwrap().to_owned();
    alice
        .delete(&app, &format!("/api/v1/rooms/{room}/members/{}", carol.id))
        .await
        .expect(204);
    let mut bob_socket = bob.socket(&app, None).await;
    let mut carol_socket = carol.socket(&app, None).await;
    let mut dave_socket = dave.socket(&app, None).await;
    let since = cursor(&bob_socket);

    // Act
    typing(&app, &alice, &room, true).await.expect(204);

    // Assert: bob hears it live and by long poll, with expires_at about 8 s ahead.
    let frame = bob_socket.next_event().await;
    assert_typing(&frame, &room, &alice, true);
    let ahead = time(&frame["data"]["expires_at"]) - time(&frame["created_at"]);
    assert!(
        (7_500..=8_500).contains(&ahead.num_milliseconds()),
        "expires_at is ~8 s after the event: {ahead}"
    );
    let (polled, _) = poll(&app, &bob, &since, 5).await;
    assert_eq!(polled.len(), 1, "{polled:?}");
    assert_eq!(polled[0], frame, "the long poll gets the same frame");

    // A message from alice ends her typing without another event, and her next keystroke is
    // announced at once (no throttle after a send).
    alice.send_message(&app, &room, "hello").await;
    let next = bob_socket.next_event().await;
    assert_eq!(next["event"], "message.created");
    typing(&app, &alice, &room, true).await.expect(204);
    assert_typing(&bob_socket.next_event().await, &room, &alice, true);

    // Nobody outside the room heard any of it.
    carol_socket.expect_silence(300).await;
    dave_socket.expect_silence(100).await;
    let (carols, _) = poll(&app, &carol, &cursor(&carol_socket), 0).await;
    assert!(carols.is_empty(), "a removed member's replay: {carols:?}");
}

#[actix_web::test]
async fn rapid_repeats_append_one_event_and_false_follows_at_once() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = alice.create_room(&app, "den", &[&bob]).await;
    let room = room["id"].as_str().unwrap().to_owned();
    let mut bob_socket = bob.socket(&app, None).await;

    // Act: ten keystrokes' worth of `true` within the throttle window, then two `false`.
    for _ in 0..10 {
        typing(&app, &alice, &room, true).await.expect(204);
    }
    typing(&app, &alice, &room, false).await.expect(204);
    typing(&app, &alice, &room, false).await.expect(204);
    alice.send_message(&app, &room, "done").await;

    // Assert: one true, one false, then the message: nothing else in between.
    let frames = bob_socket.events(3).await;
    assert_typing(&frames[0], &room, &alice, true);
    assert_typing(&frames[1], &room, &alice, false);
    assert_eq!(frames[2]["event"], "message.created");
    bob_socket.expect_silence(300).await;
}

#[actix_web::test]
async fn a_resume_replays_typing_before_it_expires_and_skips_it_after() {
    // Arrange: typing lasts 2 s here.
    let app = TestApp::builder()
        .env("HUBBUB_TYPING_TTL_SECS", "2")
        .env("HUBBUB_TYPING_THROTTLE_MS", "500")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = alice.create_room(&app, "den", &[&bob]).await;
    let room = room["id"].as_str().unwrap().to_owned();
    let since = cursor(&bob.socket(&app, None).await);
    typing(&app, &alice, &room, true).await.expect(204);
    let message = alice.send_message(&app, &room, "hello").await;
    let message_event = message["event_id"].as_str().unwrap().to_owned();

    // Act, Assert: before expiry, both the socket's replay and the long poll carry it.
    let mut early = bob.socket(&app, Some(&since)).await;
    let frames = early.events(2).await;
    assert_typing(&frames[0], &room, &alice, true);
    assert_eq!(frames[1]["id"], message_event.as_str());
    let (polled, _) = poll(&app, &bob, &since, 0).await;
    assert_eq!(polled.len(), 2, "{polled:?}");
    assert_typing(&polled[0], &room, &alice, true);

    // Typing again after the message: the last event of the log is a short-lived one.
    typing(&app, &alice, &room, true).await.expect(204);
    let last_typing = early.next_event().await;
    assert_typing(&last_typing, &room, &alice, true);
    tokio::time::sleep(Duration::from_millis(2_300)).await;

    // After expiry: the replay has only the message, and the cursor still moves past the
    // typing events.
    let mut late = bob.socket(&app, Some(&since)).await;
    let frame = late.next_event().await;
    assert_eq!(
        frame["id"],
        message_event.as_str(),
        "the typing was skipped"
    );
    late.expect_silence(300).await;
    let (polled, next) = poll(&app, &bob, &since, 0).await;
    assert_eq!(polled.len(), 1, "{polled:?}");
    assert_eq!(polled[0]["id"], message_event.as_str());
    assert_eq!(
        next,
        last_typing["id"].as_str().unwrap(),
        "the cursor passes them"
    );
    let (nothing, same) = poll(&app, &bob, &message_event, 0).await;
    assert!(nothing.is_empty(), "{nothing:?}");
    assert_eq!(same, last_typing["id"].as_str().unwrap());
    // A socket resuming from just before the last typing event says hello and stays quiet.
    let mut quiet = bob.socket(&app, Some(&message_event)).await;
    quiet.expect_silence(300).await;
}

#[actix_web::test]
async fn maintenance_prunes_expired_typing_events_and_keeps_the_rest() {
    // Arrange: typing lasts 1 s, and expired events are pruned every second.
    let app = TestApp::builder()
        .env("HUBBUB_TYPING_TTL_SECS", "1")
        .env("HUBBUB_TYPING_THROTTLE_MS", "500")
        .env("HUBBUB_SHORT_LIVED_PRUNE_SECS", "1")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = alice.create_room(&app, "den", &[&bob]).await;
    let room = room["id"].as_str().unwrap().to_owned();
    let since = cursor(&bob.socket(&app, None).await);

    // Act
    typing(&app, &alice, &room, true).await.expect(204);
    alice.send_message(&app, &room, "hello").await;
    typing(&app, &alice, &room, true).await.expect(204);
    assert_eq!(app.count_events("typing.updated"), 2);

    // Assert: gone within a few seconds, the message stays, and resuming still works.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.count_events("typing.updated") > 0 {
        assert!(std::time::Instant::now() < deadline, "still not pruned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.count_events("message.created"), 1);
    let mut resumed = bob.socket(&app, Some(&since)).await;
    assert_eq!(resumed.next_event().await["event"], "message.created");
    resumed.expect_silence(200).await;
}

#[actix_web::test]
async fn typing_is_refused_like_a_send_outside_the_room_or_across_a_block() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = alice.create_room(&app, "den", &[&carol]).await;
    let room = room["id"].as_str().unwrap().to_owned();
    let dm = alice
        .post(&app, "/api/v1/dms", &json!({ "user_id": bob.id }))
        .await
        .expect(201);
    let dm = dm["id"].as_str().unwrap().to_owned();
    let mut alice_socket = alice.socket(&app, None).await;

    // Act, Assert: not a member, no such room.
    typing(&app, &bob, &room, true)
        .await
        .expect_error(404, "room_not_found");
    typing(&app, &bob, &room, false)
        .await
        .expect_error(404, "room_not_found");
    let unknown = format!("/api/v1/rooms/{}/typing", uuid::Uuid::new_v4());
    bob.post(&app, &unknown, &json!({ "typing": true }))
        .await
        .expect_error(404, "room_not_found");

    // A member who typed and was removed: a repeat inside the throttle window is still a 404.
    typing(&app, &carol, &room, true).await.expect(204);
    alice
        .delete(&app, &format!("/api/v1/rooms/{room}/members/{}", carol.id))
        .await
        .expect(204);
    typing(&app, &carol, &room, true)
        .await
        .expect_error(404, "room_not_found");

    // Bad bodies.
    let path = format!("/api/v1/rooms/{room}/typing");
    for body in [
        json!({}),
        json!({ "typing": "yes" }),
        json!({ "typing": null }),
        json!([true]),
        json!({ "typing": true, "extra": 1 }),
    ] {
        alice
            .post(&app, &path, &body)
            .await
            .expect_error(400, "invalid_body");
    }

    // A block either way refuses typing in the DM, like a send.
    alice
        .put(&app, &format!("/api/v1/blocks/{}", bob.id))
        .await
        .expect(204);
    typing(&app, &alice, &dm, true)
        .await
        .expect_error(403, "blocked");
    typing(&app, &bob, &dm, true)
        .await
        .expect_error(403, "blocked");

    // A token without the `send` scope may not type.
    let reader = Bearer::create_token(&app, &alice, json!(["read"])).await;
    reader
        .post(&app, &path, &json!({ "typing": true }))
        .await
        .expect_error(403, "insufficient_scope");

    // None of it appended anything alice can see but carol's typing and her removal.
    let frames = alice_socket.events(2).await;
    assert_typing(&frames[0], &room, &carol, true);
    assert_eq!(frames[1]["event"], "member.left");
    alice_socket.expect_silence(300).await;
}

#[actix_web::test]
async fn typing_draws_from_a_bucket_of_its_own_and_leaves_the_send_budget() {
    // Arrange: one write and one typing call per second, each bursting to five.
    let app = TestApp::builder()
        .env("HUBBUB_RATE_WRITES_PER_SEC", "1")
        .env("HUBBUB_RATE_TYPING_PER_SEC", "1")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = alice.create_room(&app, "den", &[&bob]).await;
    let room = room["id"].as_str().unwrap().to_owned();

    // Act: six typing calls at once.
    let mut answers = Vec::new();
    for _ in 0..6 {
        answers.push(typing(&app, &alice, &room, true).await);
    }

    // Assert: five pass, the sixth is 429 with Retry-After; a send still goes through.
    for answer in &answers[..5] {
        assert_eq!(answer.status, 204);
        assert_eq!(answer.header("x-ratelimit-limit").as_deref(), Some("5"));
    }
    answers[5].expect_error(429, "rate_limited");
    assert!(answers[5].header("retry-after").is_some());
    let path = format!("/api/v1/rooms/{room}/messages");
    let sent = alice
        .post(&app, &path, &json!({ "body": "still here" }))
        .await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    assert_eq!(sent.header("x-ratelimit-remaining").as_deref(), Some("3"));
}
