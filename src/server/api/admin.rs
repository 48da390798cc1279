//! Server administration over REST, for administrators only: `GET /api/v1/admin/users`,
//! `POST /api/v1/admin/users/{id}/deactivate|reactivate`, `/api/v1/admin/invites…`. To anyone
//! else every path under `/api/v1/admin/` is the 404 of an unknown endpoint, whatever the method
//! or body: [`gate`] answers it before routing, and each handler takes the `Admin` extractor too.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::Json;
use crate::core::admin::{self, AdminUser, Invite, NewInvite};
use crate::domain::Id;
use crate::error::Error;
use crate::server::api::auth::{Admin, Caller};
use crate::server::api::error::{for_status, ErrorBody};
use crate::server::api::paging;
use crate::server::state::AppState;

/// Where the administrators' API lives.
pub const PREFIX: &str = "/api/v1/admin";

fn is_admin_path(path: &str) -> bool {
    path.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Middleware: a request under `/api/v1/admin/` from anyone but an administrator gets the 404 of
/// an unknown endpoint before routing, body parsing or method matching could tell it apart
/// (a 405, a 400 for a bad body, a 401). Runs inside the session middleware.
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    // The raw path and the decoded one the router matches (`%61dmin` routes as `admin`).
    if is_admin_path(req.path()) || is_admin_path(req.match_info().as_str()) {
        let allowed = match (
            req.app_data::<web::Data<AppState>>().cloned(),
            Caller::authenticate(req.request()).await,
        ) {
            (Some(state), Ok(caller)) => admin::is_admin(&state.db, caller.user).await?,
            _ => false,
        };
        if !allowed {
            let res = for_status(actix_web::http::StatusCode::NOT_FOUND).error_response();
            return Ok(req.into_response(res).map_into_right_body());
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[derive(Deserialize, ToSchema)]
pub struct UsersQuery {
    /// Part of a username (letters a-z, digits, `_`, `.`, `-`).
    q: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// A page of the users list.
#[derive(Serialize, ToSchema)]
pub struct UserPage {
    users: Vec<AdminUser>,
    /// Pass as `after` for the next page; `null` on the last.
    next_after: Option<String>,
}

/// `GET /api/v1/admin/users?q=&after=&limit=`: every account (people and bots), by username,
/// those containing `q` when given.
#[utoipa::path(operation_id = "admin_users", get, path = "/api/v1/admin/users", tag = "admin", params(("q" = Option<String>, Query, description = "part of a username"), ("after" = Option<String>, Query, description = "next_after of the previous page"), ("limit" = Option<i64>, Query, description = "1-100, default 50")), responses((status = 200, body = UserPage), (status = "4XX", description = "a client error, in the error envelope (404 to anyone but an administrator)", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn users(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<UsersQuery>,
) -> Result<HttpResponse, Error> {
    let query = query.into_inner();
    let limit = paging::limit(query.limit.as_deref(), 50, admin::MAX_LIST)?;
    let (users, next_after) = admin::list_users(&state.db, query.q, query.after, limit).await?;
    Ok(HttpResponse::Ok().json(UserPage { users, next_after }))
}

/// `POST /api/v1/admin/users/{id}/deactivate`: turns the account off and ends every session,
/// token and socket of it (409 `cannot_deactivate_self` for the caller's own).
#[utoipa::path(operation_id = "admin_deactivate", post, path = "/api/v1/admin/users/{id}/deactivate", tag = "admin", params(("id" = Id, Path, description = "the user")), responses((status = 200, body = AdminUser), (status = "4XX", description = "a client error, in the error envelope (404 to anyone but an administrator)", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn deactivate(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    let (user, revoked) =
        admin::deactivate(&state.writer, Some(admin.0.user), id.into_inner()).await?;
    // This node stops honouring them now; the tailer tells the others (and closes sockets).
    for credential in revoked {
        state.credentials.revoke(credential);
    }
    Ok(HttpResponse::Ok().json(user))
}

/// `POST /api/v1/admin/users/{id}/reactivate`: the account may sign in again.
#[utoipa::path(operation_id = "admin_reactivate", post, path = "/api/v1/admin/users/{id}/reactivate", tag = "admin", params(("id" = Id, Path, description = "the user")), responses((status = 200, body = AdminUser), (status = "4XX", description = "a client error, in the error envelope (404 to anyone but an administrator)", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn reactivate(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    let user = admin::reactivate(&state.db, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(user))
}

#[derive(Deserialize, ToSchema)]
pub struct InviteBody {
    /// How many accounts the code may make: 1-1000, default 1.
    uses: Option<i32>,
    /// How long it works: `30m`, `12h`, `7d`… (default `7d`, at most `365d`).
    expires_in: Option<String>,
}

/// The usable invites.
#[derive(Serialize, ToSchema)]
pub struct InviteList {
    invites: Vec<Invite>,
}

/// `POST /api/v1/admin/invites`: 201 with the code, shown this once.
#[utoipa::path(operation_id = "admin_create_invite", post, path = "/api/v1/admin/invites", tag = "admin", request_body = InviteBody, responses((status = 201, body = NewInvite), (status = "4XX", description = "a client error, in the error envelope (404 to anyone but an administrator)", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn create_invite(
    state: web::Data<AppState>,
    admin: Admin,
    body: Json<InviteBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let expires = match body.expires_in.as_deref() {
        None => admin::DEFAULT_INVITE_SECS,
        // Out of range: refused with the field named by `create_invite`.
        Some(text) => admin::parse_duration(text).unwrap_or(0),
    };
    let invite = admin::create_invite(
        &state.db,
        Some(admin.0.user),
        body.uses.unwrap_or(1),
        expires,
    )
    .await?;
    Ok(HttpResponse::Created().json(invite))
}

/// `GET /api/v1/admin/invites`: the invites that can still be used, newest first (without
/// their codes).
#[utoipa::path(operation_id = "admin_invites", get, path = "/api/v1/admin/invites", tag = "admin", responses((status = 200, body = InviteList), (status = "4XX", description = "a client error, in the error envelope (404 to anyone but an administrator)", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn invites(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, Error> {
    let invites = admin::list_invites(&state.db).await?;
    Ok(HttpResponse::Ok().json(InviteList { invites }))
}

/// `DELETE /api/v1/admin/invites/{id}`: 204; the code stops working.
#[utoipa::path(operation_id = "admin_delete_invite", delete, path = "/api/v1/admin/invites/{id}", tag = "admin", params(("id" = Id, Path, description = "the invite")), responses((status = 204, description = "deleted"), (status = "4XX", description = "a client error, in the error envelope (404 to anyone but an administrator)", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn delete_invite(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    admin::delete_invite(&state.db, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_covers_the_prefix_and_nothing_beside_it() {
        assert!(is_admin_path("/api/v1/admin"));
        assert!(is_admin_path("/api/v1/admin/"));
        assert!(is_admin_path("/api/v1/admin/users/x/deactivate"));
        assert!(!is_admin_path("/api/v1/administrators"));
        assert!(!is_admin_path("/api/v1/users"));
    }
}
