//! The OpenAPI document against the server: every documented route exists, happy-path answers
//! match their documented schemas, and every event frame's `data` matches its event's schema.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{send, Recv, TestApp, TestUser};

/// A small JSON Schema check (the subset utoipa emits): type, properties, required, items,
/// $ref, allOf/oneOf/anyOf. Returns the first mismatch as a path and a reason.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    check_in(doc, schema, value, at, true)
}

/// `strict`: keys the schema doesn't name are refused (not inside an `allOf`, where each part
/// names only some of them).
fn check_in(
    doc: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    strict: bool,
) -> Result<(), String> {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return check_in(doc, &doc["components"]["schemas"][name], value, at, strict);
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            check_in(doc, s, value, at, false)?;
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(any) = schema[key].as_array() {
            if !any.iter().any(|s| check(doc, s, value, at).is_ok()) {
                return Err(format!("{at}: {value} matches none of {key}"));
            }
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() {
        let fits = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => true,
        });
        if !fits {
            return Err(format!("{at}: {value} is not {types:?}"));
        }
    }
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), value.as_object()) {
        for req in schema["required"].as_array().into_iter().flatten() {
            let key = req.as_str().unwrap_or_default();
            if !obj.contains_key(key) {
                return Err(format!("{at}: missing required `{key}`"));
            }
        }
        for (key, sub) in props {
            if let Some(v) = obj.get(key) {
                check(doc, sub, v, &format!("{at}.{key}"))?;
            }
        }
        for key in obj.keys() {
            if strict && !props.contains_key(key) {
                return Err(format!("{at}: `{key}` is not documented"));
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, v) in list.iter().enumerate() {
            check(doc, items, v, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

pub(crate) async fn document(app: &TestApp) -> Value {
    send(app.get("/api/v1/openapi.json"), None)
        .await
        .expect(200)
}

/// Asserts `body` fits the documented response of `method path status`.
#[track_caller]
pub(crate) fn fits(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]
        ["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path} {status} has no documented JSON schema"
    );
    if let Err(e) = check(doc, schema, body, "body") {
        panic!("{method} {path} {status}: {e}\n{body}");
    }
}

#[actix_web::test]
async fn every_documented_route_exists() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    // /api/v1/admin/ is an unknown endpoint to anyone else.
    app.promote("alice");
    let doc = document(&app).await;
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 30, "only {} paths documented", paths.len());

    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            if path == "/api/v1/sessions/current" {
                continue; // signs alice out; covered in accounts tests
            }
            let mut url = path.replace("{emoji}", "x");
            while let (Some(a), Some(b)) = (url.find('{'), url.find('}')) {
                url.replace_range(a..=b, &uuid::Uuid::new_v4().to_string());
            }
            if url == "/api/v1/events" {
                url.push_str("?timeout=0");
            }
            if url == "/api/v1/stream/sse" {
                url.push_str("?since=x"); // a 400 shows it is served; a 200 would stream on
            }
            let req = app
                .client
                .request(method.to_uppercase().parse().unwrap(), app.url(&url));
            let body = (method != "get" && method != "delete").then(|| json!({}));
            let resp = send(alice.req(req), body.as_ref()).await;
            let code = resp.body["error"]["code"].as_str().unwrap_or("");
            assert!(
                !(resp.status == 404 && code == "not_found") && resp.status != 405,
                "{method} {path} is documented but not served: {} {}",
                resp.status,
                resp.body
            );
        }
    }
}

#[actix_web::test]
async fn happy_path_answers_match_the_document() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let body = json!({"username": "zed", "password": "correct horse"});
    let registered = send(app.post("/api/v1/users"), Some(&body))
        .await
        .expect(201);
    fits(&doc, "post", "/api/v1/users", 201, &registered);
    let (alice, bob): (TestUser, TestUser) =
        (app.register("alice").await, app.register("bob").await);

    let room = alice.create_room(&app, "general", &[&bob]).await;
    fits(&doc, "post", "/api/v1/rooms", 201, &room);
    let room_id = room["id"].as_str().unwrap();
    let sent = alice.send_message(&app, room_id, "hello").await;
    fits(&doc, "post", "/api/v1/rooms/{id}/messages", 201, &sent);
    let history = alice
        .get(&app, &format!("/api/v1/rooms/{room_id}/messages"))
        .await
        .expect(200);
    fits(&doc, "get", "/api/v1/rooms/{id}/messages", 200, &history);
    fits(
        &doc,
        "get",
        "/api/v1/rooms",
        200,
        &alice.get(&app, "/api/v1/rooms").await.expect(200),
    );
    fits(
        &doc,
        "get",
        "/api/v1/rooms/{id}",
        200,
        &alice
            .get(&app, &format!("/api/v1/rooms/{room_id}"))
            .await
            .expect(200),
    );
    fits(
        &doc,
        "get",
        "/api/v1/me",
        200,
        &alice.get(&app, "/api/v1/me").await.expect(200),
    );
    let search = alice.get(&app, "/api/v1/users?prefix=b").await.expect(200);
    fits(&doc, "get", "/api/v1/users", 200, &search);
    let request = alice
        .post(
            &app,
            "/api/v1/friends/requests",
            &json!({"user_id": bob.id}),
        )
        .await
        .expect(201);
    fits(&doc, "post", "/api/v1/friends/requests", 201, &request);
    let requests = bob.get(&app, "/api/v1/friends/requests").await.expect(200);
    fits(&doc, "get", "/api/v1/friends/requests", 200, &requests);
    let accept_path = format!(
        "/api/v1/friends/requests/{}/accept",
        request["id"].as_str().unwrap()
    );
    let accepted = bob.post(&app, &accept_path, &json!({})).await.expect(200);
    fits(
        &doc,
        "post",
        "/api/v1/friends/requests/{id}/accept",
        200,
        &accepted,
    );
    fits(
        &doc,
        "get",
        "/api/v1/friends",
        200,
        &alice.get(&app, "/api/v1/friends").await.expect(200),
    );
    let bot = alice
        .post(&app, "/api/v1/bots", &json!({"username": "helper-bot"}))
        .await
        .expect(201);
    fits(&doc, "post", "/api/v1/bots", 201, &bot);
    let token = alice
        .post(&app, "/api/v1/tokens", &json!({"name": "ci"}))
        .await
        .expect(201);
    fits(&doc, "post", "/api/v1/tokens", 201, &token);
    fits(
        &doc,
        "get",
        "/api/v1/tokens",
        200,
        &alice.get(&app, "/api/v1/tokens").await.expect(200),
    );
    let ticket = alice
        .post(&app, "/api/v1/stream/tickets", &json!({}))
        .await
        .expect(201);
    fits(&doc, "post", "/api/v1/stream/tickets", 201, &ticket);
    let read = json!({"message_id": sent["message"]["id"]});
    let marker = bob
        .post(&app, &format!("/api/v1/rooms/{room_id}/read"), &read)
        .await
        .expect(200);
    fits(&doc, "post", "/api/v1/rooms/{id}/read", 200, &marker);
    let setting = json!({"level": "mentions", "muted_until": "2030-01-01T00:00:00Z"});
    let put = bob.req(
        app.client
            .put(app.url(&format!("/api/v1/rooms/{room_id}/notifications"))),
    );
    let notifications = send(put, Some(&setting)).await.expect(200);
    fits(
        &doc,
        "put",
        "/api/v1/rooms/{id}/notifications",
        200,
        &notifications,
    );
    fits(
        &doc,
        "get",
        "/api/v1/rooms/{id}",
        200,
        &bob.get(&app, &format!("/api/v1/rooms/{room_id}"))
            .await
            .expect(200),
    );
    let poll = alice
        .get(&app, "/api/v1/events?since=0&timeout=0")
        .await
        .expect(200);
    fits(&doc, "get", "/api/v1/events", 200, &poll);
    let bad = alice
        .post(
            &app,
            &format!("/api/v1/rooms/{room_id}/messages"),
            &json!({"body": ""}),
        )
        .await;
    let schema = &doc["paths"]["/api/v1/rooms/{id}/messages"]["post"]["responses"]["4XX"]
        ["content"]["application/json"]["schema"];
    check(&doc, schema, &bad.body, "error").unwrap();
}

#[actix_web::test]
async fn every_event_frame_matches_its_documented_schema() {
    // Presence on, for `presence.updated`.
    let app = TestApp::builder()
        .env("HUBBUB_PRESENCE", "true")
        .spawn()
        .await;
    let doc = document(&app).await;
    let events = doc["x-hubbub-events"]
        .as_object()
        .expect("x-hubbub-events")
        .clone();
    let (alice, bob, carol) = (
        app.register("alice").await,
        app.register("bob").await,
        app.register("carol").await,
    );

    // Alice takes part in every kind of event.
    let room = alice.create_room(&app, "general", &[&bob]).await;
    let r = format!("/api/v1/rooms/{}", room["id"].as_str().unwrap());
    alice
        .patch(&app, &r, &json!({"name": "renamed"}))
        .await
        .expect(200);
    alice
        .post(&app, &format!("{r}/members"), &json!({"user_id": carol.id}))
        .await
        .expect(201);
    alice
        .patch(
            &app,
            &format!("{r}/members/{}", carol.id),
            &json!({"role": "admin"}),
        )
        .await
        .expect(200);
    alice
        .delete(&app, &format!("{r}/members/{}", carol.id))
        .await
        .expect(204);
    let m = alice
        .post(
            &app,
            &format!("{r}/messages"),
            &json!({"body": "hi @bob", "mention_ids": [bob.id]}),
        )
        .await
        .expect(201);
    let msg = format!("{r}/messages/{}", m["message"]["id"].as_str().unwrap());
    alice
        .patch(&app, &msg, &json!({"body": "hi!"}))
        .await
        .expect(200);
    alice
        .put(&app, &format!("{msg}/reactions/%F0%9F%91%8D"))
        .await
        .expect(204);
    alice
        .delete(&app, &format!("{msg}/reactions/%F0%9F%91%8D"))
        .await
        .expect(204);
    let b = bob
        .post(&app, &format!("{r}/messages"), &json!({"body": "yo"}))
        .await
        .expect(201);
    // Short-lived, but the replay below comes well within its 8 s.
    bob.post(&app, &format!("{r}/typing"), &json!({"typing": true}))
        .await
        .expect(204);
    alice
        .post(
            &app,
            &format!("{r}/read"),
            &json!({"message_id": b["message"]["id"]}),
        )
        .await
        .expect(200);
    alice.delete(&app, &msg).await.expect(204);
    let req = alice
        .post(
            &app,
            "/api/v1/friends/requests",
            &json!({"user_id": bob.id}),
        )
        .await
        .expect(201);
    let accept = format!(
        "/api/v1/friends/requests/{}/accept",
        req["id"].as_str().unwrap()
    );
    bob.post(&app, &accept, &json!({})).await.expect(200);
    // Bob comes online (a long poll) while alice's friend: she hears `presence.updated`.
    bob.get(&app, "/api/v1/events?timeout=0").await.expect(200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while app.count_events("presence.updated") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "bob never came online"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    alice
        .delete(&app, &format!("/api/v1/friends/{}", bob.id))
        .await
        .expect(204);
    let from_carol = carol
        .post(
            &app,
            "/api/v1/friends/requests",
            &json!({"user_id": alice.id}),
        )
        .await
        .expect(201);
    let decline = format!(
        "/api/v1/friends/requests/{}/decline",
        from_carol["id"].as_str().unwrap()
    );
    alice.post(&app, &decline, &json!({})).await.expect(200);
    let to_carol = alice
        .post(
            &app,
            "/api/v1/friends/requests",
            &json!({"user_id": carol.id}),
        )
        .await
        .expect(201);
    alice
        .delete(
            &app,
            &format!(
                "/api/v1/friends/requests/{}",
                to_carol["id"].as_str().unwrap()
            ),
        )
        .await
        .expect(204);
    alice
        .patch(&app, "/api/v1/me", &json!({"display_name": "Alice"}))
        .await
        .expect(200);
    let setting = json!({"level": "none", "muted_until": null});
    let put = alice.req(app.client.put(app.url(&format!("{r}/notifications"))));
    send(put, Some(&setting)).await.expect(200);

    // Replay everything alice may see and check each frame.
    let mut socket = alice.socket(&app, Some("0")).await;
    let mut seen = BTreeSet::new();
    while let Recv::Frame(frame) = socket.recv(Duration::from_millis(1500)).await {
        if frame["type"] == "hello" {
            continue;
        }
        let name = frame["event"].as_str().expect("an event frame").to_owned();
        let schema =
            json!({"$ref": events.get(&name).unwrap_or_else(|| panic!("{name} has no schema"))});
        if let Err(e) = check(&doc, &schema, &frame["data"], &name) {
            panic!("{name}: {e}\n{frame}");
        }
        seen.insert(name);
    }
    let documented: BTreeSet<String> = events.keys().cloned().collect();
    assert_eq!(
        seen, documented,
        "every documented event kind was produced and checked"
    );
}

/// Whether `value` meets the string constraints of `schema` (pattern, lengths, enum).
pub(crate) fn meets(schema: &Value, value: &str) -> bool {
    let chars = value.chars().count() as u64;
    let pattern = schema["pattern"].as_str().map(|p| {
        regex::Regex::new(p).unwrap_or_else(|e| panic!("the pattern {p:?} doesn't compile: {e}"))
    });
    pattern.is_none_or(|re| re.is_match(value))
        && schema["minLength"].as_u64().is_none_or(|n| chars >= n)
        && schema["maxLength"].as_u64().is_none_or(|n| chars <= n)
        && schema["enum"]
            .as_array()
            .is_none_or(|e| e.iter().any(|v| v == value))
}

#[actix_web::test]
async fn the_document_states_each_inputs_rules_and_the_server_agrees_at_their_edges() {
    // Arrange: the document once had no length, pattern, range or enum at all.
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let doc = document(&app).await;
    let prop =
        |schema: &str, name: &str| doc["components"]["schemas"][schema]["properties"][name].clone();
    let room = alice.create_room(&app, "general", &[&bob]).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let names = [
        "Zoë".to_string(),
        "  padded  ".into(),
        "日本語 👩\u{200D}💻".into(),
        "x".repeat(64),
        "x".repeat(65),
        "x".repeat(100),
        "x".repeat(101),
        "".into(),
        "   ".into(),
        "a\u{0}b".into(),
        "tab\tinside".into(),
        "evil\u{202E}gpj".into(),
        "ad\u{200B}min".into(),
        "\u{FEFF}bom".into(),
    ];

    for name in &names {
        // Act
        let display = alice
            .patch(&app, "/api/v1/me", &json!({ "display_name": name }))
            .await;
        let rename = alice
            .patch(
                &app,
                &format!("/api/v1/rooms/{room_id}"),
                &json!({ "name": name }),
            )
            .await;

        // Assert: the document's verdict is the server's.
        let said = meets(&prop("ProfileBody", "display_name"), name);
        assert_eq!(
            display.status == 200,
            said,
            "display_name {name:?}: {}",
            display.body
        );
        let said = meets(&prop("RenameBody", "name"), name);
        assert_eq!(
            rename.status == 200,
            said,
            "room name {name:?}: {}",
            rename.body
        );
    }
    for username in [
        "carol",
        " Dave ",
        "ab",
        &"e".repeat(32),
        &"e".repeat(33),
        "bad name",
        "ünï",
    ] {
        let body = json!({ "username": username, "password": "a long passphrase here" });
        let resp = send(app.post("/api/v1/users"), Some(&body)).await;
        let said = meets(&prop("RegisterBody", "username"), username);
        assert_eq!(
            resp.status == 201,
            said,
            "username {username:?}: {}",
            resp.body
        );
    }
    for role in ["owner", "admin", "member", "root", ""] {
        let path = format!("/api/v1/rooms/{room_id}/members/{}", bob.id);
        let resp = alice.patch(&app, &path, &json!({ "role": role })).await;
        let said = meets(&prop("RoleBody", "role"), role);
        assert_eq!(resp.status == 200, said, "role {role:?}: {}", resp.body);
    }
    for level in ["all", "mentions", "none", "loud", "", "None"] {
        let path = app.url(&format!("/api/v1/rooms/{room_id}/notifications"));
        let put = alice.req(app.client.put(path));
        let resp = send(put, Some(&json!({ "level": level }))).await;
        let said = meets(&prop("NotificationsBody", "level"), level);
        assert_eq!(resp.status == 200, said, "level {level:?}: {}", resp.body);
    }
    let mentions = prop("SendBody", "mention_ids")["maxItems"]
        .as_u64()
        .expect("mention_ids has maxItems");
    for (n, ok) in [(mentions, true), (mentions + 1, false)] {
        // Current members are few; distinct ids past the bound are refused before they are
        // looked up, and within it a stranger is refused for being one.
        let mut ids: Vec<String> = vec![bob.id.clone()];
        ids.extend((1..n).map(|_| uuid::Uuid::now_v7().to_string()));
        let body = json!({ "body": "hi", "mention_ids": ids });
        let resp = alice
            .post(&app, &format!("/api/v1/rooms/{room_id}/messages"), &body)
            .await;
        let err = resp.expect_error(422, "validation_failed");
        let why = err["fields"]["mention_ids"].as_str().unwrap_or_default();
        assert_eq!(why.starts_with("not members"), ok, "{n} mentions: {err}");
    }
    let limit = doc["paths"]["/api/v1/rooms/{id}/messages"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap()["schema"]
        .clone();
    let (min, max) = (
        limit["minimum"].as_i64().unwrap(),
        limit["maximum"].as_i64().unwrap(),
    );
    for (n, ok) in [(min - 1, false), (min, true), (max, true), (max + 1, false)] {
        let resp = alice
            .get(&app, &format!("/api/v1/rooms/{room_id}/messages?limit={n}"))
            .await;
        assert_eq!(resp.status == 200, ok, "limit {n}: {}", resp.body);
    }
}
