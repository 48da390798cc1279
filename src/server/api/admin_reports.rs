//! Moderation for the server's admins: `GET /api/v1/admin/reports`,
//! `POST /api/v1/admin/reports/{id}/resolve`, `DELETE /api/v1/admin/messages/{id}`. Every
//! handler takes `Admin`: anyone else gets the 404 of an unknown endpoint.

use super::json::Json;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::core::messages;
use crate::core::reports::{self, AdminReport, ReportPage, Status};
use crate::domain::Id;
use crate::error::Error;
use crate::server::api::auth::Admin;
use crate::server::api::error::ErrorBody;
use crate::server::api::paging;
use crate::server::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct ReportsQuery {
    status: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

/// `GET /api/v1/admin/reports?status=open|resolved|all&before=&limit=`: reports, newest first.
#[utoipa::path(operation_id = "admin_reports", get, path = "/api/v1/admin/reports", tag = "admin", params(("status" = Option<String>, Query, description = "open (default), resolved or all"), ("before" = Option<Id>, Query, description = "a report id: the page's reports are older"), ("limit" = Option<i64>, Query, description = "1-100, default 50")), responses((status = 200, body = ReportPage), (status = "4XX", description = "a client error, in the error envelope (404 not_found for anyone but an admin)", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<ReportsQuery>,
) -> Result<HttpResponse, Error> {
    let status = match query.status.as_deref() {
        None | Some("open") => Status::Open,
        Some("resolved") => Status::Resolved,
        Some("all") => Status::All,
        Some(_) => {
            return Err(Error::bad_request(
                "invalid_query",
                "status must be open, resolved or all",
            ))
        }
    };
    let limit = paging::limit(query.limit.as_deref(), 50, reports::MAX_PAGE)?;
    let before = match query.before.as_deref() {
        None => None,
        Some(raw) => Some(
            raw.parse::<Id>()
                .map_err(|_| Error::bad_request("invalid_cursor", "before must be a report id"))?,
        ),
    };
    let page = reports::list(&state.db, status, before, limit).await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Deserialize, ToSchema)]
pub struct ResolveBody {
    /// What was done, for the other admins: 1-1000 characters, or absent/`null`.
    resolution: Option<String>,
}

/// `POST /api/v1/admin/reports/{id}/resolve`: closes an open report (200, the report).
#[utoipa::path(operation_id = "admin_resolve_report", post, path = "/api/v1/admin/reports/{id}/resolve", tag = "admin", params(("id" = Id, Path, description = "the report id")), request_body = ResolveBody, responses((status = 200, body = AdminReport), (status = "4XX", description = "a client error, in the error envelope (404 report_not_found, 409 already_resolved; 404 not_found for anyone but an admin)", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn resolve(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<Id>,
    body: Json<ResolveBody>,
) -> Result<HttpResponse, Error> {
    let report = reports::resolve(
        &state.db,
        admin.0.user,
        id.into_inner(),
        body.into_inner().resolution,
    )
    .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// `DELETE /api/v1/admin/messages/{id}`: deletes any message, as its author could (204).
#[utoipa::path(operation_id = "admin_delete_message", delete, path = "/api/v1/admin/messages/{id}", tag = "admin", params(("id" = Id, Path, description = "the message id")), responses((status = 204, description = "deleted (or already a tombstone); message.deleted went to the room"), (status = "4XX", description = "a client error, in the error envelope (404 message_not_found; 404 not_found for anyone but an admin)", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn delete_message(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    messages::delete_as_admin(&state.writer, &state.settings.data_dir, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
