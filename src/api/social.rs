//! Friends and blocks: `/api/v1/friends…` and `/api/v1/blocks…`.

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::api::auth::Caller;
use crate::api::WithEvent;
use crate::core::social::{self, Requested};
use crate::core::views::{Friend, FriendRequest};
use crate::domain::Id;
use crate::error::Error;
use crate::events;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct RequestBody {
    user_id: Id,
}

/// `POST /api/v1/friends/requests`: 201 a new pending request; 200 the existing one, or the
/// friendship when the other user had already asked (or you are friends already).
pub async fn request(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<RequestBody>,
) -> Result<HttpResponse, Error> {
    let answer = match social::request(&state.writer, caller.user, body.user_id).await? {
        Requested::Created(request, event) => {
            HttpResponse::Created().json(with_event(request, Some(event)))
        }
        Requested::Existing(request, event) => HttpResponse::Ok().json(with_event(request, event)),
    };
    Ok(answer)
}

fn with_event(request: FriendRequest, event: Option<i64>) -> WithEvent<FriendRequest> {
    WithEvent {
        inner: request,
        event_id: event.map(events::cursor),
    }
}

/// `GET /api/v1/friends/requests`: `{incoming, outgoing}`.
pub async fn requests(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    Ok(HttpResponse::Ok().json(social::requests(&state.db, caller.user).await?))
}

/// `POST /api/v1/friends/requests/{id}/accept`: 200 `{user, since, event_id}`.
pub async fn accept(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    let (friend, event) = social::accept(&state.writer, caller.user, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(WithEvent::<Friend> {
        inner: friend,
        event_id: Some(events::cursor(event)),
    }))
}

/// `POST /api/v1/friends/requests/{id}/decline`: 200.
pub async fn decline(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    let id = id.into_inner();
    let event = social::decline(&state.writer, caller.user, id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "request_id": id,
        "status": "declined",
        "event_id": events::cursor(event),
    })))
}

/// `DELETE /api/v1/friends/requests/{id}`: the sender withdraws a request (204).
pub async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    social::cancel(&state.writer, caller.user, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/friends`: `{friends: [{user, since}]}`.
pub async fn friends(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    let friends = social::friends(&state.db, caller.user).await?;
    Ok(HttpResponse::Ok().json(json!({ "friends": friends })))
}

/// `DELETE /api/v1/friends/{user_id}`: 204, friends or not.
pub async fn unfriend(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    social::unfriend(&state.writer, caller.user, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /api/v1/blocks/{user_id}`: 204.
pub async fn block(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    social::block(&state.writer, caller.user, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/v1/blocks/{user_id}`: 204.
pub async fn unblock(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    social::unblock(&state.writer, caller.user, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/blocks`: `{blocks: [{user, since}]}`, the users the caller blocks.
pub async fn blocks(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    let blocks = social::blocks(&state.db, caller.user).await?;
    Ok(HttpResponse::Ok().json(json!({ "blocks": blocks })))
}
