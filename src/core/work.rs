//! Bounded pools for CPU- and memory-heavy work (image decodes, password hashes).
//!
//! Each costs tens or hundreds of MiB while it runs, so how many run at once is what bounds the
//! node's memory: `workers` run, at most `queue` more wait (for up to `wait`), and anything
//! beyond is refused at once with 503 `server_busy` and `Retry-After` instead of joining a
//! growing queue. The permits travel into the blocking closure, so work a client abandoned still
//! counts until it has actually finished.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Class, Error, Result};

/// What a client is told to wait before retrying a refused request, in seconds.
const RETRY_AFTER_SECS: u64 = 2;

/// A bounded pool of blocking work; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    /// Named in the 503's message ("image", "password").
    what: &'static str,
    /// Workers + queue: whoever holds one of these is running or waiting.
    admitted: Arc<Semaphore>,
    /// Workers: whoever holds one of these is running.
    running: Arc<Semaphore>,
    wait: Duration,
}

/// A place in a pool's queue, taken before the request does anything costly (such as reading
/// an upload's body) and given back when its work is done or abandoned.
pub struct Admission {
    _place: OwnedSemaphorePermit,
}

impl Pool {
    pub fn new(what: &'static str, workers: usize, queue: usize, wait: Duration) -> Pool {
        Pool {
            what,
            admitted: Arc::new(Semaphore::new(workers + queue)),
            running: Arc::new(Semaphore::new(workers)),
            wait,
        }
    }

    fn busy(&self) -> Error {
        Error::busy(
            Class::Unavailable,
            "server_busy",
            format!(
                "the server is busy with other {} work; retry shortly",
                self.what
            ),
            RETRY_AFTER_SECS,
        )
    }

    /// A place in the queue, or 503 `server_busy` at once if it is full.
    pub fn admit(&self) -> Result<Admission> {
        self.admitted
            .clone()
            .try_acquire_owned()
            .map(|place| Admission { _place: place })
            .map_err(|_| self.busy())
    }

    /// Runs `f` on a worker once one is free (503 `server_busy` if none is within the pool's
    /// wait). The places are held until `f` returns, even if the caller has gone.
    pub async fn run<T: Send + 'static>(
        &self,
        admission: Admission,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let worker = tokio::time::timeout(self.wait, self.running.clone().acquire_owned())
            .await
            .map_err(|_| self.busy())?
            .map_err(Error::internal)?;
        tokio::task::spawn_blocking(move || {
            let _held = (admission, worker);
            f()
        })
        .await
        .map_err(Error::internal)?
    }

    /// [`Pool::admit`] then [`Pool::run`].
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let admission = self.admit()?;
        self.run(admission, f).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn code(r: Result<impl Sized>) -> Option<&'static str> {
        r.err().map(|e| e.code)
    }

    #[tokio::test]
    async fn beyond_workers_and_queue_is_refused_at_once() {
        let pool = Pool::new("test", 1, 1, Duration::from_secs(10));
        let a = pool.admit().expect("a worker's place");
        let _b = pool.admit().expect("a queue place");
        assert_eq!(code(pool.admit()), Some("server_busy"));
        drop(a);
        assert!(pool.admit().is_ok(), "a place given back is taken again");
    }

    #[tokio::test]
    async fn waiting_past_the_wait_is_refused_with_retry_after() {
        let pool = Pool::new("test", 1, 1, Duration::from_millis(50));
        let (release, held) = mpsc::channel::<()>();
        let busy = pool.clone();
        let first = tokio::spawn(async move { busy.call(move || Ok(held.recv().ok())).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let err = pool
            .call(|| Ok(()))
            .await
            .expect_err("no worker within the wait");
        assert_eq!((err.class, err.code), (Class::Unavailable, "server_busy"));
        assert_eq!(err.retry_after, Some(RETRY_AFTER_SECS));
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        assert!(pool.call(|| Ok(())).await.is_ok());
    }

    #[tokio::test]
    async fn abandoned_work_holds_its_place_until_it_ends() {
        let pool = Pool::new("test", 1, 0, Duration::from_millis(50));
        let (release, held) = mpsc::channel::<()>();
        let busy = pool.clone();
        let caller = tokio::spawn(async move { busy.call(move || Ok(held.recv().ok())).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        caller.abort();
        let _ = caller.await;
        assert_eq!(code(pool.admit()), Some("server_busy"), "still running");
        release.send(()).unwrap();
        let mut freed = false;
        for _ in 0..100 {
            if pool.admit().is_ok() {
                freed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(freed, "the place comes back when the work ends");
    }
}
