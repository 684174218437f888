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
use core::arch::asm;

/// Zeros, to clear up to 32 accumulators with one `vldm`.
static ZEROS: [f32; 32] = [0.0; 32];

/// Assembler macros shared by the kernels, defined at the start of each block:
/// - `ttf op, d, n, m`: `op.f32 s<d>, s<n>, s<m>` (`vmla`, `vadd`, `vmul`, ...);
/// - `ttld base, lo, hi` / `ttst base, lo, hi`: `vldmia`/`vstmia base!, {s<lo>-s<hi>}`;
///   `ttldn`: `vldmia` without write-back;
/// - `ttmla d0, n0, m0, count`: `count` multiply-accumulates `s<d0+k> += s<n0+k> * s<m0+k>`;
/// - `ttmlas d0, m, n0, count`: `count` multiply-accumulates `s<d0+k> += s<m> * s<n0+k>`;
/// - `ttrepeat mac, c, n, r, cnt`: `n` times `mac c` then once `mac r` if `r > 0`: unrolled
///   when `n <= 8`, else a loop of four per iteration counting in register `cnt`;
/// - `ttstn base, lo, hi`: `vstmia` without write-back; `ttlddb base, lo, hi`:
///   `vldmdb base!, {s<lo>-s<hi>}`; `ttvldr n, base, off`:
///   `vldr s<n>, [base, #off]`;
/// - `ttaddi reg, imm, tmp` / `ttsubi reg, imm, tmp`: `reg += imm` / `reg -= imm` for any
///   `imm` below 65,536 (`addw`, or `movw` into `tmp` and a register add);
/// - `ttred a, d`: the fixed tree of [`super::dot`] over `s<a>`..`s<a+7>`, result in `s<d>`.
macro_rules! prelude {
    () => {
        concat!(
            ".altmacro\n",
            ".macro ttf op, d, n, m\n\\op\\().f32 s\\d, s\\n, s\\m\n.endm\n",
            ".macro ttld base, lo, hi\nvldmia \\base!, {{s\\lo-s\\hi}}\n.endm\n",
            ".macro ttst base, lo, hi\nvstmia \\base!, {{s\\lo-s\\hi}}\n.endm\n",
            ".macro ttldn base, lo, hi\nvldmia \\base, {{s\\lo-s\\hi}}\n.endm\n",
            ".macro ttstn base, lo, hi\nvstmia \\base, {{s\\lo-s\\hi}}\n.endm\n",
            ".macro ttlddb base, lo, hi\nvldmdb \\base!, {{s\\lo-s\\hi}}\n.endm\n",
            ".macro ttvldr n, base, off\nvldr s\\n, [\\base, #\\off]\n.endm\n",
            ".macro ttaddi reg, imm, tmp\n.if \\imm < 4096\naddw \\reg, \\reg, #\\imm\n.else\n",
            "movw \\tmp, #\\imm\nadd \\reg, \\reg, \\tmp\n.endif\n.endm\n",
            ".macro ttsubi reg, imm, tmp\n.if \\imm < 4096\nsubw \\reg, \\reg, #\\imm\n.else\n",
            "movw \\tmp, #\\imm\nsub \\reg, \\reg, \\tmp\n.endif\n.endm\n",
            ".macro ttmla d0, n0, m0, count\n.set ttk, 0\n.rept \\count\n",
            "ttf vmla, %(\\d0+ttk), %(\\n0+ttk), %(\\m0+ttk)\n.set ttk, ttk+1\n.endr\n.endm\n",
            ".macro ttmlas d0, m, n0, count\n.set ttk, 0\n.rept \\count\n",
            "ttf vmla, %(\\d0+ttk), \\m, %(\\n0+ttk)\n.set ttk, ttk+1\n.endr\n.endm\n",
            ".macro ttrepeat mac, c, n, r, cnt\n",
            ".if \\n <= 8\n.rept \\n\n\\mac \\c\n.endr\n",
            ".else\nmovw \\cnt, #((\\n) / 4)\n9:\n\\mac \\c\n\\mac \\c\n\\mac \\c\n\\mac \\c\n",
            "subs \\cnt, \\cnt, #1\nbne 9b\n.rept (\\n) - ((\\n) / 4) * 4\n\\mac \\c\n.endr\n.endif\n",
            ".if \\r > 0\n\\mac \\r\n.endif\n.endm\n",
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
        ".purgem ttf\n.purgem ttld\n.purgem ttst\n.purgem ttldn\n.purgem ttstn\n.purgem ttlddb\n.purgem ttvldr\n.purgem ttaddi\n.purgem ttsubi\n.purgem ttmla\n.purgem ttmlas\n.purgem ttrepeat\n.purgem ttred\n.noaltmacro\n"
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

pub(crate) mod conv;

/// `y = W x + b` for a `[O][I]` weight, summed exactly as [`super::dense_forward_portable`]:
/// rows in pairs (one load of `x` for both), each row in eight lane accumulators reduced in
/// the fixed tree of [`super::dot`], then the bias added.
///
/// Registers: `s0`-`s7` and `s8`-`s15` the lanes of the two rows, `s16`-`s23` a chunk of `x`,
/// `s24`-`s31` a chunk of a weight row. 19 instructions per 16 multiply-accumulates.
#[inline(never)]
#[allow(unsafe_code)]
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
            ".if {pairs} > 0",
            "movw {rows}, #{pairs}",
            "1:",
            "vldmia {zp}, {{s0-s15}}",
            "add {w1}, {w0}, {ib}",
            "ttrepeat ttpair, 8, {chunks}, {rem}, {cnt}",
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
            "ttrepeat ttrow, 8, {chunks}, {rem}, {cnt}",
            "ttred 0, 0",
            "vldmia {bp}!, {{s2}}",
            "vadd.f32 s0, s0, s2",
            "vstmia {yp}!, {{s0}}",
            ".endif",
            ".purgem ttpair",
            ".purgem ttrow";
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
            rem = const I % 8,
        );
    }
}

/// The weight and bias gradients of a dense layer, as [`super::dense_grads_portable`]:
/// `gb[o] += dy[o]`, and `gw[o] += dy[o] * x` for the rows whose `dy[o]` is not zero.
///
/// Registers: `s0` the row's `dy`, `s1`-`s15` a chunk of the gradient row, `s17`-`s31` the
/// same chunk of `x`. 18 instructions per 15 multiply-accumulates.
#[inline(never)]
#[allow(unsafe_code)]
pub(crate) fn dense_grads<const I: usize, const O: usize>(
    x: &[f32; I],
    dy: &[f32; O],
    gw: &mut [[f32; I]; O],
    gb: &mut [f32; O],
) {
    // SAFETY: `dy`, `gb` are walked `O` floats, `gw` `O` rows of `I` (skipped rows move the
    // pointer by a row), `x` is read `I` floats from its start for each row (moved back after
    // each). All registers written are outputs or clobbered; flags clobbered; no stack.
    unsafe {
        m4_asm!(
            ".macro ttgrow n",
            "ttld {xp}, 17, %(17+\\n-1)",
            "ttldn {gwp}, 1, \\n",
            "ttmlas 1, 0, 17, \\n",
            "ttst {gwp}, 1, \\n",
            ".endm",
            "movw {rows}, #{o}",
            "1:",
            "vldmia {dp}!, {{s0}}",
            "vldmia {gbp}, {{s1}}",
            "vadd.f32 s1, s1, s0",
            "vstmia {gbp}!, {{s1}}",
            // `dy` is zero (of either sign) when its bits without the sign are.
            "vmov {t}, s0",
            "lsls {t}, {t}, #1",
            "beq 3f",
            "ttrepeat ttgrow, 15, {chunks}, {rem}, {t}",
            "sub {xp}, {xp}, {ib}",
            "2:",
            "subs {rows}, {rows}, #1",
            "bne 1b",
            "b 4f",
            "3:",
            "add {gwp}, {gwp}, {ib}",
            "b 2b",
            "4:",
            ".purgem ttgrow";
            xp = inout(reg) x.as_ptr() => _,
            dp = inout(reg) dy.as_ptr() => _,
            gwp = inout(reg) gw.as_mut_ptr().cast::<f32>() => _,
            gbp = inout(reg) gb.as_mut_ptr() => _,
            ib = in(reg) I * 4,
            rows = out(reg) _,
            t = out(reg) _,
            o = const O,
            chunks = const I / 15,
            rem = const I % 15,
        );
    }
}

/// The input gradient of a dense layer, as [`super::dense_input_grad_portable`]:
/// `dx = W^T dy`, each `dx[i]` summed from `+0.0` over the rows in order.
///
/// Columns in blocks of 15 kept in `s1`-`s15` over all rows; `s0` the row's `dy`, `s16`-`s30`
/// the block of the weight row. 18 instructions per 15 multiply-accumulates.
#[inline(never)]
#[allow(unsafe_code)]
pub(crate) fn dense_input_grad<const I: usize, const O: usize>(w: &[[f32; I]; O], dy: &[f32; O], dx: &mut [f32; I]) {
    // SAFETY: for each block of columns the weight pointer visits the block in each of the
    // `O` rows (stride `I` floats) and is moved back to the next block; `dy` is read `O`
    // floats from its start per block; `dx` is written `I` floats. All registers written are
    // outputs or clobbered; flags clobbered; no stack.
    unsafe {
        m4_asm!(
            // One row of a block of `n` columns.
            ".macro ttirow n",
            "vldmia {dp}!, {{s0}}",
            "ttldn {wp}, 16, %(16+\\n-1)",
            "add {wp}, {wp}, {ib}",
            "ttmlas 1, 0, 16, \\n",
            ".endm",
            // A block of `n` columns: all rows, then the block stored.
            ".macro ttiblock n",
            "vldmia {zp}, {{s1-s15}}",
            "mov {dp}, {dy}",
            ".if {pairs} > 0",
            "movw {rows}, #{pairs}",
            "5:",
            "ttirow \\n",
            "ttirow \\n",
            "subs {rows}, {rows}, #1",
            "bne 5b",
            ".endif",
            ".if {odd}",
            "ttirow \\n",
            ".endif",
            "ttst {dxp}, 1, \\n",
            "sub {wp}, {wp}, {ob}",
            "add {wp}, {wp}, #4 * \\n",
            ".endm",
            ".if {blocks} > 0",
            "movw {cnt}, #{blocks}",
            "1:",
            "ttiblock 15",
            "subs {cnt}, {cnt}, #1",
            "bne 1b",
            ".endif",
            ".if {rem} > 0",
            "ttiblock {rem}",
            ".endif",
            ".purgem ttirow",
            ".purgem ttiblock";
            wp = inout(reg) w.as_ptr().cast::<f32>() => _,
            dy = in(reg) dy.as_ptr(),
            dp = out(reg) _,
            dxp = inout(reg) dx.as_mut_ptr() => _,
            zp = in(reg) ZEROS.as_ptr(),
            ib = in(reg) I * 4,
            ob = in(reg) O * I * 4,
            rows = out(reg) _,
            cnt = out(reg) _,
            pairs = const O / 2,
            odd = const O % 2,
            blocks = const I / 15,
            rem = const I % 15,
        );
    }
}

/// One Adam update, as [`super::adam_update_portable`]: the eleven operations of each
/// parameter in the same order, six parameters per block (`p` in `s0`-`s5`, `g` in `s6`-`s11`,
/// `m` in `s12`-`s17`, `v` in `s18`-`s23`; the coefficients in `s25`-`s31`): four loads, three
/// stores and 66 operations per block, then the last up to five parameters one at a time.
#[inline(never)]
#[allow(unsafe_code)]
pub(crate) fn adam_update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: &super::AdamUpdate) {
    let n = p.len().min(g.len()).min(m.len()).min(v.len());
    // SAFETY: the four pointers are walked `n` floats each (`n / 6` blocks of six, then
    // `n % 6` single values), `n` being the shortest length; `c` is `repr(C)` with seven
    // `f32` fields, read with one `vldm` of seven registers. All registers written are outputs
    // or clobbered; flags clobbered; no stack.
    unsafe {
        m4_asm!(
            // The update of one parameter in registers p, g, m, v (`g` is overwritten).
            ".macro ttadam1 p, g, m, v",
            "ttf vmul, \\m, 25, \\m",
            "ttf vmla, \\m, 26, \\g",
            "ttf vmul, \\v, 27, \\v",
            "ttf vmul, \\g, \\g, \\g",
            "ttf vmla, \\v, 28, \\g",
            "vsqrt.f32 s\\g, s\\v",
            "ttf vmul, \\g, \\g, 29",
            "ttf vadd, \\g, \\g, 30",
            "ttf vdiv, \\g, \\m, \\g",
            "ttf vmul, \\g, 31, \\g",
            "ttf vsub, \\p, \\p, \\g",
            ".endm",
            // A block of `n` parameters.
            ".macro ttadam n",
            "ttldn {pp}, 0, %(\\n-1)",
            "ttld {gp}, 6, %(6+\\n-1)",
            "ttldn {mp}, 12, %(12+\\n-1)",
            "ttldn {vp}, 18, %(18+\\n-1)",
            ".set tta, 0",
            ".rept \\n",
            "ttadam1 %(tta), %(6+tta), %(12+tta), %(18+tta)",
            ".set tta, tta+1",
            ".endr",
            "ttst {pp}, 0, %(\\n-1)",
            "ttst {mp}, 12, %(12+\\n-1)",
            "ttst {vp}, 18, %(18+\\n-1)",
            ".endm",
            "vldmia {cp}, {{s25-s31}}",
            "cmp {blocks}, #0",
            "beq 2f",
            "1:",
            "ttadam 6",
            "subs {blocks}, {blocks}, #1",
            "bne 1b",
            "2:",
            "cmp {rest}, #0",
            "beq 4f",
            "3:",
            "ttadam 1",
            "subs {rest}, {rest}, #1",
            "bne 3b",
            "4:",
            ".purgem ttadam1",
            ".purgem ttadam";
            pp = inout(reg) p.as_mut_ptr() => _,
            gp = inout(reg) g.as_ptr() => _,
            mp = inout(reg) m.as_mut_ptr() => _,
            vp = inout(reg) v.as_mut_ptr() => _,
            cp = in(reg) core::ptr::from_ref(c),
            blocks = inout(reg) n / 6 => _,
            rest = inout(reg) n % 6 => _,
        );
    }
}

/// `true` when every element is finite, as [`super::all_finite_portable`] decides it: each
/// element times zero is added into one of seven lanes (zero for a finite element, NaN for an
/// infinity or NaN), and the lanes' sum compared with zero. Blocks of 24 elements in
/// `s8`-`s31`, lanes in `s0`-`s6`, the zero in `s7`: 25 instructions per 24 elements.
#[inline(never)]
#[allow(unsafe_code)]
pub(crate) fn all_finite(x: &[f32]) -> bool {
    let ok: u32;
    // SAFETY: `x` is read `x.len()` floats from its start (blocks of 24, then single values).
    // All registers written are outputs or clobbered; flags clobbered; no stack.
    unsafe {
        m4_asm!(
            "vldmia {zp}, {{s0-s7}}",
            "cmp {blocks}, #0",
            "beq 2f",
            "1:",
            "vldmia {xp}!, {{s8-s31}}",
            ".set ttk, 0",
            ".rept 24",
            "ttf vmla, %(ttk-(ttk/7)*7), %(8+ttk), 7",
            ".set ttk, ttk+1",
            ".endr",
            "subs {blocks}, {blocks}, #1",
            "bne 1b",
            "2:",
            "cmp {rest}, #0",
            "beq 4f",
            "3:",
            "vldmia {xp}!, {{s8}}",
            "vmla.f32 s0, s8, s7",
            "subs {rest}, {rest}, #1",
            "bne 3b",
            "4:",
            "vadd.f32 s0, s0, s1",
            "vadd.f32 s2, s2, s3",
            "vadd.f32 s4, s4, s5",
            "vadd.f32 s0, s0, s6",
            "vadd.f32 s2, s2, s4",
            "vadd.f32 s0, s0, s2",
            "vcmp.f32 s0, #0",
            "vmrs APSR_nzcv, fpscr",
            "ite eq",
            "moveq {ok}, #1",
            "movne {ok}, #0";
            xp = inout(reg) x.as_ptr() => _,
            zp = in(reg) ZEROS.as_ptr(),
            blocks = inout(reg) x.len() / 24 => _,
            rest = inout(reg) x.len() % 24 => _,
            ok = out(reg) ok,
        );
    }
    ok != 0
}

/// Sets every element to `+0.0`: one `vstm` of 16 zeros per 16 elements.
#[inline(never)]
#[allow(unsafe_code)]
pub(crate) fn fill_zero(x: &mut [f32]) {
    // SAFETY: `x` is written `x.len()` floats from its start (blocks of 16, then single
    // values). All registers written are outputs or clobbered; flags clobbered; no stack.
    unsafe {
        m4_asm!(
            "vldmia {zp}, {{s0-s15}}",
            "cmp {blocks}, #0",
            "beq 2f",
            "1:",
            "vstmia {xp}!, {{s0-s15}}",
            "subs {blocks}, {blocks}, #1",
            "bne 1b",
            "2:",
            "cmp {rest}, #0",
            "beq 4f",
            "3:",
            "vstmia {xp}!, {{s0}}",
            "subs {rest}, {rest}, #1",
            "bne 3b",
            "4:";
            xp = inout(reg) x.as_mut_ptr() => _,
            zp = in(reg) ZEROS.as_ptr(),
            blocks = inout(reg) x.len() / 16 => _,
            rest = inout(reg) x.len() % 16 => _,
        );
    }
}

/// ReLU, as [`super::relu_portable`]: `y = x` where `x > 0`, else `+0.0` (NaN included),
/// eight elements per block: a compare, a flag transfer and a conditional move each.
#[inline(never)]
#[allow(unsafe_code)]
pub(crate) fn relu(x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    // SAFETY: `x` is read and `y` written `n` floats from their starts (blocks of 8, then
    // single values). All registers written are outputs or clobbered; flags clobbered; no
    // stack.
    unsafe {
        m4_asm!(
            // `s<k>` = 0 unless it is greater than zero (`le` holds for unordered too).
            ".macro ttrelu k",
            "vcmp.f32 s\\k, #0",
            "vmrs APSR_nzcv, fpscr",
            "it le",
            "vmovle.f32 s\\k, s31",
            ".endm",
            "vldmia {zp}, {{s31}}",
            "cmp {blocks}, #0",
            "beq 2f",
            "1:",
            "vldmia {xp}!, {{s0-s7}}",
            ".set ttk, 0",
            ".rept 8",
            "ttrelu %(ttk)",
            ".set ttk, ttk+1",
            ".endr",
            "vstmia {yp}!, {{s0-s7}}",
            "subs {blocks}, {blocks}, #1",
            "bne 1b",
            "2:",
            "cmp {rest}, #0",
            "beq 4f",
            "3:",
            "vldmia {xp}!, {{s0}}",
            "ttrelu 0",
            "vstmia {yp}!, {{s0}}",
            "subs {rest}, {rest}, #1",
            "bne 3b",
            "4:",
            ".purgem ttrelu";
            xp = inout(reg) x.as_ptr() => _,
            yp = inout(reg) y.as_mut_ptr() => _,
            zp = in(reg) ZEROS.as_ptr(),
            blocks = inout(reg) n / 8 => _,
            rest = inout(reg) n % 8 => _,
        );
    }
}

/// The ReLU's input gradient, as [`super::relu_backward_portable`]: `dx = dy · 1` where
/// `x > 0`, else `dy · 0` (a signed zero, or NaN for an infinite `dy`). The multiplication
/// by one is left out: it returns `dy` unchanged (a NaN keeps its NaN-ness).
#[inline(never)]
#[allow(unsafe_code)]
pub(crate) fn relu_backward(x: &[f32], dy: &[f32], dx: &mut [f32]) {
    let n = x.len().min(dy.len()).min(dx.len());
    // SAFETY: `x` and `dy` are read and `dx` written `n` floats from their starts (blocks of
    // 8, then single values). All registers written are outputs or clobbered; flags
    // clobbered; no stack.
    unsafe {
        m4_asm!(
            // `s<d>` times zero unless `s<k>` is greater than zero.
            ".macro ttdrelu k, d",
            "vcmp.f32 s\\k, #0",
            "vmrs APSR_nzcv, fpscr",
            "it le",
            "vmulle.f32 s\\d, s\\d, s31",
            ".endm",
            "vldmia {zp}, {{s31}}",
            "cmp {blocks}, #0",
            "beq 2f",
            "1:",
            "vldmia {xp}!, {{s0-s7}}",
            "vldmia {dyp}!, {{s8-s15}}",
            ".set ttk, 0",
            ".rept 8",
            "ttdrelu %(ttk), %(8+ttk)",
            ".set ttk, ttk+1",
            ".endr",
            "vstmia {dxp}!, {{s8-s15}}",
            "subs {blocks}, {blocks}, #1",
            "bne 1b",
            "2:",
            "cmp {rest}, #0",
            "beq 4f",
            "3:",
            "vldmia {xp}!, {{s0}}",
            "vldmia {dyp}!, {{s8}}",
            "ttdrelu 0, 8",
            "vstmia {dxp}!, {{s8}}",
            "subs {rest}, {rest}, #1",
            "bne 3b",
            "4:",
            ".purgem ttdrelu";
            xp = inout(reg) x.as_ptr() => _,
            dyp = inout(reg) dy.as_ptr() => _,
            dxp = inout(reg) dx.as_mut_ptr() => _,
            zp = in(reg) ZEROS.as_ptr(),
            blocks = inout(reg) n / 8 => _,
            rest = inout(reg) n % 8 => _,
        );
    }
}
