//! How an `Error` becomes an HTTP response: the status, the envelope, and the request id.
//! Also the handlers that turn actix's own extractor failures into the envelope.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde_json::json;

use crate::error::{Class, Error};

tokio::task_local! {
    /// The id of the request being served (set by the request-id middleware).
    pub static REQUEST_ID: String;
}

/// The current request's id, or "-" outside a request.
pub fn request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".into())
}

/// The error envelope, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents `envelope`
pub struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong: a stable `code` (docs/errors.md), a message, the request id, and per-field
/// reasons for validation errors.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    code: String,
    message: String,
    request_id: String,
    fields: Option<std::collections::BTreeMap<String, String>>,
}

/// The error envelope of API.md.
pub fn envelope(err: &Error, request_id: &str) -> serde_json::Value {
    let mut body = json!({
        "code": err.code,
        "message": err.message,
        "request_id": request_id,
    });
    if let Some(fields) = &err.fields {
        body["fields"] = json!(fields);
    }
    json!({ "error": body })
}

/// The HTTP status of each class of error: the one place the numbers are chosen.
pub fn status_of(class: Class) -> StatusCode {
    match class {
        Class::BadRequest => StatusCode::BAD_REQUEST,
        Class::Unauthenticated => StatusCode::UNAUTHORIZED,
        Class::Forbidden => StatusCode::FORBIDDEN,
        Class::NotFound => StatusCode::NOT_FOUND,
        Class::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        Class::TooSlow => StatusCode::REQUEST_TIMEOUT,
        Class::Conflict => StatusCode::CONFLICT,
        Class::LengthRequired => StatusCode::LENGTH_REQUIRED,
        Class::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Class::UriTooLong => StatusCode::URI_TOO_LONG,
        Class::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Class::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        Class::TooMany => StatusCode::TOO_MANY_REQUESTS,
        Class::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        // nginx's "client closed request": logged and counted, never seen by the client.
        Class::ClientClosed => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Class::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Class::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        status_of(self.class)
    }

    fn error_response(&self) -> HttpResponse {
        let id = request_id();
        if self.is_load_shed() {
            tracing::debug!(request_id = %id, error = %self, "request shed");
        } else if self.is_server_fault() {
            tracing::error!(request_id = %id, error = %self, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after {
            response.insert_header((actix_web::http::header::RETRY_AFTER, seconds.to_string()));
        }
        response.json(envelope(self, &id))
    }
}

/// Malformed, mistyped, oversized or unlabelled JSON bodies.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let e = match &err {
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => Error::new(
            Class::TooLarge,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        ),
        JsonPayloadError::ContentType => Error::new(
            Class::UnsupportedMediaType,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        JsonPayloadError::Deserialize(e) if e.is_syntax() || e.is_eof() => {
            Error::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
        }
        JsonPayloadError::Deserialize(e) => {
            Error::bad_request("invalid_body", format!("the body doesn't fit: {e}"))
        }
        other => Error::bad_request("invalid_body", other.to_string()),
    };
    e.into()
}

/// A path segment that doesn't parse (a bad UUID, say).
pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    Error::bad_request(
        "invalid_path",
        format!("a path parameter is invalid: {err}"),
    )
    .into()
}

/// A query string that doesn't parse.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    Error::bad_request(
        "invalid_query",
        format!("the query string is invalid: {err}"),
    )
    .into()
}

/// 405 for a method the resource doesn't take, with `Allow` listing the ones it does (`methods`
/// as the routes name them: `get`, `post`, …; HEAD goes with GET).
pub fn method_not_allowed(methods: &[&str]) -> HttpResponse {
    let mut allow: Vec<String> = methods.iter().map(|m| m.to_ascii_uppercase()).collect();
    if methods.contains(&"get") {
        allow.push("HEAD".into());
    }
    let mut response = for_status(StatusCode::METHOD_NOT_ALLOWED).error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow.join(", ")) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    response
}

/// The error for a status produced outside our handlers (no route, wrong method, …).
pub fn for_status(status: StatusCode) -> Error {
    match status.as_u16() {
        404 => Error::not_found("not_found", "no such endpoint"),
        405 => Error::new(
            Class::MethodNotAllowed,
            "method_not_allowed",
            "this endpoint doesn't take that method",
        ),
        413 => Error::new(
            Class::TooLarge,
            "payload_too_large",
            "the request body is too large",
        ),
        415 => Error::new(
            Class::UnsupportedMediaType,
            "unsupported_media_type",
            "unsupported content type",
        ),
        s if s >= 500 => Error::internal(anyhow::anyhow!("status {s} from the framework")),
        // Any other client error the framework makes (it makes the ones above): a bad request.
        _ => Error::new(
            Class::BadRequest,
            "bad_request",
            status.canonical_reason().unwrap_or("bad request"),
        ),
    }
}
