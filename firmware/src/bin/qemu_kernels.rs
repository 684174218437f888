//! Instructions per call of each Cortex-M4F kernel and of its portable reference, on the
//! layer shapes of the digits MLP and mnist-cnn-tiny, counted with SysTick under QEMU
//! `-icount shift=7` (instruction counts, not cycles). Multiply-accumulates are counted from
//! the shapes, so each line also gives instructions per multiply-accumulate.
//!
//! Run: `cargo run --release --bin qemu_kernels` in `firmware/`. Prints one `TT-KERNEL` line
//! per kernel and exits 0.
#![no_std]
#![no_main]
#![allow(clippy::many_single_char_names)]

use cortex_m_rt::entry;
use defmt_semihosting as _;
use tinytrain::Rng;
use tinytrain::kernels::{self as k, AdamUpdate};
use tinytrain::layer::{Layer, Mode};
use tinytrain::prelude::{Conv2d, Dense};
use tinytrain_firmware::{SysTickCounter, exit_failure, exit_success};
use tinytrain_firmware_app::Counter;

/// Calls per measurement.
const CALLS: u64 = 8;

/// Instructions per call of `f`.
fn count(counter: &mut SysTickCounter, mut f: impl FnMut()) -> u64 {
    f();
    let mark = counter.now();
    for _ in 0..CALLS {
        f();
    }
    (counter.now() - mark) / CALLS
}

/// Reports one kernel: its multiply-accumulates (or elements), the portable code's
/// instructions per call and the kernel's.
fn report(name: &str, macs: usize, portable: u64, kernel: u64) {
    let per = |n: u64| n as f32 / macs.max(1) as f32;
    defmt::println!(
        "TT-KERNEL name={=str} macs={=usize} portable={=u64} kernel={=u64} portable_per_mac={=f32} kernel_per_mac={=f32}",
        name,
        macs,
        portable,
        kernel,
        per(portable),
        per(kernel)
    );
}

/// Random values in [-1, 1).
fn fill(rng: &mut Rng, x: &mut [f32]) {
    for v in x {
        *v = rng.uniform(-1.0, 1.0);
    }
}

fn dense<const I: usize, const O: usize>(counter: &mut SysTickCounter, rng: &mut Rng, name: &str) {
    let mut d = Dense::<I, O>::ZERO;
    let (mut x, mut y, mut dy, mut dx) = ([0.0f32; I], [0.0f32; O], [0.0f32; O], [0.0f32; I]);
    let mut g = Dense::<I, O>::ZERO;
    fill(rng, d.weight.as_flattened_mut());
    fill(rng, &mut d.bias);
    fill(rng, &mut x);
    fill(rng, &mut dy);
    let p = count(counter, || k::dense_forward_portable(&d.weight, &x, &d.bias, &mut y));
    let a = count(counter, || k::dense_forward(&d.weight, &x, &d.bias, &mut y));
    report(name, I * O, p, a);
    let p = count(counter, || k::dense_grads_portable(&x, &dy, &mut g.weight, &mut g.bias));
    let a = count(counter, || k::dense_grads(&x, &dy, &mut g.weight, &mut g.bias));
    report("  weight and bias gradients (no zero dy)", I * O, p, a);
    let p = count(counter, || k::dense_input_grad_portable(&d.weight, &dy, &mut dx));
    let a = count(counter, || k::dense_input_grad(&d.weight, &dy, &mut dx));
    report("  input gradient", I * O, p, a);
}

fn conv<
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
>(
    counter: &mut SysTickCounter,
    rng: &mut Rng,
    name: &str,
) {
    let mut c = Conv2d::<CI, CO, K, S, 0, H, W, HO, WO>::ZERO;
    let mut g = Conv2d::<CI, CO, K, S, 0, H, W, HO, WO>::ZERO;
    let mut x = [[[0.0f32; W]; H]; CI];
    let (mut y, mut dy) = ([[[0.0f32; WO]; HO]; CO], [[[0.0f32; WO]; HO]; CO]);
    let mut dx = [[[0.0f32; W]; H]; CI];
    fill(rng, c.weight.as_flattened_mut().as_flattened_mut().as_flattened_mut());
    fill(rng, x.as_flattened_mut().as_flattened_mut());
    fill(rng, dy.as_flattened_mut().as_flattened_mut());
    let macs = CO * HO * WO * CI * K * K;
    let p = count(counter, || c.forward_portable(&x, &mut y));
    let a = count(counter, || c.forward(&x, &mut (), &mut y, &mut Mode::Infer));
    report(name, macs, p, a);
    let p = count(counter, || c.backward_portable(&x, &dy, Some(&mut g), None));
    let a = count(counter, || c.backward(&x, &(), &y, &dy, &mut (), Some(&mut g), None));
    report("  weight and bias gradients", macs, p, a);
    let p = count(counter, || c.backward_portable(&x, &dy, None, Some(&mut dx)));
    let a = count(counter, || c.backward(&x, &(), &y, &dy, &mut (), None, Some(&mut dx)));
    report("  input gradient", macs, p, a);
}

#[entry]
fn main() -> ! {
    let Some(cp) = cortex_m::Peripherals::take() else { exit_failure() };
    let mut counter = SysTickCounter::start(cp.SYST);
    let mut rng = Rng::new(1);
    dense::<64, 32>(&mut counter, &mut rng, "Dense<64, 32> forward (digits)");
    dense::<32, 10>(&mut counter, &mut rng, "Dense<32, 10> forward (digits)");
    dense::<216, 10>(&mut counter, &mut rng, "Dense<216, 10> forward (mnist-cnn-tiny)");
    conv::<1, 6, 4, 2, 28, 28, 13, 13>(&mut counter, &mut rng, "Conv2d<1, 6, 4, 2> forward (mnist-cnn-tiny)");
    conv::<6, 24, 3, 2, 13, 13, 6, 6>(&mut counter, &mut rng, "Conv2d<6, 24, 3, 2> forward (mnist-cnn-tiny)");
    // Adam on the digits MLP's 2,410 parameters; ReLU and the finite check per element.
    let c = AdamUpdate {
        beta1: 0.9,
        one_minus_beta1: 0.1,
        beta2: 0.999,
        one_minus_beta2: 0.001,
        inv_sqrt_bc2: 1.0,
        eps: 1e-8,
        step_size: 1e-3,
    };
    let (mut p, mut g, mut m, mut v) = ([0.0f32; 2410], [0.0f32; 2410], [0.0f32; 2410], [0.0f32; 2410]);
    fill(&mut rng, &mut p);
    fill(&mut rng, &mut g);
    fill(&mut rng, &mut m);
    let portable = count(&mut counter, || k::adam_update_portable(&mut p, &g, &mut m, &mut v, &c));
    let kernel = count(&mut counter, || k::adam_update(&mut p, &g, &mut m, &mut v, &c));
    report("Adam update, per parameter", 2410, portable, kernel);
    let portable = count(&mut counter, || {
        core::hint::black_box(k::all_finite_portable(&g));
    });
    let kernel = count(&mut counter, || {
        core::hint::black_box(k::all_finite(&g));
    });
    report("finite check, per value", 2410, portable, kernel);
    let mut y = [0.0f32; 2410];
    let portable = count(&mut counter, || k::relu_portable(&g, &mut y));
    let kernel = count(&mut counter, || k::relu(&g, &mut y));
    report("ReLU, per value", 2410, portable, kernel);
    let portable = count(&mut counter, || k::relu_backward_portable(&g, &m, &mut y));
    let kernel = count(&mut counter, || k::relu_backward(&g, &m, &mut y));
    report("ReLU gradient, per value", 2410, portable, kernel);
    // A slice of run-time length, as the gradients' tensors are visited.
    let portable = count(&mut counter, || core::hint::black_box(&mut y[..]).fill(0.0));
    let kernel = count(&mut counter, || k::fill_zero(&mut y));
    report("zeroing, per value", 2410, portable, kernel);
    exit_success()
}

tinytrain_firmware::qemu_handlers!();
