//! Cortex-M4F kernels in inline assembly (ARM hard-float targets only).
//!
//! Each kernel computes exactly what its portable counterpart computes, operation for
//! operation and in the same order, so the bits are the same; only the instructions differ.
//! The lever is register blocking: `vldm`/`vstm` move up to 32 registers in one instruction,
//! and `vmla.f32` is a chained multiply-accumulate (the product is rounded, then the sum:
//! exactly a separate `vmul` and `vadd`). No fused multiply-add (`vfma`) is used.
//!
//! The shapes are const generics, so every loop over a row is unrolled at assembly time: the
//! assembler's `.rept`/`.if` directives and `.altmacro` expressions (`%(k+8)`) compute the
//! register numbers from the `const` operands. Loops over rows stay loops. Every `.macro` is
//! removed again (`.purgem`) at the end of its block, since a kernel is emitted once per shape.
//!
//! Stable Rust cannot pass an `f32` in an FPU register to inline assembly on these targets
//! (the `vfp2` feature that the `sreg` class needs is not exposed), so every kernel reads and
//! writes its operands through memory and declares the FPU registers it uses as clobbered:
//! the compiler saves `s16`-`s31` (callee-saved) around the function that inlines it.
//!
//! The kernels are `#[inline(never)]`: LLVM sizes an inline-assembly block by its lines, not
//! by what `.rept` expands to, so a caller's constant pool placed after an inlined kernel
//! could end up out of reach of its `vldr` ("out of range pc-relative fixup value").
//!
//! Each kernel has an on-target test against the portable code (`firmware/tests/on_target.rs`)
//! with random data, remainders, negative zeros, subnormals, infinities and NaN.
#![allow(unsafe_code)]

use core::arch::asm;

/// Zeros, to clear up to 16 accumulators with one `vldm`.
static ZEROS: [f32; 16] = [0.0; 16];

/// Assembler macros shared by the kernels, defined at the start of each block:
/// - `ttf op, d, n, m`: `op.f32 s<d>, s<n>, s<m>` (`vmla`, `vadd`, `vmul`, ...);
/// - `ttld base, lo, hi` / `ttst base, lo, hi`: `vldmia`/`vstmia base!, {s<lo>-s<hi>}`;
/// - `ttmla d0, n0, m0, count`: `count` multiply-accumulates `s<d0+k> += s<n0+k> * s<m0+k>`;
/// - `ttmlas d0, n0, m, count`: `count` multiply-accumulates `s<d0+k> += s<n0+k> * s<m>`;
/// - `ttred a, d`: the fixed tree of [`super::dot`] over `s<a>`..`s<a+7>`, result in `s<d>`.
macro_rules! prelude {
    () => {
        concat!(
            ".altmacro\n",
            ".macro ttf op, d, n, m\n\\op\\().f32 s\\d, s\\n, s\\m\n.endm\n",
            ".macro ttld base, lo, hi\nvldmia \\base!, {{s\\lo-s\\hi}}\n.endm\n",
            ".macro ttst base, lo, hi\nvstmia \\base!, {{s\\lo-s\\hi}}\n.endm\n",
            ".macro ttmla d0, n0, m0, count\n.set ttk, 0\n.rept \\count\n",
            "ttf vmla, %(\\d0+ttk), %(\\n0+ttk), %(\\m0+ttk)\n.set ttk, ttk+1\n.endr\n.endm\n",
            ".macro ttmlas d0, n0, m, count\n.set ttk, 0\n.rept \\count\n",
            "ttf vmla, %(\\d0+ttk), %(\\n0+ttk), \\m\n.set ttk, ttk+1\n.endr\n.endm\n",
            ".macro ttred a, d\n",
            "ttf vadd, \\a, \\a, %(\\a+4)\n",
            "ttf vadd, %(\\a+1), %(\\a+1), %(\\a+5)\n",
            "ttf vadd, %(\\a+2), %(\\a+2), %(\\a+6)\n",
            "ttf vadd, %(\\a+3), %(\\a+3), %(\\a+7)\n",
            "ttf vadd, \\a, \\a, %(\\a+1)\n",
            "ttf vadd, %(\\a+2), %(\\a+2), %(\\a+3)\n",
            "ttf vadd, \\d, \\a, %(\\a+2)\n",
            ".endm\n",
        )
    };
}

/// Removes the macros of [`prelude`] and leaves `.altmacro` mode.
macro_rules! epilogue {
    () => {
        ".purgem ttf\n.purgem ttld\n.purgem ttst\n.purgem ttmla\n.purgem ttmlas\n.purgem ttred\n.noaltmacro\n"
    };
}

/// `asm!` with the kernels' macros around the template and every FPU register clobbered.
macro_rules! m4_asm {
    ($($template:literal),+ ; $($operands:tt)*) => {
        asm!(
            prelude!(),
            $($template,)+
            epilogue!(),
            $($operands)*
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            out("s16") _, out("s17") _, out("s18") _, out("s19") _,
            out("s20") _, out("s21") _, out("s22") _, out("s23") _,
            out("s24") _, out("s25") _, out("s26") _, out("s27") _,
            out("s28") _, out("s29") _, out("s30") _, out("s31") _,
            options(nostack),
        )
    };
}

/// `y = W x + b` for a `[O][I]` weight, summed exactly as [`super::dense_forward_portable`]:
/// rows in pairs (one load of `x` for both), each row in eight lane accumulators reduced in
/// the fixed tree of [`super::dot`], then the bias added.
///
/// Registers: `s0`-`s7` and `s8`-`s15` the lanes of the two rows, `s16`-`s23` a chunk of `x`,
/// `s24`-`s31` a chunk of a weight row. 19 instructions per 16 multiply-accumulates.
#[inline(never)]
pub(crate) fn dense_forward<const I: usize, const O: usize>(
    w: &[[f32; I]; O],
    x: &[f32; I],
    b: &[f32; O],
    y: &mut [f32; O],
) {
    // SAFETY: every access is inside the four arrays: rows are walked `I` floats at a time,
    // `O / 2` pairs and then one row when `O` is odd; `x` is read `I` floats from its start
    // for each row (the pointer is moved back after each); `b` and `y` are walked `O` floats.
    // All registers written are outputs or declared clobbered; the condition flags are
    // clobbered (no `preserves_flags`); no stack.
    unsafe {
        m4_asm!(
            // One chunk of `n` lanes for a pair of rows.
            ".macro ttpair n",
            "ttld {xp}, 16, %(16+\\n-1)",
            "ttld {w0}, 24, %(24+\\n-1)",
            "ttmla 0, 24, 16, \\n",
            "ttld {w1}, 24, %(24+\\n-1)",
            "ttmla 8, 24, 16, \\n",
            ".endm",
            // One chunk of `n` lanes for a single row.
            ".macro ttrow n",
            "ttld {xp}, 16, %(16+\\n-1)",
            "ttld {w0}, 24, %(24+\\n-1)",
            "ttmla 0, 24, 16, \\n",
            ".endm",
            // All chunks of a row (pair) with macro `m`: unrolled, or in groups of four.
            ".macro ttchunks m",
            ".if {chunks} <= 8",
            ".rept {chunks}",
            "\\m 8",
            ".endr",
            ".else",
            "movw {cnt}, #{groups}",
            "2:",
            "\\m 8",
            "\\m 8",
            "\\m 8",
            "\\m 8",
            "subs {cnt}, {cnt}, #1",
            "bne 2b",
            ".rept {left}",
            "\\m 8",
            ".endr",
            ".endif",
            ".if {rem} > 0",
            "\\m {rem}",
            ".endif",
            ".endm",
            ".if {pairs} > 0",
            "movw {rows}, #{pairs}",
            "1:",
            "vldmia {zp}, {{s0-s15}}",
            "add {w1}, {w0}, {ib}",
            "ttchunks ttpair",
            "sub {xp}, {xp}, {ib}",
            "ttred 0, 0",
            "ttred 8, 1",
            "vldmia {bp}!, {{s2-s3}}",
            "vadd.f32 s0, s0, s2",
            "vadd.f32 s1, s1, s3",
            "vstmia {yp}!, {{s0-s1}}",
            "mov {w0}, {w1}",
            "subs {rows}, {rows}, #1",
            "bne 1b",
            ".endif",
            ".if {odd}",
            "vldmia {zp}, {{s0-s7}}",
            "ttchunks ttrow",
            "ttred 0, 0",
            "vldmia {bp}!, {{s2}}",
            "vadd.f32 s0, s0, s2",
            "vstmia {yp}!, {{s0}}",
            ".endif",
            ".purgem ttpair",
            ".purgem ttrow",
            ".purgem ttchunks";
            xp = inout(reg) x.as_ptr() => _,
            w0 = inout(reg) w.as_ptr().cast::<f32>() => _,
            w1 = out(reg) _,
            bp = inout(reg) b.as_ptr() => _,
            yp = inout(reg) y.as_mut_ptr() => _,
            zp = in(reg) ZEROS.as_ptr(),
            ib = in(reg) I * 4,
            rows = out(reg) _,
            cnt = out(reg) _,
            pairs = const O / 2,
            odd = const O % 2,
            chunks = const I / 8,
            groups = const I / 32,
            left = const (I / 8) % 4,
            rem = const I % 8,
        );
    }
}
