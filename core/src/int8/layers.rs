//! Const-generic int8 layers over the kernels, for networks whose shapes are known at compile
//! time; weights are borrowed (`&'static` arrays stay in flash).
//!
//! Why a separate [`Int8Layer`] trait rather than [`Layer`](crate::Layer): `Layer` is built for
//! training — f32 tensors, activations kept for `backward`, gradients and parameters visited
//! through [`Params`](crate::Params) — and none of that applies to a quantised inference
//! network, whose weights are immutable borrowed tables and whose activations are int8 with
//! per-tensor quantisation. `Int8Layer` is the one operation left, `forward` from a flat int8
//! array to a flat int8 array, with the sizes as const parameters so that [`Int8Chain`]
//! checks consecutive layers at compile time as `sequential!` does. Flat arrays (NHWC order
//! for images) keep chaining simple: a conv's `[h][w][c]` output is the next dense layer's
//! input without a FLATTEN, and TFLite's RESHAPE is no layer at all.
//!
//! The layers give the slice kernels' results bit for bit ([`fully_connected`](super::fully_connected),
//! [`conv_2d`](super::conv_2d), ...), through the [`dsp`](super::dsp) kernels: on a Cortex-M4
//! `SMLAD` loops, elsewhere the same arithmetic in Rust.
//!
//! # Shapes
//! - [`Int8Dense<I, O>`]: `[i8; I] -> [i8; O]`, weight `[[i8; I]; O]`.
//! - [`Int8Conv2d<H, W, CI, CO, KH, KW, SH, SW, HO, WO>`](Int8Conv2d): `[i8; H*W*CI] ->
//!   [i8; HO*WO*CO]` (NHWC), weight `[[[[i8; CI]; KW]; KH]; CO]` (TFLite's OHWI), strides `SH`,
//!   `SW`, dilation 1, SAME or VALID padding as `HO`, `WO` say.
//! - [`Int8DepthwiseConv2d<H, W, C, KH, KW, SH, SW, HO, WO>`](Int8DepthwiseConv2d): depth
//!   multiplier 1, weight `[[[i8; C]; KW]; KH]` (TFLite's `[1][KH][KW][C]`). A depthwise
//!   convolution of one input channel with multiplier `M` is an `Int8Conv2d` with `CI = 1`,
//!   `CO = M` and the filter transposed (what `tinytrain-sim import --rust` writes).
//! - [`Int8MaxPool2d`], [`Int8AvgPool2d`] `<H, W, C, KH, KW, SH, SW, HO, WO>`: `[i8; H*W*C] ->
//!   [i8; HO*WO*C]`.
//! - [`Int8Softmax<D>`]: `[i8; N] -> [i8; N]` over rows of `D`.
//!
//! ```
//! use tinytrain::int8::{FullyConnectedParams, Int8Chain, Int8Dense, Int8Layer, QuantizedMultiplier};
//! static W1: [[i8; 2]; 3] = [[1, 0], [0, 1], [1, 1]];
//! static W2: [[i8; 3]; 1] = [[1, 1, -1]];
//! const P: FullyConnectedParams = FullyConnectedParams { input_offset: 0, weights_offset: 0,
//!     output_offset: 0, activation_min: -128, activation_max: 127 };
//! let one = QuantizedMultiplier { multiplier: 1 << 30, shift: 1 }; // 1.0
//! let net: Int8Chain<_, _, 3> = Int8Chain {
//!     first: Int8Dense { weight: &W1, bias: None, params: P, scale: one },
//!     second: Int8Dense { weight: &W2, bias: Some(&[5]), params: P, scale: one },
//! };
//! let mut y = [0i8; 1];
//! net.forward(&[3, 4], &mut y);
//! assert_eq!(y, [5]); // 3 + 4 - 7 + 5
//! ```

use super::dsp::{self, Stride};
use super::exact::ExactScale;
use super::fully_connected::FullyConnectedParams;
use super::pool::{PoolParams, average_pool, max_pool};
use super::quant::QuantizedMultiplier;
use super::requant::{Requant, Rescale, Shape4, finish_offset};
use super::softmax::{SoftmaxParams, softmax};
use crate::shape::conv_out;

/// A quantised layer from `IN` int8 values to `OUT` int8 values.
pub trait Int8Layer<const IN: usize, const OUT: usize> {
    /// Computes `output` from `input`. Never panics; shapes are checked at compile time.
    fn forward(&self, input: &[i8; IN], output: &mut [i8; OUT]);
}

/// Two layers in sequence, the intermediate `[i8; MID]` on the stack.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Int8Chain<A, B, const MID: usize> {
    /// Runs first.
    pub first: A,
    /// Runs on the first's output.
    pub second: B,
}

impl<A, B, const IN: usize, const MID: usize, const OUT: usize> Int8Layer<IN, OUT> for Int8Chain<A, B, MID>
where
    A: Int8Layer<IN, MID>,
    B: Int8Layer<MID, OUT>,
{
    fn forward(&self, input: &[i8; IN], output: &mut [i8; OUT]) {
        let mut mid = [0i8; MID];
        self.first.forward(input, &mut mid);
        self.second.forward(&mid, output);
    }
}

/// How a layer's accumulators are scaled to its output, with per-channel tables sized by the
/// type (the const-generic form of [`Requant`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OutputScale<'a, const O: usize> {
    /// [`Requant::PerTensor`] (TFLM's FULLY_CONNECTED).
    PerTensor(QuantizedMultiplier),
    /// [`Requant::PerChannel`] (CONV_2D, DEPTHWISE_CONV_2D).
    PerChannel(&'a [QuantizedMultiplier; O]),
    /// [`Requant::FloatPerTensor`] (TFLite 2.20+'s reference FULLY_CONNECTED, in `f64`).
    FloatPerTensor(f64),
    /// [`Requant::FloatPerChannel`].
    FloatPerChannel(&'a [f64; O]),
    /// [`Requant::ExactPerTensor`]: the float rule in integers.
    ExactPerTensor(ExactScale),
    /// [`Requant::ExactPerChannel`].
    ExactPerChannel(&'a [ExactScale; O]),
}

impl<const O: usize> Rescale for OutputScale<'_, O> {
    #[inline]
    fn rescale(&self, acc: i32, channel: usize) -> i32 {
        self.requant().apply(acc, channel)
    }
}

impl<const O: usize> OutputScale<'_, O> {
    /// The slice kernels' form.
    #[must_use]
    pub fn requant(&self) -> Requant<'_> {
        match *self {
            OutputScale::PerTensor(m) => Requant::PerTensor(m),
            OutputScale::PerChannel(m) => Requant::PerChannel(m),
            OutputScale::FloatPerTensor(s) => Requant::FloatPerTensor(s),
            OutputScale::FloatPerChannel(s) => Requant::FloatPerChannel(s),
            OutputScale::ExactPerTensor(s) => Requant::ExactPerTensor(s),
            OutputScale::ExactPerChannel(s) => Requant::ExactPerChannel(s),
        }
    }
}

/// FULLY_CONNECTED with `I` inputs and `O` outputs ([`fully_connected`](super::fully_connected)),
/// requantised by `S` ([`Rescale`]: an [`ExactScale`], a [`QuantizedMultiplier`], a table of
/// either per output, or an [`OutputScale`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Int8Dense<'a, const I: usize, const O: usize, S = OutputScale<'a, O>> {
    /// Weights, `[out][in]` (TFLite's layout).
    pub weight: &'a [[i8; I]; O],
    /// Bias in accumulator units (`input_scale * weight_scale`).
    pub bias: Option<&'a [i32; O]>,
    /// Offsets and clamp.
    pub params: FullyConnectedParams,
    /// Requantisation.
    pub scale: S,
}

impl<const I: usize, const O: usize, S: Rescale> Int8Dense<'_, I, O, S> {
    /// The bias of output `o` (0 without one): the accumulator's start.
    #[inline]
    fn bias_at(&self, o: usize) -> i32 {
        self.bias.and_then(|b| b.get(o)).copied().unwrap_or(0)
    }

    /// Requantisation, zero point and clamp of output `o`'s accumulator (bias included).
    #[inline]
    fn finish(&self, acc: i32, o: usize) -> i8 {
        let p = &self.params;
        finish_offset(self.scale.rescale_plus(acc, o, p.output_offset), p.activation_min, p.activation_max)
    }
}

impl<const I: usize, const O: usize, S: Rescale> Int8Layer<I, O> for Int8Dense<'_, I, O, S> {
    fn forward(&self, input: &[i8; I], output: &mut [i8; O]) {
        const { assert!(I > 0 && O > 0, "Int8Dense: zero-sized layer") };
        let weights = self.weight.as_flattened();
        let p = &self.params;
        if p.weights_offset != 0 {
            // The reference loop with the weights' offset (TFLite's int8 weights have none).
            for (o, (row, y)) in self.weight.iter().zip(output.iter_mut()).enumerate() {
                let acc = row.iter().zip(input).fold(self.bias_at(o), |acc, (&w, &x)| {
                    let w = i32::from(w).wrapping_add(p.weights_offset);
                    acc.wrapping_add(w.wrapping_mul(i32::from(x).wrapping_add(p.input_offset)))
                });
                *y = self.finish(acc, o);
            }
            return;
        }
        let offset = p.input_offset;
        if const { I < 4 } {
            // Too few inputs for a group of four: one loop over the outputs, its tables read
            // as data (not folded into the code) and its body not unrolled.
            let mut o = 0;
            while o < O {
                if let (Some(row), Some(y)) = (self.weight.get(o), output.get_mut(o)) {
                    *y = self.finish(dsp::portable::dot_row1(input, row, offset, self.bias_at(o)), o);
                }
                o = dsp::opaque(o + 1);
            }
            return;
        }
        if let (true, Some(bias)) = (const { I >= 4 && O >= 4 && 3 * I + 3 <= 4095 }, self.bias) {
            // Every block of four rows in one call (one copy of the kernel per layer), the
            // inputs past the last group of four and the rows past the last block after it,
            // then the epilogue.
            let blocks = O / 4;
            let mut acc = if const { O.is_multiple_of(4) } {
                dsp::dense_blocks4_array::<Stride<I>, O>(input, weights, offset, bias)
            } else {
                let mut acc = *bias;
                dsp::dense_blocks4::<Stride<I>>(input, weights, offset, bias, &mut acc, blocks);
                acc
            };
            let done = I / 4 * 4;
            for (a, row) in acc.iter_mut().zip(self.weight.iter()).take(4 * blocks) {
                *a = dsp::portable::dot_row1(&input[done..], &row[done..], offset, *a);
            }
            for (o, row) in self.weight.iter().enumerate().skip(4 * blocks) {
                if let Some(a) = acc.get_mut(o) {
                    *a = dsp::dot_row1(input, row, offset, *a);
                }
            }
            finish_all(&self.scale, p, &acc, output);
            return;
        }
        // Four rows at a time while three strides fit an LDR offset, then two, then one.
        let mut o = 0;
        if const { 3 * I <= 4095 } {
            while o + 4 <= O {
                let init = core::array::from_fn(|k| self.bias_at(o + k));
                let acc = dsp::dot_rows4::<Stride<I>>(input, weights.get(o * I..).unwrap_or(&[]), offset, init);
                for (k, a) in acc.into_iter().enumerate() {
                    if let Some(y) = output.get_mut(o + k) {
                        *y = self.finish(a, o + k);
                    }
                }
                o += 4;
            }
        }
        if const { I <= 4095 } {
            while o + 2 <= O {
                let init = [self.bias_at(o), self.bias_at(o + 1)];
                let acc = dsp::dot_rows2::<Stride<I>>(input, weights.get(o * I..).unwrap_or(&[]), offset, init);
                for (k, a) in acc.into_iter().enumerate() {
                    if let Some(y) = output.get_mut(o + k) {
                        *y = self.finish(a, o + k);
                    }
                }
                o += 2;
            }
        }
        while o < O {
            let row = self.weight.get(o).map_or(&[][..], |r| &r[..]);
            // A layer of fewer than four rows: the smaller loop.
            let acc = if const { O < 4 } {
                dsp::dot_row1_small(input, row, offset, self.bias_at(o))
            } else {
                dsp::dot_row1(input, row, offset, self.bias_at(o))
            };
            if let Some(y) = output.get_mut(o) {
                *y = self.finish(acc, o);
            }
            o += 1;
        }
    }
}

/// Requantisation, zero point and clamp of every accumulator, one loop (its counter opaque,
/// so not unrolled).
#[inline]
fn finish_all<S: Rescale>(scale: &S, p: &FullyConnectedParams, acc: &[i32], out: &mut [i8]) {
    let mut o = 0;
    while let (Some(&a), Some(y)) = (acc.get(o), out.get_mut(o)) {
        *y = finish_offset(scale.rescale_plus(a, o, p.output_offset), p.activation_min, p.activation_max);
        o = dsp::opaque(o + 1);
    }
}

/// Checks `out == conv_out` for SAME (`ceil(n / s)`) or VALID padding and returns the padding
/// before the first row as TFLite computes it.
pub(crate) const fn conv_pad(n: usize, k: usize, s: usize, out: usize) -> usize {
    assert!(
        out == n.div_ceil(s) || (n >= k && out == conv_out(n, k, s, 0)),
        "int8 layer: output size is neither SAME nor VALID"
    );
    let total = (out - 1) * s + k;
    if total > n { (total - n) / 2 } else { 0 }
}

/// The pooling layers' shared checks: sizes and padding.
const fn pool_geometry<
    const H: usize,
    const W: usize,
    const C: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
    const SW: usize,
    const HO: usize,
    const WO: usize,
>(
    input: usize,
    output: usize,
) -> (usize, usize) {
    assert!(H > 0 && W > 0 && C > 0 && KH > 0 && KW > 0 && SH > 0 && SW > 0, "int8 pool: zero dim or stride");
    assert!(input == H * W * C, "int8 pool: IN != H * W * C");
    assert!(output == HO * WO * C, "int8 pool: OUT != HO * WO * C");
    (conv_pad(H, KH, SH, HO), conv_pad(W, KW, SW, WO))
}

macro_rules! pool_layer {
    ($(#[$doc:meta])* $name:ident, $kernel:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name<
            const H: usize,
            const W: usize,
            const C: usize,
            const KH: usize,
            const KW: usize,
            const SH: usize,
            const SW: usize,
            const HO: usize,
            const WO: usize,
        > {
            /// Lower clamp (the fused activation's).
            pub activation_min: i32,
            /// Upper clamp.
            pub activation_max: i32,
        }

        impl<
            const H: usize,
            const W: usize,
            const C: usize,
            const KH: usize,
            const KW: usize,
            const SH: usize,
            const SW: usize,
            const HO: usize,
            const WO: usize,
            const IN: usize,
            const OUT: usize,
        > Int8Layer<IN, OUT> for $name<H, W, C, KH, KW, SH, SW, HO, WO>
        {
            fn forward(&self, input: &[i8; IN], output: &mut [i8; OUT]) {
                let (pad_height, pad_width) = const { pool_geometry::<H, W, C, KH, KW, SH, SW, HO, WO>(IN, OUT) };
                let params = PoolParams {
                    stride_height: SH,
                    stride_width: SW,
                    filter_height: KH,
                    filter_width: KW,
                    pad_height,
                    pad_width,
                    activation_min: self.activation_min,
                    activation_max: self.activation_max,
                };
                // The shapes are right by construction; a window wholly in the padding cannot
                // occur for SAME or VALID geometry, and an empty activation range leaves
                // `output` as it was.
                let _ = $kernel(&params, Shape4([1, H, W, C]), input, Shape4([1, HO, WO, C]), output);
            }
        }
    };
}

pool_layer!(
    /// MAX_POOL_2D, `KH`x`KW` windows, strides `SH`, `SW` ([`max_pool`](super::max_pool)).
    Int8MaxPool2d,
    max_pool
);
pool_layer!(
    /// AVERAGE_POOL_2D, `KH`x`KW` windows, strides `SH`, `SW` ([`average_pool`](super::average_pool)).
    Int8AvgPool2d,
    average_pool
);

/// SOFTMAX over rows of `D` values ([`softmax`](super::softmax)); the output is quantised with
/// scale 1/256 and zero point -128, as TFLite requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int8Softmax<const D: usize> {
    /// Prepare-time constants ([`SoftmaxParams::new`]).
    pub params: SoftmaxParams,
}

impl<const D: usize, const N: usize> Int8Layer<N, N> for Int8Softmax<D> {
    fn forward(&self, input: &[i8; N], output: &mut [i8; N]) {
        const { assert!(D > 0 && N.is_multiple_of(D), "Int8Softmax: N is not a whole number of rows of D") };
        // Lengths agree by construction: the kernel cannot fail here.
        let _ = softmax(&self.params, D, input, output);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::int8::{Padding, compute_out_size, compute_padding, fully_connected};
    use crate::rng::Rng;

    #[test]
    fn conv_pad_matches_tflite_padding() {
        for n in 1..12 {
            for k in 1..5 {
                for s in 1..4 {
                    let same = compute_out_size(Padding::Same, n, k, s, 1);
                    assert_eq!(conv_pad(n, k, s, same), compute_padding(s, 1, n, k, same), "n={n} k={k} s={s}");
                    if n >= k {
                        let valid = compute_out_size(Padding::Valid, n, k, s, 1);
                        assert_eq!(conv_pad(n, k, s, valid), compute_padding(s, 1, n, k, valid));
                    }
                }
            }
        }
    }

    /// An `Int8Dense<I, O>` on random data against the slice kernel, with every scale kind.
    fn dense_case<const I: usize, const O: usize>(rng: &mut Rng) {
        extern crate std;
        let weight: std::boxed::Box<[[i8; I]; O]> =
            std::boxed::Box::new(core::array::from_fn(|_| core::array::from_fn(|_| rng.next_u32() as i8)));
        let bias: [i32; O] = core::array::from_fn(|_| rng.next_u32().cast_signed() >> 10);
        let real: [f64; O] = core::array::from_fn(|_| f64::from(rng.uniform(1e-5, 1e-3)));
        let multipliers = real.map(QuantizedMultiplier::from_real);
        for (offset, out_offset, min) in [(128, -128, -128), (-127, 3, 3), (0, 0, -128), (41, -7, -7)] {
            let exact = real.map(|s| ExactScale::for_float_rule(s, min - out_offset, 127 - out_offset).unwrap());
            let scales = [
                OutputScale::PerTensor(multipliers[0]),
                OutputScale::PerChannel(&multipliers),
                OutputScale::FloatPerTensor(real[0]),
                OutputScale::FloatPerChannel(&real),
                OutputScale::ExactPerTensor(exact[0]),
                OutputScale::ExactPerChannel(&exact),
            ];
            let x: [i8; I] = core::array::from_fn(|i| if i % 5 == 0 { -128 } else { rng.next_u32() as i8 });
            let params = FullyConnectedParams {
                input_offset: offset,
                weights_offset: 0,
                output_offset: out_offset,
                activation_min: min,
                activation_max: 127,
            };
            for scale in scales {
                let layer = Int8Dense { weight: &weight, bias: Some(&bias), params, scale };
                let mut y = [0i8; O];
                layer.forward(&x, &mut y);
                let mut z = [0i8; O];
                fully_connected(&params, scale.requant(), &x, weight.as_flattened(), O, Some(&bias), &mut z).unwrap();
                assert_eq!(y, z, "I={I} O={O} {scale:?}");
            }
            // The exact rule gives the float rule's outputs.
            let mut a = [0i8; O];
            let mut b = [0i8; O];
            Int8Dense { weight: &weight, bias: Some(&bias), params, scale: OutputScale::ExactPerChannel(&exact) }
                .forward(&x, &mut a);
            Int8Dense { weight: &weight, bias: Some(&bias), params, scale: OutputScale::FloatPerChannel(&real) }
                .forward(&x, &mut b);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn dense_matches_the_slice_kernel() {
        let mut rng = Rng::new(23);
        dense_case::<1, 16>(&mut rng);
        dense_case::<16, 16>(&mut rng);
        dense_case::<16, 1>(&mut rng);
        dense_case::<7, 9>(&mut rng);
        dense_case::<33, 6>(&mut rng);
        dense_case::<1500, 5>(&mut rng); // two rows at a time
        dense_case::<4000, 4>(&mut rng); // micro_speech's
        dense_case::<4100, 3>(&mut rng); // one row at a time
    }

    #[test]
    fn pools_and_softmax_match_the_slice_kernels() {
        let mut rng = Rng::new(29);
        let x: [i8; 5 * 6 * 3] = core::array::from_fn(|_| rng.next_u32() as i8);
        let max: Int8MaxPool2d<5, 6, 3, 2, 2, 2, 2, 2, 3> = Int8MaxPool2d { activation_min: -20, activation_max: 127 };
        let mut y = [0i8; 18];
        max.forward(&x, &mut y);
        let p = PoolParams {
            stride_height: 2,
            stride_width: 2,
            filter_height: 2,
            filter_width: 2,
            pad_height: 0,
            pad_width: 0,
            activation_min: -20,
            activation_max: 127,
        };
        let mut z = [0i8; 18];
        max_pool(&p, Shape4([1, 5, 6, 3]), &x, Shape4([1, 2, 3, 3]), &mut z).unwrap();
        assert_eq!(y, z);
        // SAME 3x3 average, stride 1.
        let avg: Int8AvgPool2d<5, 6, 3, 3, 3, 1, 1, 5, 6> = Int8AvgPool2d { activation_min: -128, activation_max: 127 };
        let mut y = [0i8; 90];
        avg.forward(&x, &mut y);
        let p = PoolParams {
            stride_height: 1,
            stride_width: 1,
            filter_height: 3,
            filter_width: 3,
            pad_height: 1,
            pad_width: 1,
            activation_min: -128,
            ..p
        };
        let mut z = [0i8; 90];
        average_pool(&p, Shape4([1, 5, 6, 3]), &x, Shape4([1, 5, 6, 3]), &mut z).unwrap();
        assert_eq!(y, z);
        let params = SoftmaxParams::new(1.0, 0.1, 1.0 / 256.0, -128).unwrap();
        let sm: Int8Softmax<6> = Int8Softmax { params };
        let mut y = [0i8; 90];
        sm.forward(&x, &mut y);
        let mut z = [0i8; 90];
        softmax(&params, 6, &x, &mut z).unwrap();
        assert_eq!(y, z);
    }
}
