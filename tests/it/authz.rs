//! The authorization matrix: outsiders, removed members and blocked users get the documented error and hear nothing.

use serde_json::{json, Value};

use crate::harness::{Resp, Socket, TestApp, TestUser};

/// The next event on `ws`, which must be `name`.
async fn expect_event(ws: &mut Socket, name: &str) -> Value {
    let frame = ws.next_event().await;
    assert_eq!(frame["event"], name, "unexpected event: {frame}");
    frame
}

/// One request of the matrix, sent by `user`.
async fn call(app: &TestApp, user: &TestUser, method: &str, path: &str, body: &Value) -> Resp {
    match method {
        "GET" => user.get(app, path).await,
        "POST" => user.post(app, path, body).await,
        "PATCH" => user.patch(app, path, body).await,
        "PUT" => user.put(app, path).await,
        "DELETE" => user.delete(app, path).await,
        other => panic!("no such method in the matrix: {other}"),
    }
}

/// Every room endpoint, aimed at `room` and its message `message` (member: `member`, newcomer: `newcomer`).
fn room_endpoints(
    room: &str,
    message: &str,
    member: &str,
    newcomer: &str,
) -> Vec<(&'static str, String, Value)> {
    let r = format!("/api/v1/rooms/{room}");
    let m = format!("{r}/messages/{message}");
    let none = json!({});
    vec![
        ("GET", r.clone(), none.clone()),
        ("PATCH", r.clone(), json!({ "name": "taken over" })),
        (
            "POST",
            format!("{r}/messages"),
            json!({ "body": "let me in" }),
        ),
        ("GET", format!("{r}/messages"), none.clone()),
        ("PATCH", m.clone(), json!({ "body": "rewritten" })),
        ("DELETE", m.clone(), none.clone()),
        ("PUT", format!("{m}/reactions/%F0%9F%91%8D"), none.clone()),
        (
            "DELETE",
            format!("{m}/reactions/%F0%9F%91%8D"),
            none.clone(),
        ),
        (
            "POST",
            format!("{r}/members"),
            json!({ "user_id": newcomer }),
        ),
        ("DELETE", format!("{r}/members/{member}"), none.clone()),
        (
            "PATCH",
            format!("{r}/members/{member}"),
            json!({ "role": "admin" }),
        ),
        (
            "POST",
            format!("{r}/read"),
            json!({ "message_id": message }),
        ),
    ]
}

#[actix_web::test]
async fn outsiders_and_removed_members_get_404_everywhere_and_hear_nothing() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let erin = app.register("erin").await;
    let room = alice
        .create_room(&app, "inner circle", &[&bob, &carol])
        .await;
    let room_id = room["id"].as_str().unwrap();
    let sent = alice.send_message(&app, room_id, "secret").await;
    let message_id = sent["message"]["id"].as_str().unwrap();
    alice
        .put(
            &app,
            &format!("/api/v1/rooms/{room_id}/messages/{message_id}/reactions/%F0%9F%91%8D"),
        )
        .await
        .expect(204);
    let carol_path = format!("/api/v1/rooms/{room_id}/members/{}", carol.id);
    alice.delete(&app, &carol_path).await.expect(204);
    let mut carol_ws = carol.socket(&app, None).await;
    let mut dave_ws = dave.socket(&app, None).await;
    let mut bob_ws = bob.socket(&app, None).await;

    // Act + Assert: every endpoint, for the removed member and the outsider
    for outsider in [&carol, &dave] {
        for (method, path, body) in room_endpoints(room_id, message_id, &bob.id, &erin.id) {
            let resp = call(&app, outsider, method, &path, &body).await;
            assert_eq!(
                resp.status, 404,
                "{} {method} {path}: {}",
                outsider.username, resp.body
            );
            resp.expect_error(404, "room_not_found");
        }
    }

    // Assert: nothing changed, and nobody heard of the attempts
    bob_ws.expect_silence(300).await;
    let seen = bob
        .get(&app, &format!("/api/v1/rooms/{room_id}"))
        .await
        .expect(200);
    assert_eq!(seen["name"], "inner circle");
    assert_eq!(seen["members"].as_array().unwrap().len(), 2);
    let history = bob.history(&app, room_id, "").await;
    assert_eq!(history["messages"].as_array().unwrap().len(), 1);
    assert_eq!(history["messages"][0]["body"], "secret");
    assert_eq!(history["messages"][0]["reactions"][0]["count"], 1);

    // Act: the members live on in the room
    let rp = format!("/api/v1/rooms/{room_id}");
    let mp = format!("{rp}/messages/{message_id}");
    alice
        .patch(&app, &rp, &json!({ "name": "renamed" }))
        .await
        .expect(200);
    let next = alice.send_message(&app, room_id, "more secrets").await;
    alice
        .patch(&app, &mp, &json!({ "body": "edited" }))
        .await
        .expect(200);
    bob.put(&app, &format!("{mp}/reactions/%F0%9F%8E%89"))
        .await
        .expect(204);
    alice
        .post(
            &app,
            &format!("{rp}/members"),
            &json!({ "user_id": erin.id }),
        )
        .await
        .expect(201);
    alice
        .patch(
            &app,
            &format!("{rp}/members/{}", bob.id),
            &json!({ "role": "admin" }),
        )
        .await
        .expect(200);
    alice.delete(&app, &mp).await.expect(204);
    let read = json!({ "message_id": next["message"]["id"] });
    bob.post(&app, &format!("{rp}/read"), &read)
        .await
        .expect(200);
    alice
        .patch(&app, "/api/v1/me", &json!({ "display_name": "Alice" }))
        .await
        .expect(200);

    // Assert: a member hears all of it; the others hear nothing
    let expected = [
        "room.updated",
        "message.created",
        "message.updated",
        "reaction.added",
        "member.joined",
        "member.updated",
        "message.deleted",
        "read.updated",
        "user.updated",
    ];
    for name in expected {
        expect_event(&mut bob_ws, name).await;
    }
    carol_ws.expect_silence(700).await;
    dave_ws.expect_silence(100).await;
    let mut replay = carol
        .socket(&app, Some(room["event_id"].as_str().unwrap()))
        .await;
    let frames = crate_frames(&mut replay).await;
    let names: Vec<&str> = frames
        .iter()
        .map(|f| f["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["message.created", "reaction.added", "member.left"],
        "carol's resume ends at her removal"
    );
}

/// Every frame until 500 ms pass without one.
async fn crate_frames(ws: &mut Socket) -> Vec<Value> {
    let mut frames = Vec::new();
    while let crate::harness::Recv::Frame(v) = ws.recv(std::time::Duration::from_millis(500)).await
    {
        frames.push(v);
    }
    frames
}

#[actix_web::test]
async fn a_blocked_user_gets_403_blocked_in_the_dm_and_nothing_leaks_to_them() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let dm = alice
        .post(&app, "/api/v1/dms", &json!({ "user_id": bob.id }))
        .await;
    let dm_id = dm.expect(201)["id"].as_str().unwrap().to_owned();
    let mine = |sent: &Value| {
        format!(
            "/api/v1/rooms/{dm_id}/messages/{}",
            sent["message"]["id"].as_str().unwrap()
        )
    };
    let bobs = mine(&bob.send_message(&app, &dm_id, "hi").await);
    let alices = mine(&alice.send_message(&app, &dm_id, "hello").await);
    let group = alice.create_room(&app, "shared", &[&bob]).await;
    let group_id = group["id"].as_str().unwrap();
    alice
        .put(&app, &format!("/api/v1/blocks/{}", bob.id))
        .await
        .expect(204);
    let mut alice_ws = alice.socket(&app, None).await;
    let mut bob_ws = bob.socket(&app, None).await;
    let (send, edit) = (json!({ "body": "why?" }), json!({ "body": "edited" }));
    let dm_messages = format!("/api/v1/rooms/{dm_id}/messages");
    let (to_alice, none) = (json!({ "user_id": alice.id }), json!({}));
    let cases = [
        (&bob, "POST", dm_messages.clone(), send.clone()),
        (&alice, "POST", dm_messages, send),
        (&bob, "PATCH", bobs.clone(), edit.clone()),
        (&alice, "PATCH", alices.clone(), edit),
        (
            &bob,
            "PUT",
            format!("{alices}/reactions/%F0%9F%91%8D"),
            none.clone(),
        ),
        (
            &alice,
            "PUT",
            format!("{bobs}/reactions/%F0%9F%91%8D"),
            none,
        ),
        (&bob, "POST", "/api/v1/dms".to_owned(), to_alice.clone()),
        (
            &bob,
            "POST",
            "/api/v1/friends/requests".to_owned(),
            to_alice,
        ),
    ];

    for (who, method, path, body) in cases {
        // Act
        let resp = call(&app, who, method, &path, &body).await;

        // Assert
        let what = format!("{} {method} {path}", who.username);
        assert_eq!(resp.status, 403, "{what}: {}", resp.body);
        resp.expect_error(403, "blocked");
    }
    let group_send = bob.send_message(&app, group_id, "in the group").await;
    let frame = expect_event(&mut alice_ws, "message.created").await;
    assert_eq!(
        frame["id"], group_send["event_id"],
        "group rooms are unaffected"
    );
    let own = expect_event(&mut bob_ws, "message.created").await;
    assert_eq!(own["room_id"], group_id);
    bob_ws.expect_silence(500).await;
    alice_ws.expect_silence(100).await;
    let history = alice.history(&app, &dm_id, "").await;
    let bodies: Vec<&Value> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["body"])
        .collect();
    assert_eq!(
        bodies,
        [&json!("hi"), &json!("hello")],
        "nothing changed in the DM"
    );
    // Retracting one's own message stays possible after a block.
    call(&app, &bob, "DELETE", &bobs, &json!({}))
        .await
        .expect(204);
}

#[actix_web::test]
async fn read_updated_reaches_the_readers_other_sessions_and_no_other_member() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let room = alice.create_room(&app, "team", &[&bob]).await;
    let room_id = room["id"].as_str().unwrap();
    let sent = bob.send_message(&app, room_id, "read me").await;
    let phone = alice.second_session(&app).await;
    let mut phone_ws = phone.socket(&app, None).await;
    let mut bob_ws = bob.socket(&app, None).await;

    // Act
    let path = format!("/api/v1/rooms/{room_id}/read");
    let marked = alice
        .post(&app, &path, &json!({ "message_id": sent["message"]["id"] }))
        .await;

    // Assert
    let marked = marked.expect(200);
    let frame = expect_event(&mut phone_ws, "read.updated").await;
    assert_eq!(frame["id"], marked["event_id"]);
    assert_eq!(frame["data"]["room_id"], room_id);
    assert_eq!(frame["data"]["message_id"], sent["message"]["id"]);
    assert_eq!(frame["data"]["unread_count"], 0);
    bob_ws.expect_silence(500).await;
    let rooms = phone.get(&app, "/api/v1/rooms").await.expect(200);
    assert_eq!(rooms["rooms"][0]["unread_count"], 0);
}

#[actix_web::test]
async fn a_reply_cannot_reach_into_another_room() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let here = alice.create_room(&app, "here", &[]).await;
    let here_id = here["id"].as_str().unwrap();
    let local = alice.send_message(&app, here_id, "local").await;
    let theirs = bob.create_room(&app, "bob's own", &[]).await;
    let far = bob
        .send_message(&app, theirs["id"].as_str().unwrap(), "far")
        .await;
    let path = format!("/api/v1/rooms/{here_id}/messages");
    let reply = |to: &Value| json!({ "body": "re", "reply_to": to });

    // Act
    let across = alice.post(&app, &path, &reply(&far["message"]["id"])).await;
    let unknown = json!(uuid::Uuid::new_v4().to_string());
    let nowhere = alice.post(&app, &path, &reply(&unknown)).await;
    let local_reply = alice
        .post(&app, &path, &reply(&local["message"]["id"]))
        .await;

    // Assert
    for resp in [across, nowhere] {
        let err = resp.expect_error(422, "validation_failed");
        assert!(err["fields"]["reply_to"].is_string(), "{err}");
    }
    let local_reply = local_reply.expect(201);
    assert_eq!(local_reply["message"]["reply_to"], local["message"]["id"]);
    let history = alice.history(&app, here_id, "").await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        2,
        "nothing else sent"
    );
    assert_eq!(
        history["messages"][1]["reply_to"], local["message"]["id"],
        "the reply is stored with its parent"
    );
}
