//! Firebase Cloud Messaging, HTTP v1: a service account's OAuth token (JWT bearer grant, RS256,
//! from the account's own `token_uri`), cached until it expires, and the v1 message.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use jwt_simple::prelude::{Claims, RS256KeyPair, RSAKeyPairLike};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::push::notification::{Notification, Outcome};
use crate::push::transport::{Failure, Outgoing, Reply, Transport};

/// What the access token may do: send FCM messages, nothing else.
const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// A token is used until this long before Google says it expires.
const EARLY: Duration = Duration::from_secs(60);

/// The fields of a Google service-account JSON file that signing needs.
#[derive(Deserialize)]
struct ServiceAccount {
    project_id: String,
    private_key: String,
    client_email: String,
    token_uri: String,
    private_key_id: Option<String>,
}

/// An access token and when to stop using it.
struct AccessToken {
    value: String,
    until: Instant,
}

/// A service account and its cached access token.
pub struct Fcm {
    project_id: String,
    client_email: String,
    token_uri: String,
    key: RS256KeyPair,
    send_url: String,
    /// Held while a token is fetched, so that concurrent deliveries wait for one fetch.
    token: tokio::sync::Mutex<Option<AccessToken>>,
}

impl std::fmt::Debug for Fcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fcm")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("send_url", &self.send_url)
            .finish()
    }
}

/// The token endpoint's answer.
#[derive(Deserialize)]
struct Granted {
    access_token: String,
    expires_in: u64,
}

#[derive(Serialize)]
struct Scope {
    scope: &'static str,
}

impl Fcm {
    /// Reads the service-account file at `path`; messages go to `endpoint` (FCM's base URL).
    pub fn load(path: &Path, endpoint: &str) -> anyhow::Result<Fcm> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read HUBBUB_FCM_CREDENTIALS={}", path.display()))?;
        Fcm::from_json(&text, endpoint).with_context(|| {
            format!(
                "HUBBUB_FCM_CREDENTIALS={} is not a Google service-account key",
                path.display()
            )
        })
    }

    /// From the service account's JSON text.
    pub fn from_json(text: &str, endpoint: &str) -> anyhow::Result<Fcm> {
        let account: ServiceAccount = serde_json::from_str(text)?;
        let mut key = RS256KeyPair::from_pem(&account.private_key)
            .map_err(|e| anyhow::anyhow!("private_key is not an RSA key in PEM: {e}"))?;
        if let Some(id) = &account.private_key_id {
            key = key.with_key_id(id);
        }
        let endpoint = endpoint.trim_end_matches('/');
        Ok(Fcm {
            send_url: format!(
                "{endpoint}/v1/projects/{}/messages:send",
                account.project_id
            ),
            project_id: account.project_id,
            client_email: account.client_email,
            token_uri: account.token_uri,
            key,
            token: tokio::sync::Mutex::new(None),
        })
    }

    /// The signed assertion that asks `token_uri` for an access token (valid one hour).
    fn assertion(&self) -> anyhow::Result<String> {
        let mut claims = Claims::with_custom_claims(
            Scope { scope: SCOPE },
            jwt_simple::prelude::Duration::from_hours(1),
        )
        .with_issuer(&self.client_email)
        .with_audience(&self.token_uri);
        claims.invalid_before = None;
        self.key
            .sign(claims)
            .map_err(|e| anyhow::anyhow!("signing the assertion: {e}"))
    }

    fn token_request(&self) -> anyhow::Result<Outgoing> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", GRANT)
            .append_pair("assertion", &self.assertion()?)
            .finish();
        Ok(Outgoing {
            url: self.token_uri.clone(),
            headers: vec![(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: body.into_bytes(),
        })
    }

    /// A live access token: the cached one, or a fresh one from `token_uri`. `Err` is what the
    /// delivery comes to when there is none.
    async fn access_token(&self, transport: &dyn Transport) -> Result<String, Outcome> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.until) {
            return Ok(token.value.clone());
        }
        let request = self
            .token_request()
            .map_err(|e| Outcome::Failed(format!("{e:#}")))?;
        let reply = match transport.post(request).await {
            Ok(reply) => reply,
            Err(Failure::Forbidden(why)) => return Err(Outcome::Failed(why)),
            Err(failure) => {
                tracing::warn!(?failure, "no FCM access token");
                return Err(Outcome::Retry(None));
            }
        };
        let granted = match reply.status {
            200..=299 => serde_json::from_slice::<Granted>(&reply.body).ok(),
            _ => None,
        };
        let Some(granted) = granted else {
            tracing::warn!(
                status = reply.status,
                body = %String::from_utf8_lossy(&reply.body[..reply.body.len().min(300)]),
                "the FCM token endpoint refused the service account"
            );
            return Err(Outcome::Retry(reply.retry_after));
        };
        let lifetime = Duration::from_secs(granted.expires_in).saturating_sub(EARLY);
        *cached = Some(AccessToken {
            value: granted.access_token.clone(),
            until: Instant::now() + lifetime,
        });
        Ok(granted.access_token)
    }

    /// Forgets the cached token if it is still `used` (FCM refused it).
    async fn forget(&self, used: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|t| t.value == used) {
            *cached = None;
        }
    }

    /// The v1 message for one device: the notification as data (every value a string), high
    /// priority on Android, a background push on Apple devices (content-available, which APNs
    /// takes at priority 5 only), both collapsed by the event's id so that a retry replaces
    /// the copy a device hasn't received yet.
    pub fn message(
        &self,
        access_token: &str,
        device: &str,
        notification: &Notification,
    ) -> Outgoing {
        let data: serde_json::Map<String, Value> = notification
            .payload
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), Value::String(text))
            })
            .collect();
        let collapse = notification.event_id.to_string();
        let body = json!({
            "message": {
                "token": device,
                "data": data,
                "android": {"priority": "high", "collapse_key": collapse},
                "apns": {
                    "headers": {
                        "apns-collapse-id": collapse,
                        "apns-push-type": "background",
                        "apns-priority": "5",
                    },
                    "payload": {"aps": {"content-available": 1}},
                },
            }
        });
        Outgoing {
            url: self.send_url.clone(),
            headers: vec![
                ("Authorization".into(), format!("Bearer {access_token}")),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: body.to_string().into_bytes(),
        }
    }

    /// Sends `notification` to the device with registration token `device`. A 401 means the
    /// access token went bad: it is dropped and the message sent once more with a fresh one.
    pub async fn send(
        &self,
        transport: &dyn Transport,
        device: &str,
        notification: &Notification,
    ) -> Outcome {
        let mut refreshed = false;
        loop {
            let token = match self.access_token(transport).await {
                Ok(token) => token,
                Err(outcome) => return outcome,
            };
            let answer = transport
                .post(self.message(&token, device, notification))
                .await;
            if matches!(&answer, Ok(reply) if reply.status == 401) && !refreshed {
                self.forget(&token).await;
                refreshed = true;
                continue;
            }
            return classify(answer);
        }
    }
}

/// The FCM `errorCode`s in the error's details.
fn error_codes(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    value["error"]["details"]
        .as_array()
        .map(|details| {
            details
                .iter()
                .filter_map(|d| d["errorCode"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// What FCM's answer means. `UNREGISTERED` (the app was uninstalled or the token expired) and
/// `SENDER_ID_MISMATCH` (the token belongs to another Firebase project: it never will be ours)
/// end the subscription.
pub fn classify(answer: Result<Reply, Failure>) -> Outcome {
    let reply = match answer {
        Ok(reply) => reply,
        Err(Failure::Forbidden(why)) => return Outcome::Failed(why),
        Err(Failure::Timeout | Failure::Network(_)) => return Outcome::Retry(None),
    };
    let codes = error_codes(&reply.body);
    let gone = codes
        .iter()
        .any(|c| c == "UNREGISTERED" || c == "SENDER_ID_MISMATCH");
    match reply.status {
        200..=299 => Outcome::Delivered,
        404 => Outcome::Gone,
        _ if gone => Outcome::Gone,
        429 | 500..=599 => Outcome::Retry(reply.retry_after),
        status => Outcome::Failed(format!(
            "FCM answered {status}: {}",
            String::from_utf8_lossy(&reply.body[..reply.body.len().min(300)])
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use futures_util::future::LocalBoxFuture;
    use jwt_simple::prelude::{RS256PublicKey, RSAPublicKeyLike, VerificationOptions};

    use super::*;

    /// Answers POSTs from a script and keeps what it was sent.
    #[derive(Default)]
    struct Scripted {
        answers: RefCell<VecDeque<Result<Reply, Failure>>>,
        sent: RefCell<Vec<Outgoing>>,
    }

    impl Scripted {
        fn answer(&self, status: u16, body: Value) {
            self.answers.borrow_mut().push_back(Ok(Reply {
                status,
                retry_after: None,
                body: body.to_string().into_bytes(),
            }));
        }
        fn fail(&self, failure: Failure) {
            self.answers.borrow_mut().push_back(Err(failure));
        }
        fn sent(&self) -> Vec<Outgoing> {
            self.sent.borrow().clone()
        }
    }

    impl Transport for Scripted {
        fn post(&self, request: Outgoing) -> LocalBoxFuture<'_, Result<Reply, Failure>> {
            self.sent.borrow_mut().push(request);
            let answer = self.answers.borrow_mut().pop_front().expect("an answer");
            Box::pin(async move { answer })
        }
    }

    /// A service account with a fresh RSA key (openssl: pure-Rust generation is slow unoptimized).
    fn account() -> (String, RS256PublicKey) {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let pkey = openssl::pkey::PKey::from_rsa(rsa).unwrap();
        let pem = String::from_utf8(pkey.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let public = String::from_utf8(pkey.public_key_to_pem().unwrap()).unwrap();
        let json = json!({
            "type": "service_account",
            "project_id": "hubbub-test",
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": "push@hubbub-test.iam.gserviceaccount.com",
            "token_uri": "https://oauth2.example.test/token",
        });
        (json.to_string(), RS256PublicKey::from_pem(&public).unwrap())
    }

    fn notification() -> Notification {
        let payload = json!({"room_id": "r1", "unread": 3, "mention": true});
        Notification {
            event_id: 77,
            payload: payload.as_object().unwrap().clone(),
        }
    }

    fn header<'a>(request: &'a Outgoing, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn granted(token: &str) -> Value {
        json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})
    }

    #[tokio::test]
    async fn the_token_comes_from_a_signed_assertion_and_the_message_has_v1_shape() {
        let (json, public) = account();
        let fcm = Fcm::from_json(&json, "https://fcm.example.test/").unwrap();
        let net = Scripted::default();
        net.answer(200, granted("ya29.first"));
        net.answer(200, json!({"name": "projects/hubbub-test/messages/1"}));

        let outcome = fcm.send(&net, "device-token-1", &notification()).await;

        assert_eq!(outcome, Outcome::Delivered);
        let sent = net.sent();
        assert_eq!(sent[0].url, "https://oauth2.example.test/token");
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&sent[0].body)
                .into_owned()
                .collect();
        assert_eq!(form["grant_type"], GRANT);
        let options = VerificationOptions {
            allowed_issuers: Some(["push@hubbub-test.iam.gserviceaccount.com".to_string()].into()),
            allowed_audiences: Some(["https://oauth2.example.test/token".to_string()].into()),
            ..Default::default()
        };
        let claims = public
            .verify_token::<Value>(&form["assertion"], Some(options))
            .expect("the assertion verifies with the account's public key");
        assert_eq!(claims.custom["scope"], SCOPE);
        let (iat, exp) = (claims.issued_at.unwrap(), claims.expires_at.unwrap());
        assert_eq!((exp - iat).as_secs(), 3600);
        assert_eq!(
            sent[1].url,
            "https://fcm.example.test/v1/projects/hubbub-test/messages:send"
        );
        assert_eq!(header(&sent[1], "authorization"), Some("Bearer ya29.first"));
        let body: Value = serde_json::from_slice(&sent[1].body).unwrap();
        let message = &body["message"];
        assert_eq!(message["token"], "device-token-1");
        assert_eq!(
            message["data"],
            json!({"room_id": "r1", "unread": "3", "mention": "true"})
        );
        assert_eq!(message["android"]["priority"], "high");
        assert_eq!(message["android"]["collapse_key"], "77");
        assert_eq!(message["apns"]["headers"]["apns-collapse-id"], "77");
        assert_eq!(message["apns"]["headers"]["apns-push-type"], "background");
        assert_eq!(message["apns"]["headers"]["apns-priority"], "5");
        assert_eq!(message["apns"]["payload"]["aps"]["content-available"], 1);
    }

    #[tokio::test]
    async fn the_token_is_cached_and_a_401_fetches_a_fresh_one_once() {
        let (json, _) = account();
        let fcm = Fcm::from_json(&json, "https://fcm.example.test").unwrap();
        let net = Scripted::default();
        net.answer(200, granted("ya29.first"));
        net.answer(200, json!({}));
        net.answer(200, json!({}));
        assert_eq!(
            fcm.send(&net, "d", &notification()).await,
            Outcome::Delivered
        );
        assert_eq!(
            fcm.send(&net, "d", &notification()).await,
            Outcome::Delivered
        );
        assert_eq!(net.sent().len(), 3, "one token request for two messages");

        net.answer(
            401,
            json!({"error": {"code": 401, "status": "UNAUTHENTICATED"}}),
        );
        net.answer(200, granted("ya29.second"));
        net.answer(200, json!({}));
        assert_eq!(
            fcm.send(&net, "d", &notification()).await,
            Outcome::Delivered
        );
        let sent = net.sent();
        assert_eq!(sent[4].url, "https://oauth2.example.test/token");
        assert_eq!(
            header(&sent[5], "authorization"),
            Some("Bearer ya29.second")
        );

        net.answer(401, json!({}));
        net.answer(200, granted("ya29.third"));
        net.answer(401, json!({}));
        assert!(matches!(
            fcm.send(&net, "d", &notification()).await,
            Outcome::Failed(_)
        ));
        assert_eq!(net.sent().len(), 9, "one retry, not a loop");
    }

    #[tokio::test]
    async fn a_failing_token_endpoint_is_a_retry() {
        let (json, _) = account();
        let fcm = Fcm::from_json(&json, "https://fcm.example.test").unwrap();
        let net = Scripted::default();
        net.answer(500, json!({}));
        assert_eq!(
            fcm.send(&net, "d", &notification()).await,
            Outcome::Retry(None)
        );
        net.answer(400, json!({"error": "invalid_grant"}));
        assert_eq!(
            fcm.send(&net, "d", &notification()).await,
            Outcome::Retry(None)
        );
        net.fail(Failure::Timeout);
        assert_eq!(
            fcm.send(&net, "d", &notification()).await,
            Outcome::Retry(None)
        );
        assert_eq!(net.sent().len(), 3, "no message without a token");
    }

    #[test]
    fn answers_are_classified() {
        let reply = |status: u16, body: Value| {
            Ok(Reply {
                status,
                retry_after: Some(Duration::from_secs(9)),
                body: body.to_string().into_bytes(),
            })
        };
        let fcm_error = |code: &str| {
            json!({"error": {"code": 400, "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}
            ]}})
        };
        assert_eq!(classify(reply(200, json!({}))), Outcome::Delivered);
        assert_eq!(classify(reply(404, json!({}))), Outcome::Gone);
        assert_eq!(
            classify(reply(400, fcm_error("UNREGISTERED"))),
            Outcome::Gone
        );
        assert_eq!(
            classify(reply(403, fcm_error("SENDER_ID_MISMATCH"))),
            Outcome::Gone
        );
        assert!(matches!(
            classify(reply(400, fcm_error("INVALID_ARGUMENT"))),
            Outcome::Failed(_)
        ));
        assert_eq!(
            classify(reply(429, fcm_error("QUOTA_EXCEEDED"))),
            Outcome::Retry(Some(Duration::from_secs(9)))
        );
        assert_eq!(
            classify(reply(503, json!({}))),
            Outcome::Retry(Some(Duration::from_secs(9)))
        );
        assert!(matches!(
            classify(reply(403, json!({}))),
            Outcome::Failed(_)
        ));
        assert_eq!(
            classify(Err(Failure::Network("reset".into()))),
            Outcome::Retry(None)
        );
        assert!(matches!(
            classify(Err(Failure::Forbidden("private".into()))),
            Outcome::Failed(_)
        ));
    }

    #[test]
    fn a_file_that_is_not_a_service_account_is_a_clear_error() {
        let err = Fcm::load(Path::new("/nonexistent/fcm.json"), "https://x").unwrap_err();
        assert!(format!("{err:#}").contains("HUBBUB_FCM_CREDENTIALS"));
        assert!(Fcm::from_json("{}", "https://x").is_err());
        let bad_key = json!({
            "project_id": "p", "private_key": "nope", "client_email": "e", "token_uri": "https://t"
        });
        assert!(Fcm::from_json(&bad_key.to_string(), "https://x").is_err());
    }
}
