//! Exporting one's data: the profile, rooms and the user's own messages with their files, as
//! one streamed JSON attachment; nothing of others' conversations; once per window.

use serde_json::{json, Value};

use crate::harness::{send, Bearer, Resp, TestApp, TestUser};
use crate::photos::{png, upload};

async fn export(app: &TestApp, user: &TestUser) -> Resp {
    user.get(app, "/api/v1/me/export").await
}

#[actix_web::test]
async fn the_export_holds_the_profile_rooms_and_own_messages_and_nothing_of_others() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = alice.create_room(&app, "team", &[&bob]).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let pic = upload(&app, &alice, &png(16, 16), "a.png", "image/png")
        .await
        .expect(201);
    let path = format!("/api/v1/rooms/{room_id}/messages");
    let mine = alice
        .post(
            &app,
            &path,
            &json!({ "body": "alice says hi", "attachment_ids": [pic["id"]] }),
        )
        .await
        .expect(201);
    alice.send_message(&app, &room_id, "and once more").await;
    bob.send_message(&app, &room_id, "bob in the team room")
        .await;
    let dm = bob
        .post(&app, "/api/v1/dms", &json!({ "user_id": carol.id }))
        .await
        .expect(201);
    bob.send_message(&app, dm["id"].as_str().unwrap(), "private bob carol text")
        .await;
    let friend = alice
        .post(
            &app,
            "/api/v1/friends/requests",
            &json!({ "user_id": bob.id }),
        )
        .await
        .expect(201);
    bob.post(
        &app,
        &format!(
            "/api/v1/friends/requests/{}/accept",
            friend["id"].as_str().unwrap()
        ),
        &json!({}),
    )
    .await
    .expect(200);
    alice
        .put(&app, &format!("/api/v1/blocks/{}", carol.id))
        .await
        .expect(204);

    // Act
    let resp = export(&app, &alice).await;

    // Assert
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert!(resp
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/json")));
    let disposition = resp.header("content-disposition").unwrap_or_default();
    assert!(
        disposition.contains("attachment") && disposition.contains("hubbub-export-alice.json"),
        "{disposition}"
    );
    let doc = &resp.body;
    assert_eq!(doc["format"], "hubbub-export/1");
    assert_eq!(doc["profile"]["username"], "alice");
    assert_eq!(doc["friends"][0]["user"]["username"], "bob");
    assert_eq!(doc["blocks"][0]["user"]["username"], "carol");
    let rooms = doc["rooms"].as_array().expect("rooms");
    assert_eq!(rooms.len(), 1, "{doc}");
    assert_eq!(rooms[0]["id"], room_id.as_str());
    assert_eq!(rooms[0]["name"], "team");
    assert_eq!(rooms[0]["role"], "owner");
    assert_eq!(rooms[0]["kind"], "group");
    assert!(rooms[0]["joined_at"].is_string());
    let messages = doc["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{doc}");
    let first = &messages[0];
    assert_eq!(first["id"], mine["message"]["id"]);
    assert_eq!(first["room_id"], room_id.as_str());
    assert_eq!(first["body"], "alice says hi");
    assert!(first["created_at"].is_string());
    let url = format!("/api/v1/attachments/{}", pic["id"].as_str().unwrap());
    assert_eq!(first["attachments"][0]["url"], url.as_str());
    assert_eq!(messages[1]["body"], "and once more");
    let uploads = doc["uploads"].as_array().expect("uploads");
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0]["id"], pic["id"]);
    let text = doc.to_string();
    assert!(!text.contains("bob in the team room"), "others' messages");
    assert!(!text.contains("private bob carol text"), "others' DMs");
    assert!(!text.contains("password"), "{text}");
}

#[actix_web::test]
async fn a_read_token_may_export_once_per_window() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let reader = Bearer::create_token(&app, &alice, json!(["read"])).await;

    // Act
    let first = reader.get(&app, "/api/v1/me/export").await;
    let second = export(&app, &alice).await;

    // Assert
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["messages"], json!([]));
    second.expect_error(429, "rate_limited");
    let wait: u64 = second
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=600).contains(&wait), "{wait}");
}

#[actix_web::test]
async fn an_export_of_many_messages_is_streamed_in_pages() {
    // Arrange: 2,400 messages of 3.9 KB (a 9.5 MB document, twelve pages of messages); no
    // export window, so that a first export warms the caches (the pool's connections keep
    // SQLite pages) before the one measured.
    let app = TestApp::builder()
        .env("HUBBUB_EXPORT_INTERVAL_SECS", "0")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let room = alice.create_room(&app, "diary", &[]).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let filler = "x".repeat(3900);
    let path = format!("/api/v1/rooms/{room_id}/messages");
    for chunk in (0..2400).collect::<Vec<_>>().chunks(50) {
        let bodies: Vec<Value> = chunk
            .iter()
            .map(|i| json!({ "body": format!("{i:04} {filler}") }))
            .collect();
        let sends = bodies
            .iter()
            .map(|body| send(alice.req(app.post(&path)), Some(body)));
        for resp in futures_util::future::join_all(sends).await {
            assert_eq!(resp.status, 201, "{}", resp.body);
        }
    }
    export(&app, &alice).await.expect(200);
    let (before, _) = app.memory();
    app.reset_peak_memory();

    // Act
    let resp = export(&app, &alice).await;

    // Assert
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("content-length").is_none(),
        "streamed, not sized"
    );
    let messages: &Vec<Value> = resp.body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2400);
    let mut numbers: Vec<&str> = messages
        .iter()
        .map(|m| &m["body"].as_str().unwrap()[..4])
        .collect();
    numbers.dedup();
    assert_eq!(numbers.len(), 2400, "each once");
    let (_, peak) = app.memory();
    let grew = peak.saturating_sub(before);
    eprintln!("export of 9.5 MB: RSS peak grew {grew} KiB");
    // Built whole, the document alone (and its serialization beside it) would be more; a page
    // is about 0.8 MB, and glibc's arenas per thread add noise, so the bound is the document.
    assert!(
        grew < 9_000,
        "the server held {grew} KiB more: not streamed?"
    );
}
