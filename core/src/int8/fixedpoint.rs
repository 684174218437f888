//! Fixed-point arithmetic of gemmlowp and TFLite, bit for bit.
//!
//! Sources, read for this port:
//! - gemmlowp `fixedpoint/fixedpoint.h` (the copy TensorFlow 2.21 ships):
//!   `SaturatingRoundingDoublingHighMul`, `RoundingDivideByPOT`, `SaturatingRoundingMultiplyByPOT`,
//!   `RoundingHalfSum`, `Rescale`, `exp_on_interval_between_negative_one_quarter_and_0_excl`,
//!   `exp_on_negative_values`, `one_over_one_plus_x_for_x_in_0_1`;
//! - TFLite `tensorflow/lite/kernels/internal/common.h` / `common.cc`:
//!   `MultiplyByQuantizedMultiplier` (both the default double-rounding build and the
//!   `TFLITE_SINGLE_ROUNDING` one), `MultiplyByQuantizedMultiplierSmallerThanOneExp`,
//!   `MultiplyByQuantizedMultiplierGreaterThanOne`, `GetReciprocal`.
//!
//! Where C++ has undefined behaviour (signed overflow of `x * (1 << shift)`, shifts of 32 or
//! more) these functions wrap or clamp instead of panicking; inside the ranges TFLite asserts
//! (`shift` in `-31..=30`) they give TFLite's results.
//!
//! ```
//! use tinytrain::int8::{multiply_by_quantized_multiplier, quantize_multiplier};
//! let (m, shift) = quantize_multiplier(0.25);
//! assert_eq!((m, shift), (1 << 30, -1));
//! assert_eq!(multiply_by_quantized_multiplier(100, m, shift), 25);
//! assert_eq!(multiply_by_quantized_multiplier(-6, m, shift), -2); // -1.5 rounds away from zero
//! ```

/// `(a * b * 2) >> 32` rounded to nearest, saturating
/// `i32::MIN * i32::MIN` to `i32::MAX`: ARM's `VQRDMULH`, gemmlowp's
/// `SaturatingRoundingDoublingHighMul`. Ties round up (towards +infinity): the nudge is
/// `2^30` for a non-negative product and `1 - 2^30` for a negative one, then C's truncating
/// division.
#[must_use]
pub const fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // C++ `/` truncates towards zero, as Rust's does.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// `x / 2^exponent` rounded to nearest, ties away from zero (gemmlowp's
/// `RoundingDivideByPOT`). `exponent` is clamped to `0..=31` (gemmlowp asserts that range).
#[must_use]
pub const fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    let e = if exponent < 0 {
        0
    } else if exponent > 31 {
        31
    } else {
        exponent
    };
    let mask = ((1i64 << e) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + if x < 0 { 1 } else { 0 };
    (x >> e) + if remainder > threshold { 1 } else { 0 }
}

/// `x * 2^exponent` saturated to `i32` for `exponent > 0`, [`rounding_divide_by_pot`] for
/// `exponent < 0` (gemmlowp's `SaturatingRoundingMultiplyByPOT`).
#[must_use]
pub const fn saturating_rounding_multiply_by_pot(x: i32, exponent: i32) -> i32 {
    if exponent == 0 {
        x
    } else if exponent < 0 {
        rounding_divide_by_pot(x, exponent.saturating_neg())
    } else if exponent >= 31 {
        if x > 0 {
            i32::MAX
        } else if x < 0 {
            i32::MIN
        } else {
            0
        }
    } else {
        let threshold = (1i32 << (31 - exponent)) - 1;
        if x > threshold {
            i32::MAX
        } else if x < -threshold {
            i32::MIN
        } else {
            x << exponent
        }
    }
}

/// `x * 2^shift` with C's wrap-around for the shifts TFLite uses (`x * (1 << left_shift)`).
const fn shl_wrapping(x: i32, left_shift: i32) -> i32 {
    if left_shift <= 0 {
        x
    } else if left_shift >= 32 {
        0
    } else {
        x.wrapping_mul(1i32.wrapping_shl(left_shift as u32))
    }
}

/// `x * multiplier * 2^(shift - 31)` as TFLite's default build computes it (double rounding):
/// `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^max(shift, 0), multiplier),
/// max(-shift, 0))`.
///
/// This is `MultiplyByQuantizedMultiplier(int32_t, int32_t, int)` of
/// `tensorflow/lite/kernels/internal/common.cc` without `TFLITE_SINGLE_ROUNDING`, which is how
/// TensorFlow's PyPI wheels (checked: 2.21) build the reference kernels of CONV_2D,
/// DEPTHWISE_CONV_2D and ADD. The two roundings differ from one exact rounding of
/// `x * multiplier / 2^(31 - shift)` by one in rare ties.
#[must_use]
pub const fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left_shift = if shift > 0 { shift } else { 0 };
    let right_shift = if shift > 0 { 0 } else { shift.saturating_neg() };
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shl_wrapping(x, left_shift), multiplier), right_shift)
}

/// [`multiply_by_quantized_multiplier`] in fewer steps, the same result for every input (the
/// default double-rounding build): for a non-negative multiplier (all that
/// [`quantize_multiplier`](super::quantize_multiplier) makes of a scale) and `shift` in TFLite's
/// `-31..=30`, `y = (x * 2^max(shift, 0) * multiplier + 2^30) >> 31` in 64 bits
/// (`SaturatingRoundingDoublingHighMul`: its nudge and truncating division are one floor; `y`
/// stays within `(i32::MIN, i32::MAX)`), then `RoundingDivideByPOT(y, e)` as
/// `(((y - [y < 0]) >> (e - 1)) + 1) >> 1` (ties away from zero in two shifts). Other arguments
/// take [`multiply_by_quantized_multiplier`] itself. About ten instructions on a Cortex-M4
/// instead of thirty.
#[must_use]
#[inline]
pub fn multiply_by_quantized_multiplier_fast(x: i32, multiplier: i32, shift: i32) -> i32 {
    multiply_by_quantized_multiplier_plus(x, multiplier, shift, 0)
}

/// [`multiply_by_quantized_multiplier_fast`]` + offset` (wrapping, as the kernels add the
/// output zero point). For `shift <= -2` and `|offset| < 2^24` the offset rides in the last
/// rounding: `(((y - [y < 0]) >> (e - 1)) + 1 + 2 * offset) >> 1`.
#[must_use]
#[inline]
pub fn multiply_by_quantized_multiplier_plus(x: i32, multiplier: i32, shift: i32, offset: i32) -> i32 {
    if multiplier < 0 || !(-31..=30).contains(&shift) {
        return multiply_by_quantized_multiplier(x, multiplier, shift).wrapping_add(offset);
    }
    let left = if shift > 0 { shift } else { 0 };
    let y = doubling_high(x.wrapping_shl(left.cast_unsigned()), multiplier);
    if shift >= 0 {
        return y.wrapping_add(offset);
    }
    // e >= 1; (y - [y < 0]) >> (e - 1) is within 2^30 for e >= 2.
    let e = -shift;
    let halved = (y + (y >> 31)) >> (e - 1);
    if e >= 2 && offset.unsigned_abs() < 1 << 24 {
        (halved + 1 + 2 * offset) >> 1
    } else {
        ((halved + 1) >> 1).wrapping_add(offset)
    }
}

/// `(a * multiplier + 2^30) >> 31` for a non-negative multiplier (never overflows then).
#[cfg(not(tinytrain_dsp))]
#[inline]
pub(crate) fn doubling_high(a: i32, multiplier: i32) -> i32 {
    ((a as i64 * multiplier as i64 + (1 << 30)) >> 31) as i32
}

/// `(a * multiplier + 2^30) >> 31`: one `SMLAL` onto 2^30 and a funnel of the two words.
#[cfg(tinytrain_dsp)]
#[inline]
#[allow(unsafe_code)]
pub(crate) fn doubling_high(a: i32, multiplier: i32) -> i32 {
    let y: i32;
    // SAFETY: register-only arithmetic.
    unsafe {
        core::arch::asm!(
            "mov {lo}, #0x40000000",
            "mov {hi}, #0",
            "smlal {lo}, {hi}, {a}, {m}",
            "lsr {lo}, {lo}, #31",
            "orr {hi}, {lo}, {hi}, lsl #1",
            a = in(reg) a,
            m = in(reg) multiplier,
            lo = out(reg) _,
            hi = out(reg) y,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    y
}

/// `x * multiplier * 2^(shift - 31)` with one rounding (half up):
/// `(x * multiplier + 2^(30 - shift)) >> (31 - shift)` in 64 bits. This is TFLite's
/// `MultiplyByQuantizedMultiplier` when built with `TFLITE_SINGLE_ROUNDING=1` (some TFLM and
/// CMSIS-NN builds). `shift` is clamped to `-31..=30` (TFLite asserts that range) and the
/// result saturates to `i32`.
#[must_use]
pub const fn multiply_by_quantized_multiplier_single_rounding(x: i32, multiplier: i32, shift: i32) -> i32 {
    let shift = if shift < -31 {
        -31
    } else if shift > 30 {
        30
    } else {
        shift
    };
    let total_shift = 31 - shift;
    let round = 1i64 << (total_shift - 1);
    let result = (x as i64 * multiplier as i64 + round) >> total_shift;
    if result > i32::MAX as i64 {
        i32::MAX
    } else if result < i32::MIN as i64 {
        i32::MIN
    } else {
        result as i32
    }
}

/// TFLite's `MultiplyByQuantizedMultiplierSmallerThanOneExp` (default build):
/// `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x, multiplier), -left_shift)`, for
/// `left_shift <= 0`. ADD uses it for its input and output rescaling.
#[must_use]
pub const fn multiply_by_quantized_multiplier_smaller_than_one_exp(x: i32, multiplier: i32, left_shift: i32) -> i32 {
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x, multiplier), left_shift.saturating_neg())
}

/// TFLite's `MultiplyByQuantizedMultiplierGreaterThanOne` (default build):
/// `SaturatingRoundingDoublingHighMul(x * 2^left_shift, multiplier)`. SOFTMAX uses it to scale
/// input differences by `beta`.
#[must_use]
pub const fn multiply_by_quantized_multiplier_greater_than_one(x: i32, multiplier: i32, left_shift: i32) -> i32 {
    saturating_rounding_doubling_high_mul(shl_wrapping(x, left_shift), multiplier)
}

/// gemmlowp's `RoundingHalfSum` for `i32`: `(a + b) / 2` rounded half away from zero.
const fn rounding_half_sum(a: i32, b: i32) -> i32 {
    let sum = a as i64 + b as i64;
    let sign = if sum >= 0 { 1 } else { -1 };
    i64::midpoint(sum, sign) as i32
}

/// `exp(x)` for `x` in `[-1/4, 0)`, Q0.31 in and out (gemmlowp's
/// `exp_on_interval_between_negative_one_quarter_and_0_excl`).
const fn exp_on_interval_between_negative_one_quarter_and_0_excl(a: i32) -> i32 {
    const CONSTANT_TERM: i32 = 1_895_147_668; // exp(-1/8)
    const CONSTANT_1_OVER_3: i32 = 715_827_883;
    // x = a + 1/8 (1/8 is 1 << 28 in Q0.31); gemmlowp's `+` does not saturate.
    let x = a.wrapping_add(1 << 28);
    let x2 = saturating_rounding_doubling_high_mul(x, x);
    let x3 = saturating_rounding_doubling_high_mul(x2, x);
    let x4 = saturating_rounding_doubling_high_mul(x2, x2);
    let x4_over_4 = rounding_divide_by_pot(x4, 2);
    let inner = saturating_rounding_doubling_high_mul(x4_over_4.wrapping_add(x3), CONSTANT_1_OVER_3).wrapping_add(x2);
    let x4_over_24_plus_x3_over_6_plus_x2_over_2 = rounding_divide_by_pot(inner, 1);
    CONSTANT_TERM.wrapping_add(saturating_rounding_doubling_high_mul(
        CONSTANT_TERM,
        x.wrapping_add(x4_over_24_plus_x3_over_6_plus_x2_over_2),
    ))
}

/// `exp(a)` for `a <= 0`: `a` in Q`INTEGER_BITS`.(31 - `INTEGER_BITS`), the result in Q0.31
/// (gemmlowp's `exp_on_negative_values<int32_t, INTEGER_BITS>`). SOFTMAX uses
/// `INTEGER_BITS = 5`. `INTEGER_BITS` must be in `0..=29` (checked at compile time).
#[must_use]
pub const fn exp_on_negative_values<const INTEGER_BITS: i32>(a: i32) -> i32 {
    // The barrel shifter: exp(-2^e) for e = -2..=4, applied where the remainder has that bit.
    const MULTIPLIERS: [(i32, i32); 7] = [
        (-2, 1_672_461_947), // exp(-1/4)
        (-1, 1_302_514_674), // exp(-1/2)
        (0, 790_015_084),    // exp(-1)
        (1, 290_630_308),    // exp(-2)
        (2, 39_332_535),     // exp(-4)
        (3, 720_401),        // exp(-8)
        (4, 242),            // exp(-16)
    ];
    const { assert!(INTEGER_BITS >= 0 && INTEGER_BITS <= 29, "exp_on_negative_values: INTEGER_BITS outside 0..=29") };
    let fractional_bits = 31 - INTEGER_BITS;
    let one_quarter = 1i32 << (fractional_bits - 2);
    let mask = one_quarter - 1;
    let a_mod_quarter_minus_one_quarter = (a & mask).wrapping_sub(one_quarter);
    // Rescale<0> from INTEGER_BITS integer bits: a saturating multiplication by 2^INTEGER_BITS.
    let mut result = exp_on_interval_between_negative_one_quarter_and_0_excl(saturating_rounding_multiply_by_pot(
        a_mod_quarter_minus_one_quarter,
        INTEGER_BITS,
    ));
    let remainder = a_mod_quarter_minus_one_quarter.wrapping_sub(a);
    // The barrel shifter, applied where the remainder has bit `fractional_bits + e`.
    let mut i = 0;
    while i < MULTIPLIERS.len() {
        let (exponent, multiplier) = MULTIPLIERS[i];
        if INTEGER_BITS > exponent {
            let shift_amount = fractional_bits + exponent;
            if remainder & (1i32 << shift_amount) != 0 {
                result = saturating_rounding_doubling_high_mul(result, multiplier);
            }
        }
        i += 1;
    }
    if INTEGER_BITS > 5 {
        let clamp_bits = 36 - INTEGER_BITS;
        if a < -(1i32 << clamp_bits) {
            result = 0;
        }
    }
    if a == 0 { i32::MAX } else { result }
}

/// `1 / (1 + x)` for `x` in `[0, 1)`, Q0.31 in and out, by three Newton-Raphson steps (gemmlowp's
/// `one_over_one_plus_x_for_x_in_0_1`).
#[must_use]
pub const fn one_over_one_plus_x_for_x_in_0_1(a: i32) -> i32 {
    const CONSTANT_48_OVER_17: i32 = 1_515_870_810; // Q2.29
    const CONSTANT_NEG_32_OVER_17: i32 = -1_010_580_540; // Q2.29
    const ONE_Q2_29: i32 = 1 << 29;
    let half_denominator = rounding_half_sum(a, i32::MAX);
    let mut x = CONSTANT_48_OVER_17
        .wrapping_add(saturating_rounding_doubling_high_mul(half_denominator, CONSTANT_NEG_32_OVER_17));
    let mut i = 0;
    while i < 3 {
        let half_denominator_times_x = saturating_rounding_doubling_high_mul(half_denominator, x);
        let one_minus_half_denominator_times_x = ONE_Q2_29.wrapping_sub(half_denominator_times_x);
        // Q2.29 * Q2.29 is Q4.27; Rescale<2> multiplies by 4, saturating.
        let product = saturating_rounding_doubling_high_mul(x, one_minus_half_denominator_times_x);
        x = x.wrapping_add(saturating_rounding_multiply_by_pot(product, 2));
        i += 1;
    }
    // ExactMulByPot<-1> (Q1.30, same bits) then Rescale<0>: a saturating multiplication by 2.
    saturating_rounding_multiply_by_pot(x, 1)
}

/// TFLite's `GetReciprocal`: for `x > 0` in Q`x_integer_digits`, returns `(scale,
/// num_bits_over_unit)` with `scale` in Q0.31 such that `1 / x ≈ scale * 2^-num_bits_over_unit`.
#[must_use]
pub const fn get_reciprocal(x: i32, x_integer_digits: i32) -> (i32, i32) {
    let headroom_plus_one = x.cast_unsigned().leading_zeros().cast_signed();
    let num_bits_over_unit = x_integer_digits.saturating_sub(headroom_plus_one);
    let shifted = if headroom_plus_one >= 32 { 0 } else { x.cast_unsigned() << headroom_plus_one };
    let shifted_sum_minus_one = shifted.wrapping_sub(1 << 31).cast_signed();
    (one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one), num_bits_over_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_high_mul_matches_vqrdmulh() {
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
        assert_eq!(saturating_rounding_doubling_high_mul(1 << 30, 1 << 30), 1 << 29);
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MAX, i32::MAX), i32::MAX - 1);
        // 3 * 2^30 / 2^31 = 1.5: ties go up, for both signs.
        assert_eq!(saturating_rounding_doubling_high_mul(3, 1 << 30), 2);
        assert_eq!(saturating_rounding_doubling_high_mul(-3, 1 << 30), -1);
        assert_eq!(saturating_rounding_doubling_high_mul(1, 1 << 30), 1); // 0.5 -> 1
        assert_eq!(saturating_rounding_doubling_high_mul(-1, 1 << 30), 0); // -0.5 -> 0
        assert_eq!(saturating_rounding_doubling_high_mul(-5, 1 << 30), -2); // -2.5 -> -2
    }

    #[test]
    fn rounding_divide_breaks_ties_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(-4, 1), -2);
        assert_eq!(rounding_divide_by_pot(7, 2), 2);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2); // -1.5
        assert_eq!(rounding_divide_by_pot(-7, 2), -2); // -1.75
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        assert_eq!(rounding_divide_by_pot(12345, 0), 12345);
    }

    #[test]
    fn single_and_double_rounding_differ_on_negative_ties() {
        // 2^30 * 2^(-2 - 31) = 1/8: -4 / 8 = -0.5. Single rounding: ties up, 0. Double: the
        // high multiply gives -2 exactly, then RoundingDivideByPOT(-2, 2) ties away, -1.
        assert_eq!(multiply_by_quantized_multiplier(-4, 1 << 30, -2), -1);
        assert_eq!(multiply_by_quantized_multiplier_single_rounding(-4, 1 << 30, -2), 0);
        assert_eq!(multiply_by_quantized_multiplier(4, 1 << 30, -2), 1);
        assert_eq!(multiply_by_quantized_multiplier_single_rounding(4, 1 << 30, -2), 1);
        // -1.5 at shift 0 is rounded by the high multiply alone: up, -1, in both.
        assert_eq!(multiply_by_quantized_multiplier(-3, 1 << 30, 0), -1);
        assert_eq!(multiply_by_quantized_multiplier_single_rounding(-3, 1 << 30, 0), -1);
    }

    /// Exact reference: round(x * m / 2^(31 - shift)) half up, computed in i128.
    fn exact(x: i32, m: i32, shift: i32) -> i128 {
        let total = 31 - shift;
        let p = i128::from(x) * i128::from(m);
        (p + (1i128 << (total - 1))) >> total
    }

    #[test]
    fn quantized_multiplier_is_within_one_of_exact_rounding() {
        // Property: for multipliers in [2^30, 2^31) and shifts in TFLite's usual range the
        // double-rounded result differs from one exact rounding by at most 1, and the
        // single-rounded result equals it (when no saturation happens).
        let mut rng = crate::rng::Rng::new(11);
        let mut double_differs = 0;
        for _ in 0..200_000 {
            let x = rng.next_u32().cast_signed() >> (rng.next_u32() % 24);
            let m = (1 << 30) + (rng.next_u32() >> 2).cast_signed();
            let shift = (rng.next_u32() % 32).cast_signed() - 31;
            let e = exact(x, m, shift);
            let single = multiply_by_quantized_multiplier_single_rounding(x, m, shift);
            assert_eq!(i128::from(single), e, "x={x} m={m} shift={shift}");
            let double = multiply_by_quantized_multiplier(x, m, shift);
            let d = (i128::from(double) - e).abs();
            assert!(d <= 1, "x={x} m={m} shift={shift}: {double} vs {e}");
            double_differs += i32::from(d == 1);
        }
        // The double rounding does differ sometimes (ties of the first rounding).
        assert!(double_differs > 0);
    }

    #[test]
    fn fast_form_equals_the_reference() {
        let edges = [i32::MIN, i32::MIN + 1, -(1 << 30), -3, -1, 0, 1, 3, 1 << 30, i32::MAX - 1, i32::MAX];
        for &x in &edges {
            for &m in &edges {
                for s in -40..=40 {
                    assert_eq!(
                        multiply_by_quantized_multiplier_fast(x, m, s),
                        multiply_by_quantized_multiplier(x, m, s),
                        "x={x} m={m} shift={s}"
                    );
                    for offset in [-128, 5, 127, (1 << 24) - 1, 1 << 24, i32::MIN, i32::MAX] {
                        assert_eq!(
                            multiply_by_quantized_multiplier_plus(x, m, s, offset),
                            multiply_by_quantized_multiplier(x, m, s).wrapping_add(offset),
                            "x={x} m={m} shift={s} offset={offset}"
                        );
                    }
                }
            }
        }
        let mut rng = crate::rng::Rng::new(13);
        for _ in 0..500_000 {
            let x = rng.next_u32().cast_signed() >> (rng.next_u32() % 32);
            let m = match rng.next_u32() % 4 {
                0 => rng.next_u32().cast_signed(),
                _ => (1 << 30) + (rng.next_u32() >> 2).cast_signed(),
            };
            let s = (rng.next_u32() % 40).cast_signed() - 33;
            let offset = (rng.next_u32() % 256).cast_signed() - 128;
            assert_eq!(
                multiply_by_quantized_multiplier_fast(x, m, s),
                multiply_by_quantized_multiplier(x, m, s),
                "x={x} m={m} shift={s}"
            );
            assert_eq!(
                multiply_by_quantized_multiplier_plus(x, m, s, offset),
                multiply_by_quantized_multiplier(x, m, s).wrapping_add(offset),
                "x={x} m={m} shift={s} offset={offset}"
            );
        }
    }

    #[test]
    fn extreme_arguments_do_not_panic() {
        let values = [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX - 1, i32::MAX];
        for &x in &values {
            for &m in &values {
                for &s in &values {
                    let _ = multiply_by_quantized_multiplier(x, m, s);
                    let _ = multiply_by_quantized_multiplier_single_rounding(x, m, s);
                    let _ = multiply_by_quantized_multiplier_smaller_than_one_exp(x, m, s);
                    let _ = multiply_by_quantized_multiplier_greater_than_one(x, m, s);
                    let _ = rounding_divide_by_pot(x, s);
                    let _ = saturating_rounding_multiply_by_pot(x, s);
                    let _ = get_reciprocal(x, s);
                }
            }
            let _ = exp_on_negative_values::<5>(x);
            let _ = exp_on_negative_values::<12>(x);
            let _ = one_over_one_plus_x_for_x_in_0_1(x);
        }
    }

    #[test]
    fn exp_and_reciprocal_are_accurate() {
        for i in 0..=1000 {
            let xf = -16.0 * f64::from(i) / 1000.0;
            let raw = (xf * f64::from(1 << 26)).round() as i32;
            let e = f64::from(exp_on_negative_values::<5>(raw)) / 2f64.powi(31);
            assert!((e - libm::exp(xf)).abs() < 2e-7, "exp({xf}) = {e}");
        }
        for i in 0..1000 {
            let xf = f64::from(i) / 1000.0;
            let raw = (xf * 2f64.powi(31)) as i32;
            let r = f64::from(one_over_one_plus_x_for_x_in_0_1(raw)) / 2f64.powi(31);
            assert!((r - 1.0 / (1.0 + xf)).abs() < 2e-8, "1/(1+{xf}) = {r}");
        }
        // 1/3 in Q12.19: 3.0 is 3 << 19.
        let (scale, bits) = get_reciprocal(3 << 19, 12);
        let r = f64::from(scale) / 2f64.powi(31) * 2f64.powi(-bits);
        assert!((r - 1.0 / 3.0).abs() < 1e-8, "{r}");
    }
}
