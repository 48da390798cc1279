//! Accounts and sessions: `POST /api/v1/users`, `POST /api/v1/sessions`,
//! `DELETE /api/v1/sessions/current`, `GET /api/v1/me`, `GET /api/v1/users/{id}`.

use actix_session::Session;
use actix_web::{web, HttpResponse};
use serde::Deserialize;

use crate::api::auth::{start_session, Caller};
use crate::core::{accounts, sessions};
use crate::domain::Id;
use crate::error::Error;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct RegisterBody {
    username: String,
    password: String,
    display_name: Option<String>,
}

/// `POST /api/v1/users`: creates an account and signs it in (201 user + session cookie).
pub async fn register(
    state: web::Data<AppState>,
    session: Session,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let user = accounts::register(
        &state.db,
        accounts::Registration {
            username: body.username,
            password: body.password,
            display_name: body.display_name,
        },
    )
    .await?;
    start_session(&session, user.id)?;
    Ok(HttpResponse::Created().json(user))
}

#[derive(Deserialize)]
pub struct LoginBody {
    username: String,
    password: String,
}

/// `POST /api/v1/sessions`: signs in (200 user + session cookie; 401 invalid_credentials).
pub async fn login(
    state: web::Data<AppState>,
    session: Session,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse, Error> {
    let user = accounts::login(&state.db, &body.username, &body.password).await?;
    start_session(&session, user.id)?;
    Ok(HttpResponse::Ok().json(user))
}

/// `DELETE /api/v1/sessions/current`: signs out; this session's sockets close with 4100.
pub async fn logout(
    state: web::Data<AppState>,
    session: Session,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    sessions::revoke(&state.writer, caller.credential).await?;
    session.purge();
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/me`.
pub async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    let user = accounts::get(&state.db, caller.user).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// `GET /api/v1/users/{id}`.
pub async fn user(
    state: web::Data<AppState>,
    _caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    let user = accounts::get(&state.db, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(user))
}
