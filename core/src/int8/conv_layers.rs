//! The const-generic convolutions: [`Int8Conv2d`] and [`Int8DepthwiseConv2d`].
//!
//! `Int8Conv2d` runs as CMSIS-NN's `arm_convolve_s8` does on a Cortex-M4: two output
//! positions at a time, their receptive fields copied into two im2col columns of 16-bit
//! values with the input offset added ([`ColumnPair`] layout, padding as 0, so padded taps add
//! nothing, exactly as TFLite's reference kernel skips them), then two output channels at a
//! time against both columns ([`dsp::mat_2x2`]). A filter row whose `KW * CI` taps are a
//! multiple of four and lie inside the image is copied four bytes per load with two
//! `SXTAB16` ([`dsp::widen4`]). The columns live on the stack (`4 * KH * KW * CI` bytes).
//! Filters of more than 4095 taps, fewer than two output channels or an input offset outside
//! `-32640..=32640` take the reference loops ([`conv_2d`](super::conv_2d)'s), which give the
//! same bits.
//!
//! `Int8DepthwiseConv2d` runs the reference loops.
//!
//! ```
//! use tinytrain::int8::{Int8Conv2d, Int8Layer, OutputScale, QuantizedMultiplier};
//! // 3x3 image, one channel; two 2x2 filters, stride 1, VALID: 2x2x2 out.
//! static W: [[[[i8; 1]; 2]; 2]; 2] = [[[[1], [1]], [[1], [1]]], [[[1], [0]], [[0], [-1]]]];
//! let one = [QuantizedMultiplier { multiplier: 1 << 30, shift: 1 }; 2];
//! let conv: Int8Conv2d<'_, 3, 3, 1, 2, 2, 2, 1, 1, 2, 2> = Int8Conv2d {
//!     weight: &W, bias: None, input_offset: 0, output_offset: 0,
//!     activation_min: -128, activation_max: 127, scale: OutputScale::PerChannel(&one) };
//! let mut y = [0i8; 8];
//! conv.forward(&[1, 2, 3, 4, 5, 6, 7, 8, 9], &mut y);
//! assert_eq!(y, [12, -4, 16, -4, 24, -4, 28, -4]);
//! ```

use super::conv::{ConvParams, conv_2d_run, depthwise_conv_2d_run};
use super::dsp::{self, ColumnPair, FilterTaps};
use super::layers::{Int8Layer, OutputScale, conv_pad};
use super::requant::{Rescale, Shape4, finish_offset};

/// CONV_2D, NHWC, `KH`x`KW` filter, strides `SH`, `SW` ([`conv_2d`](super::conv_2d)),
/// requantised by `S` ([`Rescale`]: usually `&[QuantizedMultiplier; CO]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Int8Conv2d<
    'a,
    const H: usize,
    const W: usize,
    const CI: usize,
    const CO: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
    const SW: usize,
    const HO: usize,
    const WO: usize,
    S = OutputScale<'a, CO>,
> {
    /// Filters, `[co][kh][kw][ci]` (TFLite's OHWI).
    pub weight: &'a [[[[i8; CI]; KW]; KH]; CO],
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
    pub scale: S,
}

/// Two im2col columns, 4-byte aligned for the kernel's word loads.
#[repr(C, align(4))]
struct Columns<const KH: usize, const KW: usize, const CI: usize>([[[[i16; CI]; KW]; KH]; 2]);

impl<
    const H: usize,
    const W: usize,
    const CI: usize,
    const CO: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
    const SW: usize,
    const HO: usize,
    const WO: usize,
    S: Rescale,
> Int8Conv2d<'_, H, W, CI, CO, KH, KW, SH, SW, HO, WO, S>
{
    /// Checks the shapes (at compile time) and returns the padding before the first row and
    /// column.
    const fn geometry(input: usize, output: usize) -> (usize, usize) {
        assert!(H > 0 && W > 0 && CI > 0 && CO > 0 && KH > 0 && KW > 0, "Int8Conv2d: zero dim");
        assert!(SH > 0 && SW > 0, "Int8Conv2d: zero stride");
        assert!(input == H * W * CI, "Int8Conv2d: IN != H * W * CI");
        assert!(output == HO * WO * CO, "Int8Conv2d: OUT != HO * WO * CO");
        (conv_pad(H, KH, SH, HO), conv_pad(W, KW, SW, WO))
    }

    fn params(&self, pad_height: usize, pad_width: usize) -> ConvParams {
        ConvParams {
            input_offset: self.input_offset,
            output_offset: self.output_offset,
            stride_height: SH,
            stride_width: SW,
            dilation_height: 1,
            dilation_width: 1,
            pad_height,
            pad_width,
            activation_min: self.activation_min,
            activation_max: self.activation_max,
        }
    }

    /// Bias, requantisation and clamp of channel `ch`'s accumulator.
    #[inline]
    fn finish(&self, acc: i32, ch: usize) -> i8 {
        let acc = acc.wrapping_add(self.bias.and_then(|b| b.get(ch)).copied().unwrap_or(0));
        finish_offset(self.scale.rescale_plus(acc, ch, self.output_offset), self.activation_min, self.activation_max)
    }

    /// Writes the receptive field of output position `p` (row-major over `HO`x`WO`) as column
    /// `c` of `cols` (a [`ColumnPair`] buffer of `KH * KW * CI`-tap columns).
    fn fill_column(&self, input: &[i8], cols: &mut [i16], c: usize, p: usize, pad: (usize, usize)) {
        let n = KH * KW * CI;
        let row_len = KW * CI;
        let offset = self.input_offset;
        let (oy, ox) = (p / WO, p % WO);
        let put = |cols: &mut [i16], q: usize, v: i16| {
            if let Some(slot) = cols.get_mut(ColumnPair::slot(n, c, q)) {
                *slot = v;
            }
        };
        for fy in 0..KH {
            let base = fy * row_len;
            let Some(iy) = (oy * SH + fy).checked_sub(pad.0).filter(|&iy| iy < H) else {
                for q in base..base + row_len {
                    put(cols, q, 0);
                }
                continue;
            };
            let first = (ox * SW).checked_sub(pad.1).filter(|&ix| ix + KW <= W);
            let row = first.and_then(|ix| input.get((iy * W + ix) * CI..)).and_then(|r| r.get(..row_len));
            if let (true, Some(row)) = (row_len.is_multiple_of(4), row) {
                // The whole filter row lies in the image: four taps per word. `base` is a
                // multiple of four, so each word fills one group's lanes.
                for (j, bytes) in row.chunks_exact(4).enumerate() {
                    let word = u32::from_le_bytes([bytes[0] as u8, bytes[1] as u8, bytes[2] as u8, bytes[3] as u8]);
                    let (even, odd) = dsp::widen4(word, offset);
                    let s = ColumnPair::slot(n, c, base + 4 * j);
                    if let Some(lanes) = cols.get_mut(s..s + 4) {
                        lanes.copy_from_slice(&[even as i16, (even >> 16) as i16, odd as i16, (odd >> 16) as i16]);
                    }
                }
                continue;
            }
            for fx in 0..KW {
                let ix = (ox * SW + fx).checked_sub(pad.1).filter(|&ix| ix < W);
                for ci in 0..CI {
                    let v = ix.and_then(|ix| input.get((iy * W + ix) * CI + ci)).map_or(0, |&x| {
                        // Fits: `offset` is in `dsp::OFFSETS`.
                        (i32::from(x) + offset) as i16
                    });
                    put(cols, base + fx * CI + ci, v);
                }
            }
        }
    }
}

impl<
    const H: usize,
    const W: usize,
    const CI: usize,
    const CO: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
    const SW: usize,
    const HO: usize,
    const WO: usize,
    const IN: usize,
    const OUT: usize,
    S: Rescale,
> Int8Layer<IN, OUT> for Int8Conv2d<'_, H, W, CI, CO, KH, KW, SH, SW, HO, WO, S>
{
    fn forward(&self, input: &[i8; IN], output: &mut [i8; OUT]) {
        let pad = const { Self::geometry(IN, OUT) };
        let n = KH * KW * CI;
        let weights = self.weight.as_flattened().as_flattened().as_flattened();
        if !(const { KH * KW * CI <= 4095 && CO >= 2 }) || !dsp::OFFSETS.contains(&self.input_offset) {
            conv_2d_run(
                &self.params(pad.0, pad.1),
                &self.scale,
                Shape4([1, H, W, CI]),
                input,
                Shape4([CO, KH, KW, CI]),
                weights,
                self.bias.map(<[i32; CO]>::as_slice),
                Shape4([1, HO, WO, CO]),
                output,
            );
            return;
        }
        let mut columns = Columns([[[[0i16; CI]; KW]; KH]; 2]);
        let cols = columns.0.as_flattened_mut().as_flattened_mut().as_flattened_mut();
        let positions = HO * WO;
        let mut p = 0;
        while p < positions {
            // An odd last position is computed twice and stored once.
            let q = if p + 1 < positions { p + 1 } else { p };
            self.fill_column(input, cols, 0, p, pad);
            self.fill_column(input, cols, 1, q, pad);
            let mut store = |pos: usize, ch: usize, acc: i32| {
                if let Some(y) = output.get_mut(pos * CO + ch) {
                    *y = self.finish(acc, ch);
                }
            };
            let mut ch = 0;
            while ch + 2 <= CO {
                let w = weights.get(ch * n..).unwrap_or(&[]);
                let [a00, a01, a10, a11] = dsp::mat_2x2::<FilterTaps<KH, KW, CI>>(cols, w, n);
                store(p, ch, a00);
                store(p, ch + 1, a10);
                store(q, ch, a01);
                store(q, ch + 1, a11);
                ch += 2;
            }
            if ch < CO {
                // An odd last channel: its row against both columns.
                let row = weights.get(ch * n..).unwrap_or(&[]);
                for (c, pos) in [(0, p), (1, q)] {
                    let acc = row.iter().take(n).enumerate().fold(0i32, |acc, (t, &wv)| {
                        let xv = cols.get(ColumnPair::slot(n, c, t)).copied().unwrap_or(0);
                        acc.wrapping_add(i32::from(wv) * i32::from(xv))
                    });
                    store(pos, ch, acc);
                }
            }
            p += 2;
        }
    }
}

/// DEPTHWISE_CONV_2D with depth multiplier 1, NHWC, `KH`x`KW`, strides `SH`, `SW`
/// ([`depthwise_conv_2d`](super::depthwise_conv_2d)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Int8DepthwiseConv2d<
    'a,
    const H: usize,
    const W: usize,
    const C: usize,
    const KH: usize,
    const KW: usize,
    const SH: usize,
    const SW: usize,
    const HO: usize,
    const WO: usize,
    S = OutputScale<'a, C>,
> {
    /// Filters, `[kh][kw][c]` (TFLite's `[1][KH][KW][C]`).
    pub weight: &'a [[[i8; C]; KW]; KH],
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
    pub scale: S,
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
    S: Rescale,
> Int8Layer<IN, OUT> for Int8DepthwiseConv2d<'_, H, W, C, KH, KW, SH, SW, HO, WO, S>
{
    fn forward(&self, input: &[i8; IN], output: &mut [i8; OUT]) {
        let (pad_height, pad_width) = const {
            assert!(H > 0 && W > 0 && C > 0 && KH > 0 && KW > 0, "Int8DepthwiseConv2d: zero dim");
            assert!(SH > 0 && SW > 0, "Int8DepthwiseConv2d: zero stride");
            assert!(IN == H * W * C, "Int8DepthwiseConv2d: IN != H * W * C");
            assert!(OUT == HO * WO * C, "Int8DepthwiseConv2d: OUT != HO * WO * C");
            (conv_pad(H, KH, SH, HO), conv_pad(W, KW, SW, WO))
        };
        let params = ConvParams {
            input_offset: self.input_offset,
            output_offset: self.output_offset,
            stride_height: SH,
            stride_width: SW,
            dilation_height: 1,
            dilation_width: 1,
            pad_height,
            pad_width,
            activation_min: self.activation_min,
            activation_max: self.activation_max,
        };
        depthwise_conv_2d_run(
            &params,
            1,
            &self.scale,
            Shape4([1, H, W, C]),
            input,
            Shape4([1, KH, KW, C]),
            self.weight.as_flattened().as_flattened(),
            self.bias.map(<[i32; C]>::as_slice),
            Shape4([1, HO, WO, C]),
            output,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::int8::{QuantizedMultiplier, Requant, conv_2d, depthwise_conv_2d};
    use crate::rng::Rng;

    /// Runs an `Int8Conv2d` of the given geometry on random weights, inputs and offsets
    /// (extremes included) and compares it with the slice kernel.
    macro_rules! conv_case {
        ($rng:expr, $h:literal, $w:literal, $ci:literal, $co:literal, $kh:literal, $kw:literal,
         $sh:literal, $sw:literal, $ho:literal, $wo:literal) => {{
            const IN: usize = $h * $w * $ci;
            const OUT: usize = $ho * $wo * $co;
            let rng: &mut Rng = $rng;
            let weight: [[[[i8; $ci]; $kw]; $kh]; $co] = core::array::from_fn(|_| {
                core::array::from_fn(|_| core::array::from_fn(|_| core::array::from_fn(|_| rng.next_u32() as i8)))
            });
            let bias: [i32; $co] = core::array::from_fn(|_| rng.next_u32().cast_signed() >> 20);
            let m: [QuantizedMultiplier; $co] = core::array::from_fn(|_| {
                let taps = ($kh * $kw * $ci) as f64;
                QuantizedMultiplier::from_real(f64::from(rng.uniform(0.003, 0.012)) / libm::sqrt(taps))
            });
            for (offset, out_offset, min, max) in
                [(0, 0, -128, 127), (128, -128, -128, 127), (-127, 5, 5, 127), (37, -3, -100, 90)]
            {
                let x: [i8; IN] = core::array::from_fn(|i| match i % 7 {
                    0 => -128,
                    1 => 127,
                    _ => rng.next_u32() as i8,
                });
                let conv: Int8Conv2d<'_, $h, $w, $ci, $co, $kh, $kw, $sh, $sw, $ho, $wo> = Int8Conv2d {
                    weight: &weight,
                    bias: Some(&bias),
                    input_offset: offset,
                    output_offset: out_offset,
                    activation_min: min,
                    activation_max: max,
                    scale: OutputScale::PerChannel(&m),
                };
                let mut y = [0i8; OUT];
                conv.forward(&x, &mut y);
                let (pad_h, pad_w) = (conv_pad($h, $kh, $sh, $ho), conv_pad($w, $kw, $sw, $wo));
                let p = ConvParams { pad_height: pad_h, pad_width: pad_w, ..conv.params(pad_h, pad_w) };
                let mut z = [0i8; OUT];
                conv_2d(
                    &p,
                    Requant::PerChannel(&m),
                    Shape4([1, $h, $w, $ci]),
                    &x,
                    Shape4([$co, $kh, $kw, $ci]),
                    weight.as_flattened().as_flattened().as_flattened(),
                    Some(&bias),
                    Shape4([1, $ho, $wo, $co]),
                    &mut z,
                )
                .unwrap();
                assert_eq!(y, z, "geometry {:?} offset {offset}", ($h, $w, $ci, $co, $kh, $kw, $sh, $sw, $ho, $wo));
                assert!(y.iter().any(|&v| v != y[0]), "constant output {:?}", ($h, $w, $ci, $co, offset));
            }
        }};
    }

    #[test]
    fn conv_matches_the_slice_kernel() {
        let mut rng = Rng::new(19);
        // micro_speech's converted depthwise layer (SAME, stride 2, rows of 8 taps).
        conv_case!(&mut rng, 49, 40, 1, 8, 10, 8, 2, 2, 25, 20);
        // mnist-cnn-tiny's two layers (VALID; 4-tap and 18-tap filter rows).
        conv_case!(&mut rng, 28, 28, 1, 6, 4, 4, 2, 2, 13, 13);
        conv_case!(&mut rng, 13, 13, 6, 24, 3, 3, 2, 2, 6, 6);
        // Odd channels and positions, SAME padding, a 1x1 filter, non-square everything.
        conv_case!(&mut rng, 5, 5, 2, 3, 3, 3, 2, 2, 3, 3);
        conv_case!(&mut rng, 7, 5, 4, 5, 3, 2, 1, 2, 7, 3);
        conv_case!(&mut rng, 3, 3, 8, 1, 1, 1, 1, 1, 3, 3);
        conv_case!(&mut rng, 6, 9, 4, 4, 2, 4, 3, 1, 2, 9);
    }

    #[test]
    fn depthwise_matches_the_slice_kernel() {
        static WD: [[[i8; 3]; 3]; 3] = [
            [[1, -2, 3], [4, 5, -6], [7, 8, 9]],
            [[-1, 2, 0], [3, 3, 3], [-4, 1, 2]],
            [[0, 1, 0], [1, -1, 1], [2, 2, -2]],
        ];
        let mut rng = Rng::new(5);
        let m = [
            QuantizedMultiplier::from_real(0.013),
            QuantizedMultiplier::from_real(0.021),
            QuantizedMultiplier::from_real(0.008),
        ];
        let x3: [i8; 75] = core::array::from_fn(|_| rng.next_u32() as i8);
        let dw: Int8DepthwiseConv2d<'_, 5, 5, 3, 3, 3, 1, 1, 3, 3> = Int8DepthwiseConv2d {
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
            dilation_height: 1,
            dilation_width: 1,
            pad_height: 0,
            pad_width: 0,
            activation_min: -128,
            activation_max: 127,
        };
        let mut z = [0i8; 27];
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
        assert!(y.iter().any(|&v| v != y[0]));
    }
}
