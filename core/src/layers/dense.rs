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
use crate::kernels::{dense_forward, dense_grads, dense_input_grad};
use crate::layer::{Layer, LayerInfo, Mode, UnitKind};
use crate::params::{Leaf, TensorDesc};
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
    const ZERO: Self = Dense { weight: [[0.0; I]; O], bias: [0.0; O] };

    #[inline]
    fn forward(&self, x: &[f32; I], _acts: &mut (), y: &mut [f32; O], _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        dense_forward(&self.weight, x, &self.bias, y);
    }

    #[inline]
    fn predict4(&self, x: [&[f32; I]; 4], _acts: [&mut (); 4], y: [&mut [f32; O]; 4]) {
        let () = Self::SHAPE_OK;
        // Each weight row is loaded once for the four samples; each sum is `dot`'s.
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        crate::kernels::host::dense_predict4(&self.weight, &self.bias, x, y);
        #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
        crate::kernels::dense_predict4_portable(&self.weight, &self.bias, x, y);
    }

    #[inline]
    fn backward(
        &self,
        x: &[f32; I],
        _acts: &(),
        _y: &[f32; O],
        dy: &[f32; O],
        _deltas: &mut (),
        grads: Option<&mut Self>,
        dx: Option<&mut [f32; I]>,
    ) {
        let () = Self::SHAPE_OK;
        if let Some(grads) = grads {
            // Rows whose upstream gradient is zero (a ReLU that did not fire) are skipped.
            dense_grads(x, dy, &mut grads.weight, &mut grads.bias);
        }
        if let Some(dx) = dx {
            dense_input_grad(&self.weight, dy, dx);
        }
    }

    fn init_with(&mut self, init: Init, rng: &mut Rng) {
        init.fill(self.weight.as_flattened_mut(), &mut self.bias, I, O, rng);
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("Dense", [O, 0, 0]).with_tensors(Self::TENSORS, "fc", "tinytrain::layers::Dense"));
    }

    fn visit_outputs(_acts: &(), y: &[f32; O], f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y);
    }
}

impl<const I: usize, const O: usize> Leaf for Dense<I, O> {
    const TENSORS: &'static [TensorDesc] = &[TensorDesc::kernel(&[O, I]), TensorDesc::bias(&[O])];

    #[inline]
    fn tensor(&self, i: usize) -> &[f32] {
        if i == 0 { self.weight.as_flattened() } else { &self.bias }
    }

    #[inline]
    fn tensor_mut(&mut self, i: usize) -> &mut [f32] {
        if i == 0 { self.weight.as_flattened_mut() } else { &mut self.bias }
    }
}
