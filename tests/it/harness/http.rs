//! Test harness, HTTP side: responses as a user sees them, request helpers, and the logged-in test user.

use actix_web::http::header::HeaderMap;
use awc::ClientRequest;
use serde_json::{json, Value};

use super::{Socket, TestApp};

/// A response as a user sees it: status, headers, parsed body.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// `hubbub_session=<value>` from `Set-Cookie`, if any.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|nv| nv.trim().starts_with("hubbub_session=") && nv.trim().len() > 15)
            .map(|nv| nv.trim().to_owned())
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Asserts the error envelope: status, code, and `X-Request-Id` == `request_id`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        let err = &self.body["error"];
        assert_eq!(
            err["code"], code,
            "unexpected error code; body: {}",
            self.body
        );
        assert!(
            err["message"].as_str().is_some_and(|m| !m.is_empty()),
            "no message: {}",
            self.body
        );
        let rid = err["request_id"].as_str().expect("request_id in error");
        assert_eq!(
            self.header("x-request-id").as_deref(),
            Some(rid),
            "X-Request-Id != request_id"
        );
        err.clone()
    }
}

/// Sends a request with an optional JSON body.
pub async fn send(req: ClientRequest, body: Option<&Value>) -> Resp {
    let fut = match body {
        Some(b) => req.send_json(b),
        None => req.send(),
    };
    collect(fut.await.expect("request failed")).await
}

/// Sends raw bytes (no Content-Type unless the request has one).
pub async fn send_raw(req: ClientRequest, bytes: Vec<u8>) -> Resp {
    collect(req.send_body(bytes).await.expect("request failed")).await
}

async fn collect<S>(mut res: awc::ClientResponse<S>) -> Resp
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin,
{
    let bytes = res.body().limit(32 << 20).await.expect("read body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Resp {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body,
    }
}

/// A registered, logged-in user.
#[derive(Clone)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub password: String,
    pub cookie: String,
}

impl TestUser {
    pub fn req(&self, req: ClientRequest) -> ClientRequest {
        req.insert_header(("Cookie", self.cookie.as_str()))
    }

    pub async fn get(&self, app: &TestApp, path: &str) -> Resp {
        send(self.req(app.get(path)), None).await
    }

    pub async fn post(&self, app: &TestApp, path: &str, body: &Value) -> Resp {
        send(self.req(app.post(path)), Some(body)).await
    }

    pub async fn post_with(
        &self,
        app: &TestApp,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self.req(app.post(path));
        for h in headers {
            req = req.insert_header(*h);
        }
        send(req, Some(body)).await
    }

    pub async fn delete(&self, app: &TestApp, path: &str) -> Resp {
        send(self.req(app.client.delete(app.url(path))), None).await
    }

    /// `PUT` without a body (blocks, reactions).
    pub async fn put(&self, app: &TestApp, path: &str) -> Resp {
        send(self.req(app.client.put(app.url(path))), None).await
    }

    pub async fn patch(&self, app: &TestApp, path: &str, body: &Value) -> Resp {
        send(self.req(app.client.patch(app.url(path))), Some(body)).await
    }

    /// The same user signed in a second time: another session, with its own cookie.
    pub async fn second_session(&self, app: &TestApp) -> TestUser {
        let resp = app.login(&self.username, &self.password).await;
        let cookie = resp.session_cookie().expect("login sets a session cookie");
        resp.expect(200);
        TestUser {
            cookie,
            ..self.clone()
        }
    }

    /// Creates a group room with `members` (besides the creator); returns room JSON + `event_id`.
    pub async fn create_room(&self, app: &TestApp, name: &str, members: &[&TestUser]) -> Value {
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        self.post(
            app,
            "/api/v1/rooms",
            &json!({ "name": name, "member_ids": ids }),
        )
        .await
        .expect(201)
    }

    /// Sends a message; returns the 201 body `{message, event_id}`.
    pub async fn send_message(&self, app: &TestApp, room_id: &str, body: &str) -> Value {
        let path = format!("/api/v1/rooms/{room_id}/messages");
        self.post(app, &path, &json!({ "body": body }))
            .await
            .expect(201)
    }

    /// `GET /api/v1/rooms/{id}/messages?<query>`, expecting 200.
    pub async fn history(&self, app: &TestApp, room_id: &str, query: &str) -> Value {
        let path = format!("/api/v1/rooms/{room_id}/messages?{query}");
        self.get(app, &path).await.expect(200)
    }

    pub async fn socket(&self, app: &TestApp, since: Option<&str>) -> Socket {
        let cookie = [("Cookie", self.cookie.as_str())];
        match app.try_socket(since, &cookie).await {
            Ok(s) => s,
            Err(status) => panic!("socket upgrade refused with {status}"),
        }
    }
}

/// Ids of messages in a history page, in page order.
pub fn ids(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .expect("messages array")
        .iter()
        .map(|m| m["id"].as_str().expect("message id").to_owned())
        .collect()
}

/// Orders opaque cursors that are decimal strings (shorter is smaller).
pub fn cursor_key(cursor: &str) -> (usize, &str) {
    (
        cursor.trim_start_matches('0').len(),
        cursor.trim_start_matches('0'),
    )
}
