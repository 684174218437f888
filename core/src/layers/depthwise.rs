//! Depthwise 2-D convolution (depth multiplier 1): one `K`x`K` filter per channel, stride,
//! zero padding and bias, as Keras' `DepthwiseConv2D` and PyTorch's `Conv2d(groups = C)`.
//!
//! The weight is `[c][kh][kw]` (PyTorch's `[C, 1, K, K]` without the unit axis). Each output
//! element adds its terms in the order `(kh, kw)` and then the bias.
//!
//! # Shapes
//! `[[[f32; W]; H]; C] -> [[[f32; WO]; HO]; C]` with `HO`, `WO` as for
//! [`Conv2d`](super::Conv2d); `C·K·K + C` parameters.
//!
//! ```
//! use tinytrain::prelude::*;
//! let mut d = DepthwiseConv2d::<2, 1, 1, 0, 2, 2, 2, 2>::ZERO;
//! d.weight = [[[2.0]], [[-1.0]]];
//! let x = [[[1.0, 2.0], [3.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]]];
//! let mut y = [[[0.0; 2]; 2]; 2];
//! d.predict(&x, &mut (), &mut y);
//! assert_eq!(y, [[[2.0, 4.0], [6.0, 8.0]], [[-1.0, -1.0], [-1.0, -1.0]]]);
//! ```

use super::conv2d::{sum8, valid_range};
use crate::init::Init;
use crate::layer::{Layer, LayerInfo, Mode, UnitKind};
use crate::params::{KerasLayout, Leaf, TensorDesc};
use crate::rng::Rng;
use crate::shape::conv_out;

/// Depthwise convolution over `C` channels: `K`x`K`, stride `S`, padding `P`, `H`x`W` to
/// `HO`x`WO`.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthwiseConv2d<
    const C: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
> {
    /// One filter per channel, `[c][kh][kw]`.
    pub weight: [[[f32; K]; K]; C],
    /// Bias per channel.
    pub bias: [f32; C],
}

impl<
    const C: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
> DepthwiseConv2d<C, K, S, P, H, W, HO, WO>
{
    const SHAPE_OK: () = {
        assert!(C > 0 && K > 0 && S > 0, "DepthwiseConv2d: zero channel count, kernel or stride");
        assert!(K <= H + 2 * P && K <= W + 2 * P, "DepthwiseConv2d: kernel larger than the padded input");
        assert!(HO == conv_out(H, K, S, P), "DepthwiseConv2d: HO != (H + 2P - K) / S + 1");
        assert!(WO == conv_out(W, K, S, P), "DepthwiseConv2d: WO != (W + 2P - K) / S + 1");
    };
}

impl<
    const C: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
> Layer for DepthwiseConv2d<C, K, S, P, H, W, HO, WO>
{
    type Input = [[[f32; W]; H]; C];
    type Output = [[[f32; WO]; HO]; C];
    type Acts = ();
    const ZERO: Self = DepthwiseConv2d { weight: [[[0.0; K]; K]; C], bias: [0.0; C] };

    fn forward(&self, x: &Self::Input, _acts: &mut (), y: &mut Self::Output, _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        for (((xc, yc), wc), &b) in x.iter().zip(y.iter_mut()).zip(&self.weight).zip(&self.bias) {
            for (oh, yr) in yc.iter_mut().enumerate() {
                yr.fill(0.0);
                let (kh_lo, kh_hi) = valid_range(K, H, 1, oh * S, P);
                for kh in kh_lo..kh_hi {
                    let xr = &xc[oh * S + kh - P];
                    for (kw, &wv) in wc[kh].iter().enumerate() {
                        let (lo, hi) = valid_range(WO, W, S, kw, P);
                        for ow in lo..hi {
                            yr[ow] += wv * xr[ow * S + kw - P];
                        }
                    }
                }
                for v in yr.iter_mut() {
                    *v += b;
                }
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
        mut grads: Option<&mut Self>,
        mut dx: Option<&mut Self::Input>,
    ) {
        let () = Self::SHAPE_OK;
        for (c, (xc, dyc)) in x.iter().zip(dy).enumerate() {
            if let Some(grads) = grads.as_deref_mut() {
                grads.bias[c] += sum8(dyc.as_flattened());
                for kh in 0..K {
                    let (oh_lo, oh_hi) = valid_range(HO, H, S, kh, P);
                    for kw in 0..K {
                        let (lo, hi) = valid_range(WO, W, S, kw, P);
                        let mut acc = 0.0f32;
                        for oh in oh_lo..oh_hi {
                            let xr = &xc[oh * S + kh - P];
                            for ow in lo..hi {
                                acc += dyc[oh][ow] * xr[ow * S + kw - P];
                            }
                        }
                        grads.weight[c][kh][kw] += acc;
                    }
                }
            }
            if let Some(dx) = dx.as_deref_mut() {
                let dxc = &mut dx[c];
                for row in dxc.iter_mut() {
                    row.fill(0.0);
                }
                for (kh, wr) in self.weight[c].iter().enumerate() {
                    let (oh_lo, oh_hi) = valid_range(HO, H, S, kh, P);
                    for oh in oh_lo..oh_hi {
                        let dxr = &mut dxc[oh * S + kh - P];
                        for (kw, &wv) in wr.iter().enumerate() {
                            let (lo, hi) = valid_range(WO, W, S, kw, P);
                            for ow in lo..hi {
                                dxr[ow * S + kw - P] += wv * dyc[oh][ow];
                            }
                        }
                    }
                }
            }
        }
    }

    fn init_with(&mut self, init: Init, rng: &mut Rng) {
        // Keras: fan_in = K·K, fan_out = K·K (depth multiplier 1).
        init.fill(self.weight.as_flattened_mut().as_flattened_mut(), &mut self.bias, K * K, K * K, rng);
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("DepthwiseConv2D", [C, HO, WO])
            .with_tensors(Self::TENSORS, "dwconv", "tinytrain::layers::DepthwiseConv2d")
            .with_window(K, S, P));
    }

    fn visit_outputs(_acts: &(), y: &Self::Output, f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y.as_flattened().as_flattened());
    }
}

impl<
    const C: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
> Leaf for DepthwiseConv2d<C, K, S, P, H, W, HO, WO>
{
    /// PyTorch's `Conv2d(C, C, K, groups=C)` weight is `[C, 1, K, K]`; stored as `[C][K][K]`.
    const TENSORS: &'static [TensorDesc] = &[
        TensorDesc::new("weight", "depthwise_kernel", &[C, 1, K, K])
            .keras(KerasLayout::Depthwise)
            .stored_as(&[C, K, K]),
        TensorDesc::bias(&[C]),
    ];

    #[inline]
    fn tensor(&self, i: usize) -> &[f32] {
        if i == 0 { self.weight.as_flattened().as_flattened() } else { &self.bias }
    }

    #[inline]
    fn tensor_mut(&mut self, i: usize) -> &mut [f32] {
        if i == 0 { self.weight.as_flattened_mut().as_flattened_mut() } else { &mut self.bias }
    }
}
