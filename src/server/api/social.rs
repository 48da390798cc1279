//! Friends and blocks: `/api/v1/friends…` and `/api/v1/blocks…`.

use super::json::Json;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::with_event::WithEvent;
use crate::core::social::{self, Requested, Requests};
use crate::core::views::{Friend, FriendRequest};
use crate::domain::Id;
use crate::error::Error;
use crate::events;
use crate::server::api::auth::Caller;
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct RequestBody {
    user_id: Id,
}

/// A declined request.
#[derive(Serialize, ToSchema)]
pub struct Declined {
    request_id: Id,
    status: &'static str,
    event_id: String,
}

/// The caller's friends.
#[derive(Serialize, ToSchema)]
pub struct FriendList {
    friends: Vec<Friend>,
}

/// The users the caller blocks, with when.
#[derive(Serialize, ToSchema)]
pub struct BlockList {
    blocks: Vec<Friend>,
}

/// `POST /api/v1/friends/requests`: 201 a new pending request; 200 the existing one, or the
/// friendship when the other user had already asked (or you are friends already).
#[utoipa::path(operation_id = "social_request", post, path = "/api/v1/friends/requests", tag = "friends", request_body = RequestBody, responses((status = 201, body = WithEvent<FriendRequest>, description = "a new pending request"), (status = 200, body = WithEvent<FriendRequest>, description = "the existing request, or the friendship"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn request(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<RequestBody>,
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
#[utoipa::path(operation_id = "social_requests", get, path = "/api/v1/friends/requests", tag = "friends", responses((status = 200, body = Requests), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn requests(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    Ok(HttpResponse::Ok().json(social::requests(&state.db, caller.user).await?))
}

/// `POST /api/v1/friends/requests/{id}/accept`: 200 `{user, since, event_id}`.
#[utoipa::path(operation_id = "social_accept", post, path = "/api/v1/friends/requests/{id}/accept", tag = "friends", params(("id" = Id, Path, description = "the id")), responses((status = 200, body = WithEvent<Friend>), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
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
#[utoipa::path(operation_id = "social_decline", post, path = "/api/v1/friends/requests/{id}/decline", tag = "friends", params(("id" = Id, Path, description = "the id")), responses((status = 200, body = Declined), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn decline(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    let id = id.into_inner();
    let event = social::decline(&state.writer, caller.user, id).await?;
    Ok(HttpResponse::Ok().json(Declined {
        request_id: id,
        status: "declined",
        event_id: events::cursor(event),
    }))
}

/// `DELETE /api/v1/friends/requests/{id}`: the sender withdraws a request (204).
#[utoipa::path(operation_id = "social_cancel", delete, path = "/api/v1/friends/requests/{id}", tag = "friends", params(("id" = Id, Path, description = "the id")), responses((status = 204, description = "done"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn cancel(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    social::cancel(&state.writer, caller.user, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/friends`: `{friends: [{user, since}]}`.
#[utoipa::path(operation_id = "social_friends", get, path = "/api/v1/friends", tag = "friends", responses((status = 200, body = FriendList), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn friends(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    let friends = social::friends(&state.db, caller.user).await?;
    Ok(HttpResponse::Ok().json(FriendList { friends }))
}

/// `DELETE /api/v1/friends/{user_id}`: 204, friends or not.
#[utoipa::path(operation_id = "social_unfriend", delete, path = "/api/v1/friends/{user_id}", tag = "friends", params(("user_id" = Id, Path, description = "a user id")), responses((status = 204, description = "done"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn unfriend(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    social::unfriend(&state.writer, caller.user, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /api/v1/blocks/{user_id}`: 204.
#[utoipa::path(operation_id = "social_block", put, path = "/api/v1/blocks/{user_id}", tag = "friends", params(("user_id" = Id, Path, description = "a user id")), responses((status = 204, description = "done"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn block(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    social::block(&state.writer, caller.user, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/v1/blocks/{user_id}`: 204.
#[utoipa::path(operation_id = "social_unblock", delete, path = "/api/v1/blocks/{user_id}", tag = "friends", params(("user_id" = Id, Path, description = "a user id")), responses((status = 204, description = "done"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn unblock(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    social::unblock(&state.writer, caller.user, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/blocks`: `{blocks: [{user, since}]}`, the users the caller blocks.
#[utoipa::path(operation_id = "social_blocks", get, path = "/api/v1/blocks", tag = "friends", responses((status = 200, body = BlockList), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn blocks(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    let blocks = social::blocks(&state.db, caller.user).await?;
    Ok(HttpResponse::Ok().json(BlockList { blocks }))
}
