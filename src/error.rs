//! The one error type. Every layer returns `Error`: a [`Class`] of failure, a stable `code` and
//! a message. The server layer turns the class into an HTTP status and the error into the
//! envelope `{"error": {code, message, request_id, fields?}}` (`server::api::error`).
//!
//! Client mistakes are built with the named constructors and carry a stable `code`. Database,
//! pool and I/O faults convert with `?` into `internal`/`unavailable`, are logged with the
//! request id, and never show their details to the client.

use std::collections::BTreeMap;

/// What kind of failure. The server layer answers each with one HTTP status
/// (`server::api::error::status_of`); nothing below it knows the numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// The request can't be understood as it is.
    BadRequest,
    /// Nobody is signed in, or the credential is wrong.
    Unauthenticated,
    /// Signed in, but not allowed.
    Forbidden,
    /// No such thing (or one the caller may not know of).
    NotFound,
    MethodNotAllowed,
    /// The request took too long to arrive.
    TooSlow,
    /// It clashes with the current state.
    Conflict,
    /// A body needs a length.
    LengthRequired,
    /// The body is too large.
    TooLarge,
    UriTooLong,
    UnsupportedMediaType,
    /// Well-formed, but some fields are invalid.
    Invalid,
    /// Past a rate or a budget: retry later.
    TooMany,
    HeadersTooLarge,
    /// The client left before the answer.
    ClientClosed,
    /// Our fault.
    Internal,
    /// Not now: a dependency is down, or the node sheds load.
    Unavailable,
}

/// What went wrong, how to tell the client, and (for our own faults) the cause to log.
#[derive(Debug)]
pub struct Error {
    pub class: Class,
    pub code: &'static str,
    pub message: String,
    pub fields: Option<BTreeMap<String, String>>,
    /// Seconds after which a retry may succeed (`Retry-After`), for refusals under load.
    pub retry_after: Option<u64>,
    pub cause: Option<anyhow::Error>,
}

impl Error {
    pub fn new(class: Class, code: &'static str, message: impl Into<String>) -> Error {
        Error {
            class,
            code,
            message: message.into(),
            fields: None,
            retry_after: None,
            cause: None,
        }
    }

    /// A refusal under load or past a budget (`TooMany` or `Unavailable`), with `Retry-After`.
    pub fn busy(
        class: Class,
        code: &'static str,
        message: impl Into<String>,
        retry_after_s: u64,
    ) -> Error {
        Error {
            retry_after: Some(retry_after_s.max(1)),
            ..Error::new(class, code, message)
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Error {
        Error::new(Class::BadRequest, code, message)
    }

    pub fn unauthenticated() -> Error {
        Error::new(
            Class::Unauthenticated,
            "unauthenticated",
            "sign in first: a session cookie or a bearer token is required",
        )
    }

    pub fn invalid_credentials() -> Error {
        Error::new(
            Class::Unauthenticated,
            "invalid_credentials",
            "the username or the password is wrong",
        )
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Error {
        Error::new(Class::Forbidden, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Error {
        Error::new(Class::NotFound, code, message)
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
        Error::new(Class::Conflict, code, message)
    }

    /// One field (or several, with `and`) failed validation.
    pub fn validation(field: &str, reason: impl Into<String>) -> Error {
        Error::new(
            Class::Invalid,
            "validation_failed",
            "some fields are invalid",
        )
        .and(field, reason)
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
                Class::Internal,
                "internal",
                "something went wrong on our side; it has been logged",
            )
        }
    }

    pub fn unavailable(cause: impl Into<anyhow::Error>) -> Error {
        Error {
            cause: Some(cause.into()),
            ..Error::new(
                Class::Unavailable,
                "unavailable",
                "the service is temporarily unavailable; retry shortly",
            )
        }
    }

    /// The same error for another caller (one failed batch answers many requests); the
    /// cause goes along as text.
    pub fn for_another(&self) -> Error {
        Error {
            class: self.class,
            code: self.code,
            message: self.message.clone(),
            fields: self.fields.clone(),
            retry_after: self.retry_after,
            cause: self.cause.as_ref().map(|c| anyhow::anyhow!("{c:#}")),
        }
    }

    /// Whether this is our fault (to be logged) rather than the client's.
    pub fn is_server_fault(&self) -> bool {
        matches!(self.class, Class::Internal | Class::Unavailable)
    }

    /// A refusal the server chose to give (a full pool or socket cap, with `Retry-After`), not a
    /// failure: an attacker can make thousands a second, so it isn't logged as an error (the
    /// per-route status counts in `/metrics` show it).
    pub fn is_load_shed(&self) -> bool {
        self.class == Class::Unavailable && self.retry_after.is_some() && self.cause.is_none()
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {}: {}", self.class, self.code, self.message)?;
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
        let busy = Error::busy(Class::Unavailable, "server_busy", "try again", 2);
        let down = Error::unavailable(anyhow::anyhow!("connection refused"));
        assert!(busy.is_load_shed());
        assert!(!down.is_load_shed() && down.is_server_fault());
        assert!(!Error::validation("name", "too long").is_load_shed());
    }
}
