//! Friends, blocks, the DM policy, profiles and user search, as the two users involved see them.

use serde_json::{json, Value};

use crate::harness::{Resp, Socket, TestApp, TestUser};

/// The next event on `ws`, which must be `name`.
async fn expect_event(ws: &mut Socket, name: &str) -> Value {
    let frame = ws.next_event().await;
    assert_eq!(frame["event"], name, "unexpected event: {frame}");
    frame
}

/// `from` sends `to` a friend request.
async fn ask(app: &TestApp, from: &TestUser, to: &TestUser) -> Resp {
    let body = json!({ "user_id": to.id });
    from.post(app, "/api/v1/friends/requests", &body).await
}

/// `user` answers request `id` with `what` (`accept` or `decline`).
async fn answer(app: &TestApp, user: &TestUser, id: &Value, what: &str) -> Resp {
    let path = format!("/api/v1/friends/requests/{}/{what}", id.as_str().unwrap());
    user.post(app, &path, &json!({})).await
}

async fn befriend(app: &TestApp, a: &TestUser, b: &TestUser) {
    let request = ask(app, a, b).await.expect(201);
    answer(app, b, &request["id"], "accept").await.expect(200);
}

async fn block(app: &TestApp, who: &TestUser, whom: &TestUser) -> Resp {
    who.put(app, &format!("/api/v1/blocks/{}", whom.id)).await
}

async fn open_dm(app: &TestApp, who: &TestUser, with: &TestUser) -> Resp {
    let body = json!({ "user_id": with.id });
    who.post(app, "/api/v1/dms", &body).await
}

async fn send_in(app: &TestApp, user: &TestUser, room: &str, body: &str) -> Resp {
    let path = format!("/api/v1/rooms/{room}/messages");
    user.post(app, &path, &json!({ "body": body })).await
}

async fn friend_ids(app: &TestApp, user: &TestUser) -> Vec<String> {
    let list = user.get(app, "/api/v1/friends").await.expect(200);
    let friends = list["friends"].as_array().expect("friends array");
    friends
        .iter()
        .map(|f| f["user"]["id"].as_str().expect("friend id").to_owned())
        .collect()
}

/// The sorted `user_ids` of a `friend.accepted`/`friend.removed` frame, and of two users.
fn pair(frame: &Value, a: &TestUser, b: &TestUser) -> (Vec<String>, Vec<String>) {
    let mut got: Vec<String> = serde_json::from_value(frame["data"]["user_ids"].clone()).unwrap();
    let mut want = vec![a.id.clone(), b.id.clone()];
    got.sort();
    want.sort();
    (got, want)
}

#[actix_web::test]
async fn a_request_and_its_acceptance_reach_both_users_and_make_them_friends() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let mut alice_ws = alice.socket(&app, None).await;
    let mut bob_ws = bob.socket(&app, None).await;

    // Act
    let request = ask(&app, &alice, &bob).await.expect(201);
    let lists = bob.get(&app, "/api/v1/friends/requests").await.expect(200);
    let accepted = answer(&app, &bob, &request["id"], "accept").await;

    // Assert
    assert_eq!(request["status"], "pending");
    assert_eq!(request["from"]["id"], alice.id.as_str());
    assert_eq!(request["to"]["id"], bob.id.as_str());
    assert_eq!(lists["incoming"][0]["id"], request["id"]);
    assert_eq!(lists["outgoing"], json!([]));
    let accepted = accepted.expect(200);
    assert_eq!(accepted["user"]["id"], alice.id.as_str());
    assert!(accepted["since"].is_string());
    for ws in [&mut alice_ws, &mut bob_ws] {
        let requested = expect_event(ws, "friend.requested").await;
        assert_eq!(requested["id"], request["event_id"]);
        assert_eq!(requested["data"]["id"], request["id"]);
        let friends = expect_event(ws, "friend.accepted").await;
        assert_eq!(friends["id"], accepted["event_id"]);
        let (got, want) = pair(&friends, &alice, &bob);
        assert_eq!(got, want);
    }
    assert_eq!(friend_ids(&app, &alice).await, [bob.id.as_str()]);
    assert_eq!(friend_ids(&app, &bob).await, [alice.id.as_str()]);
    let left = alice
        .get(&app, "/api/v1/friends/requests")
        .await
        .expect(200);
    assert_eq!(left, json!({ "incoming": [], "outgoing": [] }));
}

#[actix_web::test]
async fn crossing_requests_accept_each_other() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    ask(&app, &alice, &bob).await.expect(201);
    let mut alice_ws = alice.socket(&app, None).await;

    // Act
    let crossing = ask(&app, &bob, &alice).await.expect(200);

    // Assert
    assert_eq!(crossing["status"], "accepted");
    let frame = expect_event(&mut alice_ws, "friend.accepted").await;
    assert_eq!(frame["id"], crossing["event_id"]);
    assert_eq!(friend_ids(&app, &alice).await, [bob.id.as_str()]);
    assert_eq!(friend_ids(&app, &bob).await, [alice.id.as_str()]);
    let lists = bob.get(&app, "/api/v1/friends/requests").await.expect(200);
    assert_eq!(lists, json!({ "incoming": [], "outgoing": [] }));
    let again = ask(&app, &alice, &bob).await.expect(200);
    assert_eq!(again["status"], "accepted", "already friends");
    alice_ws.expect_silence(300).await;
}

#[actix_web::test]
async fn asking_twice_returns_the_same_request_and_bad_targets_are_refused() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let mut bob_ws = bob.socket(&app, None).await;
    let unknown = json!({ "user_id": uuid::Uuid::new_v4().to_string() });

    // Act
    let first = ask(&app, &alice, &bob).await;
    let second = ask(&app, &alice, &bob).await;
    let to_self = ask(&app, &alice, &alice).await;
    let to_nobody = alice.post(&app, "/api/v1/friends/requests", &unknown).await;

    // Assert
    let (first, second) = (first.expect(201), second.expect(200));
    assert_eq!(second["id"], first["id"]);
    assert_eq!(second["status"], "pending");
    assert!(
        second.get("event_id").is_none(),
        "no second event: {second}"
    );
    to_self.expect_error(422, "validation_failed");
    to_nobody.expect_error(404, "user_not_found");
    let lists = bob.get(&app, "/api/v1/friends/requests").await.expect(200);
    assert_eq!(lists["incoming"].as_array().unwrap().len(), 1, "{lists}");
    expect_event(&mut bob_ws, "friend.requested").await;
    bob_ws.expect_silence(300).await;
}

#[actix_web::test]
async fn declining_is_heard_by_the_decliner_only() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let request = ask(&app, &alice, &bob).await.expect(201);
    let mut alice_ws = alice.socket(&app, None).await;
    let mut bob_ws = bob.socket(&app, None).await;

    // Act
    let by_sender = answer(&app, &alice, &request["id"], "decline").await;
    let declined = answer(&app, &bob, &request["id"], "decline").await;

    // Assert
    by_sender.expect_error(404, "friend_request_not_found");
    let declined = declined.expect(200);
    assert_eq!(declined["request_id"], request["id"]);
    assert_eq!(declined["status"], "declined");
    let frame = expect_event(&mut bob_ws, "friend.declined").await;
    assert_eq!(frame["id"], declined["event_id"]);
    alice_ws.expect_silence(500).await;
    let accept = answer(&app, &bob, &request["id"], "accept").await;
    accept.expect_error(404, "friend_request_not_found");
    assert!(friend_ids(&app, &alice).await.is_empty());
}

#[actix_web::test]
async fn cancelling_a_request_tells_both_and_leaves_nothing_to_accept() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let request = ask(&app, &alice, &bob).await.expect(201);
    let path = format!(
        "/api/v1/friends/requests/{}",
        request["id"].as_str().unwrap()
    );
    let mut alice_ws = alice.socket(&app, None).await;
    let mut bob_ws = bob.socket(&app, None).await;

    // Act
    let by_recipient = bob.delete(&app, &path).await;
    let cancelled = alice.delete(&app, &path).await;

    // Assert
    by_recipient.expect_error(404, "friend_request_not_found");
    cancelled.expect(204);
    for ws in [&mut alice_ws, &mut bob_ws] {
        let frame = expect_event(ws, "friend.cancelled").await;
        assert_eq!(frame["data"]["request_id"], request["id"]);
    }
    let accept = answer(&app, &bob, &request["id"], "accept").await;
    accept.expect_error(404, "friend_request_not_found");
    let lists = bob.get(&app, "/api/v1/friends/requests").await.expect(200);
    assert_eq!(lists, json!({ "incoming": [], "outgoing": [] }));
}

#[actix_web::test]
async fn unfriending_ends_the_friendship_for_both_once() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    befriend(&app, &alice, &bob).await;
    let mut alice_ws = alice.socket(&app, None).await;
    let mut bob_ws = bob.socket(&app, None).await;
    let path = format!("/api/v1/friends/{}", bob.id);

    // Act
    let first = alice.delete(&app, &path).await;
    let second = alice.delete(&app, &path).await;

    // Assert
    first.expect(204);
    second.expect(204);
    for ws in [&mut alice_ws, &mut bob_ws] {
        let frame = expect_event(ws, "friend.removed").await;
        let (got, want) = pair(&frame, &alice, &bob);
        assert_eq!(got, want);
        ws.expect_silence(300).await;
    }
    assert!(friend_ids(&app, &alice).await.is_empty());
    assert!(friend_ids(&app, &bob).await.is_empty());
}

#[actix_web::test]
async fn a_block_stops_dms_and_requests_both_ways_until_lifted() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    befriend(&app, &alice, &bob).await;
    let dm = open_dm(&app, &alice, &bob).await.expect(201);
    let dm_id = dm["id"].as_str().unwrap();
    let group = alice.create_room(&app, "both", &[&bob]).await;
    send_in(&app, &bob, dm_id, "hi").await.expect(201);

    // Act
    block(&app, &alice, &bob).await.expect(204);

    // Assert
    for (me, other) in [(&alice, &bob), (&bob, &alice)] {
        open_dm(&app, me, other).await.expect_error(403, "blocked");
        ask(&app, me, other).await.expect_error(403, "blocked");
        let dm_send = send_in(&app, me, dm_id, "still there?").await;
        dm_send.expect_error(403, "blocked");
        let group_send = send_in(&app, me, group["id"].as_str().unwrap(), "unaffected").await;
        group_send.expect(201);
        assert!(friend_ids(&app, me).await.is_empty(), "friendship ended");
    }
    let blocks = alice.get(&app, "/api/v1/blocks").await.expect(200);
    assert_eq!(blocks["blocks"][0]["user"]["id"], bob.id.as_str());
    assert_eq!(blocks["blocks"].as_array().unwrap().len(), 1);
    let theirs = bob.get(&app, "/api/v1/blocks").await.expect(200);
    assert_eq!(theirs["blocks"], json!([]));
    let history = bob.history(&app, dm_id, "").await;
    assert_eq!(
        history["messages"].as_array().unwrap().len(),
        1,
        "nothing got through"
    );

    // Act: lift it
    let path = format!("/api/v1/blocks/{}", bob.id);
    alice.delete(&app, &path).await.expect(204);

    // Assert
    send_in(&app, &bob, dm_id, "back").await.expect(201);
    send_in(&app, &alice, dm_id, "welcome back")
        .await
        .expect(201);
    assert_eq!(open_dm(&app, &bob, &alice).await.expect(200)["id"], dm_id);
    let empty = alice.get(&app, "/api/v1/blocks").await.expect(200);
    assert_eq!(empty["blocks"], json!([]));
}

#[actix_web::test]
async fn the_blocked_user_is_told_nothing_but_the_error() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let carol = app.register("carol").await;
    befriend(&app, &alice, &bob).await;
    ask(&app, &carol, &alice).await.expect(201);
    let mut alice_ws = alice.socket(&app, None).await;
    let mut bob_ws = bob.socket(&app, None).await;
    let mut carol_ws = carol.socket(&app, None).await;

    // Act
    let self_block = block(&app, &alice, &alice).await;
    for user in [&bob, &carol, &bob] {
        block(&app, &alice, user).await.expect(204);
    }

    // Assert
    self_block.expect_error(422, "validation_failed");
    let removed = expect_event(&mut bob_ws, "friend.removed").await;
    assert!(!removed["data"].to_string().contains("block"), "{removed}");
    bob_ws.expect_silence(500).await;
    // Carol's pending request ends quietly: only the blocker hears of it.
    carol_ws.expect_silence(300).await;
    expect_event(&mut alice_ws, "friend.removed").await;
    let cancelled = expect_event(&mut alice_ws, "friend.cancelled").await;
    assert_eq!(cancelled["data"]["from_user_id"], carol.id.as_str());
    alice_ws.expect_silence(300).await;
    for user in [&alice, &carol] {
        let lists = user.get(&app, "/api/v1/friends/requests").await;
        assert_eq!(lists.expect(200), json!({ "incoming": [], "outgoing": [] }));
    }
    let blocks = alice.get(&app, "/api/v1/blocks").await.expect(200);
    assert_eq!(blocks["blocks"].as_array().unwrap().len(), 2, "idempotent");
}

#[actix_web::test]
async fn with_the_friends_dm_policy_only_friends_open_a_dm() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_DM_POLICY", "friends")
        .spawn()
        .await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);

    // Act
    let stranger = open_dm(&app, &alice, &bob).await;
    befriend(&app, &alice, &bob).await;
    let friend = open_dm(&app, &alice, &bob).await;

    // Assert
    stranger.expect_error(403, "not_friends");
    assert_eq!(friend.expect(201)["kind"], "direct");
}

#[actix_web::test]
async fn a_profile_update_reaches_friends_and_co_members_but_not_strangers() {
    // Arrange
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("alice").await, app.register("bob").await);
    let (carol, dave) = (app.register("carol").await, app.register("dave").await);
    befriend(&app, &alice, &bob).await;
    alice.create_room(&app, "with carol", &[&carol]).await;
    let mut told = Vec::new();
    for user in [&alice, &bob, &carol] {
        told.push(user.socket(&app, None).await);
    }
    let mut dave_ws = dave.socket(&app, None).await;

    // Act
    let name = json!({ "display_name": "Alice Liddell" });
    let updated = alice.patch(&app, "/api/v1/me", &name).await;
    let invalid = alice
        .patch(&app, "/api/v1/me", &json!({ "display_name": "" }))
        .await;

    // Assert
    let updated = updated.expect(200);
    assert_eq!(updated["id"], alice.id.as_str());
    assert_eq!(updated["display_name"], "Alice Liddell");
    assert_eq!(updated["username"], "alice");
    invalid.expect_error(422, "validation_failed");
    for ws in &mut told {
        let frame = expect_event(ws, "user.updated").await;
        assert_eq!(frame["data"]["user"]["id"], alice.id.as_str());
        assert_eq!(frame["data"]["user"]["display_name"], "Alice Liddell");
    }
    dave_ws.expect_silence(500).await;
    alice
        .patch(&app, "/api/v1/me", &json!({}))
        .await
        .expect(200);
    told[0].expect_silence(300).await; // nothing changed, nothing to tell
    let seen = dave.get(&app, &format!("/api/v1/users/{}", alice.id)).await;
    assert_eq!(seen.expect(200)["display_name"], "Alice Liddell");
    let unknown = format!("/api/v1/users/{}", uuid::Uuid::new_v4());
    dave.get(&app, &unknown)
        .await
        .expect_error(404, "user_not_found");
}

#[actix_web::test]
async fn user_search_pages_through_a_prefix_and_hides_those_who_block_you() {
    // Arrange
    let app = TestApp::spawn().await;
    let me = app.register("searcher").await;
    let expected = ["pat_a", "pat_b", "pat_c", "pat_d", "pat_e"];
    for name in ["pat_e", "pat_a", "pat_c", "pat_b", "pat_d"] {
        app.register(name).await;
    }
    app.register("patxy").await; // `_` is no wildcard
    let hider = app.register("pat_hider").await;
    block(&app, &hider, &me).await.expect(204);

    // Act
    let (mut seen, mut query) = (Vec::new(), "prefix=pat_&limit=2".to_owned());
    for _ in 0..10 {
        let page = me.get(&app, &format!("/api/v1/users?{query}")).await;
        let page = page.expect(200);
        let users = page["users"].as_array().expect("users array");
        assert!(users.len() <= 2, "limit respected: {page}");
        seen.extend(
            users
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_owned()),
        );
        match page["next_after"].as_str() {
            Some(next) => query = format!("prefix=pat_&limit=2&after={next}"),
            None => break,
        }
    }

    // Assert
    assert_eq!(
        seen, expected,
        "every match once, in order, without the blocker"
    );
    let long = format!("prefix={}", "p".repeat(33));
    for query in [
        "",
        "prefix=",
        &long,
        "prefix=pat&limit=0",
        "prefix=pat&limit=51",
    ] {
        let resp = me.get(&app, &format!("/api/v1/users?{query}")).await;
        resp.expect_error(400, "invalid_query");
    }
}
