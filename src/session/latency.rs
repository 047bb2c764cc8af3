//! The latency flux itself adds, measured inside the session and reported in `flux.summary`:
//! how long a frame waits between being ready and being written to the socket, and how long a
//! server message waits between arriving and its output being written.
//!
//! Durations go into a fixed histogram (10 µs buckets up to 50 ms, then the overflow keeps
//! only its count and the maximum), so memory stays flat however long the stream runs.

pub use crate::event::{AddedLatency, LatencySummary};
use std::time::Duration;

const BUCKET_MICROS: u64 = 10;
const BUCKETS: usize = 5_000;

/// A histogram of durations with 10 µs resolution.
pub struct Histogram {
    buckets: Box<[u32]>,
    count: u64,
    /// Samples at or beyond the last bucket.
    over: u64,
    max: Duration,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            over: 0,
            max: Duration::ZERO,
        }
    }
}

/// The counts only: 5,000 buckets are no one's debugging aid.
impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("max", &self.max)
            .finish()
    }
}

impl Histogram {
    pub fn record(&mut self, d: Duration) {
        self.count += 1;
        self.max = self.max.max(d);
        let bucket = usize::try_from(d.as_micros() / u128::from(BUCKET_MICROS)).unwrap_or(BUCKETS);
        match self.buckets.get_mut(bucket) {
            Some(n) => *n = n.saturating_add(1),
            None => self.over += 1,
        }
    }

    /// Adds every sample of `other` (a load test merges its streams' histograms).
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *a = a.saturating_add(*b);
        }
        self.count += other.count;
        self.over += other.over;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (0 < q ≤ 1) in milliseconds: the upper edge of the bucket holding it,
    /// so the figure is never optimistic; the maximum where it falls past the last bucket.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let rank = ((self.count as f64 * q).ceil() as u64).clamp(1, self.count);
        let mut seen = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                let edge = Duration::from_micros((i as u64 + 1) * BUCKET_MICROS);
                return ms(edge.min(self.max));
            }
        }
        ms(self.max)
    }

    /// p50, p99 and the maximum, or `None` before anything was recorded.
    pub fn summary(&self) -> Option<LatencySummary> {
        (self.count > 0).then(|| LatencySummary {
            count: self.count,
            p50_ms: self.quantile_ms(0.50),
            p99_ms: self.quantile_ms(0.99),
            max_ms: ms(self.max),
        })
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_histogram_has_no_summary() {
        assert_eq!(Histogram::default().summary(), None);
    }

    #[test]
    fn quantiles_are_bucket_upper_edges() {
        let mut h = Histogram::default();
        // 98 fast samples, two slow ones: p50 is in the fast bucket, p99 in the slow one.
        for _ in 0..98 {
            h.record(Duration::from_micros(123));
        }
        h.record(Duration::from_micros(2_345));
        h.record(Duration::from_micros(2_349));
        let s = h.summary().expect("recorded");
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_ms, 0.13);
        assert_eq!(s.p99_ms, 2.349); // the bucket edge (2.35) is capped at the maximum
        assert_eq!(s.max_ms, 2.349);
    }

    #[test]
    fn merged_histograms_hold_both_sets_of_samples() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for _ in 0..3 {
            a.record(Duration::from_micros(100));
        }
        b.record(Duration::from_micros(900));
        b.record(Duration::from_secs(1));
        a.merge(&b);
        assert_eq!(a.count(), 5);
        assert_eq!(a.quantile_ms(0.5), 0.11); // upper bucket edges
        assert_eq!(a.quantile_ms(0.8), 0.91);
        assert_eq!(a.quantile_ms(1.0), 1000.0);
    }

    #[test]
    fn overflow_reports_the_maximum() {
        let mut h = Histogram::default();
        h.record(Duration::from_micros(5));
        h.record(Duration::from_secs(3));
        let s = h.summary().expect("recorded");
        assert_eq!(s.p50_ms, 0.01);
        assert_eq!(s.p99_ms, 3000.0);
        assert_eq!(s.max_ms, 3000.0);
    }

    #[test]
    fn a_single_sample_is_every_quantile() {
        let mut h = Histogram::default();
        h.record(Duration::from_micros(40));
        let s = h.summary().expect("recorded");
        assert_eq!((s.p50_ms, s.p99_ms, s.max_ms), (0.04, 0.04, 0.04));
    }
}
