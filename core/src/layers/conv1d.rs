//! 1-D convolution (cross-correlation, as in PyTorch and Keras) with stride, zero padding and
//! bias, on channels-first sequences like PyTorch's `nn.Conv1d`.
//!
//! The weight is stored `[out][in][k]` like PyTorch's `nn.Conv1d` (a Keras `Conv1D` kernel is
//! `[k][in][out]`, [`KerasLayout::Kernel`](crate::params::KerasLayout::Kernel)). Keras'
//! `Conv1D` takes channels-last sequences `[L, C]`; here, as in PyTorch, a sequence is
//! `[[f32; L]; C]`.
//!
//! # Shapes
//! `[[f32; L]; CI] -> [[f32; LO]; CO]` with `LO = (L + 2P - K) / S + 1` (floor, see
//! [`conv_out`]); `CO·CI·K + CO` parameters. A wrong `LO` fails to build.
//!
//! # Kernels
//! Direct convolution: each output adds its terms in the order `(ci, k)` and then the bias;
//! the weight gradient of each tap sums over the output positions in order, the input
//! gradient over `(co, k)`. Sequences are short on a microcontroller; this layer is not tiled.
//!
//! ```
//! use tinytrain::prelude::*;
//! // 1 input channel, 1 filter of 2 taps, stride 1, no padding: 4 -> 3.
//! let mut c = Conv1d::<1, 1, 2, 1, 0, 4, 3>::ZERO;
//! c.weight = [[[1.0, -1.0]]];
//! c.bias = [0.5];
//! let mut y = [[0.0; 3]];
//! c.predict(&[[1.0, 2.0, 4.0, 8.0]], &mut (), &mut y);
//! assert_eq!(y, [[-0.5, -1.5, -3.5]]);
//! ```

// Taps index the weight row and the input row together.
#![allow(clippy::needless_range_loop)]

use crate::init::Init;
use crate::layer::{Layer, LayerInfo, Mode, UnitKind};
use crate::layers::conv2d::valid_range;
use crate::params::{Leaf, TensorDesc};
use crate::rng::Rng;
use crate::shape::conv_out;

/// 1-D convolution: `CI` input channels, `CO` filters of `K` taps, stride `S`, zero padding
/// `P` on each side, input length `L`, output length `LO`.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv1d<
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const L: usize,
    const LO: usize,
> {
    /// Filters, `[out][in][k]` (PyTorch layout).
    pub weight: [[[f32; K]; CI]; CO],
    /// Bias per filter.
    pub bias: [f32; CO],
}

impl<const CI: usize, const CO: usize, const K: usize, const S: usize, const P: usize, const L: usize, const LO: usize>
    Conv1d<CI, CO, K, S, P, L, LO>
{
    const SHAPE_OK: () = {
        assert!(CI > 0 && CO > 0 && K > 0 && S > 0, "Conv1d: zero channel count, kernel or stride");
        assert!(K <= L + 2 * P, "Conv1d: kernel larger than the padded input");
        assert!(LO == conv_out(L, K, S, P), "Conv1d: LO != (L + 2P - K) / S + 1");
    };
}

impl<const CI: usize, const CO: usize, const K: usize, const S: usize, const P: usize, const L: usize, const LO: usize>
    Layer for Conv1d<CI, CO, K, S, P, L, LO>
{
    type Input = [[f32; L]; CI];
    type Output = [[f32; LO]; CO];
    type Acts = ();
    const ZERO: Self = Conv1d { weight: [[[0.0; K]; CI]; CO], bias: [0.0; CO] };

    fn forward(&self, x: &Self::Input, _acts: &mut (), y: &mut Self::Output, _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        for ((yc, wco), &b) in y.iter_mut().zip(&self.weight).zip(&self.bias) {
            for (o, yv) in yc.iter_mut().enumerate() {
                // Taps k with o*S + k - P inside 0..L.
                let (k_lo, k_hi) = valid_range(K, L, 1, o * S, P);
                let mut acc = 0.0f32;
                for (xr, wr) in x.iter().zip(wco) {
                    for k in k_lo..k_hi {
                        acc += wr[k] * xr[o * S + k - P];
                    }
                }
                *yv = acc + b;
            }
        }
    }

    fn backward(
        &self,
        x: &Self::Input,
        _acts: &(),
        _y: &Self::Output,
        dy: &Self::Output,
        _deltas: &mut (),
        grads: Option<&mut Self>,
        dx: Option<&mut Self::Input>,
    ) {
        let () = Self::SHAPE_OK;
        if let Some(grads) = grads {
            for ((gwco, gb), dyc) in grads.weight.iter_mut().zip(&mut grads.bias).zip(dy) {
                let mut s = 0.0f32;
                for &d in dyc {
                    s += d;
                }
                *gb += s;
                for (gwr, xr) in gwco.iter_mut().zip(x) {
                    for (k, gw) in gwr.iter_mut().enumerate() {
                        let (lo, hi) = valid_range(LO, L, S, k, P);
                        let mut acc = 0.0f32;
                        for o in lo..hi {
                            acc += dyc[o] * xr[o * S + k - P];
                        }
                        *gw += acc;
                    }
                }
            }
        }
        if let Some(dx) = dx {
            for dxr in dx.iter_mut() {
                dxr.fill(0.0);
            }
            for (dyc, wco) in dy.iter().zip(&self.weight) {
                for (dxr, wr) in dx.iter_mut().zip(wco) {
                    for (k, &wv) in wr.iter().enumerate() {
                        let (lo, hi) = valid_range(LO, L, S, k, P);
                        for o in lo..hi {
                            dxr[o * S + k - P] += wv * dyc[o];
                        }
                    }
                }
            }
        }
    }

    fn init_with(&mut self, init: Init, rng: &mut Rng) {
        let flat = self.weight.as_flattened_mut().as_flattened_mut();
        init.fill(flat, &mut self.bias, CI * K, CO * K, rng);
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("Conv1D", [CO, LO, 0])
            .with_tensors(Self::TENSORS, "conv", "tinytrain::layers::Conv1d")
            .with_window(K, S, P));
    }

    fn visit_outputs(_acts: &(), y: &Self::Output, f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y.as_flattened());
    }
}

impl<const CI: usize, const CO: usize, const K: usize, const S: usize, const P: usize, const L: usize, const LO: usize>
    Leaf for Conv1d<CI, CO, K, S, P, L, LO>
{
    const TENSORS: &'static [TensorDesc] = &[TensorDesc::kernel(&[CO, CI, K]), TensorDesc::bias(&[CO])];

    #[inline]
    fn tensor(&self, i: usize) -> &[f32] {
        if i == 0 { self.weight.as_flattened().as_flattened() } else { &self.bias }
    }

    #[inline]
    fn tensor_mut(&mut self, i: usize) -> &mut [f32] {
        if i == 0 { self.weight.as_flattened_mut().as_flattened_mut() } else { &mut self.bias }
    }
}
