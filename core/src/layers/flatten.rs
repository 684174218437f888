//! Flattens a CHW tensor into a vector in row-major (C, then H, then W) order, like PyTorch's
//! `nn.Flatten` on NCHW.
//!
//! Keras flattens channels-last tensors (H, W, C order), so a Keras `Dense` after `Flatten`
//! sees its inputs in another order; the layer maths is the same.
//!
//! # Shapes
//! `[[[f32; W]; H]; C] -> [f32; N]` with `N == C·H·W` (a build error otherwise).
//!
//! ```
//! use tinytrain::prelude::*;
//! let x = [[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]];
//! let mut y = [0.0; 8];
//! Flatten::<2, 2, 2, 8>::ZERO.predict(&x, &mut (), &mut y);
//! assert_eq!(y, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
//! ```

use crate::layer::{Layer, LayerInfo, Mode, UnitKind};
use crate::params::Leaf;

/// CHW to a vector of `N = C·H·W`.
#[derive(Debug, Clone, PartialEq)]
pub struct Flatten<const C: usize, const H: usize, const W: usize, const N: usize>;

impl<const C: usize, const H: usize, const W: usize, const N: usize> Flatten<C, H, W, N> {
    const SHAPE_OK: () = assert!(N == C * H * W && N > 0, "Flatten: N != C * H * W");
}

impl<const C: usize, const H: usize, const W: usize, const N: usize> Layer for Flatten<C, H, W, N> {
    type Input = [[[f32; W]; H]; C];
    type Output = [f32; N];
    type Acts = ();
    const ZERO: Self = Flatten;

    fn forward(&self, x: &Self::Input, _acts: &mut (), y: &mut [f32; N], _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        y.copy_from_slice(x.as_flattened().as_flattened());
    }

    fn backward(
        &self,
        _x: &Self::Input,
        _acts: &(),
        _y: &[f32; N],
        dy: &[f32; N],
        _deltas: &mut (),
        _grads: Option<&mut Self>,
        dx: Option<&mut Self::Input>,
    ) {
        let () = Self::SHAPE_OK;
        if let Some(dx) = dx {
            dx.as_flattened_mut().as_flattened_mut().copy_from_slice(dy);
        }
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("Flatten", [N, 0, 0]));
    }

    fn visit_outputs(_acts: &(), y: &[f32; N], f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y);
    }
}

impl<const C: usize, const H: usize, const W: usize, const N: usize> Leaf for Flatten<C, H, W, N> {}
