//! The const-generic convolutions: [`Int8Conv2d`] and [`Int8DepthwiseConv2d`].
//!
//! `Int8Conv2d` runs as CMSIS-NN's `arm_convolve_s8` does on a Cortex-M4: two output
//! positions at a time, their receptive fields copied into two im2col columns of 16-bit
//! values with the input offset added ([`ColumnPair`] layout, padding as 0, so padded taps add
//! nothing, exactly as TFLite's reference kernel skips them), then two output channels at a
//! time against both columns ([`dsp::mat_2x2`]). When a filter row's `KW * CI` taps are a
//! multiple of four, each group of four inside the image is copied with one load and two
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

/// Room for the padded input rows under one output row (`KH` rows of up to `2 * W` pixels).
struct Strip<const KH: usize, const W: usize, const CI: usize>([[[[i8; CI]; W]; KH]; 2]);

/// Two im2col columns of `KH * KW * CI` 16-bit taps: as many 32-bit words.
struct Columns<const KH: usize, const KW: usize, const CI: usize>([[[u32; CI]; KW]; KH]);

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

    /// The bias of channel `ch` (0 without one): the accumulator's start.
    #[inline]
    fn bias_at(&self, ch: usize) -> i32 {
        self.bias.and_then(|b| b.get(ch)).copied().unwrap_or(0)
    }

    /// Requantisation, zero point and clamp of channel `ch`'s accumulator (bias included).
    #[inline]
    fn finish(&self, acc: i32, ch: usize) -> i8 {
        finish_offset(self.scale.rescale_plus(acc, ch, self.output_offset), self.activation_min, self.activation_max)
    }

    /// The `KH` input rows under output row `oy`, each `span` pixels from the first window's
    /// left edge, the padding (above, below, left and right of the image) as `zero_point`.
    fn fill_strip(input: &[i8], strip: &mut [i8], oy: usize, span: usize, pad: (usize, usize), zero_point: i8) {
        let row_len = span * CI;
        let left = (pad.1 * CI).min(row_len);
        let inside = (W * CI).min(row_len - left);
        for (fy, row) in strip.chunks_exact_mut(row_len).take(KH).enumerate() {
            let source = (oy * SH + fy)
                .checked_sub(pad.0)
                .filter(|&iy| iy < H)
                .and_then(|iy| input.get(iy * W * CI..).and_then(|r| r.get(..inside)));
            match source {
                Some(source) => {
                    row[..left].fill(zero_point);
                    dsp::copy_bytes(source, &mut row[left..left + inside]);
                    row[left + inside..].fill(zero_point);
                }
                None => row.fill(zero_point),
            }
        }
    }

    /// Writes the receptive field of output position (`oy`, `ox`) as column `c` of `cols` (a
    /// [`ColumnPair`] buffer of `KH * KW * CI`-tap columns). A window wholly inside the image
    /// whose filter rows are a multiple of four taps is one [`dsp::widen_rows`]; the others
    /// (at the edges) take [`Self::fill_column_edge`].
    #[inline]
    fn fill_column(&self, input: &[i8], cols: &mut [u32], c: usize, (oy, ox): (usize, usize), pad: (usize, usize)) {
        let (top, left) = (oy * SH, ox * SW);
        let inside = top >= pad.0 && top - pad.0 + KH <= H && left >= pad.1 && left - pad.1 + KW <= W;
        if (KW * CI).is_multiple_of(4) && inside {
            let start = ((top - pad.0) * W + left - pad.1) * CI;
            let src = input.get(start..).unwrap_or(&[]);
            dsp::widen_window::<FilterTaps<KH, KW, CI>>(src, W * CI, self.input_offset, cols, c);
        } else {
            self.fill_column_edge(input, cols, c, (oy, ox), pad);
        }
    }

    /// [`Self::fill_column`] for a window that reaches into the padding (or with filter rows of
    /// other than a multiple of four taps): per filter row, the taps inside the image are one
    /// range `q_lo..q_hi` (taps run over `fx`, then `ci`); groups of four inside it are one
    /// word of input, groups outside it zeros, the one or two groups across its ends tap by tap.
    #[inline(never)]
    fn fill_column_edge(
        &self,
        input: &[i8],
        cols: &mut [u32],
        c: usize,
        (oy, ox): (usize, usize),
        pad: (usize, usize),
    ) {
        let n = KH * KW * CI;
        let row_len = KW * CI;
        let offset = self.input_offset;
        let (top, left) = (oy * SH, ox * SW);
        // Filter rows and columns inside the image.
        let rows = pad.0.saturating_sub(top)..(H + pad.0).saturating_sub(top).min(KH);
        let fx = pad.1.saturating_sub(left)..(W + pad.1).saturating_sub(left).min(KW);
        let (q_lo, q_hi) = (fx.start * CI, fx.end.max(fx.start) * CI);
        // Input index of tap 0 of filter row fy: (iy * W + ix0) * CI, with ix0 = left - pad.1.
        let row_base = |fy: usize| (((top + fy - pad.0) * W + left) * CI).wrapping_sub(pad.1 * CI);
        let value = |fy: usize, q: usize| -> i16 {
            if rows.contains(&fy) && (q_lo..q_hi).contains(&q) {
                // Fits: `offset` is in `dsp::OFFSETS`.
                input.get(row_base(fy).wrapping_add(q)).map_or(0, |&x| (i32::from(x) + offset) as i16)
            } else {
                0
            }
        };
        if !row_len.is_multiple_of(4) {
            for fy in 0..KH {
                for q in 0..row_len {
                    ColumnPair::set(cols, n, c, fy * row_len + q, value(fy, q));
                }
            }
            return;
        }
        let pair = |a: i16, b: i16| u32::from(a as u16) | (u32::from(b as u16) << 16);
        for (fy, dst) in cols.chunks_exact_mut(row_len).take(KH).enumerate() {
            let valid = rows.contains(&fy);
            for (g, group) in dst.chunks_exact_mut(4).enumerate() {
                let q = 4 * g;
                let [even, odd] = if !valid || q + 4 <= q_lo || q >= q_hi {
                    [0, 0]
                } else if q >= q_lo && q + 4 <= q_hi {
                    match input.get(row_base(fy).wrapping_add(q)..).and_then(|r| r.get(..4)) {
                        Some(b) => {
                            let (even, odd) = dsp::widen4(
                                u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]),
                                offset,
                            );
                            [even, odd]
                        }
                        None => [0, 0],
                    }
                } else {
                    // Words hold taps 0 and 2, 1 and 3.
                    [pair(value(fy, q), value(fy, q + 2)), pair(value(fy, q + 1), value(fy, q + 3))]
                };
                group[2 * c] = even;
                group[2 * c + 1] = odd;
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
        let mut columns = Columns([[[0u32; CI]; KW]; KH]);
        let cols = columns.0.as_flattened_mut().as_flattened_mut();
        // The strip: the KH input rows under one output row, padded left and right with the
        // input zero point (which the offset takes to 0, as TFLite's padding), `span` columns
        // wide; every window is then a plain run of rows in it. Needs filter rows of a multiple
        // of four taps, a zero point in int8 and `span <= 2 * W` (the buffer).
        let span = (WO - 1) * SW + KW;
        let zero_point = i8::try_from(-self.input_offset).ok();
        let use_strip = const { (KW * CI).is_multiple_of(4) && (WO - 1) * SW + KW <= 2 * W } && zero_point.is_some();
        let mut strip_buffer = Strip([[[[0i8; CI]; W]; KH]; 2]);
        let strip = strip_buffer.0.as_flattened_mut().as_flattened_mut().as_flattened_mut();
        // Positions in pairs along each output row; an odd last one is computed twice and stored
        // once.
        for oy in 0..HO {
            if let (true, Some(zp)) = (use_strip, zero_point) {
                Self::fill_strip(input, strip, oy, span, pad, zp);
            }
            for ox in (0..WO).step_by(2) {
                let ox2 = if ox + 1 < WO { ox + 1 } else { ox };
                let (p, q) = (oy * WO + ox, oy * WO + ox2);
                if use_strip {
                    for (c, x) in [(0, ox), (1, ox2)] {
                        let src = strip.get(x * SW * CI..).unwrap_or(&[]);
                        dsp::widen_window::<FilterTaps<KH, KW, CI>>(src, span * CI, self.input_offset, cols, c);
                    }
                } else {
                    self.fill_column(input, cols, 0, (oy, ox), pad);
                    self.fill_column(input, cols, 1, (oy, ox2), pad);
                }
                let mut store = |pos: usize, ch: usize, acc: i32| {
                    if let Some(y) = output.get_mut(pos * CO + ch) {
                        *y = self.finish(acc, ch);
                    }
                };
                let mut ch = 0;
                while ch + 2 <= CO {
                    let w = weights.get(ch * n..).unwrap_or(&[]);
                    let (b0, b1) = (self.bias_at(ch), self.bias_at(ch + 1));
                    let [a00, a01, a10, a11] = dsp::mat_2x2::<FilterTaps<KH, KW, CI>>(cols, w, n, [b0, b0, b1, b1]);
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
                        let acc = row.iter().take(n).enumerate().fold(self.bias_at(ch), |acc, (t, &wv)| {
                            let xv = ColumnPair::get(cols, n, c, t);
                            acc.wrapping_add(i32::from(wv) * i32::from(xv))
                        });
                        store(pos, ch, acc);
                    }
                }
            }
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
