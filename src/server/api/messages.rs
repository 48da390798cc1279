//! Messages: `POST /api/v1/rooms/{id}/messages` (idempotent with `Idempotency-Key`) and
//! `GET /api/v1/rooms/{id}/messages?before=&after=&limit=`.

use super::json::Json;
use actix_web::http::header::ContentType;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::core::messages::{self, Anchor, History};
use crate::core::reactions;
use crate::core::views::Message;
use crate::domain::Id;
use crate::error::Error;
use crate::events;
use crate::server::api::auth::Caller;
use crate::server::api::error::ErrorBody;
use crate::server::api::paging;
use crate::server::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct SendBody {
    /// Required unless the message carries attachments.
    body: Option<String>,
    reply_to: Option<Id>,
    #[serde(default)]
    attachment_ids: Vec<Id>,
    /// Users the message mentions: current members of the room, at most 50 (duplicates
    /// merged).
    #[serde(default)]
    mention_ids: Vec<Id>,
}

/// A sent or edited message, with the id of its event.
#[derive(Serialize, ToSchema)]
pub struct Sent<'a> {
    message: &'a Message,
    /// The event's cursor.
    event_id: String,
}

/// The answer to a send or an edit: the same bytes for a first send and its retries, which
/// get the same outcome back from core.
fn answer(status: StatusCode, sent: &messages::Sent) -> Result<HttpResponse, Error> {
    let body = serde_json::to_string(&Sent {
        message: &sent.message,
        event_id: events::cursor(sent.event),
    })?;
    Ok(HttpResponse::build(status)
        .content_type(ContentType::json())
        .body(body))
}

/// `POST /api/v1/rooms/{id}/messages` → 201 `{message, event_id}`; a retry with the same
/// `Idempotency-Key` gets the same answer, byte for byte.
#[utoipa::path(operation_id = "messages_send", post, path = "/api/v1/rooms/{id}/messages", tag = "messages", params(("id" = Id, Path, description = "the room id"), ("Idempotency-Key" = Option<String>, Header, description = "1-255 printable ASCII; a retry returns the original answer")), request_body = SendBody, responses((status = 201, body = Sent), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn send(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    room: web::Path<Id>,
    body: Json<SendBody>,
) -> Result<HttpResponse, Error> {
    let key = match req.headers().get("idempotency-key") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| {
                    Error::bad_request(
                        "invalid_idempotency_key",
                        "Idempotency-Key must be printable ASCII",
                    )
                })?
                .to_string(),
        ),
    };
    let body = body.into_inner();
    if body.body.is_none() && body.attachment_ids.is_empty() {
        return Err(Error::bad_request("invalid_body", "missing field `body`"));
    }
    let room = room.into_inner();
    let sent = messages::send(
        &state.writer,
        caller.user,
        messages::Send {
            room,
            body: body.body.unwrap_or_default(),
            reply_to: body.reply_to,
            attachment_ids: body.attachment_ids,
            mention_ids: body.mention_ids,
            idempotency_key: key,
        },
    )
    .await?;
    // The message ends the author's typing (clients clear it on `message.created`): their next
    // keystroke is announced at once.
    state.typists.message_sent(caller.user, room);
    answer(StatusCode::CREATED, &sent)
}

#[derive(Deserialize, ToSchema)]
pub struct HistoryQuery {
    before: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /api/v1/rooms/{id}/messages`: a page of history, oldest first.
#[utoipa::path(operation_id = "messages_history", get, path = "/api/v1/rooms/{id}/messages", tag = "messages", params(("id" = Id, Path, description = "the room id"), ("before" = Option<Id>, Query, description = "a message id"), ("after" = Option<Id>, Query, description = "a message id"), ("limit" = Option<i64>, Query, description = "1-100, default 50")), responses((status = 200, body = History), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn history(
    state: web::Data<AppState>,
    caller: Caller,
    room: web::Path<Id>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, Error> {
    let limit = paging::limit(query.limit.as_deref(), 50, messages::MAX_PAGE)?;
    let anchor_id = |raw: &str| {
        raw.parse::<Id>()
            .map_err(|_| Error::bad_request("invalid_cursor", "before/after must be a message id"))
    };
    let anchor = match (query.before.as_deref(), query.after.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(Error::bad_request(
                "invalid_query",
                "give before or after, not both",
            ));
        }
        (Some(b), None) => Anchor::Before(anchor_id(b)?),
        (None, Some(a)) => Anchor::After(anchor_id(a)?),
        (None, None) => Anchor::Latest,
    };
    let page = messages::history(&state.db, caller.user, room.into_inner(), anchor, limit).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Deserialize, ToSchema)]
pub struct EditBody {
    body: String,
}

/// `PATCH /api/v1/rooms/{id}/messages/{message_id}`: the author edits (200 `{message, event_id}`).
#[utoipa::path(operation_id = "messages_edit", patch, path = "/api/v1/rooms/{id}/messages/{message_id}", tag = "messages", params(("id" = Id, Path, description = "the room id"), ("message_id" = Id, Path, description = "the message id")), request_body = EditBody, responses((status = 200, body = Sent), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn edit(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Id, Id)>,
    body: Json<EditBody>,
) -> Result<HttpResponse, Error> {
    let (room, message) = path.into_inner();
    let edited = messages::edit(
        &state.writer,
        caller.user,
        room,
        message,
        body.into_inner().body,
    )
    .await?;
    answer(StatusCode::OK, &edited)
}

/// `DELETE /api/v1/rooms/{id}/messages/{message_id}`: the author, or an owner or admin,
/// deletes; history keeps a tombstone (204).
#[utoipa::path(operation_id = "messages_delete", delete, path = "/api/v1/rooms/{id}/messages/{message_id}", tag = "messages", params(("id" = Id, Path, description = "the room id"), ("message_id" = Id, Path, description = "the message id")), responses((status = 204, description = "done"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Id, Id)>,
) -> Result<HttpResponse, Error> {
    let (room, message) = path.into_inner();
    messages::delete(
        &state.writer,
        &state.settings.data_dir,
        caller.user,
        room,
        message,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /api/v1/rooms/{id}/messages/{message_id}/reactions/{emoji}` (204, idempotent).
#[utoipa::path(operation_id = "messages_react", put, path = "/api/v1/rooms/{id}/messages/{message_id}/reactions/{emoji}", tag = "messages", params(("id" = Id, Path, description = "the room id"), ("message_id" = Id, Path, description = "the message id"), ("emoji" = String, Path, description = "the reaction, URL-encoded")), responses((status = 204, description = "done"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn react(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Id, Id, String)>,
) -> Result<HttpResponse, Error> {
    let (room, message, emoji) = path.into_inner();
    reactions::set(&state.writer, caller.user, room, message, emoji, true).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/v1/rooms/{id}/messages/{message_id}/reactions/{emoji}` (204, idempotent).
#[utoipa::path(operation_id = "messages_unreact", delete, path = "/api/v1/rooms/{id}/messages/{message_id}/reactions/{emoji}", tag = "messages", params(("id" = Id, Path, description = "the room id"), ("message_id" = Id, Path, description = "the message id"), ("emoji" = String, Path, description = "the reaction, URL-encoded")), responses((status = 204, description = "done"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn unreact(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Id, Id, String)>,
) -> Result<HttpResponse, Error> {
    let (room, message, emoji) = path.into_inner();
    reactions::set(&state.writer, caller.user, room, message, emoji, false).await?;
    Ok(HttpResponse::NoContent().finish())
}
