//! A log-bucketed latency histogram in nanoseconds (HdrHistogram's layout, 1/64 precision).
//!
//! Values below 128 ns get one bucket each; above, every power-of-two range is split into 64
//! equal sub-buckets, so a recorded value is reported at most 1/64 (~1.6 %) above its true value.
//! 64 octaves x 64 sub-buckets = 4 160 `u64` counters (~33 KB) per connection, merged at the end.
//! Recording is a `leading_zeros`, two shifts and an add: no allocation on the hot path.

/// Sub-buckets per octave, as a power of two.
const SUB_BITS: u32 = 6;
/// Sub-buckets per octave.
const SUB: u64 = 1 << SUB_BITS;
/// Number of counters: the linear range [0, 2*SUB) plus SUB per remaining octave up to 2^64.
const BUCKETS: usize = ((64 - SUB_BITS) as usize) * SUB as usize + SUB as usize;

/// Latency histogram; values are nanoseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    /// Bucket index of `v`: `v` itself below `2*SUB`, else octave and top `SUB_BITS+1` bits.
    fn index(v: u64) -> usize {
        if v < 2 * SUB {
            return v as usize;
        }
        let msb = 63 - v.leading_zeros();
        let shift = msb - SUB_BITS; // v >> shift lies in [SUB, 2*SUB)
        ((shift as u64 + 1) * SUB + ((v >> shift) - SUB)) as usize
    }

    /// Highest value that falls into bucket `i` (what HdrHistogram calls the highest equivalent
    /// value): percentiles are reported at the top of their bucket, never flattered.
    fn bucket_high(i: usize) -> u64 {
        let i = i as u64;
        if i < 2 * SUB {
            return i;
        }
        let shift = i / SUB - 1;
        let low = ((i % SUB) + SUB) << shift;
        low + ((1u64 << shift) - 1)
    }

    /// Records one value (nanoseconds).
    pub fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    /// Adds every count of `other` into `self`.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += *b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Largest recorded value (exact).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` in [0, 1] (0 when empty): the top of the bucket holding the
    /// `ceil(q * n)`-th smallest value, capped at the exact maximum.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::bucket_high(i).min(self.max);
            }
        }
        self.max
    }
}

/// Self-checks run by the smoke mode (bench targets have no libtest harness).
pub fn self_check() {
    // Every index round-trips: the value lies at or below its bucket's top, within 1/64.
    let mut prev = 0;
    for v in (0..200_000u64).chain([1 << 20, (1 << 40) + 12345, u64::MAX / 3, u64::MAX]) {
        let i = Histogram::index(v);
        assert!(i < BUCKETS, "index {i} of {v} out of range");
        assert!(i >= prev || v > 200_000, "index not monotonic at {v}");
        prev = i;
        let high = Histogram::bucket_high(i);
        assert!(high >= v, "bucket top {high} below value {v}");
        assert!(high - v <= v / SUB, "bucket of {v} too wide: top {high}");
    }
    // Quantiles on a known distribution: 1..=10_000 ns.
    let mut h = Histogram::new();
    for v in 1..=10_000 {
        h.record(v);
    }
    for (q, exact) in [
        (0.5, 5_000u64),
        (0.99, 9_900),
        (0.999, 9_990),
        (1.0, 10_000),
    ] {
        let got = h.quantile(q);
        assert!(
            got >= exact && got - exact <= exact / SUB,
            "quantile {q}: got {got}, exact {exact}"
        );
    }
    let mut merged = Histogram::new();
    merged.merge(&h);
    merged.merge(&h);
    assert_eq!(merged.len(), 20_000);
    assert_eq!(merged.max(), 10_000);
    assert_eq!(merged.quantile(0.5), h.quantile(0.5));
    assert_eq!(Histogram::new().quantile(0.99), 0);
}
