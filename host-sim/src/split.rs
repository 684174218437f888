//! Validation data held out of the training data, as Keras's `validation_split` does it: the
//! last fraction of the samples, taken before any shuffling, never trained on.
//!
//! ```
//! use tinytrain::data::Dataset;
//! use tinytrain_sim::split::{Part, keras_split};
//! let data: Vec<([f32; 1], [f32; 1])> = (0..10).map(|i| ([i as f32], [0.0])).collect();
//! let at = keras_split(data.len(), 0.25).unwrap(); // floor(10 · 0.75) = 7
//! let (train, val) = (Part::new(&data[..], 0..at), Part::new(&data[..], at..data.len()));
//! assert_eq!((train.len(), val.len()), (7, 3));
//! let (mut x, mut t) = ([0.0], [0.0]);
//! val.get(0, &mut x, &mut t).unwrap();
//! assert_eq!(x, [7.0]);
//! ```

use core::ops::Range;

use anyhow::{Result, ensure};
use tinytrain::Error;
use tinytrain::data::Dataset;

/// The number of training samples left when the last `fraction` of `n` samples is held out:
/// `floor(n · (1 − fraction))`, as Keras computes it.
///
/// # Errors
/// A fraction outside (0, 1), or one that leaves no training or no validation sample.
pub fn keras_split(n: usize, fraction: f32) -> Result<usize> {
    ensure!(fraction > 0.0 && fraction < 1.0, "the validation split must be between 0 and 1, not {fraction}");
    let at = (n as f64 * (1.0 - f64::from(fraction))).floor() as usize;
    ensure!(at > 0, "a validation split of {fraction} leaves none of the {n} samples for training");
    ensure!(at < n, "a validation split of {fraction} holds out none of the {n} samples");
    Ok(at)
}

/// The samples `range` of a dataset, renumbered from 0.
#[derive(Debug)]
pub struct Part<'a, D: ?Sized> {
    data: &'a D,
    range: Range<usize>,
}

impl<'a, D: ?Sized> Part<'a, D> {
    /// The samples `range` of `data`.
    #[must_use]
    pub fn new(data: &'a D, range: Range<usize>) -> Self {
        Part { data, range }
    }
}

impl<X, T, D: Dataset<X, T> + ?Sized> Dataset<X, T> for Part<'_, D> {
    fn len(&self) -> usize {
        self.range.len()
    }

    fn get(&self, index: usize, x: &mut X, target: &mut T) -> Result<(), Error> {
        if index >= self.range.len() {
            return Err(Error::Empty);
        }
        self.data.get(self.range.start + index, x, target)
    }
}

/// One of two datasets of the same samples' kind: the held-out part of the training data, or
/// the test set when nothing is held out.
#[derive(Debug)]
pub enum Either<'a, A: ?Sized, B: ?Sized> {
    /// The first kind.
    Left(Part<'a, A>),
    /// The second kind.
    Right(&'a B),
}

impl<X, T, A: Dataset<X, T> + ?Sized, B: Dataset<X, T> + ?Sized> Dataset<X, T> for Either<'_, A, B> {
    fn len(&self) -> usize {
        match self {
            Either::Left(a) => a.len(),
            Either::Right(b) => b.len(),
        }
    }

    fn get(&self, index: usize, x: &mut X, target: &mut T) -> Result<(), Error> {
        match self {
            Either::Left(a) => a.get(index, x, target),
            Either::Right(b) => b.get(index, x, target),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn splits_as_keras_does() {
        assert_eq!(keras_split(1437, 0.2).unwrap(), 1149);
        assert_eq!(keras_split(1437, 0.1).unwrap(), 1293);
        assert_eq!(keras_split(4, 0.1).unwrap(), 3);
        assert!(keras_split(4, 0.9).is_err() && keras_split(10, 0.0).is_err() && keras_split(10, 1.0).is_err());
        assert!(keras_split(10, 1e-20).is_err(), "holds out nothing");
    }
}
