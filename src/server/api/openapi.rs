//! The OpenAPI document, generated from the handlers' annotations and the types they return,
//! served at `/api/v1/openapi.json`, with Swagger UI (assets vendored: it works offline) at
//! `/docs/`. The payload schema of each event type (`core::event::Kind::schema`) is named in the
//! `x-hubbub-events` extension.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

use crate::core::event::{self, Kind};
use crate::core::views::{Message, Room};
use crate::server::api::error::ErrorBody;
use crate::server::api::{
    account_data, account_security, accounts, admin, admin_reports, attachments, notifications,
    ops, push, reports, rooms, social, tokens, typing,
};
use crate::server::stream;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hubbub",
        version = "1",
        description = "A self-hostable chat backend: send over REST, receive over a read-only WebSocket (docs/events.md)."
    ),
    paths(
        accounts::register, accounts::login, accounts::logout, accounts::me, accounts::update_me,
        accounts::user, accounts::search, account_security::change_password,
        account_security::list, account_security::revoke,
        account_data::delete_me, account_data::delete_bot, account_data::export,
        social::request, social::requests, social::accept, social::decline, social::cancel,
        social::friends, social::unfriend, social::block, social::unblock, social::blocks,
        rooms::create, rooms::open_direct, rooms::list, rooms::get, rooms::rename,
        rooms::add_member, rooms::remove_member, rooms::set_role, rooms::mark_read,
        notifications::set, typing::set,
        crate::server::api::messages::send, crate::server::api::messages::history, crate::server::api::messages::edit,
        crate::server::api::messages::delete, crate::server::api::messages::react, crate::server::api::messages::unreact,
        attachments::upload, attachments::get, attachments::thumbnail,
        tokens::create_bot, tokens::create, tokens::list, tokens::delete, tokens::ticket,
        stream::connect, stream::sse::sse, stream::poll::events,
        push::vapid, push::subscribe, push::list, push::unsubscribe,
        reports::file, admin_reports::list, admin_reports::resolve, admin_reports::delete_message,
        ops::healthz, ops::readyz, ops::metrics,
        admin::users, admin::deactivate, admin::reactivate, admin::create_invite, admin::invites,
        admin::delete_invite,
        crate::server::api::search::messages,
    ),
    components(schemas(
        ErrorBody, Message, Room, event::ReactionEvent, event::MemberEvent, event::ReadMarker,
        event::Pair, event::RequestGone, event::UserUpdated, event::NotificationSettings,
        event::TypingEvent,
        event::PresenceEvent,
        crate::core::views::FriendRequest,
    )),
    modifiers(&Extras),
)]
pub struct ApiDoc;

struct Extras;

impl Modify for Extras {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::server::api::auth::SESSION_COOKIE,
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let events: serde_json::Map<String, serde_json::Value> = Kind::ALL
            .iter()
            .filter(|kind| kind.is_public())
            .map(|kind| {
                (
                    kind.as_str().to_string(),
                    format!("#/components/schemas/{}", kind.schema()).into(),
                )
            })
            .collect();
        let mut extensions = doc.extensions.take().unwrap_or_default();
        extensions.insert("x-hubbub-events".into(), events.into());
        doc.extensions = Some(extensions);
    }
}

impl ApiDoc {
    /// The document as the annotations generate it, before `schema::tighten`.
    pub fn generated() -> Document {
        ApiDoc::openapi()
    }
}

/// The document: generated from the annotations, then given every input's constraints from the
/// validators' own constants (`api::schema`).
pub fn document() -> Document {
    let mut doc = serde_json::to_value(ApiDoc::generated()).expect("the document is JSON");
    crate::server::api::schema::tighten(&mut doc);
    serde_json::from_value(doc).expect("the tightened document is still a document")
}
