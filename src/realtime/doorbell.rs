//! The cross-node doorbell: Redis pub/sub. After a commit, this node publishes "events up to
//! id N are committed"; every node's tailer wakes on it and reads the log. A lost or late ring
//! costs latency only: tailers also poll (`HUBBUB_POLL_INTERVAL_MS`). Redis down → the node
//! keeps serving on polling, says so in logs and `/readyz`, and reconnects by itself.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{watch, Notify};

/// The pub/sub channel all nodes share.
const CHANNEL: &str = "hubbub:events";

/// Whether the doorbell works: reported by `/readyz`.
#[derive(Debug, Default)]
pub struct Status(AtomicU8);

impl Status {
    const UP: u8 = 1;
    const DOWN: u8 = 2;

    fn set(&self, v: u8) {
        // 0, the default, means off: no Redis configured.
        self.0.store(v, Ordering::Relaxed);
    }

    /// `off` (no Redis configured), `up`, or `down` (polling only).
    pub fn describe(&self) -> &'static str {
        match self.0.load(Ordering::Relaxed) {
            Status::UP => "up",
            Status::DOWN => "down",
            _ => "off",
        }
    }
}

/// Connects to Redis (in the background, retrying) and returns what rings when another node
/// commits. `local` is this node's doorbell: its changes are published.
pub fn start(
    url: &str,
    local: watch::Receiver<i64>,
    status: Arc<Status>,
) -> anyhow::Result<Arc<Notify>> {
    let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("HUBBUB_REDIS_URL: {e}"))?;
    let ring = Arc::new(Notify::new());
    status.set(Status::DOWN);
    tokio::spawn(publish(client.clone(), local, status.clone()));
    tokio::spawn(subscribe(client, ring.clone(), status));
    Ok(ring)
}

/// Rings every node's doorbell once with `head` (a process without a tailer of its own, such as
/// `hubbub admin`, after it appended events), so that they read the log now rather than at their
/// next poll. Gives up after `within`.
pub async fn ring_once(url: &str, head: i64, within: Duration) -> anyhow::Result<()> {
    let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("HUBBUB_REDIS_URL: {e}"))?;
    let publish = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PUBLISH")
            .arg(CHANNEL)
            .arg(head)
            .query_async::<i64>(&mut conn)
            .await
    };
    match tokio::time::timeout(within, publish).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(anyhow::anyhow!("Redis: {e}")),
        Err(_) => Err(anyhow::anyhow!("Redis did not answer within {within:?}")),
    }
}

async fn backoff(attempt: &mut u32) {
    let ms = 100u64 << (*attempt).min(5); // 100 ms … 3.2 s
    *attempt += 1;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Publishes this node's newest committed id whenever it changes.
async fn publish(client: redis::Client, mut local: watch::Receiver<i64>, status: Arc<Status>) {
    let mut attempt = 0;
    loop {
        let mut conn = match client.get_multiplexed_async_connection().await {
            Ok(conn) => conn,
            Err(e) => {
                if attempt == 0 {
                    tracing::warn!(error = %e, "doorbell: cannot reach Redis; other nodes fall back to polling");
                }
                status.set(Status::DOWN);
                backoff(&mut attempt).await;
                continue;
            }
        };
        attempt = 0;
        loop {
            if local.changed().await.is_err() {
                return;
            }
            let head = *local.borrow_and_update();
            let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(CHANNEL)
                .arg(head)
                .query_async(&mut conn)
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "doorbell: publish failed; reconnecting");
                status.set(Status::DOWN);
                break;
            }
        }
    }
}

/// Rings `ring` for every message on the channel; reconnects when the subscription drops.
async fn subscribe(client: redis::Client, ring: Arc<Notify>, status: Arc<Status>) {
    let mut attempt = 0;
    loop {
        let pubsub = match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(CHANNEL).await {
                Ok(()) => pubsub,
                Err(e) => {
                    tracing::warn!(error = %e, "doorbell: subscribe failed");
                    status.set(Status::DOWN);
                    backoff(&mut attempt).await;
                    continue;
                }
            },
            Err(e) => {
                if attempt == 0 {
                    tracing::warn!(error = %e, "doorbell: cannot reach Redis; polling only");
                }
                status.set(Status::DOWN);
                backoff(&mut attempt).await;
                continue;
            }
        };
        if attempt > 0 {
            tracing::info!("doorbell: connected to Redis again");
        }
        attempt = 0;
        status.set(Status::UP);
        // A ring right away: events may have been committed while the doorbell was down.
        ring.notify_one();
        let mut messages = pubsub.into_on_message();
        while messages.next().await.is_some() {
            ring.notify_one();
        }
        tracing::warn!("doorbell: Redis subscription lost; polling until it is back");
        status.set(Status::DOWN);
        backoff(&mut attempt).await;
    }
}
