//! How long accepted bytes wait before the link takes them: a small log-linear histogram of
//! sampled durations, and the summary [`Stats`](crate::Stats) shows of it.
//!
//! # Algorithm
//!
//! The state machine keeps one probe at a time: the first frame accepted while no probe is
//! out starts one (the byte count that completes it, and the time), and the write that takes
//! that many bytes ends it. So the clock is read twice per probe, not per frame, and a busy
//! connection is sampled about once per write. Each sample goes into a bucket: four buckets
//! per power of two of nanoseconds (so a quantile is within a quarter of its value), the
//! counts allocated on the first sample. The maximum is kept exactly.

use std::time::Duration;

/// Powers of two of nanoseconds the buckets cover: up to about 39 hours.
const POWERS: usize = 47;
/// Buckets per power of two.
const SUB: usize = 4;
const BUCKETS: usize = POWERS * SUB;

/// Sampled durations.
#[derive(Debug, Default, Clone)]
pub(crate) struct Histogram {
    /// Invariant: allocated once `samples > 0`, and its counts sum to `samples`.
    counts: Option<Box<[u32; BUCKETS]>>,
    samples: u64,
    max: Duration,
}

/// The bucket of `ns` nanoseconds: exact below 4, else four per power of two.
fn bucket(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let power = 63 - ns.leading_zeros() as usize; // ns >= 4, so power >= 2
    let sub = ((ns >> (power - 2)) & 3) as usize;
    (SUB * (power - 1) + sub).min(BUCKETS - 1)
}

/// The middle of a bucket, in nanoseconds.
fn middle(index: usize) -> u64 {
    if index < SUB {
        return index as u64;
    }
    let (power, sub) = (index / SUB + 1, (index % SUB) as u64);
    let low = (4 + sub) << (power - 2);
    low + (1u64 << (power - 2)) / 2
}

impl Histogram {
    pub(crate) fn record(&mut self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let counts = self.counts.get_or_insert_with(|| Box::new([0; BUCKETS]));
        let slot = &mut counts[bucket(ns)];
        *slot = slot.saturating_add(1);
        self.samples += 1;
        self.max = self.max.max(elapsed);
    }

    /// The duration that `q` (in 0..=1) of the samples did not exceed, within a bucket.
    fn quantile(&self, q: f64) -> Duration {
        let Some(counts) = &self.counts else {
            return Duration::ZERO;
        };
        let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total.max(1));
        let mut seen = 0;
        for (index, &count) in counts.iter().enumerate() {
            seen += u64::from(count);
            if seen >= rank {
                return Duration::from_nanos(middle(index)).min(self.max);
            }
        }
        self.max
    }

    pub(crate) fn summary(&self) -> WriteLatency {
        WriteLatency {
            samples: self.samples,
            p50: self.quantile(0.50),
            p99: self.quantile(0.99),
            max: self.max,
        }
    }
}

/// How long accepted bytes waited in the outgoing buffer before the link took them, in
/// [`Stats::write_latency`](crate::Stats::write_latency): from about one sample per write
/// (see the `state::latency` module), with the quantiles within a quarter of their value.
///
/// This is the time from acceptance (the send returned) to written (the link, for TCP the
/// kernel's socket buffer, took the last byte of the sampled frame), so it includes waiting
/// behind other frames and any time the peer did not read.
///
/// # Examples
///
/// ```
/// use tidegate::{Client, WriteLatency};
/// use tidegate::transport::mem::MemListener;
///
/// let listener = MemListener::bind("write-latency-example").unwrap();
/// let client = Client::connect(&listener.url()).unwrap();
/// client.send("sampled").unwrap();
/// client.flush().unwrap();
/// let latency: WriteLatency = client.stats().write_latency;
/// assert_eq!(latency.samples, 1);
/// assert!(latency.p50 <= latency.p99 && latency.p99 <= latency.max);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteLatency {
    /// How many samples were taken.
    pub samples: u64,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The longest, exactly.
    pub max: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_their_middles_fall_inside_them() {
        let mut last = 0;
        for ns in (0..10_000u64).chain([1 << 20, 1 << 40, u64::MAX]) {
            let index = bucket(ns);
            assert!(index >= last || ns > 10_000, "{ns}");
            last = index;
            if ns < 1 << 40 {
                let mid = middle(index);
                let error = mid.abs_diff(ns) as f64;
                assert!(error <= (ns as f64 / 4.0).max(1.0), "{ns} in bucket {index} around {mid}");
            }
        }
    }

    #[test]
    fn quantiles_come_from_the_samples() {
        let mut h = Histogram::default();
        assert_eq!(h.summary(), WriteLatency::default());
        for us in 1..=100u64 {
            h.record(Duration::from_micros(us));
        }
        let s = h.summary();
        assert_eq!(s.samples, 100);
        assert_eq!(s.max, Duration::from_micros(100));
        let within = |got: Duration, want: u64| {
            (got.as_nanos() as f64 - want as f64).abs() <= want as f64 / 4.0
        };
        assert!(within(s.p50, 50_000), "{s:?}");
        assert!(within(s.p99, 99_000), "{s:?}");
    }
}
