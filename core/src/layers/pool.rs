//! Pooling: [`MaxPool2d`], [`AvgPool2d`] and [`GlobalAvgPool2d`] over CHW tensors.
//!
//! Windows of `K`x`K` with stride `S`, no padding, floor mode (PyTorch's and Keras' default:
//! a partial window at the right or bottom edge is dropped). Keras' `MaxPooling2D()` and
//! PyTorch's `MaxPool2d(2)` are `K = S = 2`; [`MaxPool2x2`] and [`AvgPool2x2`] name that case.
//!
//! Max pooling sends the whole window gradient to the **first** maximum in row-major order
//! inside the window (PyTorch CPU), recomputed from the input in backward, so the layer keeps
//! no index buffer.
//!
//! Summary rows use Keras' short aliases (`MaxPool2D`, `AvgPool2D`, `GlobalAvgPool2D`), which
//! fit the name column.
//!
//! # Shapes
//! `[[[f32; W]; H]; C] -> [[[f32; WO]; HO]; C]` with `HO = (H - K) / S + 1`,
//! `WO = (W - K) / S + 1` ([`pool_out`]); a wrong `HO` or `WO` fails to build.
//! [`GlobalAvgPool2d`]: `[[[f32; W]; H]; C] -> [f32; C]`.
//!
//! ```
//! use tinytrain::prelude::*;
//! let x = [[[1.0, 2.0, 5.0, 0.0], [3.0, 4.0, 1.0, 1.0], [0.0, 0.0, 2.0, 2.0], [0.0, 8.0, 2.0, 2.0]]];
//! let mut y = [[[0.0; 2]; 2]; 1];
//! MaxPool2x2::<1, 4, 4, 2, 2>::ZERO.predict(&x, &mut (), &mut y);
//! assert_eq!(y, [[[4.0, 5.0], [8.0, 2.0]]]);
//! AvgPool2x2::<1, 4, 4, 2, 2>::ZERO.predict(&x, &mut (), &mut y);
//! assert_eq!(y, [[[2.5, 1.75], [2.0, 2.0]]]);
//! ```

use crate::layer::{Layer, LayerInfo, Mode, UnitKind};
use crate::layers::conv2d::sum8;
use crate::params::Leaf;
use crate::shape::pool_out;

/// Max pooling over `K`x`K` windows with stride `S` on `C` channels of `H`x`W`.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxPool2d<
    const C: usize,
    const K: usize,
    const S: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
>;

/// Average pooling over `K`x`K` windows with stride `S` on `C` channels of `H`x`W`.
#[derive(Debug, Clone, PartialEq)]
pub struct AvgPool2d<
    const C: usize,
    const K: usize,
    const S: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
>;

/// 2x2 max pooling with stride 2 (Keras `MaxPooling2D()`, PyTorch `MaxPool2d(2)`).
pub type MaxPool2x2<const C: usize, const H: usize, const W: usize, const HO: usize, const WO: usize> =
    MaxPool2d<C, 2, 2, H, W, HO, WO>;

/// 2x2 average pooling with stride 2.
pub type AvgPool2x2<const C: usize, const H: usize, const W: usize, const HO: usize, const WO: usize> =
    AvgPool2d<C, 2, 2, H, W, HO, WO>;

/// Asserts the pooling shape; shared by both poolings.
const fn pool_shape_ok(c: usize, k: usize, s: usize, h: usize, w: usize, ho: usize, wo: usize) {
    assert!(c > 0 && k > 0 && s > 0, "pooling: zero channel count, window or stride");
    assert!(k <= h && k <= w, "pooling: window larger than the input");
    assert!(ho == pool_out(h, k, s), "pooling: HO != (H - K) / S + 1");
    assert!(wo == pool_out(w, k, s), "pooling: WO != (W - K) / S + 1");
}

impl<const C: usize, const K: usize, const S: usize, const H: usize, const W: usize, const HO: usize, const WO: usize>
    MaxPool2d<C, K, S, H, W, HO, WO>
{
    const SHAPE_OK: () = pool_shape_ok(C, K, S, H, W, HO, WO);

    /// Row and column of the first maximum of the window at `(oh, ow)` and its value.
    #[inline]
    fn window_max(xc: &[[f32; W]; H], oh: usize, ow: usize) -> (usize, usize, f32) {
        let (h0, w0) = (oh * S, ow * S);
        let mut best = (h0, w0, xc[h0][w0]);
        for (i, row) in xc[h0..h0 + K].iter().enumerate() {
            for (j, &v) in row[w0..w0 + K].iter().enumerate() {
                if v > best.2 {
                    best = (h0 + i, w0 + j, v);
                }
            }
        }
        best
    }

    /// The forward pass, portable: every window's [`Self::window_max`]. [`Layer::forward`]
    /// takes an AVX-512 kernel for 2x2 windows on a host that has it (same bits; the test
    /// `tests/tests/conv_dispatch.rs` compares them).
    pub fn forward_portable(&self, x: &[[[f32; W]; H]; C], y: &mut [[[f32; WO]; HO]; C]) {
        for (xc, yc) in x.iter().zip(y.iter_mut()) {
            for (oh, yr) in yc.iter_mut().enumerate() {
                for (ow, yv) in yr.iter_mut().enumerate() {
                    *yv = Self::window_max(xc, oh, ow).2;
                }
            }
        }
    }

    /// 2x2 windows, stride 2, sixteen at a time: the even and odd columns of both rows
    /// gathered into four vectors, then `max` in the window's order (`vmaxps a, m` keeps `m`
    /// unless `a > m`, as [`Self::window_max`] does, NaN and signed zeros included). The
    /// compiler's code for the portable loop moves single lanes: 3.2 % of `mnist-cnn`'s
    /// inference (its AVX-512 build 9 %), this kernel 1.0 % (perf).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,avx512f")]
    #[allow(unsafe_code)]
    fn forward_2x2_avx512(x: &[[[f32; W]; H]; C], y: &mut [[[f32; WO]; HO]; C]) {
        use core::arch::x86_64::{
            __m512, __mmask16, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_max_ps, _mm512_permutex2var_ps,
            _mm512_setr_epi32,
        };
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        // (Macros, not closures: a closure does not inherit the target features.)
        macro_rules! mask {
            ($n:expr) => {{
                let n: usize = $n;
                let m: __mmask16 = if n >= 16 { 0xffff } else { (1u16 << n) - 1 };
                m
            }};
        }
        for (xc, yc) in x.iter().zip(y.iter_mut()) {
            for (oh, yr) in yc.iter_mut().enumerate() {
                let (Some(r0), Some(r1)) = (xc.get(2 * oh), xc.get(2 * oh + 1)) else { return };
                let mut ow = 0;
                while ow < WO {
                    // Input columns 2 * ow .. 2 * (ow + 16), those of the row's windows only.
                    let n = 2 * (WO - ow);
                    let (lo, hi) = (mask!(n), mask!(n.saturating_sub(16)));
                    macro_rules! pair {
                        ($r:expr) => {{
                            let p = $r[2 * ow..].as_ptr();
                            // SAFETY: the masks cover columns 2 * ow .. 2 * WO <= W of a row of
                            // W floats; masked-off lanes are not read.
                            let (a, b): (__m512, __m512) = unsafe {
                                (_mm512_maskz_loadu_ps(lo, p), _mm512_maskz_loadu_ps(hi, p.wrapping_add(16)))
                            };
                            (_mm512_permutex2var_ps(a, even, b), _mm512_permutex2var_ps(a, odd, b))
                        }};
                    }
                    let (e0, o0) = pair!(r0);
                    let (e1, o1) = pair!(r1);
                    let m = _mm512_max_ps(o0, e0);
                    let m = _mm512_max_ps(e1, m);
                    let m = _mm512_max_ps(o1, m);
                    let out = yr[ow..].as_mut_ptr();
                    // SAFETY: output columns ow .. min(ow + 16, WO) of a row of WO floats.
                    unsafe { _mm512_mask_storeu_ps(out, mask!(WO - ow), m) };
                    ow += 16;
                }
            }
        }
    }
}

impl<const C: usize, const K: usize, const S: usize, const H: usize, const W: usize, const HO: usize, const WO: usize>
    Layer for MaxPool2d<C, K, S, H, W, HO, WO>
{
    type Input = [[[f32; W]; H]; C];
    type Output = [[[f32; WO]; HO]; C];
    type Acts = ();
    const ZERO: Self = MaxPool2d;

    fn forward(&self, x: &Self::Input, _acts: &mut (), y: &mut Self::Output, _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if K == 2 && S == 2 && crate::layers::X86Path::Avx512.available() {
            // SAFETY: the CPU has AVX2 and AVX-512F, checked just above.
            #[allow(unsafe_code)]
            unsafe {
                Self::forward_2x2_avx512(x, y);
            }
            return;
        }
        self.forward_portable(x, y);
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
            for row in dxc.iter_mut() {
                row.fill(0.0);
            }
            for (oh, dyr) in dyc.iter().enumerate() {
                for (ow, &d) in dyr.iter().enumerate() {
                    let (i, j, _) = Self::window_max(xc, oh, ow);
                    dxc[i][j] += d;
                }
            }
        }
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("MaxPool2D", [C, HO, WO]).with_window(K, S, 0));
    }

    fn visit_outputs(_acts: &(), y: &Self::Output, f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y.as_flattened().as_flattened());
    }
}

impl<const C: usize, const K: usize, const S: usize, const H: usize, const W: usize, const HO: usize, const WO: usize>
    AvgPool2d<C, K, S, H, W, HO, WO>
{
    const SHAPE_OK: () = pool_shape_ok(C, K, S, H, W, HO, WO);
    /// Window size as a divisor.
    const AREA: f32 = (K * K) as f32;
}

impl<const C: usize, const K: usize, const S: usize, const H: usize, const W: usize, const HO: usize, const WO: usize>
    Layer for AvgPool2d<C, K, S, H, W, HO, WO>
{
    type Input = [[[f32; W]; H]; C];
    type Output = [[[f32; WO]; HO]; C];
    type Acts = ();
    const ZERO: Self = AvgPool2d;

    fn forward(&self, x: &Self::Input, _acts: &mut (), y: &mut Self::Output, _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        for (xc, yc) in x.iter().zip(y.iter_mut()) {
            for (oh, yr) in yc.iter_mut().enumerate() {
                for (ow, yv) in yr.iter_mut().enumerate() {
                    let mut s = 0.0f32;
                    for row in &xc[oh * S..oh * S + K] {
                        for &v in &row[ow * S..ow * S + K] {
                            s += v;
                        }
                    }
                    *yv = s / Self::AREA;
                }
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
            for row in dxc.iter_mut() {
                row.fill(0.0);
            }
            for (oh, dyr) in dyc.iter().enumerate() {
                for (ow, &d) in dyr.iter().enumerate() {
                    let g = d / Self::AREA;
                    for row in &mut dxc[oh * S..oh * S + K] {
                        for v in &mut row[ow * S..ow * S + K] {
                            *v += g;
                        }
                    }
                }
            }
        }
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("AvgPool2D", [C, HO, WO]).with_window(K, S, 0));
    }

    fn visit_outputs(_acts: &(), y: &Self::Output, f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y.as_flattened().as_flattened());
    }
}

/// Mean of each channel (Keras `GlobalAveragePooling2D`, PyTorch `AdaptiveAvgPool2d(1)` then
/// flatten).
///
/// # Shapes
/// `[[[f32; W]; H]; C] -> [f32; C]`.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalAvgPool2d<const C: usize, const H: usize, const W: usize>;

impl<const C: usize, const H: usize, const W: usize> GlobalAvgPool2d<C, H, W> {
    const SHAPE_OK: () = assert!(C > 0 && H > 0 && W > 0, "GlobalAvgPool2d: zero-sized input");
    const AREA: f32 = (H * W) as f32;
}

impl<const C: usize, const H: usize, const W: usize> Layer for GlobalAvgPool2d<C, H, W> {
    type Input = [[[f32; W]; H]; C];
    type Output = [f32; C];
    type Acts = ();
    const ZERO: Self = GlobalAvgPool2d;

    fn forward(&self, x: &Self::Input, _acts: &mut (), y: &mut [f32; C], _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        for (xc, yv) in x.iter().zip(y.iter_mut()) {
            *yv = sum8(xc.as_flattened()) / Self::AREA;
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
            dxc.as_flattened_mut().fill(d / Self::AREA);
        }
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("GlobalAvgPool2D", [C, 0, 0]));
    }

    fn visit_outputs(_acts: &(), y: &[f32; C], f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y);
    }
}

impl<const C: usize, const K: usize, const S: usize, const H: usize, const W: usize, const HO: usize, const WO: usize>
    Leaf for MaxPool2d<C, K, S, H, W, HO, WO>
{
}
impl<const C: usize, const K: usize, const S: usize, const H: usize, const W: usize, const HO: usize, const WO: usize>
    Leaf for AvgPool2d<C, K, S, H, W, HO, WO>
{
}
impl<const C: usize, const H: usize, const W: usize> Leaf for GlobalAvgPool2d<C, H, W> {}
