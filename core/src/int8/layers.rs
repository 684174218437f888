//! Const-generic int8 layers over the slice kernels, for networks whose shapes are known at
//! compile time; weights are borrowed (`&'static` arrays stay in flash).
//!
//! Why a separate [`Int8Layer`] trait rather than [`Layer`](crate::Layer): `Layer` is built for
//! training — f32 tensors, activations kept for `backward`, gradients and parameters visited
//! through [`Params`](crate::Params) — and none of that applies to a quantised inference
//! network, whose weights are immutable borrowed tables and whose activations are int8 with
//! per-tensor quantisation. `Int8Layer` is the one operation left, `forward` from a flat int8
//! array to a flat int8 array, with the sizes as const parameters so that [`Int8Chain`]
//! checks consecutive layers at compile time as `sequential!` does. Flat arrays (NHWC order
//! for images) keep chaining simple: a conv's `[h][w][c]` output is the next dense layer's
//! input without a FLATTEN.
//!
//! # Shapes
//! - [`Int8Dense<I, O>`]: `[i8; I] -> [i8; O]`, weight `[[i8; I]; O]`.
//! - [`Int8Conv2d<H, W, CI, CO, K, S, HO, WO>`]: `[i8; H*W*CI] -> [i8; HO*WO*CO]` (NHWC),
//!   weight `[[[[i8; CI]; K]; K]; CO]` (TFLite's OHWI), stride `S`, dilation 1, SAME or VALID
//!   padding as `HO`, `WO` say.
//! - [`Int8DepthwiseConv2d<H, W, C, K, S, HO, WO>`]: depth multiplier 1, weight
//!   `[[[i8; C]; K]; K]` (TFLite's `[1][K][K][C]`).
//!
//! ```
//! use tinytrain::int8::{FullyConnectedParams, Int8Chain, Int8Dense, Int8Layer, OutputScale, QuantizedMultiplier};
//! static W1: [[i8; 2]; 3] = [[1, 0], [0, 1], [1, 1]];
//! static W2: [[i8; 3]; 1] = [[1, 1, -1]];
//! const P: FullyConnectedParams = FullyConnectedParams { input_offset: 0, weights_offset: 0,
//!     output_offset: 0, activation_min: -128, activation_max: 127 };
//! let one = QuantizedMultiplier { multiplier: 1 << 30, shift: 1 }; // 1.0
//! let net: Int8Chain<_, _, 3> = Int8Chain {
//!     first: Int8Dense { weight: &W1, bias: None, params: P, scale: OutputScale::PerTensor(one) },
//!     second: Int8Dense { weight: &W2, bias: Some(&[5]), params: P, scale: OutputScale::PerTensor(one) },
//! };
//! let mut y = [0i8; 1];
//! net.forward(&[3, 4], &mut y);
//! assert_eq!(y, [5]); // 3 + 4 - 7 + 5
//! ```

use super::conv::{ConvParams, conv_2d_run, depthwise_conv_2d_run};
use super::fully_connected::{FullyConnectedParams, fully_connected_run};
use super::quant::QuantizedMultiplier;
use super::requant::{Requant, Shape4};
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
    /// [`Requant::PerTensor`].
    PerTensor(QuantizedMultiplier),
    /// [`Requant::PerChannel`].
    PerChannel(&'a [QuantizedMultiplier; O]),
    /// [`Requant::FloatPerTensor`] (TFLite 2.20+'s reference FULLY_CONNECTED).
    FloatPerTensor(f64),
    /// [`Requant::FloatPerChannel`].
    FloatPerChannel(&'a [f64; O]),
}

impl<const O: usize> OutputScale<'_, O> {
    fn requant(&self) -> Requant<'_> {
        match *self {
            OutputScale::PerTensor(m) => Requant::PerTensor(m),
            OutputScale::PerChannel(m) => Requant::PerChannel(m),
            OutputScale::FloatPerTensor(s) => Requant::FloatPerTensor(s),
            OutputScale::FloatPerChannel(s) => Requant::FloatPerChannel(s),
        }
    }
}

/// FULLY_CONNECTED with `I` inputs and `O` outputs ([`fully_connected`](super::fully_connected)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Int8Dense<'a, const I: usize, const O: usize> {
    /// Weights, `[out][in]` (TFLite's layout).
    pub weight: &'a [[i8; I]; O],
    /// Bias in accumulator units (`input_scale * weight_scale`).
    pub bias: Option<&'a [i32; O]>,
    /// Offsets and clamp.
    pub params: FullyConnectedParams,
    /// Requantisation.
    pub scale: OutputScale<'a, O>,
}

impl<const I: usize, const O: usize> Int8Layer<I, O> for Int8Dense<'_, I, O> {
    fn forward(&self, input: &[i8; I], output: &mut [i8; O]) {
        const { assert!(I > 0 && O > 0, "Int8Dense: zero-sized layer") };
        let bias = self.bias.map(<[i32; O]>::as_slice);
        fully_connected_run(&self.params, self.scale.requant(), input, self.weight.as_flattened(), I, bias, output);
    }
}

/// Checks `out == conv_out` for SAME (`ceil(n / s)`) or VALID padding and returns the padding
/// before the first row as TFLite computes it.
const fn conv_pad(n: usize, k: usize, s: usize, out: usize) -> usize {
    assert!(
        out == n.div_ceil(s) || (n >= k && out == conv_out(n, k, s, 0)),
        "int8 conv: output size is neither SAME nor VALID"
    );
    let total = (out - 1) * s + k;
    if total > n { (total - n) / 2 } else { 0 }
}

/// CONV_2D, NHWC, `K`x`K` filter, stride `S` ([`conv_2d`](super::conv_2d)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Int8Conv2d<
    'a,
    const H: usize,
    const W: usize,
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const HO: usize,
    const WO: usize,
> {
    /// Filters, `[co][kh][kw][ci]` (TFLite's OHWI).
    pub weight: &'a [[[[i8; CI]; K]; K]; CO],
    /// Bias per output channel.
    pub bias: Option<&'a [i32; CO]>,
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// Lower clamp.
    pub activation_min: i32,
    /// Upper clamp.
    pub activation_max: i32,
    /// Requantisation.
    pub scale: OutputScale<'a, CO>,
}

impl<
    const H: usize,
    const W: usize,
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const HO: usize,
    const WO: usize,
    const IN: usize,
    const OUT: usize,
> Int8Layer<IN, OUT> for Int8Conv2d<'_, H, W, CI, CO, K, S, HO, WO>
{
    fn forward(&self, input: &[i8; IN], output: &mut [i8; OUT]) {
        let (pad_height, pad_width) = const {
            assert!(H > 0 && W > 0 && CI > 0 && CO > 0 && K > 0 && S > 0, "Int8Conv2d: zero dim or stride");
            assert!(IN == H * W * CI, "Int8Conv2d: IN != H * W * CI");
            assert!(OUT == HO * WO * CO, "Int8Conv2d: OUT != HO * WO * CO");
            (conv_pad(H, K, S, HO), conv_pad(W, K, S, WO))
        };
        let params = ConvParams {
            input_offset: self.input_offset,
            output_offset: self.output_offset,
            stride_height: S,
            stride_width: S,
            dilation_height: 1,
            dilation_width: 1,
            pad_height,
            pad_width,
            activation_min: self.activation_min,
            activation_max: self.activation_max,
        };
        let bias = self.bias.map(<[i32; CO]>::as_slice);
        conv_2d_run(
            &params,
            self.scale.requant(),
            Shape4([1, H, W, CI]),
            input,
            Shape4([CO, K, K, CI]),
            self.weight.as_flattened().as_flattened().as_flattened(),
            bias,
            Shape4([1, HO, WO, CO]),
            output,
        );
    }
}

/// DEPTHWISE_CONV_2D with depth multiplier 1, NHWC, `K`x`K`, stride `S`
/// ([`depthwise_conv_2d`](super::depthwise_conv_2d)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Int8DepthwiseConv2d<
    'a,
    const H: usize,
    const W: usize,
    const C: usize,
    const K: usize,
    const S: usize,
    const HO: usize,
    const WO: usize,
> {
    /// Filters, `[kh][kw][c]` (TFLite's `[1][K][K][C]`).
    pub weight: &'a [[[i8; C]; K]; K],
    /// Bias per channel.
    pub bias: Option<&'a [i32; C]>,
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// Lower clamp.
    pub activation_min: i32,
    /// Upper clamp.
    pub activation_max: i32,
    /// Requantisation.
    pub scale: OutputScale<'a, C>,
}

impl<
    const H: usize,
    const W: usize,
    const C: usize,
    const K: usize,
    const S: usize,
    const HO: usize,
    const WO: usize,
    const IN: usize,
    const OUT: usize,
> Int8Layer<IN, OUT> for Int8DepthwiseConv2d<'_, H, W, C, K, S, HO, WO>
{
    fn forward(&self, input: &[i8; IN], output: &mut [i8; OUT]) {
        let (pad_height, pad_width) = const {
            assert!(H > 0 && W > 0 && C > 0 && K > 0 && S > 0, "Int8DepthwiseConv2d: zero dim or stride");
            assert!(IN == H * W * C, "Int8DepthwiseConv2d: IN != H * W * C");
            assert!(OUT == HO * WO * C, "Int8DepthwiseConv2d: OUT != HO * WO * C");
            (conv_pad(H, K, S, HO), conv_pad(W, K, S, WO))
        };
        let params = ConvParams {
            input_offset: self.input_offset,
            output_offset: self.output_offset,
            stride_height: S,
            stride_width: S,
            dilation_height: 1,
            dilation_width: 1,
            pad_height,
            pad_width,
            activation_min: self.activation_min,
            activation_max: self.activation_max,
        };
        let bias = self.bias.map(<[i32; C]>::as_slice);
        depthwise_conv_2d_run(
            &params,
            1,
            self.scale.requant(),
            Shape4([1, H, W, C]),
            input,
            Shape4([1, K, K, C]),
            self.weight.as_flattened().as_flattened(),
            bias,
            Shape4([1, HO, WO, C]),
            output,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::int8::{Padding, compute_out_size, compute_padding, conv_2d, depthwise_conv_2d};

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

    #[test]
    fn wrappers_match_slice_kernels() {
        static WC: [[[[i8; 2]; 3]; 3]; 3] = {
            let mut w = [[[[0i8; 2]; 3]; 3]; 3];
            let mut i = 0;
            while i < 54 {
                w[i / 18][(i / 6) % 3][(i / 2) % 3][i % 2] = ((i * 37) % 23) as i8 - 11;
                i += 1;
            }
            w
        };
        static WD: [[[i8; 3]; 3]; 3] = [
            [[1, -2, 3], [4, 5, -6], [7, 8, 9]],
            [[-1, 2, 0], [3, 3, 3], [-4, 1, 2]],
            [[0, 1, 0], [1, -1, 1], [2, 2, -2]],
        ];
        let mut rng = crate::rng::Rng::new(5);
        let x: [i8; 5 * 5 * 2] = core::array::from_fn(|_| rng.next_u32() as i8);
        let m = [
            QuantizedMultiplier::from_real(0.013),
            QuantizedMultiplier::from_real(0.021),
            QuantizedMultiplier::from_real(0.008),
        ];
        // SAME, stride 2: 5x5 -> 3x3.
        let conv: Int8Conv2d<'_, 5, 5, 2, 3, 3, 2, 3, 3> = Int8Conv2d {
            weight: &WC,
            bias: Some(&[100, -50, 7]),
            input_offset: 3,
            output_offset: -5,
            activation_min: -100,
            activation_max: 120,
            scale: OutputScale::PerChannel(&m),
        };
        let mut y = [0i8; 27];
        conv.forward(&x, &mut y);
        let p = ConvParams {
            input_offset: 3,
            output_offset: -5,
            stride_height: 2,
            stride_width: 2,
            dilation_height: 1,
            dilation_width: 1,
            pad_height: 1,
            pad_width: 1,
            activation_min: -100,
            activation_max: 120,
        };
        let mut z = [0i8; 27];
        conv_2d(
            &p,
            Requant::PerChannel(&m),
            Shape4([1, 5, 5, 2]),
            &x,
            Shape4([3, 3, 3, 2]),
            WC.as_flattened().as_flattened().as_flattened(),
            Some(&[100, -50, 7]),
            Shape4([1, 3, 3, 3]),
            &mut z,
        )
        .unwrap();
        assert_eq!(y, z);
        assert!(y.iter().any(|&v| v != y[0]));
        // VALID depthwise, stride 1: 5x5x2 -> 3x3 (use 3 channels: a 5x5x3 input).
        let x3: [i8; 75] = core::array::from_fn(|_| rng.next_u32() as i8);
        let dw: Int8DepthwiseConv2d<'_, 5, 5, 3, 3, 1, 3, 3> = Int8DepthwiseConv2d {
            weight: &WD,
            bias: None,
            input_offset: -2,
            output_offset: 1,
            activation_min: -128,
            activation_max: 127,
            scale: OutputScale::PerChannel(&m),
        };
        let mut y = [0i8; 27];
        dw.forward(&x3, &mut y);
        let p = ConvParams {
            input_offset: -2,
            output_offset: 1,
            stride_height: 1,
            stride_width: 1,
            pad_height: 0,
            pad_width: 0,
            activation_min: -128,
            activation_max: 127,
            ..p
        };
        depthwise_conv_2d(
            &p,
            1,
            Requant::PerChannel(&m),
            Shape4([1, 5, 5, 3]),
            &x3,
            Shape4([1, 3, 3, 3]),
            WD.as_flattened().as_flattened(),
            None,
            Shape4([1, 3, 3, 3]),
            &mut z,
        )
        .unwrap();
        assert_eq!(y, z);
    }
}
