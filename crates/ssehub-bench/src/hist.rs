//! A log-linear latency histogram in microseconds (about 1.6 % resolution), mergeable across processes.

use serde_json::{json, Value};

/// Values below this are counted exactly.
const LINEAR: u64 = 128;
/// Sub-buckets per power of two above `LINEAR`.
const SUB: u64 = 64;
const BUCKETS: usize = (LINEAR + (64 - 7) * SUB) as usize;

#[derive(Clone, Debug)]
pub struct Hist {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    min: u64,
    sum: u128,
}

impl Default for Hist {
    fn default() -> Self {
        Self::new()
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let msb = 63 - u64::from(v.leading_zeros());
    let shift = msb - 6;
    let sub = (v >> shift) & (SUB - 1);
    (LINEAR + (msb - 7) * SUB + sub) as usize
}

/// Lowest value and width of bucket `i`.
fn bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < LINEAR {
        return (i, 1);
    }
    let m = (i - LINEAR) / SUB + 7;
    let sub = (i - LINEAR) % SUB;
    let shift = m - 6;
    ((SUB + sub) << shift, 1 << shift)
}

impl Hist {
    pub fn new() -> Self {
        Hist {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
            min: u64::MAX,
            sum: 0,
        }
    }

    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
        self.min = self.min.min(v);
        self.sum += u128::from(v);
    }

    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.total
    }

    #[cfg(test)]
    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at quantile `q` (0..=1): the middle of the bucket holding it, capped at the max.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, w) = bounds(i);
                return (lo + w / 2).min(self.max).max(self.min);
            }
        }
        self.max
    }

    pub fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.total += o.total;
        self.max = self.max.max(o.max);
        self.min = self.min.min(o.min);
        self.sum += o.sum;
    }

    /// Sparse form for the child → parent pipe.
    pub fn to_json(&self) -> Value {
        let buckets: Vec<[u64; 2]> = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| [i as u64, *c])
            .collect();
        json!({"b": buckets, "max": self.max, "min": self.min, "sum": self.sum as f64})
    }

    pub fn from_json(v: &Value) -> Hist {
        let mut h = Hist::new();
        if let Some(b) = v["b"].as_array() {
            for pair in b {
                let i = pair[0].as_u64().unwrap_or(0) as usize;
                let c = pair[1].as_u64().unwrap_or(0);
                if i < BUCKETS {
                    h.counts[i] += c;
                    h.total += c;
                }
            }
        }
        h.max = v["max"].as_u64().unwrap_or(0);
        h.min = v["min"].as_u64().unwrap_or(u64::MAX);
        h.sum = v["sum"].as_f64().unwrap_or(0.0) as u128;
        h
    }

    /// p50/p90/p99/max/mean in milliseconds, for reports.
    pub fn summary_ms(&self) -> Value {
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        json!({
            "count": self.total,
            "p50_ms": ms(self.quantile(0.50)),
            "p90_ms": ms(self.quantile(0.90)),
            "p99_ms": ms(self.quantile(0.99)),
            "max_ms": ms(self.max),
            "mean_ms": (self.mean() / 1000.0 * 1000.0).round() / 1000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_bounds_agree() {
        for v in (0..5000u64).chain([1 << 20, (1 << 20) + 12345, 60_000_000, u64::MAX / 2]) {
            let (lo, w) = bounds(index(v));
            assert!(lo <= v && v < lo + w, "v={v} lo={lo} w={w}");
            assert!(w * 60 <= lo.max(64), "resolution too coarse at {v}");
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_and_merge() {
        let mut a = Hist::new();
        for v in 1..=1000 {
            a.record(v);
        }
        let p50 = a.quantile(0.5);
        assert!((490..=510).contains(&p50), "{p50}");
        assert_eq!(a.quantile(1.0), 1000);
        let b = Hist::from_json(&a.to_json());
        let mut c = Hist::new();
        c.merge(&b);
        c.merge(&a);
        assert_eq!(c.count(), 2000);
        assert_eq!(c.max(), 1000);
        assert_eq!(c.quantile(0.99), a.quantile(0.99));
    }
}
