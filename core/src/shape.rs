//! Derived dimensions, as `const fn`s usable in shape asserts.
//!
//! A layer whose output size is derived (a convolution, a pooling) carries that size as its own
//! const parameter and checks it against these functions in a `const SHAPE_OK` item, so a wrong
//! size is a build error that names the rule.
//!
//! ```
//! use tinytrain::shape::{conv_out, pool_out};
//! assert_eq!(conv_out(28, 3, 1, 0), 26);
//! assert_eq!(conv_out(7, 3, 2, 1), 4);
//! assert_eq!(pool_out(24, 2, 2), 12);
//! assert_eq!(pool_out(5, 2, 2), 2); // floor mode
//! ```

/// Output size of a convolution over `n` with kernel `k`, stride `s` and zero padding `p` on
/// each side: `(n + 2p - k) / s + 1` (floor). 0 when the kernel does not fit or `s` is 0.
#[must_use]
pub const fn conv_out(n: usize, k: usize, s: usize, p: usize) -> usize {
    if s == 0 || n + 2 * p < k { 0 } else { (n + 2 * p - k) / s + 1 }
}

/// Output size of a pooling over `n` with window `k` and stride `s`, no padding, floor mode
/// (PyTorch's and Keras' default): `(n - k) / s + 1`.
#[must_use]
pub const fn pool_out(n: usize, k: usize, s: usize) -> usize {
    conv_out(n, k, s, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_sizes_give_zero() {
        assert_eq!(conv_out(2, 3, 1, 0), 0);
        assert_eq!(conv_out(5, 3, 0, 0), 0);
        assert_eq!(conv_out(2, 3, 1, 1), 2);
    }
}
