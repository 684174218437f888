//! Fixed-size tensors: nested `f32` arrays whose shape is part of the type.
//!
//! `[f32; N]` is a vector, `[[f32; W]; H]` a matrix and `[[[f32; W]; H]; C]` a CHW image.
//! [`Tensor`] gives each of them a flat view without `unsafe` and a `const ZERO`.
//!
//! ```
//! use tinytrain::{Tensor, Zero};
//! let mut x = <[[f32; 3]; 2]>::ZERO;
//! x.flat_mut()[4] = 1.0;
//! assert_eq!(x[1][1], 1.0);
//! assert_eq!(<[[f32; 3]; 2] as Tensor>::SHAPE, [2, 3, 0]);
//! ```

/// A value with an all-zero constant, usable in `const` and `static` items.
pub trait Zero: Sized {
    /// The all-zero value.
    const ZERO: Self;
}

impl Zero for () {
    const ZERO: Self = ();
}

impl Zero for f32 {
    const ZERO: Self = 0.0;
}

impl Zero for usize {
    const ZERO: Self = 0;
}

impl Zero for u8 {
    const ZERO: Self = 0;
}

impl Zero for bool {
    const ZERO: Self = false;
}

impl<T: Zero, const N: usize> Zero for [T; N] {
    const ZERO: Self = [T::ZERO; N];
}

/// A fixed-size `f32` tensor with a flat view.
pub trait Tensor: Zero {
    /// Number of elements.
    const LEN: usize;
    /// Number of dimensions (1 to 3).
    const RANK: usize;
    /// Dimensions, outermost first, unused ones 0.
    const SHAPE: [usize; 3];
    /// All elements in row-major order.
    fn flat(&self) -> &[f32];
    /// All elements in row-major order, mutable.
    fn flat_mut(&mut self) -> &mut [f32];
}

impl<const N: usize> Tensor for [f32; N] {
    const LEN: usize = N;
    const RANK: usize = 1;
    const SHAPE: [usize; 3] = [N, 0, 0];
    #[inline]
    fn flat(&self) -> &[f32] {
        self
    }
    #[inline]
    fn flat_mut(&mut self) -> &mut [f32] {
        self
    }
}

impl<const H: usize, const W: usize> Tensor for [[f32; W]; H] {
    const LEN: usize = H * W;
    const RANK: usize = 2;
    const SHAPE: [usize; 3] = [H, W, 0];
    #[inline]
    fn flat(&self) -> &[f32] {
        self.as_flattened()
    }
    #[inline]
    fn flat_mut(&mut self) -> &mut [f32] {
        self.as_flattened_mut()
    }
}

impl<const C: usize, const H: usize, const W: usize> Tensor for [[[f32; W]; H]; C] {
    const LEN: usize = C * H * W;
    const RANK: usize = 3;
    const SHAPE: [usize; 3] = [C, H, W];
    #[inline]
    fn flat(&self) -> &[f32] {
        self.as_flattened().as_flattened()
    }
    #[inline]
    fn flat_mut(&mut self) -> &mut [f32] {
        self.as_flattened_mut().as_flattened_mut()
    }
}

/// Index of the largest element (the first one on ties); 0 for an empty slice.
#[must_use]
pub fn argmax(x: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best
}
