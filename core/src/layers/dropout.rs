//! Inverted dropout: in training each element is zeroed with probability `PERMILLE / 1000` and
//! the survivors are scaled by `1 / (1 - p)`, so the expected output equals the input; in
//! inference the layer is the identity.
//!
//! The rate is a per-mille const (`Dropout<T, 250>` is Keras' `Dropout(0.25)`), so it is part
//! of the type and needs no config. The mask is drawn from the generator in
//! [`Mode::Train`]: the same seed gives the same masks on every target. It is kept in the
//! layer's [`Acts`](Layer::Acts) (one `f32` per element: 0 or the scale) for backward.
//!
//! # Shapes
//! `T -> T` for any tensor `T`.
//!
//! ```
//! use tinytrain::prelude::*;
//! let d = Dropout::<[f32; 4], 500>::ZERO;
//! let mut mask = [0.0f32; 4];
//! let mut y = [0.0f32; 4];
//! d.forward(&[1.0; 4], &mut mask, &mut y, &mut Mode::Infer);
//! assert_eq!(y, [1.0; 4]);
//! d.forward(&[1.0; 4], &mut mask, &mut y, &mut Mode::Train(Rng::new(3)));
//! assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
//! ```

use core::marker::PhantomData;

use crate::layer::{Layer, LayerInfo, Mode, UnitKind};
use crate::params::Leaf;
use crate::tensor::Tensor;

/// Inverted dropout over tensor `T` with drop probability `PERMILLE / 1000`.
pub struct Dropout<T, const PERMILLE: u32>(PhantomData<fn() -> T>);

impl<T, const PERMILLE: u32> core::fmt::Debug for Dropout<T, PERMILLE> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Dropout({PERMILLE}/1000)")
    }
}
impl<T, const PERMILLE: u32> Clone for Dropout<T, PERMILLE> {
    fn clone(&self) -> Self {
        Dropout(PhantomData)
    }
}
impl<T, const PERMILLE: u32> PartialEq for Dropout<T, PERMILLE> {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl<T: Tensor, const PERMILLE: u32> Dropout<T, PERMILLE> {
    const SHAPE_OK: () = assert!(PERMILLE < 1000, "Dropout: the rate must be below 1000 per mille");
    /// Drop probability.
    pub const RATE: f32 = PERMILLE as f32 / 1000.0;
    /// An element is dropped when a uniform `u32` falls below this.
    const THRESHOLD: u32 = ((PERMILLE as u64) * (1u64 << 32) / 1000) as u32;
    /// Scale of the kept elements.
    const SCALE: f32 = 1000.0 / (1000 - PERMILLE) as f32;
}

impl<T: Tensor, const PERMILLE: u32> Layer for Dropout<T, PERMILLE> {
    type Input = T;
    type Output = T;
    type Acts = T;
    const ZERO: Self = Dropout(PhantomData);

    fn forward(&self, x: &T, mask: &mut T, y: &mut T, mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        match mode {
            Mode::Train(rng) if PERMILLE > 0 => {
                for ((m, yv), &xv) in mask.flat_mut().iter_mut().zip(y.flat_mut()).zip(x.flat()) {
                    *m = if rng.next_u32() < Self::THRESHOLD { 0.0 } else { Self::SCALE };
                    *yv = xv * *m;
                }
            }
            _ => {
                mask.flat_mut().fill(1.0);
                y.flat_mut().copy_from_slice(x.flat());
            }
        }
    }

    fn backward(
        &self,
        _x: &T,
        mask: &T,
        _y: &T,
        dy: &T,
        _deltas: &mut T,
        _grads: Option<&mut Self>,
        dx: Option<&mut T>,
    ) {
        let () = Self::SHAPE_OK;
        if let Some(dx) = dx {
            for ((d, &g), &m) in dx.flat_mut().iter_mut().zip(dy.flat()).zip(mask.flat()) {
                *d = g * m;
            }
        }
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo { cache_bytes: core::mem::size_of::<T>(), ..LayerInfo::new("Dropout", T::SHAPE) });
    }

    fn visit_outputs(_mask: &T, y: &T, f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y.flat());
    }
}

impl<T: Tensor, const PERMILLE: u32> Leaf for Dropout<T, PERMILLE> {}
