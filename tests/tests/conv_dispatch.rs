//! The host picks an AVX-512 or AVX2 build of the convolution kernels at run time (wider
//! register tiles); each must give the bits of the portable kernels, which are the ones the
//! Cortex-M runs. The same for 2x2 max pooling's AVX-512 kernel.

use tinytrain::layers::{Conv2d, MaxPool2x2, X86Path};
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
    drop(y_fast);

    let mut g_slow = Box::new(Conv2d::<CI, CO, K, S, P, H, W, HO, WO>::ZERO);
    let mut dx_slow = Box::new([[[0.0f32; W]; H]; CI]);
    conv.backward_portable(&x, &dy, Some(&mut g_slow), Some(&mut dx_slow));
    let mut b = Vec::new();
    g_slow.visit(&mut |_, p| b.extend(bits(p)));
    assert!(b.iter().any(|&v| v != 0), "the test must exercise non-zero gradients");

    // The dispatched path, then each host path this CPU has.
    for path in [None, Some(X86Path::Avx2), Some(X86Path::Avx512)] {
        let mut y = Box::new([[[0.0f32; WO]; HO]; CO]);
        let mut g = Box::new(Conv2d::<CI, CO, K, S, P, H, W, HO, WO>::ZERO);
        let mut dx = Box::new([[[0.0f32; W]; H]; CI]);
        match path {
            None => {
                conv.forward(&x, &mut (), &mut y, &mut Mode::Infer);
                conv.backward(&x, &(), &y, &dy, &mut (), Some(&mut g), Some(&mut dx));
            }
            Some(p) => {
                if !conv.forward_on(p, &x, &mut y) {
                    eprintln!("{p:?}: not on this CPU");
                    continue;
                }
                assert!(conv.backward_on(p, &x, &dy, Some(&mut g), Some(&mut dx)));
            }
        }
        assert_eq!(bits(y.flat()), bits(y_slow.flat()), "forward, {path:?}");
        assert_eq!(bits(dx.flat()), bits(dx_slow.flat()), "input gradient, {path:?}");
        let mut a = Vec::new();
        g.visit(&mut |_, p| a.extend(bits(p)));
        assert_eq!(a, b, "parameter gradients, {path:?}");
    }
}

#[test]
fn mnist_cnn_second_convolution() {
    if !std::is_x86_feature_detected!("avx2") {
        eprintln!("no AVX2 on this CPU: both paths are the portable one");
    }
    same_bits::<32, 64, 3, 1, 0, 26, 26, 24, 24>();
    // The first: 26 columns, a 16-wide tile and one moved left to end at 26.
    same_bits::<1, 32, 3, 1, 0, 28, 28, 26, 26>();
    // Unpadded stride 1 with 16 filters, 48 (a pair of vectors and a single one), and widths
    // that leave columns outside the 6-column tiles.
    same_bits::<3, 16, 3, 1, 0, 10, 13, 8, 11>();
    same_bits::<2, 48, 5, 1, 0, 9, 21, 5, 17>();
    // Input gradients across 16 and 48 input channels, padded and not.
    same_bits::<16, 5, 3, 1, 0, 9, 15, 7, 13>();
    same_bits::<48, 4, 3, 1, 1, 6, 19, 6, 19>();
}

#[test]
fn strided_and_padded_convolutions() {
    same_bits::<1, 6, 4, 2, 0, 28, 28, 13, 13>();
    same_bits::<6, 24, 3, 2, 0, 13, 13, 6, 6>();
    same_bits::<3, 5, 3, 1, 1, 9, 11, 9, 11>();
    same_bits::<2, 7, 5, 3, 2, 12, 10, 4, 4>();
    // Padded, rows of 19 and 21: wide tiles, then 8, 4, 2 and 1 column.
    same_bits::<3, 6, 3, 1, 1, 7, 19, 7, 19>();
    same_bits::<2, 5, 5, 1, 2, 6, 23, 6, 23>();
}

/// 2x2 max pooling, dispatched (AVX-512 where the CPU has it) against the portable windows:
/// values that tie, signed zeros and NaN (a later element replaces the maximum only when
/// greater), widths below, at and across 16 outputs, odd widths (the last column dropped).
/// Returns how many outputs are -0.0 and NaN.
fn pool_same_bits<const C: usize, const H: usize, const W: usize, const HO: usize, const WO: usize>() -> [usize; 2] {
    let specials = [0.0, -0.0, f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0, -1.0];
    let mut x = Box::new([[[0.0f32; W]; H]; C]);
    let mut rng = Rng::new(7);
    for v in x.flat_mut() {
        *v = if rng.next_f32() < 0.5 {
            specials[rng.below(specials.len() as u32) as usize]
        } else {
            rng.uniform(-1.0, 1.0)
        };
    }
    let pool = MaxPool2x2::<C, H, W, HO, WO>::ZERO;
    let (mut fast, mut slow) = (Box::new([[[1.5f32; WO]; HO]; C]), Box::new([[[2.5f32; WO]; HO]; C]));
    pool.forward(&x, &mut (), &mut fast, &mut Mode::Infer);
    pool.forward_portable(&x, &mut slow);
    assert_eq!(bits(fast.flat()), bits(slow.flat()), "max pooling {C}x{H}x{W}");
    let signed_zeros = slow.flat().iter().filter(|v| **v == 0.0 && v.is_sign_negative()).count();
    [signed_zeros, slow.flat().iter().filter(|v| v.is_nan()).count()]
}

#[test]
fn max_pooling_2x2() {
    let counts = [
        pool_same_bits::<64, 24, 24, 12, 12>(),
        pool_same_bits::<3, 7, 9, 3, 4>(),
        pool_same_bits::<2, 5, 35, 2, 17>(),
        pool_same_bits::<4, 4, 66, 2, 33>(),
        pool_same_bits::<5, 2, 2, 1, 1>(),
    ];
    // Windows whose maximum is -0.0 or NaN: an operand swap in the kernel changes those.
    assert!(counts.iter().all(|c| c[1] > 0), "NaN in every shape: {counts:?}");
    assert!(counts[0][0] > 0, "negative zeros: {counts:?}");
}
