//! Bots, API tokens and stream tickets: `POST /api/v1/bots`, `/api/v1/tokens…`,
//! `POST /api/v1/stream/tickets`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::api::auth::Caller;
use crate::core::tokens::{self, Scopes};
use crate::domain::Id;
use crate::error::Error;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct BotBody {
    username: String,
    display_name: Option<String>,
}

/// `POST /api/v1/bots`: 201 `{bot, token}`; the token's secret is shown this once.
pub async fn create_bot(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<BotBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let bot = tokens::create_bot(&state.db, caller.user, &body.username, body.display_name).await?;
    Ok(HttpResponse::Created().json(bot))
}

#[derive(Deserialize)]
pub struct TokenBody {
    name: String,
    scopes: Option<Vec<String>>,
    expires_in_s: Option<i64>,
}

/// `POST /api/v1/tokens`: a personal token (201, the secret shown this once). Scopes default
/// to `["read", "send"]`; a token can't grant more than the credential that creates it.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<TokenBody>,
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
        caller.user,
        &body.name,
        scopes,
        body.expires_in_s,
    )
    .await?;
    Ok(HttpResponse::Created().json(token))
}

/// `GET /api/v1/tokens`: the caller's tokens, without secrets.
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    let tokens = tokens::list(&state.db, caller.user).await?;
    Ok(HttpResponse::Ok().json(json!({ "tokens": tokens })))
}

/// `DELETE /api/v1/tokens/{id}`: revokes a token; sockets opened with it close (4100).
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    tokens::delete(&state.writer, caller.user, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/stream/tickets`: 201 `{ticket, expires_at}`, single use, for
/// `GET /api/v1/stream?ticket=`; the socket is bound to the caller's credential.
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
