//! Settings, read from `HUBBUB_*` environment variables (the names operators rely on are in
//! `docs/operations.md`). Every setting has a default that runs a development server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

pub mod sources;

/// Who may open a direct room with whom (blocks always prevent it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmPolicy {
    /// Any two users (the default).
    Anyone,
    /// Only friends.
    Friends,
}

/// Who may create an account with `POST /api/v1/users` (`HUBBUB_REGISTRATION`). The CLI
/// (`hubbub admin create-user`) works in every mode, and signed-in users may still create bots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationMode {
    /// Anyone who reaches the server (the default).
    Open,
    /// Only with an invite code made by an administrator.
    Invite,
    /// Nobody: accounts are made with the CLI.
    Closed,
}

impl RegistrationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationMode::Open => "open",
            RegistrationMode::Invite => "invite",
            RegistrationMode::Closed => "closed",
        }
    }
}

/// When the session cookie carries `Secure` (`HUBBUB_COOKIE_SECURE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSecure {
    /// When the request came over HTTPS as the browser sees it (the default): by its `Origin`,
    /// else a trusted proxy's `X-Forwarded-Proto`, else the connection (plain HTTP).
    Auto,
    Always,
    Never,
}

/// Everything the server needs to know at start-up.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// Origins allowed besides the server's own (CSRF and WebSocket checks).
    pub allowed_origins: Vec<String>,
    pub cookie_secure: CookieSecure,
    pub redis_url: Option<String>,
    pub dm_policy: DmPolicy,
    /// Who may register (`HUBBUB_REGISTRATION`).
    pub registration: RegistrationMode,
    pub session_ttl: Duration,
    pub heartbeat: Duration,
    /// Frames a socket may have queued before it counts as a slow consumer.
    pub stream_queue: usize,
    pub event_retention: Duration,
    pub prune_interval: Duration,
    pub idempotency_ttl: Duration,
    pub max_json_bytes: usize,
    pub pool_size: u32,
    /// How often the tailer looks at the log without a doorbell (other nodes' writes).
    pub poll_interval: Duration,
    /// Sign-ins and registrations per client IP per minute (0: no limit).
    pub rate_login_per_min: u32,
    /// Writes per credential per second, bursting to five seconds' worth (0: no limit).
    pub rate_writes_per_s: u32,
    /// Typing calls per user per second, bursting to five seconds' worth (0: no limit): a
    /// bucket of their own, so typing never spends the user's write (send) budget.
    pub rate_typing_per_s: u32,
    /// How long a `typing: true` lasts (its event's `expires_at`).
    pub typing_ttl: Duration,
    /// The least time between two appended `typing: true` of one user in one room.
    pub typing_throttle: Duration,
    /// The most (user, room) pairs a node remembers as typing.
    pub typing_max_entries: usize,
    /// How often expired short-lived events (typing) are deleted.
    pub short_lived_prune_interval: Duration,
    /// Presence (`core::presence`) is tracked and announced (`HUBBUB_PRESENCE`, default on).
    pub presence: bool,
    /// Presence: how long a user stays online after their last stream
    /// ends (at most 60 s).
    pub presence_grace: Duration,
    /// Presence: at most one `presence.updated` per user per window (flaps are coalesced).
    pub presence_window: Duration,
    /// Presence: how often a node heartbeats, records its streams and sweeps dead nodes.
    pub presence_tick: Duration,
    /// Presence: a node silent this long is taken for dead; its users' streams are forgotten.
    pub presence_node_timeout: Duration,
    /// Presence: the most users a node tracks at once.
    pub presence_max_users: usize,
    /// Message searches per user per minute (0: no limit): a bucket of their own (#19).
    pub rate_search_per_min: u32,
    /// PostgreSQL's time limit for one search statement, in ms (0: none); past it, 422
    /// `search_too_broad`.
    pub search_timeout_ms: u64,
    /// Take the client's address from `X-Forwarded-For`/`Forwarded` (only behind a proxy that
    /// sets them and that alone can reach the server).
    pub trust_forwarded: bool,
    /// Open sockets allowed (default: from the open-file limit; see `limits`).
    pub max_sockets: Option<u64>,
    /// The largest upload accepted, in bytes.
    pub max_upload_bytes: usize,
    /// How long an upload may stay unattached before it is deleted.
    pub attachment_ttl: Duration,
    /// Sockets and long polls one user may hold open on a node, across their credentials.
    pub max_streams_per_user: usize,
    /// Personal API tokens one user may hold (bots' tokens are their own).
    pub max_tokens_per_user: usize,
    /// Bots one person may own (each is a user with its own write bucket and tokens).
    pub max_bots_per_user: usize,
    /// The most pixels (width × height) an uploaded image may declare.
    pub max_image_pixels: u64,
    /// Image decodes run at once, and uploads that may wait for one beyond those.
    pub image_workers: usize,
    pub image_queue: usize,
    /// Password hashes (argon2, 19 MiB each) run at once, and requests that may wait beyond.
    pub hash_workers: usize,
    pub hash_queue: usize,
    /// How long a request may wait for an image or hashing worker before a 503.
    pub work_wait: Duration,
    /// Push notifications (docs/notifications.md).
    pub push: PushSettings,
    /// How long a deleted account's username stays taken before maintenance frees it.
    pub deleted_username_hold: Duration,
    /// The least time between two data exports of one user (across every node).
    pub export_interval: Duration,
}

/// Push notifications: where they go and how the worker behaves.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// Allow `http` endpoints and loopback or private addresses (development and tests only).
    pub allow_insecure: bool,
    /// The VAPID private key (base64url, the raw 32-byte P-256 scalar); `None`: the one
    /// generated once and kept in the database.
    pub vapid_private_key: Option<String>,
    /// The VAPID `sub` claim: how a push service reaches the operator (`mailto:` or `https:`).
    pub vapid_subject: String,
    /// A Google service-account JSON file; `None`: FCM is off (FCM subscriptions are refused).
    pub fcm_credentials: Option<PathBuf>,
    /// FCM's base URL (requests go to `<base>/v1/projects/<project>/messages:send`).
    pub fcm_endpoint: String,
    /// How long after a message its recipients may read it elsewhere before they are pushed.
    pub grace: Duration,
    /// Put the sender's name and a preview of the body in the payload.
    pub preview: bool,
    /// Whether this node may run the push worker (one runs per deployment).
    pub worker: bool,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Pushes held at once (in flight, waiting for a retry, or planned); the worker reads no
    /// further events while it is full.
    pub queue: usize,
    /// How long one delivery (one HTTP request) may take.
    pub timeout: Duration,
}

/// Half the cores, at least one: what CPU-heavy pools get by default, so that the other half
/// keeps serving sends while they are busy.
fn half_the_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().div_ceil(2))
        .unwrap_or(1)
}

/// `HUBBUB_LISTEN`: an IP address and a port. A port alone (`:8080`) is refused rather than
/// guessed: listening on every interface is a decision to write down (`0.0.0.0:8080`).
fn listen_address(value: &str) -> anyhow::Result<SocketAddr> {
    if let Some(port) = value.strip_prefix(':') {
        bail!(
            "HUBBUB_LISTEN={value:?} has no address: write 127.0.0.1:{port} to serve this machine \
             only, or 0.0.0.0:{port} to serve every network interface"
        );
    }
    value.parse().with_context(|| {
        format!(
            "HUBBUB_LISTEN={value:?} is not an IP address and port like 127.0.0.1:8080 \
             (port 0 picks a free one)"
        )
    })
}

/// `HUBBUB_DATABASE_URL`: `postgres://…` or `postgresql://…`, `sqlite://PATH` or `sqlite:PATH`,
/// or a path. Any other scheme is a mistake (`postgress://`, `mysql://`), refused instead of
/// being taken for a SQLite file of that name.
fn database_url(url: String) -> anyhow::Result<String> {
    let Some((scheme, _)) = url.split_once("://") else {
        return Ok(url);
    };
    match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" | "sqlite" => Ok(url),
        _ => bail!(
            "HUBBUB_DATABASE_URL has the scheme {scheme:?}: hubbub speaks postgres:// (or \
             postgresql://) and SQLite (sqlite://PATH, or a plain path)"
        ),
    }
}

/// One setting as the code reads it: its variable and its default, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// `HUBBUB_LISTEN`.
    pub key: &'static str,
    /// The default as text (`127.0.0.1:8080`), or how it is chosen (`<data dir>/hubbub.db`,
    /// `unset`).
    pub default: String,
    /// Whether `default` is a value (else a description).
    pub fixed: bool,
}

/// Settings whose values are secrets (masked by `hubbub config check`) or may carry one (URLs
/// with a password: only the password is masked).
pub const SECRETS: &[&str] = &["HUBBUB_VAPID_PRIVATE_KEY"];
pub const URLS_WITH_PASSWORDS: &[&str] = &["HUBBUB_DATABASE_URL", "HUBBUB_REDIS_URL"];

impl Settings {
    /// Reads the environment.
    pub fn from_env() -> anyhow::Result<Settings> {
        Settings::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `get` (the environment, a file under it, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Settings> {
        Settings::read(get).map(|(settings, _)| settings)
    }

    /// Every setting the code reads, in order, with its default (what `config check` lists and
    /// what a file's keys are checked against). Reading the defaults can't fail.
    pub fn known() -> Vec<Known> {
        let mut known = Vec::new();
        let _ = Settings::read_noting(|_| None, &mut known);
        known
    }

    /// The settings and every setting the code read, with its default.
    pub fn read(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<(Settings, Vec<Known>)> {
        let mut known = Vec::new();
        let settings = Settings::read_noting(get, &mut known)?;
        Ok((settings, known))
    }

    fn read_noting(
        get: impl Fn(&str) -> Option<String>,
        known: &mut Vec<Known>,
    ) -> anyhow::Result<Settings> {
        let noted = std::cell::RefCell::new(std::mem::take(known));
        let settings = Settings::parse(get, &|key, default, fixed| {
            noted.borrow_mut().push(Known {
                key,
                default: default.to_string(),
                fixed,
            })
        });
        *known = noted.into_inner();
        settings
    }

    /// Reads settings through `get`, telling `note` each setting it reads and its default.
    fn parse(
        get: impl Fn(&str) -> Option<String>,
        note: &dyn Fn(&'static str, &str, bool),
    ) -> anyhow::Result<Settings> {
        let var = |key: &'static str| {
            get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        // A setting without a fixed default: `how` says what it is then.
        let optional = |key: &'static str, how: &str| {
            note(key, how, false);
            var(key)
        };
        let text = |key: &'static str, default: &str| {
            note(key, default, true);
            var(key).unwrap_or_else(|| default.to_string())
        };
        let listen = listen_address(&text("HUBBUB_LISTEN", "127.0.0.1:8080"))?;
        let data_dir = PathBuf::from(text("HUBBUB_DATA_DIR", "./data"));
        let database_url = match optional("HUBBUB_DATABASE_URL", "<data dir>/hubbub.db") {
            Some(url) => database_url(url)?,
            None => data_dir.join("hubbub.db").to_string_lossy().into_owned(),
        };
        let allowed_origins = optional("HUBBUB_ALLOWED_ORIGINS", "none besides the server's own")
            .map(|list| {
                list.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                    .filter(|o| !o.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let cookie_secure = match text("HUBBUB_COOKIE_SECURE", "auto").as_str() {
            "auto" => CookieSecure::Auto,
            "true" | "1" => CookieSecure::Always,
            "false" | "0" => CookieSecure::Never,
            other => bail!("HUBBUB_COOKIE_SECURE={other:?}: expected auto, true or false"),
        };
        let secs = |key: &'static str, default: u64| -> anyhow::Result<Duration> {
            note(key, &default.to_string(), true);
            match var(key) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => v
                    .parse::<u64>()
                    .map(Duration::from_secs)
                    .with_context(|| format!("{key}={v:?} is not a whole number of seconds")),
            }
        };
        let millis = |key: &'static str, default: u64| -> anyhow::Result<Duration> {
            note(key, &default.to_string(), true);
            match var(key) {
                None => Ok(Duration::from_millis(default)),
                Some(v) => v
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .with_context(|| format!("{key}={v:?} is not a whole number of milliseconds")),
            }
        };
        let number = |key: &'static str, default: usize| -> anyhow::Result<usize> {
            note(key, &default.to_string(), true);
            match var(key) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .with_context(|| format!("{key}={v:?} is not a whole number")),
            }
        };
        let flag = |key: &'static str, default: bool| -> anyhow::Result<bool> {
            note(key, &default.to_string(), true);
            match var(key).as_deref() {
                None => Ok(default),
                Some("true") | Some("1") => Ok(true),
                Some("false") | Some("0") => Ok(false),
                Some(other) => bail!("{key}={other:?}: expected true or false"),
            }
        };
        let push = PushSettings {
            allow_insecure: flag("HUBBUB_PUSH_ALLOW_INSECURE", false)?,
            vapid_private_key: optional(
                "HUBBUB_VAPID_PRIVATE_KEY",
                "generated once, kept in the database",
            ),
            vapid_subject: text("HUBBUB_VAPID_SUBJECT", "mailto:postmaster@localhost"),
            fcm_credentials: optional("HUBBUB_FCM_CREDENTIALS", "unset (FCM off)")
                .map(PathBuf::from),
            fcm_endpoint: text("HUBBUB_FCM_ENDPOINT", "https://fcm.googleapis.com")
                .trim_end_matches('/')
                .to_string(),
            grace: Duration::from_millis(number("HUBBUB_PUSH_GRACE_MS", 10_000)? as u64),
            preview: flag("HUBBUB_PUSH_PREVIEW", false)?,
            worker: flag("HUBBUB_PUSH_WORKER", true)?,
            concurrency: number("HUBBUB_PUSH_CONCURRENCY", 32)?,
            queue: number("HUBBUB_PUSH_QUEUE", 1024)?,
            timeout: secs("HUBBUB_PUSH_TIMEOUT_SECS", 10)?,
        };
        if push.concurrency == 0 || push.queue == 0 || push.timeout.is_zero() {
            bail!("HUBBUB_PUSH_CONCURRENCY, HUBBUB_PUSH_QUEUE and HUBBUB_PUSH_TIMEOUT_SECS must be above zero");
        }
        if !(push.vapid_subject.starts_with("mailto:") || push.vapid_subject.starts_with("https:"))
        {
            bail!(
                "HUBBUB_VAPID_SUBJECT={:?}: expected a mailto: or https: URL",
                push.vapid_subject
            );
        }
        let settings = Settings {
            push,
            deleted_username_hold: secs("HUBBUB_DELETED_USERNAME_HOLD_SECS", 30 * 24 * 3600)?,
            export_interval: secs("HUBBUB_EXPORT_INTERVAL_SECS", 600)?,
            listen,
            data_dir,
            database_url,
            allowed_origins,
            cookie_secure,
            redis_url: optional("HUBBUB_REDIS_URL", "unset (no doorbell between nodes)"),
            dm_policy: match text("HUBBUB_DM_POLICY", "anyone").as_str() {
                "anyone" => DmPolicy::Anyone,
                "friends" => DmPolicy::Friends,
                other => bail!("HUBBUB_DM_POLICY={other:?}: expected anyone or friends"),
            },
            registration: match text("HUBBUB_REGISTRATION", "open").as_str() {
                "open" => RegistrationMode::Open,
                "invite" => RegistrationMode::Invite,
                "closed" => RegistrationMode::Closed,
                other => {
                    bail!("HUBBUB_REGISTRATION={other:?}: expected open, invite or closed")
                }
            },
            session_ttl: secs("HUBBUB_SESSION_TTL_SECS", 30 * 24 * 3600)?,
            heartbeat: secs("HUBBUB_HEARTBEAT_SECS", 20)?,
            stream_queue: number("HUBBUB_STREAM_QUEUE", 1024)?,
            event_retention: secs("HUBBUB_EVENT_RETENTION_SECS", 30 * 24 * 3600)?,
            prune_interval: secs("HUBBUB_PRUNE_INTERVAL_SECS", 3600)?,
            idempotency_ttl: secs("HUBBUB_IDEMPOTENCY_TTL_SECS", 24 * 3600)?,
            max_json_bytes: number("HUBBUB_MAX_JSON_BYTES", 64 * 1024)?,
            pool_size: number("HUBBUB_DB_POOL_SIZE", 16)? as u32,
            poll_interval: Duration::from_millis(number("HUBBUB_POLL_INTERVAL_MS", 1000)? as u64),
            rate_login_per_min: number("HUBBUB_RATE_LOGIN_PER_MIN", 10)? as u32,
            rate_writes_per_s: number("HUBBUB_RATE_WRITES_PER_SEC", 10)? as u32,
            rate_typing_per_s: number("HUBBUB_RATE_TYPING_PER_SEC", 2)? as u32,
            typing_ttl: secs("HUBBUB_TYPING_TTL_SECS", 8)?,
            typing_throttle: Duration::from_millis(
                number("HUBBUB_TYPING_THROTTLE_MS", 3000)? as u64
            ),
            typing_max_entries: number("HUBBUB_TYPING_MAX_ENTRIES", 100_000)?,
            short_lived_prune_interval: secs("HUBBUB_SHORT_LIVED_PRUNE_SECS", 60)?,
            presence: flag("HUBBUB_PRESENCE", true)?,
            presence_grace: millis("HUBBUB_PRESENCE_GRACE_MS", 30_000)?,
            presence_window: millis("HUBBUB_PRESENCE_WINDOW_MS", 60_000)?,
            presence_tick: millis("HUBBUB_PRESENCE_TICK_MS", 1_000)?,
            presence_node_timeout: millis("HUBBUB_PRESENCE_NODE_TIMEOUT_MS", 15_000)?,
            presence_max_users: number("HUBBUB_PRESENCE_MAX_USERS", 100_000)?,
            rate_search_per_min: number("HUBBUB_RATE_SEARCH_PER_MIN", 60)? as u32,
            search_timeout_ms: number("HUBBUB_SEARCH_TIMEOUT_MS", 2000)? as u64,
            trust_forwarded: flag("HUBBUB_TRUST_FORWARDED", false)?,
            max_upload_bytes: number("HUBBUB_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)?,
            attachment_ttl: secs("HUBBUB_ATTACHMENT_TTL_SECS", 24 * 3600)?,
            max_streams_per_user: number("HUBBUB_MAX_STREAMS_PER_USER", 20)?,
            max_tokens_per_user: number("HUBBUB_MAX_TOKENS_PER_USER", 50)?,
            max_bots_per_user: number("HUBBUB_MAX_BOTS_PER_USER", 20)?,
            max_image_pixels: number("HUBBUB_MAX_IMAGE_PIXELS", 32_000_000)? as u64,
            image_workers: number("HUBBUB_IMAGE_WORKERS", half_the_cores())?,
            image_queue: number("HUBBUB_IMAGE_QUEUE", 4)?,
            hash_workers: number("HUBBUB_HASH_WORKERS", half_the_cores())?,
            hash_queue: number("HUBBUB_HASH_QUEUE", 32)?,
            work_wait: secs("HUBBUB_WORK_WAIT_SECS", 10)?,
            max_sockets: optional("HUBBUB_MAX_SOCKETS", "from the open-file limit")
                .map(|v| {
                    v.parse::<u64>()
                        .with_context(|| format!("HUBBUB_MAX_SOCKETS={v:?} is not a whole number"))
                })
                .transpose()?,
        };
        if settings.heartbeat.is_zero() || settings.stream_queue == 0 || settings.pool_size == 0 {
            bail!("HUBBUB_HEARTBEAT_SECS, HUBBUB_STREAM_QUEUE and HUBBUB_DB_POOL_SIZE must be above zero");
        }
        if settings.typing_ttl.is_zero()
            || settings.typing_throttle >= settings.typing_ttl
            || settings.short_lived_prune_interval.is_zero()
        {
            bail!("HUBBUB_TYPING_TTL_SECS and HUBBUB_SHORT_LIVED_PRUNE_SECS must be above zero, and HUBBUB_TYPING_THROTTLE_MS below the typing TTL");
        }
        if settings.presence_grace.is_zero()
            || settings.presence_grace > Duration::from_secs(60)
            || settings.presence_window.is_zero()
            || settings.presence_tick.is_zero()
            || settings.presence_node_timeout < settings.presence_tick * 3
            || settings.presence_max_users == 0
        {
            bail!("HUBBUB_PRESENCE_GRACE_MS must be from 1 to 60000; HUBBUB_PRESENCE_WINDOW_MS, HUBBUB_PRESENCE_TICK_MS and HUBBUB_PRESENCE_MAX_USERS above zero; HUBBUB_PRESENCE_NODE_TIMEOUT_MS at least three ticks");
        }
        if settings.image_workers == 0
            || settings.hash_workers == 0
            || settings.max_streams_per_user == 0
            || settings.max_image_pixels == 0
        {
            bail!("HUBBUB_IMAGE_WORKERS, HUBBUB_HASH_WORKERS, HUBBUB_MAX_STREAMS_PER_USER and HUBBUB_MAX_IMAGE_PIXELS must be above zero");
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_serve_on_localhost_with_sqlite_under_the_data_dir() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert!(s.database_url.ends_with("hubbub.db"));
        assert_eq!(s.cookie_secure, CookieSecure::Auto);
        assert_eq!(s.registration, RegistrationMode::Open);
    }

    #[test]
    fn registration_modes_parse_and_others_are_refused() {
        let mode = |v: &str| {
            Settings::from_lookup(|k| (k == "HUBBUB_REGISTRATION").then(|| v.to_string()))
        };
        assert_eq!(
            mode("invite").unwrap().registration,
            RegistrationMode::Invite
        );
        assert_eq!(
            mode("closed").unwrap().registration,
            RegistrationMode::Closed
        );
        assert!(mode("maybe")
            .unwrap_err()
            .to_string()
            .contains("HUBBUB_REGISTRATION"));
    }

    fn with(key: &'static str, value: &'static str) -> anyhow::Result<Settings> {
        Settings::from_lookup(|k| (k == key).then(|| value.to_string()))
    }

    #[test]
    fn a_port_without_an_address_is_refused_with_both_choices_named() {
        let err = with("HUBBUB_LISTEN", ":8080").unwrap_err().to_string();
        assert!(
            err.contains("127.0.0.1:8080") && err.contains("0.0.0.0:8080"),
            "{err}"
        );
        assert_eq!(
            with("HUBBUB_LISTEN", "0.0.0.0:0")
                .unwrap()
                .listen
                .to_string(),
            "0.0.0.0:0"
        );
    }

    #[test]
    fn a_database_url_of_another_scheme_is_refused_not_taken_for_a_file() {
        for url in ["postgress://db/hubbub", "mysql://db/hubbub", "http://x"] {
            let err = with("HUBBUB_DATABASE_URL", url).unwrap_err().to_string();
            assert!(err.contains("HUBBUB_DATABASE_URL"), "{url}: {err}");
        }
        for url in [
            "postgres://u@db/hubbub",
            "postgresql://u@db/hubbub",
            "sqlite:///var/lib/hubbub/hubbub.db",
            "sqlite:hubbub.db",
            "/var/lib/hubbub/hubbub.db",
            "data/hubbub.db",
        ] {
            assert_eq!(with("HUBBUB_DATABASE_URL", url).unwrap().database_url, url);
        }
    }

    /// Every setting the code reads has its row in docs/operations.md's table, and every row
    /// is a setting (or `HUBBUB_CONFIG`, the file itself).
    #[test]
    fn every_setting_is_documented_once_and_every_documented_setting_exists() {
        let doc = include_str!("../docs/operations.md");
        let mut documented: Vec<&str> = doc
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split_once('`').map(|(name, _)| name))
            .filter(|name| name.starts_with("HUBBUB_"))
            .collect();
        let mut known: Vec<&str> = Settings::known().iter().map(|k| k.key).collect();
        known.push("HUBBUB_CONFIG");
        known.sort();
        let before = documented.len();
        documented.sort();
        documented.dedup();
        assert_eq!(documented.len(), before, "a setting documented twice");
        assert_eq!(documented, known);
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_named() {
        let err = Settings::from_lookup(|k| (k == "HUBBUB_LISTEN").then(|| "nope".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("HUBBUB_LISTEN"));
    }
}
