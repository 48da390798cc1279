//! Reporting to the server's admins: `POST /api/v1/reports`.

use super::json::Json;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::core::reports::{self, Report, Target};
use crate::domain::Id;
use crate::error::Error;
use crate::server::api::auth::Caller;
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct ReportBody {
    /// The message reported: give this or `user_id`, not both.
    message_id: Option<Id>,
    /// The user reported: give this or `message_id`, not both.
    user_id: Option<Id>,
    /// Why: 1-1000 characters.
    reason: String,
}

/// `POST /api/v1/reports`: reports a message or a user to the admins (201; 200 with the open
/// report if the caller already reported the same thing and it is still open).
#[utoipa::path(operation_id = "reports_file", post, path = "/api/v1/reports", tag = "reports", request_body = ReportBody, responses((status = 201, body = Report), (status = 200, description = "the caller's open report of the same thing, unchanged", body = Report), (status = "4XX", description = "a client error, in the error envelope (404 message_not_found or user_not_found for what the caller can't see, 422 cannot_report_self, 422 too_many_reports)", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn file(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<ReportBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let target = match (body.message_id, body.user_id) {
        (Some(message), None) => Target::Message(message),
        (None, Some(user)) => Target::User(user),
        _ => {
            return Err(Error::validation(
                "message_id",
                "give exactly one of message_id and user_id",
            ))
        }
    };
    let filed = reports::file(&state.db, caller.user, target, body.reason).await?;
    Ok(if filed.created {
        HttpResponse::Created().json(filed.report)
    } else {
        HttpResponse::Ok().json(filed.report)
    })
}
