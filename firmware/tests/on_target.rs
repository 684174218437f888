//! On-target tests, run on the Cortex-M4F under QEMU with defmt-test (`cargo test --release`
//! in `firmware/`): the backprop slide's forward and backward values, ten steps of the
//! golden Adam trajectory, and a finite-difference check of the gradients, all computed on the
//! device's FPU.
//!
//! The reference numbers are the PyTorch oracle's (`tests/golden/*.json` in the repository,
//! made by the golden generator; tolerances as its README suggests), embedded as constants
//! because the device cannot read files.
#![no_std]
#![no_main]
#![allow(
    clippy::excessive_precision,
    clippy::unreadable_literal,
    clippy::approx_constant,
    clippy::many_single_char_names,
    missing_docs
)]

use cortex_m_rt as _;
use defmt_semihosting as _;
use tinytrain::Mode;
use tinytrain::layer::Layer;
use tinytrain::loss::CrossEntropy;
use tinytrain::optim::Adam;
use tinytrain::prelude::{Dense, Sigmoid, Tanh};
use tinytrain::train::Trainer;

#[defmt::panic_handler]
fn defmt_panic() -> ! {
    tinytrain_firmware::exit_failure()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    tinytrain_firmware::exit_failure()
}

#[cortex_m_rt::exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc={=u32:#010x}", frame.pc());
    tinytrain_firmware::exit_failure()
}

/// `got` within `abs + rel·|want|` of `want`, element by element; logs the first miss.
fn close(what: &str, got: &[f32], want: &[f32], abs: f32, rel: f32) -> bool {
    if got.len() != want.len() {
        defmt::error!("{=str}: {=usize} values, expected {=usize}", what, got.len(), want.len());
        return false;
    }
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        // Written so that NaN fails too.
        let within = (g - w).abs() <= abs + rel * w.abs();
        if !within {
            defmt::error!("{=str}[{=usize}]: got {=f32}, expected {=f32}", what, i, g, w);
            return false;
        }
    }
    true
}

/// The 2-3-1 sigmoid network of the classic backprop slide.
mod slide {
    // From tests/golden/slide_example.json (PyTorch oracle; see tests/golden/README.md).
    pub const X: [f32; 2] = [1.0, 1.0];
    pub const W1: [f32; 6] = [0.8, 0.6, 0.2, 0.9, 0.7, 0.1];
    pub const W2: [f32; 3] = [0.2, 0.8, 0.5];
    pub const TARGET: [f32; 1] = [0.0];
    pub const HIDDEN_NET: [f32; 3] = [1.4000001, 1.1, 0.8];
    pub const HIDDEN_ACTIVATIONS: [f32; 3] = [0.80218387, 0.7502601, 0.6899745];
    pub const OUTPUT_NET: [f32; 1] = [1.1056321];
    pub const OUTPUT: [f32; 1] = [0.7513139];
    pub const DELTA_OUTPUT: [f32; 1] = [0.14037648];
    pub const DELTA_HIDDEN: [f32; 3] = [0.0044551254, 0.02104186, 0.015013945];
    pub const GRAD_W1_HALF_SE: [f32; 6] =
        [0.0044551254, 0.0044551254, 0.02104186, 0.02104186, 0.015013945, 0.015013945];
    pub const GRAD_W2_HALF_SE: [f32; 3] = [0.112607755, 0.105318874, 0.09685619];
    pub const W1_AFTER_SGD_HALF_SE: [f32; 6] = [0.79777247, 0.5977725, 0.18947907, 0.88947904, 0.692493, 0.09249303];
    pub const W2_AFTER_SGD_HALF_SE: [f32; 3] = [0.14369613, 0.74734056, 0.4515719];
    pub const LOSS_HALF: f32 = 0.28223628;
    pub const LR: f32 = 0.5;
}

/// The golden optimizer problem: a 4-8-3 tanh MLP, softmax cross-entropy, a batch of 6.
mod adam_torch {
    // From tests/golden/optimizers.json, run `adam_torch` (PyTorch oracle; see tests/golden/README.md).
    pub const INIT: [f32; 67] = [
        -0.51108676,
        0.6906788,
        -0.050534587,
        0.68593097,
        -0.48186177,
        -0.7012748,
        0.19132033,
        -0.13498245,
        0.27508295,
        -0.36008635,
        -0.017844882,
        -0.64208007,
        0.22514626,
        -0.024612062,
        -0.43178868,
        0.11570423,
        -0.6860081,
        0.43982154,
        -0.70014465,
        0.6165137,
        -0.551541,
        0.09062433,
        -0.34968346,
        -0.5697116,
        0.25243717,
        -0.18491942,
        -0.34353992,
        -0.19309574,
        0.56670403,
        -0.047350794,
        -0.5681114,
        -0.30741438,
        0.08057448,
        0.05325124,
        -0.094523214,
        -0.02052363,
        0.053719588,
        0.099778295,
        0.0013519825,
        0.04596819,
        0.15897788,
        -0.23980255,
        -0.123494886,
        0.6335386,
        0.20122603,
        0.37834722,
        -0.60247827,
        0.2643925,
        -0.68981355,
        -0.026515005,
        -0.5863299,
        0.102126844,
        -0.32194477,
        0.070836924,
        0.2895754,
        0.66481715,
        -0.16530704,
        -0.42762008,
        -0.63402003,
        0.3169909,
        -0.20427449,
        0.5427859,
        0.6082701,
        -0.32398155,
        0.078711264,
        -0.09230237,
        0.07103009,
    ];
    pub const BATCH_X: [f32; 24] = [
        0.89461887,
        -0.44206017,
        2.2011812,
        0.65115273,
        -2.1223812,
        0.46025088,
        0.5585911,
        -1.0267586,
        1.5036856,
        -0.99008065,
        -0.092125,
        -1.7885753,
        -1.1277758,
        0.0695784,
        -0.9914822,
        0.5541807,
        -0.46137914,
        1.3311317,
        -0.034132246,
        1.3000535,
        -0.38984463,
        -0.31737465,
        1.540852,
        0.73575056,
    ];
    pub const BATCH_LABELS: [usize; 6] = [0, 1, 2, 2, 1, 0];
    pub const LR: f32 = 0.01;
    pub const BETA1: f32 = 0.9;
    pub const BETA2: f32 = 0.999;
    pub const EPS: f32 = 1e-07;
    pub const LOSS_BEFORE_STEP: [f32; 10] =
        [1.5971683, 1.5187728, 1.4423964, 1.368223, 1.296478, 1.227397, 1.1612017, 1.0980833, 1.0381936, 0.9816418];
    pub const PARAMS_AFTER_1: [f32; 67] = [
        -0.5010868,
        0.6806788,
        -0.040534593,
        0.69593096,
        -0.49186176,
        -0.6912748,
        0.20132029,
        -0.12498246,
        0.28508294,
        -0.37008634,
        -0.007844887,
        -0.6320801,
        0.23514625,
        -0.034612056,
        -0.4217887,
        0.105704255,
        -0.6760081,
        0.42982158,
        -0.69014466,
        0.6265137,
        -0.541541,
        0.08062434,
        -0.3596834,
        -0.5797116,
        0.24243718,
        -0.17491943,
        -0.3535399,
        -0.20309573,
        0.55670404,
        -0.037350804,
        -0.5581114,
        -0.2974144,
        0.09057446,
        0.043251276,
        -0.084523246,
        -0.0305236,
        0.06371922,
        0.109778196,
        0.0113519635,
        0.05596812,
        0.14897789,
        -0.22980256,
        -0.1134949,
        0.6235386,
        0.19122604,
        0.36834723,
        -0.61247826,
        0.2543925,
        -0.67981356,
        -0.03651499,
        -0.59632987,
        0.09212686,
        -0.31194478,
        0.080836914,
        0.2795754,
        0.65481716,
        -0.17530704,
        -0.41762057,
        -0.62402004,
        0.3269909,
        -0.21427447,
        0.5527859,
        0.6182701,
        -0.31398156,
        0.06871128,
        -0.082302384,
        0.061030306,
    ];
    pub const PARAMS_AFTER_10: [f32; 67] = [
        -0.41222957,
        0.59224874,
        0.04742745,
        0.7845936,
        -0.5769333,
        -0.6038043,
        0.29290432,
        -0.036055826,
        0.37500185,
        -0.46043608,
        0.081486434,
        -0.54184496,
        0.32370174,
        -0.124136575,
        -0.33472437,
        0.015544126,
        -0.58960545,
        0.34214976,
        -0.60021824,
        0.71487343,
        -0.456006,
        -0.006145421,
        -0.45117122,
        -0.66619664,
        0.1540524,
        -0.0867681,
        -0.44177136,
        -0.2899924,
        0.46544066,
        0.05300688,
        -0.469806,
        -0.2081964,
        0.1773695,
        -0.046397835,
        0.004993967,
        -0.114536315,
        0.15366745,
        0.19969465,
        0.102651164,
        0.14714262,
        0.06349411,
        -0.13972907,
        -0.022034176,
        0.5416801,
        0.10319013,
        0.27965862,
        -0.7040113,
        0.16428848,
        -0.59231573,
        -0.11862385,
        -0.6859678,
        0.0006334883,
        -0.22372395,
        0.1675361,
        0.19335501,
        0.5674622,
        -0.26442415,
        -0.4950114,
        -0.5368862,
        0.41635647,
        -0.30366722,
        0.6427673,
        0.70721745,
        -0.22583885,
        -0.021661986,
        0.007205367,
        0.08787914,
    ];
    pub const LOSS_AFTER_10: f32 = 0.9284909;
}

type Slide = tinytrain::sequential![Dense<2, 3>, Sigmoid<3>, Dense<3, 1>, Sigmoid<1>];
type Mlp = tinytrain::sequential![Dense<4, 8>, Tanh<8>, Dense<8, 3>];
const P: usize = <Mlp as Layer>::NUM_PARAMS;

fn flat<M: Layer>(m: &M, out: &mut [f32]) {
    let mut at = 0;
    m.visit(&mut |_, p| {
        out[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    });
}

fn set_flat<M: Layer>(m: &mut M, values: &[f32]) {
    let mut at = 0;
    m.visit_mut(&mut |_, slot| {
        if let tinytrain::params::Slot::Mut(p) = slot {
            let n = p.len();
            p.copy_from_slice(&values[at..at + n]);
            at += n;
        }
    });
}

/// A backbone whose weights are a `static`: on the device they stay in flash.
static BACKBONE: Dense<4, 8> = Dense {
    weight: [
        [0.5, -0.25, 0.125, 0.75],
        [-0.5, 0.25, 0.625, -0.125],
        [0.25, 0.5, -0.75, 0.375],
        [-0.375, -0.5, 0.25, 0.5],
        [0.125, 0.625, 0.5, -0.25],
        [0.75, -0.125, -0.5, 0.25],
        [-0.625, 0.375, 0.125, 0.5],
        [0.25, -0.75, 0.375, -0.5],
    ],
    bias: [0.0, 0.125, -0.125, 0.25, -0.25, 0.0, 0.125, -0.125],
};

/// Names [`BACKBONE`] for [`tinytrain::FrozenRef`].
pub struct Backbone;

impl tinytrain::params::InFlash for Backbone {
    type Layer = Dense<4, 8>;
    fn get() -> &'static Dense<4, 8> {
        &BACKBONE
    }
}

/// A frozen backbone in flash and a head that trains in RAM.
type FineTune = tinytrain::sequential![tinytrain::FrozenRef<Backbone>, Tanh<8>, Dense<8, 3>];

/// Accumulates the batch-mean gradient, returns the batch-mean loss.
fn accumulate_batch(t: &mut Trainer<Mlp, Adam<P>>) -> f32 {
    let scale = 1.0 / adam_torch::BATCH_LABELS.len() as f32;
    let mut sum = 0.0;
    for (i, label) in adam_torch::BATCH_LABELS.iter().enumerate() {
        t.x.copy_from_slice(&adam_torch::BATCH_X[4 * i..4 * i + 4]);
        sum += t.accumulate(&CrossEntropy, label, scale, &mut Mode::Infer).map_or(f32::NAN, |(l, _)| l);
    }
    sum * scale
}

/// Random values in [-2, 2) with special values at a few random places: `kind` 0 none,
/// 1 zeros of both signs and subnormals (and values whose products are subnormal), 2 an
/// infinity among them, 3 a NaN and an infinity.
fn fill(rng: &mut tinytrain::Rng, x: &mut [f32], kind: u32) {
    for v in x.iter_mut() {
        *v = rng.uniform(-2.0, 2.0);
    }
    let specials: &[f32] = match kind {
        1 => &[0.0, -0.0, -0.0, 1e-40, -1e-40, 1e-20, -2e-20, 3e-39, f32::MIN_POSITIVE, -0.0],
        2 => &[-0.0, f32::INFINITY, 1e-40],
        3 => &[f32::NAN, f32::NEG_INFINITY, -0.0],
        _ => &[],
    };
    let n = x.len() as u32;
    if n == 0 {
        return;
    }
    for &v in specials {
        x[rng.below(n) as usize] = v;
    }
}

/// `true` when `a` and `b` hold the same bits, NaN matching any NaN; logs the first
/// difference. The sign and payload of a NaN are not compared: LLVM does not keep them (it
/// compiles the portable Adam's `p -= s * q` to `vmls.f32`, which negates a NaN product, where
/// x86-64 and the assembly kernel subtract), so no target defines them.
fn same_bits(what: &str, a: &[f32], b: &[f32]) -> bool {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if x.to_bits() != y.to_bits() && !(x.is_nan() && y.is_nan()) {
            defmt::error!("{=str}[{=usize}]: {=u32:#010x} vs portable {=u32:#010x}", what, i, x.to_bits(), y.to_bits());
            return false;
        }
    }
    a.len() == b.len()
}

/// The kinds of data [`fill`] makes, and a few more rounds of plain random data.
const KINDS: [u32; 6] = [0, 1, 2, 3, 0, 1];

/// [`tinytrain::kernels::dense_forward`] against its portable reference for one shape.
fn dense_forward_same<const I: usize, const O: usize>(rng: &mut tinytrain::Rng) -> bool {
    let mut w = [[0.0f32; I]; O];
    let (mut x, mut b) = ([0.0f32; I], [0.0f32; O]);
    let (mut y, mut want) = ([0.0f32; O], [0.0f32; O]);
    for kind in KINDS {
        fill(rng, w.as_flattened_mut(), kind);
        fill(rng, &mut x, kind);
        fill(rng, &mut b, kind);
        tinytrain::kernels::dense_forward(&w, &x, &b, &mut y);
        tinytrain::kernels::dense_forward_portable(&w, &x, &b, &mut want);
        if !same_bits("dense_forward", &y, &want) {
            defmt::error!("shape {=usize}x{=usize}, data kind {=u32}", I, O, kind);
            return false;
        }
    }
    true
}

/// [`tinytrain::kernels::dense_grads`] and [`tinytrain::kernels::dense_input_grad`] against
/// their portable references for one shape; some rows of `dy` are zero (skipped).
fn dense_backward_same<const I: usize, const O: usize>(rng: &mut tinytrain::Rng) -> bool {
    let mut w = [[0.0f32; I]; O];
    let (mut x, mut dy) = ([0.0f32; I], [0.0f32; O]);
    let (mut gw, mut gb) = ([[0.0f32; I]; O], [0.0f32; O]);
    let (mut dx, mut want_dx) = ([0.0f32; I], [0.0f32; I]);
    for kind in KINDS {
        fill(rng, w.as_flattened_mut(), kind);
        fill(rng, &mut x, kind);
        fill(rng, &mut dy, kind);
        for _ in 0..O / 3 {
            dy[rng.below(O as u32) as usize] = if rng.below(2) == 0 { 0.0 } else { -0.0 };
        }
        fill(rng, gw.as_flattened_mut(), kind % 3);
        fill(rng, &mut gb, kind % 3);
        let (mut portable_weight, mut portable_bias) = (gw, gb);
        tinytrain::kernels::dense_grads(&x, &dy, &mut gw, &mut gb);
        tinytrain::kernels::dense_grads_portable(&x, &dy, &mut portable_weight, &mut portable_bias);
        fill(rng, &mut dx, kind);
        tinytrain::kernels::dense_input_grad(&w, &dy, &mut dx);
        tinytrain::kernels::dense_input_grad_portable(&w, &dy, &mut want_dx);
        if !(same_bits("dense_grads weight", gw.as_flattened(), portable_weight.as_flattened())
            && same_bits("dense_grads bias", &gb, &portable_bias)
            && same_bits("dense_input_grad", &dx, &want_dx))
        {
            defmt::error!("shape {=usize}x{=usize}, data kind {=u32}", I, O, kind);
            return false;
        }
    }
    true
}

/// [`tinytrain::kernels::adam_update`] against its portable reference for `n` parameters.
fn adam_update_same(rng: &mut tinytrain::Rng, n: usize, c: &tinytrain::kernels::AdamUpdate) -> bool {
    const MAX: usize = 200;
    let (mut p, mut g, mut m, mut v) = ([0.0f32; MAX], [0.0f32; MAX], [0.0f32; MAX], [0.0f32; MAX]);
    for kind in KINDS {
        fill(rng, &mut p[..n], kind);
        fill(rng, &mut g[..n], kind);
        fill(rng, &mut m[..n], kind);
        fill(rng, &mut v[..n], kind);
        for x in &mut v[..n] {
            // Second moments are not negative (a negative one gives NaN on both paths).
            if rng.below(8) != 0 {
                *x = x.abs();
            }
        }
        let (mut p2, mut m2, mut v2) = (p, m, v);
        tinytrain::kernels::adam_update(&mut p[..n], &g[..n], &mut m[..n], &mut v[..n], c);
        tinytrain::kernels::adam_update_portable(&mut p2[..n], &g[..n], &mut m2[..n], &mut v2[..n], c);
        if !(same_bits("adam p", &p[..n], &p2[..n])
            && same_bits("adam m", &m[..n], &m2[..n])
            && same_bits("adam v", &v[..n], &v2[..n]))
        {
            defmt::error!("{=usize} parameters, data kind {=u32}", n, kind);
            return false;
        }
    }
    true
}

/// The element-wise kernels (`all_finite`, `fill_zero`, `relu`, `relu_backward`) against their
/// portable references on the first `n` elements.
fn elementwise_same(rng: &mut tinytrain::Rng, n: usize) -> bool {
    use tinytrain::kernels as k;
    const MAX: usize = 300;
    let (mut x, mut dy) = ([0.0f32; MAX], [0.0f32; MAX]);
    let (mut y, mut want) = ([0.0f32; MAX], [0.0f32; MAX]);
    for kind in KINDS {
        fill(rng, &mut x[..n], kind);
        fill(rng, &mut dy[..n], kind);
        if k::all_finite(&x[..n]) != k::all_finite_portable(&x[..n]) {
            defmt::error!("all_finite: {=usize} elements, data kind {=u32}", n, kind);
            return false;
        }
        // One non-finite value anywhere, the last element included.
        if n > 0 {
            let mut z = x;
            z[rng.below(n as u32) as usize] = if kind % 2 == 0 { f32::INFINITY } else { f32::NAN };
            z[n - 1] = if kind == 2 { f32::NEG_INFINITY } else { z[n - 1] };
            if k::all_finite(&z[..n]) || k::all_finite_portable(&z[..n]) {
                defmt::error!("all_finite missed a non-finite value: {=usize} elements", n);
                return false;
            }
        }
        k::relu(&x[..n], &mut y[..n]);
        k::relu_portable(&x[..n], &mut want[..n]);
        if !same_bits("relu", &y[..n], &want[..n]) {
            return false;
        }
        k::relu_backward(&x[..n], &dy[..n], &mut y[..n]);
        k::relu_backward_portable(&x[..n], &dy[..n], &mut want[..n]);
        if !same_bits("relu_backward", &y[..n], &want[..n]) {
            return false;
        }
        let mut z = x;
        k::fill_zero(&mut z[..n]);
        if z[..n].iter().any(|v| v.to_bits() != 0)
            || z[n..].iter().zip(&x[n..]).any(|(a, b)| a.to_bits() != b.to_bits())
        {
            defmt::error!("fill_zero: {=usize} elements", n);
            return false;
        }
    }
    true
}

/// `Conv2d::forward` (the assembly kernels where they apply) against `forward_portable`.
fn conv_forward_same<
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
>(
    rng: &mut tinytrain::Rng,
) -> bool {
    use tinytrain::prelude::Conv2d;
    let mut c = Conv2d::<CI, CO, K, S, P, H, W, HO, WO>::ZERO;
    let mut x = [[[0.0f32; W]; H]; CI];
    let (mut y, mut want) = ([[[0.0f32; WO]; HO]; CO], [[[0.0f32; WO]; HO]; CO]);
    for kind in KINDS {
        fill(rng, c.weight.as_flattened_mut().as_flattened_mut().as_flattened_mut(), kind);
        fill(rng, &mut c.bias, kind);
        fill(rng, x.as_flattened_mut().as_flattened_mut(), kind);
        c.forward(&x, &mut (), &mut y, &mut Mode::Infer);
        c.forward_portable(&x, &mut want);
        if !same_bits("conv forward", y.as_flattened().as_flattened(), want.as_flattened().as_flattened()) {
            defmt::error!(
                "Conv2d<{=usize}, {=usize}, {=usize}, {=usize}, {=usize}, {=usize}, {=usize}>, data kind {=u32}",
                CI,
                CO,
                K,
                S,
                P,
                H,
                W,
                kind
            );
            return false;
        }
    }
    true
}

/// `Conv2d::backward` (the assembly kernels where they apply) against `backward_portable`:
/// the weight and bias gradients (added to what was there) and the input gradient.
fn conv_backward_same<
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
>(
    rng: &mut tinytrain::Rng,
) -> bool {
    use tinytrain::prelude::Conv2d;
    let mut c = Conv2d::<CI, CO, K, S, P, H, W, HO, WO>::ZERO;
    let mut g = Conv2d::<CI, CO, K, S, P, H, W, HO, WO>::ZERO;
    let mut want_g = Conv2d::<CI, CO, K, S, P, H, W, HO, WO>::ZERO;
    let mut x = [[[0.0f32; W]; H]; CI];
    let (mut dx, mut want_dx) = ([[[0.0f32; W]; H]; CI], [[[0.0f32; W]; H]; CI]);
    let (y, mut dy) = ([[[0.0f32; WO]; HO]; CO], [[[0.0f32; WO]; HO]; CO]);
    for kind in KINDS {
        fill(rng, c.weight.as_flattened_mut().as_flattened_mut().as_flattened_mut(), kind);
        fill(rng, x.as_flattened_mut().as_flattened_mut(), kind);
        fill(rng, dy.as_flattened_mut().as_flattened_mut(), kind);
        fill(rng, g.weight.as_flattened_mut().as_flattened_mut().as_flattened_mut(), kind % 3);
        fill(rng, &mut g.bias, kind % 3);
        want_g.weight = g.weight;
        want_g.bias = g.bias;
        fill(rng, dx.as_flattened_mut().as_flattened_mut(), kind);
        c.backward(&x, &(), &y, &dy, &mut (), Some(&mut g), Some(&mut dx));
        c.backward_portable(&x, &dy, Some(&mut want_g), Some(&mut want_dx));
        if !(same_bits(
            "conv weight gradient",
            g.weight.as_flattened().as_flattened().as_flattened(),
            want_g.weight.as_flattened().as_flattened().as_flattened(),
        ) && same_bits("conv bias gradient", &g.bias, &want_g.bias)
            && same_bits(
                "conv input gradient",
                dx.as_flattened().as_flattened(),
                want_dx.as_flattened().as_flattened(),
            ))
        {
            defmt::error!(
                "Conv2d<{=usize}, {=usize}, {=usize}, {=usize}, {=usize}, {=usize}, {=usize}>, data kind {=u32}",
                CI,
                CO,
                K,
                S,
                P,
                H,
                W,
                kind
            );
            return false;
        }
    }
    true
}

#[defmt_test::tests]
mod tests {
    use tinytrain::layer::Layer;
    use tinytrain::loss::{CrossEntropy, Loss, Mse};
    use tinytrain::optim::{Adam, AdamConfig, AdamForm, Optimizer, Schedule, Sgd, SgdConfig};
    use tinytrain::params::Params;
    use tinytrain::prelude::{Dense, Tanh};
    use tinytrain::train::{Step, Trainer};
    use tinytrain::{Mode, Rng, Tensor, Zero};

    use super::{BACKBONE, FineTune, Mlp, P, Slide, accumulate_batch, adam_torch, close, flat, set_flat, slide};
    use super::{
        adam_update_same, conv_backward_same, conv_forward_same, dense_backward_same, dense_forward_same,
        elementwise_same,
    };

    #[test]
    fn dense_forward_kernel_gives_the_portable_bits() {
        let mut rng = Rng::new(3);
        // Row pairs and an odd last row; remainders of 1 to 7 lanes; more than eight chunks
        // (the looped path, with 0 to 3 chunks after the groups of four).
        assert!(dense_forward_same::<64, 32>(&mut rng));
        assert!(dense_forward_same::<32, 10>(&mut rng));
        assert!(dense_forward_same::<1, 16>(&mut rng));
        assert!(dense_forward_same::<16, 1>(&mut rng));
        assert!(dense_forward_same::<5, 3>(&mut rng));
        assert!(dense_forward_same::<19, 7>(&mut rng));
        assert!(dense_forward_same::<71, 2>(&mut rng));
        assert!(dense_forward_same::<77, 5>(&mut rng));
        assert!(dense_forward_same::<216, 10>(&mut rng));
        assert!(dense_forward_same::<259, 3>(&mut rng));
    }

    #[test]
    fn conv_forward_kernel_gives_the_portable_bits() {
        let mut rng = Rng::new(7);
        // mnist-cnn-tiny's two layers; stride 1 and 3 (wider than the kernel), one input
        // channel and several, a 1x1 and a 5x5 kernel, odd channel counts (a last block of one
        // channel), rows wider than a tile (a last, narrower tile); padding (the portable path).
        assert!(conv_forward_same::<1, 6, 4, 2, 0, 28, 28, 13, 13>(&mut rng));
        assert!(conv_forward_same::<6, 24, 3, 2, 0, 13, 13, 6, 6>(&mut rng));
        assert!(conv_forward_same::<2, 3, 3, 1, 0, 7, 9, 5, 7>(&mut rng));
        assert!(conv_forward_same::<3, 5, 2, 3, 0, 10, 11, 3, 4>(&mut rng));
        assert!(conv_forward_same::<1, 3, 2, 3, 0, 8, 8, 3, 3>(&mut rng));
        assert!(conv_forward_same::<2, 2, 1, 1, 0, 4, 5, 4, 5>(&mut rng));
        assert!(conv_forward_same::<4, 7, 5, 2, 0, 15, 15, 6, 6>(&mut rng));
        assert!(conv_forward_same::<1, 2, 3, 1, 0, 5, 40, 3, 38>(&mut rng));
        assert!(conv_forward_same::<2, 3, 3, 1, 1, 6, 6, 6, 6>(&mut rng));
    }

    #[test]
    fn conv_backward_kernels_give_the_portable_bits() {
        let mut rng = Rng::new(8);
        assert!(conv_backward_same::<1, 6, 4, 2, 0, 28, 28, 13, 13>(&mut rng));
        assert!(conv_backward_same::<6, 24, 3, 2, 0, 13, 13, 6, 6>(&mut rng));
        assert!(conv_backward_same::<2, 3, 3, 1, 0, 7, 9, 5, 7>(&mut rng));
        assert!(conv_backward_same::<3, 5, 2, 3, 0, 10, 11, 3, 4>(&mut rng));
        assert!(conv_backward_same::<1, 3, 2, 3, 0, 8, 8, 3, 3>(&mut rng));
        assert!(conv_backward_same::<2, 2, 1, 1, 0, 4, 5, 4, 5>(&mut rng));
        assert!(conv_backward_same::<4, 7, 5, 2, 0, 15, 15, 6, 6>(&mut rng));
        assert!(conv_backward_same::<1, 2, 3, 1, 0, 5, 40, 3, 38>(&mut rng));
        assert!(conv_backward_same::<2, 3, 3, 2, 0, 21, 21, 10, 10>(&mut rng));
        // Input rows no kernel row reaches (written as zeros), kernels taller than the stride.
        assert!(conv_backward_same::<2, 3, 2, 2, 0, 9, 9, 4, 4>(&mut rng));
        assert!(conv_backward_same::<1, 2, 4, 3, 0, 11, 10, 3, 3>(&mut rng));
        assert!(conv_backward_same::<2, 3, 3, 1, 1, 6, 6, 6, 6>(&mut rng));
    }

    #[test]
    fn elementwise_kernels_give_the_portable_bits() {
        let mut rng = Rng::new(6);
        // Blocks of 8, 16 and 24 and every remainder up to the next block.
        for n in (0..50).chain([64, 100, 216, 299]) {
            assert!(elementwise_same(&mut rng, n));
        }
    }

    #[test]
    fn adam_kernel_gives_the_portable_bits() {
        use tinytrain::kernels::AdamUpdate;
        let mut rng = Rng::new(5);
        let torch = |t: u32| {
            let (b1, b2, lr) = (0.9f32, 0.999f32, 1e-3f32);
            let (bc1, bc2) = (1.0 - tinytrain::math::powi(b1, t), 1.0 - tinytrain::math::powi(b2, t));
            AdamUpdate {
                beta1: b1,
                one_minus_beta1: 1.0 - b1,
                beta2: b2,
                one_minus_beta2: 1.0 - b2,
                inv_sqrt_bc2: 1.0 / tinytrain::math::sqrt(bc2),
                eps: 1e-8,
                step_size: lr / bc1,
            }
        };
        let keras = AdamUpdate { inv_sqrt_bc2: 1.0, eps: 1e-7, step_size: 2e-3, ..torch(3) };
        for c in [torch(1), torch(100), keras] {
            // Blocks of six and the one-at-a-time rest.
            for n in [0, 1, 5, 6, 7, 12, 13, 35, 200] {
                assert!(adam_update_same(&mut rng, n, &c));
            }
        }
    }

    #[test]
    fn dense_backward_kernels_give_the_portable_bits() {
        let mut rng = Rng::new(4);
        // Blocks of 15 columns with remainders of 1 to 14, even and odd row counts, more than
        // eight chunks of 15 per row (the looped path).
        assert!(dense_backward_same::<64, 32>(&mut rng));
        assert!(dense_backward_same::<32, 10>(&mut rng));
        assert!(dense_backward_same::<1, 16>(&mut rng));
        assert!(dense_backward_same::<16, 1>(&mut rng));
        assert!(dense_backward_same::<5, 3>(&mut rng));
        assert!(dense_backward_same::<15, 4>(&mut rng));
        assert!(dense_backward_same::<44, 7>(&mut rng));
        assert!(dense_backward_same::<136, 3>(&mut rng));
        assert!(dense_backward_same::<216, 10>(&mut rng));
    }

    /// abs 1e-5 + rel 1e-4: the golden README's tolerance for layers and the slide.
    const ABS: f32 = 1e-5;
    const REL: f32 = 1e-4;

    #[test]
    fn slide_forward_and_backward_match_pytorch() {
        let mut net = Slide::ZERO;
        net.a.weight = [[slide::W1[0], slide::W1[1]], [slide::W1[2], slide::W1[3]], [slide::W1[4], slide::W1[5]]];
        net.b.b.a.weight = [slide::W2];
        let mut acts = <Slide as Layer>::Acts::ZERO;
        let mut deltas = <Slide as Layer>::Acts::ZERO;
        let mut grads = Slide::ZERO;
        let (mut y, mut dy) = ([0.0f32; 1], [0.0f32; 1]);
        net.forward(&slide::X, &mut acts, &mut y, &mut Mode::Infer);
        assert!(close("hidden_net", &acts.mid, &slide::HIDDEN_NET, ABS, REL));
        assert!(close("hidden_activations", &acts.b.mid, &slide::HIDDEN_ACTIVATIONS, ABS, REL));
        assert!(close("output_net", &acts.b.b.mid, &slide::OUTPUT_NET, ABS, REL));
        assert!(close("output", &y, &slide::OUTPUT, ABS, REL));

        let loss = Mse::HALF_SUM.loss_and_grad(&y, &slide::TARGET, 1.0, &mut dy).unwrap_or(f32::NAN);
        assert!(close("0.5*(t-y)^2", &[loss], &[slide::LOSS_HALF], ABS, REL));
        net.backward(&slide::X, &acts, &y, &dy, &mut deltas, Some(&mut grads), None);
        assert!(close("delta_output", &deltas.b.b.mid, &slide::DELTA_OUTPUT, ABS, REL));
        assert!(close("delta_hidden", &deltas.mid, &slide::DELTA_HIDDEN, ABS, REL));
        assert!(close("grad_W1", grads.a.weight.as_flattened(), &slide::GRAD_W1_HALF_SE, ABS, REL));
        assert!(close("grad_W2", grads.b.b.a.weight.as_flattened(), &slide::GRAD_W2_HALF_SE, ABS, REL));

        // One SGD step; the slide has no biases, so their gradients are dropped.
        grads.a.bias = [0.0; 3];
        grads.b.b.a.bias = [0.0; 1];
        let mut sgd = Sgd::ZERO;
        sgd.step(&SgdConfig { lr: Schedule::Constant(slide::LR) }, &mut net, &grads);
        assert!(close("W1 after SGD", net.a.weight.as_flattened(), &slide::W1_AFTER_SGD_HALF_SE, ABS, REL));
        assert!(close("W2 after SGD", net.b.b.a.weight.as_flattened(), &slide::W2_AFTER_SGD_HALF_SE, ABS, REL));
    }

    #[test]
    fn adam_torch_trajectory_matches_pytorch() {
        let cfg = AdamConfig {
            lr: Schedule::Constant(adam_torch::LR),
            beta1: adam_torch::BETA1,
            beta2: adam_torch::BETA2,
            eps: adam_torch::EPS,
            form: AdamForm::Torch,
        };
        let mut t = Trainer::<Mlp, Adam<P>>::ZERO;
        set_flat(&mut t.model, &adam_torch::INIT);
        let mut params = [0.0f32; P];
        let mut losses = [0.0f32; 10];
        for (step, loss) in losses.iter_mut().enumerate() {
            *loss = accumulate_batch(&mut t);
            assert!(t.apply(&cfg, None) == Step::Applied);
            if step == 0 {
                flat(&t.model, &mut params);
                assert!(close("params after 1 step", &params, &adam_torch::PARAMS_AFTER_1, 1e-5, 0.0));
            }
        }
        // abs 1e-5: the golden README's tolerance for trajectories.
        assert!(close("loss before each step", &losses, &adam_torch::LOSS_BEFORE_STEP, 1e-5, 0.0));
        flat(&t.model, &mut params);
        assert!(close("params after 10 steps", &params, &adam_torch::PARAMS_AFTER_10, 1e-5, 0.0));
        let after = accumulate_batch(&mut t);
        assert!(close("loss after 10 steps", &[after], &[adam_torch::LOSS_AFTER_10], 1e-5, 0.0));
    }

    #[test]
    fn gradients_match_central_differences() {
        // A small tanh MLP with random weights; every parameter's analytic gradient against
        // (L(p + h) - L(p - h)) / 2h, in f32 on the device.
        type Net = tinytrain::sequential![Dense<5, 4>, Tanh<4>, Dense<4, 3>];
        const N: usize = <Net as Layer>::NUM_PARAMS;
        let mut t = Trainer::<Net, Adam<N>>::ZERO;
        let mut rng = Rng::new(11);
        t.model.init(&mut rng);
        t.model.visit_mut(&mut |_, slot| {
            if let tinytrain::params::Slot::Mut(p) = slot {
                for v in p.iter_mut() {
                    *v += rng.uniform(-0.1, 0.1);
                }
            }
        });
        let x: [f32; 5] = [0.5, -1.0, 0.25, 2.0, -0.75];
        let label = 2usize;
        t.x = x;
        let _ = t.accumulate(&CrossEntropy, &label, 1.0, &mut Mode::Infer);
        let mut analytic = [0.0f32; N];
        flat(&t.grads, &mut analytic);
        let mut base = [0.0f32; N];
        flat(&t.model, &mut base);
        let h = 1e-2f32;
        let mut worst = 0.0f32;
        for i in 0..N {
            let mut loss_at = |v: f32| {
                let mut p = base;
                p[i] = v;
                set_flat(&mut t.model, &p);
                let mut y = [0.0f32; 3];
                t.model.predict(&x, &mut t.acts, &mut y);
                CrossEntropy.loss(&y, &label).unwrap_or(f32::NAN)
            };
            let numeric = (loss_at(base[i] + h) - loss_at(base[i] - h)) / (2.0 * h);
            let err = (numeric - analytic[i]).abs() / (1e-2 + analytic[i].abs());
            worst = worst.max(err);
            assert!(close("gradient", &[analytic[i]], &[numeric], 2e-3, 2e-2));
        }
        defmt::info!("finite differences: {=usize} parameters, worst relative error {=f32}", N, worst);
        assert!(analytic.flat().iter().any(|g| g.abs() > 1e-3), "gradients are not all zero");
    }

    #[test]
    fn a_head_trains_over_a_frozen_backbone_in_flash() {
        // The network holds the head only; the backbone is read from flash.
        const N: usize = <FineTune as Layer>::NUM_PARAMS;
        assert_eq!(core::mem::size_of::<FineTune>(), core::mem::size_of::<Dense<8, 3>>());
        assert_eq!(N, 8 * 3 + 3);
        let data = adam_torch::BATCH_X;
        let labels = adam_torch::BATCH_LABELS;
        let samples: [([f32; 4], usize); 6] = core::array::from_fn(|i| {
            let mut x = [0.0f32; 4];
            x.copy_from_slice(&data[4 * i..4 * i + 4]);
            (x, labels[i])
        });
        let mut t = Trainer::<FineTune, Adam<N>>::ZERO;
        t.model.init(&mut Rng::new(5));
        let backbone_before = BACKBONE.weight;
        let first = t.evaluate(&CrossEntropy, &samples[..]).map_or(f32::NAN, |e| e.loss);
        let adam = AdamConfig { lr: Schedule::Constant(0.05), ..AdamConfig::default() };
        let report = t.fit(&adam, &CrossEntropy, &samples[..]).epochs(60).batch_size(4).run();
        let last = t.evaluate(&CrossEntropy, &samples[..]).map_or(f32::NAN, |e| e.loss);
        defmt::info!("head over a frozen backbone in flash: loss {=f32} -> {=f32}", first, last);
        assert!(report.is_ok());
        assert!(last < 0.5 * first, "the head did not learn");
        assert!(BACKBONE.weight == backbone_before);
    }
}
