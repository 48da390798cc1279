//! Test harness, bearer side: a client that holds only an API token (a bot or a script), no cookie.

use std::time::Duration;

use awc::ClientRequest;
use serde_json::Value;

use super::{send, Resp, Socket, TestApp, TestUser};

/// A client authenticated by `Authorization: Bearer <secret>` alone.
#[derive(Clone)]
pub struct Bearer {
    /// The user the token belongs to (a bot or a person).
    pub user_id: String,
    /// The token's id, as `DELETE /api/v1/tokens/{id}` wants it.
    pub token_id: String,
    pub secret: String,
}

impl Bearer {
    /// From a `token` object as `POST /api/v1/tokens` (or `/bots`) returns it.
    pub fn from_token(user_id: &str, token: &Value) -> Bearer {
        Bearer {
            user_id: user_id.to_owned(),
            token_id: token["id"].as_str().expect("token id").to_owned(),
            secret: token["token_secret"]
                .as_str()
                .expect("token_secret shown at creation")
                .to_owned(),
        }
    }

    /// Creates a bot owned by `owner`; returns the bot's user JSON and a client with its token.
    pub async fn create_bot(app: &TestApp, owner: &TestUser, username: &str) -> (Value, Bearer) {
        let body = serde_json::json!({ "username": username });
        let created = owner.post(app, "/api/v1/bots", &body).await.expect(201);
        let id = created["bot"]["id"].as_str().expect("bot id").to_owned();
        let bearer = Bearer::from_token(&id, &created["token"]);
        (created["bot"].clone(), bearer)
    }

    /// Creates a personal token for `user` with `scopes` (JSON array); returns a client with it.
    pub async fn create_token(app: &TestApp, user: &TestUser, scopes: Value) -> Bearer {
        let body = serde_json::json!({ "name": "test token", "scopes": scopes });
        let token = user.post(app, "/api/v1/tokens", &body).await.expect(201);
        Bearer::from_token(&user.id, &token)
    }

    /// `/api/v1/tokens/{id}` of this token.
    pub fn token_path(&self) -> String {
        format!("/api/v1/tokens/{}", self.token_id)
    }

    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.secret)
    }

    pub fn req(&self, req: ClientRequest) -> ClientRequest {
        req.insert_header(("Authorization", self.authorization()))
    }

    pub async fn get(&self, app: &TestApp, path: &str) -> Resp {
        send(self.req(app.get(path)), None).await
    }

    pub async fn post(&self, app: &TestApp, path: &str, body: &Value) -> Resp {
        send(self.req(app.post(path)), Some(body)).await
    }

    pub async fn delete(&self, app: &TestApp, path: &str) -> Resp {
        send(self.req(app.client.delete(app.url(path))), None).await
    }

    /// Sends a message; returns the 201 body `{message, event_id}`.
    pub async fn send_message(&self, app: &TestApp, room_id: &str, body: &str) -> Value {
        let path = format!("/api/v1/rooms/{room_id}/messages");
        self.post(app, &path, &serde_json::json!({ "body": body }))
            .await
            .expect(201)
    }

    /// `GET /api/v1/events?<query>` (the long poll), as sent.
    pub async fn poll(&self, app: &TestApp, query: &str) -> Resp {
        let req = app
            .get(&format!("/api/v1/events?{query}"))
            .timeout(Duration::from_secs(70));
        send(self.req(req), None).await
    }

    /// Polls from `since` until `n` event frames have arrived (at most ~10 s); returns them
    /// and the last cursor.
    pub async fn poll_events(&self, app: &TestApp, since: &str, n: usize) -> (Vec<Value>, String) {
        let (mut frames, mut cursor) = (Vec::new(), since.to_owned());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while frames.len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {n} events by long poll",
                frames.len()
            );
            let page = self
                .poll(app, &format!("since={cursor}&timeout=2"))
                .await
                .expect(200);
            frames.extend(page["events"].as_array().expect("events array").clone());
            cursor = page["cursor"].as_str().expect("cursor").to_owned();
        }
        (frames, cursor)
    }

    /// Opens the stream with `Authorization: Bearer` (no cookie).
    pub async fn socket(&self, app: &TestApp, since: Option<&str>) -> Socket {
        let auth = self.authorization();
        match app
            .try_socket(since, &[("Authorization", auth.as_str())])
            .await
        {
            Ok(s) => s,
            Err(status) => panic!("bearer socket upgrade refused with {status}"),
        }
    }

    /// `POST /api/v1/stream/tickets` with this token; returns the ticket string.
    pub async fn ticket(&self, app: &TestApp) -> String {
        let req = self.req(app.post("/api/v1/stream/tickets"));
        let body = send(req, None).await.expect(201);
        body["ticket"].as_str().expect("ticket").to_owned()
    }
}

impl TestApp {
    /// Opens the stream with `?ticket=` alone (no cookie, no `Authorization`).
    pub async fn ticket_socket(&self, ticket: &str) -> Result<Socket, u16> {
        self.try_socket_query(&format!("ticket={ticket}"), &[])
            .await
    }

    /// A CORS preflight for a `POST` with a JSON body to `path`, from `origin`.
    pub async fn preflight(&self, path: &str, origin: &str) -> Resp {
        let req = self
            .client
            .request(actix_web::http::Method::OPTIONS, self.url(path))
            .insert_header(("Origin", origin))
            .insert_header(("Access-Control-Request-Method", "POST"))
            .insert_header(("Access-Control-Request-Headers", "content-type"));
        send(req, None).await
    }
}
