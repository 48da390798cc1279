//! Percentiles from a sorted `Vec` (no histogram crate), result rows, the table and JSON lines.

use std::time::Duration;

use serde_json::{json, Value};

/// Latency figures in microseconds, from all samples (sorted once).
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub count: usize,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Latency {
    /// Summarises `samples` (microseconds); empty gives zeros.
    pub fn of(mut samples: Vec<u64>) -> Latency {
        if samples.is_empty() {
            return Latency::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            // Nearest rank: the smallest sample with at least q of the samples at or below it.
            let rank = (q * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1]
        };
        Latency {
            count: samples.len(),
            p50_us: at(0.50),
            p90_us: at(0.90),
            p99_us: at(0.99),
            max_us: *samples.last().unwrap_or(&0),
        }
    }

    fn json(&self) -> Value {
        json!({
            "samples": self.count,
            "p50_ms": ms(self.p50_us),
            "p90_ms": ms(self.p90_us),
            "p99_ms": ms(self.p99_us),
            "max_ms": ms(self.max_us),
        })
    }
}

/// Microseconds as milliseconds with three decimals (for JSON).
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Microseconds of a duration, saturating.
pub fn us(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

/// One line of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    /// Operations per second (sends, requests, delivered events), if the scenario has a rate.
    pub rate: Option<f64>,
    pub latency: Option<Latency>,
    /// Failed operations (non-201 answers, missing deliveries, sockets that didn't open).
    pub errors: u64,
    /// Free text: what was measured, error kinds, memory figures.
    pub note: String,
    /// Extra machine-readable figures for `--json`.
    pub extra: Value,
}

impl Row {
    pub fn new(scenario: impl Into<String>) -> Row {
        Row {
            scenario: scenario.into(),
            rate: None,
            latency: None,
            errors: 0,
            note: String::new(),
            extra: json!({}),
        }
    }

    pub fn json(&self, backend: &str) -> Value {
        json!({
            "scenario": self.scenario,
            "backend": backend,
            "rate_per_s": self.rate.map(|r| r.round()),
            "latency": self.latency.map(|l| l.json()),
            "errors": self.errors,
            "note": self.note,
            "extra": self.extra,
        })
    }
}

fn cell(us: Option<u64>) -> String {
    us.map(|v| format!("{:.2}", v as f64 / 1000.0))
        .unwrap_or_else(|| "-".into())
}

/// The table header.
pub fn header() -> String {
    format!(
        "{:<22} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7}  {}",
        "scenario", "per s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "note"
    )
}

/// One row of the table.
pub fn line(row: &Row) -> String {
    let l = row.latency;
    format!(
        "{:<22} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7}  {}",
        row.scenario,
        row.rate
            .map(|r| format!("{r:.0}"))
            .unwrap_or_else(|| "-".into()),
        cell(l.map(|l| l.p50_us)),
        cell(l.map(|l| l.p90_us)),
        cell(l.map(|l| l.p99_us)),
        cell(l.map(|l| l.max_us)),
        row.errors,
        row.note
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Latency::of((1..=100).collect());
        assert_eq!((l.p50_us, l.p90_us, l.p99_us, l.max_us), (50, 90, 99, 100));
        assert_eq!(Latency::of(vec![7]).p99_us, 7);
        assert_eq!(Latency::of(vec![]).count, 0);
    }
}
