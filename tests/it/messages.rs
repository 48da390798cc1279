//! Messages: sending, history paging (before/after/limit), body limits, and idempotent retries.

use serde_json::{json, Value};

use crate::harness::{ids, TestApp, TestUser};

async fn setup_room(app: &TestApp) -> (TestUser, String) {
    let alice = app.register("alice").await;
    let room = alice.create_room(app, "general", &[]).await;
    (alice, room["id"].as_str().unwrap().to_owned())
}

#[actix_web::test]
async fn sending_returns_201_with_the_message_and_its_event_id() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, room_id) = setup_room(&app).await;

    // Act
    let resp = alice
        .post(
            &app,
            &format!("/api/v1/rooms/{room_id}/messages"),
            &json!({ "body": "héllo 👋" }),
        )
        .await;

    // Assert
    let sent = resp.expect(201);
    let msg = &sent["message"];
    assert!(uuid::Uuid::parse_str(msg["id"].as_str().unwrap()).is_ok());
    assert_eq!(msg["room_id"], room_id.as_str());
    assert_eq!(msg["author_id"], alice.id.as_str());
    assert_eq!(msg["body"], "héllo 👋");
    assert_eq!(msg["edited_at"], Value::Null);
    assert_eq!(msg["reply_to"], Value::Null);
    assert!(chrono::DateTime::parse_from_rfc3339(msg["created_at"].as_str().unwrap()).is_ok());
    assert!(
        sent["event_id"].as_str().is_some_and(|e| !e.is_empty()),
        "{sent}"
    );
    let history = alice.history(&app, &room_id, "").await;
    assert_eq!(
        history["messages"],
        json!([msg]),
        "history returns the same JSON"
    );
}

#[actix_web::test]
async fn history_pages_exactly_over_25_messages() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, room_id) = setup_room(&app).await;
    let mut all = Vec::new();
    for i in 0..25 {
        let sent = alice
            .send_message(&app, &room_id, &format!("m{i:02}"))
            .await;
        all.push(sent["message"]["id"].as_str().unwrap().to_owned());
    }

    // Act + Assert: the default page is everything, oldest first.
    let page = alice.history(&app, &room_id, "").await;
    assert_eq!(ids(&page), all);
    assert_eq!(page["messages"][0]["body"], "m00");
    assert_eq!(page["next_before"], Value::Null);
    assert_eq!(page["next_after"], Value::Null);

    // The newest `limit`, with next_before pointing at the oldest in the page.
    let page = alice.history(&app, &room_id, "limit=10").await;
    assert_eq!(ids(&page), all[15..]);
    assert_eq!(page["next_before"], all[15].as_str());

    // Walking backwards with every limit yields every message once, in order.
    for limit in [1, 3, 7, 10, 24, 25, 100] {
        let mut collected: Vec<String> = Vec::new();
        let mut query = format!("limit={limit}");
        let mut pages = 0;
        loop {
            let page = alice.history(&app, &room_id, &query).await;
            let page_ids = ids(&page);
            assert!(page_ids.len() <= limit, "limit {limit} exceeded");
            collected.splice(0..0, page_ids);
            pages += 1;
            match page["next_before"].as_str() {
                Some(before) => query = format!("limit={limit}&before={before}"),
                None => break,
            }
            assert!(pages <= 26, "backward walk does not end (limit {limit})");
        }
        assert_eq!(collected, all, "backward walk with limit {limit}");
        assert_eq!(
            pages,
            25usize.div_ceil(limit),
            "page count with limit {limit}"
        );
    }

    // Walking forwards from the oldest yields the rest, in order.
    for limit in [1, 4, 10, 24, 100] {
        let mut collected = vec![all[0].clone()];
        let mut after = all[0].clone();
        let mut pages = 0;
        loop {
            let page = alice
                .history(&app, &room_id, &format!("limit={limit}&after={after}"))
                .await;
            collected.extend(ids(&page));
            pages += 1;
            match page["next_after"].as_str() {
                Some(next) => after = next.to_owned(),
                None => break,
            }
            assert!(pages <= 26, "forward walk does not end (limit {limit})");
        }
        assert_eq!(collected, all, "forward walk with limit {limit}");
        assert_eq!(
            pages,
            24usize.div_ceil(limit),
            "page count with limit {limit}"
        );
    }

    // Every cursor position, both directions.
    for (i, id) in all.iter().enumerate() {
        let before = alice
            .history(&app, &room_id, &format!("limit=5&before={id}"))
            .await;
        assert_eq!(ids(&before), all[i.saturating_sub(5)..i], "before m{i:02}");
        let more_before = if i > 5 {
            Value::from(all[i - 5].as_str())
        } else {
            Value::Null
        };
        assert_eq!(
            before["next_before"], more_before,
            "next_before before m{i:02}"
        );
        let after = alice
            .history(&app, &room_id, &format!("limit=5&after={id}"))
            .await;
        assert_eq!(ids(&after), all[i + 1..(i + 6).min(25)], "after m{i:02}");
        let more_after = if i + 6 < 25 {
            Value::from(all[i + 5].as_str())
        } else {
            Value::Null
        };
        assert_eq!(after["next_after"], more_after, "next_after after m{i:02}");
    }
}

#[actix_web::test]
async fn bad_paging_parameters_are_400() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, room_id) = setup_room(&app).await;
    alice.send_message(&app, &room_id, "one").await;
    let path = |q: &str| format!("/api/v1/rooms/{room_id}/messages?{q}");
    let unknown = uuid::Uuid::new_v4();

    // Act + Assert
    for q in ["limit=0", "limit=101", "limit=abc", "limit=-1"] {
        alice
            .get(&app, &path(q))
            .await
            .expect_error(400, "invalid_query");
    }
    for q in [format!("before={unknown}"), format!("after={unknown}")] {
        alice
            .get(&app, &path(&q))
            .await
            .expect_error(400, "invalid_cursor");
    }
    let garbage = alice.get(&app, &path("before=not-a-uuid")).await;
    let code = garbage.body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        code == "invalid_cursor" || code == "invalid_query",
        "{}",
        garbage.body
    );
    garbage.expect_error(400, &code);
    alice.history(&app, &room_id, "limit=1").await;
    alice.history(&app, &room_id, "limit=100").await;
}

#[actix_web::test]
async fn message_bodies_are_limited_to_4000_characters_and_must_not_be_blank() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, room_id) = setup_room(&app).await;
    let path = format!("/api/v1/rooms/{room_id}/messages");

    // Act + Assert: boundaries are accepted (characters, not bytes).
    alice.send_message(&app, &room_id, &"a".repeat(4000)).await;
    alice.send_message(&app, &room_id, &"🦀".repeat(4000)).await;
    for bad in [
        "a".repeat(4001),
        "é".repeat(4001),
        String::new(),
        " \n\t ".to_owned(),
    ] {
        let resp = alice.post(&app, &path, &json!({ "body": bad })).await;
        let err = resp.expect_error(422, "validation_failed");
        assert!(err["fields"]["body"].is_string(), "{err}");
    }
    let history = alice.history(&app, &room_id, "").await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        2,
        "rejected bodies wrote nothing"
    );
}

#[actix_web::test]
async fn an_idempotent_retry_returns_the_original_response_and_writes_once() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let room_id = room["id"].as_str().unwrap();
    let path = format!("/api/v1/rooms/{room_id}/messages");
    let mut ws = alice.socket(&app, room["event_id"].as_str()).await;
    let key = [("Idempotency-Key", "retry-1")];
    let body = json!({ "body": "exactly once" });

    // Act
    let first = alice.post_with(&app, &path, &body, &key).await.expect(201);
    let second = alice.post_with(&app, &path, &body, &key).await.expect(201);
    alice.send_message(&app, room_id, "something else").await;
    let third = alice.post_with(&app, &path, &body, &key).await.expect(201);

    // Assert
    assert_eq!(second, first, "a retry returns the identical body");
    assert_eq!(third, first, "a late retry still returns the original");
    let history = alice.history(&app, room_id, "").await;
    let bodies: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["exactly once", "something else"]);
    let frames = ws.events(2).await;
    assert_eq!(frames[0]["id"], first["event_id"]);
    assert_eq!(frames[0]["data"], first["message"]);
    assert_eq!(frames[1]["data"]["body"], "something else");
    ws.expect_silence(500).await;
}

#[actix_web::test]
async fn concurrent_retries_with_one_key_write_one_message_and_share_its_answer() {
    // Arrange: sends that arrive together are checked and written as one group, so retries
    // of one request land in the same group as the request itself.
    let app = TestApp::spawn().await;
    let (alice, room_id) = setup_room(&app).await;
    let path = format!("/api/v1/rooms/{room_id}/messages");
    let key = [("Idempotency-Key", "burst-1")];
    let body = json!({ "body": "sent once" });

    // Act: 12 copies of one request, all at once, with 4 unkeyed sends among them.
    let copies = (0..16).map(|i| {
        let (path, body, alice, app) = (&path, &body, &alice, &app);
        async move {
            if i % 4 == 3 {
                alice
                    .post(app, path, &json!({ "body": format!("plain {i}") }))
                    .await
            } else {
                alice.post_with(app, path, body, &key).await
            }
        }
    });
    let answers = futures_util::future::join_all(copies).await;

    // Assert
    let mut firsts = Vec::new();
    for (i, resp) in answers.into_iter().enumerate() {
        let sent = resp.expect(201);
        if i % 4 != 3 {
            firsts.push(sent);
        }
    }
    assert!(
        firsts.iter().all(|a| *a == firsts[0]),
        "every copy gets one answer"
    );
    let history = alice.history(&app, &room_id, "").await;
    let bodies: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies.iter().filter(|b| **b == "sent once").count(), 1);
    assert_eq!(
        bodies.len(),
        5,
        "one keyed message and four plain ones: {bodies:?}"
    );
}

#[actix_web::test]
async fn reusing_a_key_with_a_different_body_is_409() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, room_id) = setup_room(&app).await;
    let path = format!("/api/v1/rooms/{room_id}/messages");
    let key = [("Idempotency-Key", "k-42")];
    alice
        .post_with(&app, &path, &json!({ "body": "first" }), &key)
        .await
        .expect(201);

    // Act
    let resp = alice
        .post_with(&app, &path, &json!({ "body": "second" }), &key)
        .await;

    // Assert
    resp.expect_error(409, "idempotency_key_reused");
    let history = alice.history(&app, &room_id, "").await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    assert_eq!(history["messages"][0]["body"], "first");
}

#[actix_web::test]
async fn idempotency_keys_are_per_user() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = alice.create_room(&app, "shared", &[&bob]).await;
    let path = format!("/api/v1/rooms/{}/messages", room["id"].as_str().unwrap());
    let key = [("Idempotency-Key", "same-key")];

    // Act
    let a = alice
        .post_with(&app, &path, &json!({ "body": "from alice" }), &key)
        .await
        .expect(201);
    let b = bob
        .post_with(&app, &path, &json!({ "body": "from bob" }), &key)
        .await
        .expect(201);

    // Assert
    assert_ne!(a["message"]["id"], b["message"]["id"]);
    assert_eq!(b["message"]["author_id"], bob.id.as_str());
    assert_eq!(b["message"]["body"], "from bob");
    let history = alice.history(&app, room["id"].as_str().unwrap(), "").await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn malformed_idempotency_keys_are_400_and_write_nothing() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, room_id) = setup_room(&app).await;
    let path = format!("/api/v1/rooms/{room_id}/messages");
    let too_long = "k".repeat(256);

    for key in ["", too_long.as_str()] {
        // Act
        let resp = alice
            .post_with(
                &app,
                &path,
                &json!({ "body": "x" }),
                &[("Idempotency-Key", key)],
            )
            .await;

        // Assert
        resp.expect_error(400, "invalid_idempotency_key");
    }
    let history = alice.history(&app, &room_id, "").await;
    assert_eq!(history["messages"], json!([]));
    let max = "k".repeat(255);
    alice
        .post_with(
            &app,
            &path,
            &json!({ "body": "x" }),
            &[("Idempotency-Key", &max)],
        )
        .await
        .expect(201);
}
