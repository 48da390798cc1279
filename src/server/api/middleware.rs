//! Middleware: the request id (and the envelope for errors the framework answers itself), and
//! the cross-origin guard on unsafe methods authenticated by cookie (CSRF).

use actix_cors::Cors;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use crate::config::{CookieSecure, Settings};
use crate::domain::Id;
use crate::error::{Class, Error};
use crate::server::api::auth::SESSION_COOKIE;
use crate::server::api::error::{for_status, request_id as current_request_id, REQUEST_ID};
use crate::server::state::AppState;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives every request an id: in the `X-Request-Id` header, in error envelopes, in logs.
/// An error the framework produced with no JSON body (no route, wrong method) gets the envelope.
///
/// HEAD is served as GET here, before routing, so it works wherever GET does: actix-http decided
/// when it parsed the request that a HEAD's answer goes out without its body.
pub async fn request_id(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    let oversized = oversized(&req);
    let id = Id::new().to_string();
    let header = HeaderValue::from_str(&id).ok();
    let result = REQUEST_ID
        .scope(id, async move {
            if let Some(err) = oversized {
                let res = err.error_response();
                return Ok(req.into_response(res).map_into_right_body());
            }
            match next.call(req).await {
                Ok(res) => {
                    let status = res.status();
                    let is_json = res
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.starts_with("application/json"));
                    if status.as_u16() >= 400 && !is_json {
                        let (req, _) = res.into_parts();
                        Ok(
                            ServiceResponse::new(req, for_status(status).error_response())
                                .map_into_right_body(),
                        )
                    } else {
                        Ok(res.map_into_left_body())
                    }
                }
                // An error from a middleware (not a handler): render it here, where the request
                // id is known, and hand the finished response on.
                Err(e) => {
                    let status = e.as_response_error().status_code();
                    if status.is_server_error() {
                        tracing::error!(request_id = %current_request_id(), error = %e, "middleware failed");
                    }
                    let response = for_status(status).error_response();
                    Err(InternalError::from_response(e.to_string(), response).into())
                }
            }
        })
        .await;
    match result {
        Ok(mut res) => {
            if let Some(value) = header {
                res.headers_mut().insert(X_REQUEST_ID, value);
            }
            Ok(res)
        }
        Err(e) => {
            let e: actix_web::Error = e;
            let mut response = e.error_response();
            if let Some(value) = header {
                response.headers_mut().insert(X_REQUEST_ID, value);
            }
            Err(InternalError::from_response(e.to_string(), response).into())
        }
    }
}

/// The longest request target (path and query) served: 414 beyond. Longer than any URL the API
/// builds; the HTTP parser itself gives up (400, no body) at 64 KiB.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The most header bytes (names and values) a request may carry: 431 beyond. The HTTP parser
/// itself stops at 96 headers or 128 KiB (431, no body).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// 414 or 431 for a request whose target or headers are larger than the server serves; 411 for
/// a request that asks to upgrade with a body of unstated length. (actix-http hands every
/// request with `Upgrade` to hubbub's upgrade path, which frames a body by `Content-Length`
/// only: a chunked one would be read as empty.)
fn oversized(req: &ServiceRequest) -> Option<Error> {
    let headers = req.headers();
    if headers.contains_key(header::UPGRADE) && headers.contains_key(header::TRANSFER_ENCODING) {
        return Some(Error::new(
            Class::LengthRequired,
            "length_required",
            "a request that asks to upgrade must give its body's Content-Length, not a chunked body",
        ));
    }
    let uri = req.uri();
    let target = uri.path().len() + uri.query().map_or(0, |q| q.len() + 1);
    if target > MAX_URI_BYTES {
        return Some(Error::new(
            Class::UriTooLong,
            "uri_too_long",
            format!("the request target is longer than {MAX_URI_BYTES} bytes"),
        ));
    }
    let headers: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    (headers > MAX_HEADER_BYTES).then(|| {
        Error::new(
            Class::HeadersTooLarge,
            "headers_too_large",
            format!("the request's headers are larger than {MAX_HEADER_BYTES} bytes"),
        )
    })
}

/// Whether a request's `Origin` is allowed: the server's own origin (from `Host`) or one of
/// `HUBBUB_ALLOWED_ORIGINS`.
pub fn origin_allowed(req: &HttpRequest, settings: &Settings) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    if settings.allowed_origins.contains(&origin) {
        return true;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    match host {
        Some(host) => origin == format!("http://{host}") || origin == format!("https://{host}"),
        None => false,
    }
}

/// Refuses cross-site unsafe requests that carry the session cookie (the one credential a
/// browser attaches by itself). Requests without it (bearer tokens, anonymous calls) carry no
/// ambient credential and pass. A request with neither `Origin` nor `Sec-Fetch-Site` doesn't
/// come from a browser (curl, scripts) and passes.
pub async fn csrf_guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method && req.cookie(SESSION_COOKIE).is_some() {
        let settings = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.settings.clone());
        let fetch_site = req
            .headers()
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let has_origin = req.headers().contains_key(header::ORIGIN);
        let allowed = match settings {
            Some(settings) if has_origin => origin_allowed(req.request(), &settings),
            Some(_) => matches!(fetch_site, "" | "same-origin" | "none"),
            None => false,
        };
        if !allowed {
            let err = Error::forbidden(
                "origin_not_allowed",
                "cross-origin requests with a session cookie are refused; add the origin to HUBBUB_ALLOWED_ORIGINS or use a bearer token",
            );
            let res: HttpResponse = err.error_response();
            return Ok(req.into_response(res).map_into_right_body());
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// `HUBBUB_COOKIE_SECURE=auto` (the default): the session cookie set on an answer gets
/// `Secure` when the request came over HTTPS as the browser sees it. A browser drops a `Secure`
/// cookie set over plain HTTP (but for `localhost`), so a server tried over
/// `http://192.168.1.20:8080` signed its users in and they were out again at the next request.
pub async fn secure_cookies(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let settings = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings.clone());
    let secure = settings.is_some_and(|s| {
        s.cookie_secure == CookieSecure::Auto && over_https(req.request(), s.trust_forwarded)
    });
    let mut res = next.call(req).await?;
    if secure {
        let headers = res.headers_mut();
        let cookies: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).cloned().collect();
        if !cookies.is_empty() {
            headers.remove(header::SET_COOKIE);
            for cookie in cookies {
                let marked = cookie
                    .to_str()
                    .ok()
                    .filter(|c| !c.to_ascii_lowercase().contains("; secure"))
                    .and_then(|c| HeaderValue::from_str(&format!("{c}; Secure")).ok());
                headers.append(header::SET_COOKIE, marked.unwrap_or(cookie));
            }
        }
    }
    Ok(res)
}

/// Whether the browser sent this request over HTTPS: its `Origin` says (browsers send it with
/// every POST, which is where sessions begin), else a trusted proxy's `X-Forwarded-Proto` or
/// `Forwarded: proto=`, else no (hubbub itself serves plain HTTP).
fn over_https(req: &HttpRequest, trust_forwarded: bool) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(origin) = header("origin").filter(|o| *o != "null") {
        return origin.to_ascii_lowercase().starts_with("https://");
    }
    if !trust_forwarded {
        return false;
    }
    if let Some(proto) = header("x-forwarded-proto") {
        return proto.split(',').next().map(str::trim) == Some("https");
    }
    header("forwarded").is_some_and(|f| {
        f.split([';', ','])
            .map(str::trim)
            .find_map(|part| part.strip_prefix("proto="))
            .is_some_and(|p| p.trim_matches('"').eq_ignore_ascii_case("https"))
    })
}

/// CORS for the configured web front-end origins (`HUBBUB_ALLOWED_ORIGINS`), credentials
/// included. Without any, no cross-origin page may call the API from a browser.
pub fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            X_REQUEST_ID,
            header::RETRY_AFTER,
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderName::from_static("x-ratelimit-reset"),
        ])
        .supports_credentials()
        .max_age(3600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// What Swagger UI at `/docs/` may load: its own scripts and styles from this server (it sets
/// inline styles, and draws icons from data: URLs) and the OpenAPI document; no frames.
const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                        img-src 'self' data:; connect-src 'self'; object-src 'none'; \
                        base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers every response gets: `nosniff` (a browser must take the declared type), and for
/// Swagger UI the security headers the web client has (`client.rs` sets its own).
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let docs = req.path().starts_with("/docs");
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if docs {
        for (name, value) in [
            (header::CONTENT_SECURITY_POLICY, DOCS_CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "same-origin"),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    Ok(res)
}

/// Counts requests by route and status and times them (for `/metrics`).
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let res = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        metrics.request(&route, res.status().as_u16(), started.elapsed());
    }
    Ok(res)
}
