//! The reference web client (`src/web/`), embedded in the binary and served at `/` and
//! `/web/{file}` under a Content-Security-Policy that allows only this server's own scripts.
//! After editing `src/web/`, `touch src/server/api/client.rs` before a release build so the embedded
//! copy is refreshed (debug builds read the folder directly).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};
use include_dir::{include_dir, Dir};

use crate::error::Error;

static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/src/web");

/// Only this origin's scripts, styles, images (and blob:/data: previews), and its own
/// HTTP and WebSocket endpoints.
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; connect-src 'self' ws: wss:; \
                   style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'";

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") | Some("mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// The file's bytes. Debug builds read `src/web/` from disk, so that editing the client needs
/// no rebuild (rustc doesn't know the embedded files changed); release builds use the copy
/// embedded at compile time.
fn contents(name: &str) -> Option<Vec<u8>> {
    if cfg!(debug_assertions) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
        if name.split('/').any(|part| part == ".." || part.is_empty()) {
            return None;
        }
        if let Ok(bytes) = std::fs::read(root.join(name)) {
            return Some(bytes);
        }
    }
    WEB.get_file(name).map(|f| f.contents().to_vec())
}

fn file(name: &str) -> Result<HttpResponse, Error> {
    let bytes = contents(name).ok_or_else(|| Error::not_found("not_found", "no such file"))?;
    let mut response = HttpResponse::Ok()
        .content_type(content_type(name))
        .body(bytes);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    Ok(response)
}

/// `GET /`: the client.
pub async fn index() -> Result<HttpResponse, Error> {
    file("index.html")
}

/// `GET /web/{file}`: its scripts, styles and images.
pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, Error> {
    file(&name.into_inner())
}
