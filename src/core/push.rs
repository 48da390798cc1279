//! Push subscriptions: the rules for where a user's devices may be notified. A subscription is a
//! browser's Web Push endpoint (with its keys) or a device's FCM token; it belongs to the
//! credential that made it and ends with it (`tokens::revoke_in`, `sessions::end`,
//! `maintenance::prune`). The push worker (`crate::push`) delivers to them.
//!
//! The server reaches the endpoints, so an endpoint must not point at the server's own network:
//! [`refused_address`] is the one rule for that, asked here when a subscription is made and by
//! the server's HTTP client each time it connects (DNS may change in between).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;

use crate::domain::{Id, PushKind, Time};
use crate::error::{Class, Error, Result};
use crate::store::{self, push::SubscriptionRow, Db, DbConnection};

/// Subscriptions made with one session or token (a browser profile or an app install has one).
pub const MAX_PER_CREDENTIAL: i64 = 10;
/// Subscriptions one user holds across all their credentials.
pub const MAX_PER_USER: i64 = 50;
/// The longest Web Push endpoint URL, in bytes.
pub const MAX_ENDPOINT_BYTES: usize = 2048;
/// The longest FCM registration token, in bytes.
pub const MAX_FCM_TOKEN_BYTES: usize = 4096;
/// How long the endpoint's host may take to resolve when a subscription is made.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the server allows.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// `http` endpoints and any address (development and tests).
    pub allow_insecure: bool,
    /// Whether FCM is configured (else FCM subscriptions are refused).
    pub fcm: bool,
}

/// A subscription as the client sent it, before any check.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub kind: String,
    pub endpoint: Option<String>,
    pub p256dh: Option<String>,
    pub auth: Option<String>,
    pub token: Option<String>,
}

/// A subscription as its owner sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Subscription {
    pub id: Id,
    pub kind: PushKind,
    pub created_at: Time,
    /// The Web Push endpoint (absent for FCM: the token stays on the device).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Whether it was made with the credential of this request.
    pub current: bool,
}

impl Subscription {
    fn of(row: &SubscriptionRow, credential: Id) -> Subscription {
        Subscription {
            id: row.id,
            kind: row.kind,
            created_at: row.created_at,
            endpoint: (row.kind == PushKind::WebPush).then(|| row.target.clone()),
            current: row.credential_id == credential,
        }
    }
}

/// What `subscribe` did: a new subscription, or the caller's existing one for that endpoint.
#[derive(Debug)]
pub struct Subscribed {
    pub subscription: Subscription,
    pub created: bool,
}

/// A checked subscription, ready to store.
#[derive(Debug, Clone)]
struct Target {
    kind: PushKind,
    target: String,
    p256dh: Option<String>,
    auth: Option<String>,
}

/// Why the server won't connect to `ip`, if it won't: addresses of its own host and networks,
/// and ranges that are not unicast on the public internet (IPv4-mapped, NAT64 and 6to4 forms
/// are judged by the IPv4 address inside).
pub fn refused_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let why = match (a, b, c) {
        _ if ip.is_unspecified() || a == 0 => "an unspecified address",
        _ if ip.is_broadcast() => "the broadcast address",
        (127, _, _) => "a loopback address",
        (10, _, _) | (192, 168, _) => "a private address",
        (172, b, _) if (16..32).contains(&b) => "a private address",
        (100, b, _) if (64..128).contains(&b) => "a shared (CGNAT) address",
        (169, 254, _) => "a link-local address",
        (192, 0, 0) => "an IETF protocol address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, 18..=19, _) => "a benchmarking address",
        (192, 88, 99) => "a 6to4 relay address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved address",
        _ => return None,
    };
    Some(why)
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return refused_v4(embedded(s[6], s[7]));
    }
    // 6to4 (2002::/16) carries the IPv4 address in bits 16-48.
    if s[0] == 0x2002 {
        return refused_v4(embedded(s[1], s[2]));
    }
    let why = match s[0] {
        _ if ip.is_unspecified() => "an unspecified address",
        _ if ip.is_loopback() => "a loopback address",
        0xff00..=0xffff => "a multicast address",
        0xfe80..=0xfebf => "a link-local address",
        0xfec0..=0xfeff => "a site-local address",
        0xfc00..=0xfdff => "a unique-local (private) address",
        0x2001 if s[1] == 0x0db8 => "a documentation address",
        0x3fff if s[1] < 0x1000 => "a documentation address",
        0x2001 if s[1] < 0x0200 => "an IETF protocol address",
        // Global unicast is 2000::/3; the rest is reserved, IPv4-compatible or NAT64 local-use.
        0x2000..=0x3fff => return None,
        _ => "a reserved address",
    };
    Some(why)
}

/// Base64url (with or without padding; the standard alphabet is accepted too) to bytes.
fn base64url(text: &str) -> Option<Vec<u8>> {
    let text: String = text
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

fn encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The browser's public key: an uncompressed P-256 point that is on the curve.
fn check_p256dh(text: &str) -> std::result::Result<String, String> {
    let bytes = base64url(text).ok_or("must be base64url")?;
    if bytes.len() != 65 || bytes[0] != 4 {
        return Err("must be an uncompressed P-256 public key (65 bytes)".into());
    }
    jwt_simple::prelude::ES256PublicKey::from_bytes(&bytes)
        .map_err(|_| "is not a point on the P-256 curve".to_string())?;
    Ok(encode(&bytes))
}

fn check_auth(text: &str) -> std::result::Result<String, String> {
    match base64url(text) {
        Some(bytes) if bytes.len() == 16 => Ok(encode(&bytes)),
        Some(_) => Err("must be 16 bytes".into()),
        None => Err("must be base64url".into()),
    }
}

fn check_token(token: &str) -> std::result::Result<String, String> {
    if token.is_empty() || token.len() > MAX_FCM_TOKEN_BYTES {
        return Err(format!("must be 1 to {MAX_FCM_TOKEN_BYTES} characters"));
    }
    if !token.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("must be printable ASCII without spaces".into());
    }
    Ok(token.to_string())
}

/// The endpoint, in its canonical form, if the server may post to it.
async fn check_endpoint(raw: &str, allow_insecure: bool) -> std::result::Result<String, String> {
    if raw.len() > MAX_ENDPOINT_BYTES {
        return Err(format!("must be at most {MAX_ENDPOINT_BYTES} bytes"));
    }
    let url = url::Url::parse(raw).map_err(|_| "must be an absolute URL".to_string())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        _ => return Err("must be an https URL".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    let canonical = url.as_str().to_string();
    if canonical.len() > MAX_ENDPOINT_BYTES {
        return Err(format!("must be at most {MAX_ENDPOINT_BYTES} bytes"));
    }
    if allow_insecure {
        return Ok(canonical);
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(name)) => {
            let lookup = tokio::net::lookup_host((name, port));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                Ok(Err(_)) => return Err(format!("its host {name} does not resolve")),
                Err(_) => return Err(format!("its host {name} did not resolve in time")),
            }
        }
        None => return Err("must have a host".into()),
    };
    if addresses.is_empty() {
        return Err("its host has no address".into());
    }
    for ip in addresses {
        if let Some(why) = refused_address(ip) {
            return Err(format!(
                "points to {why} ({ip}); push endpoints must be on the public internet"
            ));
        }
    }
    Ok(canonical)
}

/// Checks every field of `request`, reporting all that fail at once.
async fn check(request: Request, policy: Policy) -> Result<Target> {
    let required = |field: &str| Error::validation(field, "is required for this kind");
    match PushKind::parse(&request.kind) {
        Some(PushKind::WebPush) => {
            let endpoint = match &request.endpoint {
                Some(e) => check_endpoint(e, policy.allow_insecure).await,
                None => Err("is required for this kind".into()),
            };
            let p256dh = request.p256dh.as_deref().map(check_p256dh);
            let auth = request.auth.as_deref().map(check_auth);
            let mut error: Option<Error> = None;
            let mut fail = |field: &str, why: String| {
                error = Some(match error.take() {
                    Some(e) => e.and(field, why),
                    None => Error::validation(field, why),
                });
            };
            let endpoint = endpoint.map_err(|why| fail("endpoint", why)).ok();
            let p256dh = match p256dh {
                Some(r) => r.map_err(|why| fail("keys.p256dh", why)).ok(),
                None => {
                    fail("keys.p256dh", "is required for this kind".into());
                    None
                }
            };
            let auth = match auth {
                Some(r) => r.map_err(|why| fail("keys.auth", why)).ok(),
                None => {
                    fail("keys.auth", "is required for this kind".into());
                    None
                }
            };
            match (error, endpoint, p256dh, auth) {
                (None, Some(target), Some(p256dh), Some(auth)) => Ok(Target {
                    kind: PushKind::WebPush,
                    target,
                    p256dh: Some(p256dh),
                    auth: Some(auth),
                }),
                (Some(e), ..) => Err(e),
                _ => Err(required("endpoint")),
            }
        }
        Some(PushKind::Fcm) => {
            if !policy.fcm {
                return Err(Error::new(
                    Class::Invalid,
                    "fcm_not_configured",
                    "this server sends no FCM notifications (HUBBUB_FCM_CREDENTIALS is not set); use Web Push",
                ));
            }
            let token = request.token.as_deref().ok_or_else(|| required("token"))?;
            let token = check_token(token).map_err(|why| Error::validation("token", why))?;
            Ok(Target {
                kind: PushKind::Fcm,
                target: token,
                p256dh: None,
                auth: None,
            })
        }
        None => Err(Error::validation(
            "kind",
            format!("must be one of {}", PushKind::names().join(", ")),
        )),
    }
}

fn too_many(message: String) -> Error {
    Error::new(Class::Invalid, "too_many_push_subscriptions", message)
}

/// The code of the error that makes `subscribe` try its transaction once more.
const RACE: &str = "push_subscription_race";

/// Stores `target` for `user`, made with `credential`: the same endpoint again is the same
/// subscription (tied to this credential now); one held by another user moves to this one.
fn upsert(
    conn: &mut DbConnection,
    user: Id,
    credential: Id,
    target: &Target,
) -> Result<Subscribed> {
    store::users::lock(conn, user)?;
    let existing = store::push::find_target(conn, target.kind, &target.target)?;
    let credential_full = |conn: &mut DbConnection| -> Result<()> {
        if store::push::count_for_credential(conn, credential)? >= MAX_PER_CREDENTIAL {
            return Err(too_many(format!(
                "a session or token may hold at most {MAX_PER_CREDENTIAL} push subscriptions; delete one first"
            )));
        }
        Ok(())
    };
    if let Some(mut row) = existing.clone().filter(|row| row.user_id == user) {
        if row.credential_id != credential {
            credential_full(conn)?;
        }
        store::push::reassign(
            conn,
            row.id,
            credential,
            target.p256dh.as_deref(),
            target.auth.as_deref(),
        )?;
        row.credential_id = credential;
        return Ok(Subscribed {
            subscription: Subscription::of(&row, credential),
            created: false,
        });
    }
    // A device belongs to whoever is signed in on it now: another user's subscription to it ends.
    if let Some(row) = existing {
        store::push::delete(conn, row.id)?;
    }
    if store::push::count_for_user(conn, user)? >= MAX_PER_USER {
        return Err(too_many(format!(
            "a user may hold at most {MAX_PER_USER} push subscriptions; delete one first"
        )));
    }
    credential_full(conn)?;
    let row = SubscriptionRow {
        id: Id::new(),
        user_id: user,
        credential_id: credential,
        kind: target.kind,
        target: target.target.clone(),
        p256dh: target.p256dh.clone(),
        auth: target.auth.clone(),
        created_at: Time::now(),
    };
    match store::push::insert(conn, &row) {
        Ok(()) => {}
        // Someone else subscribed the same endpoint meanwhile: run again, and find theirs.
        Err(e) if store::is_unique_violation(&e) => {
            return Err(Error::conflict(RACE, "the subscription changed meanwhile"))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Subscribed {
        subscription: Subscription::of(&row, credential),
        created: true,
    })
}

/// Subscribes `user`'s device, made with `credential`, after checking the request
/// (422 `validation_failed`, `fcm_not_configured`, `too_many_push_subscriptions`).
pub async fn subscribe(
    db: &Db,
    policy: Policy,
    user: Id,
    credential: Id,
    request: Request,
) -> Result<Subscribed> {
    let target = check(request, policy).await?;
    db.run(move |conn| {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match store::write_tx(conn, |conn| upsert(conn, user, credential, &target)) {
                Err(e) if e.code == RACE && attempt < 3 => continue,
                done => return done,
            }
        }
    })
    .await
}

/// The caller's subscriptions, across all their credentials, oldest first.
pub async fn list(db: &Db, user: Id, credential: Id) -> Result<Vec<Subscription>> {
    db.run(move |conn| {
        Ok(store::push::list(conn, user)?
            .iter()
            .map(|row| Subscription::of(row, credential))
            .collect())
    })
    .await
}

/// Deletes one of the caller's subscriptions (404 `subscription_not_found` if it isn't theirs).
pub async fn delete(db: &Db, user: Id, id: Id) -> Result<()> {
    let deleted = db
        .run(move |conn| {
            store::write_tx(conn, |conn| {
                Ok::<_, Error>(store::push::delete_owned(conn, user, id)?)
            })
        })
        .await?;
    if deleted {
        Ok(())
    } else {
        Err(Error::not_found(
            "subscription_not_found",
            "no such push subscription",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str) -> bool {
        refused_address(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn private_loopback_and_special_addresses_are_refused_public_ones_are_not() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "::127.0.0.1",
            "100::1",
        ] {
            assert!(refused(ip), "{ip} should be refused");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "142.250.74.106",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!refused(ip), "{ip} should be allowed");
        }
    }

    use jwt_simple::prelude::ECDSAP256PublicKeyLike;

    fn point() -> String {
        let key = jwt_simple::prelude::ES256KeyPair::generate();
        encode(&key.public_key().public_key().to_bytes_uncompressed())
    }

    #[test]
    fn keys_must_be_an_uncompressed_point_on_the_curve_and_16_bytes() {
        let good = point();
        assert_eq!(check_p256dh(&good), Ok(good.clone()));
        assert_eq!(check_p256dh(&format!("{good}=")), Ok(good.clone()));
        let mut off_curve = base64url(&good).unwrap();
        off_curve[64] ^= 1;
        assert!(check_p256dh(&encode(&off_curve)).is_err());
        let key = jwt_simple::prelude::ES256KeyPair::generate();
        let compressed = encode(&key.public_key().public_key().to_bytes());
        assert!(check_p256dh(&compressed).is_err());
        assert!(check_p256dh("not base64!").is_err());
        assert!(check_auth(&encode(&[7u8; 16])).is_ok());
        assert!(check_auth(&encode(&[7u8; 15])).is_err());
        assert!(check_token("abc:DEF_-1").is_ok());
        assert!(check_token("").is_err());
        assert!(check_token("with space").is_err());
        assert!(check_token(&"x".repeat(MAX_FCM_TOKEN_BYTES + 1)).is_err());
    }

    #[tokio::test]
    async fn endpoints_must_be_https_and_public_unless_insecure_is_allowed() {
        let check = |url: &'static str, insecure| check_endpoint(url, insecure);
        assert!(check("https://127.0.0.1/x", false).await.is_err());
        assert!(check("https://10.0.0.1/x", false).await.is_err());
        assert!(check("https://[::1]:8443/x", false).await.is_err());
        assert!(check("https://0x7f.1/x", false).await.is_err());
        assert!(check("https://localhost/x", false).await.is_err());
        assert!(check("http://example.com/x", false).await.is_err());
        assert!(check("ftp://example.com/x", true).await.is_err());
        assert!(check("https://user:pw@example.com/x", true).await.is_err());
        assert!(check("/relative", true).await.is_err());
        assert_eq!(
            check("http://127.0.0.1:9/a", true).await,
            Ok("http://127.0.0.1:9/a".into())
        );
        assert_eq!(
            check("HTTPS://Push.Example.com:443/a", true).await,
            Ok("https://push.example.com/a".into())
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_ENDPOINT_BYTES));
        assert!(check_endpoint(&long, true).await.is_err());
    }
}
