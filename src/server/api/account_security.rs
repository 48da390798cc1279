//! A user's own credentials: `POST /api/v1/me/password`, `GET /api/v1/sessions`,
//! `DELETE /api/v1/sessions/{id}`.

use super::json::Json;
use actix_session::Session;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::core::sessions::SessionInfo;
use crate::core::{accounts, sessions};
use crate::domain::Id;
use crate::error::Error;
use crate::server::api::auth::Caller;
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/me/password`: changes the password and signs out every other session (204).
#[utoipa::path(operation_id = "accounts_change_password", post, path = "/api/v1/me/password", tag = "accounts", request_body = PasswordBody, responses((status = 204, description = "changed; the user's other sessions are revoked, this one and API tokens stay"), (status = "4XX", description = "a client error, in the error envelope (403 wrong_password, 403 session_required, 422 weak password)", body = ErrorBody)), security(("session" = [])))]
pub async fn change_password(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<PasswordBody>,
) -> Result<HttpResponse, Error> {
    if caller.bearer {
        return Err(Error::forbidden(
            "session_required",
            "a password is changed from a signed-in session, not with an API token",
        ));
    }
    let body = body.into_inner();
    let revoked = accounts::change_password(
        &state.db,
        &state.writer,
        &state.hashes,
        caller.user,
        caller.credential,
        body.current_password,
        body.new_password,
    )
    .await?;
    for session in revoked {
        state.credentials.revoke(session);
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    sessions: Vec<SessionInfo>,
}

/// `GET /api/v1/sessions`: the caller's live sessions, newest first.
#[utoipa::path(operation_id = "accounts_sessions", get, path = "/api/v1/sessions", tag = "accounts", responses((status = 200, body = SessionList), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    let current = (!caller.bearer).then_some(caller.credential);
    let sessions = sessions::list(&state.db, caller.user, current).await?;
    Ok(HttpResponse::Ok().json(SessionList { sessions }))
}

/// `DELETE /api/v1/sessions/{id}`: signs that session out, as a logout would (204; 404
/// session_not_found if it isn't one of the caller's).
#[utoipa::path(operation_id = "accounts_revoke_session", delete, path = "/api/v1/sessions/{id}", tag = "accounts", params(("id" = Id, Path, description = "the session's id")), responses((status = 204, description = "revoked; its sockets close with 4100"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn revoke(
    state: web::Data<AppState>,
    session: Session,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    let id = id.into_inner();
    sessions::revoke_own(&state.writer, caller.user, id).await?;
    state.credentials.revoke(id);
    if !caller.bearer && caller.credential == id {
        session.purge();
    }
    Ok(HttpResponse::NoContent().finish())
}
