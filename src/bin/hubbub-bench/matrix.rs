//! `matrix-send`: the `send` clients against a Matrix homeserver (Synapse) at `--matrix-url`,
//! for the side-by-side figure in docs/benchmarks.md. Each client is a registered Matrix user in
//! one public room and sends `m.room.message` with a fresh transaction id (Matrix's idempotency
//! key, as hubbub's clients send an `Idempotency-Key`).

use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::api;
use crate::send::Op;

async fn call(req: awc::ClientRequest, body: &Value, what: &str) -> Result<Value, String> {
    let mut resp = req
        .send_json(body)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .body()
        .limit(1 << 20)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status == 200 {
        Ok(value)
    } else {
        Err(format!("{what}: {status} {value}"))
    }
}

/// Registers `users` Matrix users (`m.login.dummy`: registration open without verification),
/// makes a public room and has everyone join it.
pub fn setup(url: &str, prefix: &str, users: usize) -> Result<Op, String> {
    let url = url.trim_end_matches('/').to_string();
    api::block(async move {
        let c = api::client(None);
        let tokens: Vec<Result<String, String>> = futures_util::stream::iter(0..users.max(1))
            .map(|i| {
                let (c, url) = (c.clone(), url.clone());
                async move {
                    let body = json!({
                        "username": format!("{prefix}m{i}"),
                        "password": "bench-password-1",
                        "auth": {"type": "m.login.dummy"},
                    });
                    let req = c.post(format!("{url}/_matrix/client/v3/register"));
                    let v = call(req, &body, "register").await?;
                    v["access_token"]
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("register: no access_token in {v}"))
                }
            })
            .buffered(4)
            .collect()
            .await;
        let tokens: Vec<String> = tokens.into_iter().collect::<Result<_, _>>()?;
        let req = c
            .post(format!("{url}/_matrix/client/v3/createRoom"))
            .bearer_auth(&tokens[0]);
        let room = call(
            req,
            &json!({"preset": "public_chat", "name": "send bench"}),
            "createRoom",
        )
        .await?["room_id"]
            .as_str()
            .ok_or("createRoom: no room_id")?
            .to_string();
        for token in &tokens[1..] {
            let req = c
                .post(format!("{url}/_matrix/client/v3/join/{room}"))
                .bearer_auth(token);
            call(req, &json!({}), "join").await?;
        }
        Ok(Op::Matrix {
            url,
            senders: Arc::new(tokens.into_iter().map(|t| (t, room.clone())).collect()),
        })
    })
}
