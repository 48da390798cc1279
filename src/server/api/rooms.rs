//! Rooms and their members: `/api/v1/rooms…` and `POST /api/v1/dms`.

use super::json::Json;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::with_event::WithEvent;
use crate::core::members::{self, ReadMarker};
use crate::core::rooms;
use crate::core::views::Room;
use crate::domain::{Id, Role};
use crate::error::Error;
use crate::server::api::auth::Caller;
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    member_ids: Vec<Id>,
}

/// `POST /api/v1/rooms`: a group room; the caller is its owner (201 room + `event_id`).
#[utoipa::path(operation_id = "rooms_create", post, path = "/api/v1/rooms", tag = "rooms", request_body = CreateBody, responses((status = 201, body = WithEvent<Room>), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<CreateBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let (room, event) =
        rooms::create_group(&state.writer, caller.user, &body.name, body.member_ids).await?;
    Ok(HttpResponse::Created().json(WithEvent::new(room, Some(event))))
}

#[derive(Deserialize, ToSchema)]
pub struct UserBody {
    user_id: Id,
}

/// `POST /api/v1/dms`: the direct room of the caller and `user_id` (201 created, 200 existing).
#[utoipa::path(operation_id = "rooms_open_direct", post, path = "/api/v1/dms", tag = "rooms", request_body = UserBody, responses((status = 201, body = WithEvent<Room>, description = "created"), (status = 200, body = WithEvent<Room>, description = "it already existed"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn open_direct(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<UserBody>,
) -> Result<HttpResponse, Error> {
    let (room, event) = rooms::open_direct(
        &state.writer,
        state.settings.dm_policy,
        caller.user,
        body.user_id,
    )
    .await?;
    let mut response = if event.is_some() {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(WithEvent::new(room, event)))
}

#[derive(Serialize, ToSchema)]
pub struct RoomList {
    rooms: Vec<Room>,
}

/// `GET /api/v1/rooms`: the caller's rooms, most recently active first.
#[utoipa::path(operation_id = "rooms_list", get, path = "/api/v1/rooms", tag = "rooms", responses((status = 200, body = RoomList), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    let rooms = rooms::list(&state.db, caller.user).await?;
    Ok(HttpResponse::Ok().json(RoomList { rooms }))
}

/// `GET /api/v1/rooms/{id}` (404 unless the caller is a member).
#[utoipa::path(operation_id = "rooms_get", get, path = "/api/v1/rooms/{id}", tag = "rooms", params(("id" = Id, Path, description = "the room id")), responses((status = 200, body = Room), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    let room = rooms::get(&state.db, caller.user, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(room))
}

#[derive(Deserialize, ToSchema)]
pub struct RenameBody {
    name: String,
}

/// `PATCH /api/v1/rooms/{id}`: renames a group room (owners and admins).
#[utoipa::path(operation_id = "rooms_rename", patch, path = "/api/v1/rooms/{id}", tag = "rooms", params(("id" = Id, Path, description = "the room id")), request_body = RenameBody, responses((status = 200, body = WithEvent<Room>), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn rename(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<RenameBody>,
) -> Result<HttpResponse, Error> {
    let (room, event) = members::rename(
        &state.writer,
        caller.user,
        id.into_inner(),
        body.into_inner().name,
    )
    .await?;
    Ok(HttpResponse::Ok().json(WithEvent::new(room, Some(event))))
}

#[derive(Serialize, ToSchema)]
pub struct MemberChange {
    room_id: Id,
    user_id: Id,
    role: Role,
}

/// `POST /api/v1/rooms/{id}/members`: adds a member (201; 200 if they already were one).
#[utoipa::path(operation_id = "rooms_add_member", post, path = "/api/v1/rooms/{id}/members", tag = "rooms", params(("id" = Id, Path, description = "the room id")), request_body = UserBody, responses((status = 201, body = WithEvent<MemberChange>), (status = 200, body = WithEvent<MemberChange>, description = "already a member"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn add_member(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<UserBody>,
) -> Result<HttpResponse, Error> {
    let (room, user) = (id.into_inner(), body.user_id);
    let event = members::add(&state.writer, caller.user, room, user).await?;
    let change = MemberChange {
        room_id: room,
        user_id: user,
        role: Role::Member,
    };
    let mut response = if event.is_some() {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(WithEvent::new(change, event)))
}

/// `DELETE /api/v1/rooms/{id}/members/{user_id}`: leave (your own id) or remove (204).
#[utoipa::path(operation_id = "rooms_remove_member", delete, path = "/api/v1/rooms/{id}/members/{user_id}", tag = "rooms", params(("id" = Id, Path, description = "the room id"), ("user_id" = Id, Path, description = "a user id")), responses((status = 204, description = "done"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn remove_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Id, Id)>,
) -> Result<HttpResponse, Error> {
    let (room, user) = path.into_inner();
    members::remove(&state.writer, caller.user, room, user).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub struct RoleBody {
    role: String,
}

/// `PATCH /api/v1/rooms/{id}/members/{user_id}`: changes a member's role (owners only).
#[utoipa::path(operation_id = "rooms_set_role", patch, path = "/api/v1/rooms/{id}/members/{user_id}", tag = "rooms", params(("id" = Id, Path, description = "the room id"), ("user_id" = Id, Path, description = "a user id")), request_body = RoleBody, responses((status = 200, body = WithEvent<MemberChange>), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn set_role(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Id, Id)>,
    body: Json<RoleBody>,
) -> Result<HttpResponse, Error> {
    let (room, user) = path.into_inner();
    let (role, event) =
        members::set_role(&state.writer, caller.user, room, user, &body.role).await?;
    let change = MemberChange {
        room_id: room,
        user_id: user,
        role,
    };
    Ok(HttpResponse::Ok().json(WithEvent::new(change, Some(event))))
}

#[derive(Deserialize, ToSchema)]
pub struct ReadBody {
    message_id: Id,
}

/// `POST /api/v1/rooms/{id}/read`: moves the caller's read marker forward (200 marker).
#[utoipa::path(operation_id = "rooms_mark_read", post, path = "/api/v1/rooms/{id}/read", tag = "rooms", params(("id" = Id, Path, description = "the room id")), request_body = ReadBody, responses((status = 200, body = WithEvent<ReadMarker>), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn mark_read(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: Json<ReadBody>,
) -> Result<HttpResponse, Error> {
    let (marker, event) =
        members::mark_read(&state.writer, caller.user, id.into_inner(), body.message_id).await?;
    Ok(HttpResponse::Ok().json(WithEvent::new(marker, event)))
}
