//! The group-commit writer: one thread with its own connection that runs every write which
//! appends events. Jobs that arrive while a batch commits wait and go together in the next
//! one: one transaction, one event-log lock and one fsync per batch instead of per write.
//!
//! A batch is made of units, each in its own savepoint (when the batch has more than one), so
//! one unit's failure rolls back only that unit. A unit is either one job (any closure that
//! writes), or a [`Group`]: consecutive jobs of one kind that run together. The writer doesn't
//! know what a group does; core supplies them (its message sends are checked and written one
//! statement per table for the whole group, `core::send_group`, which is what makes a send
//! cheap). A caller hears back only after COMMIT returned: ack ⇒ durable. Then
//! the doorbell rings with the newest event id, and the tailer wakes.

use std::any::Any;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

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

#[cfg(test)]
impl<'c> Batch<'c> {
    /// A batch over a connection the test has put in a transaction (or not).
    pub(crate) fn for_test(conn: &'c mut DbConnection) -> Batch<'c> {
        Batch {
            conn,
            last_event: 0,
        }
    }

    pub(crate) fn last_event(&self) -> i64 {
        self.last_event
    }
}

/// Tells a caller how its write ended, given how the commit went.
pub type Finish = Box<dyn FnOnce(Result<(), &Error>) + Send>;
type Closure = Box<dyn FnOnce(&mut Batch<'_>) -> (bool, Finish) + Send>;

/// Jobs of one kind that run together: consecutive ones in a batch become one group, in one
/// savepoint and one call. Core supplies the kinds (a send group); the writer only merges and
/// runs them.
pub trait Group: Any + Send {
    /// Takes `next` in when it is a group of the same kind; hands it back otherwise.
    fn absorb(&mut self, next: Box<dyn Group>) -> std::result::Result<(), Box<dyn Group>>;

    /// Runs the group: whether its writes should stay, and how to tell each of its callers.
    fn run(self: Box<Self>, batch: &mut Batch<'_>) -> (bool, Vec<Finish>);

    /// Whether each statement the group runs changes a bounded number of pages (its size capped
    /// by the batch's), so that a batch of such groups may keep its statement journals in
    /// memory (`store::statement_journals_in_memory`). No, unless the kind says so.
    fn bounded_statements(&self) -> bool {
        false
    }
}

/// `next` as a `G`, when it is one (for [`Group::absorb`]); handed back otherwise.
pub fn same_kind<G: Group>(next: Box<dyn Group>) -> std::result::Result<Box<G>, Box<dyn Group>> {
    if (&*next as &dyn Any).is::<G>() {
        let any: Box<dyn Any> = next;
        Ok(any.downcast::<G>().expect("checked just above"))
    } else {
        Err(next)
    }
}

enum Job {
    Closure(Closure),
    Group(Box<dyn Group>),
}

/// Merges consecutive groups of one kind; every closure is a unit of its own.
fn units(jobs: &mut Vec<Job>) -> Vec<Job> {
    let mut units: Vec<Job> = Vec::new();
    for job in jobs.drain(..) {
        let job = match (units.last_mut(), job) {
            (Some(Job::Group(group)), Job::Group(next)) => match group.absorb(next) {
                Ok(()) => continue,
                Err(next) => Job::Group(next),
            },
            (_, job) => job,
        };
        units.push(job);
    }
    units
}

impl Job {
    /// Runs the unit: whether its writes should stay, and how to tell each caller.
    fn run(self, batch: &mut Batch<'_>) -> (bool, Vec<Finish>) {
        match self {
            Job::Closure(job) => {
                let (ok, finish) = job(batch);
                (ok, vec![finish])
            }
            Job::Group(group) => group.run(batch),
        }
    }
}

/// The caller's outcome, once the commit's is known: a failed commit fails a successful write.
pub fn finish_with<T: Send + 'static>(
    tx: oneshot::Sender<Result<T>>,
    outcome: Result<T>,
) -> Finish {
    Box::new(move |commit| {
        let outcome = match (outcome, commit) {
            (Err(e), _) => Err(e),
            (Ok(v), Ok(())) => Ok(v),
            (Ok(_), Err(e)) => Err(e.for_another()),
        };
        let _ = tx.send(outcome);
    })
}

/// A cloneable handle to the writer thread.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread. `doorbell` receives the newest committed event id. Fails only
    /// if the operating system refuses a thread (at start-up: the server then exits with it).
    pub fn start(
        manager: Manager,
        doorbell: watch::Sender<i64>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Writer> {
        let (jobs, rx) = mpsc::channel::<Job>(QUEUE);
        thread::Builder::new()
            .name("hubbub-writer".into())
            .spawn(move || run(manager, rx, doorbell, metrics))?;
        Ok(Writer { jobs })
    }

    /// Runs `f` in the next batch and returns its result once the batch has committed.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Batch<'_>) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job = Job::Closure(Box::new(move |batch| {
            let result = f(batch);
            (result.is_ok(), finish_with(tx, result))
        }));
        self.submit(job, rx).await
    }

    /// Runs `group` with the groups of its kind next to it in the next batch; `rx` hears its
    /// caller's answer once the batch has committed.
    pub async fn group<T>(
        &self,
        group: Box<dyn Group>,
        rx: oneshot::Receiver<Result<T>>,
    ) -> Result<T> {
        self.submit(Job::Group(group), rx).await
    }

    async fn submit<T>(&self, job: Job, rx: oneshot::Receiver<Result<T>>) -> Result<T> {
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
    // Where the connection's statement journals go now (`store::statement_journals_in_memory`).
    let mut in_memory = false;
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
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
            match manager.open_writer() {
                Ok(c) => {
                    conn = Some(c);
                    in_memory = false;
                }
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
        let bounded = jobs
            .iter()
            .all(|job| matches!(job, Job::Group(group) if group.bounded_statements()));
        if bounded != in_memory {
            match store::statement_journals_in_memory(c, bounded) {
                Ok(()) => in_memory = bounded,
                // The batch runs with the journals where they were: slower, or one batch's
                // journal in memory; not wrong.
                Err(e) => tracing::warn!(error = %e, "could not move the statement journals"),
            }
        }
        match commit_batch(c, &mut jobs, &metrics) {
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
    metrics: &Metrics,
) -> std::result::Result<Option<i64>, ()> {
    type Tm = <DbConnection as Connection>::TransactionManager;
    let units = units(jobs);
    let started = Instant::now();
    let single = units.len() == 1;
    let mut finishes: Vec<Finish> = Vec::with_capacity(units.len());
    if let Err(e) = store::begin_append(conn) {
        let _ = Tm::rollback_transaction(conn);
        let err = Error::unavailable(e);
        tracing::error!(error = %err, "group commit could not begin");
        drop(units); // every caller hears 503
        return Err(());
    }
    let begun = Instant::now();
    let mut batch = Batch {
        conn,
        last_event: 0,
    };
    let mut single_failed = false;
    for unit in units {
        if single {
            let (ok, mut told) = unit.run(&mut batch);
            single_failed = !ok;
            finishes.append(&mut told);
            continue;
        }
        // A savepoint per unit, so that one unit's failure undoes only its own writes.
        if let Err(e) = Tm::begin_transaction(batch.conn) {
            tracing::error!(error = %e, "savepoint failed");
            drop(unit); // its callers hear 503
            continue;
        }
        let before = batch.last_event;
        let (ok, told) = unit.run(&mut batch);
        let closed = if ok {
            Tm::commit_transaction(batch.conn)
        } else {
            batch.last_event = before;
            Tm::rollback_transaction(batch.conn)
        };
        if let Err(e) = closed {
            tracing::error!(error = %e, "savepoint failed");
            let err = Error::unavailable(e);
            for finish in told {
                finish(Err(&err));
            }
            continue;
        }
        finishes.extend(told);
    }
    let head = batch.last_event;
    let worked = Instant::now();
    let outcome = if single_failed {
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
    metrics.phases(begun - started, worked - begun, worked.elapsed());
    match &outcome {
        Ok(()) => {
            for finish in finishes {
                finish(Ok(()));
            }
            Ok((head > 0 && !single_failed).then_some(head))
        }
        Err(err) => {
            tracing::error!(error = %err, "group commit failed");
            for finish in finishes {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::send_group::{self, SendRequest};
    use crate::domain::{Id, Time};
    use crate::events::{self, To};
    use crate::store::testing::{room, stay, user};
    use diesel::prelude::*;

    fn send(author: Id, room: Id, body: &str) -> SendRequest {
        SendRequest {
            author,
            room,
            body: body.into(),
            reply_to: None,
            attachment_ids: Vec::new(),
            mention_ids: Vec::new(),
            key: None,
        }
    }

    /// A kind of group for the tests: it records how many jobs each run took.
    struct Counted(Vec<usize>, std::sync::mpsc::Sender<usize>);
    /// Another kind, never merged with `Counted`.
    struct Other;

    impl Group for Counted {
        fn absorb(&mut self, next: Box<dyn Group>) -> std::result::Result<(), Box<dyn Group>> {
            self.0.extend(same_kind::<Counted>(next)?.0);
            Ok(())
        }
        fn run(self: Box<Self>, _: &mut Batch<'_>) -> (bool, Vec<Finish>) {
            let _ = self.1.send(self.0.len());
            (true, Vec::new())
        }
    }

    impl Group for Other {
        fn absorb(&mut self, next: Box<dyn Group>) -> std::result::Result<(), Box<dyn Group>> {
            same_kind::<Other>(next).map(|_| ())
        }
        fn run(self: Box<Self>, _: &mut Batch<'_>) -> (bool, Vec<Finish>) {
            (true, Vec::new())
        }
    }

    #[test]
    fn consecutive_groups_of_one_kind_merge_and_others_stay_apart() {
        let (tx, runs) = std::sync::mpsc::channel();
        let counted = |n| Job::Group(Box::new(Counted(vec![n], tx.clone())));
        let closure = || {
            let finish: Finish = Box::new(|_: Result<(), &Error>| {});
            Job::Closure(Box::new(move |_: &mut Batch<'_>| (true, finish)))
        };
        let mut jobs = vec![
            counted(1),
            counted(2),
            counted(3),
            Job::Group(Box::new(Other)),
            counted(4),
            closure(),
            counted(5),
            counted(6),
        ];
        let units = units(&mut jobs);
        assert_eq!(units.len(), 5, "[1 2 3] [other] [4] [closure] [5 6]");
        let dir = std::env::temp_dir().join(format!("hubbub-units-{}", crate::domain::Id::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let manager = Manager::new(&dir.join("db.sqlite").to_string_lossy());
        let mut conn = manager.open().unwrap();
        let mut batch = Batch::for_test(&mut conn);
        for unit in units {
            unit.run(&mut batch);
        }
        drop(tx);
        assert_eq!(runs.iter().collect::<Vec<_>>(), [3, 1, 2]);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A group that reports where its statement journals go (`PRAGMA temp_store`: 2 memory,
    /// 0 SQLite's default), and says whether its statements are bounded.
    struct Journals(oneshot::Sender<Result<i32>>, bool);

    #[derive(QueryableByName)]
    struct TempStore {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        temp_store: i32,
    }

    fn temp_store(batch: &mut Batch<'_>) -> Result<i32> {
        let DbConnection::Sqlite(c) = batch.conn() else {
            unreachable!("a SQLite database")
        };
        Ok(diesel::sql_query("PRAGMA temp_store")
            .get_result::<TempStore>(c)
            .map_err(Error::internal)?
            .temp_store)
    }

    impl Group for Journals {
        fn absorb(&mut self, next: Box<dyn Group>) -> std::result::Result<(), Box<dyn Group>> {
            Err(next)
        }
        fn run(self: Box<Self>, batch: &mut Batch<'_>) -> (bool, Vec<Finish>) {
            let seen = temp_store(batch);
            (true, vec![finish_with(self.0, seen)])
        }
        fn bounded_statements(&self) -> bool {
            self.1
        }
    }

    #[actix_rt::test]
    async fn bounded_groups_keep_statement_journals_in_memory_and_other_jobs_do_not() {
        let dir = std::env::temp_dir().join(format!("hubbub-journals-{}", Id::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let manager = Manager::new(&dir.join("db.sqlite").to_string_lossy());
        let (doorbell, _rung) = watch::channel(0);
        let writer = Writer::start(manager, doorbell, Arc::new(Metrics::default())).unwrap();
        let handle = &writer;
        let group = |bounded| async move {
            let (tx, rx) = oneshot::channel();
            handle
                .group(Box::new(Journals(tx, bounded)), rx)
                .await
                .unwrap()
        };
        let closure = || async { writer.run(temp_store).await.unwrap() };

        assert_eq!(closure().await, 0, "a closure first: the default");
        assert_eq!(group(true).await, 2, "a batch of bounded groups: in memory");
        assert_eq!(
            closure().await,
            0,
            "a closure after them: the default again"
        );
        assert_eq!(group(true).await, 2, "and back");
        assert_eq!(
            group(false).await,
            0,
            "a group that doesn't say so: the default"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[actix_rt::test]
    async fn a_failing_job_between_sends_rolls_back_alone() {
        // Arrange: a file database (the writer opens its own connection), alice in a room.
        let dir = std::env::temp_dir().join(format!("hubbub-writer-{}", Id::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = dir.join("db.sqlite").to_string_lossy().into_owned();
        let manager = Manager::new(&url);
        let mut conn = manager.open().unwrap();
        store::run_migrations(&mut conn).unwrap();
        let alice = user(&mut conn, "alice");
        let general = room(&mut conn, alice);
        stay(&mut conn, general, alice, 0, None);
        let (doorbell, rung) = watch::channel(0);
        let metrics = Arc::new(Metrics::default());
        let writer = Writer::start(manager, doorbell, metrics.clone()).unwrap();

        // Act: hold the writer so that the next three queue up and share one batch:
        // a send, a job that appends an event and then fails, another send.
        let (started, running) = oneshot::channel();
        let holder = writer.clone();
        let hold = actix_rt::spawn(async move {
            holder
                .run(move |_| {
                    let _ = started.send(());
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    Ok(())
                })
                .await
        });
        running.await.unwrap();
        let first = send_group::submit(&writer, send(alice, general, "first"));
        let failing = writer.run(move |batch| -> Result<()> {
            events::append(
                batch,
                "room.updated",
                To::Room(general),
                "{}",
                Time::now(),
                None,
            )?;
            Err(Error::conflict("nope", "this job fails after writing"))
        });
        let second = send_group::submit(&writer, send(alice, general, "second"));
        let (first, failing, second) = tokio::join!(first, failing, second);
        let held = hold.await.unwrap();

        // Assert
        held.unwrap();
        assert_eq!(failing.unwrap_err().code, "nope");
        let (first, second) = (first.unwrap(), second.unwrap());
        assert!(first.event < second.event);
        let kinds: Vec<String> = store::schema::events::table
            .select(store::schema::events::kind)
            .order(store::schema::events::id.asc())
            .load(&mut conn)
            .unwrap();
        assert_eq!(
            kinds,
            ["message.created", "message.created"],
            "the failed job's event is gone, the sends' stay"
        );
        let bodies: Vec<String> = store::schema::messages::table
            .select(store::schema::messages::body)
            .order(store::schema::messages::seq.asc())
            .load(&mut conn)
            .unwrap();
        assert_eq!(bodies, ["first", "second"]);
        let mut rung = rung;
        let rang = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            rung.wait_for(|head| *head >= 2),
        )
        .await;
        assert!(rang.is_ok(), "the doorbell rings with the newest id");
        let largest = metrics
            .largest_batch
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(largest, 3, "the three shared one batch");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
