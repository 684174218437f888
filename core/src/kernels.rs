//! Small pure kernels with a fixed summation order.
//!
//! Dot products use eight independent accumulators combined in a fixed tree, so the compiler
//! can vectorise them without reassociating anything: the same bits on x86-64 (SSE) and on a
//! Cortex-M4 (scalar). No fused multiply-add is used anywhere.
//!
//! The layer kernels ([`dense_forward`], [`dense_grads`], [`dense_input_grad`],
//! [`adam_update`], [`relu`], [`relu_backward`], [`all_finite`], [`fill_zero`]; the
//! convolution's in `layers::conv2d`) run as inline assembly on ARM hard-float targets such as
//! the Cortex-M4F: register-blocked `vldm`/`vmla.f32` code that performs the portable code's
//! operations in the portable code's order, so the bits are the same. Each has a `*_portable`
//! twin in plain Rust: the reference, the code every other target runs, and what the on-target
//! tests (`firmware/tests/on_target.rs`) compare the assembly with.
//!
//! ```
//! let a = [1.0f32; 20];
//! let b = [2.0f32; 20];
//! assert_eq!(tinytrain::kernels::dot(&a, &b), 40.0);
//! ```

#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
pub(crate) mod m4;

const LANES: usize = 8;

/// The host's dense kernels, chosen at run time: the forward pass and batched inference as
/// explicit AVX kernels, the gradients of layers of at least [`host::WIDE_MIN`] weights as
/// AVX2 and AVX-512 builds of the portable code, Adam's update through [`wide`]. The same
/// operations in the same order as the portable kernels (wider vectors, no reassociation, no
/// fused multiply-add), so the same bits (`tests/tests/dense_dispatch.rs`).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub mod host {
    use crate::layers::X86Path;

    /// Weights from which a dense layer's gradients take the wide build (below it the check
    /// costs about what it saves; `digits-mlp`'s 64x32 layer gains about 15%).
    pub const WIDE_MIN: usize = 1 << 9;

    macro_rules! wide {
        ($(#[$doc:meta])* $name:ident, $avx2:ident, $avx512:ident, $portable:path,
         ($($arg:ident: $ty:ty),*)) => {
            #[target_feature(enable = "avx2")]
            fn $avx2<const I: usize, const O: usize>($($arg: $ty),*) {
                $portable($($arg),*);
            }

            #[target_feature(enable = "avx2,avx512f")]
            fn $avx512<const I: usize, const O: usize>($($arg: $ty),*) {
                $portable($($arg),*);
            }

            $(#[$doc])*
            /// Runs the portable kernel when this CPU lacks `path`.
            pub fn $name<const I: usize, const O: usize>(path: X86Path, $($arg: $ty),*) {
                if !path.available() {
                    $portable($($arg),*);
                    return;
                }
                // SAFETY: the CPU has the path's features, checked just above.
                #[allow(unsafe_code)]
                unsafe {
                    match path {
                        X86Path::Avx2 => $avx2($($arg),*),
                        X86Path::Avx512 => $avx512($($arg),*),
                    }
                }
            }
        };
    }

    /// [`super::dense_predict4_portable`] with AVX vectors where this CPU has AVX2 (the
    /// portable code elsewhere): per output and sample one 8-lane vector of partial sums
    /// (`mul` then `add`, no fused multiply-add), reduced in [`super::dot`]'s tree, so the bits
    /// are the portable code's.
    #[inline]
    pub fn dense_predict4<const I: usize, const O: usize>(
        w: &[[f32; I]; O],
        b: &[f32; O],
        x: [&[f32; I]; 4],
        y: [&mut [f32; O]; 4],
    ) {
        if X86Path::Avx2.available() {
            // SAFETY: the CPU has AVX2 (so AVX), checked just above.
            #[allow(unsafe_code)]
            unsafe {
                predict4_avx(w, b, x, y);
            }
        } else {
            super::dense_predict4_portable(w, b, x, y);
        }
    }

    #[target_feature(enable = "avx")]
    fn predict4_avx<const I: usize, const O: usize>(
        w: &[[f32; I]; O],
        b: &[f32; O],
        x: [&[f32; I]; 4],
        y: [&mut [f32; O]; 4],
    ) {
        let [y0, y1, y2, y3] = y;
        for (o, (row, &bias)) in w.iter().zip(b).enumerate() {
            let sums = dots_avx([row; 4], x);
            (y0[o], y1[o], y2[o], y3[o]) = (sums[0] + bias, sums[1] + bias, sums[2] + bias, sums[3] + bias);
        }
    }

    /// [`super::dense_forward_portable`] with AVX vectors where this CPU has AVX2 (the portable
    /// code elsewhere): eight rows at a time against the one input (eight independent sums in
    /// flight: four left it waiting on the adds), each row's sum
    /// [`super::dot`]'s (one 8-lane vector of partial sums, `mul` then `add`, reduced in the
    /// same tree), so the bits are the portable code's. Memory-bound layers such as
    /// `mnist-cnn`'s 9216 -> 128 stream their weights at the cache's pace this way; the
    /// compiler's own vectors for two rows at a time shuffle single lanes.
    #[inline]
    pub fn dense_forward<const I: usize, const O: usize>(
        w: &[[f32; I]; O],
        x: &[f32; I],
        b: &[f32; O],
        y: &mut [f32; O],
    ) {
        if X86Path::Avx2.available() {
            // SAFETY: the CPU has AVX2 (so AVX), checked just above.
            #[allow(unsafe_code)]
            unsafe {
                forward_avx(w, x, b, y);
            }
        } else {
            super::dense_forward_portable(w, x, b, y);
        }
    }

    #[target_feature(enable = "avx")]
    fn forward_avx<const I: usize, const O: usize>(w: &[[f32; I]; O], x: &[f32; I], b: &[f32; O], y: &mut [f32; O]) {
        let (octs, rest) = w.as_chunks::<8>();
        let (y_octs, y_rest) = y.as_chunks_mut::<8>();
        let (b_octs, b_rest) = b.as_chunks::<8>();
        for ((yo, rows), bo) in y_octs.iter_mut().zip(octs).zip(b_octs) {
            let [r0, r1, r2, r3, r4, r5, r6, r7] = rows;
            let sums = dots_avx([r0, r1, r2, r3, r4, r5, r6, r7], [x; 8]);
            *yo = core::array::from_fn(|k| sums[k] + bo[k]);
        }
        for ((yo, row), &bias) in y_rest.iter_mut().zip(rest).zip(b_rest) {
            let [sum] = dots_avx([row], [x]);
            *yo = sum + bias;
        }
    }

    /// Floats ahead of the current column at which [`dots_avx`] prefetches each row.
    const PREFETCH_AHEAD: usize = 256;
    /// Row length from which [`dots_avx`] prefetches.
    const PREFETCH_FROM: usize = 1024;

    /// `[dot(a[r], b[r]); R]` in AVX registers: per pair one 8-lane vector of partial sums
    /// (lane `k` sums the products of the indices `k mod 8`, in order, `mul` then `add`), the
    /// remainder added into the first lanes, reduced in [`super::dot`]'s tree. The same bits
    /// as [`super::dot`]. Rows or samples that repeat are loaded once.
    #[target_feature(enable = "avx")]
    #[inline]
    #[allow(unsafe_code)]
    fn dots_avx<const I: usize, const R: usize>(a: [&[f32; I]; R], b: [&[f32; I]; R]) -> [f32; R] {
        use core::arch::x86_64::{
            __m256, _MM_HINT_T0, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_prefetch, _mm_shuffle_ps,
            _mm256_add_ps, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_loadu_ps, _mm256_mul_ps,
            _mm256_setzero_ps, _mm256_storeu_ps,
        };
        let full = I / super::LANES * super::LANES;
        let mut acc: [__m256; R] = [_mm256_setzero_ps(); R];
        let mut j = 0;
        while j < full {
            if I >= PREFETCH_FROM && j % 16 == 0 {
                // Rows longer than the cache keeps: ask for each row's cache line 1 KB ahead
                // (mnist-cnn's 9216 -> 128, alternating runs: 62-66 us without, 47-53 us with;
                // 512 B and 2 KB ahead the same within the noise, 4 KB 64 us, 8 KB 74 us).
                for a in a {
                    _mm_prefetch::<_MM_HINT_T0>(a.as_ptr().wrapping_add(j + PREFETCH_AHEAD).cast());
                }
            }
            for ((acc, a), b) in acc.iter_mut().zip(a).zip(b) {
                // SAFETY: j + 8 <= full <= I, the length of every row and sample.
                let (av, bv) = unsafe { (_mm256_loadu_ps(a.as_ptr().add(j)), _mm256_loadu_ps(b.as_ptr().add(j))) };
                *acc = _mm256_add_ps(*acc, _mm256_mul_ps(av, bv));
            }
            j += super::LANES;
        }
        core::array::from_fn(|r| {
            if full == I {
                // ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7)) in registers.
                let v = _mm_add_ps(_mm256_castps256_ps128(acc[r]), _mm256_extractf128_ps::<1>(acc[r]));
                let u = _mm_add_ps(v, _mm_shuffle_ps::<0b10_11_00_01>(v, v));
                _mm_cvtss_f32(_mm_add_ss(u, _mm_movehl_ps(u, u)))
            } else {
                let mut lanes = [0.0f32; super::LANES];
                // SAFETY: eight floats into an array of eight.
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc[r]) };
                for (l, (p, q)) in lanes.iter_mut().zip(a[r][full..].iter().zip(&b[r][full..])) {
                    *l += p * q;
                }
                super::reduce(&lanes)
            }
        })
    }

    wide!(
        /// [`super::dense_grads_portable`] through `path`.
        dense_grads, grads_avx2, grads_avx512, super::dense_grads_portable,
        (x: &[f32; I], dy: &[f32; O], gw: &mut [[f32; I]; O], gb: &mut [f32; O])
    );
    /// `f` compiled for AVX-512 (AVX2 and AVX-512F enabled), for [`super::wide`].
    ///
    /// # Safety
    /// The CPU must have AVX2 and AVX-512F.
    #[target_feature(enable = "avx2,avx512f")]
    #[allow(unsafe_code)]
    pub(crate) unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    /// [`super::adam_update_portable`] through [`super::wide`]: AVX-512 where this CPU has
    /// it (for the test that compares the two).
    #[inline]
    pub fn adam_update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: &super::AdamUpdate) {
        super::wide(|| super::adam_update_portable(p, g, m, v, c));
    }

    wide!(
        /// [`super::dense_input_grad_portable`] through `path`.
        dense_input_grad, input_grad_avx2, input_grad_avx512, super::dense_input_grad_portable,
        (w: &[[f32; I]; O], dy: &[f32; O], dx: &mut [f32; I])
    );
}

/// Runs `f` compiled for the widest vectors this CPU has: AVX-512 on an x86-64 host that has
/// it (chosen at run time), as compiled everywhere else. For loops over slices such as the
/// optimizers' updates: Rust never reassociates or fuses floating-point operations, so a
/// wider build performs the same correctly rounded operations in the same order and gives
/// the same bits (`tests/tests/dense_dispatch.rs`); only the number of lanes changes.
#[inline(always)]
#[allow(clippy::inline_always)] // `f` must be compiled inside the AVX-512 function
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if crate::layers::X86Path::Avx512.available() {
        // SAFETY: the CPU has AVX2 and AVX-512F, checked just above.
        #[allow(unsafe_code)]
        return unsafe { host::avx512(f) };
    }
    f()
}

/// Dot product of two equally long slices (the shorter length is used).
#[inline]
#[must_use]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let ca = a.chunks_exact(LANES);
    let cb = b.chunks_exact(LANES);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    for (k, (x, y)) in ra.iter().zip(rb).enumerate() {
        acc[k] += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// Two dot products against the same `x`: `(dot(a, x), dot(b, x))`, each summed in exactly
/// the order of [`dot`] (so the same bits), but loading `x` once for both rows. The length is
/// part of the type, so the loop has no remainder to handle when `N` is a multiple of 8.
#[inline]
#[must_use]
pub fn dot2<const N: usize>(a: &[f32; N], b: &[f32; N], x: &[f32; N]) -> (f32, f32) {
    let mut acc_a = [0.0f32; LANES];
    let mut acc_b = [0.0f32; LANES];
    let (ca, ra) = a.as_chunks::<LANES>();
    let (cb, rb) = b.as_chunks::<LANES>();
    let (cx, rx) = x.as_chunks::<LANES>();
    for ((p, q), r) in ca.iter().zip(cb).zip(cx) {
        for k in 0..LANES {
            acc_a[k] += p[k] * r[k];
            acc_b[k] += q[k] * r[k];
        }
    }
    for (k, ((p, q), r)) in ra.iter().zip(rb).zip(rx).enumerate() {
        acc_a[k] += p * r;
        acc_b[k] += q * r;
    }
    (reduce(&acc_a), reduce(&acc_b))
}

/// Four dot products of one row against four samples: `[dot(w, x[0]), .., dot(w, x[3])]`, each
/// summed in exactly the order of [`dot`] (so the same bits), loading `w` once for all four.
/// Batched inference ([`Layer::predict4`](crate::layer::Layer::predict4)) is built on it.
#[inline]
#[must_use]
pub fn dot4<const N: usize>(w: &[f32; N], x: [&[f32; N]; 4]) -> [f32; 4] {
    let mut acc = [[0.0f32; LANES]; 4];
    let (cw, rw) = w.as_chunks::<LANES>();
    let cx = x.map(|x| x.as_chunks::<LANES>());
    for (j, p) in cw.iter().enumerate() {
        for (a, (c, _)) in acc.iter_mut().zip(&cx) {
            let q = &c[j];
            for k in 0..LANES {
                a[k] += p[k] * q[k];
            }
        }
    }
    for (a, (_, r)) in acc.iter_mut().zip(&cx) {
        for (k, (p, q)) in rw.iter().zip(r.iter()).enumerate() {
            a[k] += p * q;
        }
    }
    acc.map(|a| reduce(&a))
}

/// Four samples through a dense layer, `y[s][o] = dot4(w[o], x)[s] + b[o]`: each weight row
/// loaded once for the four samples, each sum [`dot`]'s ([`Layer::predict4`] of
/// [`Dense`](crate::layers::Dense); the host takes [`host::dense_predict4`]).
///
/// [`Layer::predict4`]: crate::layer::Layer::predict4
#[inline]
pub fn dense_predict4_portable<const I: usize, const O: usize>(
    w: &[[f32; I]; O],
    b: &[f32; O],
    x: [&[f32; I]; 4],
    y: [&mut [f32; O]; 4],
) {
    let [y0, y1, y2, y3] = y;
    for (o, (w, b)) in w.iter().zip(b).enumerate() {
        let [d0, d1, d2, d3] = dot4(w, x);
        (y0[o], y1[o], y2[o], y3[o]) = (d0 + b, d1 + b, d2 + b, d3 + b);
    }
}

/// `y = W x + b` for a weight stored `[out][in]`: each output is [`dot`] of its row and `x`,
/// then the bias added. On ARM hard-float targets an assembly kernel with the same
/// arithmetic in the same order (so the same bits) runs instead of
/// [`dense_forward_portable`].
#[inline]
pub fn dense_forward<const I: usize, const O: usize>(w: &[[f32; I]; O], x: &[f32; I], b: &[f32; O], y: &mut [f32; O]) {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    m4::dense_forward(w, x, b, y);
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
    {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        host::dense_forward(w, x, b, y);
        #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
        dense_forward_portable(w, x, b, y);
    }
}

/// [`dense_forward`] in portable Rust: the reference, and the code every other target runs.
/// Two rows at a time share the loads of `x`; each row is summed as [`dot`] sums it.
#[inline]
pub fn dense_forward_portable<const I: usize, const O: usize>(
    w: &[[f32; I]; O],
    x: &[f32; I],
    b: &[f32; O],
    y: &mut [f32; O],
) {
    let (pairs, last) = w.as_chunks::<2>();
    let (y_pairs, y_last) = y.as_chunks_mut::<2>();
    let (b_pairs, b_last) = b.as_chunks::<2>();
    for ((yo, [w0, w1]), b) in y_pairs.iter_mut().zip(pairs).zip(b_pairs) {
        let (d0, d1) = dot2(w0, w1, x);
        *yo = [d0 + b[0], d1 + b[1]];
    }
    for ((yo, w), b) in y_last.iter_mut().zip(last).zip(b_last) {
        *yo = dot(w, x) + b;
    }
}

/// The gradients of a dense layer's weight and bias: `gb[o] += dy[o]`, and
/// `gw[o] += dy[o] * x` (an [`axpy`]) for each row whose `dy[o]` is not zero. Skipping a zero
/// (a ReLU that did not fire) gives the same bits as adding its zeros whenever `x` is finite,
/// since gradients start at `+0.0` and never become `-0.0`. An assembly kernel on ARM
/// hard-float targets, as for [`dense_forward`].
#[inline]
pub fn dense_grads<const I: usize, const O: usize>(
    x: &[f32; I],
    dy: &[f32; O],
    gw: &mut [[f32; I]; O],
    gb: &mut [f32; O],
) {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    m4::dense_grads(x, dy, gw, gb);
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
    {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if I * O >= host::WIDE_MIN
            && let Some(path) = crate::layers::X86Path::best()
        {
            host::dense_grads(path, x, dy, gw, gb);
            return;
        }
        dense_grads_portable(x, dy, gw, gb);
    }
}

/// [`dense_grads`] in portable Rust.
#[inline]
pub fn dense_grads_portable<const I: usize, const O: usize>(
    x: &[f32; I],
    dy: &[f32; O],
    gw: &mut [[f32; I]; O],
    gb: &mut [f32; O],
) {
    for ((gw, gb), &d) in gw.iter_mut().zip(gb).zip(dy) {
        *gb += d;
        if d != 0.0 {
            axpy(d, x, gw);
        }
    }
}

/// The input gradient of a dense layer, `dx = W^T dy`: `dx` from `+0.0`, then
/// `dx += dy[o] * W[o]` (an [`axpy`]) for each row in order. An assembly kernel on ARM
/// hard-float targets, as for [`dense_forward`].
#[inline]
pub fn dense_input_grad<const I: usize, const O: usize>(w: &[[f32; I]; O], dy: &[f32; O], dx: &mut [f32; I]) {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    m4::dense_input_grad(w, dy, dx);
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
    {
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        if I * O >= host::WIDE_MIN
            && let Some(path) = crate::layers::X86Path::best()
        {
            host::dense_input_grad(path, w, dy, dx);
            return;
        }
        dense_input_grad_portable(w, dy, dx);
    }
}

/// [`dense_input_grad`] in portable Rust.
#[inline]
pub fn dense_input_grad_portable<const I: usize, const O: usize>(w: &[[f32; I]; O], dy: &[f32; O], dx: &mut [f32; I]) {
    dx.fill(0.0);
    for (w, &d) in w.iter().zip(dy) {
        axpy(d, w, dx);
    }
}

/// The coefficients of one Adam update ([`crate::optim::Adam`]), the same for every parameter.
/// The field order is the layout the assembly kernel loads in one instruction.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct AdamUpdate {
    /// β₁.
    pub beta1: f32,
    /// 1 − β₁.
    pub one_minus_beta1: f32,
    /// β₂.
    pub beta2: f32,
    /// 1 − β₂.
    pub one_minus_beta2: f32,
    /// What `√v` is multiplied by before epsilon is added (1/√(1−β₂ᵗ) in the PyTorch form).
    pub inv_sqrt_bc2: f32,
    /// Epsilon.
    pub eps: f32,
    /// The step size the update `m / denom` is multiplied by.
    pub step_size: f32,
}

/// One Adam update of the parameters `p` with gradients `g` and moments `m`, `v` (equally long
/// slices; the shortest length is used), per parameter:
/// `m = β₁·m + (1−β₁)·g`, `v = β₂·v + (1−β₂)·(g·g)`, `p −= step·(m / (√v·inv_sqrt_bc2 + eps))`.
/// An assembly kernel on ARM hard-float targets, as for [`dense_forward`].
#[inline]
pub fn adam_update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: &AdamUpdate) {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    m4::adam_update(p, g, m, v, c);
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    host::adam_update(p, g, m, v, c);
    #[cfg(not(any(all(target_arch = "arm", target_abi = "eabihf"), all(feature = "std", target_arch = "x86_64"))))]
    adam_update_portable(p, g, m, v, c);
}

/// [`adam_update`] in portable Rust.
#[inline]
pub fn adam_update_portable(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: &AdamUpdate) {
    let AdamUpdate { beta1, one_minus_beta1, beta2, one_minus_beta2, inv_sqrt_bc2, eps, step_size } = *c;
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        *m = beta1 * *m + one_minus_beta1 * g;
        *v = beta2 * *v + one_minus_beta2 * (g * g);
        let denom = crate::math::sqrt(*v) * inv_sqrt_bc2 + eps;
        *p -= step_size * (*m / denom);
    }
}

/// The fixed reduction tree of [`dot`].
#[inline]
fn reduce(acc: &[f32; LANES]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `y += a * x`, element by element.
#[inline]
pub fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// Sum of squares, in the same fixed order as [`dot`].
#[inline]
#[must_use]
pub fn sum_squares(x: &[f32]) -> f32 {
    dot(x, x)
}

/// `true` when every element is finite. An assembly kernel on ARM hard-float targets (the
/// same answer; the order of a sum of zeros does not matter).
#[inline]
#[must_use]
pub fn all_finite(x: &[f32]) -> bool {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    return m4::all_finite(x);
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
    wide(|| all_finite_portable(x))
}

/// [`all_finite`] in portable Rust: the largest magnitude's bits below the infinities' (NaN
/// and infinity have every exponent bit set). An integer maximum the compiler may compute in
/// any order and width.
#[inline]
#[must_use]
pub fn all_finite_portable(x: &[f32]) -> bool {
    x.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7fff_ffff)) < 0x7f80_0000
}

/// Sets every element to `+0.0` (16 at a time with one `vstm` on ARM hard-float targets).
#[inline]
pub fn fill_zero(x: &mut [f32]) {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    m4::fill_zero(x);
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
    x.fill(0.0);
}

/// ReLU, `y = x` where `x > 0`, else `+0.0` (NaN too), element by element over the shorter
/// length. An assembly kernel on ARM hard-float targets, as for [`dense_forward`].
#[inline]
pub fn relu(x: &[f32], y: &mut [f32]) {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    m4::relu(x, y);
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
    relu_portable(x, y);
}

/// [`relu`] in portable Rust.
#[inline]
pub fn relu_portable(x: &[f32], y: &mut [f32]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = if xi > 0.0 { xi } else { 0.0 };
    }
}

/// The ReLU's input gradient, `dx = dy · (1 if x > 0 else 0)`, element by element over the
/// shortest length. An assembly kernel on ARM hard-float targets, as for [`dense_forward`].
#[inline]
pub fn relu_backward(x: &[f32], dy: &[f32], dx: &mut [f32]) {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    m4::relu_backward(x, dy, dx);
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
    relu_backward_portable(x, dy, dx);
}

/// [`relu_backward`] in portable Rust.
#[inline]
pub fn relu_backward_portable(x: &[f32], dy: &[f32], dx: &mut [f32]) {
    for ((d, &xi), &g) in dx.iter_mut().zip(x).zip(dy) {
        *d = g * if xi > 0.0 { 1.0 } else { 0.0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_sum_for_exact_inputs() {
        let a: [f32; 19] = core::array::from_fn(|i| i as f32);
        let b: [f32; 19] = core::array::from_fn(|i| (i % 3) as f32);
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot(&a, &b), naive);
    }

    #[test]
    fn dot2_gives_the_bits_of_two_dots() {
        fn check<const N: usize>() {
            let a: [f32; N] = core::array::from_fn(|i| 0.37 * i as f32 - 2.0);
            let b: [f32; N] = core::array::from_fn(|i| 1.0 / (3.0 + i as f32));
            let x: [f32; N] = core::array::from_fn(|i| 1.0 / (1.0 + i as f32));
            let (p, q) = dot2(&a, &b, &x);
            assert_eq!((p.to_bits(), q.to_bits()), (dot(&a, &x).to_bits(), dot(&b, &x).to_bits()));
        }
        check::<1>();
        check::<7>();
        check::<8>();
        check::<19>();
        check::<64>();
    }

    #[test]
    fn dot4_gives_the_bits_of_four_dots() {
        fn check<const N: usize>() {
            let w: [f32; N] = core::array::from_fn(|i| 0.37 * i as f32 - 2.0);
            let x: [[f32; N]; 4] =
                core::array::from_fn(|s| core::array::from_fn(|i| 1.0 / (1.0 + (i * (s + 2)) as f32)));
            let got = dot4(&w, [&x[0], &x[1], &x[2], &x[3]]);
            for s in 0..4 {
                assert_eq!(got[s].to_bits(), dot(&w, &x[s]).to_bits(), "N {N} sample {s}");
            }
        }
        check::<1>();
        check::<7>();
        check::<8>();
        check::<19>();
        check::<64>();
    }

    #[test]
    fn all_finite_detects_nan_and_inf() {
        assert!(all_finite(&[1.0, -3.0, 0.0]));
        assert!(!all_finite(&[1.0, f32::NAN]));
        assert!(!all_finite(&[f32::INFINITY, 1.0]));
        assert!(!all_finite(&[f32::NEG_INFINITY]));
    }
}
