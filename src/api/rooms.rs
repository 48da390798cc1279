//! Rooms and their members: `/api/v1/rooms…` and `POST /api/v1/dms`.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::api::auth::Caller;
use crate::api::WithEvent;
use crate::core::views::Room;
use crate::core::{members, rooms};
use crate::domain::Id;
use crate::error::Error;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    member_ids: Vec<Id>,
}

/// `POST /api/v1/rooms`: a group room; the caller is its owner (201 room + `event_id`).
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let (room, event) =
        rooms::create_group(&state.writer, caller.user, &body.name, body.member_ids).await?;
    Ok(HttpResponse::Created().json(WithEvent::new(room, Some(event))))
}

#[derive(Deserialize)]
pub struct UserBody {
    user_id: Id,
}

/// `POST /api/v1/dms`: the direct room of the caller and `user_id` (201 created, 200 existing).
pub async fn open_direct(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<UserBody>,
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

#[derive(Serialize)]
struct RoomList {
    rooms: Vec<Room>,
}

/// `GET /api/v1/rooms`: the caller's rooms, most recently active first.
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    let rooms = rooms::list(&state.db, caller.user).await?;
    Ok(HttpResponse::Ok().json(RoomList { rooms }))
}

/// `GET /api/v1/rooms/{id}` (404 unless the caller is a member).
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    let room = rooms::get(&state.db, caller.user, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(room))
}

#[derive(Deserialize)]
pub struct RenameBody {
    name: String,
}

/// `PATCH /api/v1/rooms/{id}`: renames a group room (owners and admins).
pub async fn rename(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: web::Json<RenameBody>,
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

#[derive(Serialize)]
struct MemberChange {
    room_id: Id,
    user_id: Id,
    role: String,
}

/// `POST /api/v1/rooms/{id}/members`: adds a member (201; 200 if they already were one).
pub async fn add_member(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: web::Json<UserBody>,
) -> Result<HttpResponse, Error> {
    let (room, user) = (id.into_inner(), body.user_id);
    let event = members::add(&state.writer, caller.user, room, user).await?;
    let change = MemberChange {
        room_id: room,
        user_id: user,
        role: "member".into(),
    };
    let mut response = if event.is_some() {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(WithEvent::new(change, event)))
}

/// `DELETE /api/v1/rooms/{id}/members/{user_id}`: leave (your own id) or remove (204).
pub async fn remove_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Id, Id)>,
) -> Result<HttpResponse, Error> {
    let (room, user) = path.into_inner();
    members::remove(&state.writer, caller.user, room, user).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
pub struct RoleBody {
    role: String,
}

/// `PATCH /api/v1/rooms/{id}/members/{user_id}`: changes a member's role (owners only).
pub async fn set_role(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(Id, Id)>,
    body: web::Json<RoleBody>,
) -> Result<HttpResponse, Error> {
    let (room, user) = path.into_inner();
    let role = body.into_inner().role;
    let event = members::set_role(&state.writer, caller.user, room, user, role.clone()).await?;
    let change = MemberChange {
        room_id: room,
        user_id: user,
        role,
    };
    Ok(HttpResponse::Ok().json(WithEvent::new(change, Some(event))))
}

#[derive(Deserialize)]
pub struct ReadBody {
    message_id: Id,
}

/// `POST /api/v1/rooms/{id}/read`: moves the caller's read marker forward (200 marker).
pub async fn mark_read(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: web::Json<ReadBody>,
) -> Result<HttpResponse, Error> {
    let (marker, event) =
        members::mark_read(&state.writer, caller.user, id.into_inner(), body.message_id).await?;
    Ok(HttpResponse::Ok().json(WithEvent::new(marker, event)))
}
