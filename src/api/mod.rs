//! The REST API: routes, extractors and middleware. Handlers parse and answer; the rules live
//! in `core`.

pub mod accounts;
pub mod auth;
pub mod error;
pub mod messages;
pub mod middleware;
pub mod ops;
pub mod rooms;
pub mod session_store;

use actix_web::web;

use crate::stream;

/// Registers every route of API v1 and the operations endpoints.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // One resource per path, so that a wrong method is 405, not 404.
    let get = web::get;
    let post = web::post;
    cfg.service(web::resource("/healthz").route(get().to(ops::healthz)))
        .service(web::resource("/readyz").route(get().to(ops::readyz)))
        .service(web::resource("/metrics").route(get().to(ops::metrics)))
        .service(
            web::scope("/api/v1")
                .service(web::resource("/users").route(post().to(accounts::register)))
                .service(web::resource("/users/{id}").route(get().to(accounts::user)))
                .service(web::resource("/sessions").route(post().to(accounts::login)))
                .service(
                    web::resource("/sessions/current").route(web::delete().to(accounts::logout)),
                )
                .service(web::resource("/me").route(get().to(accounts::me)))
                .service(
                    web::resource("/rooms")
                        .route(post().to(rooms::create))
                        .route(get().to(rooms::list)),
                )
                .service(web::resource("/rooms/{id}").route(get().to(rooms::get)))
                .service(web::resource("/dms").route(post().to(rooms::open_direct)))
                .service(
                    web::resource("/rooms/{id}/messages")
                        .route(post().to(messages::send))
                        .route(get().to(messages::history)),
                )
                .service(web::resource("/stream").route(get().to(stream::connect))),
        );
}
