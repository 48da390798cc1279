//! Reports and moderation: users report only what they can see now (anything else is the 404 of
//! a thing that doesn't exist, and stores nothing); the open reports per reporter are capped and
//! a repeat returns the open one; admins page, filter and resolve reports and delete any
//! message as a normal deletion; everyone else gets 404 on the admin routes.

use serde_json::{json, Value};

use crate::harness::{send, TestApp, TestUser};
use crate::openapi::fits;
use crate::photos::{png, upload};

const REPORTS: &str = "/api/v1/reports";

fn messages(room: &Value) -> String {
    format!("/api/v1/rooms/{}/messages", room["id"].as_str().unwrap())
}

fn id(v: &Value) -> &str {
    v["id"].as_str().expect("an id")
}

async fn report_message(
    app: &TestApp,
    who: &TestUser,
    message: &Value,
    reason: &str,
) -> crate::harness::Resp {
    who.post(
        app,
        REPORTS,
        &json!({ "message_id": message["message"]["id"], "reason": reason }),
    )
    .await
}

async fn report_user(
    app: &TestApp,
    who: &TestUser,
    whom: &TestUser,
    reason: &str,
) -> crate::harness::Resp {
    who.post(
        app,
        REPORTS,
        &json!({ "user_id": whom.id, "reason": reason }),
    )
    .await
}

/// A signed-in administrator named `name`.
async fn admin(app: &TestApp, name: &str) -> TestUser {
    let user = app.register(name).await;
    app.promote(name);
    user
}

/// Every report of `status`, newest first, read page by page.
async fn all_reports(app: &TestApp, admin: &TestUser, status: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut before = String::new();
    loop {
        let path = format!("/api/v1/admin/reports?status={status}&limit=100{before}");
        let page = admin.get(app, &path).await.expect(200);
        out.extend(page["reports"].as_array().unwrap().iter().cloned());
        match page["next_before"].as_str() {
            Some(next) => before = format!("&before={next}"),
            None => return out,
        }
    }
}

#[actix_web::test]
async fn what_the_reporter_cannot_see_is_404_and_stores_nothing() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = admin(&app, "dave").await;
    let elsewhere = carol.create_room(&app, "not bob's", &[&alice]).await;
    let not_his = carol
        .send_message(&app, id(&elsewhere), "bob isn't here")
        .await;
    let left = alice.create_room(&app, "left", &[&bob]).await;
    let before_leaving = alice.send_message(&app, id(&left), "seen once").await;
    let leave = format!("/api/v1/rooms/{}/members/{}", id(&left), bob.id);
    bob.delete(&app, &leave).await.expect(204);
    let after_leaving = alice.send_message(&app, id(&left), "never seen").await;
    let shared = alice.create_room(&app, "shared", &[&bob]).await;
    let deleted = alice.send_message(&app, id(&shared), "soon gone").await;
    let path = format!(
        "{}/{}",
        messages(&shared),
        deleted["message"]["id"].as_str().unwrap()
    );
    alice.delete(&app, &path).await.expect(204);
    carol
        .put(&app, &format!("/api/v1/blocks/{}", bob.id))
        .await
        .expect(204);
    let unknown = json!({ "message": { "id": uuid::Uuid::now_v7().to_string() } });

    // Act + Assert: each is answered as if it didn't exist
    for message in [
        &not_his,
        &before_leaving,
        &after_leaving,
        &deleted,
        &unknown,
    ] {
        report_message(&app, &bob, message, "spam")
            .await
            .expect_error(404, "message_not_found");
    }
    report_user(&app, &bob, &carol, "rude")
        .await
        .expect_error(404, "user_not_found");
    let nobody = json!({ "user_id": uuid::Uuid::now_v7().to_string(), "reason": "rude" });
    bob.post(&app, REPORTS, &nobody)
        .await
        .expect_error(404, "user_not_found");
    // The one who blocks may still report the one they block.
    report_user(&app, &carol, &bob, "pest").await.expect(201);
    let stored = all_reports(&app, &dave, "all").await;
    assert_eq!(stored.len(), 1, "only carol's report: {stored:?}");
    assert_eq!(stored[0]["reporter"]["id"], carol.id.as_str());
}

#[actix_web::test]
async fn a_report_keeps_the_message_as_it_was_and_a_repeat_returns_the_open_one() {
    // Arrange: alice wrote before bob joined; history shows current members everything.
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let dave = admin(&app, "dave").await;
    let room = alice.create_room(&app, "general", &[]).await;
    let sent = alice.send_message(&app, id(&room), "buy cheap pills").await;
    alice
        .post(
            &app,
            &format!("/api/v1/rooms/{}/members", id(&room)),
            &json!({ "user_id": bob.id }),
        )
        .await
        .expect(201);

    // Act
    let first = report_message(&app, &bob, &sent, "  spam\nagain  ")
        .await
        .expect(201);
    let path = format!(
        "{}/{}",
        messages(&room),
        sent["message"]["id"].as_str().unwrap()
    );
    alice
        .patch(&app, &path, &json!({ "body": "nothing to see" }))
        .await
        .expect(200);
    let repeat = report_message(&app, &bob, &sent, "another reason")
        .await
        .expect(200);
    let of_user = report_user(&app, &bob, &alice, "spammer").await.expect(201);

    // Assert
    assert_eq!(first["message"]["id"], sent["message"]["id"]);
    assert_eq!(first["message"]["room_id"], room["id"]);
    assert_eq!(first["user_id"], alice.id.as_str());
    assert_eq!(first["reason"], "spam\nagain");
    assert!(first["created_at"].is_string());
    assert_eq!(repeat, first, "the open report, unchanged");
    assert_eq!(of_user["message"], Value::Null);
    assert_eq!(of_user["user_id"], alice.id.as_str());
    assert_ne!(of_user["id"], first["id"]);
    let stored = all_reports(&app, &dave, "open").await;
    assert_eq!(stored.len(), 2);
    let (user_report, message_report) = (&stored[0], &stored[1]);
    assert_eq!(user_report["id"], of_user["id"]);
    assert_eq!(user_report["message"], Value::Null);
    assert_eq!(message_report["id"], first["id"]);
    assert_eq!(message_report["message"]["id"], sent["message"]["id"]);
    assert_eq!(message_report["message"]["body"], "buy cheap pills");
    assert_eq!(message_report["message"]["room_id"], room["id"]);
    assert_eq!(message_report["reporter"]["username"], "bob");
    assert_eq!(message_report["target_user"]["id"], alice.id.as_str());
    assert_eq!(message_report["resolved_at"], Value::Null);
    assert!(message_report["reporter"].get("password_hash").is_none());

    // Once resolved, the same thing can be reported again.
    let resolve = format!("/api/v1/admin/reports/{}/resolve", id(&first));
    dave.post(&app, &resolve, &json!({})).await.expect(200);
    let again = report_message(&app, &bob, &sent, "still spam")
        .await
        .expect(201);
    assert_ne!(again["id"], first["id"]);
}

#[actix_web::test]
async fn bad_reports_are_422_and_store_nothing() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let dave = admin(&app, "dave").await;
    let room = alice.create_room(&app, "general", &[&bob]).await;
    let own = alice.send_message(&app, id(&room), "mine").await;
    let theirs = bob.send_message(&app, id(&room), "bob's").await;
    let message_id = theirs["message"]["id"].clone();

    // Act + Assert
    let both = json!({ "message_id": message_id, "user_id": bob.id, "reason": "x" });
    let neither = json!({ "reason": "x" });
    for body in [both, neither] {
        let err = alice
            .post(&app, REPORTS, &body)
            .await
            .expect_error(422, "validation_failed");
        assert!(err["fields"]["message_id"].is_string(), "{err}");
    }
    let long = "x".repeat(1001);
    for reason in [
        "",
        "  \n\t ",
        long.as_str(),
        "a\u{0}b",
        "a\u{1b}[31m",
        "evil\u{202E}txt",
    ] {
        let body = json!({ "message_id": message_id, "reason": reason });
        let err = alice
            .post(&app, REPORTS, &body)
            .await
            .expect_error(422, "validation_failed");
        assert!(err["fields"]["reason"].is_string(), "{reason:?}: {err}");
    }
    alice
        .post(&app, REPORTS, &json!({ "message_id": message_id }))
        .await
        .expect_error(400, "invalid_body");
    report_message(&app, &alice, &own, "me")
        .await
        .expect_error(422, "cannot_report_self");
    report_user(&app, &alice, &alice, "me")
        .await
        .expect_error(422, "cannot_report_self");
    assert!(all_reports(&app, &dave, "all").await.is_empty());
    // The longest reason is fine.
    let body = json!({ "message_id": message_id, "reason": "é".repeat(1000) });
    alice.post(&app, REPORTS, &body).await.expect(201);
}

#[actix_web::test]
async fn a_reporter_has_at_most_50_open_reports() {
    // Arrange: 51 messages of alice's
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = admin(&app, "dave").await;
    let room = alice.create_room(&app, "general", &[&bob, &carol]).await;
    let mut sent = Vec::new();
    for i in 0..51 {
        sent.push(alice.send_message(&app, id(&room), &format!("m{i}")).await);
    }

    // Act
    let mut first = Value::Null;
    for (i, message) in sent[..50].iter().enumerate() {
        let report = report_message(&app, &bob, message, "spam")
            .await
            .expect(201);
        if i == 0 {
            first = report;
        }
    }
    let over = report_message(&app, &bob, &sent[50], "spam").await;
    let over_user = report_user(&app, &bob, &alice, "spammer").await;
    let repeat = report_message(&app, &bob, &sent[0], "spam").await;

    // Assert
    over.expect_error(422, "too_many_reports");
    over_user.expect_error(422, "too_many_reports");
    assert_eq!(
        repeat.expect(200)["id"],
        first["id"],
        "a repeat still answers"
    );
    assert_eq!(all_reports(&app, &dave, "open").await.len(), 50);
    // Another reporter has their own allowance; a resolution frees one.
    report_message(&app, &carol, &sent[50], "spam")
        .await
        .expect(201);
    let resolve = format!("/api/v1/admin/reports/{}/resolve", id(&first));
    dave.post(&app, &resolve, &json!({ "resolution": "warned" }))
        .await
        .expect(200);
    report_message(&app, &bob, &sent[50], "spam")
        .await
        .expect(201);
}

#[actix_web::test]
async fn admins_page_filter_and_resolve_reports() {
    // Arrange: five reports, oldest first
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let dave = admin(&app, "dave").await;
    let room = alice.create_room(&app, "general", &[&bob]).await;
    let mut filed = Vec::new();
    for i in 0..5 {
        let sent = alice.send_message(&app, id(&room), &format!("m{i}")).await;
        let report = report_message(&app, &bob, &sent, &format!("r{i}"))
            .await
            .expect(201);
        filed.push(id(&report).to_owned());
    }
    let newest_first: Vec<String> = filed.iter().rev().cloned().collect();

    // Act: page two at a time
    let mut pages = Vec::new();
    let mut path = "/api/v1/admin/reports?status=all&limit=2".to_owned();
    loop {
        let page = dave.get(&app, &path).await.expect(200);
        let ids: Vec<String> = page["reports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| id(r).to_owned())
            .collect();
        pages.push(ids);
        match page["next_before"].as_str() {
            Some(next) => path = format!("/api/v1/admin/reports?status=all&limit=2&before={next}"),
            None => break,
        }
    }

    // Assert
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert_eq!(pages.concat(), newest_first);
    // The default is the open ones, and a page of exactly the rest has no next.
    let open = dave
        .get(&app, "/api/v1/admin/reports?limit=5")
        .await
        .expect(200);
    assert_eq!(open["reports"].as_array().unwrap().len(), 5);
    assert_eq!(open["next_before"], Value::Null);

    // Act: resolve two
    let resolve = |i: usize| format!("/api/v1/admin/reports/{}/resolve", filed[i]);
    let done = dave
        .post(
            &app,
            &resolve(1),
            &json!({ "resolution": " removed the message\n" }),
        )
        .await
        .expect(200);
    dave.post(&app, &resolve(3), &json!({ "resolution": null }))
        .await
        .expect(200);

    // Assert
    assert_eq!(done["id"], filed[1].as_str());
    assert_eq!(done["resolved_by"], dave.id.as_str());
    assert_eq!(done["resolution"], "removed the message");
    assert!(done["resolved_at"].is_string());
    assert_eq!(done["reason"], "r1");
    let ids = |list: Vec<Value>| list.iter().map(|r| id(r).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        ids(all_reports(&app, &dave, "resolved").await),
        [filed[3].clone(), filed[1].clone()]
    );
    assert_eq!(
        ids(all_reports(&app, &dave, "open").await),
        [filed[4].clone(), filed[2].clone(), filed[0].clone()]
    );
    let again = dave
        .post(&app, &resolve(1), &json!({ "resolution": "twice" }))
        .await;
    again.expect_error(409, "already_resolved");
    let resolved = all_reports(&app, &dave, "resolved").await;
    assert_eq!(
        resolved[1]["resolution"], "removed the message",
        "the first stays"
    );
    let unknown = format!("/api/v1/admin/reports/{}/resolve", uuid::Uuid::now_v7());
    dave.post(&app, &unknown, &json!({}))
        .await
        .expect_error(404, "report_not_found");
    let long = json!({ "resolution": "x".repeat(1001) });
    let err = dave
        .post(&app, &resolve(0), &long)
        .await
        .expect_error(422, "validation_failed");
    assert!(err["fields"]["resolution"].is_string());
    dave.post(&app, &resolve(0), &json!({ "resolution": "  " }))
        .await
        .expect_error(422, "validation_failed");
    assert_eq!(
        all_reports(&app, &dave, "open").await.len(),
        3,
        "the bad ones changed nothing"
    );
    for (query, code) in [
        ("status=closed", "invalid_query"),
        ("limit=0", "invalid_query"),
        ("limit=101", "invalid_query"),
        ("before=nope", "invalid_cursor"),
    ] {
        dave.get(&app, &format!("/api/v1/admin/reports?{query}"))
            .await
            .expect_error(400, code);
    }
    let stranger = format!("/api/v1/admin/reports?before={}", uuid::Uuid::now_v7());
    dave.get(&app, &stranger)
        .await
        .expect_error(400, "invalid_cursor");
}

#[actix_web::test]
async fn everyone_but_an_admin_gets_404_on_the_admin_routes() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let dave = admin(&app, "dave").await;
    let room = alice.create_room(&app, "general", &[&bob]).await;
    let sent = alice.send_message(&app, id(&room), "hello").await;
    let report = report_message(&app, &bob, &sent, "spam").await.expect(201);
    let list = "/api/v1/admin/reports?status=all";
    let resolve = format!("/api/v1/admin/reports/{}/resolve", id(&report));
    let delete = format!(
        "/api/v1/admin/messages/{}",
        sent["message"]["id"].as_str().unwrap()
    );
    let unknown = send(app.get("/api/v1/admin/no-such-thing"), None).await;
    let unknown = unknown.expect_error(404, "not_found");

    // Act + Assert: room owners and plain users alike
    for user in [&alice, &bob] {
        let got = user.get(&app, list).await;
        assert_eq!(
            got.expect_error(404, "not_found")["message"],
            unknown["message"]
        );
        user.post(&app, &resolve, &json!({ "resolution": "mine" }))
            .await
            .expect_error(404, "not_found");
        user.delete(&app, &delete)
            .await
            .expect_error(404, "not_found");
    }
    send(app.get(list), None)
        .await
        .expect_error(404, "not_found");
    // Nothing changed; and once bob is made an admin he gets in.
    let history = alice.history(&app, id(&room), "").await;
    assert_eq!(history["messages"][0]["body"], "hello");
    let stored = all_reports(&app, &dave, "all").await;
    assert_eq!(stored[0]["resolved_at"], Value::Null);
    app.promote("bob");
    bob.get(&app, list).await.expect(200);
}

#[actix_web::test]
async fn an_admin_deletes_any_message_as_its_author_would() {
    // Arrange: dave is an admin and not in the room
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let dave = admin(&app, "dave").await;
    let room = alice.create_room(&app, "general", &[&bob]).await;
    let photo = upload(&app, &alice, &png(64, 48), "p.png", "image/png")
        .await
        .expect(201);
    let sent = alice
        .post(
            &app,
            &messages(&room),
            &json!({ "body": "look", "attachment_ids": [photo["id"]] }),
        )
        .await
        .expect(201);
    let report = report_message(&app, &bob, &sent, "gross").await.expect(201);
    assert!(app.stored_attachments() > 0);
    let mut bob_ws = bob
        .socket(&app, Some(sent["event_id"].as_str().unwrap()))
        .await;
    let message_id = sent["message"]["id"].as_str().unwrap();
    let path = format!("/api/v1/admin/messages/{message_id}");

    // Act
    dave.delete(&app, &path).await.expect(204);

    // Assert
    let event = bob_ws.next_event().await;
    assert_eq!(event["event"], "message.deleted", "{event}");
    assert_eq!(event["data"]["id"], message_id);
    assert_eq!(event["data"]["body"], Value::Null);
    let history = bob.history(&app, id(&room), "").await;
    let tombstone = &history["messages"][0];
    assert_eq!(tombstone["id"], message_id);
    assert_eq!(tombstone["body"], Value::Null);
    assert!(tombstone["deleted_at"].is_string());
    assert_eq!(tombstone["attachments"], json!([]));
    assert_eq!(app.stored_attachments(), 0, "the photo's files are gone");
    let stored = all_reports(&app, &dave, "open").await;
    assert_eq!(stored[0]["id"], report["id"]);
    assert_eq!(
        stored[0]["message"]["body"], "look",
        "the report keeps what was said"
    );
    // Again: nothing more happens. An unknown message is 404.
    dave.delete(&app, &path).await.expect(204);
    bob_ws.expect_silence(300).await;
    let unknown = format!("/api/v1/admin/messages/{}", uuid::Uuid::now_v7());
    dave.delete(&app, &unknown)
        .await
        .expect_error(404, "message_not_found");
}

#[actix_web::test]
async fn the_answers_match_the_document() {
    // Arrange
    let app = TestApp::spawn().await;
    let doc = crate::openapi::document(&app).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let dave = admin(&app, "dave").await;
    let room = alice.create_room(&app, "general", &[&bob]).await;
    let sent = alice.send_message(&app, id(&room), "hello").await;

    // Act
    let by_message = report_message(&app, &bob, &sent, "spam").await.expect(201);
    let by_user = report_user(&app, &bob, &alice, "rude").await.expect(201);
    let repeat = report_user(&app, &bob, &alice, "rude").await.expect(200);
    let page = dave
        .get(&app, "/api/v1/admin/reports?status=all&limit=1")
        .await
        .expect(200);
    let resolve = format!("/api/v1/admin/reports/{}/resolve", id(&by_user));
    let resolved = dave
        .post(&app, &resolve, &json!({ "resolution": "talked" }))
        .await
        .expect(200);

    // Assert
    fits(&doc, "post", "/api/v1/reports", 201, &by_message);
    fits(&doc, "post", "/api/v1/reports", 201, &by_user);
    fits(&doc, "post", "/api/v1/reports", 200, &repeat);
    fits(&doc, "get", "/api/v1/admin/reports", 200, &page);
    assert!(page["next_before"].is_string());
    let path = "/api/v1/admin/reports/{id}/resolve";
    fits(&doc, "post", path, 200, &resolved);

    // The document's rule for a reason is the server's, at its edges.
    let rule = &doc["components"]["schemas"]["ReportBody"]["properties"]["reason"];
    let resolution = &doc["components"]["schemas"]["ResolveBody"]["properties"]["resolution"];
    assert_eq!(rule["pattern"], resolution["pattern"]);
    for reason in [
        "x".to_string(),
        "  padded\n".into(),
        "two\nlines\twith a tab".into(),
        "日本語 👩\u{200D}💻".into(),
        "é".repeat(1000),
        "é".repeat(1001),
        "".into(),
        " \n ".into(),
        "a\u{0}b".into(),
        "a\u{1b}b".into(),
        "evil\u{202E}gpj".into(),
        "ad\u{200B}min".into(),
        "a\u{2028}b".into(),
    ] {
        let resp = report_user(&app, &bob, &alice, &reason).await;
        let said = crate::openapi::meets(rule, &reason);
        assert_eq!(resp.status < 300, said, "{reason:?}: {}", resp.body);
    }
}
