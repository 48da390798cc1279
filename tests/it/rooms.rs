//! Rooms: group creation and its `room.created` events, visibility to non-members, DMs, and the rooms list.

use serde_json::{json, Value};

use crate::harness::TestApp;

fn member_ids(room: &Value) -> Vec<String> {
    let mut ids: Vec<String> = room["members"]
        .as_array()
        .expect("members array")
        .iter()
        .map(|m| m["id"].as_str().expect("member id").to_owned())
        .collect();
    ids.sort();
    ids
}

#[actix_web::test]
async fn creating_a_group_room_notifies_every_initial_member_and_nobody_else() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let dave = app.register("dave").await;
    let mut alice_ws = alice.socket(&app, None).await;
    let mut bob_ws = bob.socket(&app, None).await;
    let mut dave_ws = dave.socket(&app, None).await;

    // Act
    let ids = [bob.id.as_str()];
    let resp = alice
        .post(
            &app,
            "/api/v1/rooms",
            &json!({ "name": "General", "member_ids": ids }),
        )
        .await;

    // Assert
    let room = resp.expect(201);
    assert_eq!(room["kind"], "group");
    assert_eq!(room["name"], "General");
    assert_eq!(room["created_by"], alice.id.as_str());
    assert!(room["created_at"].is_string());
    assert_eq!(room["last_message"], Value::Null);
    let mut expected = vec![alice.id.clone(), bob.id.clone()];
    expected.sort();
    assert_eq!(member_ids(&room), expected);
    let event_id = room["event_id"].as_str().expect("event_id");

    for ws in [&mut alice_ws, &mut bob_ws] {
        let frame = ws.next_event().await;
        assert_eq!(frame["event"], "room.created");
        assert_eq!(frame["id"], event_id);
        assert_eq!(frame["room_id"], room["id"]);
        assert_eq!(frame["data"]["id"], room["id"]);
        assert_eq!(frame["data"]["name"], "General");
        assert_eq!(member_ids(&frame["data"]), expected);
    }
    dave_ws.expect_silence(500).await;
    let fetched = alice
        .get(
            &app,
            &format!("/api/v1/rooms/{}", room["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(member_ids(&fetched.expect(200)), expected);
}

#[actix_web::test]
async fn invalid_room_creation_is_422_with_fields_and_creates_nothing() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let cases = [
        (json!({ "name": "", "member_ids": [] }), "name"),
        (json!({ "name": "   ", "member_ids": [] }), "name"),
        (json!({ "name": "n".repeat(101), "member_ids": [] }), "name"),
        (
            json!({ "name": "ok", "member_ids": [unknown] }),
            "member_ids",
        ),
    ];

    for (body, field) in &cases {
        // Act
        let resp = alice.post(&app, "/api/v1/rooms", body).await;

        // Assert
        let err = resp.expect_error(422, "validation_failed");
        assert!(
            err["fields"][field].is_string(),
            "fields.{field} for {body}: {err}"
        );
    }
    let rooms = alice.get(&app, "/api/v1/rooms").await.expect(200);
    assert_eq!(rooms["rooms"], json!([]), "nothing was created");
    let max = alice.create_room(&app, &"n".repeat(100), &[]).await;
    assert_eq!(max["name"].as_str().unwrap().len(), 100);
}

#[actix_web::test]
async fn a_non_member_gets_404_everywhere_and_no_events_of_the_room() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let dave = app.register("dave").await;
    let room = alice.create_room(&app, "secret", &[&bob]).await;
    let room_id = room["id"].as_str().unwrap();
    let mut alice_ws = alice.socket(&app, room["event_id"].as_str()).await;
    let mut dave_ws = dave.socket(&app, None).await;
    let unknown = uuid::Uuid::new_v4().to_string();

    // Act
    let get_room = dave.get(&app, &format!("/api/v1/rooms/{room_id}")).await;
    let get_msgs = dave
        .get(&app, &format!("/api/v1/rooms/{room_id}/messages"))
        .await;
    let post_msg = dave
        .post(
            &app,
            &format!("/api/v1/rooms/{room_id}/messages"),
            &json!({ "body": "let me in" }),
        )
        .await;
    let get_unknown = dave.get(&app, &format!("/api/v1/rooms/{unknown}")).await;
    let sent = alice.send_message(&app, room_id, "members only").await;

    // Assert
    get_room.expect_error(404, "room_not_found");
    get_msgs.expect_error(404, "room_not_found");
    post_msg.expect_error(404, "room_not_found");
    get_unknown.expect_error(404, "room_not_found");
    let frame = alice_ws.next_event().await;
    assert_eq!(frame["id"], sent["event_id"]);
    dave_ws.expect_silence(700).await;
    let history = alice.history(&app, room_id, "").await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        1,
        "dave's post wrote nothing"
    );
    let dave_rooms = dave.get(&app, "/api/v1/rooms").await.expect(200);
    assert_eq!(dave_rooms["rooms"], json!([]));
}

#[actix_web::test]
async fn a_dm_is_created_once_and_found_again_from_both_sides() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut bob_ws = bob.socket(&app, None).await;

    // Act
    let first = alice
        .post(&app, "/api/v1/dms", &json!({ "user_id": bob.id }))
        .await;
    let again = alice
        .post(&app, "/api/v1/dms", &json!({ "user_id": bob.id }))
        .await;
    let reverse = bob
        .post(&app, "/api/v1/dms", &json!({ "user_id": alice.id }))
        .await;

    // Assert
    let first = first.expect(201);
    assert_eq!(first["kind"], "direct");
    assert_eq!(first["name"], Value::Null);
    let mut expected = vec![alice.id.clone(), bob.id.clone()];
    expected.sort();
    assert_eq!(member_ids(&first), expected);
    let event_id = first["event_id"].as_str().expect("event_id on creation");
    let again = again.expect(200);
    let reverse = reverse.expect(200);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(reverse["id"], first["id"]);
    assert!(
        again.get("event_id").is_none() || again["event_id"].is_null(),
        "{again}"
    );
    let frame = bob_ws.next_event().await;
    assert_eq!(frame["event"], "room.created");
    assert_eq!(frame["id"], event_id);
    assert_eq!(frame["room_id"], first["id"]);
    bob_ws.expect_silence(300).await;
    let rooms = bob.get(&app, "/api/v1/rooms").await.expect(200);
    assert_eq!(
        rooms["rooms"].as_array().unwrap().len(),
        1,
        "one DM: {rooms}"
    );
}

#[actix_web::test]
async fn a_dm_with_yourself_or_an_unknown_user_is_refused() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let unknown = uuid::Uuid::new_v4().to_string();

    // Act
    let to_self = alice
        .post(&app, "/api/v1/dms", &json!({ "user_id": alice.id }))
        .await;
    let to_unknown = alice
        .post(&app, "/api/v1/dms", &json!({ "user_id": unknown }))
        .await;

    // Assert
    to_self.expect_error(422, "validation_failed");
    to_unknown.expect_error(404, "user_not_found");
    let rooms = alice.get(&app, "/api/v1/rooms").await.expect(200);
    assert_eq!(rooms["rooms"], json!([]));
}

#[actix_web::test]
async fn the_rooms_list_is_ordered_by_activity_with_last_message() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let one = alice.create_room(&app, "one", &[&bob]).await;
    let two = alice.create_room(&app, "two", &[]).await;
    let (one_id, two_id) = (one["id"].as_str().unwrap(), two["id"].as_str().unwrap());

    // Act
    let sent = alice.send_message(&app, one_id, "hello one").await;
    let after_one = alice.get(&app, "/api/v1/rooms").await.expect(200);
    alice.send_message(&app, two_id, "hello two").await;
    let after_two = alice.get(&app, "/api/v1/rooms").await.expect(200);
    let bobs = bob.get(&app, "/api/v1/rooms").await.expect(200);

    // Assert
    let rooms = after_one["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 2);
    assert_eq!(rooms[0]["id"], one["id"], "most recent activity first");
    assert_eq!(rooms[0]["last_message"], sent["message"]);
    assert_eq!(rooms[1]["id"], two["id"]);
    assert_eq!(rooms[1]["last_message"], Value::Null);
    let rooms = after_two["rooms"].as_array().unwrap();
    assert_eq!(rooms[0]["id"], two["id"]);
    assert_eq!(rooms[0]["last_message"]["body"], "hello two");
    assert_eq!(rooms[1]["last_message"]["body"], "hello one");
    let bobs = bobs["rooms"].as_array().unwrap();
    assert_eq!(bobs.len(), 1, "bob sees only his rooms");
    assert_eq!(bobs[0]["id"], one["id"]);
    assert_eq!(bobs[0]["last_message"]["body"], "hello one");
}
