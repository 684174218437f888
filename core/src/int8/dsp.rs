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
//!   [`dense_blocks4`] runs the same loop over all of a layer's blocks of four rows inside one
//!   `asm!` (three pointers and a count on the stack between blocks, `LDM`/`STM` of the four
//!   accumulators, 13 instructions a block), so a layer carries one copy of the kernel
//!   however many blocks it has; [`dense_blocks4_array`] writes the blocks straight into a new
//!   array. [`dot_row1_small`] is [`dot_row1`] with half its code (four inputs an iteration).
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
pub use portable::{
    dense_blocks4, dense_blocks4_array, dot_row1, dot_row1_small, dot_rows2, dot_rows4, mat_2x2, widen_rows, widen4,
};

/// `x` itself, which the optimiser cannot see through (no instruction on the Cortex-M4: an
/// empty `asm!` the value passes through). A loop whose counter goes through it keeps its one
/// copy of the body (LLVM's unroller cannot count its trips) and loads the tables it indexes
/// instead of folding them into immediates: the layers' per-output loops use it, trading a few
/// instructions for hundreds of bytes of flash.
#[cfg(tinytrain_dsp)]
#[must_use]
#[inline]
#[allow(unsafe_code)]
pub fn opaque(mut x: usize) -> usize {
    // SAFETY: an empty instruction string: no instruction, memory or flag is touched.
    unsafe { core::arch::asm!("/* {x} */", x = inout(reg) x, options(pure, nomem, nostack, preserves_flags)) };
    x
}

/// `x` (the portable twin of the Cortex-M4's optimisation barrier).
#[cfg(not(tinytrain_dsp))]
#[must_use]
#[inline]
pub const fn opaque(x: usize) -> usize {
    x
}

/// Input offsets for which `input + offset` fits a 16-bit lane for every `i8` input; others
/// take the portable loops.
pub const OFFSETS: core::ops::RangeInclusive<i32> = -32640..=32640;

/// Most groups of four taps [`mat_2x2`] unrolls (about 64 bytes of code each).
pub const UNROLLED_GROUPS: usize = 32;

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

/// The shape of a convolution window as [`widen_window`] reads it: `ROWS` rows of `GROUPS`
/// groups of four taps.
pub trait Window {
    /// Filter rows.
    const ROWS: usize;
    /// Groups of four taps per filter row (`KW * CI / 4`).
    const GROUPS: usize;
}

impl<const KH: usize, const KW: usize, const CI: usize> Window for FilterTaps<KH, KW, CI> {
    const ROWS: usize = KH;
    const GROUPS: usize = KW * CI / 4;
}

/// Two im2col columns of 16-bit values (`input + input_offset`, 0 for padding) in 32-bit words
/// of two lanes (lane 0 in the low half), laid out for [`mat_2x2`]: the first `n4 = n / 4 * 4`
/// taps in groups of four, each group four words (column 0's taps 0 and 2, 1 and 3, then column
/// 1's), so that one load gives the lanes `SXTB16` makes of four weight bytes; then the `n -
/// n4` remaining taps of column 0, then of column 1, in order. Two columns of `n` taps take
/// `n` words.
///
/// [`ColumnPair::slot`] says which lane holds tap `p` of column `c`; [`ColumnPair::get`] and
/// [`ColumnPair::set`] read and write it.
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

    /// Lane `lane` of `cols` (0 past the end).
    #[must_use]
    #[inline]
    pub fn lane(cols: &[u32], lane: usize) -> i16 {
        cols.get(lane / 2).map_or(0, |&w| ((w >> (16 * (lane % 2))) as u16).cast_signed())
    }

    /// Tap `p` of column `c` of a buffer of two `n`-tap columns (0 past the end).
    #[must_use]
    #[inline]
    pub fn get(cols: &[u32], n: usize, c: usize, p: usize) -> i16 {
        Self::lane(cols, Self::slot(n, c, p))
    }

    /// Writes tap `p` of column `c` (nothing past the end).
    #[inline]
    pub fn set(cols: &mut [u32], n: usize, c: usize, p: usize, value: i16) {
        let lane = Self::slot(n, c, p);
        if let Some(w) = cols.get_mut(lane / 2) {
            let shift = 16 * (lane % 2);
            *w = (*w & !(0xffff << shift)) | (u32::from(value as u16) << shift);
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

    /// `out[r] = init[r] + Σ_k w[r * S::BYTES + k] * (x[k] + x_offset)` for the first
    /// `4 * blocks` rows (wrapping), `k` over the first `S::BYTES / 4 * 4` inputs of `x` (the
    /// caller adds the rest). Rows, `init` or `out` entries past their slices' ends are left
    /// out.
    #[inline]
    pub fn dense_blocks4<S: RowStride>(
        x: &[i8],
        w: &[i8],
        x_offset: i32,
        init: &[i32],
        out: &mut [i32],
        blocks: usize,
    ) {
        let n = S::BYTES / 4 * 4;
        let x = x.get(..n).unwrap_or(x);
        for (r, o) in out.iter_mut().enumerate().take(4 * blocks) {
            let row = w.get(r * S::BYTES..).unwrap_or(&[]);
            *o = dot(init.get(r).copied().unwrap_or(0), x, row, x_offset);
        }
    }

    /// [`dense_blocks4`] over all `O / 4` blocks into a new array, rows past the last block
    /// (and the inputs past the last group of four) left at `init`.
    #[must_use]
    #[inline]
    pub fn dense_blocks4_array<S: RowStride, const O: usize>(
        x: &[i8],
        w: &[i8],
        x_offset: i32,
        init: &[i32; O],
    ) -> [i32; O] {
        let mut acc = *init;
        dense_blocks4::<S>(x, w, x_offset, init, &mut acc, O / 4);
        acc
    }

    /// [`dot_row1`] (the Cortex-M4's twin unrolls less).
    #[must_use]
    #[inline]
    pub fn dot_row1_small(x: &[i8], w: &[i8], x_offset: i32, init: i32) -> i32 {
        dot_row1(x, w, x_offset, init)
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
    /// [`ColumnPair`](super::ColumnPair) buffer of `n`-tap columns, added to `init`: `[row 0 ·
    /// column 0, row 0 · column 1, row 1 · column 0, row 1 · column 1]`, wrapping. Taps past
    /// the end of `w` or `cols` count as 0.
    #[must_use]
    #[inline]
    pub fn mat_2x2<S: RowStride>(cols: &[u32], w: &[i8], n: usize, init: [i32; 4]) -> [i32; 4] {
        let mut acc = init;
        let rows = [w, w.get(S::BYTES..).unwrap_or(&[])];
        for (r, row) in rows.iter().enumerate() {
            for (p, &wv) in row.iter().take(n).enumerate() {
                for c in 0..2 {
                    let xv = super::ColumnPair::get(cols, n, c, p);
                    acc[r * 2 + c] = acc[r * 2 + c].wrapping_add(i32::from(wv) * i32::from(xv));
                }
            }
        }
        acc
    }

    /// Column `c` of a [`ColumnPair`](super::ColumnPair) buffer from `rows` rows of `4 *
    /// groups` input bytes, `stride` bytes apart from the start of `src`, each byte plus
    /// `offset` ([`widen4`]): row `r`'s group `g` goes to words `4 * (r * groups + g) + 2 * c`
    /// and the one after. Rows or groups past the end of `src` or `dst` are left out.
    #[inline]
    pub fn widen_rows(src: &[i8], stride: usize, rows: usize, groups: usize, offset: i32, dst: &mut [u32], c: usize) {
        for r in 0..rows {
            for g in 0..groups {
                let Some(b) = src.get(r * stride + 4 * g..).and_then(|s| s.get(..4)) else { continue };
                let (even, odd) = widen4(u32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]), offset);
                let at = 4 * (r * groups + g) + 2 * c;
                if let Some(pair) = dst.get_mut(at..at + 2) {
                    pair.copy_from_slice(&[even, odd]);
                }
            }
        }
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

/// [`portable::dense_blocks4`]: the whole loop over the blocks of four rows in assembly (its
/// state on the stack between blocks), so that a layer carries one copy of the kernel whatever
/// its number of blocks: 25 instructions per 16 multiply-adds and about 20 per block. Runs the
/// portable loop when a slice is too short, `x` does not hold `S::BYTES` inputs, `3 *
/// S::BYTES > 4095` or `x_offset` is outside [`OFFSETS`].
#[cfg(tinytrain_dsp)]
#[inline]
#[allow(unsafe_code)]
pub fn dense_blocks4<S: RowStride>(x: &[i8], w: &[i8], x_offset: i32, init: &[i32], out: &mut [i32], blocks: usize) {
    let groups = S::BYTES / 4;
    let fits = const { 3 * S::BYTES + 3 <= MAX_OFFSET };
    let rows = 4 * blocks;
    if !fits
        || groups == 0
        || blocks == 0
        || x.len() < S::BYTES
        || init.len() < rows
        || out.len() < rows
        || w.len() < rows * S::BYTES
        || !OFFSETS.contains(&x_offset)
    {
        portable::dense_blocks4::<S>(x, w, x_offset, init, out, blocks);
        return;
    }
    // SAFETY: the lengths checked above are the ones `blocks4` reads and writes.
    unsafe { blocks4::<S>(x.as_ptr(), w.as_ptr(), offset_pair(x_offset), init.as_ptr(), out.as_mut_ptr(), blocks) }
}

/// [`portable::dense_blocks4_array`], the blocks in [`dense_blocks4`]'s assembly written
/// straight into the new array (no copy of `init` first) when `O` is a multiple of four.
#[cfg(tinytrain_dsp)]
#[must_use]
#[inline]
#[allow(unsafe_code)]
pub fn dense_blocks4_array<S: RowStride, const O: usize>(
    x: &[i8],
    w: &[i8],
    x_offset: i32,
    init: &[i32; O],
) -> [i32; O] {
    let fits = const { 3 * S::BYTES + 3 <= MAX_OFFSET && S::BYTES >= 4 && O >= 4 && O.is_multiple_of(4) };
    if !fits || x.len() < S::BYTES || w.len() < O * S::BYTES || !OFFSETS.contains(&x_offset) {
        return portable::dense_blocks4_array::<S, O>(x, w, x_offset, init);
    }
    let mut acc = core::mem::MaybeUninit::<[i32; O]>::uninit();
    // SAFETY: O / 4 blocks of S::BYTES-byte rows: S::BYTES <= x.len() bytes of x, O * S::BYTES
    // <= w.len() of w, O words of init read; all O words of acc written, so it is initialised.
    unsafe {
        blocks4::<S>(x.as_ptr(), w.as_ptr(), offset_pair(x_offset), init.as_ptr(), acc.as_mut_ptr().cast(), O / 4);
        acc.assume_init()
    }
}

/// The block loop of [`dense_blocks4`] (`blocks >= 1`, `S::BYTES >= 4`, `3 * S::BYTES + 3 <=
/// 4095`, `offset` an [`offset_pair`]).
///
/// # Safety
/// `x` readable for `S::BYTES / 4 * 4` bytes, `w` for `4 * blocks * S::BYTES` bytes, `init`
/// for `4 * blocks` words and `out` writable for as many.
#[cfg(tinytrain_dsp)]
#[inline]
#[allow(unsafe_code)]
unsafe fn blocks4<S: RowStride>(
    x: *const i8,
    w: *const i8,
    offset: u32,
    init: *const i32,
    out: *mut i32,
    blocks: usize,
) {
    // SAFETY: reads and writes what the caller vouches for. The registers are named so that
    // the ones LDR and STR address with an immediate are low (16-bit encodings) and the
    // accumulators ascend (LDM, STM); x, init, out and the block count wait in 16 bytes of
    // stack the loop frees before the end, the weight pointer and the offset stay in r1, r5.
    unsafe {
        core::arch::asm!(
            // [sp]: x, [sp, #4]: init, [sp, #8]: out, [sp, #12]: blocks left.
            "push {{r0, r2, r3, r4}}",
            "2:",
            "ldr r2, [sp, #4]",
            "ldm r2!, {{r8, r9, r10, r11}}",
            "str r2, [sp, #4]",
            "ldr r0, [sp]",
            // 16-bit encodings where the immediates fit eight bits.
            ".if {groups} < 256",
            "movs r3, #{groups}",
            ".else",
            "mov r3, #{groups}",
            ".endif",
            "3:",
            "ldr r12, [r0], #4",
            "sxtab16 r4, r5, r12",
            "sxtab16 r12, r5, r12, ror #8",
            "ldr r2, [r1, #{s1}]",
            "sxtb16 lr, r2",
            "sxtb16 r2, r2, ror #8",
            "smlad r9, lr, r4, r9",
            "smlad r9, r2, r12, r9",
            "ldr r2, [r1, #{s2}]",
            "sxtb16 lr, r2",
            "sxtb16 r2, r2, ror #8",
            "smlad r10, lr, r4, r10",
            "smlad r10, r2, r12, r10",
            "ldr r2, [r1, #{s3}]",
            "sxtb16 lr, r2",
            "sxtb16 r2, r2, ror #8",
            "smlad r11, lr, r4, r11",
            "smlad r11, r2, r12, r11",
            "ldr r2, [r1], #4",
            "sxtb16 lr, r2",
            "sxtb16 r2, r2, ror #8",
            "smlad r8, lr, r4, r8",
            "smlad r8, r2, r12, r8",
            "subs r3, r3, #1",
            "bne 3b",
            // The next block starts three rows (and the inputs past the groups) further on.
            ".if {s4} < 256",
            "adds r1, r1, #{s4}",
            ".else",
            "add r1, r1, #{s4}",
            ".endif",
            "ldr r2, [sp, #8]",
            "stm r2!, {{r8, r9, r10, r11}}",
            "str r2, [sp, #8]",
            "ldr r2, [sp, #12]",
            "subs r2, r2, #1",
            "str r2, [sp, #12]",
            "bne 2b",
            "add sp, sp, #16",
            inout("r0") x => _,
            inout("r1") w => _,
            inout("r2") init => _,
            inout("r3") out => _,
            inout("r4") blocks => _,
            in("r5") offset,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
            out("r12") _,
            out("lr") _,
            groups = const if 3 * S::BYTES + 3 <= MAX_OFFSET { S::BYTES / 4 } else { 1 },
            s1 = const if 3 * S::BYTES + 3 <= MAX_OFFSET { S::BYTES } else { 0 },
            s2 = const if 3 * S::BYTES + 3 <= MAX_OFFSET { 2 * S::BYTES } else { 0 },
            s3 = const if 3 * S::BYTES + 3 <= MAX_OFFSET { 3 * S::BYTES } else { 0 },
            s4 = const if 3 * S::BYTES + 3 <= MAX_OFFSET { 3 * S::BYTES + S::BYTES % 4 } else { 0 },
        );
    }
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

/// [`dot_row1`] with four inputs per iteration: half its code for one more loop branch per
/// eight inputs (for layers of a few rows, where the code outweighs the instructions).
#[cfg(tinytrain_dsp)]
#[must_use]
#[inline]
#[allow(unsafe_code)]
pub fn dot_row1_small(x: &[i8], w: &[i8], x_offset: i32, init: i32) -> i32 {
    let n = x.len();
    let groups = n / 4;
    if groups == 0 || w.len() < n || !OFFSETS.contains(&x_offset) {
        return portable::dot_row1(x, w, x_offset, init);
    }
    let mut acc = init;
    let (mut xp, mut wp, mut count) = (x.as_ptr(), w.as_ptr(), groups);
    // SAFETY: reads 4 * groups <= n bytes from x and from w (w.len() >= n).
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
    let done = groups * 4;
    portable::dot_row1(&x[done..], &w[done..], x_offset, acc)
}

/// Two weight rows against a [`ColumnPair`] buffer ([`portable::mat_2x2`] elsewhere):
/// `init` plus `[row 0 · column 0, row 0 · column 1, row 1 · column 0, row 1 · column 1]`.
/// The assembly takes the groups of four taps; the rest is the portable code's. When the rows
/// are `n` taps long (`n == S::BYTES`, a convolution's filter) with at most
/// [`UNROLLED_GROUPS`] groups, the groups are unrolled
/// (`.rept`, no loop counter) and each column pair comes in one `LDRD`: 16 instructions per
/// 16 multiply-adds; otherwise a loop of 20. Runs the portable loop when `cols` holds fewer
/// than `n` words, `w` fewer than `S::BYTES + n` bytes or `S::BYTES > 4095`.
#[cfg(tinytrain_dsp)]
#[must_use]
#[inline]
#[allow(unsafe_code, clippy::too_many_lines)] // the unrolled and the looped kernel, side by side
pub fn mat_2x2<S: RowStride>(cols: &[u32], w: &[i8], n: usize, init: [i32; 4]) -> [i32; 4] {
    let fits = const { S::BYTES <= MAX_OFFSET };
    let groups = n / 4;
    if !fits || groups == 0 || cols.len() < n || w.len() < S::BYTES + n {
        return portable::mat_2x2::<S>(cols, w, n, init);
    }
    let [mut a00, mut a01, mut a10, mut a11] = init;
    let (mut cp, mut wp) = (cols.as_ptr(), w.as_ptr());
    let unrolled = const { S::BYTES / 4 <= UNROLLED_GROUPS };
    if unrolled && n == S::BYTES {
        // SAFETY: as below, for exactly S::BYTES / 4 = groups groups; LDRD needs the word
        // alignment a `[u32]` has.
        unsafe {
            core::arch::asm!(
                ".rept {groups}",
                "ldr {w1b}, [{wp}, #{s1}]",
                "sxtb16 {w1a}, {w1b}",
                "sxtb16 {w1b}, {w1b}, ror #8",
                "ldr {w0b}, [{wp}], #4",
                "sxtb16 {w0a}, {w0b}",
                "sxtb16 {w0b}, {w0b}, ror #8",
                "ldrd {x0}, {x1}, [{cp}], #8",
                "smlad {a00}, {w0a}, {x0}, {a00}",
                "smlad {a10}, {w1a}, {x0}, {a10}",
                "smlad {a00}, {w0b}, {x1}, {a00}",
                "smlad {a10}, {w1b}, {x1}, {a10}",
                "ldrd {x0}, {x1}, [{cp}], #8",
                "smlad {a01}, {w0a}, {x0}, {a01}",
                "smlad {a11}, {w1a}, {x0}, {a11}",
                "smlad {a01}, {w0b}, {x1}, {a01}",
                "smlad {a11}, {w1b}, {x1}, {a11}",
                ".endr",
                cp = inout(reg) cp,
                wp = inout(reg) wp,
                x0 = out(reg) _,
                x1 = out(reg) _,
                w0a = out(reg) _,
                w0b = out(reg) _,
                w1a = out(reg) _,
                w1b = out(reg) _,
                a00 = inout(reg) a00,
                a01 = inout(reg) a01,
                a10 = inout(reg) a10,
                a11 = inout(reg) a11,
                groups = const if S::BYTES / 4 <= UNROLLED_GROUPS { S::BYTES / 4 } else { 1 },
                s1 = const if S::BYTES <= MAX_OFFSET { S::BYTES } else { 0 },
                options(pure, readonly, nostack, preserves_flags),
            );
        }
    } else {
        let mut count = groups;
        // SAFETY: reads 4 * groups <= n words from cols and 4 * groups <= n bytes of each row
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
        let _ = count;
    }
    let _ = (cp, wp);
    let n4 = groups * 4;
    if n4 == n {
        return [a00, a01, a10, a11];
    }
    // The taps after the last group: plain values after the groups.
    let mut acc = [a00, a01, a10, a11];
    for (r, row) in [&w[n4..n], &w[S::BYTES + n4..S::BYTES + n]].into_iter().enumerate() {
        for (j, &wv) in row.iter().enumerate() {
            for c in 0..2 {
                let xv = ColumnPair::get(cols, n, c, n4 + j);
                acc[r * 2 + c] = acc[r * 2 + c].wrapping_add(i32::from(wv) * i32::from(xv));
            }
        }
    }
    acc
}

/// [`portable::widen_rows`]: per group of four taps one load, two `SXTAB16` and one `STRD`
/// (five instructions with the loop's when groups come in pairs, six otherwise). Runs the portable loop when `src` or `dst` is too short,
/// `c` is not 0 or 1, or `offset` is outside [`OFFSETS`].
#[cfg(tinytrain_dsp)]
#[inline]
#[allow(unsafe_code)]
pub fn widen_rows(src: &[i8], stride: usize, rows: usize, groups: usize, offset: i32, dst: &mut [u32], c: usize) {
    let needed_src = rows.checked_sub(1).and_then(|r| r.checked_mul(stride)).and_then(|b| b.checked_add(4 * groups));
    let fits = needed_src.is_some_and(|b| b <= src.len())
        && rows.checked_mul(groups).is_some_and(|w| w.checked_mul(4).is_some_and(|w| w <= dst.len()))
        && c < 2
        && rows > 0
        && groups > 0
        && stride >= 4 * groups
        && OFFSETS.contains(&offset);
    if !fits {
        portable::widen_rows(src, stride, rows, groups, offset, dst, c);
        return;
    }
    let (mut sp, mut dp, mut r) = (src.as_ptr(), dst.as_mut_ptr().wrapping_add(2 * c), rows);
    if groups.is_multiple_of(2) {
        // SAFETY: as below; two groups per iteration.
        unsafe {
            core::arch::asm!(
                "2:",
                "mov {g}, {pairs}",
                "3:",
                "ldr {t}, [{sp}], #4",
                "sxtab16 {e}, {off}, {t}",
                "sxtab16 {t}, {off}, {t}, ror #8",
                "strd {e}, {t}, [{dp}], #16",
                "ldr {t}, [{sp}], #4",
                "sxtab16 {e}, {off}, {t}",
                "sxtab16 {t}, {off}, {t}, ror #8",
                "strd {e}, {t}, [{dp}], #16",
                "subs {g}, {g}, #1",
                "bne 3b",
                "add {sp}, {sp}, {skip}",
                "subs {r}, {r}, #1",
                "bne 2b",
                sp = inout(reg) sp,
                dp = inout(reg) dp,
                r = inout(reg) r,
                g = out(reg) _,
                pairs = in(reg) groups / 2,
                skip = in(reg) stride - 4 * groups,
                off = in(reg) offset_pair(offset),
                t = out(reg) _,
                e = out(reg) _,
                options(nostack),
            );
        }
    } else {
        // SAFETY: reads rows - 1 strides plus 4 * groups bytes from src and writes words 4k +
        // 2c and 4k + 2c + 1 for k < rows * groups, inside dst (checked above; `dst` is a
        // `[u32]`, aligned for STRD).
        unsafe {
            core::arch::asm!(
                "2:",
                "mov {g}, {groups}",
                "3:",
                "ldr {t}, [{sp}], #4",
                "sxtab16 {e}, {off}, {t}",
                "sxtab16 {t}, {off}, {t}, ror #8",
                "strd {e}, {t}, [{dp}], #16",
                "subs {g}, {g}, #1",
                "bne 3b",
                "add {sp}, {sp}, {skip}",
                "subs {r}, {r}, #1",
                "bne 2b",
                sp = inout(reg) sp,
                dp = inout(reg) dp,
                r = inout(reg) r,
                g = out(reg) _,
                groups = in(reg) groups,
                skip = in(reg) stride - 4 * groups,
                off = in(reg) offset_pair(offset),
                t = out(reg) _,
                e = out(reg) _,
                options(nostack),
            );
        }
    }
    let _ = (sp, dp, r);
}

/// `dst.copy_from_slice(src)` for equal lengths (else the shorter length): on `thumbv7em` two
/// words per iteration with plain `LDR`/`STR` (unaligned access is allowed on the M4), three
/// instructions per word, where `memcpy`'s call and alignment checks cost some two hundred
/// instructions for a 40-byte image row.
#[inline]
#[allow(unsafe_code)]
pub fn copy_bytes(src: &[i8], dst: &mut [i8]) {
    let n = src.len().min(dst.len());
    let (src, dst) = (&src[..n], &mut dst[..n]);
    #[cfg(tinytrain_dsp)]
    {
        let pairs = n / 8;
        if pairs > 0 {
            let (mut sp, mut dp, mut count) = (src.as_ptr(), dst.as_mut_ptr(), pairs);
            // SAFETY: reads and writes 8 * pairs <= n bytes of src and dst, which do not
            // overlap (a shared and a mutable borrow).
            unsafe {
                core::arch::asm!(
                    "2:",
                    "ldr {a}, [{sp}], #4",
                    "ldr {b}, [{sp}], #4",
                    "str {a}, [{dp}], #4",
                    "str {b}, [{dp}], #4",
                    "subs {n}, {n}, #1",
                    "bne 2b",
                    sp = inout(reg) sp,
                    dp = inout(reg) dp,
                    n = inout(reg) count,
                    a = out(reg) _,
                    b = out(reg) _,
                    options(nostack),
                );
            }
            let _ = (sp, dp, count);
            let done = pairs * 8;
            for (d, &v) in dst[done..].iter_mut().zip(&src[done..]) {
                *d = v;
            }
            return;
        }
    }
    dst.copy_from_slice(src);
}

/// Most groups of four taps [`widen_window`] unrolls.
pub const UNROLLED_WINDOW: usize = 64;

/// [`widen_rows`] for a window known at compile time: `S::ROWS` rows of `S::GROUPS` groups.
/// Up to [`UNROLLED_WINDOW`] groups in all it is unrolled (`.rept`): four instructions per
/// group and one per row, no loop.
#[inline]
#[allow(unsafe_code)]
pub fn widen_window<S: Window>(src: &[i8], stride: usize, offset: i32, dst: &mut [u32], c: usize) {
    #[cfg(tinytrain_dsp)]
    {
        let (rows, groups) = (S::ROWS, S::GROUPS);
        let unrolled = const { S::ROWS * S::GROUPS <= UNROLLED_WINDOW && S::ROWS > 0 && S::GROUPS > 0 };
        let fits = (rows - 1).checked_mul(stride).is_some_and(|b| b + 4 * groups <= src.len())
            && rows * groups * 4 <= dst.len()
            && c < 2
            && stride >= 4 * groups
            && OFFSETS.contains(&offset);
        if unrolled && fits {
            let (mut sp, mut dp) = (src.as_ptr(), dst.as_mut_ptr().wrapping_add(2 * c));
            // SAFETY: as in widen_rows, for S::ROWS rows of S::GROUPS groups (checked above).
            unsafe {
                core::arch::asm!(
                    ".rept {rows}",
                    ".rept {groups}",
                    "ldr {t}, [{sp}], #4",
                    "sxtab16 {e}, {off}, {t}",
                    "sxtab16 {t}, {off}, {t}, ror #8",
                    "strd {e}, {t}, [{dp}], #16",
                    ".endr",
                    "add {sp}, {sp}, {skip}",
                    ".endr",
                    sp = inout(reg) sp,
                    dp = inout(reg) dp,
                    skip = in(reg) stride - 4 * groups,
                    off = in(reg) offset_pair(offset),
                    t = out(reg) _,
                    e = out(reg) _,
                    rows = const if S::ROWS * S::GROUPS <= UNROLLED_WINDOW { S::ROWS } else { 1 },
                    groups = const if S::ROWS * S::GROUPS <= UNROLLED_WINDOW { S::GROUPS } else { 1 },
                    options(nostack, preserves_flags),
                );
            }
            let _ = (sp, dp);
            return;
        }
    }
    widen_rows(src, stride, S::ROWS, S::GROUPS, offset, dst, c);
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
            let mut cols = [0u32; 80];
            for (c, x) in xs.iter().enumerate() {
                for (p, &v) in x.iter().take(n).enumerate() {
                    ColumnPair::set(&mut cols, n, c, p, i16::from(v) + offset as i16);
                }
            }
            let got = portable::mat_2x2::<Stride<90>>(&cols[..n], &w, n, [0; 4]);
            let want = [
                portable::dot_row1(&xs[0][..n], &w, offset, 0),
                portable::dot_row1(&xs[1][..n], &w, offset, 0),
                portable::dot_row1(&xs[0][..n], &w[90..], offset, 0),
                portable::dot_row1(&xs[1][..n], &w[90..], offset, 0),
            ];
            assert_eq!(got, want, "n={n}");
            assert_eq!(mat_2x2::<Stride<90>>(&cols[..n], &w, n, [0; 4]), want);
        }
    }
}
