//! Operations endpoints: `GET /healthz` (the process is up), `GET /readyz` (the database
//! answers), `GET /metrics` (Prometheus text).

use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;
use serde_json::json;

use crate::error::Error;
use crate::server::api::error::ErrorBody;
use crate::server::state::AppState;

#[utoipa::path(operation_id = "ops_healthz", get, path = "/healthz", tag = "operations", responses((status = 200, description = "the process is up"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(()))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[utoipa::path(operation_id = "ops_readyz", get, path = "/readyz", tag = "operations", responses((status = 200, description = "the database answers; doorbell up, down or off"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(()))]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    state
        .db
        .run(|conn| Ok(conn.batch_execute("SELECT 1")?))
        .await?;
    // Without the Redis doorbell the node still serves (other nodes' events arrive by polling).
    Ok(HttpResponse::Ok().json(json!({
        "status": "ready",
        "database": "ok",
        "doorbell": state.doorbell.describe(),
    })))
}

#[utoipa::path(operation_id = "ops_metrics", get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text", content_type = "text/plain"), (status = "4XX", description = "a client error, in the error envelope", body = ErrorBody)), security(()))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
