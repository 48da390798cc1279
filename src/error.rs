//! The one error type. Every layer returns `Error`; the API maps it to a status and the
//! envelope `{"error": {code, message, request_id, fields?}}` (see `api::error`).
//!
//! Client mistakes are built with the named constructors and carry a stable `code`. Database,
//! pool and I/O faults convert with `?` into `internal`/`unavailable`, are logged with the
//! request id, and never show their details to the client.

use std::collections::BTreeMap;

/// What went wrong, how to tell the client, and (for our own faults) the cause to log.
#[derive(Debug)]
pub struct Error {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub fields: Option<BTreeMap<String, String>>,
    /// Seconds after which a retry may succeed (`Retry-After`), for refusals under load.
    pub retry_after: Option<u64>,
    pub cause: Option<anyhow::Error>,
}

impl Error {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Error {
        Error {
            status,
            code,
            message: message.into(),
            fields: None,
            retry_after: None,
            cause: None,
        }
    }

    /// A refusal under load or past a budget: `status` (429 or 503) with `Retry-After`.
    pub fn busy(
        status: u16,
        code: &'static str,
        message: impl Into<String>,
        retry_after_s: u64,
    ) -> Error {
        Error {
            retry_after: Some(retry_after_s.max(1)),
            ..Error::new(status, code, message)
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Error {
        Error::new(400, code, message)
    }

    pub fn unauthenticated() -> Error {
        Error::new(
            401,
            "unauthenticated",
            "sign in first: a session cookie or a bearer token is required",
        )
    }

    pub fn invalid_credentials() -> Error {
        Error::new(
            401,
            "invalid_credentials",
            "the username or the password is wrong",
        )
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Error {
        Error::new(403, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Error {
        Error::new(404, code, message)
    }

    /// The room doesn't exist or the caller isn't a member: the two look the same.
    pub fn room_not_found() -> Error {
        Error::not_found("room_not_found", "no such room")
    }

    /// One of the two users blocks the other. It doesn't say which.
    pub fn blocked() -> Error {
        Error::forbidden("blocked", "not possible: one of you has blocked the other")
    }

    /// The caller's role doesn't allow this.
    pub fn not_allowed(message: impl Into<String>) -> Error {
        Error::forbidden("forbidden", message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Error {
        Error::new(409, code, message)
    }

    /// One field (or several, with `and`) failed validation.
    pub fn validation(field: &str, reason: impl Into<String>) -> Error {
        Error::new(422, "validation_failed", "some fields are invalid").and(field, reason)
    }

    /// Adds a field's reason to a validation error.
    pub fn and(mut self, field: &str, reason: impl Into<String>) -> Error {
        self.fields
            .get_or_insert_with(BTreeMap::new)
            .insert(field.to_string(), reason.into());
        self
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Error {
        Error {
            cause: Some(cause.into()),
            ..Error::new(
                500,
                "internal",
                "something went wrong on our side; it has been logged",
            )
        }
    }

    pub fn unavailable(cause: impl Into<anyhow::Error>) -> Error {
        Error {
            cause: Some(cause.into()),
            ..Error::new(
                503,
                "unavailable",
                "the service is temporarily unavailable; retry shortly",
            )
        }
    }

    /// The same error for another caller (one failed batch answers many requests); the
    /// cause goes along as text.
    pub fn for_another(&self) -> Error {
        Error {
            status: self.status,
            code: self.code,
            message: self.message.clone(),
            fields: self.fields.clone(),
            retry_after: self.retry_after,
            cause: self.cause.as_ref().map(|c| anyhow::anyhow!("{c:#}")),
        }
    }

    /// Whether this is our fault (to be logged) rather than the client's.
    pub fn is_server_fault(&self) -> bool {
        self.status >= 500
    }

    /// A 503 the server chose to give (a full pool or socket cap, with `Retry-After`), not a
    /// failure: an attacker can make thousands a second, so it isn't logged as an error (the
    /// per-route status counts in `/metrics` show it).
    pub fn is_load_shed(&self) -> bool {
        self.status == 503 && self.retry_after.is_some() && self.cause.is_none()
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)?;
        if let Some(cause) = &self.cause {
            write!(f, " ({cause:#})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Error {
        Error::internal(e)
    }
}

impl From<diesel::r2d2::PoolError> for Error {
    fn from(e: diesel::r2d2::PoolError) -> Error {
        Error::unavailable(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Error {
        Error::internal(e)
    }
}

/// The result type of every layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_pool_is_load_shed_and_a_lost_database_a_fault() {
        let busy = Error::busy(503, "server_busy", "try again", 2);
        let down = Error::unavailable(anyhow::anyhow!("connection refused"));
        assert!(busy.is_load_shed());
        assert!(!down.is_load_shed() && down.is_server_fault());
        assert!(!Error::validation("name", "too long").is_load_shed());
    }
}
