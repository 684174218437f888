//! The multiply-accumulate kernels of the const-generic int8 layers: Cortex-M4 DSP instructions
//! where the target has them, portable Rust with the same bits everywhere else.
//!
//! On `thumbv7em` targets (Cortex-M4/M7, the `tinytrain_dsp` cfg set by `core/build.rs`: stable
//! Rust does not expose ARM's `dsp` target feature to `cfg`) the inner loops are inline
//! assembly in the manner of CMSIS-NN (`arm_nn_vec_mat_mult_t_s8`,
//! `arm_nn_mat_mult_kernel_s8_s16`): `SXTB16` / `SXTAB16` sign-extend two bytes at once into
//! 16-bit lanes (adding the input offset in the same instruction), `SMLAD` multiplies both
//! lanes and adds them to a 32-bit accumulator. Every function here has a twin in
//! [`portable`] with the same signature and the same results bit for bit (integer sums wrap
//! identically in any order); `firmware/tests/on_target.rs` compares the two on the device on
//! random data and extreme values, and the host always runs the portable ones.
//!
//! Instruction counts of the inner loops (no branches but the loop's):
//! - [`dot_rows4`]: 4 rows x 4 inputs per iteration, 25 instructions for 16 multiply-adds
//!   (1.56 per MAC): one load and two `SXTAB16` for the inputs, then per row one load, two
//!   `SXTB16` and two `SMLAD`, and the loop's `SUBS`/`BNE`. The rows are a [`RowStride`] apart,
//!   an immediate offset, so three strides must fit `LDR`'s 12 bits (4095 bytes);
//!   [`dot_rows2`] (1.88 per MAC) takes strides up to 4095, [`dot_row1`] (2.25) any.
//! - [`mat_2x2`]: 2 weight rows x 2 columns of 16-bit inputs (an im2col buffer, see
//!   [`ColumnPair`]) x 4 taps per iteration, 20 instructions for 16 multiply-adds (1.25 per
//!   MAC), the CMSIS-NN convolution kernel's blocking.
//!
//! The twelve registers the loops need are all that inline assembly may use on Thumb-2 (r6,
//! r7, sp and pc are LLVM's).
//!
//! ```
//! use tinytrain::int8::dsp;
//! let x = [1i8, 2, 3, 4, 5];
//! // Four rows of five weights, eight bytes apart.
//! let w: [i8; 29] = core::array::from_fn(|i| i as i8 - 10);
//! let acc = dsp::dot_rows4::<dsp::Stride<8>>(&x, &w, 1, [0; 4]);
//! assert_eq!(acc, dsp::portable::dot_rows4::<dsp::Stride<8>>(&x, &w, 1, [0; 4]));
//! // Row 0: -10*2 + -9*3 + -8*4 + -7*5 + -6*6
//! assert_eq!(acc[0], -150);
//! ```

#[cfg(not(tinytrain_dsp))]
pub use portable::{dot_row1, dot_rows2, dot_rows4, mat_2x2, widen4};

/// Input offsets for which `input + offset` fits a 16-bit lane for every `i8` input; others
/// take the portable loops.
pub const OFFSETS: core::ops::RangeInclusive<i32> = -32640..=32640;

/// Largest immediate offset of Thumb-2's `LDR Rt, [Rn, #imm12]`.
#[cfg(tinytrain_dsp)]
const MAX_OFFSET: usize = 4095;

/// The distance between two weight rows, in bytes, as a type: the assembly needs it as an
/// immediate, and stable Rust cannot compute a const generic argument from others
/// (`KH * KW * CI`), but an associated constant can.
pub trait RowStride {
    /// Bytes from one row to the next.
    const BYTES: usize;
}

/// Rows `N` bytes apart (a FULLY_CONNECTED weight matrix with `N` inputs).
#[derive(Debug, Clone, Copy)]
pub struct Stride<const N: usize>;

impl<const N: usize> RowStride for Stride<N> {
    const BYTES: usize = N;
}

/// Rows of `KH * KW * CI` bytes (a CONV_2D filter in TFLite's OHWI layout).
#[derive(Debug, Clone, Copy)]
pub struct FilterTaps<const KH: usize, const KW: usize, const CI: usize>;

impl<const KH: usize, const KW: usize, const CI: usize> RowStride for FilterTaps<KH, KW, CI> {
    const BYTES: usize = KH * KW * CI;
}

/// Two im2col columns of 16-bit values (`input + input_offset`, 0 for padding), laid out for
/// [`mat_2x2`]: the first `n4 = n / 4 * 4` taps in groups of four, each group eight `i16`
/// (column 0's taps 0, 2, 1, 3, then column 1's), so that one 32-bit load gives the lanes
/// `SXTB16` makes of four weight bytes; then the `n - n4` remaining taps of column 0, then of
/// column 1, in order.
///
/// [`ColumnPair::slot`] says where tap `p` of column `c` goes.
#[derive(Debug, Clone, Copy)]
pub struct ColumnPair;

impl ColumnPair {
    /// Index of tap `p` of column `c` (0 or 1) in the buffer of two `n`-tap columns.
    #[must_use]
    #[inline]
    pub const fn slot(n: usize, c: usize, p: usize) -> usize {
        let n4 = n & !3;
        if p < n4 {
            // Taps 0, 1, 2, 3 of a group go to lanes 0, 2, 1, 3.
            let lane = ((p & 1) << 1) | ((p >> 1) & 1);
            (p & !3) * 2 + c * 4 + lane
        } else {
            2 * n4 + c * (n - n4) + (p - n4)
        }
    }
}

/// Portable versions of the kernels, bit-identical with the assembly ones.
pub mod portable {
    use super::RowStride;

    /// `init[r] + Σ_k w[r * S::BYTES + k] * (x[k] + x_offset)` for the four rows `r = 0..4`
    /// (a [`RowStride`] apart), `k` over `x`, wrapping. A row that runs past the end of `w` is
    /// cut short.
    #[must_use]
    #[inline]
    pub fn dot_rows4<S: RowStride>(x: &[i8], w: &[i8], x_offset: i32, init: [i32; 4]) -> [i32; 4] {
        let mut acc = init;
        for (r, a) in acc.iter_mut().enumerate() {
            *a = dot(*a, x, w.get(r * S::BYTES..).unwrap_or(&[]), x_offset);
        }
        acc
    }

    /// [`dot_rows4`] for two rows.
    #[must_use]
    #[inline]
    pub fn dot_rows2<S: RowStride>(x: &[i8], w: &[i8], x_offset: i32, init: [i32; 2]) -> [i32; 2] {
        [dot(init[0], x, w, x_offset), dot(init[1], x, w.get(S::BYTES..).unwrap_or(&[]), x_offset)]
    }

    /// [`dot_rows4`] for one row.
    #[must_use]
    #[inline]
    pub fn dot_row1(x: &[i8], w: &[i8], x_offset: i32, init: i32) -> i32 {
        dot(init, x, w, x_offset)
    }

    #[inline]
    fn dot(init: i32, x: &[i8], w: &[i8], x_offset: i32) -> i32 {
        x.iter().zip(w).fold(init, |acc, (&xv, &wv)| {
            acc.wrapping_add(i32::from(wv).wrapping_mul(i32::from(xv).wrapping_add(x_offset)))
        })
    }

    /// Two weight rows (`w[..n]` and `w[S::BYTES..][..n]`) against the two columns of a
    /// [`ColumnPair`](super::ColumnPair) buffer of `n`-tap columns: `[row 0 · column 0, row 0 ·
    /// column 1, row 1 · column 0, row 1 · column 1]`, wrapping. Taps past the end of `w` or
    /// `cols` count as 0.
    #[must_use]
    #[inline]
    pub fn mat_2x2<S: RowStride>(cols: &[i16], w: &[i8], n: usize) -> [i32; 4] {
        let mut acc = [0i32; 4];
        let rows = [w, w.get(S::BYTES..).unwrap_or(&[])];
        for (r, row) in rows.iter().enumerate() {
            for (p, &wv) in row.iter().take(n).enumerate() {
                for c in 0..2 {
                    let xv = cols.get(super::ColumnPair::slot(n, c, p)).copied().unwrap_or(0);
                    acc[r * 2 + c] = acc[r * 2 + c].wrapping_add(i32::from(wv) * i32::from(xv));
                }
            }
        }
        acc
    }

    /// Four input bytes (little-endian in `word`) plus `offset`, as two words of 16-bit lanes:
    /// `(bytes 0 and 2, bytes 1 and 3)`, each lane `byte as i8 + offset` wrapped to 16 bits
    /// (`SXTAB16`, and `SXTAB16` of the word rotated by 8).
    #[must_use]
    #[inline]
    pub fn widen4(word: u32, offset: i32) -> (u32, u32) {
        let lane = |byte: u32| (i32::from((byte as u8).cast_signed()).wrapping_add(offset) as u32) & 0xffff;
        let b = |k: u32| (word >> (8 * k)) & 0xff;
        (lane(b(0)) | (lane(b(2)) << 16), lane(b(1)) | (lane(b(3)) << 16))
    }
}

/// `offset` in both 16-bit lanes, for `SXTAB16`.
#[cfg(tinytrain_dsp)]
#[inline]
fn offset_pair(offset: i32) -> u32 {
    let lane = offset.cast_unsigned() & 0xffff;
    lane | (lane << 16)
}

/// `init[r] + Σ_k w[r * S::BYTES + k] * (x[k] + x_offset)` for the four rows `r = 0..4`, `k`
/// over `x`, wrapping ([`portable::dot_rows4`] elsewhere). With `x_offset` outside [`OFFSETS`] or
/// `w` shorter than `3 * S::BYTES + x.len()` or `3 * S::BYTES > 4095`, the portable loop runs.
#[cfg(tinytrain_dsp)]
#[must_use]
#[inline]
#[allow(unsafe_code)]
pub fn dot_rows4<S: RowStride>(x: &[i8], w: &[i8], x_offset: i32, init: [i32; 4]) -> [i32; 4] {
    let n = x.len();
    let fits = const { 3 * S::BYTES <= MAX_OFFSET };
    let groups = n / 4;
    if !fits || groups == 0 || w.len() < 3 * S::BYTES + n || !OFFSETS.contains(&x_offset) {
        return portable::dot_rows4::<S>(x, w, x_offset, init);
    }
    let [mut a0, mut a1, mut a2, mut a3] = init;
    let (mut xp, mut wp, mut count) = (x.as_ptr(), w.as_ptr(), groups);
    // SAFETY: the loop reads 4 * groups <= n bytes from x and, for each row r < 4, from
    // w[r * S::BYTES..][..4 * groups], inside w (checked above); LDR may be unaligned on the M4.
    // Only the named registers change; the flags are clobbered (not preserved_flags).
    unsafe {
        core::arch::asm!(
            "2:",
            "ldr {xb}, [{xp}], #4",
            "sxtab16 {xa}, {off}, {xb}",
            "sxtab16 {xb}, {off}, {xb}, ror #8",
            "ldr {wt}, [{wp}, #{s1}]",
            "sxtb16 {wa}, {wt}",
            "sxtb16 {wt}, {wt}, ror #8",
            "smlad {a1}, {wa}, {xa}, {a1}",
            "smlad {a1}, {wt}, {xb}, {a1}",
            "ldr {wt}, [{wp}, #{s2}]",
            "sxtb16 {wa}, {wt}",
            "sxtb16 {wt}, {wt}, ror #8",
            "smlad {a2}, {wa}, {xa}, {a2}",
            "smlad {a2}, {wt}, {xb}, {a2}",
            "ldr {wt}, [{wp}, #{s3}]",
            "sxtb16 {wa}, {wt}",
            "sxtb16 {wt}, {wt}, ror #8",
            "smlad {a3}, {wa}, {xa}, {a3}",
            "smlad {a3}, {wt}, {xb}, {a3}",
            "ldr {wt}, [{wp}], #4",
            "sxtb16 {wa}, {wt}",
            "sxtb16 {wt}, {wt}, ror #8",
            "smlad {a0}, {wa}, {xa}, {a0}",
            "smlad {a0}, {wt}, {xb}, {a0}",
            "subs {n}, {n}, #1",
            "bne 2b",
            xp = inout(reg) xp,
            wp = inout(reg) wp,
            n = inout(reg) count,
            off = in(reg) offset_pair(x_offset),
            xa = out(reg) _,
            xb = out(reg) _,
            wt = out(reg) _,
            wa = out(reg) _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            s1 = const if 3 * S::BYTES <= MAX_OFFSET { S::BYTES } else { 0 },
            s2 = const if 3 * S::BYTES <= MAX_OFFSET { 2 * S::BYTES } else { 0 },
            s3 = const if 3 * S::BYTES <= MAX_OFFSET { 3 * S::BYTES } else { 0 },
            options(pure, readonly, nostack),
        );
    }
    let _ = (xp, wp, count);
    let done = groups * 4;
    portable::dot_rows4::<S>(&x[done..], &w[done..], x_offset, [a0, a1, a2, a3])
}

/// [`dot_rows4`] for two rows (`S::BYTES <= 4095`).
#[cfg(tinytrain_dsp)]
#[must_use]
#[inline]
#[allow(unsafe_code)]
pub fn dot_rows2<S: RowStride>(x: &[i8], w: &[i8], x_offset: i32, init: [i32; 2]) -> [i32; 2] {
    let n = x.len();
    let fits = const { S::BYTES <= MAX_OFFSET };
    let groups = n / 4;
    if !fits || groups == 0 || w.len() < S::BYTES + n || !OFFSETS.contains(&x_offset) {
        return portable::dot_rows2::<S>(x, w, x_offset, init);
    }
    let [mut a0, mut a1] = init;
    let (mut xp, mut wp, mut count) = (x.as_ptr(), w.as_ptr(), groups);
    // SAFETY: as in dot_rows4, for rows 0 and 1.
    unsafe {
        core::arch::asm!(
            "2:",
            "ldr {xb}, [{xp}], #4",
            "sxtab16 {xa}, {off}, {xb}",
            "sxtab16 {xb}, {off}, {xb}, ror #8",
            "ldr {wt}, [{wp}, #{s1}]",
            "sxtb16 {wa}, {wt}",
            "sxtb16 {wt}, {wt}, ror #8",
            "smlad {a1}, {wa}, {xa}, {a1}",
            "smlad {a1}, {wt}, {xb}, {a1}",
            "ldr {wt}, [{wp}], #4",
            "sxtb16 {wa}, {wt}",
            "sxtb16 {wt}, {wt}, ror #8",
            "smlad {a0}, {wa}, {xa}, {a0}",
            "smlad {a0}, {wt}, {xb}, {a0}",
            "subs {n}, {n}, #1",
            "bne 2b",
            xp = inout(reg) xp,
            wp = inout(reg) wp,
            n = inout(reg) count,
            off = in(reg) offset_pair(x_offset),
            xa = out(reg) _,
            xb = out(reg) _,
            wt = out(reg) _,
            wa = out(reg) _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            s1 = const if S::BYTES <= MAX_OFFSET { S::BYTES } else { 0 },
            options(pure, readonly, nostack),
        );
    }
    let _ = (xp, wp, count);
    let done = groups * 4;
    portable::dot_rows2::<S>(&x[done..], &w[done..], x_offset, [a0, a1])
}

/// [`dot_rows4`] for one row, 8 inputs per iteration.
#[cfg(tinytrain_dsp)]
#[must_use]
#[inline]
#[allow(unsafe_code)]
pub fn dot_row1(x: &[i8], w: &[i8], x_offset: i32, init: i32) -> i32 {
    let n = x.len();
    let groups = n / 8;
    if groups == 0 || w.len() < n || !OFFSETS.contains(&x_offset) {
        return portable::dot_row1(x, w, x_offset, init);
    }
    let mut acc = init;
    let (mut xp, mut wp, mut count) = (x.as_ptr(), w.as_ptr(), groups);
    // SAFETY: reads 8 * groups <= n bytes from x and from w (w.len() >= n).
    unsafe {
        core::arch::asm!(
            "2:",
            "ldr {xb}, [{xp}], #4",
            "sxtab16 {xa}, {off}, {xb}",
            "sxtab16 {xb}, {off}, {xb}, ror #8",
            "ldr {wt}, [{wp}], #4",
            "sxtb16 {wa}, {wt}",
            "sxtb16 {wt}, {wt}, ror #8",
            "smlad {a}, {wa}, {xa}, {a}",
            "smlad {a}, {wt}, {xb}, {a}",
            "ldr {xb}, [{xp}], #4",
            "sxtab16 {xa}, {off}, {xb}",
            "sxtab16 {xb}, {off}, {xb}, ror #8",
            "ldr {wt}, [{wp}], #4",
            "sxtb16 {wa}, {wt}",
            "sxtb16 {wt}, {wt}, ror #8",
            "smlad {a}, {wa}, {xa}, {a}",
            "smlad {a}, {wt}, {xb}, {a}",
            "subs {n}, {n}, #1",
            "bne 2b",
            xp = inout(reg) xp,
            wp = inout(reg) wp,
            n = inout(reg) count,
            off = in(reg) offset_pair(x_offset),
            xa = out(reg) _,
            xb = out(reg) _,
            wt = out(reg) _,
            wa = out(reg) _,
            a = inout(reg) acc,
            options(pure, readonly, nostack),
        );
    }
    let _ = (xp, wp, count);
    let done = groups * 8;
    portable::dot_row1(&x[done..], &w[done..], x_offset, acc)
}

/// Two weight rows against a [`ColumnPair`] buffer ([`portable::mat_2x2`] elsewhere):
/// `[row 0 · column 0, row 0 · column 1, row 1 · column 0, row 1 · column 1]`. The assembly
/// loop takes the groups of four taps; the rest is the portable code's. Runs the portable
/// loop when `cols` holds fewer than `2 * n` values, `w` fewer than `S::BYTES + n` or `S::BYTES >
/// 4095`.
#[cfg(tinytrain_dsp)]
#[must_use]
#[inline]
#[allow(unsafe_code)]
pub fn mat_2x2<S: RowStride>(cols: &[i16], w: &[i8], n: usize) -> [i32; 4] {
    let fits = const { S::BYTES <= MAX_OFFSET };
    let groups = n / 4;
    if !fits || groups == 0 || cols.len() < 2 * n || w.len() < S::BYTES + n {
        return portable::mat_2x2::<S>(cols, w, n);
    }
    let (mut a00, mut a01, mut a10, mut a11) = (0i32, 0i32, 0i32, 0i32);
    let (mut cp, mut wp, mut count) = (cols.as_ptr(), w.as_ptr(), groups);
    // SAFETY: reads 8 * groups <= 2 * n i16 from cols and 4 * groups <= n bytes of each row
    // (rows at w and w + S::BYTES, inside w as checked).
    unsafe {
        core::arch::asm!(
            "2:",
            "ldr {w1b}, [{wp}, #{s1}]",
            "sxtb16 {w1a}, {w1b}",
            "sxtb16 {w1b}, {w1b}, ror #8",
            "ldr {w0b}, [{wp}], #4",
            "sxtb16 {w0a}, {w0b}",
            "sxtb16 {w0b}, {w0b}, ror #8",
            "ldr {x}, [{cp}], #4",
            "smlad {a00}, {w0a}, {x}, {a00}",
            "smlad {a10}, {w1a}, {x}, {a10}",
            "ldr {x}, [{cp}], #4",
            "smlad {a00}, {w0b}, {x}, {a00}",
            "smlad {a10}, {w1b}, {x}, {a10}",
            "ldr {x}, [{cp}], #4",
            "smlad {a01}, {w0a}, {x}, {a01}",
            "smlad {a11}, {w1a}, {x}, {a11}",
            "ldr {x}, [{cp}], #4",
            "smlad {a01}, {w0b}, {x}, {a01}",
            "smlad {a11}, {w1b}, {x}, {a11}",
            "subs {n}, {n}, #1",
            "bne 2b",
            cp = inout(reg) cp,
            wp = inout(reg) wp,
            n = inout(reg) count,
            x = out(reg) _,
            w0a = out(reg) _,
            w0b = out(reg) _,
            w1a = out(reg) _,
            w1b = out(reg) _,
            a00 = inout(reg) a00,
            a01 = inout(reg) a01,
            a10 = inout(reg) a10,
            a11 = inout(reg) a11,
            s1 = const if S::BYTES <= MAX_OFFSET { S::BYTES } else { 0 },
            options(pure, readonly, nostack),
        );
    }
    let _ = (cp, wp, count);
    let n4 = groups * 4;
    if n4 == n {
        return [a00, a01, a10, a11];
    }
    // The taps after the last group: plain values after the groups.
    let mut acc = [a00, a01, a10, a11];
    for (r, row) in [&w[n4..n], &w[S::BYTES + n4..S::BYTES + n]].into_iter().enumerate() {
        for (j, &wv) in row.iter().enumerate() {
            for c in 0..2 {
                let xv = cols[ColumnPair::slot(n, c, n4 + j)];
                acc[r * 2 + c] = acc[r * 2 + c].wrapping_add(i32::from(wv) * i32::from(xv));
            }
        }
    }
    acc
}

/// Four input bytes plus `offset` as two words of 16-bit lanes, `(bytes 0 and 2, bytes 1
/// and 3)`: two `SXTAB16` ([`portable::widen4`] elsewhere).
#[cfg(tinytrain_dsp)]
#[must_use]
#[inline]
#[allow(unsafe_code)]
pub fn widen4(word: u32, offset: i32) -> (u32, u32) {
    let (even, odd): (u32, u32);
    // SAFETY: register-only arithmetic.
    unsafe {
        core::arch::asm!(
            "sxtab16 {e}, {off}, {w}",
            "sxtab16 {o}, {off}, {w}, ror #8",
            w = in(reg) word,
            off = in(reg) offset_pair(offset),
            // `e` is written before the second instruction reads `w` and `off`: not lateout.
            e = out(reg) even,
            o = lateout(reg) odd,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    (even, odd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn column_slots_are_a_permutation() {
        for n in 0..40 {
            let mut seen = [false; 80];
            for c in 0..2 {
                for p in 0..n {
                    let s = ColumnPair::slot(n, c, p);
                    assert!(s < 2 * n && !seen[s], "n={n} c={c} p={p}");
                    seen[s] = true;
                }
            }
        }
        // The lanes of a group: taps 0, 2 in the first word, 1, 3 in the second.
        assert_eq!([0, 1, 2, 3].map(|p| ColumnPair::slot(8, 0, p)), [0, 2, 1, 3]);
        assert_eq!([4, 5, 6, 7].map(|p| ColumnPair::slot(8, 1, p)), [12, 14, 13, 15]);
    }

    #[test]
    fn widen4_matches_its_definition() {
        assert_eq!(portable::widen4(0x0302_01ff, 1), (0x0003_0000, 0x0004_0002));
        assert_eq!(portable::widen4(0x8080_8080, -128), (0xff00_ff00, 0xff00_ff00));
        assert_eq!(portable::widen4(0x7f7f_7f7f, 128), (0x00ff_00ff, 0x00ff_00ff));
    }

    #[test]
    fn mat_2x2_is_two_dot_products_per_column() {
        let mut rng = Rng::new(3);
        for n in [1usize, 3, 4, 7, 8, 13, 80] {
            let xs: [[i8; 80]; 2] = core::array::from_fn(|_| core::array::from_fn(|_| rng.next_u32() as i8));
            let w: [i8; 200] = core::array::from_fn(|_| rng.next_u32() as i8);
            let offset = 17;
            let mut cols = [0i16; 160];
            for (c, x) in xs.iter().enumerate() {
                for p in 0..n {
                    cols[ColumnPair::slot(n, c, p)] = i16::from(x[p]) + offset as i16;
                }
            }
            let got = portable::mat_2x2::<Stride<90>>(&cols[..2 * n], &w, n);
            let want = [
                portable::dot_row1(&xs[0][..n], &w, offset, 0),
                portable::dot_row1(&xs[1][..n], &w, offset, 0),
                portable::dot_row1(&xs[0][..n], &w[90..], offset, 0),
                portable::dot_row1(&xs[1][..n], &w[90..], offset, 0),
            ];
            assert_eq!(got, want, "n={n}");
            assert_eq!(mat_2x2::<Stride<90>>(&cols[..2 * n], &w, n), want);
        }
    }
}
