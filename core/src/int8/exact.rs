//! TensorFlow's float requantisation of FULLY_CONNECTED, computed with one 32 x 32 multiply.
//!
//! TensorFlow 2.20+'s reference FULLY_CONNECTED scales its accumulator with
//! `round((double)acc * scale)` ([`Requant::FloatPerTensor`](super::Requant::FloatPerTensor)).
//! A Cortex-M4 has no double-precision unit: that is a software multiply, a software `round`
//! and a conversion, well over a hundred instructions per output. [`ExactScale`] gives the
//! same integers with `(acc * multiplier + 2^(31 + shift) - [acc < 0]) >> (32 + shift)`: the
//! rounding of `round` (ties away from zero) on the exact 64-bit product. On a Cortex-M4 that
//! is six instructions: an `SMLAL` of the product onto `-[acc < 0]` gives the high word `h`,
//! then `((h >> (shift - 1)) + 1) >> 1`.
//!
//! The integer rule is not the float rule for every accumulator: a double rounds the product
//! to 53 bits before `round` sees it. But the output is clamped to the activation range, so
//! only the scaled values from `lo = activation_min - output_zero_point` to `hi =
//! activation_max - output_zero_point` matter, and both rules are monotone in the accumulator: the clamped
//! outputs agree for **every** `i32` accumulator as soon as both rules cross each level `k`
//! in `lo + 1..=hi` at the same accumulator. [`ExactScale::for_float_rule`] finds those
//! crossings of the float rule by bisection (at most 256 levels, 32 steps each), derives the
//! interval of multipliers whose integer rule crosses at the same places, picks the one
//! nearest `scale * 2^(32 + shift)`, and checks the crossings again. A scale for which no
//! 31-bit multiplier exists is refused (not seen on any model so far; the caller keeps the
//! float rule).
//!
//! ```
//! use tinytrain::int8::{ExactScale, Requant};
//! let scale = 0.004_118_7; // input_scale * weight_scale / output_scale
//! let (zp, min, max) = (-10, -128, 127);
//! let exact = ExactScale::for_float_rule(scale, min - zp, max - zp).unwrap();
//! for acc in [-40_000, -123, 0, 7_777, 31_500] {
//!     let clamp = |v: i32| (v + zp).clamp(min, max);
//!     assert_eq!(clamp(exact.apply(acc)), clamp(Requant::FloatPerTensor(scale).apply(acc, 0)));
//! }
//! ```

use super::requant::float_requant;
use crate::Error;

/// `round(acc * scale)` as TFLite's float requantisation computes it, in integer arithmetic:
/// `(acc * multiplier + 2^(31 + shift) - [acc < 0]) >> (32 + shift)`, `shift` in `1..=31`.
/// Made by [`ExactScale::for_float_rule`], which proves it equal to the float rule on every
/// accumulator once clamped to the activation range it was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExactScale {
    /// The scale times `2^(32 + shift)`, rounded into the interval that keeps the crossings.
    pub multiplier: i32,
    /// Right shift of the product's high word, `1..=31` (0 acts as 32, only the low five bits
    /// of `shift - 1` are used).
    pub shift: u32,
}

impl ExactScale {
    /// `(acc * multiplier + 2^(31 + shift) - [acc < 0]) >> (32 + shift)`, as
    /// `((h >> (shift - 1)) + 1) >> 1` with `h` the high word of `acc * multiplier - [acc <
    /// 0]` (the same, by `floor((floor(x / 2^k) + c) / 2^j) = floor((x + c 2^k) / 2^(k + j))`).
    #[must_use]
    #[inline]
    pub fn apply(self, acc: i32) -> i32 {
        // |acc * multiplier| <= 2^62, so the high word is within 2^30 and nothing overflows.
        ((high_word(acc, self.multiplier) >> (self.shift.wrapping_sub(1) & 31)) + 1) >> 1
    }

    /// `apply(acc) + offset` (wrapping), as `((h >> (shift - 1)) + 1 + 2 * offset) >> 1`: the
    /// offset rides in the rounding constant (exact: `2 * offset` is even). For offsets beyond
    /// `±2^24` it is the plain sum.
    #[must_use]
    #[inline]
    pub fn apply_plus(self, acc: i32, offset: i32) -> i32 {
        if offset.unsigned_abs() < 1 << 24 {
            ((high_word(acc, self.multiplier) >> (self.shift.wrapping_sub(1) & 31)) + 1 + 2 * offset) >> 1
        } else {
            self.apply(acc).wrapping_add(offset)
        }
    }

    /// The integer form of `round((double)acc * scale)` for outputs clamped to `lo..=hi`
    /// (`activation_min - output_zero_point ..= activation_max - output_zero_point`).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `scale` is not in `(0, 0.25)` (a multiplier of 2^31 or more
    /// would be needed), `lo > hi`, or no 31-bit multiplier reproduces the float rule's
    /// crossings.
    pub fn for_float_rule(scale: f64, lo: i32, hi: i32) -> Result<Self, Error> {
        if !(scale > 0.0 && scale < 0.25) {
            return Err(Error::InvalidConfig("int8: exact requantisation needs a scale in (0, 0.25)"));
        }
        if lo > hi {
            return Err(Error::InvalidConfig("int8: empty output range"));
        }
        // Levels beyond one step outside the int8 range change nothing after the clamp.
        let (lo, hi) = (lo.max(-300), hi.min(300));
        // scale = q * 2^e with q in [0.5, 1): multiplier q * 2^31 wants 32 + shift = 31 - e.
        let (_, e) = libm::frexp(scale);
        let natural = 31 - e;
        let mut total = natural.min(63);
        while total >= 33 {
            if let Some(multiplier) = multiplier_interval(scale, lo, hi, total) {
                let found = ExactScale { multiplier, shift: (total - 32).cast_unsigned() };
                if (lo + 1..=hi).all(|k| crossing(|a| found.apply(a), k) == crossing(|a| float_requant(a, scale), k)) {
                    return Ok(found);
                }
            }
            total -= 1;
        }
        Err(Error::InvalidConfig("int8: no 31-bit multiplier reproduces the float requantisation"))
    }
}

/// The high word of `acc * multiplier - [acc < 0]`: one `SMLAL` onto the sign on a Cortex-M4.
#[cfg(not(tinytrain_dsp))]
#[inline]
fn high_word(acc: i32, multiplier: i32) -> i32 {
    (((acc as i64) * (multiplier as i64) + (acc >> 31) as i64) >> 32) as i32
}

/// The high word of `acc * multiplier - [acc < 0]`: one `SMLAL` onto the sign (LLVM makes
/// five instructions of the portable form).
#[cfg(tinytrain_dsp)]
#[inline]
#[allow(unsafe_code)]
fn high_word(acc: i32, multiplier: i32) -> i32 {
    let high: i32;
    // SAFETY: register-only arithmetic.
    unsafe {
        core::arch::asm!(
            "asr {lo}, {acc}, #31",
            "mov {hi}, {lo}",
            "smlal {lo}, {hi}, {acc}, {m}",
            acc = in(reg) acc,
            m = in(reg) multiplier,
            lo = out(reg) _,
            hi = out(reg) high,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    high
}

/// The smallest accumulator where the monotone `f` reaches `level`, if any.
fn crossing(f: impl Fn(i32) -> i32, level: i32) -> Option<i32> {
    if f(i32::MAX) < level {
        return None;
    }
    let (mut below, mut at) = (i64::from(i32::MIN) - 1, i64::from(i32::MAX));
    // Invariant: f(at) >= level, and below is -infinity or f(below) < level.
    while at - below > 1 {
        let mid = below + (at - below) / 2;
        if f(mid as i32) >= level {
            at = mid;
        } else {
            below = mid;
        }
    }
    Some(at as i32)
}

/// `floor(n / d)` for `d > 0`.
fn floor_div(n: i128, d: i128) -> i128 {
    n.div_euclid(d)
}

/// `ceil(n / d)` for `d > 0`.
fn ceil_div(n: i128, d: i128) -> i128 {
    -(-n).div_euclid(d)
}

/// The multiplier nearest `scale * 2^total` among those whose rule `(a * m + 2^(total - 1) -
/// [a < 0]) >> total` crosses every level in `lo + 1..=hi` where the float rule does, if the
/// interval of such multipliers holds a positive 31-bit one.
fn multiplier_interval(scale: f64, lo: i32, hi: i32, total: i32) -> Option<i32> {
    let (mut m_lo, mut m_hi) = (1i128, i128::from(i32::MAX));
    let pow = 1i128 << total;
    let round = |a: i128| (pow >> 1) - i128::from(a < 0);
    // g(a) >= k  <=>  a * m >= k * 2^total - round(a).
    let at_least = |a: i128, k: i128, m_lo: &mut i128, m_hi: &mut i128| {
        let r = k * pow - round(a);
        match a.signum() {
            1 => *m_lo = (*m_lo).max(ceil_div(r, a)),
            -1 => *m_hi = (*m_hi).min(floor_div(-r, -a)),
            _ if r > 0 => *m_lo = i128::MAX,
            _ => {}
        }
    };
    // g(a) < k  <=>  a * m <= k * 2^total - round(a) - 1.
    let below = |a: i128, k: i128, m_lo: &mut i128, m_hi: &mut i128| {
        let r = k * pow - round(a) - 1;
        match a.signum() {
            1 => *m_hi = (*m_hi).min(floor_div(r, a)),
            -1 => *m_lo = (*m_lo).max(ceil_div(-r, -a)),
            _ if r < 0 => *m_lo = i128::MAX,
            _ => {}
        }
    };
    for k in lo + 1..=hi {
        let level = i128::from(k);
        match crossing(|a| float_requant(a, scale), k) {
            Some(t) => {
                at_least(i128::from(t), level, &mut m_lo, &mut m_hi);
                if t > i32::MIN {
                    below(i128::from(t) - 1, level, &mut m_lo, &mut m_hi);
                }
            }
            None => below(i128::from(i32::MAX), level, &mut m_lo, &mut m_hi),
        }
        if m_lo > m_hi {
            return None;
        }
    }
    let ideal = libm::round(scale * libm::ldexp(1.0, total)) as i128;
    i32::try_from(ideal.clamp(m_lo, m_hi)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Calls `check` on accumulators near every crossing of levels `lo - 2..=hi + 2`, on the
    /// extremes, and on 2,000 random ones.
    fn probes(scale: f64, lo: i32, hi: i32, rng: &mut Rng, mut check: impl FnMut(i32)) {
        for acc in [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX - 1, i32::MAX] {
            check(acc);
        }
        for k in lo - 2..=hi + 2 {
            if let Some(t) = crossing(|a| float_requant(a, scale), k) {
                for d in -2..=2 {
                    check(t.saturating_add(d));
                }
            }
        }
        for _ in 0..2000 {
            check(rng.next_u32().cast_signed() >> (rng.next_u32() % 31));
        }
    }

    #[test]
    fn equals_the_float_rule_after_the_clamp() {
        let mut rng = Rng::new(41);
        let mut tried = 0;
        for i in 0..400 {
            // Scales from 2^-30 to 0.25, some of them powers of two (exact ties).
            let scale = if i % 10 == 0 {
                libm::ldexp(1.0, -3 - (i / 10) % 29)
            } else {
                f64::from(rng.uniform(0.5, 1.0)) * libm::ldexp(1.0, -3 - rng.below(27).cast_signed())
            };
            let zp = rng.below(256).cast_signed() - 128;
            let (min, max) = if i % 3 == 0 { (zp.max(-128), 127) } else { (-128, 127) };
            let (lo, hi) = (min - zp, max - zp);
            let exact = ExactScale::for_float_rule(scale, lo, hi).unwrap();
            probes(scale, lo, hi, &mut rng.fork(i as u64), |acc| {
                assert_eq!(
                    exact.apply(acc).clamp(lo, hi),
                    float_requant(acc, scale).clamp(lo, hi),
                    "scale {scale:e} range {lo}..={hi} acc {acc}: {exact:?}"
                );
            });
            tried += 1;
        }
        assert_eq!(tried, 400);
    }

    #[test]
    fn near_tie_product_is_rounded_as_the_double_does() {
        // 1/6 as a double is a little below 1/6, so 3 * scale is a little below 1/2; the
        // double product rounds onto 0.5 and `round` takes it to 1. One exact rounding of the
        // product would give 0: the multiplier has to follow the double.
        let scale = 1.0 / 6.0;
        assert_eq!(3.0 * scale, 0.5);
        let exact = ExactScale::for_float_rule(scale, -300, 300).unwrap();
        assert_eq!((exact.apply(3), exact.apply(-3), exact.apply(9)), (1, -1, 2));
        for acc in -2_000..2_000 {
            assert_eq!(exact.apply(acc).clamp(-300, 300), float_requant(acc, scale).clamp(-300, 300), "acc {acc}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_prove() {
        assert!(ExactScale::for_float_rule(0.25, -128, 127).is_err());
        assert!(ExactScale::for_float_rule(0.0, -128, 127).is_err());
        assert!(ExactScale::for_float_rule(f64::NAN, -128, 127).is_err());
        assert!(ExactScale::for_float_rule(0.01, 5, 4).is_err());
        // Hand-made values never panic.
        for m in [i32::MIN, -1, 0, 1, i32::MAX] {
            for shift in [0, 1, 2, 30, 31, 32, u32::MAX] {
                for acc in [i32::MIN, -1, 0, 1, i32::MAX] {
                    let _ = ExactScale { multiplier: m, shift }.apply(acc);
                }
            }
        }
    }
}
