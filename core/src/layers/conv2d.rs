//! 2-D convolution (cross-correlation, as in PyTorch and Keras) with stride, zero padding and
//! bias.
//!
//! The weight is stored `[out][in][kh][kw]` like PyTorch's `nn.Conv2d` (a Keras kernel is
//! `[kh][kw][in][out]`). Tensors are CHW.
//!
//! # Shapes
//! `[[[f32; W]; H]; CI] -> [[[f32; WO]; HO]; CO]` with `HO = (H + 2P - K) / S + 1` and
//! `WO = (W + 2P - K) / S + 1` (floor, see [`conv_out`]); `CO·CI·K·K + CO` parameters. A wrong
//! `HO` or `WO` fails to build.
//!
//! # Kernels
//! Direct convolution, no im2col buffer. Each output element is one accumulator that adds its
//! terms in the fixed order `(ci, kh, kw)` and then the bias, so the result does not depend on
//! the vector width: the speed comes from computing a tile of 4 output channels × 8 output
//! columns at once (32 independent accumulators the compiler keeps in vector registers, each
//! input row segment loaded once for 4 channels). Weight gradients use 8 lanes per weight
//! reduced in the same tree as [`kernels::dot`](crate::kernels::dot); for stride 1 the input
//! gradient adds, for each input row and filter, the `K`x`K` taps over zero-padded copies of
//! the `K` output-gradient rows in register tiles of 4 channels × 8 columns (terms in the
//! order `(co, kh, kw)`); other strides use plain row updates in the same order.
//!
//! No fused multiply-add and no reassociation, so the vector width changes the speed and not
//! the result: training `MnistCnn` built for plain x86-64 (SSE2), for
//! `-C target-cpu=x86-64-v3` (AVX2, about twice as fast) and for AVX-512 gives the same bits.
//!
//! ```
//! use tinytrain::prelude::*;
//! // 1 input channel, 1 filter 2x2, stride 1, no padding: 3x3 -> 2x2.
//! let mut c = Conv2d::<1, 1, 2, 1, 0, 3, 3, 2, 2>::ZERO;
//! c.weight = [[[[1.0, 0.0], [0.0, 1.0]]]];
//! c.bias = [0.5];
//! let x = [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]];
//! let mut y = [[[0.0; 2]; 2]; 1];
//! c.predict(&x, &mut (), &mut y);
//! assert_eq!(y, [[[6.5, 8.5], [12.5, 14.5]]]);
//! ```

// The tiles must be inlined into their callers so that their accumulators stay in registers,
// and their index loops over constant tile sizes are what the vectoriser unrolls.
#![allow(clippy::inline_always, clippy::needless_range_loop)]

use crate::init::Init;
use crate::layer::{Layer, LayerInfo, Mode, UnitKind};
use crate::params::{Leaf, TensorDesc};
use crate::rng::Rng;
use crate::shape::conv_out;

/// Output channels per register tile.
const CB: usize = 4;
/// Output columns per register tile.
const TW: usize = 8;
/// Column tiles of the host's AVX2 and AVX-512 builds.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
const WIDE: usize = 16;
/// Lanes of the weight-gradient accumulators.
const LANES: usize = 8;
/// Length of the zero-padded row buffer of the stride-1 input gradient: rows with
/// `W + K - 1` up to this use it, wider ones the general path.
const PAD_ROW: usize = 128;

/// `store_transposed!(a, n, t, c0, row, col)` writes `t[c0 + c][row][col + j] = a[j][c]` for
/// the 16 lanes `c` and the first `n` (1 to 4) vectors `j`: a register tile held across
/// channels, stored as rows of the CHW tensor `t`. A 4x4 transpose per 128-bit lane, then 16
/// stores of `n` floats (the compiler's code for the plain loop scatters 16 floats at a time:
/// conv 32->64 forward 107-125 -> 94 us). A macro, for inside AVX-512 functions: a function
/// called there was not inlined (inference 150 -> 184 us).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
macro_rules! store_transposed {
    ($a:expr, $n:expr, $t:expr, $c0:expr, $row:expr, $col:expr) => {{
        use core::arch::x86_64::{
            __m128, __m512, _mm_castps_pd, _mm_storel_pd, _mm_storeu_ps, _mm512_castpd_ps, _mm512_castps_pd,
            _mm512_extractf32x4_ps, _mm512_unpackhi_pd, _mm512_unpackhi_ps, _mm512_unpacklo_pd, _mm512_unpacklo_ps,
        };
        let (a, n, c0, row, col): ([__m512; 4], usize, usize, usize, usize) = ($a, $n, $c0, $row, $col);
        // Per 128-bit lane `l`: vector `k` holds channel `4 * l + k`'s four columns.
        let lo01 = _mm512_castps_pd(_mm512_unpacklo_ps(a[0], a[1]));
        let hi01 = _mm512_castps_pd(_mm512_unpackhi_ps(a[0], a[1]));
        let lo23 = _mm512_castps_pd(_mm512_unpacklo_ps(a[2], a[3]));
        let hi23 = _mm512_castps_pd(_mm512_unpackhi_ps(a[2], a[3]));
        let rows = [
            _mm512_castpd_ps(_mm512_unpacklo_pd(lo01, lo23)),
            _mm512_castpd_ps(_mm512_unpackhi_pd(lo01, lo23)),
            _mm512_castpd_ps(_mm512_unpacklo_pd(hi01, hi23)),
            _mm512_castpd_ps(_mm512_unpackhi_pd(hi01, hi23)),
        ];
        for (k, r) in rows.into_iter().enumerate() {
            let lanes: [__m128; 4] = [
                _mm512_extractf32x4_ps::<0>(r),
                _mm512_extractf32x4_ps::<1>(r),
                _mm512_extractf32x4_ps::<2>(r),
                _mm512_extractf32x4_ps::<3>(r),
            ];
            for (l, q) in lanes.into_iter().enumerate() {
                let Some(channel) = $t.get_mut(c0 + 4 * l + k) else { return };
                let Some(out) = channel[row].get_mut(col..col + n) else { return };
                let p = out.as_mut_ptr();
                // SAFETY: `out` holds `n` floats; each arm writes that many.
                unsafe {
                    match n {
                        4 => _mm_storeu_ps(p, q),
                        2 => _mm_storel_pd(p.cast(), _mm_castps_pd(q)),
                        _ => {
                            let mut v = [0.0f32; 4];
                            _mm_storeu_ps(v.as_mut_ptr(), q);
                            out.copy_from_slice(&v[..n]);
                        }
                    }
                }
            }
        }
    }};
}

/// 2-D convolution: `CI` input channels, `CO` filters of `K`x`K`, stride `S`, zero padding `P`,
/// input `H`x`W`, output `HO`x`WO`.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv2d<
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
> {
    /// Filters, `[out][in][kh][kw]` (PyTorch layout).
    pub weight: [[[[f32; K]; K]; CI]; CO],
    /// Bias per filter.
    pub bias: [f32; CO],
}

/// Sums eight lanes in the fixed tree of [`kernels::dot`](crate::kernels::dot).
#[inline(always)]
pub(crate) fn reduce8(a: &[f32; LANES]) -> f32 {
    ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))
}

/// Sum of a slice with eight lanes in a fixed order.
#[inline]
pub(crate) fn sum8(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            acc[k] += c[k];
        }
    }
    for (k, v) in rest.iter().enumerate() {
        acc[k] += v;
    }
    reduce8(&acc)
}

/// The range of `i` in `0..n_out` for which `i * s + k - p` lies in `0..n_in`.
#[inline(always)]
pub(crate) const fn valid_range(n_out: usize, n_in: usize, s: usize, k: usize, p: usize) -> (usize, usize) {
    // i*s + k >= p  <=>  i >= ceil((p - k) / s)
    let lo = if p > k { (p - k).div_ceil(s) } else { 0 };
    // i*s + k - p <= n_in - 1  <=>  i <= (n_in - 1 + p - k) / s
    let hi = if n_in + p > k { (n_in - 1 + p - k) / s + 1 } else { 0 };
    let hi = if hi < n_out { hi } else { n_out };
    if lo < hi { (lo, hi) } else { (0, 0) }
}

impl<
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
> Conv2d<CI, CO, K, S, P, H, W, HO, WO>
{
    const SHAPE_OK: () = {
        assert!(CI > 0 && CO > 0 && K > 0 && S > 0, "Conv2d: zero channel count, kernel or stride");
        assert!(K <= H + 2 * P && K <= W + 2 * P, "Conv2d: kernel larger than the padded input");
        assert!(HO == conv_out(H, K, S, P), "Conv2d: HO != (H + 2P - K) / S + 1");
        assert!(WO == conv_out(W, K, S, P), "Conv2d: WO != (W + 2P - K) / S + 1");
    };

    /// Output columns whose whole receptive field lies inside the input row.
    const INTERIOR: (usize, usize) = {
        // ow*S >= P  and  ow*S + K - 1 - P <= W - 1
        let a = P.div_ceil(S);
        let b = if W + P >= K { (W + P - K) / S + 1 } else { 0 };
        let b = if b < WO { b } else { WO };
        if a < b { (a, b) } else { (0, 0) }
    };

    /// A tile of `B` channels from `co0` by `T` columns from `ow0` of output row `oh`.
    /// `CHECKED` reads zero outside the input row (padding); otherwise every read must lie
    /// inside it. Each output adds its terms in the order `(ci, kh, kw)`, then the bias.
    #[inline(always)]
    fn tile<const B: usize, const T: usize, const CHECKED: bool>(
        &self,
        x: &[[[f32; W]; H]; CI],
        co0: usize,
        oh: usize,
        ow0: usize,
        y: &mut [[[f32; WO]; HO]; CO],
    ) {
        let Some(wb) = self.weight[co0..].first_chunk::<B>() else { return };
        let (kh_lo, kh_hi) = valid_range(K, H, 1, oh * S, P);
        let mut acc = [[0.0f32; T]; B];
        for ci in 0..CI {
            for kh in kh_lo..kh_hi {
                let row = &x[ci][oh * S + kh - P];
                for kw in 0..K {
                    let xs: [f32; T] = if CHECKED {
                        core::array::from_fn(|j| match ((ow0 + j) * S + kw).checked_sub(P) {
                            Some(iw) if iw < W => row[iw],
                            _ => 0.0,
                        })
                    } else {
                        let start = ow0 * S + kw - P;
                        let Some(seg) = row.get(start..start + (T - 1) * S + 1) else { return };
                        core::array::from_fn(|j| seg[j * S])
                    };
                    for c in 0..B {
                        let wv = wb[c][ci][kh][kw];
                        for j in 0..T {
                            acc[c][j] += wv * xs[j];
                        }
                    }
                }
            }
        }
        for c in 0..B {
            let b = self.bias[co0 + c];
            if let Some(out) = y[co0 + c][oh].get_mut(ow0..ow0 + T) {
                for (o, a) in out.iter_mut().zip(&acc[c]) {
                    *o = a + b;
                }
            }
        }
    }

    /// All output rows of channels `co0..co0 + B`, in column tiles of `TW` starting at
    /// 0, `TW`, ... with the last one moved left to end at `WO` (overlapping outputs get the
    /// same values again).
    #[inline(always)]
    fn block<const B: usize, const T: usize>(
        &self,
        x: &[[[f32; W]; H]; CI],
        co0: usize,
        y: &mut [[[f32; WO]; HO]; CO],
    ) {
        let (lo, hi) = Self::INTERIOR;
        for oh in 0..HO {
            if WO < T {
                for ow in 0..WO {
                    self.tile::<B, 1, true>(x, co0, oh, ow, y);
                }
                continue;
            }
            let mut ow = 0;
            loop {
                let start = ow.min(WO - T);
                if start >= lo && start + T <= hi {
                    self.tile::<B, T, false>(x, co0, oh, start, y);
                } else {
                    self.tile::<B, T, true>(x, co0, oh, start, y);
                }
                ow += T;
                if ow >= WO {
                    break;
                }
            }
        }
    }

    /// Weight gradients of filters `co0..co0 + B` for one input channel and kernel row.
    #[inline(always)]
    fn grad_weight_block<const B: usize>(
        x: &[[[f32; W]; H]; CI],
        dy: &[[[f32; WO]; HO]; CO],
        co0: usize,
        ci: usize,
        kh: usize,
        grads: &mut [[[[f32; K]; K]; CI]; CO],
    ) {
        let Some(dyb) = dy[co0..].first_chunk::<B>() else { return };
        let (lo, hi) = Self::INTERIOR;
        let (oh_lo, oh_hi) = valid_range(HO, H, S, kh, P);
        let mut acc = [[[0.0f32; LANES]; K]; B];
        let mut edge = [[0.0f32; K]; B];
        for oh in oh_lo..oh_hi {
            let xr = &x[ci][oh * S + kh - P];
            let mut ow = lo;
            while ow + LANES <= hi {
                for kw in 0..K {
                    let start = ow * S + kw - P;
                    let Some(seg) = xr.get(start..start + (LANES - 1) * S + 1) else { return };
                    let xs: [f32; LANES] = core::array::from_fn(|j| seg[j * S]);
                    for c in 0..B {
                        let Some(d) = dyb[c][oh][ow..].first_chunk::<LANES>() else { return };
                        for j in 0..LANES {
                            acc[c][kw][j] += d[j] * xs[j];
                        }
                    }
                }
                ow += LANES;
            }
            for j in 0..hi - ow {
                for kw in 0..K {
                    let xv = xr[(ow + j) * S + kw - P];
                    for c in 0..B {
                        acc[c][kw][j] += dyb[c][oh][ow + j] * xv;
                    }
                }
            }
            for ow in (0..lo).chain(hi..WO) {
                for kw in 0..K {
                    let Some(iw) = (ow * S + kw).checked_sub(P) else { continue };
                    let Some(&xv) = xr.get(iw) else { continue };
                    for c in 0..B {
                        edge[c][kw] += dyb[c][oh][ow] * xv;
                    }
                }
            }
        }
        for c in 0..B {
            for kw in 0..K {
                grads[co0 + c][ci][kh][kw] += reduce8(&acc[c][kw]) + edge[c][kw];
            }
        }
    }

    /// Adds to a tile of the stride-1 input gradient, `B` input channels from `ci0` by `T`
    /// columns from `iw0` of input row `ih`, the taps of kernel rows `kh_lo..kh_hi` of one
    /// filter (`wco`) over `rows[kh]`: the output-gradient row `ih + P - kh` zero-padded by
    /// `K - 1 - P` on the left, so that input column `iw` gets tap `kw` from
    /// `rows[kh][iw + K - 1 - kw]`.
    #[inline(always)]
    fn grad_input_tile<const B: usize, const T: usize>(
        wco: &[[[f32; K]; K]; CI],
        (kh_lo, kh_hi): (usize, usize),
        rows: &[[f32; PAD_ROW]; K],
        ci0: usize,
        ih: usize,
        iw0: usize,
        dx: &mut [[[f32; W]; H]; CI],
    ) {
        let Some(wb) = wco[ci0..].first_chunk::<B>() else { return };
        let mut acc = [[0.0f32; T]; B];
        for c in 0..B {
            if let Some(d) = dx[ci0 + c][ih][iw0..].first_chunk::<T>() {
                acc[c] = *d;
            }
        }
        for kh in kh_lo..kh_hi {
            let row = &rows[kh];
            for kw in 0..K {
                let Some(seg) = row[iw0 + K - 1 - kw..].first_chunk::<T>() else { return };
                for c in 0..B {
                    let wv = wb[c][kh][kw];
                    for j in 0..T {
                        acc[c][j] += wv * seg[j];
                    }
                }
            }
        }
        for c in 0..B {
            if let Some(d) = dx[ci0 + c][ih][iw0..].first_chunk_mut::<T>() {
                *d = acc[c];
            }
        }
    }

    /// Adds the kernel rows `kh` of one filter to input row `ih` of channels `ci0..ci0 + B`,
    /// in tiles of 8, 4, 2 and 1 columns.
    #[inline(always)]
    fn grad_input_row<const B: usize, const T: usize>(
        wco: &[[[f32; K]; K]; CI],
        kh: (usize, usize),
        rows: &[[f32; PAD_ROW]; K],
        ci0: usize,
        ih: usize,
        dx: &mut [[[f32; W]; H]; CI],
    ) {
        let mut iw = 0;
        while iw + T <= W {
            Self::grad_input_tile::<B, T>(wco, kh, rows, ci0, ih, iw, dx);
            iw += T;
        }
        if T > TW && iw + TW <= W {
            Self::grad_input_tile::<B, TW>(wco, kh, rows, ci0, ih, iw, dx);
            iw += TW;
        }
        if iw + 4 <= W {
            Self::grad_input_tile::<B, 4>(wco, kh, rows, ci0, ih, iw, dx);
            iw += 4;
        }
        if iw + 2 <= W {
            Self::grad_input_tile::<B, 2>(wco, kh, rows, ci0, ih, iw, dx);
            iw += 2;
        }
        if iw < W {
            Self::grad_input_tile::<B, 1>(wco, kh, rows, ci0, ih, iw, dx);
        }
    }

    /// Input gradient for stride 1 (`P < K`) on the host: the output gradient is copied once
    /// into zero-padded rows (input column `iw` gets tap `kw` of a row from its element
    /// `iw + K - 1 - kw`), then for each block of `B` input channels, input row and tile of
    /// `T` columns the sums stay in registers over every filter and tap. Each element adds its
    /// terms in the order `(co, kh, kw)` from `+0.0`, zeros included: the bits of
    /// [`Self::grad_input_stride1`], which skips all-zero rows (adding `±0.0` to a sum that
    /// starts at `+0.0` changes nothing). Tiles may overlap at the row's end (the last one
    /// moved left to end at `W`): an overlapped element is computed twice, the same way.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[inline(always)]
    fn grad_input_host<const T: usize>(&self, dy: &[[[f32; WO]; HO]; CO], dx: &mut [[[f32; W]; H]; CI]) {
        let padded = Self::padded_dy(dy);
        let mut ci = 0;
        while ci < CI {
            if ci + CB <= CI {
                self.grad_input_host_rows::<CB, T>(&padded, ci, dx);
                ci += CB;
            } else {
                self.grad_input_host_rows::<1, T>(&padded, ci, dx);
                ci += 1;
            }
        }
    }

    /// [`Self::grad_input_host`] for input channels `ci0..ci0 + B`.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[inline(always)]
    fn grad_input_host_rows<const B: usize, const T: usize>(
        &self,
        padded: &[f32],
        ci0: usize,
        dx: &mut [[[f32; W]; H]; CI],
    ) {
        for ih in 0..H {
            // Output row oh = ih + P - kh must lie in 0..HO.
            let kh = ((ih + P + 1).saturating_sub(HO), (ih + P + 1).min(K));
            if W >= T {
                let mut iw = 0;
                loop {
                    self.grad_input_host_tile::<B, T>(padded, kh, ci0, ih, iw.min(W - T), dx);
                    iw += T;
                    if iw >= W {
                        break;
                    }
                }
            } else if W >= TW {
                let mut iw = 0;
                loop {
                    self.grad_input_host_tile::<B, TW>(padded, kh, ci0, ih, iw.min(W - TW), dx);
                    iw += TW;
                    if iw >= W {
                        break;
                    }
                }
            } else {
                for iw in 0..W {
                    self.grad_input_host_tile::<B, 1>(padded, kh, ci0, ih, iw, dx);
                }
            }
        }
    }

    /// The output gradient with each row zero-padded to `W + K - 1` (`K - 1 - P` zeros on the
    /// left), channel by channel, for the stride-1 input gradient on the host.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    fn padded_dy(dy: &[[[f32; WO]; HO]; CO]) -> std::vec::Vec<f32> {
        let row_len = W + K - 1;
        let pad = K - 1 - P;
        let mut padded = std::vec![0.0f32; CO * HO * row_len];
        for (rows, dyc) in padded.chunks_exact_mut(HO * row_len).zip(dy) {
            for (row, src) in rows.chunks_exact_mut(row_len).zip(dyc) {
                row[pad..pad + WO].copy_from_slice(src);
            }
        }
        padded
    }

    /// One tile of [`Self::grad_input_host`]: `B` channels by `T` columns from `iw0` of row `ih`.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[inline(always)]
    fn grad_input_host_tile<const B: usize, const T: usize>(
        &self,
        padded: &[f32],
        (kh_lo, kh_hi): (usize, usize),
        ci0: usize,
        ih: usize,
        iw0: usize,
        dx: &mut [[[f32; W]; H]; CI],
    ) {
        let row_len = W + K - 1;
        let mut acc = [[0.0f32; T]; B];
        for (co, wco) in self.weight.iter().enumerate() {
            let Some(wb) = wco[ci0..].first_chunk::<B>() else { return };
            for kh in kh_lo..kh_hi {
                let start = (co * HO + ih + P - kh) * row_len;
                let Some(row) = padded.get(start..start + row_len) else { return };
                for kw in 0..K {
                    let Some(seg) = row[iw0 + K - 1 - kw..].first_chunk::<T>() else { return };
                    for c in 0..B {
                        let wv = wb[c][kh][kw];
                        for j in 0..T {
                            acc[c][j] += wv * seg[j];
                        }
                    }
                }
            }
        }
        for c in 0..B {
            if let Some(d) = dx[ci0 + c][ih][iw0..].first_chunk_mut::<T>() {
                *d = acc[c];
            }
        }
    }

    /// Input gradient for stride 1 with `P < K` and rows that fit [`PAD_ROW`]: for each input
    /// row and filter, the output-gradient rows it needs are copied into zero-padded buffers
    /// and their taps added to the input gradient in register tiles. Each element adds its
    /// terms in the order `(co, kh, kw)`, as [`Self::grad_input_strided`] does.
    fn grad_input_stride1<const T: usize>(&self, dy: &[[[f32; WO]; HO]; CO], dx: &mut [[[f32; W]; H]; CI]) {
        for row in dx.iter_mut().flatten() {
            row.fill(0.0);
        }
        let pad = K - 1 - P;
        let mut rows = [[0.0f32; PAD_ROW]; K];
        for ih in 0..H {
            // Output row oh = ih + P - kh must lie in 0..HO.
            let kh_lo = (ih + P + 1).saturating_sub(HO);
            let kh_hi = (ih + P + 1).min(K);
            for (dyc, wco) in dy.iter().zip(&self.weight) {
                let mut zero = true;
                for kh in kh_lo..kh_hi {
                    let src = &dyc[ih + P - kh];
                    zero &= src.iter().all(|&v| v == 0.0);
                    rows[kh][pad..pad + WO].copy_from_slice(src);
                }
                if zero {
                    // Adds only zeros: skipping it changes no value.
                    continue;
                }
                let mut ci = 0;
                while ci + CB <= CI {
                    Self::grad_input_row::<CB, T>(wco, (kh_lo, kh_hi), &rows, ci, ih, dx);
                    ci += CB;
                }
                while ci < CI {
                    Self::grad_input_row::<1, T>(wco, (kh_lo, kh_hi), &rows, ci, ih, dx);
                    ci += 1;
                }
            }
        }
    }

    /// Input gradient for any stride: scattered row updates in the same `(co, kh, kw)` order.
    fn grad_input_strided(&self, dy: &[[[f32; WO]; HO]; CO], dx: &mut [[[f32; W]; H]; CI]) {
        for (ci, dxc) in dx.iter_mut().enumerate() {
            for row in dxc.iter_mut() {
                row.fill(0.0);
            }
            for (dyc, wco) in dy.iter().zip(&self.weight) {
                for (kh, wr) in wco[ci].iter().enumerate() {
                    let (oh_lo, oh_hi) = valid_range(HO, H, S, kh, P);
                    for oh in oh_lo..oh_hi {
                        let dxr = &mut dxc[oh * S + kh - P];
                        let dyr = &dyc[oh];
                        for (kw, &wv) in wr.iter().enumerate() {
                            let (lo, hi) = valid_range(WO, W, S, kw, P);
                            for ow in lo..hi {
                                dxr[ow * S + kw - P] += wv * dyr[ow];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Why the Cortex-M4F assembly kernels do not cover this shape (`None`: they do).
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    const M4_UNSUPPORTED: Option<&'static str> = crate::kernels::m4::conv::unsupported(P, K, H, W, CI, CO);

    /// The forward pass with the Cortex-M4F assembly kernels: strips of a few channels by a
    /// few columns over all output rows, each output summed as [`Self::forward_portable`]
    /// sums it.
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    fn forward_m4(&self, x: &[[[f32; W]; H]; CI], y: &mut [[[f32; WO]; HO]; CO]) {
        use crate::kernels::m4::conv::{forward_strip, forward_tile};
        let (b, t) = forward_tile(CO, CI, WO, K, S);
        let xf = x.as_flattened().as_flattened();
        let wf = self.weight.as_flattened().as_flattened().as_flattened();
        let yf = y.as_flattened_mut().as_flattened_mut();
        let mut co = 0;
        while co < CO {
            let mut ow = 0;
            while ow < WO {
                let part = 2 * usize::from(co + b > CO) + usize::from(ow + t > WO);
                let (xs, ws, bs) = (&xf[ow * S..], &wf[co * CI * K * K..], &self.bias[co..]);
                let ys = &mut yf[co * HO * WO + ow..];
                match part {
                    0 => forward_strip::<CI, CO, K, S, H, W, HO, WO, 0>(xs, ws, bs, ys),
                    1 => forward_strip::<CI, CO, K, S, H, W, HO, WO, 1>(xs, ws, bs, ys),
                    2 => forward_strip::<CI, CO, K, S, H, W, HO, WO, 2>(xs, ws, bs, ys),
                    _ => forward_strip::<CI, CO, K, S, H, W, HO, WO, 3>(xs, ws, bs, ys),
                }
                ow += t;
            }
            co += b;
        }
    }

    /// The forward pass, portable: the code the Cortex-M runs, and the host without AVX2.
    /// [`Layer::forward`] picks an AVX2 build of the same code at run time on the host (with
    /// the `std` feature); both give the same bits.
    #[inline(always)]
    pub fn forward_portable(&self, x: &[[[f32; W]; H]; CI], y: &mut [[[f32; WO]; HO]; CO]) {
        self.forward_tiles::<CB, TW>(x, y);
    }

    /// The forward pass in column tiles of `T` outputs (each output adds its terms in the same
    /// order whatever `T`: the same bits).
    #[inline(always)]
    fn forward_tiles<const B: usize, const T: usize>(&self, x: &[[[f32; W]; H]; CI], y: &mut [[[f32; WO]; HO]; CO]) {
        let mut co = 0;
        while co + B <= CO {
            self.block::<B, T>(x, co, y);
            co += B;
        }
        while co < CO {
            self.block::<1, T>(x, co, y);
            co += 1;
        }
    }

    /// The backward pass, portable (see [`Self::forward_portable`]).
    #[inline(always)]
    pub fn backward_portable(
        &self,
        x: &[[[f32; W]; H]; CI],
        dy: &[[[f32; WO]; HO]; CO],
        grads: Option<&mut Self>,
        dx: Option<&mut [[[f32; W]; H]; CI]>,
    ) {
        if let Some(grads) = grads {
            Self::grad_bias(dy, grads);
            Self::grad_weight_portable(x, dy, grads);
        }
        if let Some(dx) = dx {
            self.grad_input_portable(dy, dx);
        }
    }

    /// [`Self::backward_portable`] with input-gradient tiles of `T` columns (the same bits).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[inline(always)]
    fn backward_tiles<const T: usize>(
        &self,
        x: &[[[f32; W]; H]; CI],
        dy: &[[[f32; WO]; HO]; CO],
        grads: Option<&mut Self>,
        dx: Option<&mut [[[f32; W]; H]; CI]>,
    ) {
        if let Some(grads) = grads {
            Self::grad_bias(dy, grads);
            Self::grad_weight_portable(x, dy, grads);
        }
        if let Some(dx) = dx {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            if S == 1 && P < K {
                self.grad_input_host::<T>(dy, dx);
                return;
            }
            self.grad_input_tiles::<T>(dy, dx);
        }
    }

    /// Adds the bias gradients: each channel's output gradient summed in eight lanes.
    #[inline(always)]
    fn grad_bias(dy: &[[[f32; WO]; HO]; CO], grads: &mut Self) {
        for (gb, d) in grads.bias.iter_mut().zip(dy) {
            *gb += sum8(d.as_flattened());
        }
    }

    /// Adds the weight gradients, two filters at a time.
    #[inline(always)]
    fn grad_weight_portable(x: &[[[f32; W]; H]; CI], dy: &[[[f32; WO]; HO]; CO], grads: &mut Self) {
        let mut co = 0;
        while co < CO {
            for ci in 0..CI {
                for kh in 0..K {
                    if co + 2 <= CO {
                        Self::grad_weight_block::<2>(x, dy, co, ci, kh, &mut grads.weight);
                    } else {
                        Self::grad_weight_block::<1>(x, dy, co, ci, kh, &mut grads.weight);
                    }
                }
            }
            co += 2;
        }
    }

    /// Writes the input gradient.
    #[inline(always)]
    fn grad_input_portable(&self, dy: &[[[f32; WO]; HO]; CO], dx: &mut [[[f32; W]; H]; CI]) {
        self.grad_input_tiles::<TW>(dy, dx);
    }

    /// The input gradient in column tiles of `T` inputs (each element adds its terms in the
    /// same order whatever `T`: the same bits).
    #[inline(always)]
    fn grad_input_tiles<const T: usize>(&self, dy: &[[[f32; WO]; HO]; CO], dx: &mut [[[f32; W]; H]; CI]) {
        if S == 1 && P < K && W + K <= PAD_ROW {
            self.grad_input_stride1::<T>(dy, dx);
        } else {
            self.grad_input_strided(dy, dx);
        }
    }

    /// Why the Cortex-M4F weight-gradient kernel does not cover this shape (`None`: it does).
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    const M4_GRAD_WEIGHT_UNSUPPORTED: Option<&'static str> =
        crate::kernels::m4::conv::grad_weight_unsupported(P, K, H, W, CI, CO, S, HO, WO);

    /// The backward pass with the Cortex-M4F assembly kernels where they apply, each sum in
    /// the order of [`Self::backward_portable`].
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    fn backward_m4(
        &self,
        x: &[[[f32; W]; H]; CI],
        dy: &[[[f32; WO]; HO]; CO],
        grads: Option<&mut Self>,
        dx: Option<&mut [[[f32; W]; H]; CI]>,
    ) {
        use crate::kernels::m4::conv::{GRAD_WEIGHT_BUFFER, grad_weight, grad_weight_tile};
        if let Some(grads) = grads {
            Self::grad_bias(dy, grads);
            if Self::M4_GRAD_WEIGHT_UNSUPPORTED.is_none() {
                let (b, _) = grad_weight_tile(CO, K, S, HO, WO);
                let xf = x.as_flattened().as_flattened();
                let dyf = dy.as_flattened().as_flattened();
                let gf = grads.weight.as_flattened_mut().as_flattened_mut().as_flattened_mut();
                let mut buf = [0.0f32; GRAD_WEIGHT_BUFFER];
                let mut co = 0;
                while co < CO {
                    let (dys, gs) = (&dyf[co * HO * WO..], &mut gf[co * CI * K * K..]);
                    if co + b <= CO {
                        grad_weight::<CI, CO, K, S, H, W, HO, WO, 0>(xf, dys, gs, &mut buf);
                    } else {
                        grad_weight::<CI, CO, K, S, H, W, HO, WO, 1>(xf, dys, gs, &mut buf);
                    }
                    co += b;
                }
            } else {
                Self::grad_weight_portable(x, dy, grads);
            }
        }
        if let Some(dx) = dx {
            if Self::M4_GRAD_INPUT_UNSUPPORTED.is_none() {
                self.grad_input_m4(dy, dx);
            } else {
                self.grad_input_portable(dy, dx);
            }
        }
    }

    /// Why the Cortex-M4F input-gradient kernel does not cover this shape (`None`: it does).
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    const M4_GRAD_INPUT_UNSUPPORTED: Option<&'static str> =
        crate::kernels::m4::conv::grad_input_unsupported(P, K, S, H, W, CI, CO, WO);

    /// The input gradient with the Cortex-M4F kernel, one input row at a time (stride above
    /// 1, no padding): the kernel rows that reach input row `ih` are `kh0, kh0 + S, ...`.
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    fn grad_input_m4(&self, dy: &[[[f32; WO]; HO]; CO], dx: &mut [[[f32; W]; H]; CI]) {
        use crate::kernels::m4::conv::grad_input_row;
        let wf = self.weight.as_flattened().as_flattened().as_flattened();
        let dyf = dy.as_flattened().as_flattened();
        for (ci, dxc) in dx.iter_mut().enumerate() {
            for (ih, row) in dxc.iter_mut().enumerate() {
                // Output row oh = (ih - kh) / S must lie in 0..HO.
                let lo = ih.saturating_sub((HO - 1) * S);
                let kh0 = lo + (ih - lo) % S;
                let n = if kh0 < K && kh0 <= ih { ((K - 1).min(ih) - kh0) / S + 1 } else { 0 };
                let oh0 = (ih - kh0.min(ih)) / S;
                let ws = &wf[ci * K * K + kh0.min(K - 1) * K..];
                let dys = &dyf[(oh0 + 1).saturating_sub(n) * WO..];
                match n {
                    0 => row.fill(0.0),
                    1 => grad_input_row::<CI, CO, K, S, HO, W, WO, 1>(ws, dys, row),
                    2 => grad_input_row::<CI, CO, K, S, HO, W, WO, 2>(ws, dys, row),
                    3 => grad_input_row::<CI, CO, K, S, HO, W, WO, 3>(ws, dys, row),
                    _ => grad_input_row::<CI, CO, K, S, HO, W, WO, 4>(ws, dys, row),
                }
            }
        }
    }

    /// The forward pass through a host SIMD path: `false` (nothing written) when this CPU
    /// lacks it. [`Layer::forward`] takes the widest one the CPU has; each gives the bits of
    /// [`Self::forward_portable`] (tests compare them).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[must_use]
    pub fn forward_on(&self, path: X86Path, x: &[[[f32; W]; H]; CI], y: &mut [[[f32; WO]; HO]; CO]) -> bool {
        if !path.available() {
            return false;
        }
        // SAFETY: the CPU has the path's features, checked just above.
        #[allow(unsafe_code)]
        unsafe {
            match path {
                X86Path::Avx2 => self.forward_avx2(x, y),
                X86Path::Avx512 => self.forward_avx512(x, y),
            }
        }
        true
    }

    /// The backward pass through a host SIMD path (see [`Self::forward_on`]).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[must_use]
    pub fn backward_on(
        &self,
        path: X86Path,
        x: &[[[f32; W]; H]; CI],
        dy: &[[[f32; WO]; HO]; CO],
        grads: Option<&mut Self>,
        dx: Option<&mut [[[f32; W]; H]; CI]>,
    ) -> bool {
        if !path.available() {
            return false;
        }
        // SAFETY: the CPU has the path's features, checked just above.
        #[allow(unsafe_code)]
        unsafe {
            match path {
                X86Path::Avx2 => self.backward_avx2(x, dy, grads, dx),
                X86Path::Avx512 => self.backward_avx512(x, dy, grads, dx),
            }
        }
        true
    }

    /// Output tiles of 16 columns where rows are that wide (two AVX2 or one AVX-512 vector
    /// per filter), else of [`TW`].
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[inline(always)]
    fn forward_wide(&self, x: &[[[f32; W]; H]; CI], y: &mut [[[f32; WO]; HO]; CO]) {
        if WO >= WIDE {
            self.forward_tiles::<CB, WIDE>(x, y);
        } else {
            self.forward_tiles::<CB, TW>(x, y);
        }
    }

    /// [`Self::forward_portable`]'s arithmetic compiled for AVX2 (host only, chosen at run
    /// time). The kernels add each output's terms in one fixed order with separate multiplies
    /// and adds, so wider vectors and tiles change the speed, not the bits.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2")]
    fn forward_avx2(&self, x: &[[[f32; W]; H]; CI], y: &mut [[[f32; WO]; HO]; CO]) {
        self.forward_wide(x, y);
    }

    /// [`Self::forward_avx2`] compiled for AVX-512; unpadded stride-1 convolutions with a
    /// multiple of 16 filters take [`Self::forward_filter_lanes`].
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,avx512f")]
    fn forward_avx512(&self, x: &[[[f32; W]; H]; CI], y: &mut [[[f32; WO]; HO]; CO]) {
        if S == 1 && P == 0 && CO.is_multiple_of(16) {
            self.forward_filter_lanes(x, y);
        } else {
            self.forward_wide(x, y);
        }
    }

    /// The forward pass of an unpadded stride-1 convolution with AVX-512 vectors across
    /// filters: the weights repacked `[ci][kh][kw][co]`, a register tile of `R` output columns
    /// by up to 64 filters, each input value broadcast. Every output still adds its terms
    /// `w * x` in the order `(ci, kh, kw)` from `+0.0` with separate multiplies and adds, then
    /// the bias: [`Self::forward_portable`]'s bits. A tile keeps sixteen independent sums in
    /// flight (on `mnist-cnn`'s 32 -> 64 layer, before the stores went through
    /// `store_transposed!`: 8 columns by 32 filters 122 us, 6 by 32 154 us, 12 by 32 130 us;
    /// the 16-column tiles over filters four at a time took 207 us).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,avx512f")]
    fn forward_filter_lanes(&self, x: &[[[f32; W]; H]; CI], y: &mut [[[f32; WO]; HO]; CO]) {
        // Written in order (the reads stride over the filters): `[ci][kh][kw][co]`.
        let mut packed = std::vec::Vec::with_capacity(CI * K * K * CO);
        for ci in 0..CI {
            for kh in 0..K {
                for kw in 0..K {
                    packed.extend(self.weight.iter().map(|f| f[ci][kh][kw]));
                }
            }
        }
        // Filters 64 at a time by 4 columns where they divide, else 32 by 8, else 16 by 8
        // (measured on the 32 -> 64 layer, before `store_transposed!`: 64 by 4 115 us, 32 by 8
        // 120-132 us, 64 by 6 166 us; 64 by 4 now 94-102 us).
        if CO.is_multiple_of(64) {
            self.filter_lanes_rows::<4, 4>(&packed, x, y);
        } else if CO.is_multiple_of(32) {
            self.filter_lanes_rows::<8, 2>(&packed, x, y);
        } else {
            self.filter_lanes_rows::<8, 1>(&packed, x, y);
        }
    }

    /// Every output row of [`Self::forward_filter_lanes`] in tiles of `R`, 4, 2 and 1
    /// columns by `16 * V` filters.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,avx512f")]
    #[inline]
    fn filter_lanes_rows<const R: usize, const V: usize>(
        &self,
        packed: &[f32],
        x: &[[[f32; W]; H]; CI],
        y: &mut [[[f32; WO]; HO]; CO],
    ) {
        for oh in 0..HO {
            let mut ow = 0;
            while ow + R <= WO {
                self.filter_lanes_tile::<R, V>(packed, x, oh, ow, y);
                ow += R;
            }
            // The rest in tiles of 4, 2 and 1 columns.
            if ow + 4 <= WO {
                self.filter_lanes_tile::<4, V>(packed, x, oh, ow, y);
                ow += 4;
            }
            if ow + 2 <= WO {
                self.filter_lanes_tile::<2, V>(packed, x, oh, ow, y);
                ow += 2;
            }
            if ow < WO {
                self.filter_lanes_tile::<1, V>(packed, x, oh, ow, y);
            }
        }
    }

    /// Output columns `ow..ow + R` of row `oh`, every filter (see
    /// [`Self::forward_filter_lanes`]).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,avx512f")]
    #[inline]
    #[allow(unsafe_code)]
    fn filter_lanes_tile<const R: usize, const V: usize>(
        &self,
        packed: &[f32],
        x: &[[[f32; W]; H]; CI],
        oh: usize,
        ow: usize,
        y: &mut [[[f32; WO]; HO]; CO],
    ) {
        use core::arch::x86_64::{
            __m512, _mm512_add_ps, _mm512_loadu_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_setzero_ps,
        };
        let mut co0 = 0;
        while co0 + 16 * V <= CO {
            let mut acc: [[__m512; V]; R] = [[_mm512_setzero_ps(); V]; R];
            for ci in 0..CI {
                for kh in 0..K {
                    let row = &x[ci][oh + kh];
                    for kw in 0..K {
                        let base = ((ci * K + kh) * K + kw) * CO + co0;
                        let Some(wsl) = packed.get(base..base + 16 * V) else { return };
                        let Some(xs) = row.get(ow + kw..ow + kw + R) else { return };
                        let mut wv = [_mm512_setzero_ps(); V];
                        for (v, w) in wv.iter_mut().enumerate() {
                            // SAFETY: `wsl` holds 16 * V floats.
                            *w = unsafe { _mm512_loadu_ps(wsl.as_ptr().add(16 * v)) };
                        }
                        for j in 0..R {
                            let xb = _mm512_set1_ps(xs[j]);
                            for v in 0..V {
                                acc[j][v] = _mm512_add_ps(acc[j][v], _mm512_mul_ps(wv[v], xb));
                            }
                        }
                    }
                }
            }
            // Add the bias, then store 4 columns x 16 filters at a time transposed.
            for v in 0..V {
                let Some(bias) = self.bias.get(co0 + 16 * v..co0 + 16 * v + 16) else { return };
                // SAFETY: `bias` holds 16 floats.
                let b = unsafe { _mm512_loadu_ps(bias.as_ptr()) };
                for j0 in (0..R).step_by(4) {
                    let mut a = [_mm512_setzero_ps(); 4];
                    for j in 0..(R - j0).min(4) {
                        a[j] = _mm512_add_ps(acc[j0 + j][v], b);
                    }
                    store_transposed!(a, (R - j0).min(4), y, co0 + 16 * v, oh, ow + j0);
                }
            }
            co0 += 16 * V;
        }
    }

    /// [`Self::backward_portable`] compiled for AVX2 (host only, chosen at run time), input
    /// gradient tiles of 16 columns.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2")]
    fn backward_avx2(
        &self,
        x: &[[[f32; W]; H]; CI],
        dy: &[[[f32; WO]; HO]; CO],
        grads: Option<&mut Self>,
        dx: Option<&mut [[[f32; W]; H]; CI]>,
    ) {
        self.backward_tiles::<WIDE>(x, dy, grads, dx);
    }

    /// [`Self::backward_avx2`] compiled for AVX-512; the stride-1 input gradient of a multiple
    /// of 16 input channels takes [`Self::grad_input_channel_lanes`].
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,avx512f")]
    fn backward_avx512(
        &self,
        x: &[[[f32; W]; H]; CI],
        dy: &[[[f32; WO]; HO]; CO],
        grads: Option<&mut Self>,
        dx: Option<&mut [[[f32; W]; H]; CI]>,
    ) {
        let (grads, dx) = match grads {
            Some(g) if S == 1 && P == 0 && CO.is_multiple_of(8) && K <= 24 => {
                Self::grad_bias(dy, g);
                Self::grad_weight_pairs(x, dy, g);
                (None, dx)
            }
            g => (g, dx),
        };
        if S == 1 && P < K && CI.is_multiple_of(16) {
            if let Some(dx) = dx {
                self.grad_input_channel_lanes(dy, dx);
            }
            self.backward_tiles::<WIDE>(x, dy, grads, None);
        } else {
            self.backward_tiles::<WIDE>(x, dy, grads, dx);
        }
    }

    /// The weight gradients of an unpadded stride-1 convolution with AVX-512 vectors that hold
    /// the 8-lane sums of two filters side by side (eight filters, so `4 * K` sums, in flight):
    /// each lane adds the same products in the same order as [`Self::grad_weight_block`]
    /// (column `ow` into lane `ow mod 8`, row by row; the columns past the last full group of
    /// 8 into the first lanes, the products of the others masked to `+0.0`, which changes no
    /// sum), reduced in the same tree: the portable bits.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,avx512f")]
    #[allow(unsafe_code)]
    fn grad_weight_pairs(x: &[[[f32; W]; H]; CI], dy: &[[[f32; WO]; HO]; CO], grads: &mut Self) {
        use core::arch::x86_64::{
            __m512, __mmask16, _mm256_castps_pd, _mm256_loadu_ps, _mm512_add_ps, _mm512_broadcast_f64x4,
            _mm512_castpd_ps, _mm512_castpd256_pd512, _mm512_insertf64x4, _mm512_maskz_mul_ps, _mm512_setzero_ps,
            _mm512_storeu_ps,
        };
        /// Pairs of filters per pass: `2 * NP * K` sums in flight.
        const NP: usize = 4;
        let full = WO / LANES * LANES;
        let mut co = 0;
        while co + 2 * NP <= CO {
            for ci in 0..CI {
                for kh in 0..K {
                    let mut acc: [[__m512; K]; NP] = [[_mm512_setzero_ps(); K]; NP];
                    for oh in 0..HO {
                        let Some(xr) = x[ci].get(oh + kh) else { return };
                        // Copies of the columns past the last full group of 8, whose
                        // products go into the first lanes only (the rest masked to +0.0).
                        let mut xt = [0.0f32; 32];
                        for (t, v) in xt.iter_mut().zip(xr.get(full..).unwrap_or(&[])) {
                            *t = *v;
                        }
                        let mut dt = [[0.0f32; LANES]; 2 * NP];
                        for (c, t) in dt.iter_mut().enumerate() {
                            for (t, v) in t.iter_mut().zip(&dy[co + c][oh][full..]) {
                                *t = *v;
                            }
                        }
                        // (Macros, not closures: closures do not inherit the function's
                        // target features, and their intrinsics would become calls.)
                        macro_rules! ld {
                            ($a:expr) => {{
                                let a: &[f32] = $a;
                                if a.len() < LANES {
                                    return;
                                }
                                // SAFETY: `a` holds the 8 floats read, checked just above.
                                _mm256_castps_pd(unsafe { _mm256_loadu_ps(a.as_ptr()) })
                            }};
                        }
                        macro_rules! step {
                            ($xs:expr, $row:expr, $mask:expr) => {{
                                let (xs, mask): (&[f32], __mmask16) = ($xs, $mask);
                                // Two 8-float rows side by side (AVX-512F has the 256-bit
                                // insert and broadcast for 64-bit lanes only: the bits just move).
                                let mut dv = [_mm512_setzero_ps(); NP];
                                for (p, v) in dv.iter_mut().enumerate() {
                                    let lo = _mm512_castpd256_pd512(ld!($row(2 * p)));
                                    *v = _mm512_castpd_ps(_mm512_insertf64x4::<1>(lo, ld!($row(2 * p + 1))));
                                }
                                for kw in 0..K {
                                    let Some(xk) = xs.get(kw..) else { return };
                                    let xv = _mm512_castpd_ps(_mm512_broadcast_f64x4(ld!(xk)));
                                    for p in 0..NP {
                                        acc[p][kw] = _mm512_add_ps(acc[p][kw], _mm512_maskz_mul_ps(mask, dv[p], xv));
                                    }
                                }
                            }};
                        }
                        let mut ow = 0;
                        while ow < full {
                            let Some(xs) = xr.get(ow..) else { return };
                            step!(xs, |c: usize| &dy[co + c][oh][ow..], 0xffff);
                            ow += LANES;
                        }
                        if full < WO {
                            let first: u16 = (1 << (WO - full)) - 1;
                            step!(&xt, |c: usize| &dt[c][..], first | first << LANES);
                        }
                    }
                    for (p, pair) in acc.iter().enumerate() {
                        for (kw, a) in pair.iter().enumerate() {
                            let mut lanes = [0.0f32; 16];
                            // SAFETY: 16 floats into an array of 16.
                            unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), *a) };
                            for (half, c) in [(0, co + 2 * p), (LANES, co + 2 * p + 1)] {
                                let Some(l) = lanes[half..].first_chunk::<LANES>() else { return };
                                // `+ 0.0`: the portable code adds its padding columns' sum, +0.0
                                // without padding, which turns a -0.0 sum into +0.0.
                                grads.weight[c][ci][kh][kw] += reduce8(l) + 0.0;
                            }
                        }
                    }
                }
            }
            co += 2 * NP;
        }
    }

    /// The stride-1 input gradient with AVX-512 vectors across input channels: the weights
    /// repacked `[co][kh][kw][ci]`, the output gradient zero-padded as in
    /// [`Self::grad_input_host`], a register tile of up to 8 input columns by 32 (or 16)
    /// channels, each output-gradient value broadcast. Every element adds its terms in the
    /// order `(co, kh, kw)` from `+0.0`, zeros of the padding included, with separate
    /// multiplies and adds: [`Self::grad_input_host`]'s bits, so the portable ones.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,avx512f")]
    fn grad_input_channel_lanes(&self, dy: &[[[f32; WO]; HO]; CO], dx: &mut [[[f32; W]; H]; CI]) {
        let padded = Self::padded_dy(dy);
        // Written in order: `[co][kh][kw][ci]`.
        let mut packed = std::vec::Vec::with_capacity(CO * K * K * CI);
        for filter in &self.weight {
            for kh in 0..K {
                for kw in 0..K {
                    packed.extend(filter.iter().map(|rows| rows[kh][kw]));
                }
            }
        }
        for ih in 0..H {
            // Output row oh = ih + P - kh must lie in 0..HO.
            let kh = ((ih + P + 1).saturating_sub(HO), (ih + P + 1).min(K));
            let mut iw = 0;
            while iw + 8 <= W {
                Self::channel_lanes_columns::<8>(&packed, &padded, kh, ih, iw, dx);
                iw += 8;
            }
            if iw + 4 <= W {
                Self::channel_lanes_columns::<4>(&packed, &padded, kh, ih, iw, dx);
                iw += 4;
            }
            if iw + 2 <= W {
                Self::channel_lanes_columns::<2>(&packed, &padded, kh, ih, iw, dx);
                iw += 2;
            }
            if iw < W {
                Self::channel_lanes_columns::<1>(&packed, &padded, kh, ih, iw, dx);
            }
        }
    }

    /// Input columns `iw0..iw0 + R` of row `ih`, every channel: 32 at a time, then 16 (see
    /// [`Self::grad_input_channel_lanes`]).
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,avx512f")]
    #[inline]
    fn channel_lanes_columns<const R: usize>(
        packed: &[f32],
        padded: &[f32],
        kh: (usize, usize),
        ih: usize,
        iw0: usize,
        dx: &mut [[[f32; W]; H]; CI],
    ) {
        let mut ci0 = 0;
        while ci0 + 32 <= CI {
            Self::channel_lanes_tile::<R, 2>(packed, padded, kh, ih, iw0, ci0, dx);
            ci0 += 32;
        }
        if ci0 < CI {
            Self::channel_lanes_tile::<R, 1>(packed, padded, kh, ih, iw0, ci0, dx);
        }
    }

    /// Input columns `iw0..iw0 + R` of row `ih`, channels `ci0..ci0 + 16 * V`.
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    #[target_feature(enable = "avx2,avx512f")]
    #[inline]
    #[allow(unsafe_code)]
    fn channel_lanes_tile<const R: usize, const V: usize>(
        packed: &[f32],
        padded: &[f32],
        (kh_lo, kh_hi): (usize, usize),
        ih: usize,
        iw0: usize,
        ci0: usize,
        dx: &mut [[[f32; W]; H]; CI],
    ) {
        use core::arch::x86_64::{
            __m512, _mm512_add_ps, _mm512_loadu_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_setzero_ps,
        };
        let row_len = W + K - 1;
        let mut acc: [[__m512; V]; R] = [[_mm512_setzero_ps(); V]; R];
        for co in 0..CO {
            for kh in kh_lo..kh_hi {
                let start = (co * HO + ih + P - kh) * row_len;
                let Some(row) = padded.get(start..start + row_len) else { return };
                for kw in 0..K {
                    let base = ((co * K + kh) * K + kw) * CI + ci0;
                    let Some(wsl) = packed.get(base..base + 16 * V) else { return };
                    let Some(ds) = row.get(iw0 + K - 1 - kw..iw0 + K - 1 - kw + R) else { return };
                    let mut wv = [_mm512_setzero_ps(); V];
                    for (v, w) in wv.iter_mut().enumerate() {
                        // SAFETY: `wsl` holds 16 * V floats.
                        *w = unsafe { _mm512_loadu_ps(wsl.as_ptr().add(16 * v)) };
                    }
                    for j in 0..R {
                        let db = _mm512_set1_ps(ds[j]);
                        for v in 0..V {
                            acc[j][v] = _mm512_add_ps(acc[j][v], _mm512_mul_ps(wv[v], db));
                        }
                    }
                }
            }
        }
        for v in 0..V {
            for j0 in (0..R).step_by(4) {
                let mut a = [_mm512_setzero_ps(); 4];
                for j in 0..(R - j0).min(4) {
                    a[j] = acc[j0 + j][v];
                }
                store_transposed!(a, (R - j0).min(4), dx, ci0 + 16 * v, ih, iw0 + j0);
            }
        }
    }
}

/// The host SIMD builds of the convolution kernels ([`Conv2d::forward_on`]).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum X86Path {
    /// AVX2: 8 lanes.
    Avx2,
    /// AVX-512F: 16 lanes.
    Avx512,
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
impl X86Path {
    /// The widest path this CPU has, if any.
    #[must_use]
    pub fn best() -> Option<Self> {
        [Self::Avx512, Self::Avx2].into_iter().find(|p| p.available())
    }

    /// Whether this CPU has the path's instructions.
    #[must_use]
    pub fn available(self) -> bool {
        match self {
            Self::Avx2 => std::is_x86_feature_detected!("avx2"),
            Self::Avx512 => std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("avx512f"),
        }
    }
}

impl<
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
> Layer for Conv2d<CI, CO, K, S, P, H, W, HO, WO>
{
    type Input = [[[f32; W]; H]; CI];
    type Output = [[[f32; WO]; HO]; CO];
    type Acts = ();
    const ZERO: Self = Conv2d { weight: [[[[0.0; K]; K]; CI]; CO], bias: [0.0; CO] };

    fn forward(&self, x: &Self::Input, _acts: &mut (), y: &mut Self::Output, _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if let Some(path) = X86Path::best() {
            let _ = self.forward_on(path, x, y);
            return;
        }
        #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
        if Self::M4_UNSUPPORTED.is_none() {
            self.forward_m4(x, y);
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
        grads: Option<&mut Self>,
        dx: Option<&mut Self::Input>,
    ) {
        let () = Self::SHAPE_OK;
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if let Some(path) = X86Path::best() {
            let _ = self.backward_on(path, x, dy, grads, dx);
            return;
        }
        #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
        if Self::M4_UNSUPPORTED.is_none() {
            self.backward_m4(x, dy, grads, dx);
            return;
        }
        self.backward_portable(x, dy, grads, dx);
    }

    fn init_with(&mut self, init: Init, rng: &mut Rng) {
        let flat = self.weight.as_flattened_mut().as_flattened_mut().as_flattened_mut();
        init.fill(flat, &mut self.bias, CI * K * K, CO * K * K, rng);
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("Conv2D", [CO, HO, WO])
            .with_tensors(Self::TENSORS, "conv", "tinytrain::layers::Conv2d")
            .with_window(K, S, P));
    }

    fn visit_outputs(_acts: &(), y: &Self::Output, f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y.as_flattened().as_flattened());
    }
}

impl<
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
> Leaf for Conv2d<CI, CO, K, S, P, H, W, HO, WO>
{
    const TENSORS: &'static [TensorDesc] = &[TensorDesc::kernel(&[CO, CI, K, K]), TensorDesc::bias(&[CO])];

    #[inline]
    fn tensor(&self, i: usize) -> &[f32] {
        if i == 0 { self.weight.as_flattened().as_flattened().as_flattened() } else { &self.bias }
    }

    #[inline]
    fn tensor_mut(&mut self, i: usize) -> &mut [f32] {
        if i == 0 { self.weight.as_flattened_mut().as_flattened_mut().as_flattened_mut() } else { &mut self.bias }
    }
}
