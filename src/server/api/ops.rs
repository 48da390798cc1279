//! Operations endpoints: `GET /healthz` (the process is up), `GET /readyz` (the database
//! answers), `GET /metrics` (Prometheus text).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::core::maintenance;
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;

#[utoipa::path(operation_id = "ops_healthz", get, path = "/healthz", tag = "operations", responses((status = 200, description = "the process is up"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(()))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[utoipa::path(operation_id = "ops_readyz", get, path = "/readyz", tag = "operations", responses((status = 200, description = "the database answers and can take a write; doorbell up, down or off"), (status = 503, description = "not ready: `database` says why (it doesn't answer, or can't take a write)"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(()))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let problem = maintenance::unready(&state.db).await;
    // Without the Redis doorbell the node still serves (other nodes' events arrive by polling).
    let doorbell = state.doorbell.describe();
    match problem {
        None => HttpResponse::Ok().json(json!({
            "status": "ready",
            "database": "ok",
            "doorbell": doorbell,
        })),
        Some(reason) => HttpResponse::ServiceUnavailable().json(json!({
            "status": "not_ready",
            "database": reason,
            "doorbell": doorbell,
        })),
    }
}

#[utoipa::path(operation_id = "ops_metrics", get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text", content_type = "text/plain"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(()))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
