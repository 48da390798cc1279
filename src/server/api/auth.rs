//! Who is calling: the `Caller` extractor (a bearer token or the session cookie, with the
//! token's scopes checked against the method), and the session helpers of the account endpoints.

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;

use crate::core::tokens::{self, Scopes};
use crate::domain::{Id, Time};
use crate::error::{Class, Error};
use crate::server::state::AppState;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "hubbub_session";

const USER: &str = "user_id";
const SID: &str = "sid";
/// The sign-in request's `User-Agent`, carried in the state until the store writes the row.
const USER_AGENT: &str = "ua";

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user: Id,
    /// The credential the request came with (a session's or a token's id): revoking it ends
    /// the sockets opened with it.
    pub credential: Id,
    pub scopes: Scopes,
    /// When the credential expires (`None`: a token without expiry; sessions always expire).
    pub expires: Option<Time>,
    /// Whether it came as a bearer token (else the session cookie).
    pub bearer: bool,
}

impl Caller {
    /// The caller of `req`: a bearer token if `Authorization` is sent, else the session
    /// cookie; 401 without either.
    pub async fn authenticate(req: &HttpRequest) -> Result<Caller, Error> {
        if let Some(header) = req.headers().get(header::AUTHORIZATION) {
            let invalid = |why: &str| Error::new(Class::Unauthenticated, "invalid_token", why);
            // A token is ASCII (`hb_` and hex): anything else was pasted wrong, such as the
            // documentation's placeholder `hb_…`.
            let value = header.to_str().map_err(|_| {
                invalid(
                    "the Authorization header holds characters no token has: send \
                     `Bearer hb_<hex>`, the token_secret shown once when the token was made",
                )
            })?;
            let secret = value
                .strip_prefix("Bearer ")
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| invalid("Authorization must be `Bearer <token>`"))?;
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| Error::internal(anyhow::anyhow!("no app state")))?;
            let (user, credential, scopes, expires) =
                tokens::authenticate(&state.db, &state.credentials, secret)
                    .await?
                    .ok_or_else(|| {
                        Error::new(
                            Class::Unauthenticated,
                            "invalid_token",
                            "the token is unknown, expired or revoked",
                        )
                    })?;
            return Ok(Caller {
                user,
                credential,
                scopes,
                expires,
                bearer: true,
            });
        }
        let session = req.get_session();
        match (session.get::<Id>(USER), session.get::<Id>(SID)) {
            (Ok(Some(user)), Ok(Some(credential))) => Ok(Caller {
                user,
                credential,
                scopes: Scopes::ALL,
                expires: None,
                bearer: false,
            }),
            _ => Err(Error::unauthenticated()),
        }
    }

    /// The caller, checked against the scope the request's method needs: `send` for anything
    /// that writes, `read` for the rest.
    async fn for_request(req: HttpRequest) -> Result<Caller, Error> {
        // The rate limiter authenticated writes already (it keys them by user).
        let known = req.extensions().get::<Caller>().copied();
        let caller = match known {
            Some(caller) => caller,
            None => Caller::authenticate(&req).await?,
        };
        let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        let allowed = if writes {
            caller.scopes.send
        } else {
            caller.scopes.read
        };
        if !allowed {
            let needed = if writes { "send" } else { "read" };
            return Err(Error::forbidden(
                "insufficient_scope",
                format!("this token lacks the `{needed}` scope"),
            ));
        }
        Ok(caller)
    }
}

impl Caller {
    /// The caller of a write that only concerns what they receive (a stream ticket, a push
    /// subscription): the `read` scope is enough.
    pub async fn receiving(req: &HttpRequest) -> Result<Caller, Error> {
        let known = req.extensions().get::<Caller>().copied();
        let caller = match known {
            Some(caller) => caller,
            None => Caller::authenticate(req).await?,
        };
        if !caller.scopes.read {
            return Err(Error::forbidden(
                "insufficient_scope",
                "this token lacks the `read` scope",
            ));
        }
        Ok(caller)
    }
}

/// The caller of a write that only concerns what they receive, as an extractor (see
/// [`Caller::receiving`]).
#[derive(Debug, Clone, Copy)]
pub struct Receiver(pub Caller);

impl FromRequest for Receiver {
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Receiver, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Caller::receiving(&req).await.map(Receiver) })
    }
}

impl FromRequest for Caller {
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Caller, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(Caller::for_request(req.clone()))
    }
}

/// Starts a fresh session for `user` (a new key, so a planted cookie can't be fixed on them),
/// remembering the `User-Agent` of `req` for the sessions list.
pub fn start_session(session: &Session, req: &HttpRequest, user: Id) -> Result<(), Error> {
    session.renew();
    session.clear();
    session.insert(USER, user).map_err(Error::internal)?;
    session.insert(SID, Id::new()).map_err(Error::internal)?;
    let agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| {
            ua.chars()
                .take(crate::core::sessions::MAX_USER_AGENT)
                .collect::<String>()
        });
    if let Some(agent) = agent {
        session.insert(USER_AGENT, agent).map_err(Error::internal)?;
    }
    Ok(())
}

/// The `User-Agent` a stored session state signed in with, if any.
pub fn session_user_agent(state: &std::collections::HashMap<String, String>) -> Option<String> {
    state
        .get(USER_AGENT)
        .and_then(|v| serde_json::from_str::<String>(v).ok())
}

/// The values a stored session state must carry: (user, session id).
pub fn session_ids(state: &std::collections::HashMap<String, String>) -> Option<(Id, Id)> {
    let get = |key: &str| {
        state
            .get(key)
            .and_then(|v| serde_json::from_str::<Id>(v).ok())
    };
    Some((get(USER)?, get(SID)?))
}

/// A caller who is a server administrator (`users.admin`). Anyone else, signed in or not, gets
/// the 404 of an unknown endpoint, so `/api/v1/admin/` gives away nothing about itself.
#[derive(Debug, Clone, Copy)]
pub struct Admin(pub Caller);

impl Admin {
    fn hidden() -> Error {
        Error::not_found("not_found", "no such endpoint")
    }
}

impl FromRequest for Admin {
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Admin, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let caller = Caller::for_request(req.clone())
                .await
                .map_err(|_| Admin::hidden())?;
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| Error::internal(anyhow::anyhow!("no app state")))?;
            if crate::core::admin::is_admin(&state.db, caller.user).await? {
                Ok(Admin(caller))
            } else {
                Err(Admin::hidden())
            }
        })
    }
}
