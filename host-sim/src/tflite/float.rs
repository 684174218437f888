//! float32 kernels with TFLite's reference order of operations (`reference_ops::*` of
//! `tensorflow/lite/kernels/internal/reference/`): sums in the reference kernels' loop order,
//! bias added after the sum, then the activation clamp as `min(max(x, lo), hi)` with C++'s
//! `std::max`/`std::min` (a NaN goes through). Multiplications and additions round
//! separately (no fused multiply-add), as TFLite's portable build does.
//!
//! Shapes have been checked by the loader: every slice has the length its shape says.

use super::graph::{Activation, Window};

/// `std::max(a, b)`: `a` unless `a < b`.
fn cpp_max(a: f32, b: f32) -> f32 {
    if a < b { b } else { a }
}

/// `std::min(a, b)`: `a` unless `b < a`.
fn cpp_min(a: f32, b: f32) -> f32 {
    if b < a { b } else { a }
}

/// `ActivationFunctionWithMinMax` with the range of `CalculateActivationRange`.
#[must_use]
pub fn activate(x: f32, a: Activation) -> f32 {
    match a {
        Activation::None => x,
        Activation::Relu => cpp_max(x, 0.0),
        Activation::Relu6 => cpp_min(cpp_max(x, 0.0), 6.0),
    }
}

/// FULLY_CONNECTED: `units` rows of weights, each `depth = weights.len() / units` long.
pub fn fully_connected(x: &[f32], w: &[f32], bias: Option<&[f32]>, units: usize, a: Activation, y: &mut [f32]) {
    let depth = w.len() / units.max(1);
    if depth == 0 {
        return;
    }
    for (xb, yb) in x.chunks_exact(depth).zip(y.chunks_exact_mut(units)) {
        for ((o, out), row) in yb.iter_mut().enumerate().zip(w.chunks_exact(depth)) {
            let mut total = 0.0f32;
            for (&xi, &wi) in xb.iter().zip(row) {
                total += xi * wi;
            }
            let b = bias.and_then(|b| b.get(o)).copied().unwrap_or(0.0);
            *out = activate(total + b, a);
        }
    }
}

/// NHWC geometry of a 2-D window operator.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    /// Input `[N, H, W, C]`.
    pub input: [usize; 4],
    /// Output `[N, OH, OW, C]`.
    pub output: [usize; 4],
    /// Filter height and width.
    pub kh: usize,
    /// Filter width.
    pub kw: usize,
    /// Strides, dilations and padding.
    pub window: Window,
}

impl Geometry {
    /// Padding before the first row and column, as TFLite computes it.
    #[must_use]
    pub fn pads(&self) -> (usize, usize) {
        let w = &self.window;
        (
            w.padding.before(self.input[1], self.kh, w.stride_h, w.dilation_h, self.output[1]),
            w.padding.before(self.input[2], self.kw, w.stride_w, w.dilation_w, self.output[2]),
        )
    }

    /// Input coordinate of tap `k` for output coordinate `o`, if inside `0..size`.
    fn tap(o: usize, stride: usize, pad: usize, dilation: usize, k: usize, size: usize) -> Option<usize> {
        let pos = (o * stride + dilation * k).checked_sub(pad)?;
        (pos < size).then_some(pos)
    }
}

/// CONV_2D: filter `[CO, KH, KW, CI]`; sums over filter row, column, input channel.
pub fn conv_2d(g: &Geometry, x: &[f32], filter: &[f32], bias: Option<&[f32]>, a: Activation, y: &mut [f32]) {
    let [n, h, w, ci] = g.input;
    let [_, oh, ow, co] = g.output;
    let (pad_h, pad_w) = g.pads();
    let win = &g.window;
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for oc in 0..co {
                    let mut total = 0.0f32;
                    for ky in 0..g.kh {
                        let Some(iy) = Geometry::tap(oy, win.stride_h, pad_h, win.dilation_h, ky, h) else { continue };
                        for kx in 0..g.kw {
                            let Some(ix) = Geometry::tap(ox, win.stride_w, pad_w, win.dilation_w, kx, w) else {
                                continue;
                            };
                            let xi = ((b * h + iy) * w + ix) * ci;
                            let fi = ((oc * g.kh + ky) * g.kw + kx) * ci;
                            for c in 0..ci {
                                total += x[xi + c] * filter[fi + c];
                            }
                        }
                    }
                    let bv = bias.and_then(|v| v.get(oc)).copied().unwrap_or(0.0);
                    y[((b * oh + oy) * ow + ox) * co + oc] = activate(total + bv, a);
                }
            }
        }
    }
}

/// DEPTHWISE_CONV_2D: filter `[1, KH, KW, CO]`, output channel `ic * m + j` from input channel
/// `ic`; sums over filter row and column.
pub fn depthwise_conv_2d(g: &Geometry, x: &[f32], filter: &[f32], bias: Option<&[f32]>, a: Activation, y: &mut [f32]) {
    let [n, h, w, ci] = g.input;
    let [_, oh, ow, co] = g.output;
    let m = co / ci.max(1);
    let (pad_h, pad_w) = g.pads();
    let win = &g.window;
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ic in 0..ci {
                    for j in 0..m {
                        let oc = ic * m + j;
                        let mut total = 0.0f32;
                        for ky in 0..g.kh {
                            let Some(iy) = Geometry::tap(oy, win.stride_h, pad_h, win.dilation_h, ky, h) else {
                                continue;
                            };
                            for kx in 0..g.kw {
                                let Some(ix) = Geometry::tap(ox, win.stride_w, pad_w, win.dilation_w, kx, w) else {
                                    continue;
                                };
                                total += x[((b * h + iy) * w + ix) * ci + ic] * filter[(ky * g.kw + kx) * co + oc];
                            }
                        }
                        let bv = bias.and_then(|v| v.get(oc)).copied().unwrap_or(0.0);
                        y[((b * oh + oy) * ow + ox) * co + oc] = activate(total + bv, a);
                    }
                }
            }
        }
    }
}

/// AVERAGE_POOL_2D (`average = total / count`, padding not counted) or MAX_POOL_2D.
pub fn pool(g: &Geometry, max: bool, x: &[f32], a: Activation, y: &mut [f32]) {
    let [n, h, w, ch] = g.input;
    let [_, oh, ow, _] = g.output;
    let (pad_h, pad_w) = g.pads();
    let win = &g.window;
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for c in 0..ch {
                    let mut total = 0.0f32;
                    let mut best = f32::MIN;
                    let mut count = 0u32;
                    for ky in 0..g.kh {
                        let Some(iy) = Geometry::tap(oy, win.stride_h, pad_h, 1, ky, h) else { continue };
                        for kx in 0..g.kw {
                            let Some(ix) = Geometry::tap(ox, win.stride_w, pad_w, 1, kx, w) else { continue };
                            let v = x[((b * h + iy) * w + ix) * ch + c];
                            total += v;
                            best = cpp_max(best, v);
                            count += 1;
                        }
                    }
                    let v = if max { best } else { total / count.max(1) as f32 };
                    y[((b * oh + oy) * ow + ox) * ch + c] = activate(v, a);
                }
            }
        }
    }
}

/// SOFTMAX over the last dimension (`depth` values): `exp((x - max) * beta)`, summed in
/// order, each divided by the sum.
pub fn softmax(x: &[f32], depth: usize, beta: f32, y: &mut [f32]) {
    if depth == 0 {
        return;
    }
    for (xr, yr) in x.chunks_exact(depth).zip(y.chunks_exact_mut(depth)) {
        let max = xr.iter().fold(f32::MIN, |m, &v| cpp_max(m, v));
        let mut sum = 0.0f32;
        for (o, &v) in yr.iter_mut().zip(xr) {
            *o = libm::expf((v - max) * beta);
            sum += *o;
        }
        for o in yr.iter_mut() {
            *o /= sum;
        }
    }
}

/// LOGISTIC as `reference_ops::Logistic`: 1 above 16.619047, `exp(x)` below -9, else
/// `1 / (1 + exp(-x))`.
#[must_use]
pub fn logistic(x: f32) -> f32 {
    const UPPER: f32 = 16.619_047;
    const LOWER: f32 = -9.0;
    if x > UPPER {
        1.0
    } else if x < LOWER {
        libm::expf(x)
    } else {
        1.0 / (1.0 + libm::expf(-x))
    }
}

/// TANH.
#[must_use]
pub fn tanh(x: f32) -> f32 {
    libm::tanhf(x)
}
