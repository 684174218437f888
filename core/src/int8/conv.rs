//! CONV_2D and DEPTHWISE_CONV_2D, int8 with per-channel multipliers, NHWC.
//!
//! Mirror `reference_integer_ops::ConvPerChannel`
//! (`tensorflow/lite/kernels/internal/reference/integer_ops/conv.h`) and
//! `reference_integer_ops::DepthwiseConvPerChannel` (`.../integer_ops/depthwise_conv.h`): for
//! each output element, `acc = Σ filter * (input + input_offset)` over the taps inside the
//! image (zero padding by omission, so padded taps add nothing, not `input_offset`), `+ bias`,
//! [`Requant`] per output channel, `+ output_offset`, clamp. TFLite's symmetric int8 filters
//! have no filter offset.
//!
//! # Shapes
//! CONV_2D: input `[n][h][w][ci]`, filter `[co][kh][kw][ci]` (OHWI), bias `[co]`, output
//! `[n][ho][wo][co]`. DEPTHWISE_CONV_2D: filter `[1][kh][kw][ci * depth_multiplier]`, output
//! channel `ci * depth_multiplier + m`.
//!
//! ```
//! use tinytrain::int8::{conv_2d, ConvParams, QuantizedMultiplier, Requant, Shape4};
//! // 1x3x3x1 input, one 2x2 filter of ones, stride 1, no padding.
//! let p = ConvParams { input_offset: 0, output_offset: 0, stride_height: 1, stride_width: 1,
//!     dilation_height: 1, dilation_width: 1, pad_height: 0, pad_width: 0,
//!     activation_min: -128, activation_max: 127 };
//! let x = [1, 2, 3, 4, 5, 6, 7, 8, 9];
//! let mut y = [0i8; 4];
//! let one = [QuantizedMultiplier::from_real(1.0)];
//! conv_2d(&p, Requant::PerChannel(&one), Shape4([1, 3, 3, 1]), &x, Shape4([1, 2, 2, 1]), &[1; 4],
//!     None, Shape4([1, 2, 2, 1]), &mut y).unwrap();
//! assert_eq!(y, [12, 16, 24, 28]);
//! ```

use super::requant::{Requant, Rescale, Shape4, check_activation, finish};
use crate::Error;

/// The run-time constants of CONV_2D / DEPTHWISE_CONV_2D (TFLite's `ConvParams` /
/// `DepthwiseParams` without the depth multiplier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConvParams {
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// Vertical stride (at least 1).
    pub stride_height: usize,
    /// Horizontal stride (at least 1).
    pub stride_width: usize,
    /// Vertical dilation (at least 1).
    pub dilation_height: usize,
    /// Horizontal dilation (at least 1).
    pub dilation_width: usize,
    /// Rows of padding before the first row ([`compute_padding`](super::compute_padding)).
    pub pad_height: usize,
    /// Columns of padding before the first column.
    pub pad_width: usize,
    /// Lower clamp, from [`activation_range`](super::activation_range).
    pub activation_min: i32,
    /// Upper clamp.
    pub activation_max: i32,
}

impl ConvParams {
    fn check(&self) -> Result<(), Error> {
        check_activation(self.activation_min, self.activation_max)?;
        if self.stride_height == 0 || self.stride_width == 0 || self.dilation_height == 0 || self.dilation_width == 0 {
            return Err(Error::InvalidConfig("int8: zero stride or dilation"));
        }
        Ok(())
    }
}

/// Input coordinate of tap `k` for output coordinate `o`, or `None` outside `0..size`.
#[inline]
fn tap(o: usize, stride: usize, pad: usize, dilation: usize, k: usize, size: usize) -> Option<usize> {
    let pos = (o * stride + dilation * k).checked_sub(pad)?;
    (pos < size).then_some(pos)
}

fn check_bias(bias: Option<&[i32]>, channels: usize) -> Result<(), Error> {
    match bias {
        Some(b) if b.len() != channels => Err(Error::ShapeMismatch { expected: channels, found: b.len() }),
        _ => Ok(()),
    }
}

/// Checks that the strided, dilated window of every output position stays addressable: with
/// all dims' products fitting `usize`, `o * stride + dilation * k` does too.
fn check_geometry(params: &ConvParams, out: Shape4, kh: usize, kw: usize) -> Result<(), Error> {
    let reach = |o: usize, s: usize, d: usize, k: usize| {
        o.checked_mul(s).and_then(|a| d.checked_mul(k).and_then(|b| a.checked_add(b)))
    };
    if reach(out.0[1], params.stride_height, params.dilation_height, kh).is_none()
        || reach(out.0[2], params.stride_width, params.dilation_width, kw).is_none()
    {
        return Err(Error::InvalidConfig("int8: stride or dilation too large"));
    }
    Ok(())
}

/// CONV_2D with per-channel (or per-tensor) requantisation.
///
/// # Errors
/// [`Error::ShapeMismatch`] when a slice length differs from its shape, the batch or channel
/// counts disagree, or `bias` / a per-channel [`Requant`] does not have one entry per output
/// channel; [`Error::InvalidConfig`] for a zero stride or dilation or an empty activation range.
pub fn conv_2d(
    params: &ConvParams,
    requant: Requant<'_>,
    input_shape: Shape4,
    input: &[i8],
    filter_shape: Shape4,
    filter: &[i8],
    bias: Option<&[i32]>,
    output_shape: Shape4,
    output: &mut [i8],
) -> Result<(), Error> {
    params.check()?;
    input_shape.check_len(input.len())?;
    filter_shape.check_len(filter.len())?;
    output_shape.check_len(output.len())?;
    let [batches, _, _, in_c] = input_shape.0;
    let [out_c, kh, kw, filter_in_c] = filter_shape.0;
    let [out_batches, _, _, out_depth] = output_shape.0;
    if filter_in_c != in_c {
        return Err(Error::ShapeMismatch { expected: in_c, found: filter_in_c });
    }
    if out_depth != out_c {
        return Err(Error::ShapeMismatch { expected: out_c, found: out_depth });
    }
    if out_batches != batches {
        return Err(Error::ShapeMismatch { expected: batches, found: out_batches });
    }
    check_bias(bias, out_c)?;
    requant.check(out_c)?;
    check_geometry(params, output_shape, kh, kw)?;
    conv_2d_run(params, &requant, input_shape, input, filter_shape, filter, bias, output_shape, output);
    Ok(())
}

/// The loops of [`conv_2d`], for shapes already checked (the slices hold their shapes' sizes,
/// the channel and batch counts agree, strides and dilations are at least 1, a bias or
/// per-channel table has one entry per output channel).
pub(crate) fn conv_2d_run(
    params: &ConvParams,
    requant: &impl Rescale,
    input_shape: Shape4,
    input: &[i8],
    filter_shape: Shape4,
    filter: &[i8],
    bias: Option<&[i32]>,
    output_shape: Shape4,
    output: &mut [i8],
) {
    let [batches, in_h, in_w, in_c] = input_shape.0;
    let [out_c, kh, kw, _] = filter_shape.0;
    let [_, out_h, out_w, _] = output_shape.0;
    for b in 0..batches {
        for oy in 0..out_h {
            for ox in 0..out_w {
                for oc in 0..out_c {
                    let mut acc = 0i32;
                    for fy in 0..kh {
                        let Some(iy) =
                            tap(oy, params.stride_height, params.pad_height, params.dilation_height, fy, in_h)
                        else {
                            continue;
                        };
                        for fx in 0..kw {
                            let Some(ix) =
                                tap(ox, params.stride_width, params.pad_width, params.dilation_width, fx, in_w)
                            else {
                                continue;
                            };
                            let xs = &input[input_shape.offset(b, iy, ix, 0)..][..in_c];
                            let ws = &filter[filter_shape.offset(oc, fy, fx, 0)..][..in_c];
                            for (&xv, &wv) in xs.iter().zip(ws) {
                                let xv = i32::from(xv).wrapping_add(params.input_offset);
                                acc = acc.wrapping_add(i32::from(wv).wrapping_mul(xv));
                            }
                        }
                    }
                    if let Some(bv) = bias.and_then(|bias| bias.get(oc)) {
                        acc = acc.wrapping_add(*bv);
                    }
                    output[output_shape.offset(b, oy, ox, oc)] = finish(
                        requant.rescale(acc, oc),
                        params.output_offset,
                        params.activation_min,
                        params.activation_max,
                    );
                }
            }
        }
    }
}

/// DEPTHWISE_CONV_2D with per-channel (or per-tensor) requantisation: output channel
/// `ic * depth_multiplier + m` filters input channel `ic` with filter channel
/// `ic * depth_multiplier + m`.
///
/// # Errors
/// As [`conv_2d`]; also when `filter_shape` is not `[1, kh, kw, in_c * depth_multiplier]` or
/// `depth_multiplier` is 0.
pub fn depthwise_conv_2d(
    params: &ConvParams,
    depth_multiplier: usize,
    requant: Requant<'_>,
    input_shape: Shape4,
    input: &[i8],
    filter_shape: Shape4,
    filter: &[i8],
    bias: Option<&[i32]>,
    output_shape: Shape4,
    output: &mut [i8],
) -> Result<(), Error> {
    params.check()?;
    if depth_multiplier == 0 {
        return Err(Error::InvalidConfig("int8: depth_multiplier is 0"));
    }
    input_shape.check_len(input.len())?;
    filter_shape.check_len(filter.len())?;
    output_shape.check_len(output.len())?;
    let [batches, _, _, in_c] = input_shape.0;
    let [one, kh, kw, filter_c] = filter_shape.0;
    let [out_batches, _, _, out_c] = output_shape.0;
    let expected_c = in_c.checked_mul(depth_multiplier).ok_or(Error::InvalidConfig("int8: shape too large"))?;
    if one != 1 {
        return Err(Error::ShapeMismatch { expected: 1, found: one });
    }
    if filter_c != expected_c {
        return Err(Error::ShapeMismatch { expected: expected_c, found: filter_c });
    }
    if out_c != expected_c {
        return Err(Error::ShapeMismatch { expected: expected_c, found: out_c });
    }
    if out_batches != batches {
        return Err(Error::ShapeMismatch { expected: batches, found: out_batches });
    }
    check_bias(bias, out_c)?;
    requant.check(out_c)?;
    check_geometry(params, output_shape, kh, kw)?;
    depthwise_conv_2d_run(
        params,
        depth_multiplier,
        &requant,
        input_shape,
        input,
        filter_shape,
        filter,
        bias,
        output_shape,
        output,
    );
    Ok(())
}

/// The loops of [`depthwise_conv_2d`], for shapes already checked as there.
pub(crate) fn depthwise_conv_2d_run(
    params: &ConvParams,
    depth_multiplier: usize,
    requant: &impl Rescale,
    input_shape: Shape4,
    input: &[i8],
    filter_shape: Shape4,
    filter: &[i8],
    bias: Option<&[i32]>,
    output_shape: Shape4,
    output: &mut [i8],
) {
    let [batches, in_h, in_w, in_c] = input_shape.0;
    let [_, kh, kw, _] = filter_shape.0;
    let [_, out_h, out_w, _] = output_shape.0;
    for b in 0..batches {
        for oy in 0..out_h {
            for ox in 0..out_w {
                for ic in 0..in_c {
                    for m in 0..depth_multiplier {
                        let oc = m + ic * depth_multiplier;
                        let mut acc = 0i32;
                        for fy in 0..kh {
                            let Some(iy) =
                                tap(oy, params.stride_height, params.pad_height, params.dilation_height, fy, in_h)
                            else {
                                continue;
                            };
                            for fx in 0..kw {
                                let Some(ix) =
                                    tap(ox, params.stride_width, params.pad_width, params.dilation_width, fx, in_w)
                                else {
                                    continue;
                                };
                                let xv = i32::from(input[input_shape.offset(b, iy, ix, ic)])
                                    .wrapping_add(params.input_offset);
                                let wv = i32::from(filter[filter_shape.offset(0, fy, fx, oc)]);
                                acc = acc.wrapping_add(wv.wrapping_mul(xv));
                            }
                        }
                        if let Some(bv) = bias.and_then(|bias| bias.get(oc)) {
                            acc = acc.wrapping_add(*bv);
                        }
                        output[output_shape.offset(b, oy, ox, oc)] = finish(
                            requant.rescale(acc, oc),
                            params.output_offset,
                            params.activation_min,
                            params.activation_max,
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::int8::QuantizedMultiplier;

    const P: ConvParams = ConvParams {
        input_offset: 0,
        output_offset: 0,
        stride_height: 1,
        stride_width: 1,
        dilation_height: 1,
        dilation_width: 1,
        pad_height: 0,
        pad_width: 0,
        activation_min: -128,
        activation_max: 127,
    };

    #[test]
    fn padding_is_omitted_not_offset() {
        // 1x2x2x1 input of 0 with input_offset 10 (zero point -10), SAME 3x3 filter of ones:
        // each output sums only the in-image taps: 4 taps * 10 = 40.
        let p = ConvParams { input_offset: 10, pad_height: 1, pad_width: 1, ..P };
        let one = [QuantizedMultiplier::from_real(1.0)];
        let mut y = [0i8; 4];
        conv_2d(
            &p,
            Requant::PerChannel(&one),
            Shape4([1, 2, 2, 1]),
            &[0; 4],
            Shape4([1, 3, 3, 1]),
            &[1; 9],
            None,
            Shape4([1, 2, 2, 1]),
            &mut y,
        )
        .unwrap();
        assert_eq!(y, [40; 4]);
    }

    #[test]
    fn stride_dilation_channels() {
        // 1x5x5x2 input, channel 0 = row*5+col, channel 1 = 1; 2 output channels with a 2x2
        // filter dilated by 2, stride 2: output 1x2x2x2.
        let mut x = [0i8; 50];
        for i in 0..25 {
            x[2 * i] = i as i8;
            x[2 * i + 1] = 1;
        }
        // oc 0: taps on channel 0 only; oc 1: taps on channel 1 only, weight 2.
        let mut f = [0i8; 16];
        for t in 0..4 {
            f[t * 2] = 1;
            f[8 + t * 2 + 1] = 2;
        }
        let p = ConvParams { stride_height: 2, stride_width: 2, dilation_height: 2, dilation_width: 2, ..P };
        let m = [QuantizedMultiplier::from_real(1.0), QuantizedMultiplier::from_real(0.5)];
        let mut y = [0i8; 8];
        conv_2d(
            &p,
            Requant::PerChannel(&m),
            Shape4([1, 5, 5, 2]),
            &x,
            Shape4([2, 2, 2, 2]),
            &f,
            Some(&[0, 1]),
            Shape4([1, 2, 2, 2]),
            &mut y,
        )
        .unwrap();
        // Output (0,0): x at (0,0),(0,2),(2,0),(2,2) = 0+2+10+12 = 24; channel 1: (8+1)*0.5 = 4.5 -> 5.
        assert_eq!(y[0], 24);
        assert_eq!(y[1], 5);
        // Output (1,1): (2,2),(2,4),(4,2),(4,4) = 12+14+22+24 = 72.
        assert_eq!(y[6], 72);
    }

    #[test]
    fn depthwise_multiplier() {
        // 1x1x2x2 input, 1x1 filter, depth multiplier 2: 4 output channels.
        let x = [1, 2, 3, 4];
        let f = [1, -1, 2, -2];
        let one = [QuantizedMultiplier::from_real(1.0); 4];
        let mut y = [0i8; 8];
        depthwise_conv_2d(
            &P,
            2,
            Requant::PerChannel(&one),
            Shape4([1, 1, 2, 2]),
            &x,
            Shape4([1, 1, 1, 4]),
            &f,
            None,
            Shape4([1, 1, 2, 4]),
            &mut y,
        )
        .unwrap();
        assert_eq!(y, [1, -1, 4, -4, 3, -3, 8, -8]);
        assert!(
            depthwise_conv_2d(
                &P,
                1,
                Requant::PerChannel(&one),
                Shape4([1, 1, 2, 2]),
                &x,
                Shape4([1, 1, 1, 4]),
                &f,
                None,
                Shape4([1, 1, 2, 4]),
                &mut y
            )
            .is_err()
        );
    }
}
