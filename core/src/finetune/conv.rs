//! A VALID (unpadded) int8 CONV_2D for backbones, bit-identical to
//! [`Int8Conv2d`](crate::int8::Int8Conv2d) with the same parameters but built for speed on a
//! Cortex-M4: each input row a filter touches is widened once to `i16` with the input offset
//! added (`x + input_offset`, exactly the reference kernel's operand) and packed two to a word,
//! the filters are stored packed the same way, and each word pair is one dual 16-bit
//! multiply-accumulate (`smlad` on the Cortex-M4, its portable equivalent elsewhere). The sums
//! are the reference kernel's integer sums (exact), then the same requantisation
//! ([`requantize`], TFLite's double rounding in fewer instructions), output offset and clamp.
//!
//! # Shapes
//! Input `[i8; H*W*CI]` NHWC, output `[i8; HO*WO*CO]`, `HO = (H - K) / S + 1`,
//! `WO = (W - K) / S + 1`; filters `[[[u32; KP]; K]; CO]`: TFLite's OHWI with each filter row
//! (`K * CI` taps) packed in pairs, tap `2j` in the low half-word; `KP = K * CI / 2`,
//! `ROWP = W * CI / 2`. `K * CI` and `S * CI` must be even ([`pack_pairs`] packs a filter).
//!
//! ```
//! use tinytrain::finetune::{Int8Conv2dValid, pack_pairs};
//! use tinytrain::int8::{Int8Layer, QuantizedMultiplier};
//! // 2 channels, 3x3 input, one 1x1 filter summing the channels, stride 1.
//! static W: [[[u32; 1]; 1]; 1] = [[[pack_pairs(1, 1)]]];
//! static M: [QuantizedMultiplier; 1] = [QuantizedMultiplier { multiplier: 1 << 30, shift: 1 }];
//! let conv: Int8Conv2dValid<'_, 3, 3, 2, 1, 1, 1, 3, 3, 3, 1> = Int8Conv2dValid {
//!     weight: &W, bias: &[0], multipliers: &M, input_offset: 0, output_offset: 0,
//!     activation_min: -128, activation_max: 127,
//! };
//! let mut y = [0i8; 9];
//! conv.forward(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18], &mut y);
//! assert_eq!(y, [3, 7, 11, 15, 19, 23, 27, 31, 35]);
//! ```

use crate::int8::{Int8Layer, QuantizedMultiplier};
use crate::shape::conv_out;

use super::Int8Footprint;

/// CONV_2D, NHWC, `K`x`K` filter, stride `S`, no padding, per-channel requantisation; see the
/// module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Int8Conv2dValid<
    'a,
    const H: usize,
    const W: usize,
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const HO: usize,
    const WO: usize,
    const ROWP: usize,
    const KP: usize,
> {
    /// Filters, `[co][kh]` rows of `K * CI` taps packed in pairs ([`pack_pairs`]).
    pub weight: &'a [[[u32; KP]; K]; CO],
    /// Bias per output channel, in accumulator units.
    pub bias: &'a [i32; CO],
    /// Per-channel multipliers.
    pub multipliers: &'a [QuantizedMultiplier; CO],
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// Lower clamp.
    pub activation_min: i32,
    /// Upper clamp.
    pub activation_max: i32,
}

/// Two `i16` in one word, `lo` in the low half (the operand layout of `smlad`).
#[must_use]
pub const fn pack_pairs(lo: i16, hi: i16) -> u32 {
    (lo as u16 as u32) | ((hi as u16 as u32) << 16)
}

/// `acc + lo(x)·lo(y) + hi(x)·hi(y)`, the halves signed, wrapping: `smlad`.
#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
#[inline(always)] // one instruction: a call would triple it
#[allow(unsafe_code, clippy::inline_always)]
fn smlad(x: u32, y: u32, acc: i32) -> i32 {
    let out: i32;
    // SAFETY: `smlad` reads three registers and writes one; it touches no memory and no stack
    // (it may set the sticky Q flag, which nothing here reads).
    unsafe {
        core::arch::asm!("smlad {0}, {1}, {2}, {3}", lateout(reg) out, in(reg) x, in(reg) y, in(reg) acc,
            options(pure, nomem, nostack));
    }
    out
}

/// `acc + lo(x)·lo(y) + hi(x)·hi(y)`, the halves signed, wrapping: `smlad`.
#[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
#[inline]
fn smlad(x: u32, y: u32, acc: i32) -> i32 {
    let lo = i32::from(x as i16) * i32::from(y as i16);
    let hi = i32::from((x >> 16) as i16) * i32::from((y >> 16) as i16);
    acc.wrapping_add(lo).wrapping_add(hi)
}

/// `x · multiplier · 2^(shift − 31)` exactly as [`QuantizedMultiplier::apply`] (TFLite's
/// `MultiplyByQuantizedMultiplier`: a saturating rounding doubling high multiply, then a
/// rounding divide by a power of two, ties away from zero), in fewer instructions: the high
/// multiply's truncating division of `x·m + nudge` is `(x·m + 2^30) >> 31` for either sign.
#[must_use]
#[inline(always)] // once per output in the kernels' inner loops
#[allow(clippy::inline_always)]
pub fn requantize(x: i32, m: QuantizedMultiplier) -> i32 {
    if m.multiplier == i32::MIN || m.shift > 0 || m.shift < -31 {
        // The saturating case, left shifts (scales above 1) and clamped exponents: the
        // reference path.
        return reference(x, m);
    }
    let high = ((i64::from(x) * i64::from(m.multiplier) + (1 << 30)) >> 31) as i32;
    // gemmlowp's RoundingDivideByPOT, in 32 bits.
    let e = -m.shift;
    let mask = ((1u64 << e) - 1) as i32;
    let threshold = (mask >> 1) + i32::from(high < 0);
    (high >> e) + i32::from((high & mask) > threshold)
}

#[inline(never)]
fn reference(x: i32, m: QuantizedMultiplier) -> i32 {
    m.apply(x)
}

impl<
    const H: usize,
    const W: usize,
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const HO: usize,
    const WO: usize,
    const ROWP: usize,
    const KP: usize,
    const IN: usize,
    const OUT: usize,
> Int8Layer<IN, OUT> for Int8Conv2dValid<'_, H, W, CI, CO, K, S, HO, WO, ROWP, KP>
{
    fn forward(&self, input: &[i8; IN], output: &mut [i8; OUT]) {
        const {
            assert!(H > 0 && W > 0 && CI > 0 && CO > 0 && K > 0 && S > 0, "Int8Conv2dValid: zero dim or stride");
            assert!(H >= K && W >= K, "Int8Conv2dValid: filter larger than the input");
            assert!(HO == conv_out(H, K, S, 0) && WO == conv_out(W, K, S, 0), "Int8Conv2dValid: HO or WO not VALID");
            assert!(
                (K * CI).is_multiple_of(2) && (S * CI).is_multiple_of(2),
                "Int8Conv2dValid: K * CI and S * CI must be even"
            );
            assert!(2 * ROWP == W * CI && 2 * KP == K * CI, "Int8Conv2dValid: ROWP != W * CI / 2 or KP != K * CI / 2");
            assert!(IN == H * W * CI && OUT == HO * WO * CO, "Int8Conv2dValid: IN or OUT do not match the shape");
        };
        let mut rows = [[0u32; ROWP]; K];
        let step = S * CI / 2;
        for oy in 0..HO {
            // The K input rows of this output row, offset, widened and packed.
            for (ky, row) in rows.iter_mut().enumerate() {
                let start = (oy * S + ky) * 2 * ROWP;
                if let Some(src) = input.get(start..start + 2 * ROWP) {
                    for (r, x) in row.iter_mut().zip(src.chunks_exact(2)) {
                        let lo = (i32::from(x[0]) + self.input_offset) as i16;
                        let hi = (i32::from(x[1]) + self.input_offset) as i16;
                        *r = pack_pairs(lo, hi);
                    }
                }
            }
            // Pairs of output channels: each input word loaded once feeds two accumulators. A
            // pair at an odd edge computes a duplicate that is not stored.
            let mut oc = 0;
            while oc < CO {
                let oc1 = (oc + 1).min(CO - 1);
                let (w0, w1) = (&self.weight[oc], &self.weight[oc1]);
                for ox in 0..WO {
                    let (mut a0, mut a1) = (self.bias[oc], self.bias[oc1]);
                    for ((row, w0), w1) in rows.iter().zip(w0).zip(w1) {
                        if let Some(Ok(x)) = row.get(ox * step..ox * step + KP).map(<&[u32; KP]>::try_from) {
                            for ((&x, &w0), &w1) in x.iter().zip(w0).zip(w1) {
                                a0 = smlad(x, w0, a0);
                                a1 = smlad(x, w1, a1);
                            }
                        }
                    }
                    self.store(output, (oy * WO + ox) * CO + oc, oc, a0);
                    self.store(output, (oy * WO + ox) * CO + oc1, oc1, a1);
                }
                oc += 2;
            }
        }
    }
}

impl<
    const H: usize,
    const W: usize,
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const HO: usize,
    const WO: usize,
    const ROWP: usize,
    const KP: usize,
> Int8Conv2dValid<'_, H, W, CI, CO, K, S, HO, WO, ROWP, KP>
{
    /// Requantises accumulator `acc` of channel `oc` and writes it at `at`.
    #[inline(always)] // twice per inner loop; measured: a call costs the backbone about 5 %
    #[allow(clippy::inline_always)]
    fn store<const OUT: usize>(&self, output: &mut [i8; OUT], at: usize, oc: usize, acc: i32) {
        if let (Some(o), Some(&m)) = (output.get_mut(at), self.multipliers.get(oc)) {
            let v = requantize(acc, m).wrapping_add(self.output_offset);
            *o = v.max(self.activation_min).min(self.activation_max) as i8;
        }
    }
}

impl<
    const H: usize,
    const W: usize,
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const HO: usize,
    const WO: usize,
    const ROWP: usize,
    const KP: usize,
> Int8Footprint for Int8Conv2dValid<'_, H, W, CI, CO, K, S, HO, WO, ROWP, KP>
{
    // Packed filters, an i32 bias and a (multiplier, shift) pair per output channel.
    const FLASH_BYTES: usize = 4 * CO * K * KP + 4 * CO + 8 * CO;
    // The widened rows.
    const STACK_BYTES: usize = 4 * K * ROWP;
}

#[cfg(test)]
#[allow(clippy::needless_range_loop, clippy::cast_possible_wrap, clippy::manual_is_multiple_of)]
mod tests {
    extern crate std;
    use std::boxed::Box;

    use super::*;
    use crate::int8::{Int8Conv2d, OutputScale};
    use crate::rng::Rng;

    /// Random filters, biases, multipliers, offsets and inputs, extremes included: the fast
    /// kernel and the reference wrapper agree on every output.
    fn check<
        const H: usize,
        const W: usize,
        const CI: usize,
        const CO: usize,
        const K: usize,
        const S: usize,
        const HO: usize,
        const WO: usize,
        const ROWP: usize,
        const KP: usize,
        const IN: usize,
        const OUT: usize,
    >(
        seed: u64,
    ) {
        let mut rng = Rng::new(seed);
        for round in 0..20 {
            let mut w8 = [[[[0i8; CI]; K]; K]; CO];
            let mut w16 = [[[0u32; KP]; K]; CO];
            let extreme = round % 5 == 0;
            for o in 0..CO {
                for y in 0..K {
                    for x in 0..K {
                        for c in 0..CI {
                            let v = if extreme {
                                if rng.next_u32() % 2 == 0 { -127 } else { 127 }
                            } else {
                                (rng.below(255) as i32 - 127) as i8
                            };
                            w8[o][y][x][c] = v;
                            let t = x * CI + c;
                            let word = &mut w16[o][y][t / 2];
                            let half = u32::from(v as u8 as u16 | if v < 0 { 0xFF00 } else { 0 });
                            *word |= if t % 2 == 0 { half } else { half << 16 };
                        }
                    }
                }
            }
            let bias: [i32; CO] = core::array::from_fn(|_| rng.below(20_000) as i32 - 10_000);
            let m: [QuantizedMultiplier; CO] =
                core::array::from_fn(|_| QuantizedMultiplier::from_real(f64::from(rng.uniform(1e-4, 0.05))));
            let input: [i8; IN] = core::array::from_fn(|_| {
                if extreme { if rng.next_u32() % 2 == 0 { -128 } else { 127 } } else { rng.next_u32() as i8 }
            });
            let (input_offset, output_offset) =
                if extreme { (128, -128) } else { (rng.below(256) as i32 - 127, rng.below(256) as i32 - 128) };
            let (activation_min, activation_max) =
                if round % 2 == 0 { (-128, 127) } else { (output_offset.max(-128), 127) };
            let w8 = Box::new(w8);
            let reference: Int8Conv2d<'_, H, W, CI, CO, K, K, S, S, HO, WO> = Int8Conv2d {
                weight: &w8,
                bias: Some(&bias),
                input_offset,
                output_offset,
                activation_min,
                activation_max,
                scale: OutputScale::PerChannel(&m),
            };
            let fast: Int8Conv2dValid<'_, H, W, CI, CO, K, S, HO, WO, ROWP, KP> = Int8Conv2dValid {
                weight: &w16,
                bias: &bias,
                multipliers: &m,
                input_offset,
                output_offset,
                activation_min,
                activation_max,
            };
            let (mut a, mut b) = ([0i8; OUT], [0i8; OUT]);
            reference.forward(&input, &mut a);
            fast.forward(&input, &mut b);
            assert_eq!(a, b, "round {round}");
        }
    }

    #[test]
    fn matches_the_reference_conv() {
        check::<28, 28, 1, 6, 4, 2, 13, 13, 14, 2, 784, 1014>(1);
        check::<13, 13, 6, 24, 3, 2, 6, 6, 39, 9, 1014, 864>(2);
        check::<7, 5, 2, 4, 3, 1, 5, 3, 5, 3, 70, 60>(3);
        check::<6, 6, 2, 3, 1, 3, 2, 2, 6, 1, 72, 12>(4);
    }

    #[test]
    fn requantize_matches_the_reference_multiplier() {
        let mut rng = Rng::new(11);
        let specials = [i32::MIN, i32::MIN + 1, -1 << 30, -3, -2, -1, 0, 1, 2, 3, 1 << 30, i32::MAX - 1, i32::MAX];
        for shift in -33..=3 {
            for multiplier in [1 << 30, (1 << 30) + 1, i32::MAX, 1_518_500_250, i32::MIN, 0, 12345] {
                let m = QuantizedMultiplier { multiplier, shift };
                for &x in &specials {
                    assert_eq!(requantize(x, m), m.apply(x), "x {x} m {multiplier} shift {shift}");
                }
                for _ in 0..500 {
                    let x = rng.next_u32() as i32 >> (rng.below(31));
                    assert_eq!(requantize(x, m), m.apply(x), "x {x} m {multiplier} shift {shift}");
                }
            }
        }
    }
}
