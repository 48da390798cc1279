//! Bots and the public API: tokens and scopes, revocation, stream tickets, the long poll, CORS.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{ids, send, Bearer, TestApp};

#[actix_web::test]
async fn a_bot_with_only_its_token_sends_and_receives_by_socket_and_by_long_poll() {
    // Arrange: a person creates a bot and adds it to a room.
    let app = TestApp::spawn().await;
    let owner = app.register("owner").await;
    let bot_body = json!({ "username": "echobot" });
    let created = owner
        .post(&app, "/api/v1/bots", &bot_body)
        .await
        .expect(201);
    assert_eq!(created["bot"]["kind"], "bot", "{created}");
    assert_eq!(created["token"]["scopes"], json!(["read", "send"]));
    let bot_id = created["bot"]["id"].as_str().unwrap();
    let bot = Bearer::from_token(bot_id, &created["token"]);
    let room = owner.create_room(&app, "lab", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let members = format!("/api/v1/rooms/{room_id}/members");
    let add = json!({ "user_id": bot_id });
    owner.post(&app, &members, &add).await.expect(201);
    let me = bot.get(&app, "/api/v1/me").await.expect(200);
    assert_eq!(me["id"], bot.user_id.as_str());
    let mut bot_ws = bot.socket(&app, None).await;
    let mut owner_ws = owner.socket(&app, None).await;
    let since = bot_ws.hello["cursor"].as_str().unwrap().to_owned();

    // Act
    let from_person = owner.send_message(&app, room_id, "hi bot").await;
    let from_bot = bot.send_message(&app, room_id, "hi person").await;

    // Assert: both messages reach the bot's socket and its long poll, as the same frames.
    let on_socket = bot_ws.events(2).await;
    assert_eq!(on_socket[0]["id"], from_person["event_id"]);
    assert_eq!(on_socket[0]["data"], from_person["message"]);
    assert_eq!(on_socket[1]["id"], from_bot["event_id"]);
    assert_eq!(from_bot["message"]["author_id"], bot_id);
    let (polled, _) = bot.poll_events(&app, &since, 2).await;
    assert_eq!(polled, on_socket, "the poll carries the socket's frames");
    assert_eq!(owner_ws.events(2).await, on_socket);
    bot_ws.expect_silence(300).await;
    let login = app.login("echobot", "!").await;
    login.expect_error(401, "invalid_credentials");
}

#[actix_web::test]
async fn a_bot_cannot_create_bots() {
    // Arrange
    let app = TestApp::spawn().await;
    let owner = app.register("owner").await;
    let (_, bot) = Bearer::create_bot(&app, &owner, "helper").await;

    // Act
    let resp = bot
        .post(&app, "/api/v1/bots", &json!({ "username": "minion" }))
        .await;

    // Assert
    resp.expect_error(403, "forbidden");
}

#[actix_web::test]
async fn a_read_only_token_reads_and_streams_but_every_write_is_403() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let reader = Bearer::create_token(&app, &alice, json!(["read"])).await;
    let writer = Bearer::create_token(&app, &alice, json!(["send"])).await;
    let messages = format!("/api/v1/rooms/{room_id}/messages");

    // Act
    let send_msg = reader.post(&app, &messages, &json!({ "body": "x" })).await;
    let patch_me = send(
        reader.req(app.client.patch(app.url("/api/v1/me"))),
        Some(&json!({ "display_name": "Mallory" })),
    )
    .await;
    let delete = reader.delete(&app, &reader.token_path()).await;
    let wider = json!({ "name": "more", "scopes": ["read", "send"] });
    let widen = writer.post(&app, "/api/v1/tokens", &wider).await;

    // Assert
    send_msg.expect_error(403, "insufficient_scope");
    patch_me.expect_error(403, "insufficient_scope");
    delete.expect_error(403, "insufficient_scope");
    widen.expect_error(403, "insufficient_scope");
    reader.get(&app, "/api/v1/me").await.expect(200);
    reader.get(&app, &messages).await.expect(200);
    writer
        .get(&app, "/api/v1/me")
        .await
        .expect_error(403, "insufficient_scope");
    let sent = writer
        .send_message(&app, room_id, "by the send token")
        .await;
    let mut ws = reader.socket(&app, room["event_id"].as_str()).await;
    assert_eq!(ws.next_event().await["id"], sent["event_id"]);
    let ticket = reader.ticket(&app).await;
    assert!(app.ticket_socket(&ticket).await.is_ok());
    let history = alice.history(&app, room_id, "limit=10").await;
    assert_eq!(ids(&history), [sent["message"]["id"].as_str().unwrap()]);
}

#[actix_web::test]
async fn tokens_are_listed_without_secrets_and_bad_ones_get_401_invalid_token() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let body = json!({ "name": "ci", "scopes": ["read"], "expires_in_s": 1 });
    let short = alice.post(&app, "/api/v1/tokens", &body).await.expect(201);
    let long = Bearer::create_token(&app, &alice, json!(["read", "send"])).await;
    let secret = short["token_secret"].as_str().unwrap();

    // Act
    let list = alice.get(&app, "/api/v1/tokens").await.expect(200);
    let bobs_delete = bob.delete(&app, &long.token_path()).await;
    actix_rt::time::sleep(Duration::from_millis(1500)).await;
    let expired = send(app.get("/api/v1/me").bearer_auth(secret), None).await;
    let unknown = send(app.get("/api/v1/me").bearer_auth("hb_0000"), None).await;
    let basic = ("Authorization", "Basic eA==");
    let malformed = send(app.get("/api/v1/me").insert_header(basic), None).await;
    // The documentation's placeholder pasted as it stands (a non-ASCII header value).
    let pasted = ("Authorization", "Bearer hb_\u{2026}");
    let placeholder = send(app.get("/api/v1/me").insert_header(pasted), None).await;

    // Assert
    let tokens = list["tokens"].as_array().expect("tokens array");
    assert_eq!(tokens.len(), 2, "{list}");
    let text = list.to_string();
    assert!(
        !text.contains("token_secret") && !text.contains(secret) && !text.contains(&long.secret)
    );
    let listed = tokens
        .iter()
        .find(|t| t["id"] == short["id"])
        .expect("listed");
    assert_eq!(listed["name"], "ci");
    assert_eq!(listed["scopes"], json!(["read"]));
    assert!(
        listed["created_at"].is_string() && listed["expires_at"].is_string(),
        "{listed}"
    );
    bobs_delete.expect_error(404, "token_not_found");
    expired.expect_error(401, "invalid_token");
    unknown.expect_error(401, "invalid_token");
    malformed.expect_error(401, "invalid_token");
    let err = placeholder.expect_error(401, "invalid_token");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or("")
            .contains("token_secret"),
        "the answer says what to send: {err}"
    );
    long.get(&app, "/api/v1/me").await.expect(200);
}

#[actix_web::test]
async fn deleting_a_token_closes_its_sockets_with_4100_and_the_token_then_gets_401() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let token = Bearer::create_token(&app, &alice, json!(["read", "send"])).await;
    let mut bearer_ws = token.socket(&app, None).await;
    let ticket = token.ticket(&app).await;
    let mut ticket_ws = app.ticket_socket(&ticket).await.expect("ticket socket");
    let mut cookie_ws = alice.socket(&app, None).await;

    // Act
    let started = Instant::now();
    let deleted = alice.delete(&app, &token.token_path()).await;

    // Assert
    deleted.expect(204);
    let (code, _) = bearer_ws.expect_close(Duration::from_secs(2)).await;
    assert_eq!(code, 4100);
    let (code, _) = ticket_ws.expect_close(Duration::from_secs(2)).await;
    assert_eq!(code, 4100, "a ticket socket is bound to its token");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    let me = token.get(&app, "/api/v1/me").await;
    me.expect_error(401, "invalid_token");
    let auth = token.authorization();
    let auth = [("Authorization", auth.as_str())];
    assert_eq!(app.try_socket(None, &auth).await.err(), Some(401));
    cookie_ws.expect_silence(300).await;
}

#[actix_web::test]
async fn an_expired_token_socket_closes_with_4101() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_HEARTBEAT_SECS", "1")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let body = json!({ "name": "brief", "expires_in_s": 2 });
    let token = alice.post(&app, "/api/v1/tokens", &body).await.expect(201);

    // Act
    let mut ws = Bearer::from_token(&alice.id, &token)
        .socket(&app, None)
        .await;

    // Assert
    let (code, _) = ws.expect_close(Duration::from_secs(5)).await;
    assert_eq!(code, 4101);
}

#[actix_web::test]
async fn a_ticket_opens_one_socket_as_its_credential_and_is_refused_the_second_time() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let issued = send(alice.req(app.post("/api/v1/stream/tickets")), None)
        .await
        .expect(201);
    let ticket = issued["ticket"].as_str().unwrap();
    assert!(issued["expires_at"].is_string(), "{issued}");

    // Act
    let first = app.ticket_socket(ticket).await;
    let again = app.ticket_socket(ticket).await;
    let again_http = send(app.get(&format!("/api/v1/stream?ticket={ticket}")), None).await;
    let unknown = send(app.get("/api/v1/stream?ticket=hbt_nope"), None).await;

    // Assert
    let mut ws = first.unwrap_or_else(|s| panic!("first use refused with {s}"));
    assert_eq!(ws.hello["user_id"], alice.id.as_str());
    assert_eq!(again.err(), Some(401));
    again_http.expect_error(401, "invalid_ticket");
    unknown.expect_error(401, "invalid_ticket");
    let room = alice.create_room(&app, "mine", &[]).await;
    assert_eq!(ws.next_event().await["id"], room["event_id"]);
    let logout = alice.delete(&app, "/api/v1/sessions/current").await;
    logout.expect(204);
    let (code, _) = ws.expect_close(Duration::from_secs(2)).await;
    assert_eq!(code, 4100, "logout closes the ticket socket it made");
}

#[actix_web::test]
async fn a_long_poll_returns_at_once_when_events_are_waiting() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bot = Bearer::create_token(&app, &alice, json!(["read", "send"])).await;
    let room = alice.create_room(&app, "general", &[]).await;
    let (room_id, since) = (room["id"].as_str().unwrap(), &room["event_id"]);
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(bot.send_message(&app, room_id, &format!("m{i}")).await);
    }

    // Act
    let started = Instant::now();
    let page = bot
        .poll(
            &app,
            &format!("since={}&timeout=30", since.as_str().unwrap()),
        )
        .await;

    // Assert
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    let page = page.expect(200);
    let frames = page["events"].as_array().unwrap();
    let want: Vec<&Value> = sent.iter().map(|s| &s["event_id"]).collect();
    assert_eq!(frames.iter().map(|f| &f["id"]).collect::<Vec<_>>(), want);
    assert!(frames.iter().all(|f| f["event"] == "message.created"));
    assert_eq!(page["cursor"], sent[2]["event_id"]);
    let over = bot.poll(&app, "timeout=61").await;
    over.expect_error(400, "invalid_query");
}

#[actix_web::test]
async fn a_long_poll_waits_for_the_next_event_and_answers_when_it_arrives() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bot = Bearer::create_token(&app, &alice, json!(["read", "send"])).await;
    let room = alice.create_room(&app, "general", &[]).await;
    let room_id = room["id"].as_str().unwrap();

    // Act: the poll is waiting when the message is sent, 700 ms in.
    let started = Instant::now();
    let query = format!("since={}&timeout=20", room["event_id"].as_str().unwrap());
    let (page, sent) = futures_util::join!(bot.poll(&app, &query), async {
        actix_rt::time::sleep(Duration::from_millis(700)).await;
        alice.send_message(&app, room_id, "worth the wait").await
    });

    // Assert
    let took = started.elapsed();
    assert!(took > Duration::from_millis(600), "{took:?}");
    assert!(
        took < Duration::from_secs(3),
        "answered when the event came: {took:?}"
    );
    let page = page.expect(200);
    assert_eq!(page["events"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["events"][0]["id"], sent["event_id"]);
    assert_eq!(page["events"][0]["data"], sent["message"]);
    assert_eq!(page["cursor"], sent["event_id"]);
}

#[actix_web::test]
async fn switching_between_long_poll_and_socket_misses_and_repeats_nothing() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bot = Bearer::create_token(&app, &alice, json!(["read", "send"])).await;
    let room = alice.create_room(&app, "general", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let started = Instant::now();
    let empty = bot.poll(&app, "timeout=1").await.expect(200);
    let took = started.elapsed();
    let mut sent = Vec::new();
    let send_batch = |from: usize, to: usize| {
        let (app, alice) = (&app, &alice);
        async move {
            let mut out = Vec::new();
            for i in from..to {
                out.push(alice.send_message(app, room_id, &format!("n{i}")).await);
            }
            out
        }
    };

    // Act: poll → socket → poll, 10 messages sent in between.
    sent.extend(send_batch(0, 3).await);
    let empty_cursor = empty["cursor"].as_str().unwrap();
    let (first, cursor) = bot.poll_events(&app, empty_cursor, 3).await;
    sent.extend(send_batch(3, 7).await);
    let mut ws = bot.socket(&app, Some(&cursor)).await;
    let middle = ws.events(4).await;
    ws.expect_silence(200).await;
    drop(ws);
    sent.extend(send_batch(7, 10).await);
    let last_seen = middle[3]["id"].as_str().unwrap();
    let (last, cursor) = bot.poll_events(&app, last_seen, 3).await;
    let tail = bot.poll(&app, &format!("since={cursor}&timeout=0")).await;

    // Assert
    assert_eq!(empty["events"], json!([]), "{empty}");
    assert!(
        took > Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let got: Vec<Value> = first.into_iter().chain(middle).chain(last).collect();
    let want: Vec<&Value> = sent.iter().map(|s| &s["event_id"]).collect();
    assert_eq!(got.iter().map(|f| &f["id"]).collect::<Vec<_>>(), want);
    let bodies: Vec<&str> = got
        .iter()
        .map(|f| f["data"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, (0..10).map(|i| format!("n{i}")).collect::<Vec<_>>());
    let tail = tail.expect(200);
    assert_eq!(tail["events"], json!([]), "{tail}");
    assert_eq!(tail["cursor"], cursor.as_str());
}

#[actix_web::test]
async fn cors_preflight_is_answered_for_the_configured_origin_only() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_ALLOWED_ORIGINS", "http://app.example")
        .spawn()
        .await;

    // Act
    let allowed = app.preflight("/api/v1/rooms", "http://app.example").await;
    let foreign = app.preflight("/api/v1/rooms", "http://evil.example").await;

    // Assert
    assert!(allowed.status < 300, "preflight status {}", allowed.status);
    let allow_origin = allowed.header("access-control-allow-origin");
    assert_eq!(allow_origin.as_deref(), Some("http://app.example"));
    let credentials = allowed.header("access-control-allow-credentials");
    assert_eq!(credentials.as_deref(), Some("true"));
    assert_eq!(foreign.header("access-control-allow-origin"), None);
    assert_eq!(foreign.header("access-control-allow-credentials"), None);
}

#[actix_web::test]
async fn a_bearer_write_passes_from_any_origin_where_the_cookie_write_is_refused() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bot = Bearer::create_token(&app, &alice, json!(["read", "send"])).await;
    let room = alice.create_room(&app, "general", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let path = format!("/api/v1/rooms/{room_id}/messages");
    let evil = ("Origin", "http://evil.example");
    let body = json!({ "body": "b" });

    // Act
    let by_cookie = alice.post_with(&app, &path, &body, &[evil]).await;
    let by_bearer = send(bot.req(app.post(&path)).insert_header(evil), Some(&body)).await;

    // Assert
    by_cookie.expect_error(403, "origin_not_allowed");
    let sent = by_bearer.expect(201);
    assert_eq!(sent["message"]["body"], "b");
    let history = alice.history(&app, room_id, "limit=10").await;
    assert_eq!(ids(&history), [sent["message"]["id"].as_str().unwrap()]);
}
