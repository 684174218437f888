//! A small seeded PRNG that gives the same numbers on every target.
//!
//! [`Rng`] is SplitMix64-seeded xoshiro128++: integer arithmetic only, so a seed gives the same
//! stream on x86-64 and on a Cortex-M4. Floats are made from the top 24 bits, exactly.
//!
//! ```
//! use tinytrain::Rng;
//! let mut a = Rng::new(42);
//! let mut b = Rng::new(42);
//! assert_eq!(a.next_u32(), b.next_u32());
//! let u = a.uniform(-1.0, 1.0);
//! assert!((-1.0..1.0).contains(&u));
//! ```

/// Seeded pseudo-random generator (xoshiro128++).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Rng {
    s: [u32; 4],
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// The generator's state, to save it (training checkpoints).
    #[must_use]
    pub const fn state(&self) -> [u32; 4] {
        self.s
    }

    /// A generator at a saved [`Rng::state`].
    #[must_use]
    pub const fn from_state(s: [u32; 4]) -> Self {
        Rng { s }
    }

    /// A generator seeded from a 64-bit seed.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        // const-friendly SplitMix64 expansion.
        let mut st = seed;
        let mut s = [0u32; 4];
        let mut i = 0;
        while i < 2 {
            st = st.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = st;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            s[2 * i] = z as u32;
            s[2 * i + 1] = (z >> 32) as u32;
            i += 1;
        }
        if s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 {
            s[0] = 1;
        }
        Rng { s }
    }

    /// An independent generator derived from this one's seed and a stream number.
    #[must_use]
    pub fn fork(&self, stream: u64) -> Self {
        let mut st = (u64::from(self.s[0]) | (u64::from(self.s[1]) << 32)) ^ stream;
        Rng::new(splitmix64(&mut st))
    }

    /// Next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(7).wrapping_add(s[0]);
        let t = s[1] << 9;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(11);
        result
    }

    /// Uniform in `[0, 1)`, a multiple of 2^-24.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next_f32()
    }

    /// Standard normal by the Box-Muller transform (through `libm`, so portable).
    pub fn normal(&mut self) -> f32 {
        // 1 - u is in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.next_f32();
        let u2 = self.next_f32();
        let r = libm::sqrtf(-2.0 * crate::math::ln(u1));
        r * libm::cosf(2.0 * core::f32::consts::PI * u2)
    }

    /// Uniform integer in `0..n` (Lemire's method without the rejection step's bias).
    pub fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u64::from(self.next_u32()) * u64::from(n);
            if (m as u32) >= threshold {
                return (m >> 32) as u32;
            }
        }
    }
}

/// A seeded permutation of `0..n` that needs no index buffer.
///
/// Shuffling a dataset usually needs an array of `n` indices; on a microcontroller that is RAM
/// we would rather not spend. This is a keyed bijection on the next power of two (a small
/// Feistel-like mix of xor, multiply-by-odd and rotate steps), walked until it lands inside
/// `0..n` ("cycle walking"). Every index appears exactly once per epoch.
///
/// ```
/// use tinytrain::rng::Permutation;
/// let p = Permutation::new(10, 7);
/// let mut seen = [false; 10];
/// for i in 0..10 { seen[p.get(i)] = true; }
/// assert!(seen.iter().all(|&s| s));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Permutation {
    n: u32,
    mask: u32,
    bits: u32,
    keys: [u32; 4],
}

impl Permutation {
    /// A permutation of `0..n` chosen by `seed`. `n` above `u32::MAX` is clamped.
    #[must_use]
    pub fn new(n: usize, seed: u64) -> Self {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let bits = (32 - n.saturating_sub(1).leading_zeros()).max(2);
        let mask = if bits >= 32 { u32::MAX } else { (1u32 << bits) - 1 };
        let mut rng = Rng::new(seed);
        let keys = [rng.next_u32(), rng.next_u32() | 1, rng.next_u32(), rng.next_u32() | 1];
        Permutation { n, mask, bits, keys }
    }

    /// The identity permutation (no shuffling).
    #[must_use]
    pub fn identity(n: usize) -> Self {
        let mut p = Permutation::new(n, 0);
        p.keys = [0; 4];
        p
    }

    fn round(&self, mut x: u32) -> u32 {
        if self.keys == [0; 4] {
            return x;
        }
        let half = self.bits / 2;
        for r in 0..4 {
            let k = self.keys[r];
            // Each step is a bijection on `bits`-bit integers.
            x = (x ^ k) & self.mask;
            x = x.wrapping_mul(self.keys[(r + 1) % 4] | 1) & self.mask;
            x ^= x >> half.max(1);
        }
        x
    }

    /// The element at position `i` (for `i < n`).
    #[must_use]
    pub fn get(&self, i: usize) -> usize {
        let mut x = i as u32;
        loop {
            x = self.round(x);
            if x < self.n {
                return x as usize;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_is_a_bijection_for_many_sizes() {
        for n in [1usize, 2, 3, 5, 8, 31, 32, 33, 100, 1437] {
            for seed in 0..4 {
                let p = Permutation::new(n, seed);
                let mut seen = [false; 1437];
                for i in 0..n {
                    let j = p.get(i);
                    assert!(j < n);
                    assert!(!seen[j], "n={n} seed={seed} repeats {j}");
                    seen[j] = true;
                }
            }
        }
    }

    #[test]
    fn permutation_depends_on_seed() {
        let a = Permutation::new(100, 1);
        let b = Permutation::new(100, 2);
        assert!((0..100).any(|i| a.get(i) != b.get(i)));
        let id = Permutation::identity(100);
        assert!((0..100).all(|i| id.get(i) == i));
    }

    #[test]
    fn uniform_and_normal_have_plausible_moments() {
        let mut r = Rng::new(3);
        let (mut s, mut s2) = (0.0f64, 0.0f64);
        for _ in 0..20_000 {
            let z = f64::from(r.normal());
            s += z;
            s2 += z * z;
        }
        let mean = s / 20_000.0;
        let var = s2 / 20_000.0 - mean * mean;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
        for _ in 0..1000 {
            let k = r.below(7);
            assert!(k < 7);
        }
    }
}
