//! Finite-difference gradient checks of the image layers, with strides, padding and edge
//! tiles, plus the statistics of dropout.
//!
//! Shapes are picked so that the convolution kernels take every path: full 4-channel by
//! 8-column tiles, leftover channels and columns, padded edge columns and rows, and strides
//! 1, 2 and 3.

use tinytrain::prelude::*;
use tinytrain_tests::gradcheck::{Linear, Options, check_layer, check_layer_with, random_tensor};

const SMOOTH: Options = Options::SMOOTH;

#[test]
fn conv2d_stride1_no_padding_with_full_tiles() {
    // 5 filters: one 4-channel tile and one leftover; 12 columns: one 8-column tile and an
    // overlapping one.
    check_layer::<Conv2d<3, 5, 3, 1, 0, 6, 14, 4, 12>>("conv 3->5 k3 s1 p0", 1, &SMOOTH);
}

#[test]
fn conv2d_stride1_padding1() {
    check_layer::<Conv2d<2, 4, 3, 1, 1, 5, 11, 5, 11>>("conv 2->4 k3 s1 p1", 2, &SMOOTH);
}

#[test]
fn conv2d_stride2_padding1() {
    check_layer::<Conv2d<2, 3, 3, 2, 1, 7, 7, 4, 4>>("conv 2->3 k3 s2 p1", 3, &SMOOTH);
}

#[test]
fn conv2d_stride2_no_padding_wide() {
    check_layer::<Conv2d<2, 4, 3, 2, 0, 5, 21, 2, 10>>("conv 2->4 k3 s2 p0", 4, &SMOOTH);
}

#[test]
fn conv2d_stride3_padding2_kernel4() {
    check_layer::<Conv2d<2, 2, 4, 3, 2, 8, 9, 3, 4>>("conv 2->2 k4 s3 p2", 5, &SMOOTH);
}

#[test]
fn conv2d_1x1() {
    check_layer::<Conv2d<3, 5, 1, 1, 0, 4, 9, 4, 9>>("conv 3->5 k1", 6, &SMOOTH);
}

#[test]
fn depthwise_stride1_padding1() {
    check_layer::<DepthwiseConv2d<3, 3, 1, 1, 6, 7, 6, 7>>("depthwise k3 s1 p1", 7, &SMOOTH);
}

#[test]
fn depthwise_stride2_no_padding() {
    check_layer::<DepthwiseConv2d<2, 3, 2, 0, 7, 9, 3, 4>>("depthwise k3 s2 p0", 8, &SMOOTH);
}

#[test]
fn maxpool_2x2() {
    // A kink is a window whose two largest inputs are within the step of each other.
    check_layer::<MaxPool2x2<2, 6, 7, 3, 3>>("maxpool 2x2", 9, &SMOOTH.allowing_kinks(4));
}

#[test]
fn maxpool_3x3_stride2_overlapping() {
    check_layer::<MaxPool2d<2, 3, 2, 7, 7, 3, 3>>("maxpool 3x3 s2", 10, &SMOOTH.allowing_kinks(4));
}

#[test]
fn avgpool_2x2_and_3x3_stride1() {
    check_layer::<AvgPool2x2<2, 5, 6, 2, 3>>("avgpool 2x2", 11, &SMOOTH);
    check_layer::<AvgPool2d<2, 3, 1, 5, 5, 3, 3>>("avgpool 3x3 s1", 12, &SMOOTH);
}

#[test]
fn global_avg_pool() {
    check_layer::<GlobalAvgPool2d<3, 4, 5>>("global avg pool", 13, &SMOOTH);
}

#[test]
fn flatten() {
    check_layer::<Flatten<2, 3, 4, 24>>("flatten", 14, &SMOOTH);
}

#[test]
fn dropout_in_inference_is_the_identity_and_so_is_its_gradient() {
    check_layer::<Dropout<[[[f32; 4]; 3]; 2], 500>>("dropout (inference)", 15, &SMOOTH);
    let d = Dropout::<[f32; 64], 300>::ZERO;
    let mut rng = Rng::new(1);
    let x: [f32; 64] = random_tensor(&mut rng, 1.0, 0.0);
    let (mut mask, mut y) = ([0.0; 64], [0.0; 64]);
    d.forward(&x, &mut mask, &mut y, &mut Mode::Infer);
    assert_eq!(y, x);
}

#[test]
fn a_small_cnn_end_to_end() {
    type Net = tinytrain::sequential![
        Conv2d<1, 4, 3, 1, 1, 6, 6, 6, 6>,
        Act<ReluFn, [[[f32; 6]; 6]; 4]>,
        MaxPool2x2<4, 6, 6, 3, 3>,
        Conv2d<4, 3, 2, 1, 0, 3, 3, 2, 2>,
        Flatten<3, 2, 2, 12>,
        Dense<12, 3>,
    ];
    let mut rng = Rng::new(16);
    let mut net = Box::new(Net::ZERO);
    net.init_with(Init::TorchDefault, &mut rng);
    let x: [[[f32; 6]; 6]; 1] = random_tensor(&mut rng, 1.5, 0.1);
    let head = Linear(random_tensor::<[f32; 3]>(&mut rng, 1.0, 0.1));
    check_layer_with("small cnn", &mut *net, &x, &head, &SMOOTH.allowing_kinks(6));
}

#[test]
fn dropout_in_training_keeps_the_mean_and_drops_the_rate() {
    const N: usize = 4096;
    let d = Dropout::<[f32; N], 250>::ZERO;
    let x = [1.0f32; N];
    let (mut mask, mut y) = ([0.0f32; N], [0.0f32; N]);
    let mut mode = Mode::Train(Rng::new(7));
    let (mut sum, mut dropped, mut total) = (0.0f64, 0usize, 0usize);
    for _ in 0..25 {
        d.forward(&x, &mut mask, &mut y, &mut mode);
        for &v in &y {
            assert!(v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6, "an output is 0 or 1/(1 - p), not {v}");
            sum += f64::from(v);
            dropped += usize::from(v == 0.0);
            total += 1;
        }
    }
    let mean = sum / total as f64;
    let rate = dropped as f64 / total as f64;
    // 102,400 Bernoulli(0.25) draws: the standard error of the rate is 0.0014.
    assert!((rate - 0.25).abs() < 0.007, "drop rate {rate}");
    assert!((mean - 1.0).abs() < 0.01, "mean {mean}");

    // The gradient goes through the same mask.
    let mut dx = [0.0f32; N];
    let mut no_grads = Dropout::ZERO;
    d.backward(&x, &mask, &y, &x, &mut [0.0; N], Some(&mut no_grads), Some(&mut dx));
    assert_eq!(dx, y);
}

#[test]
fn dropout_masks_repeat_with_the_seed_and_change_between_calls() {
    let d = Dropout::<[f32; 256], 500>::ZERO;
    let x = [1.0f32; 256];
    let run = |seed| {
        let mut mode = Mode::Train(Rng::new(seed));
        let (mut m, mut a, mut b) = ([0.0; 256], [0.0; 256], [0.0; 256]);
        d.forward(&x, &mut m, &mut a, &mut mode);
        d.forward(&x, &mut m, &mut b, &mut mode);
        (a, b)
    };
    let (a1, b1) = run(3);
    let (a2, b2) = run(3);
    assert_eq!((a1, b1), (a2, b2));
    assert_ne!(a1, b1);
    assert_ne!(run(4).0, a1);
}

#[test]
fn dropout_rate_zero_is_the_identity_in_training() {
    let d = Dropout::<[f32; 8], 0>::ZERO;
    let x = [0.5f32; 8];
    let (mut m, mut y) = ([0.0; 8], [0.0; 8]);
    d.forward(&x, &mut m, &mut y, &mut Mode::Train(Rng::new(1)));
    assert_eq!(y, x);
}

#[test]
fn conv1d_stride1_no_padding() {
    check_layer::<Conv1d<3, 4, 3, 1, 0, 11, 9>>("conv1d 3->4 k3 s1 p0", 21, &SMOOTH);
}

#[test]
fn conv1d_stride2_padding1() {
    check_layer::<Conv1d<2, 3, 3, 2, 1, 9, 5>>("conv1d 2->3 k3 s2 p1", 22, &SMOOTH);
}

#[test]
fn conv1d_stride3_padding2_kernel5() {
    check_layer::<Conv1d<2, 2, 5, 3, 2, 10, 4>>("conv1d 2->2 k5 s3 p2", 23, &SMOOTH);
}

#[test]
fn maxpool1d_and_avgpool1d() {
    check_layer::<MaxPool1d<2, 2, 2, 9, 4>>("maxpool1d k2 s2", 24, &SMOOTH.allowing_kinks(2));
    check_layer::<MaxPool1d<2, 3, 2, 9, 4>>("maxpool1d k3 s2", 25, &SMOOTH.allowing_kinks(2));
    check_layer::<AvgPool1d<2, 3, 2, 9, 4>>("avgpool1d k3 s2", 26, &SMOOTH);
    check_layer::<GlobalAvgPool1d<3, 7>>("global avg pool 1d", 27, &SMOOTH);
}

#[test]
fn a_small_1d_cnn_end_to_end() {
    type Net = tinytrain::sequential![
        Conv1d<2, 4, 3, 1, 1, 12, 12>,
        Act<ReluFn, [[f32; 12]; 4]>,
        MaxPool1d<4, 2, 2, 12, 6>,
        Conv1d<4, 3, 3, 2, 0, 6, 2>,
        GlobalAvgPool1d<3, 2>,
        Dense<3, 2>,
    ];
    let mut rng = Rng::new(28);
    let mut net = Box::new(Net::ZERO);
    net.init_with(Init::TorchDefault, &mut rng);
    let x: [[f32; 12]; 2] = random_tensor(&mut rng, 1.5, 0.1);
    let head = Linear(random_tensor::<[f32; 2]>(&mut rng, 1.0, 0.1));
    check_layer_with("small 1-d cnn", &mut *net, &x, &head, &SMOOTH.allowing_kinks(6));
}
