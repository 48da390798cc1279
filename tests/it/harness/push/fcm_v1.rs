//! FCM HTTP v1's side of a send: the message as Google validates it, and Google's error
//! answers (google.rpc.Status with an FcmError detail).

use actix_web::{HttpResponse, HttpResponseBuilder};
use serde_json::{json, Map, Value};

use super::server::Reply;

/// FCM's limit on a message's data.
const MAX_DATA: usize = 4096;

/// One v1 message that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct FcmDelivery {
    /// The device's registration token (`message.token`).
    pub token: String,
    /// `message.data`: every value a string.
    pub data: Map<String, Value>,
    /// `message.android.collapse_key`.
    pub collapse_key: String,
    /// The whole request body.
    pub raw: Value,
}

/// The body as FCM v1 validates it; the delivery it makes.
pub(super) fn check_message(raw: Value) -> Result<FcmDelivery, String> {
    let top = raw.as_object().ok_or("the body is not an object")?;
    if let Some(key) = top
        .keys()
        .find(|k| !["message", "validate_only"].contains(&k.as_str()))
    {
        return Err(format!(
            "Unknown name {key:?}: the body holds a stray field"
        ));
    }
    if top.get("validate_only") == Some(&Value::Bool(true)) {
        return Err("validate_only is true: FCM would deliver nothing".into());
    }
    let message = top
        .get("message")
        .and_then(Value::as_object)
        .ok_or("message is not an object")?;
    let known = [
        "name",
        "data",
        "notification",
        "android",
        "webpush",
        "apns",
        "fcm_options",
        "token",
    ];
    if let Some(key) = message.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!("Unknown name {key:?} at message"));
    }
    let token = match message.get("token") {
        Some(Value::String(t)) if !t.is_empty() => t.clone(),
        other => {
            return Err(format!(
                "message.token is {other:?}, not a non-empty string"
            ))
        }
    };
    let data = message
        .get("data")
        .and_then(Value::as_object)
        .ok_or("message.data is not an object")?;
    for (key, value) in data {
        if !value.is_string() {
            return Err(format!("message.data.{key} is {value}, not a string"));
        }
        let reserved = ["from", "notification", "message_type"].contains(&key.as_str())
            || key.starts_with("google.")
            || key.starts_with("gcm.");
        if reserved {
            return Err(format!("message.data.{key} is a reserved key"));
        }
    }
    if serde_json::to_vec(data).map_or(0, |d| d.len()) > MAX_DATA {
        return Err(format!("message.data is over {MAX_DATA} bytes"));
    }
    let android = message
        .get("android")
        .and_then(Value::as_object)
        .ok_or("message.android is not an object")?;
    let collapse_key = android
        .get("collapse_key")
        .and_then(Value::as_str)
        .ok_or("message.android.collapse_key is not a string")?
        .to_owned();
    if let Some(priority) = android.get("priority") {
        let known = priority
            .as_str()
            .is_some_and(|p| p.eq_ignore_ascii_case("normal") || p.eq_ignore_ascii_case("high"));
        if !known {
            return Err(format!(
                "message.android.priority {priority} is not normal or high"
            ));
        }
    }
    if let Some(ttl) = android.get("ttl") {
        let duration = ttl
            .as_str()
            .and_then(|t| t.strip_suffix('s'))
            .is_some_and(|n| n.parse::<f64>().is_ok_and(|n| n >= 0.0));
        if !duration {
            return Err(format!(
                "message.android.ttl {ttl} is not a duration like \"3600s\""
            ));
        }
    }
    if let Some(apns) = message.get("apns") {
        check_apns(apns)?;
    }
    Ok(FcmDelivery {
        token,
        data: data.clone(),
        collapse_key,
        raw,
    })
}

fn check_apns(apns: &Value) -> Result<(), String> {
    let apns = apns.as_object().ok_or("message.apns is not an object")?;
    if let Some(headers) = apns.get("headers") {
        let strings = headers
            .as_object()
            .is_some_and(|h| h.values().all(Value::is_string));
        if !strings {
            return Err(format!(
                "message.apns.headers {headers} is not an object of strings"
            ));
        }
    }
    if let Some(payload) = apns.get("payload") {
        if !payload["aps"].is_object() {
            return Err(format!("message.apns.payload {payload} has no aps object"));
        }
    }
    Ok(())
}

pub(super) fn with_retry_after(reply: &Reply) -> HttpResponseBuilder {
    let status = actix_web::http::StatusCode::from_u16(reply.status).expect("a valid status");
    let mut resp = HttpResponse::build(status);
    if let Some(secs) = reply.retry_after {
        resp.insert_header(("Retry-After", secs.to_string()));
    }
    resp
}

/// An error in FCM v1's shape (google.rpc.Status with an FcmError detail).
pub(super) fn google_error(reply: &Reply, message: &str) -> HttpResponse {
    let (status, error_code, message) = match reply.status {
        400 => ("INVALID_ARGUMENT", Some("INVALID_ARGUMENT"), message),
        401 => (
            "UNAUTHENTICATED",
            None,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, \
             login cookie or other valid authentication credential. See \
             https://developers.google.com/identity/sign-in/web/devconsole-project.",
        ),
        403 => (
            "PERMISSION_DENIED",
            Some("SENDER_ID_MISMATCH"),
            "SenderId mismatch",
        ),
        404 => (
            "NOT_FOUND",
            Some("UNREGISTERED"),
            "Requested entity was not found.",
        ),
        429 => (
            "RESOURCE_EXHAUSTED",
            Some("QUOTA_EXCEEDED"),
            "Quota exceeded for quota metric 'Send requests'.",
        ),
        500 => ("INTERNAL", Some("INTERNAL"), "Internal error encountered."),
        503 => (
            "UNAVAILABLE",
            Some("UNAVAILABLE"),
            "The service is currently unavailable.",
        ),
        _ => ("UNKNOWN", None, message),
    };
    let mut error = json!({ "code": reply.status, "message": message, "status": status });
    if let Some(code) = error_code {
        error["details"] = json!([{
            "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
            "errorCode": code,
        }]);
    }
    with_retry_after(reply).json(json!({ "error": error }))
}
