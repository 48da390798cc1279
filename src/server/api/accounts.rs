//! Accounts and sessions: `POST /api/v1/users`, `POST /api/v1/sessions`,
//! `DELETE /api/v1/sessions/current`, `GET /api/v1/me`, `GET /api/v1/users/{id}`.

use super::json::Json;
use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::core::accounts::{Me, Profile};
use crate::core::views::User;
use crate::core::{accounts, presence, sessions};
use crate::domain::Id;
use crate::error::Error;
use crate::server::api::auth::{start_session, Caller};
use crate::server::api::error::ErrorBody;
use crate::server::api::paging;
use crate::server::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct RegisterBody {
    username: String,
    password: String,
    display_name: Option<String>,
    /// Needed when the server registers by invitation (`HUBBUB_REGISTRATION=invite`).
    invite_code: Option<String>,
}

/// `POST /api/v1/users`: creates an account and signs it in (201 user + session cookie). As
/// `HUBBUB_REGISTRATION` allows: `closed` is 403 `registration_closed`; `invite` needs
/// `invite_code` (403 `invite_required`, `invalid_invite`).
#[utoipa::path(operation_id = "accounts_register", post, path = "/api/v1/users", tag = "accounts", request_body = RegisterBody, responses((status = 201, body = User, description = "created and signed in (session cookie)"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(()))]
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    body: Json<RegisterBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let user = accounts::register(
        &state.db,
        &state.hashes,
        state.settings.registration,
        accounts::Registration {
            username: body.username,
            password: body.password,
            display_name: body.display_name,
            invite_code: body.invite_code,
        },
    )
    .await?;
    end_previous_session(&state, &req).await?;
    start_session(&session, &req, user.id)?;
    Ok(HttpResponse::Created().json(user))
}

#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    username: String,
    password: String,
}

/// `POST /api/v1/sessions`: signs in (200 user + session cookie; 401 invalid_credentials).
#[utoipa::path(operation_id = "accounts_login", post, path = "/api/v1/sessions", tag = "accounts", request_body = LoginBody, responses((status = 200, body = User, description = "signed in (session cookie)"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(()))]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    session: Session,
    body: Json<LoginBody>,
) -> Result<HttpResponse, Error> {
    let user = accounts::login(&state.db, &state.hashes, &body.username, &body.password).await?;
    end_previous_session(&state, &req).await?;
    start_session(&session, &req, user.id)?;
    Ok(HttpResponse::Ok().json(user))
}

/// Signing in on a browser that already had a session replaces it: the old one is revoked
/// like a logout, so its sockets close too.
async fn end_previous_session(state: &AppState, req: &HttpRequest) -> Result<(), Error> {
    if let Ok(previous) = Caller::authenticate(req).await {
        if !previous.bearer {
            sessions::revoke(&state.writer, previous.credential).await?;
            state.credentials.revoke(previous.credential);
        }
    }
    Ok(())
}

/// `DELETE /api/v1/sessions/current`: signs out; this session's sockets close with 4100.
#[utoipa::path(operation_id = "accounts_logout", delete, path = "/api/v1/sessions/current", tag = "accounts", responses((status = 204, description = "done"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn logout(
    state: web::Data<AppState>,
    session: Session,
    caller: Caller,
) -> Result<HttpResponse, Error> {
    if caller.bearer {
        return Err(Error::bad_request(
            "not_a_session",
            "this request is authenticated by a token: revoke it with DELETE /api/v1/tokens/{id}",
        ));
    }
    sessions::revoke(&state.writer, caller.credential).await?;
    state.credentials.revoke(caller.credential);
    session.purge();
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/me`: the caller, and whether they are a server administrator.
#[utoipa::path(operation_id = "accounts_me", get, path = "/api/v1/me", tag = "accounts", responses((status = 200, body = Me), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    let me = accounts::me(&state.db, caller.user).await?;
    Ok(HttpResponse::Ok().json(me))
}

/// `GET /api/v1/users/{id}`: the user, with `online` and `last_seen_at` where the caller may
/// see them (themselves, friends, direct-room partners; null otherwise).
#[utoipa::path(operation_id = "accounts_user", get, path = "/api/v1/users/{id}", tag = "accounts", params(("id" = Id, Path, description = "the id")), responses((status = 200, body = Profile), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn user(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    let user = accounts::profile(&state.db, caller.user, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Deserialize, ToSchema)]
pub struct ProfileBody {
    display_name: Option<String>,
    avatar_attachment_id: Option<Id>,
    /// Whether friends and direct-room partners see when you are online. Off, you look
    /// offline and never seen to everyone, at once.
    share_presence: Option<bool>,
}

/// `PATCH /api/v1/me`: changes the caller's profile and settings (200 user).
#[utoipa::path(operation_id = "accounts_update_me", patch, path = "/api/v1/me", tag = "accounts", request_body = ProfileBody, responses((status = 200, body = User), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn update_me(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<ProfileBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let user = accounts::update_profile(
        &state.writer,
        caller.user,
        body.display_name,
        body.avatar_attachment_id,
    )
    .await?;
    if let Some(share) = body.share_presence {
        let window = state.presence.settings().window;
        presence::set_share(&state.writer, window, caller.user, share).await?;
    }
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Deserialize, ToSchema)]
pub struct SearchQuery {
    prefix: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

#[derive(serde::Serialize, ToSchema)]
pub struct SearchPage {
    users: Vec<User>,
    next_after: Option<String>,
}

/// `GET /api/v1/users?prefix=&after=&limit=`: users by username prefix, a page at a time.
#[utoipa::path(operation_id = "accounts_search", get, path = "/api/v1/users", tag = "accounts", params(("prefix" = String, Query, description = "1-32 characters"), ("after" = Option<String>, Query, description = "next_after of the previous page"), ("limit" = Option<i64>, Query, description = "1-50, default 20")), responses((status = 200, body = SearchPage), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn search(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, Error> {
    let query = query.into_inner();
    let limit = paging::limit(query.limit.as_deref(), 20, accounts::MAX_SEARCH)?;
    let prefix = query
        .prefix
        .ok_or_else(|| Error::bad_request("invalid_query", "prefix is required"))?;
    let (users, next_after) =
        accounts::search(&state.db, caller.user, &prefix, query.after, limit).await?;
    Ok(HttpResponse::Ok().json(SearchPage { users, next_after }))
}
