//! The one place that calls `libm` (or `micromath` behind the `fast-math` feature).
//!
//! Every transcendental goes through here so that the host and the Cortex-M compute the same
//! bits: `libm` is a portable software implementation, not the platform's C library.
//!
//! ```
//! assert_eq!(tinytrain::math::exp(0.0), 1.0);
//! ```

/// e^x.
#[inline]
#[must_use]
pub fn exp(x: f32) -> f32 {
    #[cfg(feature = "fast-math")]
    {
        micromath::F32Ext::exp(x)
    }
    #[cfg(not(feature = "fast-math"))]
    {
        libm::expf(x)
    }
}

/// [`exp`] of every element in place: the same bits as [`exp`] one at a time, in a form the
/// compiler vectorises.
///
/// `libm`'s `expf` (FreeBSD's) branches on the range of `x` to choose its reduction `k`, and
/// scales by `2^k` with `scalbnf`. Every finite, non-overflowing branch is the one formula
/// below with a different `k` (`k = 0` gives `hi = x`, `lo = 0` and a scale of exactly 1), and
/// `scalbnf` is one multiplication by `2^k`, or two (`2^-102`, then `2^(k+102)`) below
/// `k = -126` (`2^127`, then 2, at `k = 128`); all of it correctly rounded `f32` arithmetic in `libm`'s order. Each lane
/// computes every case and selects `libm`'s, without a branch. (A Cortex-M calls `libm`.)
#[inline]
pub fn exp_in_place(x: &mut [f32]) {
    // On a Cortex-M (no vectors) libm's branches cost less than computing every case.
    #[cfg(any(feature = "fast-math", target_arch = "arm"))]
    x.iter_mut().for_each(|v| *v = exp(*v));
    #[cfg(not(any(feature = "fast-math", target_arch = "arm")))]
    for chunk in x.chunks_mut(EXP_BLOCK) {
        // A block of fixed length: vectors only, no scalar remainder (the unused lanes
        // compute exp(0)).
        let mut block = [0.0f32; EXP_BLOCK];
        block[..chunk.len()].copy_from_slice(chunk);
        block.iter_mut().for_each(|v| *v = expf_lane(*v));
        chunk.copy_from_slice(&block[..chunk.len()]);
    }
}

/// Lanes [`exp_in_place`] computes at a time.
#[cfg(not(any(feature = "fast-math", target_arch = "arm")))]
const EXP_BLOCK: usize = 16;

/// `libm::expf(x)` without a branch (see [`exp_in_place`]).
#[cfg(not(any(feature = "fast-math", target_arch = "arm")))]
#[inline(always)]
#[allow(clippy::inline_always)] // compiled inside the vector loop of its callers
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_possible_wrap)]
fn expf_lane(x: f32) -> f32 {
    // libm's constants (FreeBSD e_expf.c).
    const LN2_HI: f32 = 6.931_457_5e-1; // 0x3f317200
    const LN2_LO: f32 = 1.428_606_8e-6; // 0x35bfbe8e
    const INV_LN2: f32 = 1.442_695_1; // 0x3fb8aa3b
    const P1: f32 = 1.666_662_5e-1; // 0x3e2aaa8f
    const P2: f32 = -2.766_733_3e-3; // 0xbb355215
    let bits = x.to_bits();
    let hx = bits & 0x7fff_ffff;
    let negative = bits >> 31 == 1;
    // The reduction k: round(x / ln 2) above 1.5 ln 2, +-1 above 0.5 ln 2, else 0. Saturated
    // (and unused) for the magnitudes that overflow, underflow to 0 or are NaN.
    let k_far = (INV_LN2 * x + if negative { -0.5 } else { 0.5 }) as i32;
    let k_near = if negative { -1 } else { 1 };
    let k = if hx > 0x3f85_1592 {
        k_far.clamp(-150, 128)
    } else if hx > 0x3eb1_7218 {
        k_near
    } else {
        0
    };
    let kf = k as f32;
    let hi = x - kf * LN2_HI;
    let lo = kf * LN2_LO;
    let r = hi - lo;
    let rr = r * r;
    let c = r - rr * (P1 + rr * P2);
    let y = 1.0 + (r * c / (2.0 - c) - lo + hi);
    // scalbnf(y, k): 2^k in one factor for -126 <= k <= 127, else 2^-102 or 2^127 first.
    let pow2 = |e: i32| f32::from_bits(((127 + e) as u32) << 23);
    let scaled = if k < -126 {
        (y * pow2(-102)) * pow2(k + 102)
    } else if k > 127 {
        (y * pow2(127)) * pow2(k - 127)
    } else {
        y * pow2(k)
    };
    if hx > 0x7f80_0000 {
        x // NaN
    } else if !negative && hx >= 0x42b1_7218 {
        x * pow2(127) // overflow: infinity
    } else if negative && hx >= 0x42cf_f1b5 {
        0.0 // underflow
    } else if hx > 0x3900_0000 {
        scaled
    } else {
        // |x| <= 2^-14.
        1.0 + x
    }
}

/// Natural logarithm.
#[inline]
#[must_use]
pub fn ln(x: f32) -> f32 {
    #[cfg(feature = "fast-math")]
    {
        micromath::F32Ext::ln(x)
    }
    #[cfg(not(feature = "fast-math"))]
    {
        libm::logf(x)
    }
}

/// ln(1 + x), accurate for small x.
#[inline]
#[must_use]
pub fn ln_1p(x: f32) -> f32 {
    libm::log1pf(x)
}

/// Square root. IEEE 754 square root is correctly rounded, so every path below gives the
/// same bits: the hardware instruction on a Cortex-M with FPU, the standard library (which
/// vectorises) with the `std` feature, `libm` otherwise.
#[inline]
#[must_use]
pub fn sqrt(x: f32) -> f32 {
    #[cfg(feature = "std")]
    {
        x.sqrt()
    }
    #[cfg(all(not(feature = "std"), target_arch = "arm", target_abi = "eabihf"))]
    {
        vsqrt(x)
    }
    #[cfg(all(not(feature = "std"), not(all(target_arch = "arm", target_abi = "eabihf"))))]
    {
        libm::sqrtf(x)
    }
}

/// The FPU's `vsqrt.f32`; `libm` has no ARM path and its software square root costs about a
/// hundred instructions, which would dominate an Adam step on a Cortex-M4F.
#[cfg(all(not(feature = "std"), target_arch = "arm", target_abi = "eabihf"))]
#[inline]
#[allow(unsafe_code)]
fn vsqrt(x: f32) -> f32 {
    let bits: u32;
    // SAFETY: the eabihf targets always have a VFP unit with `vsqrt.f32`. The value travels in
    // core registers and `s0` is declared clobbered, so no register the compiler relies on
    // changes; no memory, stack or flags are touched. (Stable Rust does not expose the `vfp2`
    // feature that a typed `s0` operand needs, but a clobber of `s0` is accepted.)
    unsafe {
        core::arch::asm!(
            "vmov s0, {x}",
            "vsqrt.f32 s0, s0",
            "vmov {r}, s0",
            x = in(reg) x.to_bits(),
            r = lateout(reg) bits,
            out("s0") _,
            options(pure, nomem, nostack),
        );
    }
    f32::from_bits(bits)
}

/// Hyperbolic tangent (`micromath` has none, so always `libm`).
#[inline]
#[must_use]
pub fn tanh(x: f32) -> f32 {
    libm::tanhf(x)
}

/// x^y.
#[inline]
#[must_use]
pub fn powf(x: f32, y: f32) -> f32 {
    libm::powf(x, y)
}

/// x^n for an integer power, by repeated squaring (exact order, same on every target).
#[inline]
#[must_use]
pub fn powi(mut x: f32, mut n: u32) -> f32 {
    let mut r = 1.0f32;
    while n > 0 {
        if n & 1 == 1 {
            r *= x;
        }
        x *= x;
        n >>= 1;
    }
    r
}

/// Adam's bias correction `1 − xⁿ`: the bits of `1.0 - powi(x, n)` for every `x`, faster.
///
/// Once the running square of `x` is below 2⁻³⁰ in magnitude and a bit of `n` is still to
/// come, `|xⁿ|` ends at most that small (every later factor is smaller still, the product so
/// far at most 1), and `1 − r` rounds to exactly `1.0` for every `|r| < 2⁻²⁵`: the loop stops there instead of squaring on into the subnormal range
/// (`0.999` reaches it after 17 squarings, and x86 computes each such product in slow
/// microcode). The factor of each step is chosen without a branch on the bits of `n`.
#[inline]
#[must_use]
pub fn one_minus_powi(mut x: f32, mut n: u32) -> f32 {
    const SMALL: f32 = 1.0 / (1u64 << 30) as f32;
    let mut r = 1.0f32;
    while n > 0 {
        if x.abs() < SMALL {
            return 1.0;
        }
        r *= if n & 1 == 1 { x } else { 1.0 };
        x *= x;
        n >>= 1;
    }
    1.0 - r
}

/// Floor.
#[inline]
#[must_use]
pub fn floor(x: f32) -> f32 {
    libm::floorf(x)
}

/// Magnitudes below which [`flush_tiny`] gives `+0.0`: 2^-100, about 7.9e-31.
pub const TINY: f32 = 7.888_609e-31;

/// `x`, or `+0.0` when `|x|` is below [`TINY`] (2^-100).
///
/// The loss gradients pass through this. A classifier that has learned its training set puts
/// probabilities of 1e-38 and less on the wrong classes; their gradients, and their products
/// with the weights and inputs on the way back, are subnormal, which x86 computes through slow
/// microcode assists (`digits-mlp` at batch 1 slowed from about 370,000 to 255,000 samples/s
/// after 200,000 steps, when two thirds of the steps held one). Flushing at 2^-100, not at
/// [`f32::MIN_POSITIVE`], leaves a margin of 2^26 for the products of backpropagation. The
/// parameters such a gradient would move change by less than 2^-100 times the learning rate:
/// nothing a float next to them can hold. On the bits, as [`flush_subnormal`]: the same
/// result on every target.
///
/// ```
/// use tinytrain::math::{TINY, flush_tiny};
/// assert_eq!(flush_tiny(1e-31).to_bits(), 0);
/// assert_eq!(flush_tiny(-1e-40).to_bits(), 0);
/// assert_eq!(flush_tiny(TINY), TINY);
/// assert_eq!(flush_tiny(-1e-30), -1e-30);
/// ```
#[inline]
#[must_use]
pub fn flush_tiny(x: f32) -> f32 {
    // Biased exponent below 127 - 100 = 27.
    let bits = x.to_bits();
    f32::from_bits(if bits & 0x7f80_0000 < 27 << 23 { 0 } else { bits })
}

/// `x`, or `+0.0` when `|x|` is below [`f32::MIN_POSITIVE`] (a subnormal or `-0.0`).
///
/// The optimizers pass their state through this after every update: a moment whose gradient
/// has gone to zero decays geometrically into the subnormal range, where x86 computes through
/// slow microcode assists (training `digits-mlp` at batch 1 became up to 14 times slower).
/// Doing it in the arithmetic, not with the FPU's flush-to-zero mode (MXCSR, FPSCR), keeps the
/// host and the Cortex-M bit-identical. Normal values, infinities and NaN pass through
/// unchanged; the result is never `-0.0`. A mask, a compare and a select on the bits: it
/// vectorises on the host, and costs three instructions on a Cortex-M4 once the value is in a
/// core register.
///
/// ```
/// use tinytrain::math::flush_subnormal;
/// assert_eq!(flush_subnormal(1e-40).to_bits(), 0);
/// assert_eq!(flush_subnormal(-1e-40).to_bits(), 0);
/// assert_eq!(flush_subnormal(-0.0).to_bits(), 0);
/// assert_eq!(flush_subnormal(f32::MIN_POSITIVE), f32::MIN_POSITIVE);
/// assert_eq!(flush_subnormal(-2.5), -2.5);
/// ```
#[inline]
#[must_use]
pub fn flush_subnormal(x: f32) -> f32 {
    // Exponent field zero: subnormal or zero. On the bits, not with a float compare: on a
    // Cortex-M4 a float compare needs `vabs`, `vcmp` and `vmrs` before the select, and the
    // square root of `v` moves its bits through a core register anyway.
    let bits = x.to_bits();
    f32::from_bits(if bits & 0x7f80_0000 == 0 { 0 } else { bits })
}

/// Natural logarithm, clamped below at -100 like PyTorch's `binary_cross_entropy`.
#[inline]
#[must_use]
pub(crate) fn ln_clamped(x: f32) -> f32 {
    let l = ln(x);
    if l < -100.0 { -100.0 } else { l }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sqrt_is_correctly_rounded_like_libm() {
        for i in 0..10_000u32 {
            let x = f32::from_bits(0x3000_0000 + i * 0x0001_3579);
            assert_eq!(super::sqrt(x).to_bits(), libm::sqrtf(x).to_bits(), "x = {x}");
        }
    }

    use super::*;

    #[test]
    fn flush_tiny_changes_only_values_below_two_to_the_minus_100() {
        assert_eq!(TINY, 2f32.powi(-100));
        for x in [TINY, -TINY, 1.0, -3.5e-30, 1e-30, f32::MAX, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(flush_tiny(x).to_bits(), x.to_bits(), "x = {x:e}");
        }
        assert!(flush_tiny(f32::NAN).is_nan());
        // Everything below 2^-100 of either sign, subnormals and zeros included, becomes +0.0.
        for bits in (0..27u32 << 23).step_by(9973).chain([0, 1, (27 << 23) - 1]) {
            assert_eq!(flush_tiny(f32::from_bits(bits)).to_bits(), 0, "{bits:#x}");
            assert_eq!(flush_tiny(f32::from_bits(bits | 0x8000_0000)).to_bits(), 0, "{bits:#x}");
        }
    }

    #[test]
    fn flush_subnormal_changes_only_values_below_min_positive() {
        let keep = [f32::MIN_POSITIVE, -f32::MIN_POSITIVE, 1.0, -3.5e-30, f32::MAX, f32::INFINITY, f32::NEG_INFINITY];
        for x in keep {
            assert_eq!(flush_subnormal(x).to_bits(), x.to_bits(), "x = {x:e}");
        }
        assert!(flush_subnormal(f32::NAN).is_nan());
        // Every subnormal of either sign, and both zeros, become +0.0.
        for bits in (0..0x0080_0000u32).step_by(997).chain([0, 1, 0x007f_ffff]) {
            assert_eq!(flush_subnormal(f32::from_bits(bits)).to_bits(), 0);
            assert_eq!(flush_subnormal(f32::from_bits(bits | 0x8000_0000)).to_bits(), 0);
        }
        // The smallest normals of either sign stay.
        for bits in (0x0080_0000u32..0x0100_0000).step_by(4099) {
            assert_eq!(flush_subnormal(f32::from_bits(bits)).to_bits(), bits);
            assert_eq!(flush_subnormal(f32::from_bits(bits | 0x8000_0000)).to_bits(), bits | 0x8000_0000);
        }
    }

    #[test]
    fn powi_matches_repeated_multiplication() {
        assert_eq!(powi(0.9, 0), 1.0);
        // The bias correction gives the bits of `1 - powi` for every step count of a long run.
        for beta in
            [0.0f32, -0.0, -0.5, -0.999, 1.0, 1.5, f32::NAN, 0.5, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.0 - f32::EPSILON]
        {
            for n in (0..300_000u32).chain([u32::MAX - 1, u32::MAX]) {
                let (fast, slow) = (one_minus_powi(beta, n), 1.0 - powi(beta, n));
                assert!(fast.to_bits() == slow.to_bits() || fast.is_nan() && slow.is_nan(), "{beta} {n}");
            }
        }
        assert_eq!(powi(0.5, 3), 0.125);
        assert!((powi(0.999, 10) - libm::powf(0.999, 10.0)).abs() < 1e-6);
    }
}
