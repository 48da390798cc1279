//! Counters the server keeps about itself (group-commit batches, events, sockets), read by the
//! benchmarks and the operations endpoints.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Requests of one route: counts by status, and a latency histogram.
#[derive(Debug, Default)]
struct Route {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_s: f64,
}

/// Process-wide counters; shared by `Arc`, updated with relaxed atomics.
#[derive(Debug, Default)]
pub struct Metrics {
    pub batches: AtomicU64,
    pub batched_jobs: AtomicU64,
    pub largest_batch: AtomicU64,
    /// Time the writer spent per phase of its batches, in microseconds (see [`Metrics::phases`]).
    commit_begin_us: AtomicU64,
    commit_work_us: AtomicU64,
    commit_end_us: AtomicU64,
    pub events_dispatched: AtomicU64,
    pub deliveries: AtomicU64,
    pub slow_consumer_closes: AtomicU64,
    pub open_sockets: AtomicU64,
    /// Connections past a `101` whose bytes hubbub's pump carries (`upgrade::pump`).
    pub upgraded_connections: AtomicU64,
    routes: Mutex<BTreeMap<String, Route>>,
}

impl Metrics {
    /// Records one group-commit batch of `jobs` writes.
    pub fn batch(&self, jobs: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batched_jobs.fetch_add(jobs as u64, Ordering::Relaxed);
        self.largest_batch.fetch_max(jobs as u64, Ordering::Relaxed);
    }

    /// Records how long one batch took in each phase: `begin` (the transaction and the
    /// event-log lock), `work` (every job's reads and writes) and `commit` (COMMIT, which
    /// waits for the fsync). Their sum over a run, divided by the batches, is the time of one
    /// transaction, most of the writer's cycle (`docs/benchmarks.md` reads it per run).
    pub fn phases(&self, begin: Duration, work: Duration, commit: Duration) {
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.commit_begin_us.fetch_add(us(begin), Ordering::Relaxed);
        self.commit_work_us.fetch_add(us(work), Ordering::Relaxed);
        self.commit_end_us.fetch_add(us(commit), Ordering::Relaxed);
    }

    /// Records one HTTP request (`route` is the route's pattern, so ids don't explode it).
    pub fn request(&self, route: &str, status: u16, took: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let entry = routes.entry(route.to_string()).or_default();
        *entry.by_status.entry(status).or_default() += 1;
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                entry.buckets[i] += 1;
            }
        }
        entry.count += 1;
        entry.sum_s += secs;
    }

    /// The two per-route families, each with all its samples together (the exposition format
    /// doesn't allow one family's samples to be interleaved with another's).
    fn render_routes(&self) -> String {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::from("# TYPE hubbub_http_requests_total counter\n");
        for (route, r) in routes.iter() {
            for (status, n) in &r.by_status {
                let _ = writeln!(
                    out,
                    "hubbub_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# TYPE hubbub_http_request_seconds histogram\n");
        for (route, r) in routes.iter() {
            for (bound, n) in BUCKETS.iter().zip(r.buckets.iter()) {
                let _ = writeln!(
                    out,
                    "hubbub_http_request_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "hubbub_http_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                r.count
            );
            let _ = writeln!(
                out,
                "hubbub_http_request_seconds_sum{{route=\"{route}\"}} {}",
                r.sum_s
            );
            let _ = writeln!(
                out,
                "hubbub_http_request_seconds_count{{route=\"{route}\"}} {}",
                r.count
            );
        }
        out
    }

    /// A plain-text snapshot in the Prometheus exposition format.
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let secs = |a: &AtomicU64| g(a) as f64 / 1e6;
        self.render_routes() + &format!(
            "# TYPE hubbub_commit_batches_total counter\nhubbub_commit_batches_total {}\n\
             # TYPE hubbub_commit_batched_writes_total counter\nhubbub_commit_batched_writes_total {}\n\
             # TYPE hubbub_commit_largest_batch gauge\nhubbub_commit_largest_batch {}\n\
             # TYPE hubbub_commit_seconds_total counter\n\
             hubbub_commit_seconds_total{{phase=\"begin\"}} {}\n\
             hubbub_commit_seconds_total{{phase=\"work\"}} {}\n\
             hubbub_commit_seconds_total{{phase=\"commit\"}} {}\n\
             # TYPE hubbub_events_dispatched_total counter\nhubbub_events_dispatched_total {}\n\
             # TYPE hubbub_fanout_deliveries_total counter\nhubbub_fanout_deliveries_total {}\n\
             # TYPE hubbub_slow_consumer_closes_total counter\nhubbub_slow_consumer_closes_total {}\n\
             # TYPE hubbub_open_sockets gauge\nhubbub_open_sockets {}\n\
             # TYPE hubbub_upgraded_connections gauge\nhubbub_upgraded_connections {}\n",
            g(&self.batches),
            g(&self.batched_jobs),
            g(&self.largest_batch),
            secs(&self.commit_begin_us),
            secs(&self.commit_work_us),
            secs(&self.commit_end_us),
            g(&self.events_dispatched),
            g(&self.deliveries),
            g(&self.slow_consumer_closes),
            g(&self.open_sockets),
            g(&self.upgraded_connections),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metric family a sample line belongs to.
    fn family(line: &str) -> &str {
        let name = line.split(['{', ' ']).next().unwrap_or(line);
        ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| *base == "hubbub_http_request_seconds")
            .unwrap_or(name)
    }

    #[test]
    fn each_family_is_one_block_after_its_type_line() {
        // Arrange: two routes, so that per-route output could interleave the families.
        let metrics = Metrics::default();
        metrics.request("/a", 200, Duration::from_millis(2));
        metrics.request("/b", 404, Duration::from_millis(30));
        metrics.phases(
            Duration::from_micros(10),
            Duration::from_micros(200),
            Duration::from_micros(300),
        );

        // Act
        let text = metrics.render();

        // Assert
        let mut seen: Vec<&str> = Vec::new();
        let mut typed: Vec<&str> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.push(rest.split(' ').next().unwrap());
                continue;
            }
            let f = family(line);
            assert_eq!(typed.last(), Some(&f), "{line} follows its own # TYPE line");
            if seen.last() != Some(&f) {
                assert!(!seen.contains(&f), "{f} appears in two places:\n{text}");
                seen.push(f);
            }
        }
        assert!(text.contains("hubbub_commit_seconds_total{phase=\"work\"} 0.0002\n"));
        assert!(text.contains("hubbub_http_requests_total{route=\"/b\",status=\"404\"} 1\n"));
    }
}
