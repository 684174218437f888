//! ADD, int8, element-wise (same shapes).
//!
//! Mirrors `reference_integer_ops::Add` / `AddElementwise`
//! (`tensorflow/lite/kernels/internal/reference/integer_ops/add.h`) with the constants of
//! `add.cc`'s Prepare for int8: both inputs are shifted left by 20 bits, scaled to a common
//! scale `2 * max(s1, s2)` by `MultiplyByQuantizedMultiplierSmallerThanOneExp`, summed, and the
//! sum scaled to the output. Broadcasting (`BroadcastAdd6DSlow`) is not implemented.
//!
//! ```
//! use tinytrain::int8::{add, AddParams, FusedActivation};
//! let p = AddParams::new(0.5, 0, 0.5, 0, 1.0, 0, FusedActivation::None).unwrap();
//! let mut y = [0i8; 3];
//! add(&p, &[2, 4, -3], &[2, 5, -4], &mut y).unwrap();
//! assert_eq!(y, [2, 5, -4]); // (4 + 0) / 2, 4.5 -> 5, -3.5 -> -4
//! ```

use super::fixedpoint::multiply_by_quantized_multiplier_smaller_than_one_exp;
use super::quant::{FusedActivation, activation_range, quantize_multiplier_smaller_than_one_exp};
use super::requant::check_activation;
use crate::Error;

/// Prepare-time constants of int8 ADD (TFLite's `ArithmeticParams` fields it uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AddParams {
    /// `-input1_zero_point`.
    pub input1_offset: i32,
    /// `-input2_zero_point`.
    pub input2_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// 20 for int8 outputs.
    pub left_shift: i32,
    /// `s1 / (2 max(s1, s2))` significand.
    pub input1_multiplier: i32,
    /// Its (non-positive) shift.
    pub input1_shift: i32,
    /// `s2 / (2 max(s1, s2))` significand.
    pub input2_multiplier: i32,
    /// Its (non-positive) shift.
    pub input2_shift: i32,
    /// `2 max(s1, s2) / (2^20 so)` significand.
    pub output_multiplier: i32,
    /// Its (non-positive) shift.
    pub output_shift: i32,
    /// Lower clamp.
    pub activation_min: i32,
    /// Upper clamp.
    pub activation_max: i32,
}

impl AddParams {
    /// The constants `add.cc` Prepare computes for int8 inputs and output: `twice_max_input_scale
    /// = 2 * max(s1, s2)` (in `f32`, exact), the three real multipliers in `f64`, each through
    /// `QuantizeMultiplierSmallerThanOneExp`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a multiplier is not in `(0, 1)` (TFLite aborts: the output
    /// scale is too small against the inputs', or a scale is not positive).
    pub fn new(
        input1_scale: f32,
        input1_zero_point: i32,
        input2_scale: f32,
        input2_zero_point: i32,
        output_scale: f32,
        output_zero_point: i32,
        activation: FusedActivation,
    ) -> Result<Self, Error> {
        let left_shift = 20;
        let twice_max_input_scale = f64::from(2.0 * input1_scale.max(input2_scale));
        let real_input1 = f64::from(input1_scale) / twice_max_input_scale;
        let real_input2 = f64::from(input2_scale) / twice_max_input_scale;
        // (1 << left_shift) * output_scale is an int times a float: computed in f32 (exact).
        let real_output = twice_max_input_scale / f64::from((1i32 << left_shift) as f32 * output_scale);
        let m1 = quantize_multiplier_smaller_than_one_exp(real_input1)?;
        let m2 = quantize_multiplier_smaller_than_one_exp(real_input2)?;
        let mo = quantize_multiplier_smaller_than_one_exp(real_output)?;
        let (activation_min, activation_max) = activation_range(activation, output_scale, output_zero_point);
        Ok(AddParams {
            input1_offset: input1_zero_point.wrapping_neg(),
            input2_offset: input2_zero_point.wrapping_neg(),
            output_offset: output_zero_point,
            left_shift,
            input1_multiplier: m1.multiplier,
            input1_shift: m1.shift,
            input2_multiplier: m2.multiplier,
            input2_shift: m2.shift,
            output_multiplier: mo.multiplier,
            output_shift: mo.shift,
            activation_min,
            activation_max,
        })
    }
}

/// One element of int8 ADD (`AddFunc` of `integer_ops/add.h`).
#[must_use]
#[inline]
pub fn add_one(params: &AddParams, a: i8, b: i8) -> i8 {
    let shift = |v: i32| v.wrapping_mul(1i32.wrapping_shl(params.left_shift.clamp(0, 31) as u32));
    let a = shift(params.input1_offset.wrapping_add(i32::from(a)));
    let b = shift(params.input2_offset.wrapping_add(i32::from(b)));
    let a = multiply_by_quantized_multiplier_smaller_than_one_exp(a, params.input1_multiplier, params.input1_shift);
    let b = multiply_by_quantized_multiplier_smaller_than_one_exp(b, params.input2_multiplier, params.input2_shift);
    let raw_sum = a.wrapping_add(b);
    let raw_output =
        multiply_by_quantized_multiplier_smaller_than_one_exp(raw_sum, params.output_multiplier, params.output_shift)
            .wrapping_add(params.output_offset);
    raw_output.max(params.activation_min).min(params.activation_max) as i8
}

/// Element-wise int8 ADD of two tensors of the same shape.
///
/// # Errors
/// [`Error::ShapeMismatch`] if the three slices differ in length; [`Error::InvalidConfig`]
/// for an empty activation range.
pub fn add(params: &AddParams, input1: &[i8], input2: &[i8], output: &mut [i8]) -> Result<(), Error> {
    check_activation(params.activation_min, params.activation_max)?;
    if input1.len() != output.len() {
        return Err(Error::ShapeMismatch { expected: output.len(), found: input1.len() });
    }
    if input2.len() != output.len() {
        return Err(Error::ShapeMismatch { expected: output.len(), found: input2.len() });
    }
    for ((y, &a), &b) in output.iter_mut().zip(input1).zip(input2) {
        *y = add_one(params, a, b);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_constants() {
        // Equal scales: each input multiplier is 1/2 (2^30, shift 0); the output one is
        // 2 s / (2^20 s) = 2^-19 (2^30, shift -18).
        let p = AddParams::new(0.1, 3, 0.1, -2, 0.1, 1, FusedActivation::Relu).unwrap();
        assert_eq!((p.input1_multiplier, p.input1_shift), (1 << 30, 0));
        assert_eq!((p.input2_multiplier, p.input2_shift), (1 << 30, 0));
        assert_eq!((p.output_multiplier, p.output_shift), (1 << 30, -18));
        assert_eq!((p.input1_offset, p.input2_offset, p.output_offset), (-3, 2, 1));
        assert_eq!((p.activation_min, p.activation_max), (1, 127));
        // An output scale far below the inputs' makes the output multiplier exceed one.
        assert!(AddParams::new(1.0, 0, 1.0, 0, 1e-9, 0, FusedActivation::None).is_err());
    }

    #[test]
    fn sums_track_real_values() {
        let (s1, z1, s2, z2, so, zo) = (0.03f32, 5, 0.07f32, -9, 0.09f32, 2);
        let p = AddParams::new(s1, z1, s2, z2, so, zo, FusedActivation::None).unwrap();
        for a in (-128..=127).step_by(7) {
            for b in (-128..=127).step_by(5) {
                let real = f64::from(s1) * f64::from(a - z1) + f64::from(s2) * f64::from(b - z2);
                let want = (real / f64::from(so)).round() + f64::from(zo);
                let got = add_one(&p, a as i8, b as i8);
                assert!((f64::from(got) - want.clamp(-128.0, 127.0)).abs() <= 1.0, "{a} + {b}");
            }
        }
        let mut y = [0i8; 2];
        assert!(add(&p, &[1], &[1, 2], &mut y).is_err());
    }
}
