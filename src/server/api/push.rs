//! Push notifications for devices that hold no socket: `GET /api/v1/push/vapid` and
//! `/api/v1/push/subscriptions…`. Subscribing is part of receiving, so a token with the `read`
//! scope may do it; each subscription belongs to the session or token that made it.

use actix_web::{web, HttpResponse};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::json::Json;
use crate::core::push::{self, Policy, Subscription};
use crate::domain::Id;
use crate::error::Error;
use crate::server::api::auth::{Caller, Receiver};
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;

/// The server's VAPID public key.
#[derive(Serialize, ToSchema)]
pub struct VapidKey {
    /// base64url without padding of the 65-byte uncompressed P-256 point: a browser's
    /// `applicationServerKey`.
    public_key: String,
}

/// `GET /api/v1/push/vapid`: the key browsers subscribe with. Public: no sign-in needed.
#[utoipa::path(operation_id = "push_vapid", get, path = "/api/v1/push/vapid", tag = "push", responses((status = 200, body = VapidKey), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(()))]
pub async fn vapid(state: web::Data<AppState>) -> HttpResponse {
    let public_key =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(state.push.webpush.public_key());
    HttpResponse::Ok().json(VapidKey { public_key })
}

/// A Web Push subscription's keys, as the browser's `PushSubscription.toJSON()` gives them.
#[derive(Deserialize, ToSchema)]
pub struct PushKeys {
    /// base64url of the browser's uncompressed P-256 public key (65 bytes).
    p256dh: Option<String>,
    /// base64url of the 16-byte authentication secret.
    auth: Option<String>,
}

/// `{"kind":"webpush","endpoint":…,"keys":{"p256dh":…,"auth":…}}` or
/// `{"kind":"fcm","token":…}`.
#[derive(Deserialize, ToSchema)]
pub struct SubscribeBody {
    /// `webpush` or `fcm`.
    kind: String,
    /// Web Push: the push service's URL for this browser (https, at most 2048 bytes).
    endpoint: Option<String>,
    /// Web Push: the browser's keys.
    keys: Option<PushKeys>,
    /// FCM: the device's registration token (1-4096 printable ASCII characters).
    token: Option<String>,
}

/// The caller's push subscriptions.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionList {
    subscriptions: Vec<Subscription>,
}

/// `POST /api/v1/push/subscriptions`: 201 with a new subscription, 200 with the caller's own
/// if they had subscribed this endpoint or token already (now tied to this credential).
#[utoipa::path(operation_id = "push_subscribe", post, path = "/api/v1/push/subscriptions", tag = "push", request_body = SubscribeBody, responses((status = 201, body = Subscription, description = "subscribed"), (status = 200, body = Subscription, description = "already subscribed: the same subscription"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn subscribe(
    state: web::Data<AppState>,
    Receiver(caller): Receiver,
    body: Json<SubscribeBody>,
) -> Result<HttpResponse, Error> {
    let body = body.into_inner();
    let (p256dh, auth) = match body.keys {
        Some(keys) => (keys.p256dh, keys.auth),
        None => (None, None),
    };
    let request = push::Request {
        kind: body.kind,
        endpoint: body.endpoint,
        p256dh,
        auth,
        token: body.token,
    };
    let policy = Policy {
        allow_insecure: state.settings.push.allow_insecure,
        fcm: state.push.fcm.is_some(),
    };
    let done = push::subscribe(&state.db, policy, caller.user, caller.credential, request).await?;
    let mut answer = if done.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer.json(done.subscription))
}

/// `GET /api/v1/push/subscriptions`: the caller's subscriptions, from all their credentials.
#[utoipa::path(operation_id = "push_list", get, path = "/api/v1/push/subscriptions", tag = "push", responses((status = 200, body = SubscriptionList), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Error> {
    let subscriptions = push::list(&state.db, caller.user, caller.credential).await?;
    Ok(HttpResponse::Ok().json(SubscriptionList { subscriptions }))
}

/// `DELETE /api/v1/push/subscriptions/{id}`: 204; 404 if it isn't the caller's.
#[utoipa::path(operation_id = "push_unsubscribe", delete, path = "/api/v1/push/subscriptions/{id}", tag = "push", params(("id" = Id, Path, description = "the id")), responses((status = 204, description = "done"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(("session" = []), ("bearer" = [])))]
pub async fn unsubscribe(
    state: web::Data<AppState>,
    Receiver(caller): Receiver,
    id: web::Path<Id>,
) -> Result<HttpResponse, Error> {
    push::delete(&state.db, caller.user, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
