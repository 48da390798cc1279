//! The group-commit writer: one thread with its own connection that runs every write which
//! appends events. Jobs that arrive while a batch commits wait and go together in the next
//! one: one transaction, one event-log lock and one fsync per batch instead of per write.
//!
//! Each job runs inside a savepoint, so one job's failure (a 409, a 404) rolls back only that
//! job. A job's caller hears back only after COMMIT returned: ack ⇒ durable. Then the doorbell
//! rings with the newest event id, and the tailer wakes.

use std::sync::Arc;
use std::thread;

use diesel::connection::{Connection, TransactionManager};
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::{self, DbConnection, Manager};

/// The most jobs one transaction takes.
const MAX_BATCH: usize = 256;
/// Jobs waiting for the writer before callers wait to submit (backpressure).
const QUEUE: usize = 4096;

/// A job's view of the batch it runs in: the connection, and the events it appended.
pub struct Batch<'c> {
    conn: &'c mut DbConnection,
    last_event: i64,
}

impl Batch<'_> {
    /// The connection, inside the batch's transaction.
    pub fn conn(&mut self) -> &mut DbConnection {
        self.conn
    }

    /// Records that event `id` was appended (the doorbell rings with the highest).
    pub(crate) fn appended(&mut self, id: i64) {
        self.last_event = self.last_event.max(id);
    }
}

type Finish = Box<dyn FnOnce(Result<(), &Error>) + Send>;
type Job = Box<dyn FnOnce(&mut Batch<'_>) -> (bool, Finish) + Send>;

/// A cloneable handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread. `doorbell` receives the newest committed event id.
    pub fn start(manager: Manager, doorbell: watch::Sender<i64>, metrics: Arc<Metrics>) -> Writer {
        let (jobs, rx) = mpsc::channel::<Job>(QUEUE);
        thread::Builder::new()
            .name("hubbub-writer".into())
            .spawn(move || run(manager, rx, doorbell, metrics))
            .expect("start the writer thread");
        Writer { jobs }
    }

    /// Runs `f` in the next batch and returns its result once the batch has committed.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |batch| {
            let result = f(batch);
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let outcome = match (result, commit) {
                    (Err(e), _) => Err(e),
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(e)) => Err(Error::new(e.status, e.code, e.message.clone())),
                };
                let _ = tx.send(outcome);
            });
            (ok, finish)
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| Error::unavailable(anyhow::anyhow!("the writer has stopped")))?;
        rx.await
            .map_err(|_| Error::unavailable(anyhow::anyhow!("the database refused the write")))?
    }
}

fn run(
    manager: Manager,
    mut rx: mpsc::Receiver<Job>,
    doorbell: watch::Sender<i64>,
    metrics: Arc<Metrics>,
) {
    let mut conn: Option<DbConnection> = None;
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        metrics.batch(jobs.len());
        if conn.is_none() {
            match manager.open() {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    let err = Error::unavailable(anyhow::anyhow!(
                        "writer cannot reach the database: {e}"
                    ));
                    tracing::error!(error = %err, "group commit failed");
                    fail_all(&mut jobs, &err);
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        match commit_batch(c, &mut jobs) {
            Ok(Some(head)) => {
                doorbell.send_if_modified(|current| {
                    let newer = head > *current;
                    if newer {
                        *current = head;
                    }
                    newer
                });
            }
            Ok(None) => {}
            Err(()) => conn = None, // reopen: the connection may be what failed
        }
    }
}

/// Runs the jobs in one transaction. Returns the newest event id appended, if any; `Err` when
/// the transaction itself failed (every job has then been told).
fn commit_batch(
    conn: &mut DbConnection,
    jobs: &mut Vec<Job>,
) -> std::result::Result<Option<i64>, ()> {
    type Tm = <DbConnection as Connection>::TransactionManager;
    let single = jobs.len() == 1;
    let mut finishes: Vec<(bool, Finish)> = Vec::with_capacity(jobs.len());
    let begun = store::begin_write(conn).and_then(|_| store::lock_event_log(conn));
    if let Err(e) = begun {
        let _ = Tm::rollback_transaction(conn);
        let err = Error::unavailable(e);
        tracing::error!(error = %err, "group commit could not begin");
        fail_all(jobs, &err);
        return Err(());
    }
    let mut batch = Batch {
        conn,
        last_event: 0,
    };
    for job in jobs.drain(..) {
        if single {
            finishes.push(job(&mut batch));
            continue;
        }
        // A savepoint per job, so that one job's failure undoes only its own writes.
        if let Err(e) = Tm::begin_transaction(batch.conn) {
            tracing::error!(error = %e, "savepoint failed");
            drop(job); // its caller hears 503
            continue;
        }
        let before = batch.last_event;
        let (ok, finish) = job(&mut batch);
        let closed = if ok {
            Tm::commit_transaction(batch.conn)
        } else {
            batch.last_event = before;
            Tm::rollback_transaction(batch.conn)
        };
        match closed {
            Ok(()) => finishes.push((ok, finish)),
            Err(e) => {
                tracing::error!(error = %e, "savepoint failed");
                finishes.push((false, finish));
            }
        }
    }
    let head = batch.last_event;
    let all_failed_single = single && finishes.first().is_some_and(|(ok, _)| !ok);
    let outcome = if all_failed_single {
        Tm::rollback_transaction(conn).map_err(Error::internal)
    } else {
        match Tm::commit_transaction(conn) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = Tm::rollback_transaction(conn);
                Err(Error::internal(e))
            }
        }
    };
    match &outcome {
        Ok(()) => {
            for (_, finish) in finishes {
                finish(Ok(()));
            }
            Ok((head > 0 && !all_failed_single).then_some(head))
        }
        Err(err) => {
            tracing::error!(error = %err, "group commit failed");
            for (_, finish) in finishes {
                finish(Err(err));
            }
            Err(())
        }
    }
}

/// Drops jobs that could not run: each caller's reply channel closes, which it reports as 503.
fn fail_all(jobs: &mut Vec<Job>, err: &Error) {
    tracing::warn!(error = %err, jobs = jobs.len(), "writes refused");
    jobs.clear();
}
