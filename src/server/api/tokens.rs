//! Bots, API tokens and stream tickets: `POST /api/v1/bots`, `/api/v1/tokens…`,
//! `POST /api/v1/stream/tickets`.

use super::json::Json;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::core::tokens::{self, NewBot, NewToken, Scopes, Ticket, Token};
use crate::domain::Id;
use crate::error::Error;
use crate::server::api::auth::Caller;
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;

#[derive(Deserialize, ToSchema)]
pub struct BotBody {
    username: String,
    display_name: Option<String>,
}

/// The caller's tokens, without their secrets.
#[derive(serde::Serialize, ToSchema)]
pub struct TokenList {
    tokens: Vec<Token>,
}

/// `POST /api/v1/bots`: 201 `{bot, token}`; the token's secret is shown this once.
#[utoipa::path(operation_id = "tokens_create_bot", post, path = "/api/v1/bots", tag = "bots", request_body = BotBody, responses((status = 201, body = NewBot), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn create_bot(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<BotBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let max = state.settings.max_bots_per_user;
    let bot = tokens::create_bot(
        &state.db,
        max,
        caller.user,
        &body.username,
        body.display_name,
    )
    .await?;
    Ok(HttpResponse::Created().json(bot))
}

#[derive(Deserialize, ToSchema)]
pub struct TokenBody {
    name: String,
    scopes: Option<Vec<String>>,
    expires_in_s: Option<i64>,
}

/// `POST /api/v1/tokens`: a personal token (201, the secret shown this once). Scopes default
/// to `["read", "send"]`; a token can't grant more than the credential that creates it.
#[utoipa::path(operation_id = "tokens_create", post, path = "/api/v1/tokens", tag = "bots", request_body = TokenBody, responses((status = 201, body = NewToken), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: Json<TokenBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let scopes = match &body.scopes {
        None => Scopes::ALL,
        Some(list) => Scopes::parse(list)?,
    };
    if (scopes.read && !caller.scopes.read) || (scopes.send && !caller.scopes.send) {
        return Err(Error::forbidden(
            "insufficient_scope",
            "a token can't grant scopes its creator lacks",
        ));
    }
    let token = tokens::create(
        &state.db,
        state.settings.max_tokens_per_user,
        caller.user,
        &body.name,
        scopes,
        body.expires_in_s,
    )
    .await?;
    Ok(HttpResponse::Created().json(token))
}

/// `GET /api/v1/tokens`: the caller's tokens, without secrets.
#[utoipa::path(operation_id = "tokens_list", get, path = "/api/v1/tokens", tag = "bots", responses((status = 200, body = TokenList), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    let tokens = tokens::list(&state.db, caller.user).await?;
    Ok(HttpResponse::Ok().json(TokenList { tokens }))
}

/// `DELETE /api/v1/tokens/{id}`: revokes a token; sockets opened with it close (4100).
#[utoipa::path(operation_id = "tokens_delete", delete, path = "/api/v1/tokens/{id}", tag = "bots", params(("id" = Id, Path, description = "the id")), responses((status = 204, description = "done"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    let id = id.into_inner();
    tokens::delete(&state.writer, caller.user, id).await?;
    state.credentials.revoke(id);
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/stream/tickets`: 201 `{ticket, expires_at}`, single use, for
/// `GET /api/v1/stream?ticket=`; the socket is bound to the caller's credential.
#[utoipa::path(operation_id = "tokens_ticket", post, path = "/api/v1/stream/tickets", tag = "stream", responses((status = 201, body = Ticket), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn ticket(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, Error> {
    // A POST, but a read: a read-only token may open the stream.
    let caller = Caller::authenticate(&req).await?;
    if !caller.scopes.read {
        return Err(Error::forbidden(
            "insufficient_scope",
            "this token lacks the `read` scope",
        ));
    }
    let ticket = tokens::issue_ticket(&state.db, caller.user, caller.credential).await?;
    Ok(HttpResponse::Created().json(ticket))
}
