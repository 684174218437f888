//! SOFTMAX, int8 in and out, as TFLite's reference kernel computes it.
//!
//! TFLite's `BUILTIN_REF` resolver registers `activations::SoftmaxPrepare<kReference>` /
//! `SoftmaxEval<kReference>` (`tensorflow/lite/kernels/activations.cc`). For int8 input and
//! output, Prepare takes the `kReference` branch — `PreprocessSoftmaxScaling(beta,
//! input_scale, kScaledDiffIntegerBits = 5)` and `diff_min = -CalculateInputRadius(5,
//! input_left_shift)` — not the lookup table (`PopulateSoftmaxLookupTable`) of the optimized
//! kernels, and Eval calls the fixed-point `reference_ops::Softmax<int8_t, int8_t>`
//! (`tensorflow/lite/kernels/internal/reference/softmax.h`): per row, `diff = x - max`; the
//! differences `>= diff_min` are scaled by `beta * input_scale` into Q5.26
//! (`MultiplyByQuantizedMultiplierGreaterThanOne`), exponentiated with gemmlowp's
//! `exp_on_negative_values`, summed in Q12.19, inverted with `GetReciprocal`, and each output
//! is `RoundingDivideByPOT(reciprocal * exp, num_bits_over_unit + 23) - 128`; the other
//! entries are -128. TFLite requires the output scale 1/256 and zero point -128.
//!
//! ```
//! use tinytrain::int8::{softmax, SoftmaxParams};
//! let p = SoftmaxParams::new(1.0, 0.1, 1.0 / 256.0, -128).unwrap();
//! let mut y = [0i8; 2];
//! softmax(&p, 2, &[10, 10], &mut y).unwrap();
//! assert_eq!(y, [0, 0]); // 0.5 each: 128 - 128
//! ```

use super::fixedpoint::{
    exp_on_negative_values, get_reciprocal, multiply_by_quantized_multiplier_greater_than_one, rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
};
use super::quant::quantize_multiplier_greater_than_one;
use crate::Error;

/// Integer bits of the scaled input differences (Q5.26), TFLite's `kScaledDiffIntegerBits`.
const SCALED_DIFF_INTEGER_BITS: i32 = 5;
/// Integer bits of the sum of exponentials (Q12.19), TFLite's `kAccumulationIntegerBits`.
const ACCUMULATION_INTEGER_BITS: i32 = 12;

/// Prepare-time constants of the reference SOFTMAX (the fields of TFLite's `SoftmaxParams` it
/// uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SoftmaxParams {
    /// Fixed-point `beta * input_scale * 2^26` significand.
    pub input_multiplier: i32,
    /// Its left shift.
    pub input_left_shift: i32,
    /// Differences below this (in input units) give -128 without computing `exp`.
    pub diff_min: i32,
}

impl SoftmaxParams {
    /// The constants `SoftmaxPrepare<kReference>` computes for `beta` and `input_scale`
    /// (`PreprocessSoftmaxScaling` and `CalculateInputRadius` of `quantization_util.cc`, in
    /// `f64` from the `f32` values as there).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the output is not quantised as TFLite requires (zero point
    /// -128, scale 1/256 within 0.1%), or `beta * input_scale * 2^26` is not above 1 (TFLite
    /// aborts there).
    pub fn new(beta: f32, input_scale: f32, output_scale: f32, output_zero_point: i32) -> Result<Self, Error> {
        if output_zero_point != -128 || (output_scale - 1.0 / 256.0).abs() > 0.001 / 256.0 {
            return Err(Error::InvalidConfig("int8 softmax: output must have scale 1/256 and zero point -128"));
        }
        // PreprocessSoftmaxScaling: min(beta * input_scale * 2^(31 - 5), 2^31 - 1).
        let real = (f64::from(beta) * f64::from(input_scale) * f64::from(1i32 << (31 - SCALED_DIFF_INTEGER_BITS)))
            .min((1i64 << 31) as f64 - 1.0);
        let m = quantize_multiplier_greater_than_one(real)?;
        Ok(SoftmaxParams {
            input_multiplier: m.multiplier,
            input_left_shift: m.shift,
            diff_min: -calculate_input_radius(SCALED_DIFF_INTEGER_BITS, m.shift, 31),
        })
    }
}

/// TFLite's `CalculateInputRadius`: `floor((2^input_integer_bits - 1) *
/// 2^(total_signed_bits - input_integer_bits) / 2^input_left_shift)` in `f64`, saturated to
/// `i32`.
#[must_use]
pub fn calculate_input_radius(input_integer_bits: i32, input_left_shift: i32, total_signed_bits: i32) -> i32 {
    let max_input_rescaled = f64::from((1i32 << input_integer_bits.clamp(0, 30)) - 1)
        * libm::exp2(f64::from(total_signed_bits.saturating_sub(input_integer_bits)))
        / libm::exp2(f64::from(input_left_shift));
    libm::floor(max_input_rescaled) as i32
}

/// SOFTMAX over the last axis: `input` and `output` are rows of `depth` values.
///
/// # Errors
/// [`Error::ShapeMismatch`] if the slices differ in length or are not whole rows of `depth`
/// (`depth` must not be 0).
pub fn softmax(params: &SoftmaxParams, depth: usize, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
    if input.len() != output.len() {
        return Err(Error::ShapeMismatch { expected: output.len(), found: input.len() });
    }
    if depth == 0 || !input.len().is_multiple_of(depth) {
        return Err(Error::ShapeMismatch { expected: depth, found: input.len() });
    }
    let scaled_exp = |diff: i32| {
        let rescaled =
            multiply_by_quantized_multiplier_greater_than_one(diff, params.input_multiplier, params.input_left_shift);
        exp_on_negative_values::<SCALED_DIFF_INTEGER_BITS>(rescaled)
    };
    for (x, y) in input.chunks_exact(depth).zip(output.chunks_exact_mut(depth)) {
        let max_in_row = x.iter().copied().max().unwrap_or(i8::MIN);
        let mut sum_of_exps = 0i32;
        for &v in x {
            let diff = i32::from(v) - i32::from(max_in_row);
            if diff >= params.diff_min {
                // Rescale<12> from Q0.31 is a rounding division by 2^12; gemmlowp's `+` wraps.
                sum_of_exps =
                    sum_of_exps.wrapping_add(rounding_divide_by_pot(scaled_exp(diff), ACCUMULATION_INTEGER_BITS));
            }
        }
        let (shifted_scale, num_bits_over_unit) = get_reciprocal(sum_of_exps, ACCUMULATION_INTEGER_BITS);
        let exponent = num_bits_over_unit + 31 - 8;
        for (&v, out) in x.iter().zip(y.iter_mut()) {
            let diff = i32::from(v) - i32::from(max_in_row);
            *out = if diff >= params.diff_min {
                let unsat = rounding_divide_by_pot(
                    saturating_rounding_doubling_high_mul(shifted_scale, scaled_exp(diff)),
                    exponent,
                );
                unsat.wrapping_add(-128).clamp(-128, 127) as i8
            } else {
                i8::MIN
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_as_tflite_prepare() {
        // beta 1, input scale 1/16: real = 2^22, so multiplier 2^30 and shift 23.
        let p = SoftmaxParams::new(1.0, 1.0 / 16.0, 1.0 / 256.0, -128).unwrap();
        assert_eq!((p.input_multiplier, p.input_left_shift), (1 << 30, 23));
        // radius = floor(31 * 2^26 / 2^23) = 248.
        assert_eq!(p.diff_min, -248);
        assert!(SoftmaxParams::new(1.0, 0.1, 1.0 / 255.0, -128).is_err());
        assert!(SoftmaxParams::new(1.0, 0.1, 1.0 / 256.0, 0).is_err());
        assert!(SoftmaxParams::new(1.0, 1e-9, 1.0 / 256.0, -128).is_err());
    }

    #[test]
    fn outputs_track_float_softmax() {
        let p = SoftmaxParams::new(1.0, 0.05, 1.0 / 256.0, -128).unwrap();
        let x: [i8; 5] = [-100, -20, 0, 7, 50];
        let mut y = [0i8; 5];
        softmax(&p, 5, &x, &mut y).unwrap();
        let e: [f64; 5] = x.map(|v| libm::exp(f64::from(v) * 0.05));
        let s: f64 = e.iter().sum();
        for (yi, ei) in y.iter().zip(e) {
            let want = ei / s * 256.0 - 128.0;
            assert!((f64::from(*yi) - want).abs() <= 1.0, "{y:?}");
        }
        assert!(softmax(&p, 3, &x, &mut y).is_err());
        assert!(softmax(&p, 0, &[], &mut []).is_err());
    }
}
