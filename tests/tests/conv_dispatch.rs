//! The host picks an AVX2 build of the convolution kernels at run time; it must give the bits
//! of the portable kernels, which are the ones the Cortex-M runs.

use tinytrain::layers::Conv2d;
use tinytrain::prelude::*;

#[allow(clippy::unnecessary_box_returns)] // the big tensors must not sit on the test stack
fn filled<T: Tensor>(seed: u64) -> Box<T> {
    let mut t = Box::new(T::ZERO);
    let mut rng = Rng::new(seed);
    t.flat_mut().iter_mut().for_each(|v| *v = rng.uniform(-1.0, 1.0));
    t
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// Forward and backward through both paths, compared bit for bit.
fn same_bits<
    const CI: usize,
    const CO: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const H: usize,
    const W: usize,
    const HO: usize,
    const WO: usize,
>() {
    let mut conv = Box::new(Conv2d::<CI, CO, K, S, P, H, W, HO, WO>::ZERO);
    conv.init_with(Init::TorchDefault, &mut Rng::new(1));
    let x = filled::<[[[f32; W]; H]; CI]>(2);
    let dy = filled::<[[[f32; WO]; HO]; CO]>(3);

    let (mut y_fast, mut y_slow) = (Box::new([[[0.0f32; WO]; HO]; CO]), Box::new([[[0.0f32; WO]; HO]; CO]));
    conv.forward(&x, &mut (), &mut y_fast, &mut Mode::Infer);
    conv.forward_portable(&x, &mut y_slow);
    assert_eq!(bits(y_fast.flat()), bits(y_slow.flat()), "forward");

    let (mut g_fast, mut g_slow) = (
        Box::new(Conv2d::<CI, CO, K, S, P, H, W, HO, WO>::ZERO),
        Box::new(Conv2d::<CI, CO, K, S, P, H, W, HO, WO>::ZERO),
    );
    let (mut dx_fast, mut dx_slow) = (Box::new([[[0.0f32; W]; H]; CI]), Box::new([[[0.0f32; W]; H]; CI]));
    conv.backward(&x, &(), &y_fast, &dy, &mut (), Some(&mut g_fast), Some(&mut dx_fast));
    conv.backward_portable(&x, &dy, Some(&mut g_slow), Some(&mut dx_slow));
    assert_eq!(bits(dx_fast.flat()), bits(dx_slow.flat()), "input gradient");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    g_fast.visit(&mut |_, p| a.extend(bits(p)));
    g_slow.visit(&mut |_, p| b.extend(bits(p)));
    assert_eq!(a, b, "parameter gradients");
    assert!(a.iter().any(|&v| v != 0), "the test must exercise non-zero gradients");
}

#[test]
fn mnist_cnn_second_convolution() {
    if !std::is_x86_feature_detected!("avx2") {
        eprintln!("no AVX2 on this CPU: both paths are the portable one");
    }
    same_bits::<32, 64, 3, 1, 0, 26, 26, 24, 24>();
}

#[test]
fn strided_and_padded_convolutions() {
    same_bits::<1, 6, 4, 2, 0, 28, 28, 13, 13>();
    same_bits::<6, 24, 3, 2, 0, 13, 13, 6, 6>();
    same_bits::<3, 5, 3, 1, 1, 9, 11, 9, 11>();
    same_bits::<2, 7, 5, 3, 2, 12, 10, 4, 4>();
}
