//! Reference networks shared by the simulator, the firmware, the tests and the benches.
//!
//! | name | layers | parameters | PyTorch baseline |
//! |---|---|---|---|
//! | [`Xor`] | 2-4-1, sigmoid | 17 | `xor_training.json` |
//! | [`Sine`] | 1-16-16-1, ReLU | 321 | the TensorFlow Lite Micro "hello world" sine model |
//! | [`DigitsMlp`] | 64-32-10, ReLU | 2,410 | Adam 1e-3, batch 32, 30 epochs: 0.889-0.894 |
//! | [`MnistMlp`] | 784-128-10, ReLU | 101,770 | SGD 0.05 + momentum 0.9, batch 32, 10 epochs: 0.9615 |
//! | [`MnistCnn`] | Keras `mnist_cnn`: conv 32, conv 64, max-pool, dropout, dense 128 | 1,199,882 | Adadelta, batch 128: 0.9425 after 3 epochs, 0.9790 after 12 (tinytrain, Glorot init: 0.9635, 0.9810) |
//! | [`MnistCnnTiny`] | conv 6 s2, conv 24 s2, max-pool, dropout, dense 10 | 3,592 | none; trains in 96 KB with Adam: 0.9695 |
//! | [`DigitsBnMlp`] | 64-32 (BatchNorm) -10, ReLU | 2,474 (+64 statistics) | `tools/bn_reference.py`, Adam 1e-3, batch 32, 30 epochs: 0.9222 |
//! | [`WavesCnn1d`] | conv1d 8, pool, conv1d 16, pool, conv1d 16, global average, dense 10 | 1,658 | `baselines/waves.py`, Adam 3e-3, batch 32, 80 epochs: median 0.7860 over 5 seeds (tinytrain 0.8170) |
//! | [`MnistBnCnn`] | conv 8 s2, BatchNorm, ReLU, max-pool, dense 10 | 2,986 (+16 statistics) | `tools/bn_reference.py`, Adam 2e-3, batch 32, 5 epochs: 0.9450 |
//!
//! ```
//! use tinytrain::prelude::*;
//! use tinytrain::zoo::{DigitsMlp, MnistMlp, Xor};
//! assert_eq!(Xor::NUM_PARAMS, 17);
//! assert_eq!(DigitsMlp::NUM_PARAMS, 2410);
//! assert_eq!(MnistMlp::NUM_PARAMS, 101_770);
//! assert_eq!(tinytrain::zoo::MnistCnn::NUM_PARAMS, 1_199_882);
//! assert_eq!(tinytrain::zoo::DigitsBnMlp::NUM_PARAMS, 2474);
//! assert_eq!(tinytrain::zoo::MnistBnCnn::NUM_PARAMS, 2986);
//! assert_eq!(tinytrain::zoo::WavesCnn1d::NUM_PARAMS, 1658);
//! ```

use crate::layers::{
    Act, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Dense, Dropout, Flatten, GlobalAvgPool1d, MaxPool1d, MaxPool2x2,
    Relu, ReluFn, Sigmoid,
};

/// The XOR network: 2 inputs, 4 sigmoid hidden units, 1 sigmoid output.
pub type Xor = crate::sequential![Dense<2, 4>, Sigmoid<4>, Dense<4, 1>, Sigmoid<1>];

/// The digits MLP: 8x8 images, 32 ReLU hidden units, 10 logits.
pub type DigitsMlp = crate::sequential![Dense<64, 32>, Relu<32>, Dense<32, 10>];

/// The MNIST MLP: 28x28 images, 128 ReLU hidden units, 10 logits.
pub type MnistMlp = crate::sequential![Dense<784, 128>, Relu<128>, Dense<128, 10>];

/// The Keras `mnist_cnn` example: 28x28x1 images, two 3x3 convolutions (32 and 64 filters),
/// 2x2 max pooling, dropout 0.25, 128 ReLU units, dropout 0.5, 10 logits. 1,199,882
/// parameters, about 4.8 MB each for parameters, gradients and every optimizer slot: box it on
/// a host.
pub type MnistCnn = crate::sequential![
    Conv2d<1, 32, 3, 1, 0, 28, 28, 26, 26>,
    Act<ReluFn, [[[f32; 26]; 26]; 32]>,
    Conv2d<32, 64, 3, 1, 0, 26, 26, 24, 24>,
    Act<ReluFn, [[[f32; 24]; 24]; 64]>,
    MaxPool2x2<64, 24, 24, 12, 12>,
    Dropout<[[[f32; 12]; 12]; 64], 250>,
    Flatten<64, 12, 12, 9216>,
    Dense<9216, 128>,
    Relu<128>,
    Dropout<[f32; 128], 500>,
    Dense<128, 10>,
];

/// A CNN for MNIST whose whole training state with Adam fits in 96 KB of RAM (97,652 bytes):
/// a 4x4 stride-2 convolution to 6x13x13, a 3x3 stride-2 convolution to 24x6x6, 2x2 max
/// pooling to 24x3x3, dropout 0.2 and a dense layer to 10 logits. 3,592 parameters; He
/// uniform init, Adam lr 2e-3, batch 32, 20 epochs: 0.9695 on the 2000 test images.
pub type MnistCnnTiny = crate::sequential![
    Conv2d<1, 6, 4, 2, 0, 28, 28, 13, 13>,
    Act<ReluFn, [[[f32; 13]; 13]; 6]>,
    Conv2d<6, 24, 3, 2, 0, 13, 13, 6, 6>,
    Act<ReluFn, [[[f32; 6]; 6]; 24]>,
    MaxPool2x2<24, 6, 6, 3, 3>,
    Flatten<24, 3, 3, 216>,
    Dropout<[f32; 216], 200>,
    Dense<216, 10>,
];

/// The TensorFlow Lite Micro "hello world" model: y = sin(x) on [0, 2π] with a 1-16-16-1 ReLU
/// network; the inference-footprint anchor of the firmware.
pub type Sine = crate::sequential![Dense<1, 16>, Relu<16>, Dense<16, 16>, Relu<16>, Dense<16, 1>];

/// The digits MLP with batch normalisation after the hidden layer (PyTorch `Linear(64, 32)`,
/// `BatchNorm1d(32)`, ReLU, `Linear(32, 10)`): trained in PyTorch, imported with its running
/// statistics, it computes PyTorch's `eval()` logits.
pub type DigitsBnMlp = crate::sequential![Dense<64, 32>, BatchNorm1d<32>, Relu<32>, Dense<32, 10>];

/// A Conv-BN-ReLU CNN for MNIST: a 3x3 stride-2 convolution to 8x13x13, `BatchNorm2d(8)`,
/// ReLU, 2x2 max pooling to 8x6x6 and a dense layer to 10 logits.
pub type MnistBnCnn = crate::sequential![
    Conv2d<1, 8, 3, 2, 0, 28, 28, 13, 13>,
    BatchNorm2d<8, 13, 13>,
    Act<ReluFn, [[[f32; 13]; 13]; 8]>,
    MaxPool2x2<8, 13, 13, 6, 6>,
    Flatten<8, 6, 6, 288>,
    Dense<288, 10>,
];

/// The 1-D reference model, on the synthesised "waves" time series (one channel of 64 steps,
/// 10 classes): 5-tap convolutions to 8 and 16 channels, each followed by ReLU and 2x
/// max pooling, a 3-tap convolution to 16 channels, ReLU, the mean over time and a dense layer
/// to 10 logits. 1,658 parameters.
pub type WavesCnn1d = crate::sequential![
    Conv1d<1, 8, 5, 1, 2, 64, 64>,
    Act<ReluFn, [[f32; 64]; 8]>,
    MaxPool1d<8, 2, 2, 64, 32>,
    Conv1d<8, 16, 5, 1, 2, 32, 32>,
    Act<ReluFn, [[f32; 32]; 16]>,
    MaxPool1d<16, 2, 2, 32, 16>,
    Conv1d<16, 16, 3, 1, 1, 16, 16>,
    Act<ReluFn, [[f32; 16]; 16]>,
    GlobalAvgPool1d<16, 16>,
    Dense<16, 10>,
];
