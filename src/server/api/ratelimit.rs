//! Rate limits, as token buckets (`governor`): sign-in and registration per client IP, and
//! writes per user, across all of that user's sessions and tokens (a bot is a user of its own,
//! with its own bucket). Typing calls (`POST /api/v1/rooms/{id}/typing`) are writes with a
//! small bucket of their own, so that a typing client never spends the budget of its sends.
//! Message searches (`GET /api/v1/search/messages`) have a per-user bucket of their own. Over the limit: 429 `rate_limited` with `Retry-After`; every limited
//! response carries `X-RateLimit-Limit`, `-Remaining` and `-Reset` (seconds until full).
//!
//! The buckets are per node: behind a load balancer spreading clients over n nodes, a client
//! may get up to n times the limit. That is an approximation we accept for abuse control.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use actix_web::HttpMessage;

use crate::domain::Id;
use crate::error::{Class, Error};
use crate::server::api::auth::Caller;
use crate::server::state::AppState;

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// One bucket per key, with the figures its headers report.
pub struct Bucket<K: Hash + Eq + Clone> {
    limiter: Keyed<K>,
    burst: u32,
    refill: Duration,
}

/// What a check found: the headers to send, and whether the request may go on.
pub struct Verdict {
    limit: u32,
    remaining: u32,
    reset_s: u64,
    retry_after_s: Option<u64>,
}

impl<K: Hash + Eq + Clone> Bucket<K> {
    /// `per_period` requests per `period`, bursting up to the same number; `None` if 0 (off).
    fn new(per_period: u32, period: Duration) -> Option<Bucket<K>> {
        let burst = NonZeroU32::new(per_period)?;
        let quota = Quota::with_period(period / per_period)?.allow_burst(burst);
        Some(Bucket {
            limiter: RateLimiter::dashmap(quota).with_middleware::<StateInformationMiddleware>(),
            burst: per_period,
            refill: period,
        })
    }

    fn check(&self, key: &K) -> Verdict {
        let clock = DefaultClock::default();
        match self.limiter.check_key(key) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                let used = self.burst.saturating_sub(remaining) as u64;
                let per_cell = self.refill.as_secs_f64() / self.burst as f64;
                Verdict {
                    limit: self.burst,
                    remaining,
                    reset_s: (used as f64 * per_cell).ceil() as u64,
                    retry_after_s: None,
                }
            }
            Err(not_until) => {
                let wait = not_until
                    .wait_time_from(clock.now())
                    .as_secs_f64()
                    .ceil()
                    .max(1.0) as u64;
                Verdict {
                    limit: self.burst,
                    remaining: 0,
                    reset_s: self.refill.as_secs().max(wait),
                    retry_after_s: Some(wait),
                }
            }
        }
    }
}

/// The server's buckets.
pub struct Limits {
    login: Option<Bucket<IpAddr>>,
    writes: Option<Bucket<Id>>,
    typing: Option<Bucket<Id>>,
    /// Message searches per user (`GET /api/v1/search/messages`): reads, but each one walks an
    /// index.
    search: Option<Bucket<Id>>,
}

impl Limits {
    /// `login_per_min` sign-ins/registrations per IP per minute; `writes_per_s` writes and
    /// `typing_per_s` typing calls per user per second (each bursting to 5 seconds' worth). 0
    /// turns a limit off.
    pub fn new(login_per_min: u32, writes_per_s: u32, typing_per_s: u32) -> Limits {
        Limits {
            login: Bucket::new(login_per_min, Duration::from_secs(60)),
            writes: Bucket::new(writes_per_s.saturating_mul(5), Duration::from_secs(5)),
            typing: Bucket::new(typing_per_s.saturating_mul(5), Duration::from_secs(5)),
            search: None,
        }
    }

    /// Adds the search bucket: `per_min` searches per user per minute, bursting to a minute's
    /// worth (0: no limit).
    pub fn with_search(mut self, per_min: u32) -> Limits {
        self.search = Bucket::new(per_min, Duration::from_secs(60));
        self
    }

    /// Forgets idle keys (called by the maintenance task) so memory stays bounded.
    pub fn shrink(&self) {
        if let Some(b) = &self.login {
            b.limiter.retain_recent();
        }
        if let Some(b) = &self.writes {
            b.limiter.retain_recent();
        }
        if let Some(b) = &self.typing {
            b.limiter.retain_recent();
        }
        if let Some(b) = &self.search {
            b.limiter.retain_recent();
        }
    }
}

const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Which bucket a request draws from, if any.
async fn verdict(req: &ServiceRequest, limits: &Limits, trust_forwarded: bool) -> Option<Verdict> {
    let path = req.path();
    // A password change, or an account deletion, guesses a password too: it draws from the
    // sign-in bucket.
    let guesses = ["/api/v1/sessions", "/api/v1/users", "/api/v1/me/password"];
    let deletes_account = req.method() == Method::DELETE && path == "/api/v1/me";
    if (req.method() == Method::POST && guesses.contains(&path)) || deletes_account {
        // Behind a proxy that sets X-Forwarded-For (and that alone can reach us), the client's
        // address is there; otherwise every client would share the proxy's bucket.
        let forwarded = trust_forwarded
            .then(|| {
                req.connection_info()
                    .realip_remote_addr()
                    .and_then(|a| a.parse::<IpAddr>().ok())
            })
            .flatten();
        let ip = forwarded.or_else(|| req.peer_addr().map(|a| a.ip()))?;
        return limits.login.as_ref().map(|b| b.check(&ip));
    }
    if req.method() == Method::GET && path == "/api/v1/search/messages" {
        let bucket = limits.search.as_ref()?;
        let caller = Caller::authenticate(req.request()).await.ok()?;
        req.extensions_mut().insert(caller);
        return Some(bucket.check(&caller.user));
    }
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let typing = req.method() == Method::POST
        && path.starts_with("/api/v1/rooms/")
        && path.ends_with("/typing");
    let bucket = if typing {
        limits.typing.as_ref()?
    } else {
        limits.writes.as_ref()?
    };
    // Who is writing, from the credentials cache (no query for a live credential); kept for
    // the handler's `Caller`. A request that isn't signed in draws from no bucket: it gets its
    // 401 without touching anything.
    let caller = Caller::authenticate(req.request()).await.ok()?;
    req.extensions_mut().insert(caller);
    Some(bucket.check(&caller.user))
}

/// Applies the limits and adds the headers.
pub async fn limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let limits = req.app_data::<web::Data<Limits>>().cloned();
    let found = match (state, limits) {
        (Some(state), Some(limits)) => verdict(&req, &limits, state.settings.trust_forwarded).await,
        _ => None,
    };
    let Some(v) = found else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    let mut res = match v.retry_after_s {
        Some(wait) => {
            let err = Error::new(
                Class::TooMany,
                "rate_limited",
                format!("too many requests; retry in {wait} s"),
            );
            let mut response = err.error_response();
            if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            req.into_response(response).map_into_right_body()
        }
        None => next.call(req).await?.map_into_left_body(),
    };
    let headers = res.headers_mut();
    for (name, value) in [
        (LIMIT, v.limit as u64),
        (REMAINING, v.remaining as u64),
        (RESET, v.reset_s),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
            headers.insert(name, value);
        }
    }
    Ok(res)
}
