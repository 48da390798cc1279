//! The life of a room: renaming, members joining and leaving, roles, edits, deletes, reactions, unread counts.

use serde_json::{json, Value};

use crate::harness::{Recv, Resp, Socket, TestApp, TestUser};

const THUMBS: &str = "%F0%9F%91%8D";

/// The next event on `ws`, which must be `name`.
async fn expect_event(ws: &mut Socket, name: &str) -> Value {
    let frame = ws.next_event().await;
    assert_eq!(frame["event"], name, "unexpected event: {frame}");
    frame
}

/// The names of every frame until `quiet_ms` pass without one.
async fn drain(ws: &mut Socket, quiet_ms: u64) -> Vec<Value> {
    let mut frames = Vec::new();
    while let Recv::Frame(v) = ws.recv(std::time::Duration::from_millis(quiet_ms)).await {
        frames.push(v);
    }
    frames
}

/// `/api/v1/rooms/{id}` of a room JSON.
fn rp(room: &Value) -> String {
    format!("/api/v1/rooms/{}", room["id"].as_str().expect("room id"))
}

/// `…/messages/{id}` of a send answer.
fn mp(room: &Value, sent: &Value) -> String {
    format!(
        "{}/messages/{}",
        rp(room),
        sent["message"]["id"].as_str().unwrap()
    )
}

async fn add(app: &TestApp, by: &TestUser, room: &Value, user: &str) -> Resp {
    let body = json!({ "user_id": user });
    by.post(app, &format!("{}/members", rp(room)), &body).await
}

async fn send(app: &TestApp, by: &TestUser, room: &Value, body: &str) -> Value {
    by.send_message(app, room["id"].as_str().unwrap(), body)
        .await
}

/// `username:role` of each member, sorted.
fn roster(room: &Value) -> Vec<String> {
    let list = room["members"].as_array().expect("members array");
    let mut out: Vec<String> = list
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m["username"].as_str().unwrap(),
                m["role"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

/// One request by `user` with any method.
async fn call(app: &TestApp, user: &TestUser, method: &str, path: &str, body: &Value) -> Resp {
    match method {
        "POST" => user.post(app, path, body).await,
        "PATCH" => user.patch(app, path, body).await,
        "DELETE" => user.delete(app, path).await,
        other => panic!("unexpected method {other}"),
    }
}

async fn unread(app: &TestApp, user: &TestUser, room_id: &str) -> i64 {
    let rooms = user.get(app, "/api/v1/rooms").await.expect(200);
    let list = rooms["rooms"].as_array().unwrap();
    let room = list
        .iter()
        .find(|r| r["id"] == room_id)
        .expect("room listed");
    room["unread_count"].as_i64().expect("unread_count")
}

#[actix_web::test]
async fn renaming_tells_every_member_and_needs_owner_or_admin() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let room = alice.create_room(&app, "old", &[&bob]).await;
    let (dm_with_bob, name) = (json!({ "user_id": bob.id }), |n: &str| json!({ "name": n }));
    let dm = alice
        .post(&app, "/api/v1/dms", &dm_with_bob)
        .await
        .expect(201);
    let mut alice_ws = alice.socket(&app, None).await;
    let mut bob_ws = bob.socket(&app, None).await;

    // Act
    let by_member = bob.patch(&app, &rp(&room), &name("mine")).await;
    let renamed = alice.patch(&app, &rp(&room), &name("new")).await;
    let direct = alice.patch(&app, &rp(&dm), &name("x")).await;

    // Assert
    by_member.expect_error(403, "forbidden");
    direct.expect_error(409, "direct_room");
    let renamed = renamed.expect(200);
    assert_eq!(renamed["name"], "new");
    assert_eq!(renamed["unread_count"], 0);
    for ws in [&mut alice_ws, &mut bob_ws] {
        let frame = expect_event(ws, "room.updated").await;
        assert_eq!(frame["id"], renamed["event_id"]);
        assert_eq!(frame["data"]["name"], "new");
        ws.expect_silence(300).await;
    }
    assert_eq!(bob.get(&app, &rp(&room)).await.expect(200)["name"], "new");
}

#[actix_web::test]
async fn an_added_member_hears_from_their_join_on_and_reads_the_whole_history() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let carol = app.register("carol").await;
    let room = alice.create_room(&app, "team", &[&bob]).await;
    let before = send(&app, &alice, &room, "before carol").await;
    let mut bob_ws = bob.socket(&app, None).await;
    let mut carol_ws = carol.socket(&app, None).await;

    // Act
    let by_member = add(&app, &bob, &room, &carol.id).await;
    let added = add(&app, &alice, &room, &carol.id).await.expect(201);
    let again = add(&app, &alice, &room, &carol.id).await;
    let nobody = add(&app, &alice, &room, &uuid::Uuid::new_v4().to_string()).await;
    let carol_unread = unread(&app, &carol, room["id"].as_str().unwrap()).await;
    let after = send(&app, &alice, &room, "after carol").await;

    // Assert
    by_member.expect_error(403, "forbidden");
    nobody.expect_error(404, "user_not_found");
    assert_eq!(added["room_id"], room["id"]);
    assert_eq!(added["user_id"], carol.id.as_str());
    assert_eq!(added["role"], "member");
    let again = again.expect(200);
    assert!(again.get("event_id").is_none(), "no second join: {again}");
    assert_eq!(carol_unread, 0, "a new member starts with nothing unread");
    for ws in [&mut bob_ws, &mut carol_ws] {
        let joined = expect_event(ws, "member.joined").await;
        assert_eq!(joined["id"], added["event_id"]);
        assert_eq!(joined["data"]["user_id"], carol.id.as_str());
        assert_eq!(joined["data"]["by"], alice.id.as_str());
        let message = expect_event(ws, "message.created").await;
        assert_eq!(message["id"], after["event_id"]);
        ws.expect_silence(300).await;
    }
    let history = carol.get(&app, &format!("{}/messages", rp(&room))).await;
    let history = history.expect(200);
    let bodies: Vec<&Value> = history["messages"].as_array().unwrap().iter().collect();
    assert_eq!(bodies.len(), 2, "the whole history: {history}");
    assert_eq!(bodies[0]["id"], before["message"]["id"]);
    let frames = drain(&mut carol.socket(&app, Some("0")).await, 500).await;
    let names: Vec<&str> = frames
        .iter()
        .map(|f| f["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["member.joined", "message.created"],
        "stream from the join on"
    );
}

#[actix_web::test]
async fn a_removed_member_gets_member_left_then_nothing_live_or_on_resume() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let carol = app.register("carol").await;
    let room = alice.create_room(&app, "team", &[&bob, &carol]).await;
    send(&app, &alice, &room, "while bob is here").await;
    let mut bob_ws = bob.socket(&app, None).await;
    let mut carol_ws = carol.socket(&app, None).await;
    let bob_path = format!("{}/members/{}", rp(&room), bob.id);

    // Act
    alice.delete(&app, &bob_path).await.expect(204);
    let later = send(&app, &alice, &room, "after bob").await;
    let rename = json!({ "name": "no bob" });
    alice.patch(&app, &rp(&room), &rename).await.expect(200);

    // Assert
    let left = expect_event(&mut bob_ws, "member.left").await;
    assert_eq!(left["data"]["user_id"], bob.id.as_str());
    assert_eq!(left["data"]["by"], alice.id.as_str());
    bob_ws.expect_silence(700).await;
    for (name, id) in [
        ("member.left", &left["id"]),
        ("message.created", &later["event_id"]),
    ] {
        assert_eq!(&expect_event(&mut carol_ws, name).await["id"], id);
    }
    expect_event(&mut carol_ws, "room.updated").await;
    let frames = drain(&mut bob.socket(&app, Some("0")).await, 500).await;
    let of_room: Vec<&Value> = frames
        .iter()
        .filter(|f| f["room_id"] == room["id"])
        .collect();
    let last = of_room.last().map(|f| &f["id"]);
    assert_eq!(
        last,
        Some(&left["id"]),
        "resume ends at removal: {frames:?}"
    );
    for path in [rp(&room), format!("{}/messages", rp(&room))] {
        let gone = bob.get(&app, &path).await;
        gone.expect_error(404, "room_not_found");
    }
    let rooms = bob.get(&app, "/api/v1/rooms").await.expect(200);
    assert_eq!(rooms["rooms"], json!([]));
    let again = alice.delete(&app, &bob_path).await;
    again.expect_error(404, "member_not_found");
}

#[actix_web::test]
async fn the_last_owner_hands_over_before_leaving_and_a_leaver_hears_no_more() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let room = alice.create_room(&app, "team", &[&bob]).await;
    let alice_path = format!("{}/members/{}", rp(&room), alice.id);
    let bob_path = format!("{}/members/{}", rp(&room), bob.id);
    let mut alice_ws = alice.socket(&app, None).await;
    let mut bob_ws = bob.socket(&app, None).await;
    let role = |r: &str| json!({ "role": r });

    // Act
    let leave = alice.delete(&app, &alice_path).await;
    let step_down = alice.patch(&app, &alice_path, &role("member")).await;
    let bad_role = alice.patch(&app, &bob_path, &role("king")).await;
    let handover = alice.patch(&app, &bob_path, &role("owner")).await;
    let leave_after = alice.delete(&app, &alice_path).await;
    let again = alice.delete(&app, &alice_path).await;

    // Assert
    leave.expect_error(409, "last_owner");
    step_down.expect_error(409, "last_owner");
    bad_role.expect_error(422, "validation_failed");
    let handover = handover.expect(200);
    assert_eq!(handover["role"], "owner");
    leave_after.expect(204);
    again.expect_error(404, "room_not_found");
    for ws in [&mut alice_ws, &mut bob_ws] {
        let updated = expect_event(ws, "member.updated").await;
        assert_eq!(updated["id"], handover["event_id"]);
        assert_eq!(updated["data"]["user_id"], bob.id.as_str());
        assert_eq!(updated["data"]["role"], "owner");
        let left = expect_event(ws, "member.left").await;
        assert_eq!(left["data"]["user_id"], alice.id.as_str());
        assert_eq!(left["data"]["by"], Value::Null, "left by herself");
    }
    let seen = bob.get(&app, &rp(&room)).await.expect(200);
    assert_eq!(roster(&seen), ["bob:owner"]);
    send(&app, &bob, &room, "alone").await;
    alice_ws.expect_silence(500).await;
    let gone = alice.get(&app, &rp(&room)).await;
    gone.expect_error(404, "room_not_found");
    bob.delete(&app, &bob_path).await.expect(204);
}

#[actix_web::test]
async fn roles_decide_who_may_rename_add_remove_and_promote() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let (carol, dave) = (app.register("carol").await, app.register("dave").await);
    let erin = app.register("erin").await;
    let room = alice
        .create_room(&app, "team", &[&bob, &carol, &dave])
        .await;
    let member = |u: &TestUser| format!("{}/members/{}", rp(&room), u.id);
    let (admin, add_erin) = (json!({ "role": "admin" }), json!({ "user_id": erin.id }));
    let (none, adds) = (json!({}), format!("{}/members", rp(&room)));
    alice.patch(&app, &member(&bob), &admin).await.expect(200);
    let cases = [
        // a plain member may do none of it
        (&carol, "PATCH", rp(&room), json!({ "name": "c" }), 403),
        (&carol, "POST", adds.clone(), add_erin.clone(), 403),
        (&carol, "DELETE", member(&dave), none.clone(), 403),
        (&carol, "PATCH", member(&carol), admin.clone(), 403),
        // an admin renames, adds and removes members, but not owners, nor roles
        (&bob, "PATCH", rp(&room), json!({ "name": "b" }), 200),
        (&bob, "POST", adds, add_erin, 201),
        (&bob, "DELETE", member(&dave), none.clone(), 204),
        (&bob, "DELETE", member(&alice), none.clone(), 403),
        (&bob, "PATCH", member(&carol), admin, 403),
        // the owner removes an admin
        (&alice, "DELETE", member(&bob), none, 204),
    ];

    for (who, method, path, body, status) in cases {
        // Act
        let resp = call(&app, who, method, &path, &body).await;

        // Assert
        let what = format!("{} {method} {path}", who.username);
        assert_eq!(resp.status, status, "{what}: {}", resp.body);
        if status == 403 {
            resp.expect_error(403, "forbidden");
        }
    }
    let seen = alice.get(&app, &rp(&room)).await.expect(200);
    assert_eq!(
        roster(&seen),
        ["alice:owner", "carol:member", "erin:member"]
    );
    assert_eq!(seen["name"], "b");
}

#[actix_web::test]
async fn edits_deletes_and_reactions_reach_members_and_show_in_history() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let room = alice.create_room(&app, "team", &[&bob]).await;
    let sent = send(&app, &alice, &room, "helo").await;
    let (msg, thumbs) = (
        mp(&room, &sent),
        format!("{}/reactions/{THUMBS}", mp(&room, &sent)),
    );
    let room_id = room["id"].as_str().unwrap();
    let mut bob_ws = bob.socket(&app, None).await;

    // Act + Assert: only the author edits
    let by_other = bob.patch(&app, &msg, &json!({ "body": "mine" })).await;
    by_other.expect_error(403, "forbidden");
    let edited = alice.patch(&app, &msg, &json!({ "body": "hello" })).await;
    let edited = edited.expect(200);
    assert_eq!(edited["message"]["body"], "hello");
    assert!(edited["message"]["edited_at"].is_string());
    let frame = expect_event(&mut bob_ws, "message.updated").await;
    assert_eq!(frame["id"], edited["event_id"]);
    assert_eq!(frame["data"]["body"], "hello");

    // Act + Assert: reactions, idempotent, counted in history
    for user in [&bob, &bob, &alice] {
        user.put(&app, &thumbs).await.expect(204);
    }
    for user in [&bob, &alice] {
        let added = expect_event(&mut bob_ws, "reaction.added").await;
        assert_eq!(added["data"]["emoji"], "👍");
        assert_eq!(added["data"]["user_id"], user.id.as_str());
        assert_eq!(added["data"]["message_id"], sent["message"]["id"]);
    }
    bob_ws.expect_silence(300).await;
    let reactions = &bob.history(&app, room_id, "").await["messages"][0]["reactions"];
    let want = json!([{ "emoji": "👍", "count": 2, "user_ids": [bob.id, alice.id] }]);
    assert_eq!(reactions, &want);
    bob.delete(&app, &thumbs).await.expect(204);
    bob.delete(&app, &thumbs).await.expect(204);
    let removed = expect_event(&mut bob_ws, "reaction.removed").await;
    assert_eq!(removed["data"]["user_id"], bob.id.as_str());
    bob_ws.expect_silence(300).await;

    // Act + Assert: delete leaves a tombstone, once
    bob.delete(&app, &msg).await.expect_error(403, "forbidden");
    alice.delete(&app, &msg).await.expect(204);
    alice.delete(&app, &msg).await.expect(204);
    let deleted = expect_event(&mut bob_ws, "message.deleted").await;
    assert_eq!(deleted["data"]["body"], Value::Null);
    assert!(deleted["data"]["deleted_at"].is_string());
    bob_ws.expect_silence(300).await;
    let after = bob.history(&app, room_id, "").await;
    assert_eq!(after["messages"][0]["id"], sent["message"]["id"]);
    assert_eq!(after["messages"][0]["body"], Value::Null);
    assert!(!after.to_string().contains("hello"), "no body: {after}");
    let edit = alice.patch(&app, &msg, &json!({ "body": "again" })).await;
    edit.expect_error(409, "message_deleted");
    let unknown = format!("{}/messages/{}", rp(&room), uuid::Uuid::new_v4());
    let edit = alice.patch(&app, &unknown, &json!({ "body": "x" })).await;
    edit.expect_error(404, "message_not_found");
    let delete = alice.delete(&app, &unknown).await;
    delete.expect_error(404, "message_not_found");

    // Act + Assert: the owner may delete someone else's message
    let bobs = send(&app, &bob, &room, "bob's").await;
    alice.delete(&app, &mp(&room, &bobs)).await.expect(204);
}

#[actix_web::test]
async fn read_markers_move_forward_and_unread_counts_skip_own_and_deleted_messages() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let room = alice.create_room(&app, "team", &[&bob]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut sent = Vec::new();
    for body in ["one", "two", "three"] {
        sent.push(send(&app, &bob, &room, body).await);
    }
    send(&app, &alice, &room, "mine").await;
    let read = format!("{}/read", rp(&room));
    let at = |i: usize| json!({ "message_id": sent[i]["message"]["id"] });
    let before = unread(&app, &alice, room_id).await;

    // Act
    let marked = alice.post(&app, &read, &at(1)).await;
    let back = alice.post(&app, &read, &at(0)).await;
    bob.delete(&app, &mp(&room, &sent[2])).await.expect(204);

    // Assert
    assert_eq!(before, 3, "own messages never count");
    let marked = marked.expect(200);
    assert_eq!(marked["room_id"], room_id);
    assert_eq!(marked["message_id"], sent[1]["message"]["id"]);
    assert_eq!(marked["unread_count"], 1);
    assert!(marked["event_id"].is_string());
    let back = back.expect(200);
    assert!(
        back.get("event_id").is_none(),
        "a marker never moves back: {back}"
    );
    assert_eq!(
        unread(&app, &alice, room_id).await,
        0,
        "deleted messages don't count"
    );
    assert_eq!(
        unread(&app, &bob, room_id).await,
        1,
        "alice's message, for bob"
    );
    assert_eq!(
        bob.get(&app, &rp(&room)).await.expect(200)["unread_count"],
        1
    );
}

#[actix_web::test]
async fn unread_counts_stay_exact_under_concurrent_sends_and_reads() {
    // Arrange
    let app = TestApp::spawn().await;
    let reader = app.register("reader").await;
    let mut senders = Vec::new();
    for name in ["sender1", "sender2", "sender3"] {
        senders.push(app.register(name).await);
    }
    let everyone: Vec<&TestUser> = senders.iter().collect();
    let room = reader.create_room(&app, "busy", &everyone).await;
    let room_id = room["id"].as_str().unwrap();

    // Act: 3 senders × 10 messages and the reader's own 5, while the reader marks read midway
    let plan = senders.iter().map(|u| (u, 10)).chain([(&reader, 5)]);
    let shared = &app;
    let sends = plan.map(|(u, n)| async move {
        for i in 0..n {
            let body = format!("{} {i}", u.username);
            u.send_message(shared, room_id, &body).await;
        }
    });
    let marking = async {
        loop {
            let page = reader.history(&app, room_id, "limit=100").await;
            if let Some(seen) = page["messages"].as_array().filter(|m| m.len() >= 15) {
                let body = json!({ "message_id": seen[14]["id"] });
                let read = format!("{}/read", rp(&room));
                return reader.post(&app, &read, &body).await;
            }
            actix_rt::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    };
    let (_, marked) = futures_util::join!(futures_util::future::join_all(sends), marking);

    // Assert
    let marked = marked.expect(200);
    let page = reader.history(&app, room_id, "limit=100").await;
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 35);
    let at = messages
        .iter()
        .position(|m| m["id"] == marked["message_id"])
        .unwrap();
    assert!(at + 1 < messages.len(), "the mark landed midway");
    let by_others = |m: &&Value| m["author_id"] != reader.id.as_str();
    let expected = messages[at + 1..].iter().filter(by_others).count();
    assert_eq!(unread(&app, &reader, room_id).await, expected as i64);
    for sender in &senders {
        let own = messages
            .iter()
            .filter(|m| m["author_id"] == sender.id.as_str());
        assert_eq!(unread(&app, sender, room_id).await, 35 - own.count() as i64);
    }
}
