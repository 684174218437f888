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

/// Square root (correctly rounded in `libm`, so identical on every target).
#[inline]
#[must_use]
pub fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
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

/// Floor.
#[inline]
#[must_use]
pub fn floor(x: f32) -> f32 {
    libm::floorf(x)
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
    use super::*;

    #[test]
    fn powi_matches_repeated_multiplication() {
        assert_eq!(powi(0.9, 0), 1.0);
        assert_eq!(powi(0.5, 3), 0.125);
        assert!((powi(0.999, 10) - libm::powf(0.999, 10.0)).abs() < 1e-6);
    }
}
