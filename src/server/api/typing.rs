//! Typing: `POST /api/v1/rooms/{id}/typing` (`core::typing`).

use super::json::Json;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::domain::Id;
use crate::error::Error;
use crate::server::api::auth::Caller;
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TypingBody {
    /// `true` while the user types (repeat it every few seconds while they go on), `false` when
    /// they stop without sending.
    typing: bool,
}

/// `POST /api/v1/rooms/{id}/typing`: the caller is (or stopped) typing in a room they are a
/// member of (204). The room's members get a short-lived `typing.updated`, at most one per
/// caller and room every ~3 s while typing goes on.
#[utoipa::path(operation_id = "rooms_typing", post, path = "/api/v1/rooms/{id}/typing", tag = "rooms", params(("id" = Id, Path, description = "the room id")), request_body = TypingBody, responses((status = 204, description = "done (an event was appended, or there was nothing new to say)"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn set(
    state: web::Data<AppState>,
    caller: Caller,
    room: web::Path<Id>,
    body: Json<TypingBody>,
) -> Result<HttpResponse, Error> {
    state
        .typists
        .set(
            &state.db,
            &state.writer,
            caller.user,
            room.into_inner(),
            body.typing,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
