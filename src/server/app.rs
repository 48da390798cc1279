//! Builds and runs the server: database and migrations, the writer, the hub and its tailer,
//! the maintenance task, the HTTP routes, and a clean shutdown on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_http::{HttpService, KeepAlive};
use actix_service::{map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::SessionMiddleware;
use actix_web::cookie::{time, Key, SameSite};
use actix_web::dev::AppConfig;
use actix_web::middleware::from_fn;
use actix_web::{web, App};
use anyhow::Context as _;
use rand::RngCore;
use tokio::sync::watch;
use utoipa_swagger_ui::SwaggerUi;

use crate::config::{CookieSecure, RegistrationMode, Settings};
use crate::core::credentials::Credentials;
use crate::core::maintenance::{self, Pruned, Retention};
use crate::core::presence::{Presence, PresenceSettings};
use crate::core::typing::{TypingSettings, Typists};
use crate::core::work::Pool;
use crate::events::Writer;
use crate::metrics::Metrics;
use crate::push::deliver::Senders;
use crate::push::webpush::{self, WebPush};
use crate::push::worker::Worker;
use crate::realtime::{doorbell, hub, tailer, Close, Hub};
use crate::server::api::{
    self, auth::SESSION_COOKIE, ratelimit::Limits, session_store::DbSessionStore,
};
use crate::server::state::AppState;
use crate::server::stream::peer::Peer;
use crate::server::upgrade::{Pumps, Upgrades};
use crate::store::{self, Db, Dedicated, Manager};

/// Opens the database and applies pending migrations.
pub fn migrate(settings: &Settings) -> anyhow::Result<store::Pool> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            settings.data_dir.display()
        )
    })?;
    let pool = store::connect(&settings.database_url, settings.pool_size)?;
    let mut conn = pool.get()?;
    store::run_migrations(&mut conn)?;
    // A fresh PostgreSQL database: its first plans are made with statistics (store::statistics).
    store::statistics::analyse_new(&mut conn)?;
    Ok(pool)
}

/// One line on whether the database answers, for `hubbub config check`, which must not change
/// anything: a SQLite file that doesn't exist yet is not created.
pub fn database_status(settings: &Settings) -> String {
    let url = &settings.database_url;
    let manager = Manager::new(url);
    if manager.backend() == store::Backend::Sqlite {
        let path = std::path::Path::new(url.strip_prefix("sqlite://").unwrap_or(url));
        if !path.exists() {
            return format!(
                "# database: SQLite at {}, made at the first start",
                path.display()
            );
        }
    }
    let answer = manager
        .open()
        .map_err(anyhow::Error::from)
        .and_then(|mut conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute("SELECT 1")?;
            Ok(store::cannot_write(&mut conn)?)
        });
    let name = match manager.backend() {
        store::Backend::Sqlite => "SQLite",
        store::Backend::Postgres => "PostgreSQL",
    };
    match answer {
        Ok(None) => format!("# database: {name} at {} answers", store::redact(url)),
        Ok(Some(why)) => format!(
            "# database: {name} at {} answers but can't take a write: {why}",
            store::redact(url)
        ),
        Err(e) => format!(
            "# database: {name} at {} does not answer: {e} (the settings are valid all the same)",
            store::redact(url)
        ),
    }
}

/// What a command that writes without serving needs (`hubbub admin`, `server::admin_cli`).
pub struct Offline {
    /// The database, migrated.
    pub db: Db,
    /// A writer of its own, so that its events are appended as the server's are.
    pub writer: Writer,
    /// The newest event id the writer committed (to ring other nodes' doorbells with).
    pub head: watch::Receiver<i64>,
}

/// Opens the database as `serve` does (migrating it if needed) with a writer, without serving.
pub fn offline(settings: &Settings) -> anyhow::Result<Offline> {
    let pool = migrate(settings)?;
    let head = store::events::head(&mut *pool.get()?)?;
    let (doorbell, head) = watch::channel(head);
    let writer = Writer::start(
        Manager::new(&settings.database_url),
        doorbell,
        Arc::new(Metrics::default()),
    )
    .map_err(|e| anyhow::anyhow!("cannot start the writer thread: {e}"))?;
    Ok(Offline {
        db: Db::new(pool),
        writer,
        head,
    })
}

/// Runs the server until SIGTERM or SIGINT.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let pool = migrate(&settings)?;
    let mut conn = pool.get()?;
    let cookie_key = store::secrets::get_or_create(&mut conn, "session_cookie_key", || {
        let mut bytes = vec![0u8; 64];
        rand::thread_rng().fill_bytes(&mut bytes);
        bytes
    })?;
    let cookie_key =
        Key::try_from(cookie_key.as_slice()).context("the stored session key is too short")?;
    // Every node signs pushes with the same VAPID key: the configured one or the stored one.
    let vapid = webpush::private_key(settings.push.vapid_private_key.as_deref(), &mut conn)?;
    let push = Arc::new(Senders::new(
        WebPush::new(&vapid, &settings.push.vapid_subject)?,
        &settings.push,
    )?);
    // The hub starts from the log's head with the memberships as they stand there.
    let head = store::events::head(&mut conn)?;
    let memberships = store::rooms::memberships_at(&mut conn, head)?;
    drop(conn);

    let fd_limit = crate::server::limits::raise_fd_limit();
    let max_sockets = settings
        .max_sockets
        .unwrap_or_else(|| crate::server::limits::default_socket_cap(fd_limit));
    tracing::info!(fd_limit, max_sockets, "socket cap");
    let metrics = Arc::new(Metrics::default());
    let credentials = Arc::new(Credentials::default());
    let hub = Arc::new(Hub::new(
        head,
        memberships,
        metrics.clone(),
        hub::Caps {
            node: max_sockets,
            per_user: settings.max_streams_per_user,
        },
    ));
    let (doorbell, doorbell_rx) = watch::channel(head);
    let doorbell_push = doorbell_rx.clone();
    let writer = Writer::start(
        Manager::new(&settings.database_url),
        doorbell,
        metrics.clone(),
    )
    .map_err(|e| anyhow::anyhow!("cannot start the writer thread: {e}"))?;
    let db = Db::new(pool);
    let settings = Arc::new(settings);
    let state = AppState {
        settings: settings.clone(),
        db: db.clone(),
        writer,
        hub: hub.clone(),
        metrics,
        doorbell: Arc::default(),
        credentials: credentials.clone(),
        images: Pool::new(
            "image",
            settings.image_workers,
            settings.image_queue,
            settings.work_wait,
        ),
        hashes: Pool::new(
            "password",
            settings.hash_workers,
            settings.hash_queue,
            settings.work_wait,
        ),
        push,
        typists: Arc::new(Typists::new(TypingSettings {
            ttl: settings.typing_ttl,
            throttle: settings.typing_throttle,
            max_entries: settings.typing_max_entries,
        })),
        presence: Arc::new(Presence::new(PresenceSettings {
            enabled: settings.presence,
            grace: settings.presence_grace,
            window: settings.presence_window,
            tick: settings.presence_tick,
            node_timeout: settings.presence_node_timeout,
            max_users: settings.presence_max_users,
        })),
    };
    // The rate limiter's buckets: app data of their own (the limiter is server-layer code that
    // AppState doesn't need to know).
    let limits = Arc::new(
        Limits::new(
            settings.rate_login_per_min,
            settings.rate_writes_per_s,
            settings.rate_typing_per_s,
        )
        .with_search(settings.rate_search_per_min),
    );
    let limits_data = web::Data::from(limits.clone());
    let (stop, stop_rx) = watch::channel(false);
    let remote = match &settings.redis_url {
        Some(url) => Some(doorbell::start(
            url,
            doorbell_rx.clone(),
            state.doorbell.clone(),
        )?),
        None => None,
    };
    tokio::spawn(tailer::run(
        Dedicated::new(Manager::new(&settings.database_url)),
        hub.clone(),
        credentials.clone(),
        doorbell_rx,
        remote,
        settings.poll_interval,
        stop_rx.clone(),
    ));
    tokio::spawn(maintain(
        db.clone(),
        settings.clone(),
        limits,
        stop_rx.clone(),
    ));
    if store::Backend::of_url(&settings.database_url) == store::Backend::Postgres {
        tokio::spawn(keep_statistics(db.clone(), stop_rx.clone()));
    }
    // SQLite: the write-ahead log copied back off the writer's thread (store::wal).
    store::wal::start(Manager::new(&settings.database_url), stop_rx.clone())
        .context("cannot start the checkpointer thread")?;
    tokio::spawn(
        state
            .presence
            .clone()
            .run(state.writer.clone(), stop_rx.clone()),
    );
    tokio::spawn(maintain_short_lived(
        db.clone(),
        state.typists.clone(),
        settings.short_lived_prune_interval,
        stop_rx.clone(),
    ));
    if settings.push.worker {
        // On this thread: the HTTP client it sends with (awc) is not `Send`.
        let worker = Worker {
            manager: Manager::new(&settings.database_url),
            senders: state.push.clone(),
            transport: Box::new(crate::server::outbound::transport(&settings.push)?),
            settings: settings.push.clone(),
            metrics: state.metrics.clone(),
            doorbell: doorbell_push,
            poll: settings.poll_interval,
        };
        actix_rt::spawn(worker.run(stop_rx));
    }

    // A client that reads nothing for two heartbeats is as gone as one that answers none.
    let pumps = Pumps::new(state.metrics.clone(), settings.heartbeat * 2);
    let data = web::Data::new(state);
    let session_store = DbSessionStore::new(db.clone(), credentials.clone());
    let max_json = settings.max_json_bytes;
    let cookie_secure = settings.cookie_secure;
    let session_ttl = time::Duration::seconds(settings.session_ttl.as_secs() as i64);
    let cors_origins = settings.allowed_origins.clone();
    let openapi = api::openapi::document();
    // `docs`: the API document and its pages, which no upgrade request needs (the App that
    // answers upgrades leaves them out, and the memory of their copy).
    let make_app = move |docs: bool| {
        let sessions = SessionMiddleware::builder(session_store.clone(), cookie_key.clone())
            .cookie_name(SESSION_COOKIE.into())
            // `auto`: api::middleware::secure_cookies marks it per request.
            .cookie_secure(cookie_secure == CookieSecure::Always)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_content_security(CookieContentSecurity::Signed)
            .session_lifecycle(PersistentSession::default().session_ttl(session_ttl))
            .build();
        App::new()
            .app_data(data.clone())
            .app_data(limits_data.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(max_json)
                    .error_handler(api::error::json_error),
            )
            .app_data(web::PathConfig::default().error_handler(api::error::path_error))
            .app_data(web::QueryConfig::default().error_handler(api::error::query_error))
            // Before the /api/v1 scope, which would otherwise answer 404 for the document.
            .configure(|cfg| {
                if docs {
                    cfg.service(
                        SwaggerUi::new("/docs/{_:.*}").url("/api/v1/openapi.json", openapi.clone()),
                    )
                    .service(web::redirect("/docs", "/docs/"));
                }
            })
            .configure(api::routes)
            // Inside the sessions (it authenticates), so that /api/v1/admin/ is 404 to anyone but
            // an administrator before anything else could answer.
            .wrap(from_fn(api::admin::gate))
            // Inside the sessions, so that the limiter knows the user behind a cookie.
            .wrap(from_fn(api::ratelimit::limit))
            .wrap(sessions)
            .wrap(from_fn(api::middleware::secure_cookies))
            .wrap(from_fn(api::middleware::csrf_guard))
            .wrap(api::middleware::cors(&cors_origins))
            .wrap(from_fn(api::middleware::observe))
            .wrap(from_fn(api::middleware::security_headers))
            .wrap(from_fn(api::middleware::request_id))
    };
    let listener =
        listen(settings.listen).with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener
        .local_addr()
        .context("the server bound no address")?;
    // What actix-web's HttpServer builds, plus actix-http's upgrade hook: upgraded
    // connections (the WebSocket) leave the HTTP dispatcher and its buffers (src/server/upgrade/).
    let upgrades = pumps.clone();
    let builder = actix_server::Server::build();
    // Tells idle keep-alive connections to close when shutdown starts, as HttpServer does.
    let shutdown_signal = builder.graceful_shutdown_signal();
    let server =
        builder
            .disable_signals()
            .shutdown_timeout(10)
            .listen("hubbub", listener, move || {
                let app = make_app(true)
                    .into_factory()
                    .map_err(|e: actix_web::Error| e.error_response());
                let signal = shutdown_signal.clone();
                HttpService::build()
                    .graceful_shutdown_signal(move || {
                        let signal = signal.clone();
                        async move { signal.notified().await }
                    })
                    .keep_alive(KeepAlive::default())
                    .client_request_timeout(Duration::from_secs(5))
                    .client_disconnect_timeout(Duration::from_secs(1))
                    .local_addr(addr)
                    .on_connect_ext(|io: &actix_rt::net::TcpStream, data| {
                        data.insert(Peer::of(io));
                    })
                    .upgrade(Upgrades::new(
                        make_app(false).into_factory(),
                        AppConfig::default(),
                        upgrades.clone(),
                    ))
                    .finish(map_config(app, |_| AppConfig::default()))
                    .tcp()
            })?;
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down: closing sockets, finishing requests");
        hub.close_all(Close::ShuttingDown);
        // Sockets send their close frames from tasks of their own, which actix-server
        // doesn't wait for.
        pumps.drained(Duration::from_secs(10)).await;
        handle.stop(true).await;
    });
    tracing::info!(
        database = %store::redact(&settings.database_url),
        registration = settings.registration.as_str(),
        "ready"
    );
    if settings.registration == RegistrationMode::Open && !addr.ip().is_loopback() {
        tracing::warn!(
            listen = %addr,
            "HUBBUB_REGISTRATION=open on a non-loopback address: ANYONE who can reach this server can create an account. Set HUBBUB_REGISTRATION=invite (codes from `hubbub admin invite`) or closed (accounts from `hubbub admin create-user`) to stop that"
        );
    }
    if !addr.ip().is_loopback() {
        let cookies = match settings.cookie_secure {
            CookieSecure::Auto => "session cookies are Secure when the browser comes over HTTPS",
            CookieSecure::Always => {
                "HUBBUB_COOKIE_SECURE=true: browsers drop the session cookie over plain HTTP"
            }
            CookieSecure::Never => "HUBBUB_COOKIE_SECURE=false: session cookies are never Secure",
        };
        tracing::warn!(
            "serving plain HTTP on {addr}, beyond this machine: put a TLS proxy in front \
             (docs/nginx.conf) for anything but a trusted network, since passwords and \
             session cookies cross it in clear; {cookies}"
        );
    }
    // The one line scripts and tests wait for, after every start-up warning (a test that
    // reads the log once it is ready found the plain-HTTP warning missing).
    println!("hubbub listening on http://{addr}");
    server.await?;
    let _ = stop.send(true);
    tracing::info!("stopped");
    Ok(())
}

/// A listening socket with actix-web's backlog (1,024 pending connections).
fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)?.into_std()
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Deletes expired short-lived events (typing) every `every`, far more often than the log's
/// retention round, and forgets this node's expired typists.
async fn maintain_short_lived(
    db: Db,
    typists: Arc<Typists>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        typists.shrink();
        match maintenance::prune_expired(&db).await {
            Ok(0) => {}
            Ok(events) => tracing::debug!(events, "pruned expired short-lived events"),
            Err(e) => tracing::warn!(error = %e, "pruning short-lived events failed"),
        }
    }
}

/// Every second, analyses the tables whose planner statistics are stale (PostgreSQL): a fresh or
/// fast-growing database otherwise runs on plans made for its empty tables for minutes
/// (`store::statistics`).
async fn keep_statistics(db: Db, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        match maintenance::refresh_statistics(&db).await {
            Ok(tables) if tables.is_empty() => {}
            Ok(tables) => tracing::debug!(?tables, "analysed tables with stale statistics"),
            Err(e) => tracing::warn!(error = %e, "refreshing planner statistics failed"),
        }
    }
}

/// Runs the periodic clean-up (`core::maintenance`) and shrinks the rate limiter's buckets.
async fn maintain(
    db: Db,
    settings: Arc<Settings>,
    limits: Arc<Limits>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        limits.shrink();
        let keep = Retention {
            events: settings.event_retention,
            idempotency_keys: settings.idempotency_ttl,
            unattached_uploads: settings.attachment_ttl,
            deleted_usernames: settings.deleted_username_hold,
        };
        match maintenance::prune(&db, keep, &settings.data_dir).await {
            Ok(pruned) if pruned == Pruned::default() => {}
            Ok(Pruned {
                events,
                sessions,
                keys,
                uploads,
                usernames,
            }) => tracing::info!(events, sessions, keys, uploads, usernames, "pruned"),
            Err(e) => tracing::warn!(error = %e, "maintenance failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.prune_interval) => {}
            _ = stop.changed() => return,
        }
    }
}
