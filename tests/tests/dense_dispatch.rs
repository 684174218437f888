//! The host picks an AVX-512 or AVX2 build of the dense kernels at run time for big layers; each
//! must give the bits of the portable kernels, which are the ones the Cortex-M runs.

use tinytrain::kernels::{self, host};
use tinytrain::layers::X86Path;
use tinytrain::prelude::*;

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

#[allow(clippy::unnecessary_box_returns)] // the weights must not sit on the test stack
fn filled<const N: usize>(rng: &mut Rng, zeros_every: usize) -> Box<[f32; N]> {
    let mut t = Box::new([0.0f32; N]);
    for (k, v) in t.iter_mut().enumerate() {
        *v = if zeros_every > 0 && k % zeros_every == 0 { 0.0 } else { rng.uniform(-1.0, 1.0) };
    }
    t
}

/// Forward, weight and bias gradients (accumulated over two samples) and the input gradient,
/// through every path this CPU has, against the portable kernels.
fn same_bits<const I: usize, const O: usize>() {
    assert!(I * O >= host::WIDE_MIN, "the shape must take the wide path");
    let mut rng = Rng::new(7);
    let mut w = Box::new([[0.0f32; I]; O]);
    w.iter_mut().flatten().for_each(|v| *v = rng.uniform(-0.5, 0.5));
    let b = filled::<O>(&mut rng, 0);
    let xs = [filled::<I>(&mut rng, 0), filled::<I>(&mut rng, 5)];
    // Zeros in dy: rows a ReLU switched off, which the gradient kernels skip.
    let dys = [filled::<O>(&mut rng, 3), filled::<O>(&mut rng, 4)];

    let run = |path: Option<X86Path>| {
        let mut y = Box::new([0.0f32; O]);
        let (mut gw, mut gb) = (Box::new([[0.0f32; I]; O]), Box::new([0.0f32; O]));
        let mut dx = Box::new([0.0f32; I]);
        for (x, dy) in xs.iter().zip(&dys) {
            match path {
                None => {
                    kernels::dense_forward_portable(&w, x, &b, &mut y);
                    kernels::dense_grads_portable(x, dy, &mut gw, &mut gb);
                    kernels::dense_input_grad_portable(&w, dy, &mut dx);
                }
                Some(p) => {
                    host::dense_forward(&w, x, &b, &mut y);
                    host::dense_grads(p, x, dy, &mut gw, &mut gb);
                    host::dense_input_grad(p, &w, dy, &mut dx);
                }
            }
        }
        (bits(&*y), bits(gw.as_flattened()), bits(&*gb), bits(&*dx))
    };
    let want = run(None);
    assert!(want.1.iter().any(|&v| v != 0) && want.3.iter().any(|&v| v != 0));
    for path in [X86Path::Avx2, X86Path::Avx512] {
        if !path.available() {
            eprintln!("{path:?}: not on this CPU (the portable kernel ran)");
        }
        let got = run(Some(path));
        assert_eq!(got.0, want.0, "forward, {path:?}");
        assert_eq!(got.1, want.1, "weight gradients, {path:?}");
        assert_eq!(got.2, want.2, "bias gradients, {path:?}");
        assert_eq!(got.3, want.3, "input gradient, {path:?}");
    }
}

/// Four samples at once (batched inference) on the host's AVX kernel against the portable
/// kernel and against one sample at a time.
fn predict4_same_bits<const I: usize, const O: usize>() {
    let mut rng = Rng::new(11);
    let mut w = Box::new([[0.0f32; I]; O]);
    w.iter_mut().flatten().for_each(|v| *v = rng.uniform(-0.5, 0.5));
    let b = filled::<O>(&mut rng, 0);
    let xs = [filled::<I>(&mut rng, 0), filled::<I>(&mut rng, 3), filled::<I>(&mut rng, 0), filled::<I>(&mut rng, 7)];
    let x = [&*xs[0], &*xs[1], &*xs[2], &*xs[3]];
    let (mut fast, mut slow) = ([[0.0f32; O]; 4], [[0.0f32; O]; 4]);
    {
        let [a, b2, c, d] = &mut fast;
        host::dense_predict4(&w, &b, x, [a, b2, c, d]);
    }
    {
        let [a, b2, c, d] = &mut slow;
        kernels::dense_predict4_portable(&w, &b, x, [a, b2, c, d]);
    }
    for s in 0..4 {
        let mut one = [0.0f32; O];
        kernels::dense_forward_portable(&w, x[s], &b, &mut one);
        assert_eq!(bits(&fast[s]), bits(&slow[s]), "sample {s}, {I} -> {O}");
        assert_eq!(bits(&fast[s]), bits(&one), "sample {s} alone, {I} -> {O}");
    }
}

#[test]
fn batched_inference_gives_the_portable_bits() {
    // digits-mlp's layers (no remainder of the 8-lane sums), and shapes with remainders.
    predict4_same_bits::<64, 32>();
    predict4_same_bits::<32, 10>();
    predict4_same_bits::<67, 5>();
    predict4_same_bits::<3, 9>();
    predict4_same_bits::<216, 10>();
}

#[test]
fn big_dense_layers_give_the_portable_bits() {
    // mnist-cnn's hidden layer, and shapes with remainders of the 8-lane sums and odd rows.
    same_bits::<9216, 128>();
    same_bits::<1027, 17>();
    same_bits::<130, 129>();
}

/// Adam updates through the host's AVX-512 build against the portable kernel: lengths with and
/// without a remainder of the 16 lanes, zero gradients, tiny moments, both epsilon placements'
/// coefficients, two hundred steps so the moments carry history.
#[test]
fn adam_update_gives_the_portable_bits() {
    let mut rng = Rng::new(5);
    for n in [1usize, 15, 16, 33, 2048, 2410] {
        for (inv_sqrt_bc2, eps) in [(1.0 / 0.0199_f32.sqrt(), 1e-8), (1.0, 1e-7)] {
            let c = kernels::AdamUpdate {
                beta1: 0.9,
                one_minus_beta1: 0.1,
                beta2: 0.999,
                one_minus_beta2: 0.001,
                inv_sqrt_bc2,
                eps,
                step_size: 1e-3,
            };
            let p0: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
            let (mut fast, mut slow) =
                ((p0.clone(), vec![0.0f32; n], vec![1e-38f32; n]), (p0, vec![0.0; n], vec![1e-38; n]));
            for step in 0..200 {
                let g: Vec<f32> =
                    (0..n).map(|k| if (k + step) % 3 == 0 { 0.0 } else { rng.uniform(-1.0, 1.0) }).collect();
                host::adam_update(&mut fast.0, &g, &mut fast.1, &mut fast.2, &c);
                kernels::adam_update_portable(&mut slow.0, &g, &mut slow.1, &mut slow.2, &c);
            }
            assert_eq!(bits(&fast.0), bits(&slow.0), "parameters, n {n}");
            assert_eq!(bits(&fast.1), bits(&slow.1), "m, n {n}");
            assert_eq!(bits(&fast.2), bits(&slow.2), "v, n {n}");
        }
    }
}
