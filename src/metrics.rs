//! Counters the server keeps about itself (group-commit batches, events, sockets), read by the
//! benchmarks and the operations endpoints.

use std::sync::atomic::{AtomicU64, Ordering};

/// Process-wide counters; shared by `Arc`, updated with relaxed atomics.
#[derive(Debug, Default)]
pub struct Metrics {
    pub batches: AtomicU64,
    pub batched_jobs: AtomicU64,
    pub largest_batch: AtomicU64,
    pub events_dispatched: AtomicU64,
    pub deliveries: AtomicU64,
    pub slow_consumer_closes: AtomicU64,
    pub open_sockets: AtomicU64,
}

impl Metrics {
    /// Records one group-commit batch of `jobs` writes.
    pub fn batch(&self, jobs: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batched_jobs.fetch_add(jobs as u64, Ordering::Relaxed);
        self.largest_batch.fetch_max(jobs as u64, Ordering::Relaxed);
    }

    /// A plain-text snapshot in the Prometheus exposition format.
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# TYPE hubbub_commit_batches_total counter\nhubbub_commit_batches_total {}\n\
             # TYPE hubbub_commit_batched_writes_total counter\nhubbub_commit_batched_writes_total {}\n\
             # TYPE hubbub_commit_largest_batch gauge\nhubbub_commit_largest_batch {}\n\
             # TYPE hubbub_events_dispatched_total counter\nhubbub_events_dispatched_total {}\n\
             # TYPE hubbub_fanout_deliveries_total counter\nhubbub_fanout_deliveries_total {}\n\
             # TYPE hubbub_slow_consumer_closes_total counter\nhubbub_slow_consumer_closes_total {}\n\
             # TYPE hubbub_open_sockets gauge\nhubbub_open_sockets {}\n",
            g(&self.batches),
            g(&self.batched_jobs),
            g(&self.largest_batch),
            g(&self.events_dispatched),
            g(&self.deliveries),
            g(&self.slow_consumer_closes),
            g(&self.open_sockets),
        )
    }
}
