//! The upgraded connection, byte by byte: after `101` the socket leaves actix-http's
//! dispatcher for hubbub's own pump (src/server/upgrade/), and every other answer to an upgrade
//! request is written whole and the connection closed.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;

use crate::harness::{client_frame, upgrade_request, Raw, TestApp, TestUser};

/// A gauge from the server's `/metrics`.
async fn gauge(app: &TestApp, name: &str) -> u64 {
    app.metric(name).await as u64
}

async fn open_sockets(app: &TestApp) -> u64 {
    gauge(app, "hubbub_open_sockets").await
}

/// Opens the stream on `raw` with `user`'s cookie, and checks the `101`.
async fn open_stream(raw: &mut Raw, user: &TestUser) {
    raw.write(&upgrade_request(
        "/api/v1/stream",
        &[("Cookie", &user.cookie)],
    ))
    .await;
    assert_eq!(raw.head().await.status, 101);
}

/// Waits until the gauge reads 0; fails with `why` after `within`.
async fn until_zero(app: &TestApp, name: &str, within: Duration, why: &str) {
    let deadline = Instant::now() + within;
    while gauge(app, name).await != 0 {
        assert!(Instant::now() < deadline, "{why}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_ping_sent_with_the_handshake_is_answered_and_events_follow_on_the_same_socket() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut raw = Raw::connect(&app).await;
    // The ping arrives in the same write as the request: it is read along with the head.
    let mut bytes = upgrade_request(
        &format!(
            "/api/v1/stream?since={}",
            room["event_id"].as_str().unwrap()
        ),
        &[("Cookie", &alice.cookie)],
    );
    bytes.extend(client_frame(0x9, b"early"));

    // Act
    raw.write(&bytes).await;
    let head = raw.head().await;
    let hello = raw.json().await;
    let pong = raw.frame().await;
    let sent = alice.send_message(&app, room_id, "over the pump").await;
    let event = raw.json().await;
    raw.write(&client_frame(0x8, &1000u16.to_be_bytes())).await;
    let close = raw.frame().await;
    let after = raw.rest().await;

    // Assert
    assert_eq!(head.status, 101);
    assert_eq!(head.header("upgrade"), Some("websocket"));
    assert_eq!(
        head.header("sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "the RFC 6455 example key's answer"
    );
    assert_eq!(hello["type"], "hello");
    assert_eq!(pong, (0xA, b"early".to_vec()), "the early ping is answered");
    assert_eq!(event["event"], "message.created");
    assert_eq!(event["id"], sent["event_id"]);
    assert_eq!(event["data"]["body"], "over the pump");
    assert_eq!(close.0, 0x8, "a close frame answers the client's");
    assert_eq!(&close.1[..2], &1000u16.to_be_bytes());
    assert!(after.is_empty(), "then the server closes the connection");
}

#[actix_web::test]
async fn a_refused_upgrade_gets_the_error_envelope_and_the_connection_closes() {
    // Arrange
    let app = TestApp::spawn().await;
    let mut raw = Raw::connect(&app).await;

    // Act
    raw.write(&upgrade_request("/api/v1/stream", &[])).await;
    let head = raw.head().await;
    let body = raw.rest().await;

    // Assert
    assert_eq!(head.status, 401);
    assert_eq!(head.header("connection"), Some("close"));
    assert!(head.header("x-request-id").is_some());
    let envelope: Value = serde_json::from_slice(&body).expect("a JSON body");
    assert_eq!(envelope["error"]["code"], "unauthenticated");
    assert_eq!(open_sockets(&app).await, 0);
}

#[actix_web::test]
async fn an_upgrade_header_on_a_rest_request_gets_the_usual_answer() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let mut raw = Raw::connect(&app).await;

    // Act
    raw.write(&upgrade_request("/api/v1/me", &[("Cookie", &alice.cookie)]))
        .await;
    let head = raw.head().await;
    let body = raw.rest().await;

    // Assert
    assert_eq!(head.status, 200);
    let me: Value = serde_json::from_slice(&body).expect("a JSON body");
    assert_eq!(me["username"], "alice");
}

#[actix_web::test]
async fn a_chunked_body_with_an_upgrade_header_is_411_in_the_envelope_not_read_as_empty() {
    // Arrange: the upgrade path frames a body by Content-Length only.
    let app = TestApp::spawn().await;
    app.register("alice").await;
    let body = br#"{"username":"alice","password":"pw-alice-secret"}"#;
    let mut raw = Raw::connect(&app).await;
    let mut bytes = b"POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        .to_vec();
    bytes.extend(format!("{:x}\r\n", body.len()).into_bytes());
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(b"\r\n0\r\n\r\n");

    // Act
    raw.write(&bytes).await;
    let head = raw.head().await;
    let answer = raw.rest().await;

    // Assert
    assert_eq!(head.status, 411, "{}", String::from_utf8_lossy(&answer));
    let envelope: serde_json::Value = serde_json::from_slice(&answer).expect("the envelope");
    assert_eq!(envelope["error"]["code"], "length_required");
    assert!(head.header("set-cookie").is_none(), "nothing signed in");
}

#[actix_web::test]
async fn a_post_with_an_upgrade_header_gets_its_body_read_and_its_usual_answer() {
    // Arrange: actix-http hands any request with `Upgrade: websocket` to the upgrade path,
    // body included; the body is the next Content-Length bytes.
    let app = TestApp::spawn().await;
    app.register("alice").await;
    let body = br#"{"username":"alice","password":"pw-alice-secret"}"#;
    let mut raw = Raw::connect(&app).await;
    let mut bytes = format!(
        "POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    // Half the body with the head, the rest a moment later, as a slow client sends it.
    let (first, second) = body.split_at(20);
    bytes.extend_from_slice(first);

    // Act
    raw.write(&bytes).await;
    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    raw.write(second).await;
    let head = raw.head().await;
    let answer = raw.rest().await;

    // Assert
    assert_eq!(head.status, 200, "{}", String::from_utf8_lossy(&answer));
    assert!(head.header("set-cookie").is_some(), "signed in");
    assert_eq!(head.header("connection"), Some("close"));
}

#[actix_web::test]
async fn a_client_that_vanishes_without_a_close_frame_is_forgotten() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let mut raw = Raw::connect(&app).await;
    open_stream(&mut raw, &alice).await;
    assert_eq!(raw.json().await["type"], "hello");
    assert_eq!(open_sockets(&app).await, 1);

    // Act
    drop(raw);

    // Assert
    let why = "the socket is still registered";
    until_zero(&app, "hubbub_open_sockets", Duration::from_secs(10), why).await;
}

#[actix_web::test]
async fn a_client_that_stops_reading_is_disconnected_after_two_heartbeats() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_HEARTBEAT_SECS", "1")
        .env("HUBBUB_STREAM_QUEUE", "4096")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = alice.create_room(&app, "general", &[&bob]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut raw = Raw::connect_small(&app).await;
    open_stream(&mut raw, &bob).await;
    assert_eq!(gauge(&app, "hubbub_upgraded_connections").await, 1);

    // Act: bob reads nothing more while alice sends him about 10 MB, more than the kernel's
    // buffers hold (loopback lets the send buffer grow to 4 MB): the server's writes to him
    // stall, and his socket task with them.
    let body = "x".repeat(4000);
    for _ in 0..96 {
        join_all((0..25).map(|_| alice.send_message(&app, room_id, &body))).await;
    }

    // Assert: the connection is given up on (2 × the 1 s heartbeat after the stall), even
    // though the socket task is stuck in a send and can't run its own heartbeat check.
    let why = "the stalled connection is still held";
    until_zero(
        &app,
        "hubbub_upgraded_connections",
        Duration::from_secs(15),
        why,
    )
    .await;
    assert_eq!(open_sockets(&app).await, 0);
    drop(raw);
}
