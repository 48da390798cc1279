//! Photos: `POST /api/v1/attachments` (multipart, field `file`), `GET /api/v1/attachments/{id}`
//! and `…/{id}/thumbnail`.

use std::time::Duration;

use actix_multipart::{Multipart, MultipartError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use crate::core::attachments::{self, Attachment};
use crate::domain::Id;
use crate::error::{Class, Error};
use crate::server::api::auth::Caller;
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;

/// The upload form: one field, `file`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the multipart form
pub struct UploadForm {
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
}

fn too_large(limit: usize) -> Error {
    Error::new(
        Class::TooLarge,
        "payload_too_large",
        format!("uploads are limited to {limit} bytes"),
    )
}

fn multipart_error(e: MultipartError) -> Error {
    match e {
        MultipartError::ContentTypeMissing | MultipartError::ContentTypeIncompatible => Error::new(
            Class::UnsupportedMediaType,
            "unsupported_media_type",
            "send the file as multipart/form-data in a field named `file`",
        ),
        other => Error::bad_request(
            "invalid_body",
            format!("the multipart body is invalid: {other}"),
        ),
    }
}

/// How long an upload's body may take to arrive: it holds a place in the image pool meanwhile,
/// so a client trickling bytes can't keep it forever (10 MiB in this time is 85 KiB/s).
const READ_WITHIN: Duration = Duration::from_secs(120);

/// The bytes of the first field named `file`, cut off past `limit` (413).
async fn read_file(mut form: Multipart, limit: usize) -> Result<Option<Vec<u8>>, Error> {
    let mut file: Option<Vec<u8>> = None;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(multipart_error)?;
        let is_file = field.name() == Some("file");
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(multipart_error)?;
            if is_file {
                if bytes.len() + chunk.len() > limit {
                    return Err(too_large(limit));
                }
                bytes.extend_from_slice(&chunk);
            }
        }
        if is_file && file.is_none() {
            file = Some(bytes);
        }
    }
    Ok(file)
}

/// `POST /api/v1/attachments`: 201 `{id, content_type, size, width, height}`. The body is read
/// as it arrives and cut off past `HUBBUB_MAX_UPLOAD_BYTES` (413) instead of being buffered whole.
#[utoipa::path(operation_id = "attachments_upload", post, path = "/api/v1/attachments", tag = "attachments", request_body(content = UploadForm, content_type = "multipart/form-data"), responses((status = 201, body = Attachment), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn upload(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Error> {
    let limit = state.settings.max_upload_bytes;
    // Refuse at once what announces itself too large (allowing for the multipart framing).
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > limit + 64 * 1024) {
        return Err(too_large(limit));
    }
    // A place in the image pool's queue before the body is read: the bodies held at once are
    // bounded by the pool, not by how many clients upload.
    let admission = state.images.admit()?;
    let form = Multipart::new(req.headers(), payload);
    let file = tokio::time::timeout(READ_WITHIN, read_file(form, limit))
        .await
        .map_err(|_| {
            Error::new(
                Class::TooSlow,
                "upload_too_slow",
                format!("the upload must arrive within {} s", READ_WITHIN.as_secs()),
            )
        })??;
    let bytes = file
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::validation("file", "send the image in a field named `file`"))?;
    let to = attachments::Upload {
        db: &state.db,
        data_dir: &state.settings.data_dir,
        pool: &state.images,
        admission,
        max_pixels: state.settings.max_image_pixels,
    };
    let view = attachments::upload(to, caller.user, bytes).await?;
    Ok(HttpResponse::Created().json(view))
}

async fn serve(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: Id,
    thumb: bool,
) -> Result<HttpResponse, Error> {
    let (bytes, content_type) =
        attachments::read(&state.db, &state.settings.data_dir, caller.user, id, thumb).await?;
    let gif = content_type == "image/gif";
    // The bytes behind an id never change: the id is a strong validator.
    let etag = if thumb {
        format!("\"{id}-thumb\"")
    } else {
        format!("\"{id}\"")
    };
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if matches {
        HttpResponse::NotModified().finish()
    } else {
        HttpResponse::Ok().content_type(content_type).body(bytes)
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // An image needs nothing; opened as a page, it runs nothing. A GIF is stored as sent (its
    // frames aren't re-encoded), so it is a download when opened as a page; <img> still shows it.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; img-src 'self'; sandbox"),
    );
    if gif {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    Ok(response)
}

/// `GET /api/v1/attachments/{id}`: the image, to the uploader and members of the room of the
/// message that carries it (anyone signed in, for an avatar); 404 to everyone else.
#[utoipa::path(operation_id = "attachments_get", get, path = "/api/v1/attachments/{id}", tag = "attachments", params(("id" = Id, Path, description = "the id")), responses((status = 200, description = "the image bytes", content_type = "image/*"), (status = 304, description = "not modified (If-None-Match)"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    serve(state, caller, req, id.into_inner(), false).await
}

/// `GET /api/v1/attachments/{id}/thumbnail`: at most 320 px on the long side.
#[utoipa::path(operation_id = "attachments_thumbnail", get, path = "/api/v1/attachments/{id}/thumbnail", tag = "attachments", params(("id" = Id, Path, description = "the id")), responses((status = 200, description = "a JPEG or PNG at most 320 px on the long side", content_type = "image/*"), (status = 304, description = "not modified (If-None-Match)"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn thumbnail(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    serve(state, caller, req, id.into_inner(), true).await
}
