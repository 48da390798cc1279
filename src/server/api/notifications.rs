//! A member's notification setting for a room: `PUT /api/v1/rooms/{id}/notifications`.

use super::json::Json;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use super::with_event::WithEvent;
use crate::core::notifications::{self, NotificationSettings};
use crate::domain::Id;
use crate::error::Error;
use crate::server::api::auth::Caller;
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct NotificationsBody {
    /// `all` (every message), `mentions` (only those that mention you) or `none`.
    level: String,
    /// Silent until then, mentions included (RFC 3339); null or absent: not muted.
    #[serde(default)]
    muted_until: Option<String>,
}

/// `PUT /api/v1/rooms/{id}/notifications`: the caller's setting for a room they are a member
/// of (200 setting, with `event_id` when it changed).
#[utoipa::path(operation_id = "rooms_set_notifications", put, path = "/api/v1/rooms/{id}/notifications", tag = "rooms", params(("id" = Id, Path, description = "the room id")), request_body = NotificationsBody, responses((status = 200, body = WithEvent<NotificationSettings>), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn set(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<NotificationsBody>,
) -> Result<HttpResponse, Error> {
    let setting = notifications::parse(&body.level, body.muted_until.as_deref())?;
    let (settings, event) =
        notifications::set(&state.writer, caller.user, id.into_inner(), setting).await?;
    Ok(HttpResponse::Ok().json(WithEvent::new(settings, event)))
}
