//! HTTP conformance: a wrong method is 405 with `Allow`, and HEAD works wherever GET does.

use std::collections::BTreeSet;

use actix_web::http::{header, Method};
use serde_json::Value;

use crate::harness::{TestApp, TestUser};
use crate::photos::{png, upload};

const ALL: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// `path` of the OpenAPI document with its parameters filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{emoji}" => "x",
            s if s.starts_with('{') => "00000000-0000-0000-0000-000000000000",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn status_and_allow(
    app: &TestApp,
    user: &TestUser,
    method: &str,
    path: &str,
) -> (u16, String) {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let resp = user
        .req(app.client.request(method, app.url(path)))
        .send()
        .await
        .expect("request");
    let allow = resp
        .headers()
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (resp.status().as_u16(), allow)
}

#[actix_web::test]
async fn every_documented_path_answers_an_undocumented_method_with_405_and_allow() {
    // Arrange (an administrator: to anyone else /api/v1/admin/ is 404 on every method)
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    app.promote("alice");
    let doc = alice.get(&app, "/api/v1/openapi.json").await.expect(200);
    let paths = doc["paths"].as_object().expect("paths");

    for (path, operations) in paths {
        let documented: BTreeSet<String> = operations
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_ascii_uppercase())
            .collect();
        let mut allowed = documented.clone();
        if documented.contains("GET") {
            allowed.insert("HEAD".into());
        }
        for method in ALL.iter().filter(|m| !allowed.contains(**m)) {
            // Act
            let (status, allow) = status_and_allow(&app, &alice, method, &concrete(path)).await;

            // Assert
            assert_eq!(status, 405, "{method} {path}");
            let listed: BTreeSet<String> = allow.split(", ").map(str::to_string).collect();
            assert_eq!(listed, allowed, "{method} {path}: Allow: {allow}");
        }
    }
}

#[actix_web::test]
async fn head_answers_like_get_without_the_body() {
    // Arrange
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let photo = upload(&app, &alice, &png(40, 30), "p.png", "image/png")
        .await
        .expect(201);
    let id = photo["id"].as_str().unwrap();
    let paths = [
        "/".to_string(),
        "/healthz".into(),
        "/docs/".into(),
        "/api/v1/openapi.json".into(),
        "/api/v1/me".into(),
        format!("/api/v1/attachments/{id}"),
        format!("/api/v1/attachments/{id}/thumbnail"),
    ];

    for path in paths {
        // Act
        let mut get = alice.req(app.get(&path)).send().await.expect("GET");
        let body = get.body().limit(1 << 24).await.expect("GET body");
        let mut head = alice
            .req(app.client.request(Method::HEAD, app.url(&path)))
            .send()
            .await
            .expect("HEAD");
        let head_body = head.body().await.expect("HEAD body");

        // Assert
        assert_eq!(get.status().as_u16(), 200, "GET {path}");
        assert_eq!(head.status().as_u16(), 200, "HEAD {path}");
        assert!(head_body.is_empty(), "HEAD {path} sent a body");
        assert_eq!(
            head.headers().get(header::CONTENT_TYPE),
            get.headers().get(header::CONTENT_TYPE),
            "HEAD {path}"
        );
        assert!(!body.is_empty(), "GET {path}");
    }
}

#[actix_web::test]
async fn a_405_is_in_the_envelope() {
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let resp = alice
        .req(app.client.request(Method::PUT, app.url("/api/v1/me")))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 405);
    let mut resp = resp;
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
}

#[actix_web::test]
async fn swagger_ui_gets_the_security_headers_and_loads_no_inline_script() {
    // Arrange
    let app = TestApp::spawn().await;

    // Act
    let mut page = app.get("/docs/").send().await.expect("GET /docs/");
    let html = String::from_utf8(page.body().await.unwrap().to_vec()).unwrap();

    // Assert
    assert_eq!(page.status().as_u16(), 200);
    let get = |name| {
        page.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let csp = get(header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(get(header::X_FRAME_OPTIONS), "DENY");
    assert_eq!(get(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    // script-src 'self' allows no inline script: every <script> must load a file.
    for tag in html.split("<script").skip(1) {
        assert!(
            tag.trim_start().starts_with("src="),
            "an inline script: <script{tag}"
        );
    }
}

#[actix_web::test]
async fn an_oversized_target_is_414_and_oversized_headers_431_in_the_envelope() {
    // Arrange: the HTTP parser answered only beyond its own limits, with an empty 400 or 431.
    let app = TestApp::spawn().await;
    let alice = app.register("alice").await;
    let long = format!("/api/v1/users?prefix=a&after={}", "b".repeat(9 * 1024));
    let fits = format!("/api/v1/users?prefix=a&x={}", "b".repeat(7 * 1024));

    // Act
    let too_long = alice.get(&app, &long).await;
    let big_headers = crate::harness::send(
        alice
            .req(app.get("/api/v1/me"))
            .insert_header(("x-padding", "p".repeat(40 * 1024))),
        None,
    )
    .await;
    let within = alice.get(&app, &fits).await;

    // Assert
    too_long.expect_error(414, "uri_too_long");
    big_headers.expect_error(431, "headers_too_large");
    for resp in [&too_long, &big_headers] {
        assert_eq!(
            resp.header("x-request-id").as_deref(),
            resp.body["error"]["request_id"].as_str()
        );
    }
    within.expect(200);
}
