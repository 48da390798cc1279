//! The REST API: routes, extractors and middleware. Handlers parse and answer; the rules live
//! in `core`.

pub mod accounts;
pub mod attachments;
pub mod auth;
pub mod client;
pub mod error;
pub mod json;
pub mod messages;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod ratelimit;
pub mod rooms;
pub mod session_store;
pub mod social;
pub mod tokens;

use actix_web::web;
use serde::Serialize;

use crate::stream;

/// A write's answer: the object plus the id of the event the write appended, if any (the id
/// the event's frame carries on the socket).
#[derive(Serialize, utoipa::ToSchema)]
pub struct WithEvent<T: Serialize> {
    #[serde(flatten)]
    pub inner: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl<T: Serialize> WithEvent<T> {
    pub fn new(inner: T, event: Option<i64>) -> WithEvent<T> {
        WithEvent {
            inner,
            event_id: event.map(crate::events::cursor),
        }
    }
}

/// Registers every route of API v1 and the operations endpoints.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // One resource per path, so that a wrong method is 405, not 404.
    let (get, post, put, patch, delete) = (web::get, web::post, web::put, web::patch, web::delete);
    cfg.service(web::resource("/").route(get().to(client::index)))
        .service(web::resource("/web/{file:.+}").route(get().to(client::asset)))
        .service(web::resource("/healthz").route(get().to(ops::healthz)))
        .service(web::resource("/readyz").route(get().to(ops::readyz)))
        .service(web::resource("/metrics").route(get().to(ops::metrics)))
        .service(
            web::scope("/api/v1")
                // Resources are tried in order: the hottest path goes first.
                .service(
                    web::resource("/rooms/{id}/messages")
                        .route(post().to(messages::send))
                        .route(get().to(messages::history)),
                )
                .service(
                    web::resource("/users")
                        .route(post().to(accounts::register))
                        .route(get().to(accounts::search)),
                )
                .service(web::resource("/users/{id}").route(get().to(accounts::user)))
                .service(web::resource("/sessions").route(post().to(accounts::login)))
                .service(web::resource("/sessions/current").route(delete().to(accounts::logout)))
                .service(
                    web::resource("/me")
                        .route(get().to(accounts::me))
                        .route(patch().to(accounts::update_me)),
                )
                .service(
                    web::resource("/friends/requests")
                        .route(post().to(social::request))
                        .route(get().to(social::requests)),
                )
                .service(web::resource("/friends/requests/{id}").route(delete().to(social::cancel)))
                .service(
                    web::resource("/friends/requests/{id}/accept").route(post().to(social::accept)),
                )
                .service(
                    web::resource("/friends/requests/{id}/decline")
                        .route(post().to(social::decline)),
                )
                .service(web::resource("/friends").route(get().to(social::friends)))
                .service(web::resource("/friends/{user_id}").route(delete().to(social::unfriend)))
                .service(web::resource("/blocks").route(get().to(social::blocks)))
                .service(
                    web::resource("/blocks/{user_id}")
                        .route(put().to(social::block))
                        .route(delete().to(social::unblock)),
                )
                .service(
                    web::resource("/rooms")
                        .route(post().to(rooms::create))
                        .route(get().to(rooms::list)),
                )
                .service(
                    web::resource("/rooms/{id}")
                        .route(get().to(rooms::get))
                        .route(patch().to(rooms::rename)),
                )
                .service(web::resource("/rooms/{id}/members").route(post().to(rooms::add_member)))
                .service(
                    web::resource("/rooms/{id}/members/{user_id}")
                        .route(delete().to(rooms::remove_member))
                        .route(patch().to(rooms::set_role)),
                )
                .service(web::resource("/rooms/{id}/read").route(post().to(rooms::mark_read)))
                .service(web::resource("/dms").route(post().to(rooms::open_direct)))
                .service(
                    web::resource("/rooms/{id}/messages/{message_id}")
                        .route(patch().to(messages::edit))
                        .route(delete().to(messages::delete)),
                )
                .service(
                    web::resource("/rooms/{id}/messages/{message_id}/reactions/{emoji}")
                        .route(put().to(messages::react))
                        .route(delete().to(messages::unreact)),
                )
                .service(web::resource("/attachments").route(post().to(attachments::upload)))
                .service(web::resource("/attachments/{id}").route(get().to(attachments::get)))
                .service(
                    web::resource("/attachments/{id}/thumbnail")
                        .route(get().to(attachments::thumbnail)),
                )
                .service(web::resource("/stream").route(get().to(stream::connect)))
                .service(web::resource("/stream/tickets").route(post().to(tokens::ticket)))
                .service(web::resource("/events").route(get().to(stream::poll::events)))
                .service(web::resource("/bots").route(post().to(tokens::create_bot)))
                .service(
                    web::resource("/tokens")
                        .route(post().to(tokens::create))
                        .route(get().to(tokens::list)),
                )
                .service(web::resource("/tokens/{id}").route(delete().to(tokens::delete))),
        );
}
