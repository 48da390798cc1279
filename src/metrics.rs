//! Counters the server keeps about itself (group-commit batches, events, sockets), read by the
//! benchmarks and the operations endpoints. prometheus-client renders them at `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{prometheus_text, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// The labels of `hubbub_http_requests_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: u16,
}

/// The label of `hubbub_http_request_seconds`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

/// The labels of `hubbub_push_sent_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PushLabels {
    kind: &'static str,
    outcome: &'static str,
}

/// Requests by route: counts by status, and a latency histogram.
#[derive(Debug)]
struct Routes {
    requests: Family<RouteStatus, Counter>,
    latency: Family<RouteLabel, Histogram>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            requests: Family::default(),
            latency: Family::new_with_constructor(|| Histogram::new(BUCKETS)),
        }
    }
}

/// Process-wide counters; shared by `Arc`, updated with relaxed atomics and read into
/// prometheus-client's constant metrics at each scrape.
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
    /// Deliveries the push worker holds (in flight or waiting to be retried).
    pub push_queue: AtomicU64,
    /// Events between the push worker's cursor and the log's head, as of its last read.
    pub push_lag_events: AtomicU64,
    /// 1 while this node runs the deployment's push worker.
    pub push_leader: AtomicU64,
    routes: Routes,
    push_sent: Family<PushLabels, Counter>,
}

/// `hubbub_commit_seconds_total`: one counter per phase, in seconds.
#[derive(Debug)]
struct Phases([(&'static str, f64); 3]);

impl EncodeMetric for Phases {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (phase, seconds) in self.0 {
            ConstCounter::new(seconds).encode(encoder.encode_family(&[("phase", phase)])?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
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
        let route = route.to_string();
        (self.routes.latency)
            .get_or_create(&RouteLabel {
                route: route.clone(),
            })
            .observe(took.as_secs_f64());
        (self.routes.requests)
            .get_or_create(&RouteStatus { route, status })
            .inc();
    }

    /// Records one push request's outcome (`kind`: `webpush` or `fcm`; `outcome`: `delivered`,
    /// `gone`, `retry` or `failed`).
    pub fn push_sent(&self, kind: &'static str, outcome: &'static str) {
        self.push_sent
            .get_or_create(&PushLabels { kind, outcome })
            .inc();
    }

    /// A plain-text snapshot in the Prometheus exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let secs = |a: &AtomicU64| g(a) as f64 / 1e6;
        let mut registry = Registry::default();
        registry.register(
            "hubbub_http_requests",
            "Requests by route pattern and status",
            self.routes.requests.clone(),
        );
        registry.register(
            "hubbub_http_request_seconds",
            "Request latency by route pattern",
            self.routes.latency.clone(),
        );
        registry.register(
            "hubbub_push_sent",
            "Push requests by subscription kind and outcome",
            self.push_sent.clone(),
        );
        registry.register(
            "hubbub_commit_seconds",
            "The writer's time in its transactions, by phase",
            Phases([
                ("begin", secs(&self.commit_begin_us)),
                ("work", secs(&self.commit_work_us)),
                ("commit", secs(&self.commit_end_us)),
            ]),
        );
        let counters = [
            (
                "hubbub_commit_batches",
                "Group-commit transactions",
                &self.batches,
            ),
            (
                "hubbub_commit_batched_writes",
                "Writes (jobs) in the group-commit transactions",
                &self.batched_jobs,
            ),
            (
                "hubbub_events_dispatched",
                "Events the tailer handed to the hub",
                &self.events_dispatched,
            ),
            (
                "hubbub_fanout_deliveries",
                "Frames queued to sockets and long polls",
                &self.deliveries,
            ),
            (
                "hubbub_slow_consumer_closes",
                "Sockets closed with 4000 because their queue was full",
                &self.slow_consumer_closes,
            ),
        ];
        for (name, help, value) in counters {
            registry.register(name, help, ConstCounter::new(g(value)));
        }
        let gauges = [
            (
                "hubbub_commit_largest_batch",
                "Largest group-commit batch so far",
                &self.largest_batch,
            ),
            (
                "hubbub_open_sockets",
                "Open streams plus waiting long polls on this node",
                &self.open_sockets,
            ),
            (
                "hubbub_upgraded_connections",
                "WebSocket connections this node holds",
                &self.upgraded_connections,
            ),
            (
                "hubbub_push_queue",
                "Push deliveries in flight or waiting for a retry",
                &self.push_queue,
            ),
            (
                "hubbub_push_lag_events",
                "Events between the push worker's cursor and the log's head",
                &self.push_lag_events,
            ),
            (
                "hubbub_push_leader",
                "1 while this node runs the deployment's push worker",
                &self.push_leader,
            ),
        ];
        for (name, help, value) in gauges {
            registry.register(name, help, ConstGauge::new(g(value)));
        }
        let mut text = String::new();
        // Writing into a String can't fail, nor can any of the metrics above.
        let _ = prometheus_text::encode(&mut text, &registry);
        text
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

    /// A registry with two routes and some of every process counter.
    fn sample() -> Metrics {
        let metrics = Metrics::default();
        metrics.request("/a", 200, Duration::from_millis(2));
        metrics.request("/b", 404, Duration::from_millis(30));
        metrics.request("/b", 404, Duration::from_millis(300));
        metrics.batch(3);
        metrics.phases(
            Duration::from_micros(10),
            Duration::from_micros(200),
            Duration::from_micros(300),
        );
        metrics.open_sockets.store(2, Ordering::Relaxed);
        metrics.push_sent("webpush", "delivered");
        metrics
    }

    #[test]
    fn each_family_is_one_block_after_its_help_and_type_lines() {
        // Arrange: two routes, so that per-route output could interleave the families.
        let metrics = sample();

        // Act
        let text = metrics.render();

        // Assert
        let mut seen: Vec<&str> = Vec::new();
        let mut typed: Vec<&str> = Vec::new();
        let mut helped: Vec<&str> = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.push(rest.split(' ').next().unwrap());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert_eq!(helped.last(), Some(&name), "{name} has its # HELP line");
                typed.push(name);
                continue;
            }
            let f = family(line);
            assert_eq!(typed.last(), Some(&f), "{line} follows its own # TYPE line");
            if seen.last() != Some(&f) {
                assert!(!seen.contains(&f), "{f} appears in two places:\n{text}");
                seen.push(f);
            }
        }
        assert_eq!(seen.len(), 15, "every family is rendered:\n{text}");
    }

    #[test]
    fn the_samples_keep_their_names_types_and_labels() {
        let text = sample().render();
        for line in [
            "# TYPE hubbub_http_requests_total counter",
            "hubbub_http_requests_total{route=\"/a\",status=\"200\"} 1",
            "hubbub_http_requests_total{route=\"/b\",status=\"404\"} 2",
            "# TYPE hubbub_http_request_seconds histogram",
            "hubbub_http_request_seconds_bucket{route=\"/a\",le=\"0.001\"} 0",
            "hubbub_http_request_seconds_bucket{route=\"/a\",le=\"0.0025\"} 1",
            "hubbub_http_request_seconds_bucket{route=\"/b\",le=\"0.05\"} 1",
            "hubbub_http_request_seconds_bucket{route=\"/b\",le=\"1\"} 2",
            "hubbub_http_request_seconds_bucket{route=\"/b\",le=\"5\"} 2",
            "hubbub_http_request_seconds_bucket{route=\"/b\",le=\"+Inf\"} 2",
            "hubbub_http_request_seconds_count{route=\"/b\"} 2",
            "# TYPE hubbub_commit_batches_total counter",
            "hubbub_commit_batches_total 1",
            "hubbub_commit_batched_writes_total 3",
            "# TYPE hubbub_commit_largest_batch gauge",
            "hubbub_commit_largest_batch 3",
            "# TYPE hubbub_commit_seconds_total counter",
            "hubbub_commit_seconds_total{phase=\"begin\"} 0.00001",
            "hubbub_commit_seconds_total{phase=\"work\"} 0.0002",
            "hubbub_commit_seconds_total{phase=\"commit\"} 0.0003",
            "hubbub_events_dispatched_total 0",
            "hubbub_fanout_deliveries_total 0",
            "hubbub_slow_consumer_closes_total 0",
            "# TYPE hubbub_open_sockets gauge",
            "hubbub_open_sockets 2",
            "# TYPE hubbub_push_sent_total counter",
            "hubbub_push_sent_total{kind=\"webpush\",outcome=\"delivered\"} 1",
            "hubbub_push_lag_events 0",
            "# TYPE hubbub_upgraded_connections gauge",
            "hubbub_upgraded_connections 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in:\n{text}");
        }
        let sum = text
            .lines()
            .find_map(|l| l.strip_prefix("hubbub_http_request_seconds_sum{route=\"/b\"} "))
            .and_then(|v| v.parse::<f64>().ok());
        assert!(sum.is_some_and(|s| (s - 0.33).abs() < 1e-9), "{text}");
    }
}
