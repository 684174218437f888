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
    let tiles = wo / t + if wo % t > 0 { 1 } else { 0 };
    (co / b) * tiles * per(ci, k, b) + if co % b > 0 { tiles * per(ci, k, co % b) } else { 0 }
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
