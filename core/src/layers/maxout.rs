//! Maxout (Goodfellow et al. 2013): `K` linear pieces per output, `y_o = max_k (W_k x + b_k)_o`.
//!
//! # Layout
//! The pieces are one linear layer of `O·K` outputs, output `o` taking rows `o·K .. o·K + K`:
//! PyTorch `nn.Linear(I, O * K)` followed by `z.view(-1, O, K).max(dim=-1)`, the usual
//! implementation. So `weight` is `[O·K, I]` in PyTorch (`[I, O·K]` as a Keras `kernel`) and
//! `bias` is `[O·K]`; Rust stores them as `[[[f32; I]; K]; O]` and `[[f32; K]; O]`, the same
//! values in the same order.
//!
//! The gradient goes to the winning piece only, the **first** maximum on ties (PyTorch CPU's
//! `max(dim)`). The winner of each output is kept between forward and backward (`Acts`,
//! one `usize` per output).
//!
//! # Shapes
//! `[f32; I] -> [f32; O]`; `O·K·I + O·K` parameters.
//!
//! ```
//! use tinytrain::prelude::*;
//! // One output, two pieces: |x| = max(x, -x).
//! let mut m = Maxout::<1, 1, 2>::ZERO;
//! m.weight = [[[1.0], [-1.0]]];
//! let (mut winner, mut y) = ([0], [0.0]);
//! m.forward(&[-3.0], &mut winner, &mut y, &mut Mode::Infer);
//! assert_eq!((y, winner), ([3.0], [1]));
//! ```

use crate::init::Init;
use crate::kernels::{axpy, dot};
use crate::layer::{Layer, LayerInfo, Mode, UnitKind};
use crate::params::{Leaf, TensorDesc};
use crate::rng::Rng;

/// Maxout with `I` inputs, `O` outputs and `K` pieces per output.
#[derive(Debug, Clone, PartialEq)]
pub struct Maxout<const I: usize, const O: usize, const K: usize> {
    /// Weight, `[O·K, I]` in PyTorch (row `o·K + k` is piece `k` of output `o`).
    pub weight: [[[f32; I]; K]; O],
    /// Bias, `[O·K]`.
    pub bias: [[f32; K]; O],
}

impl<const I: usize, const O: usize, const K: usize> Maxout<I, O, K> {
    const SHAPE_OK: () = assert!(I > 0 && O > 0 && K > 0, "Maxout: zero inputs, outputs or pieces");
}

impl<const I: usize, const O: usize, const K: usize> Layer for Maxout<I, O, K> {
    type Input = [f32; I];
    type Output = [f32; O];
    /// The winning piece of each output.
    type Acts = [usize; O];
    const ZERO: Self = Maxout { weight: [[[0.0; I]; K]; O], bias: [[0.0; K]; O] };

    #[inline]
    fn forward(&self, x: &[f32; I], winner: &mut [usize; O], y: &mut [f32; O], _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        for (((yo, wo), bo), win) in y.iter_mut().zip(&self.weight).zip(&self.bias).zip(winner.iter_mut()) {
            let mut best = (0, f32::NEG_INFINITY);
            for (k, (w, b)) in wo.iter().zip(bo).enumerate() {
                let z = dot(w, x) + b;
                // Strictly greater: on ties the first maximum wins, as PyTorch's max(dim).
                if k == 0 || z > best.1 {
                    best = (k, z);
                }
            }
            *win = best.0;
            *yo = best.1;
        }
    }

    #[inline]
    fn backward(
        &self,
        x: &[f32; I],
        winner: &[usize; O],
        _y: &[f32; O],
        dy: &[f32; O],
        _deltas: &mut [usize; O],
        grads: Option<&mut Self>,
        dx: Option<&mut [f32; I]>,
    ) {
        let () = Self::SHAPE_OK;
        if let Some(grads) = grads {
            for (((gw, gb), &k), &d) in grads.weight.iter_mut().zip(&mut grads.bias).zip(winner).zip(dy) {
                if let (Some(gw), Some(gb)) = (gw.get_mut(k), gb.get_mut(k)) {
                    *gb += d;
                    if d != 0.0 {
                        axpy(d, x, gw);
                    }
                }
            }
        }
        if let Some(dx) = dx {
            dx.fill(0.0);
            for ((w, &k), &d) in self.weight.iter().zip(winner).zip(dy) {
                if let Some(w) = w.get(k) {
                    axpy(d, w, dx);
                }
            }
        }
    }

    /// Initialises the `O·K` pieces as one linear layer of `I` inputs and `O·K` outputs.
    fn init_with(&mut self, init: Init, rng: &mut Rng) {
        init.fill(self.weight.as_flattened_mut().as_flattened_mut(), self.bias.as_flattened_mut(), I, O * K, rng);
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo { cache_bytes: core::mem::size_of::<[usize; O]>(), ..LayerInfo::new("Maxout", [O, 0, 0]) }
            .with_tensors(Self::TENSORS, "maxout", "tinytrain::layers::Maxout"));
    }

    fn visit_outputs(_acts: &[usize; O], y: &[f32; O], f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y);
    }
}

impl<const I: usize, const O: usize, const K: usize> Leaf for Maxout<I, O, K> {
    const TENSORS: &'static [TensorDesc] =
        &[TensorDesc::kernel(&[O * K, I]).stored_as(&[O, K, I]), TensorDesc::bias(&[O * K]).stored_as(&[O, K])];

    #[inline]
    fn tensor(&self, i: usize) -> &[f32] {
        if i == 0 { self.weight.as_flattened().as_flattened() } else { self.bias.as_flattened() }
    }

    #[inline]
    fn tensor_mut(&mut self, i: usize) -> &mut [f32] {
        if i == 0 { self.weight.as_flattened_mut().as_flattened_mut() } else { self.bias.as_flattened_mut() }
    }
}
