//! Datasets: anything that can hand out sample `i` into a caller's buffer.
//!
//! No batch-sized buffers: the training loop asks for one sample at a time, so a dataset can
//! live in flash as bytes and be scaled to `f32` on the fly ([`ByteImages`]).
//!
//! ```
//! use tinytrain::data::{ByteImages, Dataset};
//! let pixels = [0u8, 16, 8, 4];
//! let labels = [1u8, 0];
//! let ds = ByteImages::new(&pixels, &labels, 2, 1.0 / 16.0, 2).unwrap();
//! let (mut x, mut t) = ([0.0f32; 2], 0usize);
//! ds.get(1, &mut x, &mut t).unwrap();
//! assert_eq!((x, t), ([0.5, 0.25], 0));
//! ```

use crate::error::Error;
use crate::tensor::Tensor;

/// A random-access collection of `(input, target)` samples.
pub trait Dataset<X, T> {
    /// Number of samples.
    fn len(&self) -> usize;

    /// `true` when there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes sample `index` into `x` and `target`.
    ///
    /// # Errors
    /// [`Error::Empty`] when `index` is out of range; whatever the source reports.
    fn get(&self, index: usize, x: &mut X, target: &mut T) -> Result<(), Error>;
}

impl<X: Clone, T: Clone> Dataset<X, T> for [(X, T)] {
    fn len(&self) -> usize {
        <[(X, T)]>::len(self)
    }

    fn get(&self, index: usize, x: &mut X, target: &mut T) -> Result<(), Error> {
        let (a, b) = <[(X, T)]>::get(self, index).ok_or(Error::Empty)?;
        x.clone_from(a);
        target.clone_from(b);
        Ok(())
    }
}

/// Images of `sample_len` bytes each with one class label per image, scaled to `f32` when
/// read into any tensor of `sample_len` elements (a vector for an MLP, CHW for a CNN).
#[derive(Debug, Clone, Copy)]
pub struct ByteImages<'a> {
    pixels: &'a [u8],
    labels: &'a [u8],
    sample_len: usize,
    scale: f32,
}

impl<'a> ByteImages<'a> {
    /// Wraps `pixels` (`len · sample_len` bytes) and `labels` (`len` bytes, each below
    /// `classes`); pixel `p` reads as `p · scale`.
    ///
    /// # Errors
    /// [`Error::ShapeMismatch`] when the pixel count is not `N` per label;
    /// [`Error::LabelOutOfRange`] for a label `>= classes`; [`Error::InvalidConfig`] for a
    /// non-finite scale.
    pub fn new(
        pixels: &'a [u8],
        labels: &'a [u8],
        sample_len: usize,
        scale: f32,
        classes: usize,
    ) -> Result<Self, Error> {
        if !scale.is_finite() {
            return Err(Error::InvalidConfig("pixel scale must be finite"));
        }
        if sample_len == 0 || Some(pixels.len()) != labels.len().checked_mul(sample_len) {
            return Err(Error::ShapeMismatch {
                expected: sample_len,
                found: if labels.is_empty() { pixels.len() } else { pixels.len() / labels.len() },
            });
        }
        if let Some(&bad) = labels.iter().find(|&&l| usize::from(l) >= classes) {
            return Err(Error::LabelOutOfRange { label: usize::from(bad), classes });
        }
        Ok(ByteImages { pixels, labels, sample_len, scale })
    }

    /// The raw bytes of image `index`, if it exists.
    #[must_use]
    pub fn image(&self, index: usize) -> Option<&'a [u8]> {
        let start = index.checked_mul(self.sample_len)?;
        self.pixels.get(start..start.checked_add(self.sample_len)?)
    }

    /// The label of image `index`, if it exists.
    #[must_use]
    pub fn label(&self, index: usize) -> Option<u8> {
        self.labels.get(index).copied()
    }

    /// Bytes per image.
    #[must_use]
    pub fn sample_len(&self) -> usize {
        self.sample_len
    }
}

impl<X: Tensor> Dataset<X, usize> for ByteImages<'_> {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn get(&self, index: usize, x: &mut X, target: &mut usize) -> Result<(), Error> {
        if X::LEN != self.sample_len {
            return Err(Error::ShapeMismatch { expected: X::LEN, found: self.sample_len });
        }
        let (img, label) = self.image(index).zip(self.label(index)).ok_or(Error::Empty)?;
        for (xi, &p) in x.flat_mut().iter_mut().zip(img) {
            *xi = f32::from(p) * self.scale;
        }
        *target = usize::from(label);
        Ok(())
    }
}
