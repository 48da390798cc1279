//! Rooms: `POST /api/v1/rooms`, `POST /api/v1/dms`, `GET /api/v1/rooms`, `GET /api/v1/rooms/{id}`.

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::api::auth::Caller;
use crate::core::rooms;
use crate::core::views::Room;
use crate::domain::Id;
use crate::error::Error;
use crate::events;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CreateBody {
    name: String,
    #[serde(default)]
    member_ids: Vec<Id>,
}

/// A room as a write returns it: the room plus the id of the event the write appended.
#[derive(Serialize)]
struct Created {
    #[serde(flatten)]
    room: Room,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
}

/// `POST /api/v1/rooms`: a group room; the caller is its owner (201).
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let (room, event) =
        rooms::create_group(&state.writer, caller.user, &body.name, body.member_ids).await?;
    Ok(HttpResponse::Created().json(Created {
        room,
        event_id: Some(events::cursor(event)),
    }))
}

#[derive(Deserialize)]
pub struct DmBody {
    user_id: Id,
}

/// `POST /api/v1/dms`: the direct room of the caller and `user_id` (201 created, 200 existing).
pub async fn open_direct(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<DmBody>,
) -> Result<HttpResponse, Error> {
    let (room, event) = rooms::open_direct(&state.writer, caller.user, body.user_id).await?;
    let mut response = if event.is_some() {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(Created {
        room,
        event_id: event.map(events::cursor),
    }))
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
