//! Message search (#19): `GET /api/v1/search/messages` finds words in any script (Korean by the
//! start of a word), only in messages the caller may see now, never a deleted one, an edit by
//! its new text only; pages without duplicates; refuses bad queries; has its own rate limit.
//! Runs on PostgreSQL when HUBBUB_TEST_POSTGRES_URL is set.

use serde_json::{json, Value};

use crate::harness::{send, TestApp, TestUser};

/// `GET /api/v1/search/messages?<query>` for `user`: the 200 body.
async fn search(app: &TestApp, user: &TestUser, query: &str) -> Value {
    user.get(app, &format!("/api/v1/search/messages?{query}"))
        .await
        .expect(200)
}

fn q(text: &str) -> String {
    format!("q={}", urlencode(text))
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The bodies of a page's hits, in order.
fn bodies(page: &Value) -> Vec<String> {
    page["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["body"].as_str().unwrap_or("<null>").to_owned())
        .collect()
}

fn room_id(room: &Value) -> String {
    room["id"].as_str().expect("room id").to_owned()
}

#[actix_web::test]
async fn search_finds_korean_and_english_words_newest_first_with_a_snippet() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = room_id(&alice.create_room(&app, "den", &[&bob]).await);
    alice.send_message(&app, &room, "안녕하세요 여러분").await;
    bob.send_message(&app, &room, "우리는 서울에서 만나요")
        .await;
    alice
        .send_message(&app, &room, "Hello <b>World</b>, hello again")
        .await;
    alice.send_message(&app, &room, "nothing to see").await;

    // Act + Assert: a whole Korean word, its first syllables, a word with a particle attached.
    let page = search(&app, &bob, &q("안녕하세요")).await;
    assert_eq!(bodies(&page), ["안녕하세요 여러분"]);
    assert_eq!(
        bodies(&search(&app, &bob, &q("안녕")).await),
        ["안녕하세요 여러분"]
    );
    let seoul = search(&app, &bob, &q("서울")).await;
    assert_eq!(bodies(&seoul), ["우리는 서울에서 만나요"]);
    // English, case-insensitive; two words must both match.
    let page = search(&app, &bob, &q("HELLO world")).await;
    assert_eq!(bodies(&page), ["Hello <b>World</b>, hello again"]);
    assert_eq!(
        bodies(&search(&app, &bob, &q("hello seoul")).await),
        Vec::<String>::new()
    );
    // The hit is the message as history shows it, plus the snippet as plain-text pieces; the
    // answer fits the OpenAPI document.
    let doc = crate::openapi::document(&app).await;
    crate::openapi::fits(&doc, "get", "/api/v1/search/messages", 200, &page);
    let hit = &page["hits"][0];
    for key in [
        "id",
        "room_id",
        "author_id",
        "created_at",
        "reactions",
        "attachments",
    ] {
        assert!(hit.get(key).is_some(), "{key} in {hit}");
    }
    let snippet = hit["snippet"].as_array().expect("snippet");
    let marked: Vec<&str> = snippet
        .iter()
        .filter(|s| s["hit"] == true)
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert_eq!(marked, ["Hello", "World", "hello"]);
    let text: String = snippet
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello <b>World</b>, hello again", "text, not HTML");
    let marked: Vec<&str> = seoul["hits"][0]["snippet"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["hit"] == true)
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert_eq!(marked, ["서울"]);
    // Newest first.
    alice.send_message(&app, &room, "hello once more").await;
    assert_eq!(
        bodies(&search(&app, &bob, &q("hello")).await),
        ["hello once more", "Hello <b>World</b>, hello again"]
    );
    assert!(search(&app, &bob, &q("hello")).await["next_before"].is_null());
}

#[actix_web::test]
async fn search_never_finds_what_the_caller_cannot_see() {
    // Arrange: carol is in "den" until she is removed; dave is in "attic" only.
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let den = room_id(&alice.create_room(&app, "den", &[&carol]).await);
    let attic = room_id(&alice.create_room(&app, "attic", &[&dave]).await);
    alice.send_message(&app, &den, "secret plans before").await;
    alice.send_message(&app, &attic, "secret attic plans").await;
    assert_eq!(
        bodies(&search(&app, &carol, &q("secret")).await),
        ["secret plans before"]
    );
    alice
        .delete(&app, &format!("/api/v1/rooms/{den}/members/{}", carol.id))
        .await
        .expect(204);
    alice.send_message(&app, &den, "secret plans after").await;

    // Act + Assert: carol, removed, finds nothing of the room (as history: 404 for her);
    // dave finds only his room's message; alice sees both rooms.
    assert_eq!(
        bodies(&search(&app, &carol, &q("secret")).await),
        Vec::<String>::new()
    );
    assert_eq!(
        bodies(&search(&app, &dave, &q("secret")).await),
        ["secret attic plans"]
    );
    assert_eq!(
        search(&app, &alice, &q("secret")).await["hits"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // room_id narrows to one room; a room the caller isn't in is 404.
    assert_eq!(
        bodies(&search(&app, &alice, &format!("{}&room_id={attic}", q("secret"))).await),
        ["secret attic plans"]
    );
    for (user, room) in [(&carol, &den), (&dave, &den)] {
        user.get(
            &app,
            &format!("/api/v1/search/messages?{}&room_id={room}", q("secret")),
        )
        .await
        .expect_error(404, "room_not_found");
    }
    // A cursor from a room the caller can't see is refused, not used.
    let hidden = search(&app, &alice, &format!("{}&room_id={den}", q("secret"))).await;
    let hidden_id = hidden["hits"][0]["id"].as_str().unwrap();
    dave.get(
        &app,
        &format!("/api/v1/search/messages?{}&before={hidden_id}", q("secret")),
    )
    .await
    .expect_error(400, "invalid_cursor");
}

#[actix_web::test]
async fn deleted_messages_and_erased_accounts_are_never_found_and_edits_by_their_new_text_only() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let room = room_id(&alice.create_room(&app, "den", &[&bob]).await);
    let gone = alice.send_message(&app, &room, "ephemeral pineapple").await;
    let edited = alice.send_message(&app, &room, "original walrus").await;
    bob.send_message(&app, &room, "bob's pineapple walrus")
        .await;

    // Act
    let gone_id = gone["message"]["id"].as_str().unwrap();
    alice
        .delete(&app, &format!("/api/v1/rooms/{room}/messages/{gone_id}"))
        .await
        .expect(204);
    let edited_id = edited["message"]["id"].as_str().unwrap();
    alice
        .patch(
            &app,
            &format!("/api/v1/rooms/{room}/messages/{edited_id}"),
            &json!({ "body": "renamed narwhal" }),
        )
        .await
        .expect(200);

    // Assert
    assert_eq!(
        bodies(&search(&app, &alice, &q("pineapple")).await),
        ["bob's pineapple walrus"]
    );
    assert_eq!(
        bodies(&search(&app, &alice, &q("walrus")).await),
        ["bob's pineapple walrus"],
        "the old text of an edit is not found"
    );
    let page = search(&app, &alice, &q("narwhal")).await;
    assert_eq!(bodies(&page), ["renamed narwhal"]);
    assert!(page["hits"][0]["edited_at"].is_string());

    // Act: bob erases his account; his messages become tombstones.
    let body = json!({ "password": bob.password });
    let resp = send(
        bob.req(app.client.delete(app.url("/api/v1/me"))),
        Some(&body),
    )
    .await;
    assert_eq!(resp.status, 204, "{}", resp.body);

    // Assert
    assert_eq!(
        bodies(&search(&app, &alice, &q("walrus")).await),
        Vec::<String>::new()
    );
    assert_eq!(
        bodies(&search(&app, &alice, &q("pineapple")).await),
        Vec::<String>::new()
    );
}

#[actix_web::test]
async fn search_pages_newest_first_without_duplicates_or_gaps() {
    // Arrange: 7 hits among other messages.
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let room = room_id(&alice.create_room(&app, "den", &[]).await);
    for i in 0..7 {
        alice
            .send_message(&app, &room, &format!("needle {i}"))
            .await;
        alice.send_message(&app, &room, &format!("hay {i}")).await;
    }

    // Act: pages of 3.
    let mut seen = Vec::new();
    let mut query = format!("{}&limit=3", q("needle"));
    let mut pages = 0;
    loop {
        let page = search(&app, &alice, &query).await;
        pages += 1;
        seen.extend(bodies(&page));
        match page["next_before"].as_str() {
            Some(before) => query = format!("{}&limit=3&before={before}", q("needle")),
            None => break,
        }
        assert!(pages < 10, "paging ends");
    }

    // Assert
    let want: Vec<String> = (0..7).rev().map(|i| format!("needle {i}")).collect();
    assert_eq!(seen, want);
    assert_eq!(pages, 3);
}

#[actix_web::test]
async fn bad_queries_are_clear_4xx() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let search_err = |query: String, status: u16, code: &'static str| {
        let alice = &alice;
        let app = &app;
        async move {
            let resp = alice
                .get(app, &format!("/api/v1/search/messages?{query}"))
                .await;
            resp.expect_error(status, code);
            resp
        }
    };
    for query in [
        String::new(),
        "q=".into(),
        q("   "),
        q("a"),
        q("a b ! ?"),
        q(&"x".repeat(101)),
        q("one two three four five six"),
    ] {
        let resp = search_err(query.clone(), 422, "invalid_search_query").await;
        assert!(
            resp.body["error"]["fields"]["q"].is_string(),
            "{query}: {}",
            resp.body
        );
    }
    search_err(format!("{}&limit=0", q("hello")), 400, "invalid_query").await;
    search_err(format!("{}&limit=51", q("hello")), 400, "invalid_query").await;
    search_err(format!("{}&limit=x", q("hello")), 400, "invalid_query").await;
    search_err(format!("{}&before=nope", q("hello")), 400, "invalid_cursor").await;
    let unknown = uuid::Uuid::new_v4();
    search_err(
        format!("{}&before={unknown}", q("hello")),
        400,
        "invalid_cursor",
    )
    .await;
    search_err(
        format!("{}&room_id={unknown}", q("hello")),
        404,
        "room_not_found",
    )
    .await;
    // Engine syntax is only separators: no error, no match.
    assert_eq!(
        bodies(&search(&app, &alice, &q("\"x\" OR NEAR(a b) *:' \\")).await),
        Vec::<String>::new()
    );
    // Signed out: 401.
    let resp = send(
        app.client
            .get(app.url(&format!("/api/v1/search/messages?{}", q("hi")))),
        None,
    )
    .await;
    resp.expect_error(401, "unauthenticated");
}

#[actix_web::test]
async fn searches_over_the_rate_limit_are_429() {
    // Arrange
    let app = TestApp::builder()
        .env("HUBBUB_RATE_SEARCH_PER_MIN", "3")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;

    // Act
    for _ in 0..3 {
        search(&app, &alice, &q("hello")).await;
    }
    let limited = alice
        .get(&app, &format!("/api/v1/search/messages?{}", q("hello")))
        .await;

    // Assert: alice is limited, with Retry-After; bob has a bucket of his own; history isn't
    // limited by it.
    limited.expect_error(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    assert_eq!(limited.header("x-ratelimit-limit").as_deref(), Some("3"));
    search(&app, &bob, &q("hello")).await;
    let room = room_id(&alice.create_room(&app, "den", &[]).await);
    alice.history(&app, &room, "").await;
}

#[actix_web::test]
async fn a_member_of_more_rooms_than_one_index_query_takes_finds_hits_in_all_of_them_in_order() {
    // Arrange: 201 rooms (one more than an index query names); hits in the first, a middle
    // and the last room, sent in that order.
    let app = TestApp::builder()
        .env("HUBBUB_RATE_WRITES_PER_SEC", "0")
        .spawn()
        .await;
    let alice = app.register("alice").await;
    let mut rooms = Vec::new();
    for i in 0..201 {
        rooms.push(room_id(
            &alice.create_room(&app, &format!("r{i}"), &[]).await,
        ));
    }
    for (n, i) in [0, 100, 200].into_iter().enumerate() {
        alice
            .send_message(&app, &rooms[i], &format!("needle {n}"))
            .await;
        alice.send_message(&app, &rooms[i], "hay").await;
    }

    // Act: pages of 2.
    let first = search(&app, &alice, &format!("{}&limit=2", q("needle"))).await;
    let before = first["next_before"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = search(
        &app,
        &alice,
        &format!("{}&limit=2&before={before}", q("needle")),
    )
    .await;

    // Assert
    assert_eq!(bodies(&first), ["needle 2", "needle 1"]);
    assert_eq!(bodies(&second), ["needle 0"]);
    assert!(second["next_before"].is_null());
}
