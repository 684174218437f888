//! Per-channel statistics over a pass of data, as `torch.optim.swa_utils.update_bn` computes
//! them for the batch normalisation layers ([`BatchNorm1d::refresh_stats`] and its siblings).
//!
//! [`BatchNorm1d::refresh_stats`]: crate::layers::BatchNorm1d::refresh_stats
//!
//! ```
//! use tinytrain::layers::BnStats;
//! let mut s = BnStats::<2>::ZERO;
//! s.add_vector(&[1.0, 10.0]);
//! s.add_vector(&[3.0, 10.0]);
//! s.end_batch().unwrap();
//! assert_eq!((s.mean(), s.var()), ([2.0, 10.0], [2.0, 0.0]));
//! ```

// Channels index several per-channel arrays at once.
#![allow(clippy::needless_range_loop)]

use crate::error::Error;

/// Welford accumulators of per-channel statistics over one batch, and the cumulative average
/// of the batches' means and unbiased variances: what `torch.optim.swa_utils.update_bn` sets
/// as `running_mean` and `running_var` (it resets them, sets `momentum = None` and runs the
/// data once in training mode, batch by batch).
///
/// # Cost
/// `4·C` floats and two counters (`size_of::<BnStats<C>>()`), on the stack of whoever runs
/// the refresh, plus one forward pass of the layers before the normalisation per sample. No
/// batch buffer: values arrive one sample at a time.
///
/// ```
/// use tinytrain::layers::BnStats;
/// let mut s = BnStats::<1>::ZERO;
/// for v in [1.0, 2.0, 3.0, 6.0] {
///     s.add(0, v);
/// }
/// s.end_batch().unwrap();
/// assert_eq!((s.mean(), s.var()), ([3.0], [14.0 / 3.0]));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BnStats<const C: usize> {
    /// Values seen per channel in the current batch.
    count: u32,
    /// Mean of the current batch.
    batch_mean: [f32; C],
    /// Sum of squared deviations of the current batch (Welford's M2).
    batch_m2: [f32; C],
    /// Batches folded in.
    batches: u32,
    /// Average of the batch means.
    mean: [f32; C],
    /// Average of the batch unbiased variances.
    var: [f32; C],
}

impl<const C: usize> BnStats<C> {
    /// Nothing seen.
    pub const ZERO: Self =
        BnStats { count: 0, batch_mean: [0.0; C], batch_m2: [0.0; C], batches: 0, mean: [0.0; C], var: [0.0; C] };

    /// Adds value `v` of channel `c` to the current batch. Values come in channel order
    /// `0..C`: one value of every channel, then the next (adding channel `C − 1` completes one).
    #[inline]
    pub fn add(&mut self, c: usize, v: f32) {
        let (Some(m), Some(m2)) = (self.batch_mean.get_mut(c), self.batch_m2.get_mut(c)) else { return };
        // Welford: the count this value brings the channel to.
        let n = (self.count + 1) as f32;
        let d = v - *m;
        *m += d / n;
        *m2 += d * (v - *m);
        if c + 1 == C {
            self.count += 1;
        }
    }

    /// Adds one value per channel.
    #[inline]
    pub fn add_vector(&mut self, x: &[f32; C]) {
        for (c, &v) in x.iter().enumerate() {
            self.add(c, v);
        }
    }

    /// Folds the current batch into the averages: its mean, and its unbiased variance
    /// (divided by `n − 1`, as PyTorch's `running_var`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the batch holds fewer than 2 values per channel (PyTorch
    /// refuses to normalise such a batch in training mode).
    pub fn end_batch(&mut self) -> Result<(), Error> {
        if self.count < 2 {
            return Err(Error::InvalidConfig("BatchNorm statistics: a batch needs 2 values per channel"));
        }
        self.batches += 1;
        let (k, n1) = (self.batches as f32, (self.count - 1) as f32);
        for c in 0..C {
            self.mean[c] += (self.batch_mean[c] - self.mean[c]) / k;
            self.var[c] += (self.batch_m2[c] / n1 - self.var[c]) / k;
        }
        self.count = 0;
        self.batch_mean = [0.0; C];
        self.batch_m2 = [0.0; C];
        Ok(())
    }

    /// Average of the batch means.
    #[must_use]
    pub fn mean(&self) -> [f32; C] {
        self.mean
    }

    /// Average of the batch unbiased variances.
    #[must_use]
    pub fn var(&self) -> [f32; C] {
        self.var
    }

    /// Batches folded in.
    #[must_use]
    pub fn batches(&self) -> u32 {
        self.batches
    }
}

/// Runs `inputs` through `add` in batches of `batch_size` and returns the statistics.
pub(crate) fn gather<T, const C: usize>(
    inputs: impl IntoIterator<Item = T>,
    batch_size: usize,
    add: impl Fn(&mut BnStats<C>, &T),
) -> Result<BnStats<C>, Error> {
    if batch_size == 0 {
        return Err(Error::InvalidConfig("BatchNorm statistics: batch_size must be > 0"));
    }
    let mut stats = BnStats::ZERO;
    let mut in_batch = 0;
    for x in inputs {
        add(&mut stats, &x);
        in_batch += 1;
        if in_batch == batch_size {
            stats.end_batch()?;
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        stats.end_batch()?;
    }
    if stats.batches == 0 {
        return Err(Error::Empty);
    }
    Ok(stats)
}
