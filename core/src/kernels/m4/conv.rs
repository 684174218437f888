//! Cortex-M4F kernels of [`Conv2d`](crate::layers::Conv2d) without padding (`P = 0`), with
//! the summation order of its portable code.
//!
//! Register tiles: the forward pass computes `B` output channels × `T` output columns of
//! every output row in registers, loading for each input channel and kernel row the `x`
//! values under the tile (one `vldm`) and each channel's `K` weights (one `vldm`), then
//! `B·K·T` multiply-accumulates.

use super::{ZEROS, asm};

/// Why the assembly kernels do not apply to a shape (`None`: they do).
pub(crate) const fn unsupported(p: usize, k: usize, h: usize, w: usize, ci: usize, co: usize) -> Option<&'static str> {
    if p != 0 {
        Some("padding")
    } else if 2 * k + 1 > 32 {
        Some("kernel wider than 15")
    } else if ci * h * w * 4 >= 65_536 || co * h * w * 4 >= 65_536 || ci * co * k * k * 4 >= 65_536 {
        Some("a tensor of 64 KiB or more")
    } else {
        None
    }
}

/// Estimated instructions besides the multiply-accumulates of one output row with forward
/// tiles of `b` channels by `t` columns.
const fn forward_overhead(co: usize, ci: usize, wo: usize, k: usize, b: usize, t: usize) -> usize {
    const fn per(ci: usize, k: usize, b: usize) -> usize {
        ci * k * (2 + b) + 4 * b + 8
    }
    let tiles = wo.div_ceil(t);
    (co / b) * tiles * per(ci, k, b) + if co.is_multiple_of(b) { 0 } else { tiles * per(ci, k, co % b) }
}

/// The forward tile, `(B, T)`: at most 2 channels (weight pointers) and the registers of
/// `B·T` accumulators, `(T−1)·S + K` input values and `K` weights within 32; the cheapest
/// by [`forward_overhead`].
pub(crate) const fn forward_tile(co: usize, ci: usize, wo: usize, k: usize, s: usize) -> (usize, usize) {
    let mut best = (1, 1);
    let mut best_cost = usize::MAX;
    let mut b = 1;
    while b <= 2 && b <= co {
        let mut t = 1;
        while t <= wo {
            if b * t + (t - 1) * s + 2 * k <= 32 {
                let cost = forward_overhead(co, ci, wo, k, b, t);
                if cost < best_cost {
                    best = (b, t);
                    best_cost = cost;
                }
            }
            t += 1;
        }
        b += 1;
    }
    best
}

/// The tile of one of the four kinds of forward strips: bit 0 of `part` the last, narrower
/// column tile (`WO % T` columns), bit 1 the last, smaller channel block (`CO % B`).
pub(crate) const fn forward_part(co: usize, ci: usize, wo: usize, k: usize, s: usize, part: usize) -> (usize, usize) {
    let (b, t) = forward_tile(co, ci, wo, k, s);
    (if part & 2 != 0 { co % b } else { b }, if part & 1 != 0 { wo % t } else { t })
}

/// One forward strip: every output row of `B` channels × `T` columns (see [`forward_part`]).
/// `x` starts at the strip's first input column (`ow0·S`) of row 0 of channel 0, `w` at the
/// block's first filter, `b` at its first bias and `y` at its first channel, row 0, column
/// `ow0`. Each output adds its terms in the order `(ci, kh, kw)` from `+0.0`, then the bias,
/// as `Conv2d::forward_portable` does.
#[inline(never)]
#[allow(unsafe_code)]
pub(crate) fn forward_strip<
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
    const PART: usize,
>(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
) {
    let (nb, nt) = forward_part(CO, CI, WO, K, S, PART);
    // The last element each pointer reaches, relative to its start.
    let x_end = (CI - 1) * H * W + (HO - 1) * S * W + (K - 1) * W + (nt - 1) * S + K;
    let y_end = (nb - 1) * HO * WO + (HO - 1) * WO + nt;
    if nb == 0 || nt == 0 || x.len() < x_end || w.len() < nb * CI * K * K || b.len() < nb || y.len() < y_end {
        return;
    }
    // SAFETY: the lengths were checked just above against the furthest element each pointer
    // reaches: `x` rows `oh·S + kh` of every channel, `(T−1)·S + K` values from the start;
    // `w` `B` filters of `CI·K·K`; `b` `B` values; `y` `T` values of every row of `B`
    // channels. All registers written are outputs or clobbered; flags clobbered; no stack.
    unsafe {
        m4_asm!(
            // A part that a shape does not have is still compiled: it assembles to nothing.
            ".if {nb} * {nt} > 0",
            ".set ttbk, {nb} * {nt}",
            ".set ttwr, ttbk + ({nt} - 1) * {s} + {k}",
            "movw {oh}, #{ho}",
            "1:",
            "ttldn {zp}, 0, %(ttbk - 1)",
            ".if {ci} > 1",
            "movw {cic}, #{ci}",
            "2:",
            ".endif",
            ".rept {k}",
            "ttldn {xp}, %(ttbk), %(ttwr - 1)",
            "ttaddi {xp}, {w4}, {tmp}",
            ".set ttc, 0",
            ".rept {nb}",
            ".if ttc == 0",
            "ttld {w0}, %(ttwr), %(ttwr + {k} - 1)",
            ".else",
            "ttld {w1}, %(ttwr), %(ttwr + {k} - 1)",
            ".endif",
            ".set ttkw, 0",
            ".rept {k}",
            ".set ttj, 0",
            ".rept {nt}",
            "ttf vmla, %(ttc * {nt} + ttj), %(ttwr + ttkw), %(ttbk + ttj * {s} + ttkw)",
            ".set ttj, ttj + 1",
            ".endr",
            ".set ttkw, ttkw + 1",
            ".endr",
            ".set ttc, ttc + 1",
            ".endr",
            ".endr",
            ".if {ci} > 1",
            "ttaddi {xp}, {plane_rest}, {tmp}",
            "subs {cic}, {cic}, #1",
            "bne 2b",
            ".endif",
            // Bias, then the rows stored.
            ".set ttc, 0",
            ".rept {nb}",
            "ttvldr %(ttbk), {bp}, %(ttc * 4)",
            ".set ttj, 0",
            ".rept {nt}",
            "ttf vadd, %(ttc * {nt} + ttj), %(ttc * {nt} + ttj), %(ttbk)",
            ".set ttj, ttj + 1",
            ".endr",
            ".set ttc, ttc + 1",
            ".endr",
            "ttstn {yp}, 0, %({nt} - 1)",
            ".if {nb} > 1",
            "mov {tmp}, {yp}",
            "ttaddi {tmp}, {yplane}, {cic}",
            "ttstn {tmp}, %({nt}), %(2 * {nt} - 1)",
            ".endif",
            "ttaddi {yp}, {wo4}, {tmp}",
            // Back to the next output row: the loops moved `xp` on by `x_adv` bytes.
            ".if {x_adv} >= {sw4}",
            "ttsubi {xp}, %({x_adv} - {sw4}), {tmp}",
            ".else",
            "ttaddi {xp}, %({sw4} - {x_adv}), {tmp}",
            ".endif",
            "ttsubi {w0}, {ckk4}, {tmp}",
            ".if {nb} > 1",
            "ttsubi {w1}, {ckk4}, {tmp}",
            ".endif",
            "subs {oh}, {oh}, #1",
            "bne 1b",
            ".endif";
            xp = inout(reg) x.as_ptr() => _,
            w0 = inout(reg) w.as_ptr() => _,
            w1 = inout(reg) w.as_ptr().wrapping_add(CI * K * K) => _,
            bp = in(reg) b.as_ptr(),
            yp = inout(reg) y.as_mut_ptr() => _,
            zp = in(reg) ZEROS.as_ptr(),
            oh = out(reg) _,
            cic = out(reg) _,
            tmp = out(reg) _,
            nb = const forward_part(CO, CI, WO, K, S, PART).0,
            nt = const forward_part(CO, CI, WO, K, S, PART).1,
            s = const S,
            k = const K,
            ci = const CI,
            ho = const HO,
            w4 = const W * 4,
            plane_rest = const (H * W - K * W) * 4,
            yplane = const HO * WO * 4,
            wo4 = const WO * 4,
            x_adv = const if CI > 1 { CI * H * W * 4 } else { K * W * 4 },
            sw4 = const S * W * 4,
            ckk4 = const CI * K * K * 4,
        );
    }
}

/// Weight-gradient lanes in use: the eight lanes of `kernels::dot`'s order, fewer when the
/// output rows are narrower.
const fn lanes(wo: usize) -> usize {
    if wo < 8 { wo } else { 8 }
}

/// Estimated instructions of the weight gradient of one input channel with blocks of `b`
/// channels and lane groups of `a` lanes.
const fn grad_weight_cost(co: usize, k: usize, ho: usize, wo: usize, b: usize, a: usize) -> usize {
    let l = lanes(wo);
    let groups = l.div_ceil(a);
    let chunks = wo.div_ceil(8);
    let per_block = ho * groups * (5 + 2 * b + chunks * (2 + 2 * b)) + b * k * (3 * groups + 10);
    co.div_ceil(b) * per_block
}

/// The weight-gradient tile, `(B, A)`: blocks of `B` (at most 2) output channels, lanes in
/// groups of `A` whose `B·K·A` accumulators, `A` output gradients and `(A−1)·S + K` input
/// values fit 32 registers; the cheapest by [`grad_weight_cost`].
pub(crate) const fn grad_weight_tile(co: usize, k: usize, s: usize, ho: usize, wo: usize) -> (usize, usize) {
    let mut best = (1, 1);
    let mut best_cost = usize::MAX;
    let mut b = 1;
    while b <= 2 && b <= co {
        let mut a = 1;
        while a <= lanes(wo) {
            if b * k * a + a + (a - 1) * s + k <= 32 {
                let cost = grad_weight_cost(co, k, ho, wo, b, a);
                if cost < best_cost {
                    best = (b, a);
                    best_cost = cost;
                }
            }
            a += 1;
        }
        b += 1;
    }
    best
}

/// Why the weight-gradient kernel does not apply (`None`: it does): its immediate offsets
/// must stay below 4,096 bytes.
pub(crate) const fn grad_weight_unsupported(
    p: usize,
    k: usize,
    h: usize,
    w: usize,
    ci: usize,
    co: usize,
    s: usize,
    ho: usize,
    wo: usize,
) -> Option<&'static str> {
    let (b, _) = grad_weight_tile(co, k, s, ho, wo);
    if let Some(why) = unsupported(p, k, h, w, ci, co) {
        Some(why)
    } else if (b - 1) * ho * wo * 4 + wo * 4 >= 4096 || (b - 1) * ci * k * k * 4 + k * 4 >= 4096 || w * 4 >= 4096 {
        Some("offsets of 4 KiB or more")
    } else {
        None
    }
}

/// The size of the lane buffer [`grad_weight`] needs.
pub(crate) const GRAD_WEIGHT_BUFFER: usize = 2 * 15 * 8;

/// Adds the weight gradients of a block of output channels: `B` channels, or `CO % B` for
/// `PART` 1 (see [`grad_weight_tile`]). `x` is the whole input, `dy` starts at the block's
/// first channel, `g` at its first filter. Each weight sums its terms in eight lanes by output
/// column (`ow % 8`, over the rows in order, the columns of a row in order), reduces them in
/// the fixed tree of `kernels::dot` and adds the sum to its gradient, as
/// `Conv2d::backward_portable` does without padding (where its edge sums stay `+0.0`).
///
/// Lanes are computed `A` at a time (one pass over the output rows each) and parked in `buf`;
/// the tree then reads each weight's lanes back.
#[inline(never)]
#[allow(unsafe_code, clippy::too_many_lines)]
pub(crate) fn grad_weight<
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
    const PART: usize,
>(
    x: &[f32],
    dy: &[f32],
    g: &mut [f32],
    buf: &mut [f32; GRAD_WEIGHT_BUFFER],
) {
    let (b, _) = grad_weight_tile(CO, K, S, HO, WO);
    let nb = if PART == 0 { b } else { CO % b };
    if nb == 0 || x.len() < CI * H * W || dy.len() < nb * HO * WO || g.len() < (nb - 1) * CI * K * K + CI * K * K {
        return;
    }
    // SAFETY: the lengths were checked just above: `x` is read within its `CI` planes (rows
    // `oh·S + kh`, columns up to `(WO−1)·S + K − 1`), `dy` within the block's `B` planes, `g`
    // within its `B` filters; `buf` holds at most `B·K·8` lanes (`B ≤ 2`, `K ≤ 15`). All
    // registers written are outputs or clobbered; flags clobbered; no stack.
    unsafe {
        m4_asm!(
            ".if {nb} > 0",
            // The tree of `kernels::dot` over lanes s0..s<L-1> (the absent lanes are zeros,
            // and adding +0.0 to a lane sum, which is never -0.0, changes nothing); result s0.
            ".macro ttredl l",
            ".if \\l > 4",
            "ttf vadd, 0, 0, 4",
            ".endif",
            ".if \\l > 5",
            "ttf vadd, 1, 1, 5",
            ".endif",
            ".if \\l > 6",
            "ttf vadd, 2, 2, 6",
            ".endif",
            ".if \\l > 7",
            "ttf vadd, 3, 3, 7",
            ".endif",
            ".if \\l > 1",
            "ttf vadd, 0, 0, 1",
            ".endif",
            ".if \\l > 3",
            "ttf vadd, 2, 2, 3",
            ".endif",
            ".if \\l > 2",
            "ttf vadd, 0, 0, 2",
            ".endif",
            ".endm",
            ".set ttL, {lanes}",
            ".set ttA, {a}",
            ".set ttG, (ttL + ttA - 1) / ttA",
            ".set ttBK, {nb} * {k}",
            "movw {cic}, #{ci}",
            "3:",
            "movw {khc}, #{k}",
            "1:",
            ".set ttg, 0",
            ".rept ttG",
            ".set ttj0, ttg * ttA",
            ".set tta, ttA",
            ".if ttL - ttj0 < ttA",
            ".set tta, ttL - ttj0",
            ".endif",
            ".set ttacc, ttBK * tta",
            ".set ttdy, ttacc",
            ".set ttbank, ttacc + tta",
            "ttldn {zp}, 0, %(ttacc - 1)",
            "movw {oh}, #{ho}",
            "2:",
            ".set ttm, 0",
            ".rept {chunks}",
            ".set ttam, {wo} - 8 * ttm - ttj0",
            ".if ttam > tta",
            ".set ttam, tta",
            ".endif",
            ".if ttam > 0",
            ".set ttoff, 8 * ttm + ttj0",
            ".if ttoff == 0",
            "ttldn {xp}, %(ttbank), %(ttbank + (ttam - 1) * {s} + {k} - 1)",
            ".else",
            "addw {tmp}, {xp}, #(ttoff * {s} * 4)",
            "ttldn {tmp}, %(ttbank), %(ttbank + (ttam - 1) * {s} + {k} - 1)",
            ".endif",
            ".set ttc, 0",
            ".rept {nb}",
            ".if ttc + ttoff == 0",
            "ttldn {dyp}, %(ttdy), %(ttdy + ttam - 1)",
            ".else",
            "addw {tmp}, {dyp}, #(ttc * {howo4} + ttoff * 4)",
            "ttldn {tmp}, %(ttdy), %(ttdy + ttam - 1)",
            ".endif",
            ".set ttkw, 0",
            ".rept {k}",
            ".set ttjj, 0",
            ".rept ttam",
            "ttf vmla, %((ttc * {k} + ttkw) * tta + ttjj), %(ttdy + ttjj), %(ttbank + ttjj * {s} + ttkw)",
            ".set ttjj, ttjj + 1",
            ".endr",
            ".set ttkw, ttkw + 1",
            ".endr",
            ".set ttc, ttc + 1",
            ".endr",
            ".endif",
            ".set ttm, ttm + 1",
            ".endr",
            "ttaddi {xp}, {sw4}, {tmp}",
            "addw {dyp}, {dyp}, #{wo4}",
            "subs {oh}, {oh}, #1",
            "bne 2b",
            "ttsubi {xp}, {ho_sw4}, {tmp}",
            "ttsubi {dyp}, {howo4}, {tmp}",
            "addw {tmp}, {bufp}, #(ttg * ttBK * ttA * 4)",
            "ttstn {tmp}, 0, %(ttacc - 1)",
            ".set ttg, ttg + 1",
            ".endr",
            // Each weight: its lanes into s0.., the tree, the sum added to its gradient.
            ".set ttc, 0",
            ".rept {nb}",
            ".set ttkw, 0",
            ".rept {k}",
            ".set ttg, 0",
            ".rept ttG",
            ".set ttj0, ttg * ttA",
            ".set tta, ttA",
            ".if ttL - ttj0 < ttA",
            ".set tta, ttL - ttj0",
            ".endif",
            "addw {tmp}, {bufp}, #((ttg * ttBK * ttA + (ttc * {k} + ttkw) * tta) * 4)",
            "ttldn {tmp}, %(ttj0), %(ttj0 + tta - 1)",
            ".set ttg, ttg + 1",
            ".endr",
            "ttredl %(ttL)",
            "addw {tmp}, {gp}, #(ttc * {cikk4} + ttkw * 4)",
            "vldr s8, [{tmp}]",
            "vadd.f32 s8, s8, s0",
            "vstr s8, [{tmp}]",
            ".set ttkw, ttkw + 1",
            ".endr",
            ".set ttc, ttc + 1",
            ".endr",
            "addw {gp}, {gp}, #({k} * 4)",
            "ttaddi {xp}, {w4}, {tmp}",
            "subs {khc}, {khc}, #1",
            "bne 1b",
            "ttaddi {xp}, {plane_rest}, {tmp}",
            "subs {cic}, {cic}, #1",
            "bne 3b",
            ".purgem ttredl",
            ".endif";
            xp = inout(reg) x.as_ptr() => _,
            dyp = inout(reg) dy.as_ptr() => _,
            gp = inout(reg) g.as_mut_ptr() => _,
            bufp = in(reg) buf.as_mut_ptr(),
            zp = in(reg) ZEROS.as_ptr(),
            tmp = out(reg) _,
            oh = out(reg) _,
            khc = out(reg) _,
            cic = out(reg) _,
            nb = const if PART == 0 { grad_weight_tile(CO, K, S, HO, WO).0 } else { CO % grad_weight_tile(CO, K, S, HO, WO).0 },
            a = const grad_weight_tile(CO, K, S, HO, WO).1,
            lanes = const lanes(WO),
            chunks = const WO.div_ceil(8),
            wo = const WO,
            k = const K,
            s = const S,
            ci = const CI,
            ho = const HO,
            sw4 = const S * W * 4,
            ho_sw4 = const HO * S * W * 4,
            wo4 = const WO * 4,
            howo4 = const HO * WO * 4,
            w4 = const W * 4,
            plane_rest = const (H * W - K * W) * 4,
            cikk4 = const CI * K * K * 4,
        );
    }
}

/// Why the input-gradient kernel does not apply (`None`: it does): it keeps a whole input row
/// (`W` sums), an output-gradient row and a kernel row in registers, and follows the order of
/// the portable strided path, used for strides above 1.
pub(crate) const fn grad_input_unsupported(
    p: usize,
    k: usize,
    s: usize,
    h: usize,
    w: usize,
    ci: usize,
    co: usize,
    wo: usize,
) -> Option<&'static str> {
    if let Some(why) = unsupported(p, k, h, w, ci, co) {
        Some(why)
    } else if s < 2 {
        Some("stride 1 (its portable path skips all-zero rows)")
    } else if w + wo + k > 32 {
        Some("rows wider than the registers")
    } else if k.div_ceil(s) > 4 {
        Some("more than 4 kernel rows per input row")
    } else {
        None
    }
}

/// One row of the input gradient of input channel `ci`, for stride `S > 1`: the `N` kernel
/// rows `kh0, kh0 + S, ...` that reach it, from output rows `oh0, oh0 − 1, ...`. `w` starts
/// at filter 0's row `kh0` of channel `ci`, `dy` at channel 0's row `oh0 + 1 − N`. Every
/// element sums from `+0.0` its terms in the order `(co, kh, kw)`, as
/// `Conv2d::backward_portable`'s strided path does; the row is then written.
#[inline(never)]
#[allow(unsafe_code)]
pub(crate) fn grad_input_row<
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const HO: usize,
    const W: usize,
    const WO: usize,
    const N: usize,
>(
    w: &[f32],
    dy: &[f32],
    dx: &mut [f32],
) {
    if N == 0
        || w.len() < (CO - 1) * CI * K * K + (N - 1) * S * K + K
        || dy.len() < (CO - 1) * HO * WO + N * WO
        || dx.len() < W
    {
        return;
    }
    // SAFETY: the lengths were checked just above: per filter, `N` rows of `K` weights
    // `S·K` apart; per channel, the `N` output-gradient rows before the end pointer; `W`
    // values of `dx`. All registers written are outputs or clobbered; flags clobbered; no
    // stack.
    unsafe {
        m4_asm!(
            ".if {n} > 0",
            ".set ttdy, {w}",
            ".set ttwr, {w} + {wo}",
            "ttldn {zp}, 0, %({w} - 1)",
            "addw {dyp}, {dyp}, #({n} * {wo4})",
            "movw {coc}, #{co}",
            "1:",
            ".rept {n}",
            "ttldn {wp}, %(ttwr), %(ttwr + {k} - 1)",
            "addw {wp}, {wp}, #({s} * {k} * 4)",
            "ttlddb {dyp}, %(ttdy), %(ttdy + {wo} - 1)",
            ".set ttkw, 0",
            ".rept {k}",
            ".set ttj, 0",
            ".rept {wo}",
            "ttf vmla, %(ttj * {s} + ttkw), %(ttwr + ttkw), %(ttdy + ttj)",
            ".set ttj, ttj + 1",
            ".endr",
            ".set ttkw, ttkw + 1",
            ".endr",
            ".endr",
            ".if {w_next} >= {w_used}",
            "ttaddi {wp}, %({w_next} - {w_used}), {tmp}",
            ".else",
            "ttsubi {wp}, %({w_used} - {w_next}), {tmp}",
            ".endif",
            "ttaddi {dyp}, %({howo4} + {n} * {wo4}), {tmp}",
            "subs {coc}, {coc}, #1",
            "bne 1b",
            "ttstn {dxp}, 0, %({w} - 1)",
            ".endif";
            wp = inout(reg) w.as_ptr() => _,
            dyp = inout(reg) dy.as_ptr() => _,
            dxp = in(reg) dx.as_mut_ptr(),
            zp = in(reg) ZEROS.as_ptr(),
            coc = out(reg) _,
            tmp = out(reg) _,
            n = const N,
            w = const W,
            wo = const WO,
            wo4 = const WO * 4,
            k = const K,
            s = const S,
            co = const CO,
            howo4 = const HO * WO * 4,
            w_next = const CI * K * K * 4,
            w_used = const N * S * K * 4,
        );
    }
}
