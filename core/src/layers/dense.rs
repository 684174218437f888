//! Fully connected layer, `y = W x + b`.
//!
//! The weight is stored `[out][in]` like PyTorch's `nn.Linear` (a Keras kernel is its
//! transpose).
//!
//! # Shapes
//! `[f32; I] -> [f32; O]`; `I * O + O` parameters.
//!
//! ```
//! use tinytrain::prelude::*;
//! let mut d = Dense::<2, 1>::ZERO;
//! d.weight = [[1.0, 2.0]];
//! d.bias = [0.5];
//! let mut y = [0.0];
//! d.predict(&[3.0, 4.0], &mut (), &mut y);
//! assert_eq!(y, [11.5]);
//! ```

use crate::init::Init;
use crate::kernels::{axpy, dot};
use crate::layer::{Layer, LayerInfo, Mode, UnitKind};
use crate::rng::Rng;

/// Fully connected layer with `I` inputs and `O` outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense<const I: usize, const O: usize> {
    /// Weight, `[out][in]` (PyTorch layout).
    pub weight: [[f32; I]; O],
    /// Bias.
    pub bias: [f32; O],
}

impl<const I: usize, const O: usize> Dense<I, O> {
    const SHAPE_OK: () = assert!(I > 0 && O > 0, "Dense: zero-sized layer");
}

impl<const I: usize, const O: usize> Layer for Dense<I, O> {
    type Input = [f32; I];
    type Output = [f32; O];
    type Acts = ();
    const NUM_PARAMS: usize = I * O + O;
    const ZERO: Self = Dense { weight: [[0.0; I]; O], bias: [0.0; O] };

    #[inline]
    fn forward(&self, x: &[f32; I], _acts: &mut (), y: &mut [f32; O], _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        for ((yo, w), b) in y.iter_mut().zip(&self.weight).zip(&self.bias) {
            *yo = dot(w, x) + b;
        }
    }

    #[inline]
    fn backward(
        &self,
        x: &[f32; I],
        _acts: &(),
        _y: &[f32; O],
        dy: &[f32; O],
        _deltas: &mut (),
        grads: &mut Self,
        dx: Option<&mut [f32; I]>,
    ) {
        let () = Self::SHAPE_OK;
        for ((gw, gb), &d) in grads.weight.iter_mut().zip(&mut grads.bias).zip(dy) {
            *gb += d;
            axpy(d, x, gw);
        }
        if let Some(dx) = dx {
            dx.fill(0.0);
            for (w, &d) in self.weight.iter().zip(dy) {
                axpy(d, w, dx);
            }
        }
    }

    fn init_with(&mut self, init: Init, rng: &mut Rng) {
        init.fill(self.weight.as_flattened_mut(), &mut self.bias, I, O, rng);
    }

    fn for_each_param(&self, f: &mut impl FnMut(&[f32])) {
        f(self.weight.as_flattened());
        f(&self.bias);
    }

    fn for_each_param_mut(&mut self, f: &mut impl FnMut(&mut [f32])) {
        f(self.weight.as_flattened_mut());
        f(&mut self.bias);
    }

    fn zip_params(&mut self, other: &Self, f: &mut impl FnMut(&mut [f32], &[f32])) {
        f(self.weight.as_flattened_mut(), other.weight.as_flattened());
        f(&mut self.bias, &other.bias);
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo {
            name: "Dense",
            output_shape: [O, 0, 0],
            params: Self::NUM_PARAMS,
            output_bytes: 0,
            cache_bytes: 0,
        });
    }

    fn visit_outputs(_acts: &(), y: &[f32; O], f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y);
    }
}
