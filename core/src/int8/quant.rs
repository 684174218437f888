//! Prepare-time parameters as TFLite computes them: multipliers from real scales, activation
//! ranges, padding and output sizes; and the QUANTIZE / DEQUANTIZE kernels.
//!
//! Sources: `tensorflow/lite/kernels/internal/quantization_util.cc` (`QuantizeMultiplier`,
//! `QuantizeMultiplierSmallerThanOneExp`, `QuantizeMultiplierGreaterThanOne`,
//! `PreprocessSoftmaxScaling`, `CalculateInputRadius`), `tensorflow/lite/kernels/kernel_util.cc`
//! (`CalculateActivationRangeQuantized`, `GetQuantizedConvolutionMultipler`,
//! `PopulateConvolutionQuantizationParams`), `tensorflow/lite/kernels/padding.h`
//! (`ComputePaddingWithOffset`, `ComputeOutSize`), `reference_ops::AffineQuantize` and
//! `reference_ops::Dequantize`.
//!
//! ```
//! use tinytrain::int8::{activation_range, quantize_multiplier, FusedActivation};
//! assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
//! assert_eq!(quantize_multiplier(2.0), (1 << 30, 2));
//! // ReLU6 with scale 6/255 and zero point -128: [zp, zp + 255].
//! assert_eq!(activation_range(FusedActivation::Relu6, 6.0 / 255.0, -128), (-128, 127));
//! ```

use super::fixedpoint::multiply_by_quantized_multiplier_fast;
use crate::Error;

/// A fixed-point multiplier with its power-of-two exponent, as TFLite's `QuantizeMultiplier`
/// returns them: the real value is `multiplier * 2^(shift - 31)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QuantizedMultiplier {
    /// Significand in Q0.31, in `[2^30, 2^31)` (or 0).
    pub multiplier: i32,
    /// Exponent: positive shifts left, negative right.
    pub shift: i32,
}

impl QuantizedMultiplier {
    /// The multiplier closest to `real` ([`quantize_multiplier`]).
    #[must_use]
    pub fn from_real(real: f64) -> Self {
        let (multiplier, shift) = quantize_multiplier(real);
        QuantizedMultiplier { multiplier, shift }
    }

    /// `x * real` with TFLite's default double rounding
    /// ([`multiply_by_quantized_multiplier`](super::multiply_by_quantized_multiplier), computed
    /// as [`multiply_by_quantized_multiplier_fast`]).
    #[must_use]
    #[inline]
    pub fn apply(self, x: i32) -> i32 {
        multiply_by_quantized_multiplier_fast(x, self.multiplier, self.shift)
    }

    /// `apply(x) + offset` ([`multiply_by_quantized_multiplier_plus`](super::fixedpoint::multiply_by_quantized_multiplier_plus)).
    #[must_use]
    #[inline]
    pub fn apply_plus(self, x: i32, offset: i32) -> i32 {
        super::fixedpoint::multiply_by_quantized_multiplier_plus(x, self.multiplier, self.shift, offset)
    }
}

/// A [`QuantizedMultiplier`] of a scale below 1/4 (non-negative multiplier, `shift` in
/// `-31..=-2`: every convolution's, in practice), kept in the form its application needs: the
/// right shift less one. [`ShiftedMultiplier::apply_plus`] is then TFLite's
/// `MultiplyByQuantizedMultiplier` plus the output zero point with no range checks: an `SMLAL`,
/// three shifts and an add (the zero point folded into the last rounding). Made by
/// [`ShiftedMultiplier::new`], which refuses the multipliers outside that form;
/// `tinytrain-sim import --rust` writes these tables for CONV_2D when every channel qualifies.
///
/// ```
/// use tinytrain::int8::{QuantizedMultiplier, ShiftedMultiplier};
/// let m = QuantizedMultiplier::from_real(0.003);
/// let s = ShiftedMultiplier::new(m).unwrap();
/// for acc in [-100_000, -3, 0, 7, 123_456] {
///     assert_eq!(s.apply_plus(acc, -128), m.apply(acc) - 128);
/// }
/// assert!(ShiftedMultiplier::new(QuantizedMultiplier::from_real(0.5)).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ShiftedMultiplier {
    /// Significand in Q0.31, non-negative.
    pub multiplier: i32,
    /// `-shift - 1`, in `1..=30` (only the low five bits are used).
    pub right_shift_less_one: u32,
}

impl ShiftedMultiplier {
    /// `m` in this form, if its multiplier is non-negative and its shift in `-31..=-2`.
    #[must_use]
    pub const fn new(m: QuantizedMultiplier) -> Option<Self> {
        if m.multiplier >= 0 && m.shift <= -2 && m.shift >= -31 {
            Some(ShiftedMultiplier { multiplier: m.multiplier, right_shift_less_one: (-m.shift - 1).cast_unsigned() })
        } else {
            None
        }
    }

    /// `MultiplyByQuantizedMultiplier(acc) + offset` (TFLite's default double rounding), for
    /// `|offset| < 2^24`; other offsets wrap differently. Equal to
    /// [`multiply_by_quantized_multiplier_plus`](super::multiply_by_quantized_multiplier_plus)
    /// for every accumulator.
    #[must_use]
    #[inline]
    pub fn apply_plus(self, acc: i32, offset: i32) -> i32 {
        let y = super::fixedpoint::doubling_high(acc, self.multiplier);
        // (y - [y < 0]) >> (e - 1) is within 2^30 for e >= 2: no overflow below.
        ((((y + (y >> 31)) >> (self.right_shift_less_one & 31)) + 1).wrapping_add(offset.wrapping_mul(2))) >> 1
    }
}

/// TFLite's `QuantizeMultiplier`: `real = q * 2^shift` with `q` in `[0.5, 1)` (`frexp`),
/// `multiplier = round(q * 2^31)` (half away from zero); a `multiplier` that rounds up to
/// `2^31` is halved and `shift` incremented; shifts below -31 flush to `(0, 0)`. Zero, NaN and
/// infinities give `(0, 0)` (TFLite aborts on the last two).
#[must_use]
pub fn quantize_multiplier(real: f64) -> (i32, i32) {
    if real == 0.0 || !real.is_finite() {
        return (0, 0);
    }
    let (q, mut shift) = libm::frexp(real);
    let mut q_fixed = libm::round(q * (1i64 << 31) as f64) as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    (q_fixed as i32, shift)
}

/// TFLite's `QuantizeMultiplierSmallerThanOneExp`: [`quantize_multiplier`] for `real` in
/// `(0, 1)`, the shift (`<= 0`) returned as a left shift.
///
/// # Errors
/// [`Error::InvalidConfig`] if `real` is not in `(0, 1)` (TFLite aborts).
pub fn quantize_multiplier_smaller_than_one_exp(real: f64) -> Result<QuantizedMultiplier, Error> {
    if !(real > 0.0 && real < 1.0) {
        return Err(Error::InvalidConfig("int8: multiplier must be in (0, 1)"));
    }
    Ok(QuantizedMultiplier::from_real(real))
}

/// TFLite's `QuantizeMultiplierGreaterThanOne`: [`quantize_multiplier`] for `real > 1`.
///
/// # Errors
/// [`Error::InvalidConfig`] if `real <= 1` or not finite (TFLite aborts).
pub fn quantize_multiplier_greater_than_one(real: f64) -> Result<QuantizedMultiplier, Error> {
    if !(real > 1.0 && real.is_finite()) {
        return Err(Error::InvalidConfig("int8: multiplier must be greater than one"));
    }
    Ok(QuantizedMultiplier::from_real(real))
}

/// A fused activation of a TFLite operator (`ActivationFunctionType` in the schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FusedActivation {
    /// No clamp beyond the int8 range.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `clamp(x, -1, 1)` (TFLite's RELU_N1_TO_1).
    ReluN1To1,
    /// `clamp(x, 0, 6)`.
    Relu6,
}

/// `zero_point + (int) round(f / scale)` in `f32`, as the lambda of
/// `CalculateActivationRangeQuantizedImpl` (the cast saturates where C++ is undefined).
fn quantize_f32(f: f32, scale: f32, zero_point: i32) -> i32 {
    zero_point.saturating_add(libm::roundf(f / scale) as i32)
}

/// TFLite's `CalculateActivationRangeQuantized` for an int8 output: the `[min, max]` clamp of a
/// fused activation, in output units.
#[must_use]
pub fn activation_range(activation: FusedActivation, output_scale: f32, output_zero_point: i32) -> (i32, i32) {
    let (qmin, qmax) = (i32::from(i8::MIN), i32::from(i8::MAX));
    let q = |f: f32| quantize_f32(f, output_scale, output_zero_point);
    match activation {
        FusedActivation::None => (qmin, qmax),
        FusedActivation::Relu => (qmin.max(q(0.0)), qmax),
        FusedActivation::Relu6 => (qmin.max(q(0.0)), qmax.min(q(6.0))),
        FusedActivation::ReluN1To1 => (qmin.max(q(-1.0)), qmax.min(q(1.0))),
    }
}

/// The effective scale of FULLY_CONNECTED as TFLite's `GetQuantizedConvolutionMultipler`
/// computes it: `(double)(input_scale * filter_scale) / (double)output_scale`, the product in
/// `f32`. This is the per-tensor multiplier of the fixed-point FULLY_CONNECTED path (TFLM and
/// TFLite before 2.20).
#[must_use]
pub fn fully_connected_real_multiplier(input_scale: f32, filter_scale: f32, output_scale: f32) -> f64 {
    f64::from(input_scale * filter_scale) / f64::from(output_scale)
}

/// The effective scale of one output channel as TFLite's
/// `PopulateConvolutionQuantizationParams` computes it (CONV_2D, DEPTHWISE_CONV_2D, per-channel
/// FULLY_CONNECTED), and as the float requantisation of TFLite 2.20+'s reference
/// FULLY_CONNECTED uses it: `(double)input_scale * (double)filter_scale / (double)output_scale`.
#[must_use]
pub fn effective_scale(input_scale: f32, filter_scale: f32, output_scale: f32) -> f64 {
    f64::from(input_scale) * f64::from(filter_scale) / f64::from(output_scale)
}

/// Per-channel multipliers for CONV_2D / DEPTHWISE_CONV_2D (`PopulateConvolutionQuantizationParams`):
/// one [`QuantizedMultiplier`] per entry of `out`, from `filter_scales[c]`, or from
/// `filter_scales[0]` for every channel when the filter is quantised per tensor.
///
/// # Errors
/// [`Error::ShapeMismatch`] if `filter_scales` has neither 1 nor `out.len()` entries.
pub fn per_channel_multipliers(
    input_scale: f32,
    filter_scales: &[f32],
    output_scale: f32,
    out: &mut [QuantizedMultiplier],
) -> Result<(), Error> {
    if filter_scales.len() != 1 && filter_scales.len() != out.len() {
        return Err(Error::ShapeMismatch { expected: out.len(), found: filter_scales.len() });
    }
    for (c, m) in out.iter_mut().enumerate() {
        let s = if filter_scales.len() == 1 { filter_scales[0] } else { filter_scales[c] };
        *m = QuantizedMultiplier::from_real(effective_scale(input_scale, s, output_scale));
    }
    Ok(())
}

/// Padding of a TFLite convolution or pooling operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Padding {
    /// Output size `ceil(in / stride)`, zeros added around the input as needed.
    Same,
    /// No padding: output size `(in - effective_filter) / stride + 1`.
    Valid,
}

/// TFLite's `ComputeOutSize` (0 for a zero stride or a filter larger than a VALID input).
#[must_use]
pub fn compute_out_size(
    padding: Padding,
    image_size: usize,
    filter_size: usize,
    stride: usize,
    dilation: usize,
) -> usize {
    if stride == 0 || filter_size == 0 {
        return 0;
    }
    let effective_filter = (filter_size - 1).saturating_mul(dilation).saturating_add(1);
    match padding {
        Padding::Same => image_size.div_ceil(stride),
        Padding::Valid => image_size.saturating_add(stride).saturating_sub(effective_filter) / stride,
    }
}

/// TFLite's `ComputePaddingWithOffset`: the padding before the first row (column); TFLite's
/// reference kernels use only this value (the extra one, `offset`, goes after the last).
#[must_use]
pub fn compute_padding(stride: usize, dilation: usize, in_size: usize, filter_size: usize, out_size: usize) -> usize {
    if filter_size == 0 || out_size == 0 {
        return 0;
    }
    let effective_filter = (filter_size - 1).saturating_mul(dilation).saturating_add(1);
    let total = (out_size - 1).saturating_mul(stride).saturating_add(effective_filter).saturating_sub(in_size);
    total / 2
}

/// `libm::roundf(x) as i32` (half away from zero, saturating, NaN to 0) without the `trunc`:
/// `roundf` is `trunc(x + copysign(0.5 - 2^-25, x))` and the cast truncates already, so the
/// same bits in about ten fewer instructions on the Cortex-M4F.
#[must_use]
#[inline]
pub(crate) fn round_to_i32(x: f32) -> i32 {
    (x + libm::copysignf(0.5 - 0.25 * f32::EPSILON, x)) as i32
}

/// QUANTIZE f32 → int8 (`reference_ops::AffineQuantize`): `clamp(round(x / scale) +
/// zero_point, -128, 127)`, the division in `f32`, rounding half away from zero. NaN gives
/// `zero_point` clamped (C++ is undefined there).
///
/// # Errors
/// [`Error::ShapeMismatch`] if the slices differ in length.
pub fn quantize(input: &[f32], scale: f32, zero_point: i32, output: &mut [i8]) -> Result<(), Error> {
    if input.len() != output.len() {
        return Err(Error::ShapeMismatch { expected: output.len(), found: input.len() });
    }
    for (y, &x) in output.iter_mut().zip(input) {
        let unclamped = round_to_i32(x / scale).saturating_add(zero_point);
        *y = unclamped.clamp(i32::from(i8::MIN), i32::from(i8::MAX)) as i8;
    }
    Ok(())
}

/// DEQUANTIZE int8 → f32 (`reference_ops::Dequantize`): `(float)((double)scale * (q -
/// zero_point))`.
///
/// # Errors
/// [`Error::ShapeMismatch`] if the slices differ in length.
pub fn dequantize(input: &[i8], scale: f32, zero_point: i32, output: &mut [f32]) -> Result<(), Error> {
    if input.len() != output.len() {
        return Err(Error::ShapeMismatch { expected: output.len(), found: input.len() });
    }
    for (y, &q) in output.iter_mut().zip(input) {
        *y = (f64::from(scale) * f64::from(i32::from(q).wrapping_sub(zero_point))) as f32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_to_i32_is_roundf_cast() {
        // Every 257th bit pattern (all exponents, both signs, NaN and infinities) and the
        // halves and their neighbours.
        let halves = (-300i32..300).flat_map(|k| {
            let half = k as f32 + 0.5;
            [half, f32::from_bits(half.to_bits() + 1), f32::from_bits(half.to_bits() - 1)]
        });
        let edges = [0.0, -0.0, f32::MAX, f32::MIN, 2.147_483_6e9, -2.147_483_6e9, f32::NAN, f32::INFINITY];
        for x in (0..=u32::MAX / 257).map(|k| f32::from_bits(k * 257)).chain(halves).chain(edges) {
            assert_eq!(round_to_i32(x), libm::roundf(x) as i32, "x = {x:e} ({:#010x})", x.to_bits());
        }
    }

    /// Cases from TFLite's `quantization_util_test.cc` (`QuantizeMultiplier*` tests).
    #[test]
    fn quantize_multiplier_matches_tflite_tests() {
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
        assert_eq!(quantize_multiplier(0.25), (1 << 30, -1));
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
        assert_eq!(quantize_multiplier(2.0), (1 << 30, 2));
        assert_eq!(quantize_multiplier(-0.5), (-(1 << 30), 0));
        assert_eq!(quantize_multiplier(-0.25), (-(1 << 30), -1));
        assert_eq!(quantize_multiplier(-1.0), (-(1 << 30), 1));
        // 2^-32 still fits (shift -31), 2^-33 flushes to zero.
        assert_eq!(quantize_multiplier(2f64.powi(-31)), (1 << 30, -30));
        assert_eq!(quantize_multiplier(2f64.powi(-32)), (1 << 30, -31));
        assert_eq!(quantize_multiplier(2f64.powi(-33)), (0, 0));
        // Rounds up to 2^31: halved, shift incremented (QuantizeMultiplierTest, 1 - 2^-40).
        assert_eq!(quantize_multiplier(1.0 - 2f64.powi(-40)), (1 << 30, 1));
        // QuantizeMultiplierGreaterThanOne / SmallerThanOneExp examples of the test file.
        let m = quantize_multiplier_greater_than_one(1.5).unwrap();
        assert_eq!((m.multiplier, m.shift), (3 << 29, 1));
        let m = quantize_multiplier_smaller_than_one_exp(0.75).unwrap();
        assert_eq!((m.multiplier, m.shift), (3 << 29, 0));
        assert!(quantize_multiplier_smaller_than_one_exp(1.0).is_err());
        assert!(quantize_multiplier_greater_than_one(1.0).is_err());
    }

    #[test]
    fn quantized_multiplier_round_trips_the_real_value() {
        let mut rng = crate::rng::Rng::new(3);
        for _ in 0..10_000 {
            let real = f64::from(rng.uniform(-20.0, 20.0)) * 2f64.powi(rng.below(40).cast_signed() - 30);
            let (m, shift) = quantize_multiplier(real);
            if shift == 0 && m == 0 {
                assert!(real.abs() < 2f64.powi(-31));
                continue;
            }
            assert!((1 << 30..=i32::MAX).contains(&m.abs()), "{real}: {m}");
            let back = f64::from(m) * 2f64.powi(shift - 31);
            assert!((back - real).abs() <= real.abs() * 2f64.powi(-31), "{real} vs {back}");
        }
    }

    #[test]
    fn shifted_multiplier_is_the_reference_plus_the_offset() {
        let mut rng = crate::rng::Rng::new(17);
        let accs = [i32::MIN, i32::MIN + 1, -(1 << 30), -65_536, -3, -1, 0, 1, 3, 65_536, 1 << 30, i32::MAX];
        for shift in -31..=-2 {
            for _ in 0..200 {
                let m = QuantizedMultiplier { multiplier: (1 << 30) + (rng.next_u32() >> 2).cast_signed(), shift };
                let s = ShiftedMultiplier::new(m).unwrap();
                for offset in [-128, -1, 0, 5, 127, (1 << 24) - 1, -(1 << 24) + 1] {
                    for &acc in &accs {
                        let want = crate::int8::multiply_by_quantized_multiplier(acc, m.multiplier, shift)
                            .wrapping_add(offset);
                        assert_eq!(s.apply_plus(acc, offset), want, "acc={acc} m={m:?} offset={offset}");
                    }
                    let acc = rng.next_u32().cast_signed() >> (rng.next_u32() % 32);
                    let want =
                        crate::int8::multiply_by_quantized_multiplier(acc, m.multiplier, shift).wrapping_add(offset);
                    assert_eq!(s.apply_plus(acc, offset), want, "acc={acc} m={m:?} offset={offset}");
                }
            }
        }
        assert!(ShiftedMultiplier::new(QuantizedMultiplier { multiplier: 1 << 30, shift: -1 }).is_none());
        assert!(ShiftedMultiplier::new(QuantizedMultiplier { multiplier: -(1 << 30), shift: -5 }).is_none());
        assert!(ShiftedMultiplier::new(QuantizedMultiplier { multiplier: 1 << 30, shift: -32 }).is_none());
    }

    #[test]
    fn activation_ranges() {
        assert_eq!(activation_range(FusedActivation::None, 0.1, 3), (-128, 127));
        assert_eq!(activation_range(FusedActivation::Relu, 0.1, 3), (3, 127));
        assert_eq!(activation_range(FusedActivation::Relu6, 0.1, 3), (3, 63));
        assert_eq!(activation_range(FusedActivation::ReluN1To1, 0.1, 3), (-7, 13));
        // Rounding of 6 / scale is half away from zero.
        assert_eq!(activation_range(FusedActivation::Relu6, 4.0, 0), (0, 2)); // 1.5 -> 2
        assert_eq!(activation_range(FusedActivation::ReluN1To1, 4.0, 0), (0, 0)); // -0.25 -> 0
    }

    #[test]
    fn padding_and_out_size_as_tflite() {
        assert_eq!(compute_out_size(Padding::Same, 5, 3, 2, 1), 3);
        assert_eq!(compute_out_size(Padding::Valid, 5, 3, 2, 1), 2);
        assert_eq!(compute_out_size(Padding::Valid, 5, 3, 1, 2), 1);
        assert_eq!(compute_out_size(Padding::Valid, 2, 3, 1, 1), 0);
        assert_eq!(compute_padding(2, 1, 5, 3, 3), 1); // total 2
        assert_eq!(compute_padding(2, 1, 6, 3, 3), 0); // total 1: the extra one goes after
        assert_eq!(compute_padding(1, 1, 4, 3, 4), 1);
        assert_eq!(compute_padding(1, 1, 5, 3, 3), 0); // VALID
    }

    #[test]
    fn quantize_rounds_half_away_and_clamps() {
        let mut q = [0i8; 6];
        quantize(&[0.5, -0.5, 1.5, -1.5, 1000.0, f32::NAN], 1.0, 0, &mut q).unwrap();
        assert_eq!(q, [1, -1, 2, -2, 127, 0]);
        let mut f = [0.0f32; 2];
        dequantize(&[-128, 127], 0.5, -128, &mut f).unwrap();
        assert_eq!(f, [0.0, 127.5]);
        assert!(quantize(&[0.0], 1.0, 0, &mut q).is_err());
    }
}
