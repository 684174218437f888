//! The layers of issue 10 inside a network trained by the fit loop: a BatchNorm1d (statistics
//! frozen, gamma and beta trained) and a Maxout learn XOR; a 1-D CNN with a BatchNorm after
//! its convolution, statistics refreshed from the data first, learns to tell a rising from a
//! falling ramp.
#![allow(clippy::unwrap_used)]

use tinytrain::prelude::*;

type XorNet = tinytrain::sequential![Dense<2, 8>, BatchNorm1d<8>, Maxout<8, 4, 2>, Dense<4, 1>, Sigmoid<1>];

#[test]
fn batchnorm_and_maxout_learn_xor() {
    let xor = [([0.0, 0.0], [0.0]), ([0.0, 1.0], [1.0]), ([1.0, 0.0], [1.0]), ([1.0, 1.0], [0.0])];
    let mut t = Box::new(Trainer::<XorNet, Adam<{ <XorNet as Layer>::NUM_PARAMS }>>::ZERO);
    t.model.init(&mut Rng::new(3));
    assert_eq!(t.model.b.a.running_var, [1.0; 8], "BatchNorm starts as PyTorch's: variance 1");
    let adam = AdamConfig { lr: Schedule::Constant(0.05), ..AdamConfig::default() };
    let report = t.fit(&adam, &Mse::MEAN, &xor[..]).epochs(400).batch_size(4).run().unwrap();
    assert_eq!(report.last.train_accuracy, 1.0);
    // The statistics are buffers: training leaves them alone.
    assert_eq!((t.model.b.a.running_mean, t.model.b.a.running_var), ([0.0; 8], [1.0; 8]));
}

type RampNet = tinytrain::sequential![
    Conv1d<1, 4, 3, 1, 0, 16, 14>,
    BatchNorm1dSeq<4, 14>,
    Act<ReluFn, [[f32; 14]; 4]>,
    GlobalAvgPool1d<4, 14>,
    Dense<4, 2>,
];

#[test]
fn a_1d_cnn_with_refreshed_batchnorm_statistics_learns_ramps() {
    let mut rng = Rng::new(5);
    let data: Vec<([[f32; 16]; 1], usize)> = (0..64)
        .map(|i| {
            let (slope, offset) = (rng.uniform(0.5, 2.0), rng.uniform(-3.0, 3.0));
            let up = i % 2 == 0;
            let x = core::array::from_fn(|t| offset + if up { slope } else { -slope } * t as f32 / 4.0);
            ([x], usize::from(up))
        })
        .collect();
    let mut t = Box::new(Trainer::<RampNet, Adam<{ <RampNet as Layer>::NUM_PARAMS }>>::ZERO);
    t.model.init_with(Init::TorchDefault, &mut Rng::new(6));
    // update_bn: the convolution's outputs over the data, in batches of 16.
    let conv = t.model.a.clone();
    let inputs = data.iter().map(|(x, _)| {
        let mut y = [[0.0f32; 14]; 4];
        conv.predict(x, &mut (), &mut y);
        y
    });
    assert_eq!(t.model.b.a.refresh_stats(inputs, 16).unwrap(), 4);
    assert!(t.model.b.a.running_var.iter().all(|&v| v > 0.0 && v != 1.0));
    let adam = AdamConfig { lr: Schedule::Constant(0.01), ..AdamConfig::default() };
    let report = t.fit(&adam, &CrossEntropy, &data[..]).epochs(100).batch_size(8).run().unwrap();
    assert!(report.last.train_accuracy >= 0.95, "train accuracy {}", report.last.train_accuracy);
}
