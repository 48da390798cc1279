//! Leaving and taking one's data: `DELETE /api/v1/me`, `DELETE /api/v1/bots/{id}`,
//! `GET /api/v1/me/export` (streamed).

use super::json::Json;
use actix_session::Session;
use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::core::{deletion, export};
use crate::domain::Id;
use crate::error::Error;
use crate::server::api::auth::Caller;
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct DeleteAccountBody {
    password: String,
}

/// `DELETE /api/v1/me`: deletes the caller's account and their bots (204; the session cookie
/// is cleared). From a signed-in session only, with the password.
#[utoipa::path(operation_id = "accounts_delete_me", delete, path = "/api/v1/me", tag = "accounts", request_body = DeleteAccountBody, responses((status = 204, description = "deleted: every session and token is revoked (sockets close with 4100), the user has left every room, their messages are tombstones (docs/accounts.md)"), (status = "4XX", description = "a client error, in the error envelope (403 wrong_password, 403 session_required)", body = ErrorBody)), security(("session" = [])))]
pub async fn delete_me(
    state: web::Data<AppState>,
    session: Session,
    caller: Caller,
    body: Json<DeleteAccountBody>,
) -> Result<HttpResponse, Error> {
    if caller.bearer {
        return Err(Error::forbidden(
            "session_required",
            "an account is deleted from a signed-in session, not with an API token",
        ));
    }
    let revoked = deletion::delete_account(
        &state.db,
        &state.writer,
        &state.hashes,
        &state.settings.data_dir,
        caller.user,
        body.into_inner().password,
    )
    .await?;
    for credential in revoked {
        state.credentials.revoke(credential);
    }
    session.purge();
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/v1/bots/{id}`: deletes one of the caller's bots as an account is deleted (204;
/// 404 user_not_found if it isn't theirs).
#[utoipa::path(operation_id = "tokens_delete_bot", delete, path = "/api/v1/bots/{id}", tag = "bots", params(("id" = Id, Path, description = "the bot's user id")), responses((status = 204, description = "deleted: its tokens are revoked, it has left every room, its messages are tombstones"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn delete_bot(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    let revoked = deletion::delete_bot(
        &state.writer,
        &state.settings.data_dir,
        caller.user,
        id.into_inner(),
    )
    .await?;
    for credential in revoked {
        state.credentials.revoke(credential);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The shape of an export, for the OpenAPI document (the answer is streamed, not built from
/// this type).
#[derive(Serialize, ToSchema)]
pub struct Export {
    /// `hubbub-export/1`.
    format: String,
    exported_at: String,
    profile: crate::core::views::User,
    friends: Vec<crate::core::views::Friend>,
    blocks: Vec<crate::core::views::Friend>,
    /// `{id, name, kind, role, joined_at}` for each room the user is in.
    rooms: Vec<serde_json::Value>,
    /// Every file the user uploaded: the attachment's metadata with `url`, `thumbnail_url`,
    /// `message_id` (absent if unattached) and `created_at`.
    uploads: Vec<serde_json::Value>,
    /// The user's messages, oldest first: `{id, room_id, created_at, edited_at, reply_to, body,
    /// attachments}`.
    messages: Vec<serde_json::Value>,
}

/// Where the streamed document is.
enum Stage {
    Uploads(Option<Id>),
    Messages(i64),
    Done,
}

/// `GET /api/v1/me/export`: the caller's data as one JSON document, streamed (docs/api.md,
/// "Exporting one's data"). At most one per `HUBBUB_EXPORT_INTERVAL_SECS` per user (429
/// rate_limited with `Retry-After`).
#[utoipa::path(operation_id = "accounts_export", get, path = "/api/v1/me/export", tag = "accounts", responses((status = 200, body = Export, description = "the export, as an attachment named hubbub-export-<username>.json"), (status = "4XX", description = "a client error, in the error envelope (429 rate_limited)", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn export(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    let head = export::start(&state.db, caller.user, state.settings.export_interval).await?;
    let filename = format!("hubbub-export-{}.json", head.profile.username);
    let mut opening = serde_json::to_string(&head)?;
    // The head is an object: the pages go in before its closing brace.
    opening.pop();
    opening.push_str(",\"uploads\":[");
    let user = caller.user;
    let db = state.db.clone();
    let pages =
        futures_util::stream::unfold((Stage::Uploads(None), false), move |(stage, wrote)| {
            let db = db.clone();
            async move {
                let (chunk, next) = match stage {
                    Stage::Done => return None,
                    Stage::Uploads(after) => match export::uploads_page(&db, user, after).await {
                        Ok((items, more)) => {
                            let (mut chunk, wrote) = items_json(&items, wrote);
                            match more {
                                Some(id) => (chunk, (Stage::Uploads(Some(id)), wrote)),
                                None => {
                                    chunk.push_str("],\"messages\":[");
                                    (chunk, (Stage::Messages(0), false))
                                }
                            }
                        }
                        Err(e) => return Some((Err(e), (Stage::Done, wrote))),
                    },
                    Stage::Messages(after) => match export::messages_page(&db, user, after).await {
                        Ok((items, more)) => {
                            let (mut chunk, wrote) = items_json(&items, wrote);
                            match more {
                                Some(seq) => (chunk, (Stage::Messages(seq), wrote)),
                                None => {
                                    chunk.push_str("]}");
                                    (chunk, (Stage::Done, wrote))
                                }
                            }
                        }
                        Err(e) => return Some((Err(e), (Stage::Done, wrote))),
                    },
                };
                Some((Ok::<_, Error>(Bytes::from(chunk)), next))
            }
        });
    let first = futures_util::stream::once(async move { Ok::<_, Error>(Bytes::from(opening)) });
    use futures_util::StreamExt as _;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(filename)],
        })
        .streaming(first.chain(pages)))
}

/// The items as the elements of a JSON array continuing one that has elements already if
/// `wrote`; and whether it has some now.
fn items_json<T: Serialize>(items: &[T], mut wrote: bool) -> (String, bool) {
    let mut out = String::new();
    for item in items {
        match serde_json::to_string(item) {
            Ok(json) => {
                if wrote {
                    out.push(',');
                }
                out.push_str(&json);
                wrote = true;
            }
            Err(e) => tracing::error!(error = %e, "an export item did not serialize"),
        }
    }
    (out, wrote)
}
