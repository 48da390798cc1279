//! The REST API: routes, extractors and middleware. Handlers parse and answer; the rules live
//! in `core`.

pub mod account_data;
pub mod account_security;
pub mod accounts;
pub mod admin;
pub mod admin_reports;
pub mod attachments;
pub mod auth;
pub mod client;
pub mod error;
pub mod json;
pub mod messages;
pub mod middleware;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod paging;
pub mod push;
pub mod ratelimit;
pub mod reports;
pub mod rooms;
pub mod schema;
pub mod search;
pub mod session_store;
pub mod social;
pub mod tokens;
pub mod typing;
pub mod with_event;

pub use with_event::WithEvent;

use actix_web::web;

use crate::server::stream;

/// One resource: its path and a handler per method. Any other method is 405 with an `Allow` header
/// that lists them (and HEAD wherever GET is: `middleware::request_id` serves a HEAD as a GET,
/// and actix-http sends no body for it).
macro_rules! resource {
    ($path:expr, $($method:ident => $handler:path),+ $(,)?) => {
        web::resource($path)
            $(.route(web::$method().to($handler)))+
            .default_service(web::to(|| async {
                error::method_not_allowed(&[$(stringify!($method)),+])
            }))
    };
}

/// An administrators' resource: like `resource!`, but a wrong method is 405 only for an
/// administrator (`admin::gate` has answered anyone else with 404 already; the extractor makes
/// sure of it).
macro_rules! admin_resource {
    ($path:expr, $($method:ident => $handler:path),+ $(,)?) => {
        web::resource($path)
            $(.route(web::$method().to($handler)))+
            .default_service(web::to(|_admin: auth::Admin| async {
                error::method_not_allowed(&[$(stringify!($method)),+])
            }))
    };
}

/// Registers every route of API v1 and the operations endpoints.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // One resource per path, so that a wrong method is 405 (with `Allow`), not 404.
    cfg.service(resource!("/", get => client::index))
        .service(resource!("/web/{file:.+}", get => client::asset))
        .service(resource!("/healthz", get => ops::healthz))
        .service(resource!("/readyz", get => ops::readyz))
        .service(resource!("/metrics", get => ops::metrics))
        .service(
            web::scope("/api/v1")
                // Resources are tried in order: the hottest path goes first.
                .service(
                    resource!("/rooms/{id}/messages", post => messages::send, get => messages::history),
                )
                .service(
                    resource!("/users", post => accounts::register, get => accounts::search),
                )
                .service(resource!("/users/{id}", get => accounts::user))
                .service(
                    resource!("/sessions", post => accounts::login, get => account_security::list),
                )
                .service(resource!("/sessions/current", delete => accounts::logout))
                .service(resource!("/sessions/{id}", delete => account_security::revoke))
                .service(
                    resource!("/me", get => accounts::me, patch => accounts::update_me, delete => account_data::delete_me),
                )
                .service(resource!("/me/password", post => account_security::change_password))
                // Leaving and taking one's data (#18).
                .service(resource!("/me/export", get => account_data::export))
                .service(resource!("/bots/{id}", delete => account_data::delete_bot))
                .service(
                    resource!("/friends/requests", post => social::request, get => social::requests),
                )
                .service(resource!("/friends/requests/{id}", delete => social::cancel))
                .service(
                    resource!("/friends/requests/{id}/accept", post => social::accept),
                )
                .service(
                    resource!("/friends/requests/{id}/decline", post => social::decline),
                )
                .service(resource!("/friends", get => social::friends))
                .service(resource!("/friends/{user_id}", delete => social::unfriend))
                .service(resource!("/blocks", get => social::blocks))
                .service(
                    resource!("/blocks/{user_id}", put => social::block, delete => social::unblock),
                )
                .service(
                    resource!("/rooms", post => rooms::create, get => rooms::list),
                )
                .service(
                    resource!("/rooms/{id}", get => rooms::get, patch => rooms::rename),
                )
                .service(resource!("/rooms/{id}/members", post => rooms::add_member))
                .service(
                    resource!("/rooms/{id}/members/{user_id}", delete => rooms::remove_member, patch => rooms::set_role),
                )
                .service(resource!("/rooms/{id}/read", post => rooms::mark_read))
                .service(resource!("/rooms/{id}/typing", post => typing::set))
                .service(
                    resource!("/rooms/{id}/notifications", put => notifications::set),
                )
                .service(resource!("/dms", post => rooms::open_direct))
                .service(
                    resource!("/rooms/{id}/messages/{message_id}", patch => messages::edit, delete => messages::delete),
                )
                .service(
                    resource!("/rooms/{id}/messages/{message_id}/reactions/{emoji}", put => messages::react, delete => messages::unreact),
                )
                .service(resource!("/attachments", post => attachments::upload))
                .service(resource!("/attachments/{id}", get => attachments::get))
                .service(
                    resource!("/attachments/{id}/thumbnail", get => attachments::thumbnail),
                )
                .service(resource!("/stream", get => stream::connect))
                .service(resource!("/stream/sse", get => stream::sse::sse))
                .service(resource!("/stream/tickets", post => tokens::ticket))
                .service(resource!("/events", get => stream::poll::events))
                .service(resource!("/bots", post => tokens::create_bot))
                .service(
                    resource!("/tokens", post => tokens::create, get => tokens::list),
                )
                .service(resource!("/tokens/{id}", delete => tokens::delete))
                // Reports and moderation (#18).
                .service(resource!("/reports", post => reports::file))
                .service(admin_resource!("/admin/reports", get => admin_reports::list))
                .service(
                    admin_resource!("/admin/reports/{id}/resolve", post => admin_reports::resolve),
                )
                .service(
                    admin_resource!("/admin/messages/{id}", delete => admin_reports::delete_message),
                )
                .service(resource!("/push/vapid", get => push::vapid))
                .service(
                    resource!("/push/subscriptions", post => push::subscribe, get => push::list),
                )
                .service(resource!("/push/subscriptions/{id}", delete => push::unsubscribe))
                // Message search (#19).
                .service(resource!("/search/messages", get => search::messages))
                // Administration (#18): accounts and invites.
                .service(admin_resource!("/admin/users", get => admin::users))
                .service(
                    admin_resource!("/admin/users/{id}/deactivate", post => admin::deactivate),
                )
                .service(
                    admin_resource!("/admin/users/{id}/reactivate", post => admin::reactivate),
                )
                .service(
                    admin_resource!("/admin/invites", post => admin::create_invite, get => admin::invites),
                )
                .service(
                    admin_resource!("/admin/invites/{id}", delete => admin::delete_invite),
                ),
        );
}
