//! Who is calling: the `Caller` extractor (a session cookie today; bearer tokens plug in here),
//! and the session helpers the account endpoints use.

use std::future::{ready, Ready};

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use crate::domain::Id;
use crate::error::Error;

const USER: &str = "user_id";
const SID: &str = "sid";

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user: Id,
    /// The credential the request came with (the session's id): revoking it ends its sockets.
    pub credential: Id,
}

impl Caller {
    /// The caller of `req`, or 401.
    pub fn of(req: &HttpRequest) -> Result<Caller, Error> {
        let session = req.get_session();
        match (session.get::<Id>(USER), session.get::<Id>(SID)) {
            (Ok(Some(user)), Ok(Some(credential))) => Ok(Caller { user, credential }),
            _ => Err(Error::unauthenticated()),
        }
    }
}

impl FromRequest for Caller {
    type Error = Error;
    type Future = Ready<Result<Caller, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Caller::of(req))
    }
}

/// Starts a fresh session for `user` (a new key, so a planted cookie can't be fixed on them).
pub fn start_session(session: &Session, user: Id) -> Result<(), Error> {
    session.renew();
    session.clear();
    session.insert(USER, user).map_err(Error::internal)?;
    session.insert(SID, Id::new()).map_err(Error::internal)?;
    Ok(())
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
