//! 1-D pooling: [`MaxPool1d`], [`AvgPool1d`] and [`GlobalAvgPool1d`] over channels-first
//! sequences `[[f32; L]; C]` (PyTorch's `nn.MaxPool1d`, `nn.AvgPool1d`, and
//! `AdaptiveAvgPool1d(1)` then flatten; Keras `MaxPooling1D`, `AveragePooling1D`,
//! `GlobalAveragePooling1D` on channels-last sequences).
//!
//! Windows of `K` with stride `S`, no padding, floor mode (a partial window at the end is
//! dropped). Max pooling sends the window's gradient to the **first** maximum (PyTorch CPU),
//! recomputed from the input in backward, so the layer keeps no index buffer.
//!
//! # Shapes
//! `[[f32; L]; C] -> [[f32; LO]; C]` with `LO = (L - K) / S + 1` ([`pool_out`]); a wrong `LO`
//! fails to build. [`GlobalAvgPool1d`]: `[[f32; L]; C] -> [f32; C]`.
//!
//! ```
//! use tinytrain::prelude::*;
//! let x = [[1.0, 3.0, 2.0, 2.0, 5.0]];
//! let mut y = [[0.0; 2]];
//! MaxPool1d::<1, 2, 2, 5, 2>::ZERO.predict(&x, &mut (), &mut y);
//! assert_eq!(y, [[3.0, 2.0]]);
//! AvgPool1d::<1, 2, 2, 5, 2>::ZERO.predict(&x, &mut (), &mut y);
//! assert_eq!(y, [[2.0, 2.0]]);
//! let mut g = [0.0];
//! GlobalAvgPool1d::<1, 5>::ZERO.predict(&x, &mut (), &mut g);
//! assert_eq!(g, [2.6]);
//! ```

use crate::layer::{Layer, LayerInfo, Mode, UnitKind};
use crate::layers::conv2d::sum8;
use crate::params::Leaf;
use crate::shape::pool_out;

/// Max pooling over windows of `K` with stride `S` on `C` channels of length `L`.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxPool1d<const C: usize, const K: usize, const S: usize, const L: usize, const LO: usize>;

/// Average pooling over windows of `K` with stride `S` on `C` channels of length `L`.
#[derive(Debug, Clone, PartialEq)]
pub struct AvgPool1d<const C: usize, const K: usize, const S: usize, const L: usize, const LO: usize>;

/// Asserts the 1-D pooling shape; shared by both poolings.
const fn pool1d_shape_ok(c: usize, k: usize, s: usize, l: usize, lo: usize) {
    assert!(c > 0 && k > 0 && s > 0, "pooling: zero channel count, window or stride");
    assert!(k <= l, "pooling: window larger than the input");
    assert!(lo == pool_out(l, k, s), "pooling: LO != (L - K) / S + 1");
}

impl<const C: usize, const K: usize, const S: usize, const L: usize, const LO: usize> MaxPool1d<C, K, S, L, LO> {
    const SHAPE_OK: () = pool1d_shape_ok(C, K, S, L, LO);

    /// Index of the first maximum of the window at `o`, and its value.
    #[inline]
    fn window_max(xc: &[f32; L], o: usize) -> (usize, f32) {
        let i0 = o * S;
        let mut best = (i0, xc[i0]);
        for (j, &v) in xc[i0..i0 + K].iter().enumerate() {
            if v > best.1 {
                best = (i0 + j, v);
            }
        }
        best
    }
}

impl<const C: usize, const K: usize, const S: usize, const L: usize, const LO: usize> Layer
    for MaxPool1d<C, K, S, L, LO>
{
    type Input = [[f32; L]; C];
    type Output = [[f32; LO]; C];
    type Acts = ();
    const ZERO: Self = MaxPool1d;

    fn forward(&self, x: &Self::Input, _acts: &mut (), y: &mut Self::Output, _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        for (xc, yc) in x.iter().zip(y.iter_mut()) {
            for (o, yv) in yc.iter_mut().enumerate() {
                *yv = Self::window_max(xc, o).1;
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
        _grads: Option<&mut Self>,
        dx: Option<&mut Self::Input>,
    ) {
        let () = Self::SHAPE_OK;
        let Some(dx) = dx else { return };
        for ((xc, dyc), dxc) in x.iter().zip(dy).zip(dx.iter_mut()) {
            dxc.fill(0.0);
            for (o, &d) in dyc.iter().enumerate() {
                dxc[Self::window_max(xc, o).0] += d;
            }
        }
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("MaxPool1D", [C, LO, 0]).with_window(K, S, 0));
    }

    fn visit_outputs(_acts: &(), y: &Self::Output, f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y.as_flattened());
    }
}

impl<const C: usize, const K: usize, const S: usize, const L: usize, const LO: usize> AvgPool1d<C, K, S, L, LO> {
    const SHAPE_OK: () = pool1d_shape_ok(C, K, S, L, LO);
    /// Window size as a divisor.
    const LEN: f32 = K as f32;
}

impl<const C: usize, const K: usize, const S: usize, const L: usize, const LO: usize> Layer
    for AvgPool1d<C, K, S, L, LO>
{
    type Input = [[f32; L]; C];
    type Output = [[f32; LO]; C];
    type Acts = ();
    const ZERO: Self = AvgPool1d;

    fn forward(&self, x: &Self::Input, _acts: &mut (), y: &mut Self::Output, _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        for (xc, yc) in x.iter().zip(y.iter_mut()) {
            for (o, yv) in yc.iter_mut().enumerate() {
                let mut s = 0.0f32;
                for &v in &xc[o * S..o * S + K] {
                    s += v;
                }
                *yv = s / Self::LEN;
            }
        }
    }

    fn backward(
        &self,
        _x: &Self::Input,
        _acts: &(),
        _y: &Self::Output,
        dy: &Self::Output,
        _deltas: &mut (),
        _grads: Option<&mut Self>,
        dx: Option<&mut Self::Input>,
    ) {
        let () = Self::SHAPE_OK;
        let Some(dx) = dx else { return };
        for (dyc, dxc) in dy.iter().zip(dx.iter_mut()) {
            dxc.fill(0.0);
            for (o, &d) in dyc.iter().enumerate() {
                let g = d / Self::LEN;
                for v in &mut dxc[o * S..o * S + K] {
                    *v += g;
                }
            }
        }
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("AvgPool1D", [C, LO, 0]).with_window(K, S, 0));
    }

    fn visit_outputs(_acts: &(), y: &Self::Output, f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y.as_flattened());
    }
}

/// Mean of each channel over the sequence (Keras `GlobalAveragePooling1D`, PyTorch
/// `AdaptiveAvgPool1d(1)` then flatten).
///
/// # Shapes
/// `[[f32; L]; C] -> [f32; C]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalAvgPool1d<const C: usize, const L: usize>;

impl<const C: usize, const L: usize> GlobalAvgPool1d<C, L> {
    const SHAPE_OK: () = assert!(C > 0 && L > 0, "GlobalAvgPool1d: zero-sized input");
    const LEN: f32 = L as f32;
}

impl<const C: usize, const L: usize> Layer for GlobalAvgPool1d<C, L> {
    type Input = [[f32; L]; C];
    type Output = [f32; C];
    type Acts = ();
    const ZERO: Self = GlobalAvgPool1d;

    fn forward(&self, x: &Self::Input, _acts: &mut (), y: &mut [f32; C], _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        for (xc, yv) in x.iter().zip(y.iter_mut()) {
            *yv = sum8(xc) / Self::LEN;
        }
    }

    fn backward(
        &self,
        _x: &Self::Input,
        _acts: &(),
        _y: &[f32; C],
        dy: &[f32; C],
        _deltas: &mut (),
        _grads: Option<&mut Self>,
        dx: Option<&mut Self::Input>,
    ) {
        let () = Self::SHAPE_OK;
        let Some(dx) = dx else { return };
        for (dxc, &d) in dx.iter_mut().zip(dy) {
            dxc.fill(d / Self::LEN);
        }
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("GlobalAvgPool1D", [C, 0, 0]));
    }

    fn visit_outputs(_acts: &(), y: &[f32; C], f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y);
    }
}

impl<const C: usize, const K: usize, const S: usize, const L: usize, const LO: usize> Leaf
    for MaxPool1d<C, K, S, L, LO>
{
}
impl<const C: usize, const K: usize, const S: usize, const L: usize, const LO: usize> Leaf
    for AvgPool1d<C, K, S, L, LO>
{
}
impl<const C: usize, const L: usize> Leaf for GlobalAvgPool1d<C, L> {}
