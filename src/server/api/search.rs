//! Message search: `GET /api/v1/search/messages?q=&room_id=&before=&limit=` (`core::search`).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::core::search::{self, Find, Hits};
use crate::domain::Id;
use crate::error::Error;
use crate::server::api::auth::Caller;
use crate::server::api::error::ErrorBody;
use crate::server::api::paging;
use crate::server::state::AppState;

/// The query string, as text: each value is checked here so that a bad one gets its own code.
#[derive(Deserialize, IntoParams)]
pub struct SearchParams {
    /// The words to find (all of them, each as the start of a word): 1-100 characters, 1-5
    /// words of 2 or more letters or digits.
    #[param(required = true)]
    q: Option<String>,
    /// Only this room (404 `room_not_found` if the caller isn't a member).
    #[param(value_type = Option<Id>)]
    room_id: Option<String>,
    /// The id of a hit: older hits (`next_before` of the previous page).
    #[param(value_type = Option<Id>)]
    before: Option<String>,
    /// 1-50, default 20.
    #[param(value_type = Option<i64>)]
    limit: Option<String>,
}

/// `GET /api/v1/search/messages`: the messages the caller may see whose words begin with every
/// search word, newest first, with a snippet; paged by `before`.
#[utoipa::path(operation_id = "search_messages", get, path = "/api/v1/search/messages", tag = "messages", params(SearchParams), responses((status = 200, body = Hits), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn messages(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<SearchParams>,
) -> Result<HttpResponse, Error> {
    let query = query.into_inner();
    let limit = paging::limit(query.limit.as_deref(), 20, search::MAX_PAGE)?;
    let room = match query.room_id.as_deref() {
        None => None,
        Some(raw) => Some(raw.parse::<Id>().map_err(|_| Error::room_not_found())?),
    };
    let before = match query.before.as_deref() {
        None => None,
        Some(raw) => Some(
            raw.parse::<Id>()
                .map_err(|_| Error::bad_request("invalid_cursor", "before must be a message id"))?,
        ),
    };
    let q = query
        .q
        .ok_or_else(|| search::invalid_query("is required"))?;
    let hits = search::find(
        &state.db,
        caller.user,
        Find {
            q,
            room,
            before,
            limit,
        },
        state.settings.search_timeout_ms,
    )
    .await?;
    Ok(HttpResponse::Ok().json(hits))
}
