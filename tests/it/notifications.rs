//! Mentions (`mention_ids` on sends, `mention_count` in room views) and each member's
//! notification setting per room (`PUT /api/v1/rooms/{id}/notifications`).

use serde_json::{json, Value};

use crate::harness::{send, Bearer, Resp, Socket, TestApp, TestUser};

fn messages(room: &Value) -> String {
    format!("/api/v1/rooms/{}/messages", room["id"].as_str().unwrap())
}

fn settings(room: &Value) -> String {
    format!(
        "/api/v1/rooms/{}/notifications",
        room["id"].as_str().unwrap()
    )
}

/// `PUT` with a JSON body.
async fn put(app: &TestApp, user: &TestUser, path: &str, body: &Value) -> Resp {
    send(user.req(app.client.put(app.url(path))), Some(body)).await
}

/// The room as `user` sees it (`GET /api/v1/rooms/{id}`).
async fn view(app: &TestApp, user: &TestUser, room: &Value) -> Value {
    let path = format!("/api/v1/rooms/{}", room["id"].as_str().unwrap());
    user.get(app, &path).await.expect(200)
}

/// The room as `user`'s room list shows it.
async fn listed(app: &TestApp, user: &TestUser, room: &Value) -> Value {
    let list = user.get(app, "/api/v1/rooms").await.expect(200);
    list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == room["id"])
        .cloned()
        .unwrap_or_else(|| panic!("{} not in {list}", room["id"]))
}

/// Sorted user ids, as `mention_ids` lists them.
fn sorted(ids: &[&str]) -> Value {
    let mut ids: Vec<&str> = ids.to_vec();
    ids.sort();
    ids.dedup();
    json!(ids)
}

/// Reads frames until one of kind `name` (skipping others) and returns it.
async fn next_of(ws: &mut Socket, name: &str) -> Value {
    loop {
        let frame = ws.next_event().await;
        if frame["event"] == name {
            return frame;
        }
    }
}

#[actix_web::test]
async fn mentioning_anyone_but_a_current_member_is_422_and_writes_nothing() {
    // Arrange: alice and bob in the room; carol never was, dave left.
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let room = alice.create_room(&app, "general", &[&bob, &dave]).await;
    let leave = format!(
        "/api/v1/rooms/{}/members/{}",
        room["id"].as_str().unwrap(),
        dave.id
    );
    let left = dave.delete(&app, &leave).await;
    left.expect(204);
    let mut bob_ws = bob.socket(&app, None).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let too_many: Vec<String> = (0..51).map(|_| uuid::Uuid::now_v7().to_string()).collect();

    for (mentions, why) in [
        (json!([bob.id, carol.id]), "a stranger"),
        (json!([dave.id]), "a former member"),
        (json!([unknown]), "nobody"),
        (json!(too_many), "more than 50"),
    ] {
        // Act
        let body = json!({ "body": "hey", "mention_ids": mentions });
        let resp = alice
            .post_with(&app, &messages(&room), &body, &[("Idempotency-Key", "k")])
            .await;

        // Assert
        let err = resp.expect_error(422, "validation_failed");
        assert!(err["fields"]["mention_ids"].is_string(), "{why}: {err}");
    }
    let not_ids = json!({ "body": "hey", "mention_ids": ["bob"] });
    let resp = alice.post(&app, &messages(&room), &not_ids).await;
    resp.expect_error(400, "invalid_body");
    let history = alice.history(&app, room["id"].as_str().unwrap(), "").await;
    assert_eq!(history["messages"], json!([]), "nothing was written");
    bob_ws.expect_silence(300).await;
    // The key wasn't spent on a refusal: the fixed request goes through with it.
    let fixed = json!({ "body": "hey", "mention_ids": [bob.id] });
    alice
        .post_with(&app, &messages(&room), &fixed, &[("Idempotency-Key", "k")])
        .await
        .expect(201);
}

#[actix_web::test]
async fn mention_ids_show_in_the_answer_the_event_history_the_room_view_and_a_retry() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = alice.create_room(&app, "general", &[&bob]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut bob_ws = bob.socket(&app, room["event_id"].as_str()).await;
    let key = [("Idempotency-Key", "mention-1")];
    // Duplicates are merged, the order doesn't matter, and alice may mention herself.
    let body = json!({ "body": "@bob @alice", "mention_ids": [bob.id, alice.id, bob.id] });

    // Act
    let sent = alice
        .post_with(&app, &messages(&room), &body, &key)
        .await
        .expect(201);
    let retry = alice
        .post_with(&app, &messages(&room), &body, &key)
        .await
        .expect(201);
    let reordered = json!({ "body": "@bob @alice", "mention_ids": [alice.id, bob.id] });
    let same = alice
        .post_with(&app, &messages(&room), &reordered, &key)
        .await
        .expect(201);
    let other = json!({ "body": "@bob @alice", "mention_ids": [bob.id] });
    let reused = alice.post_with(&app, &messages(&room), &other, &key).await;
    let plain = alice.send_message(&app, room_id, "no one").await;

    // Assert
    let both = sorted(&[&alice.id, &bob.id]);
    assert_eq!(sent["message"]["mention_ids"], both, "{sent}");
    assert_eq!(retry, sent, "a retry answers the same mention_ids");
    assert_eq!(
        same, sent,
        "the same set in another order is the same request"
    );
    reused.expect_error(409, "idempotency_key_reused");
    assert_eq!(plain["message"]["mention_ids"], json!([]));
    let created = bob_ws.next_event().await;
    assert_eq!(created["event"], "message.created");
    assert_eq!(created["data"], sent["message"]);
    let history = bob.history(&app, room_id, "").await;
    assert_eq!(
        history["messages"],
        json!([sent["message"], plain["message"]])
    );
    let last = json!({ "body": "@bob again", "mention_ids": [bob.id] });
    let newest = alice.post(&app, &messages(&room), &last).await.expect(201);
    assert_eq!(
        view(&app, &bob, &room).await["last_message"],
        newest["message"],
        "the room's last message carries its mentions"
    );

    // An edit keeps the mentions; a delete takes them with the body.
    let message = format!(
        "{}/{}",
        messages(&room),
        sent["message"]["id"].as_str().unwrap()
    );
    let edited = alice
        .patch(&app, &message, &json!({ "body": "@bob, @alice: edited" }))
        .await
        .expect(200);
    assert_eq!(edited["message"]["mention_ids"], both);
    let updated = next_of(&mut bob_ws, "message.updated").await;
    assert_eq!(updated["data"], edited["message"]);
    alice.delete(&app, &message).await.expect(204);
    let deleted = next_of(&mut bob_ws, "message.deleted").await;
    assert_eq!(deleted["data"]["mention_ids"], json!([]));
    let history = bob.history(&app, room_id, "").await;
    assert_eq!(
        history["messages"][0]["mention_ids"],
        json!([]),
        "a tombstone"
    );
    assert_eq!(history["messages"][0]["body"], Value::Null);
}

#[actix_web::test]
async fn mention_count_counts_others_live_mentions_after_the_read_marker() {
    // Arrange: in `general`, bob mentions alice three times, alice herself once; in `quiet`
    // nobody mentions her.
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let general = alice.create_room(&app, "general", &[&bob]).await;
    let quiet = alice.create_room(&app, "quiet", &[&bob]).await;
    let at_alice = json!({ "body": "@alice", "mention_ids": [alice.id] });
    let mut by_bob = Vec::new();
    for _ in 0..3 {
        let sent = bob
            .post(&app, &messages(&general), &at_alice)
            .await
            .expect(201);
        by_bob.push(sent["message"]["id"].as_str().unwrap().to_owned());
    }
    let own = alice
        .post(&app, &messages(&general), &at_alice)
        .await
        .expect(201);
    let at_bob = json!({ "body": "@bob", "mention_ids": [bob.id] });
    alice
        .post(&app, &messages(&general), &at_bob)
        .await
        .expect(201);
    bob.send_message(&app, quiet["id"].as_str().unwrap(), "hi")
        .await;
    let read = format!("/api/v1/rooms/{}/read", general["id"].as_str().unwrap());

    // Act + Assert: her own mention never counts.
    let mine = view(&app, &alice, &general).await;
    assert_eq!(mine["mention_count"], 3, "{mine}");
    assert_eq!(mine["unread_count"], 3);
    assert_eq!(listed(&app, &alice, &general).await["mention_count"], 3);
    assert_eq!(listed(&app, &alice, &quiet).await["mention_count"], 0);
    assert_eq!(listed(&app, &alice, &quiet).await["unread_count"], 1);
    assert_eq!(view(&app, &bob, &general).await["mention_count"], 1);

    // A deleted mention no longer counts.
    let second = format!("{}/{}", messages(&general), by_bob[1]);
    bob.delete(&app, &second).await.expect(204);
    assert_eq!(view(&app, &alice, &general).await["mention_count"], 2);

    // The marker moves past the first: one left, in the answer and the view.
    let marked = alice
        .post(&app, &read, &json!({ "message_id": by_bob[0] }))
        .await
        .expect(200);
    assert_eq!(marked["mention_count"], 1, "{marked}");
    assert_eq!(marked["unread_count"], 1);
    assert_eq!(view(&app, &alice, &general).await["mention_count"], 1);
    let to_own = json!({ "message_id": own["message"]["id"] });
    let marked = alice.post(&app, &read, &to_own).await.expect(200);
    assert_eq!(marked["mention_count"], 0);
    assert_eq!(listed(&app, &alice, &general).await["mention_count"], 0);
    assert_eq!(
        view(&app, &bob, &general).await["mention_count"],
        1,
        "bob's own"
    );
}

#[actix_web::test]
async fn bots_mention_and_are_mentioned_like_anyone() {
    // Arrange
    let app = TestApp::spawn().await;
    let owner = app.register("owner").await;
    let (bot_user, bot) = Bearer::create_bot(&app, &owner, "helper").await;
    let room = owner.create_room(&app, "lab", &[]).await;
    let members = format!("/api/v1/rooms/{}/members", room["id"].as_str().unwrap());
    owner
        .post(&app, &members, &json!({ "user_id": bot_user["id"] }))
        .await
        .expect(201);

    // Act
    let from_bot = json!({ "body": "@owner done", "mention_ids": [owner.id] });
    let sent = bot
        .post(&app, &messages(&room), &from_bot)
        .await
        .expect(201);
    let to_bot = json!({ "body": "@helper thanks", "mention_ids": [bot.user_id] });
    owner
        .post(&app, &messages(&room), &to_bot)
        .await
        .expect(201);

    // Assert
    assert_eq!(sent["message"]["mention_ids"], json!([owner.id]));
    assert_eq!(view(&app, &owner, &room).await["mention_count"], 1);
    let path = format!("/api/v1/rooms/{}", room["id"].as_str().unwrap());
    let seen_by_bot = bot.get(&app, &path).await.expect(200);
    assert_eq!(seen_by_bot["mention_count"], 1, "{seen_by_bot}");
    let stranger = json!({ "body": "@nobody", "mention_ids": [uuid::Uuid::now_v7()] });
    let refused = bot.post(&app, &messages(&room), &stranger).await;
    refused.expect_error(422, "validation_failed");
}

#[actix_web::test]
async fn a_notification_setting_is_validated_and_only_members_may_set_one() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let eve = app.register("eve").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let last = alice
        .send_message(&app, room["id"].as_str().unwrap(), "hi")
        .await;
    let unknown = json!({ "id": uuid::Uuid::now_v7().to_string() });

    // Act + Assert: 422 names each bad field.
    for (body, fields) in [
        (json!({ "level": "loud" }), vec!["level"]),
        (json!({ "level": "ALL" }), vec!["level"]),
        (
            json!({ "level": "all", "muted_until": "tomorrow" }),
            vec!["muted_until"],
        ),
        (
            json!({ "level": "all", "muted_until": "2030-01-01" }),
            vec!["muted_until"],
        ),
        (
            json!({ "level": "x", "muted_until": "y" }),
            vec!["level", "muted_until"],
        ),
    ] {
        let resp = put(&app, &alice, &settings(&room), &body).await;
        let err = resp.expect_error(422, "validation_failed");
        let named: Vec<&String> = err["fields"].as_object().unwrap().keys().collect();
        assert_eq!(named, fields, "{body}");
    }
    // The wrong shape is 400, as for any JSON body.
    for body in [
        json!({}),
        json!({ "level": 1 }),
        json!({ "level": "all", "muted_until": 5 }),
    ] {
        let resp = put(&app, &alice, &settings(&room), &body).await;
        resp.expect_error(400, "invalid_body");
    }
    assert_eq!(
        view(&app, &alice, &room).await["notifications"],
        json!({ "level": "all", "muted_until": null }),
        "nothing was written"
    );

    // A non-member gets what the other member-only endpoints give: 404 room_not_found.
    let body = json!({ "level": "none" });
    let outsider = put(&app, &eve, &settings(&room), &body).await;
    outsider.expect_error(404, "room_not_found");
    let read = format!("/api/v1/rooms/{}/read", room["id"].as_str().unwrap());
    let marker = json!({ "message_id": last["message"]["id"] });
    eve.post(&app, &read, &marker)
        .await
        .expect_error(404, "room_not_found");
    put(&app, &alice, &settings(&unknown), &body)
        .await
        .expect_error(404, "room_not_found");

    // Unknown fields are ignored, as everywhere.
    let extra = json!({ "level": "mentions", "sound": "bell" });
    let ok = put(&app, &alice, &settings(&room), &extra)
        .await
        .expect(200);
    assert_eq!(ok["level"], "mentions");
}

#[actix_web::test]
async fn a_setting_shows_in_the_callers_room_view_and_reaches_only_their_own_devices() {
    // Arrange: alice on two devices, bob on one.
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = alice.create_room(&app, "general", &[&bob]).await;
    let since = room["event_id"].as_str();
    let phone = alice.second_session(&app).await;
    let mut alice_ws = alice.socket(&app, since).await;
    let mut phone_ws = phone.socket(&app, since).await;
    let mut bob_ws = bob.socket(&app, since).await;
    let body = json!({ "level": "mentions", "muted_until": "2030-01-01T01:00:00.5+01:00" });

    // Act
    let set = put(&app, &alice, &settings(&room), &body).await.expect(200);
    let again = put(&app, &alice, &settings(&room), &body).await.expect(200);

    // Assert
    let event_id = set["event_id"].as_str().expect("event_id").to_owned();
    let answer = json!({
        "room_id": room["id"],
        "level": "mentions",
        "muted_until": "2030-01-01T00:00:00.500000Z",
    });
    assert_eq!(
        set,
        json!({ "event_id": event_id, "room_id": room["id"], "level": "mentions", "muted_until": "2030-01-01T00:00:00.500000Z" })
    );
    assert_eq!(again, answer, "an unchanged setting appends no event");
    for ws in [&mut alice_ws, &mut phone_ws] {
        let frame = ws.next_event().await;
        assert_eq!(frame["event"], "notifications.updated");
        assert_eq!(frame["id"], event_id.as_str());
        assert_eq!(frame["room_id"], Value::Null);
        assert_eq!(frame["data"], answer);
        ws.expect_silence(300).await;
    }
    bob_ws.expect_silence(300).await;
    let mine = json!({ "level": "mentions", "muted_until": "2030-01-01T00:00:00.500000Z" });
    assert_eq!(view(&app, &alice, &room).await["notifications"], mine);
    assert_eq!(view(&app, &phone, &room).await["notifications"], mine);
    assert_eq!(listed(&app, &alice, &room).await["notifications"], mine);
    let default = json!({ "level": "all", "muted_until": null });
    assert_eq!(view(&app, &bob, &room).await["notifications"], default);

    // Room JSON inside events carries no caller's figures.
    let rename = format!("/api/v1/rooms/{}", room["id"].as_str().unwrap());
    alice
        .patch(&app, &rename, &json!({ "name": "renamed" }))
        .await
        .expect(200);
    let updated = bob_ws.next_event().await;
    assert_eq!(updated["event"], "room.updated");
    for key in ["notifications", "mention_count", "unread_count"] {
        assert!(updated["data"].get(key).is_none(), "{key} in {updated}");
    }

    // Back to the default: an event, and the view says so.
    let reset = json!({ "level": "all", "muted_until": null });
    let back = put(&app, &alice, &settings(&room), &reset)
        .await
        .expect(200);
    assert!(back["event_id"].is_string());
    assert_eq!(view(&app, &alice, &room).await["notifications"], default);
}

#[actix_web::test]
async fn leaving_forgets_the_setting_so_a_new_stay_starts_at_all() {
    // Arrange: bob and carol silence the room.
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let room = alice.create_room(&app, "general", &[&bob, &carol]).await;
    let room_id = room["id"].as_str().unwrap();
    let none = json!({ "level": "none" });
    for user in [&bob, &carol] {
        put(&app, user, &settings(&room), &none).await.expect(200);
        assert_eq!(
            view(&app, user, &room).await["notifications"]["level"],
            "none"
        );
    }

    // Act: bob leaves, carol is removed; both are added back.
    let member = |id: &str| format!("/api/v1/rooms/{room_id}/members/{id}");
    bob.delete(&app, &member(&bob.id)).await.expect(204);
    alice.delete(&app, &member(&carol.id)).await.expect(204);
    let after_leaving = put(&app, &bob, &settings(&room), &none).await;
    let members = format!("/api/v1/rooms/{room_id}/members");
    for user in [&bob, &carol] {
        let add = json!({ "user_id": user.id });
        alice.post(&app, &members, &add).await.expect(201);
    }

    // Assert
    after_leaving.expect_error(404, "room_not_found");
    let default = json!({ "level": "all", "muted_until": null });
    for user in [&bob, &carol] {
        assert_eq!(view(&app, user, &room).await["notifications"], default);
    }
}
