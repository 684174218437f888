//! Reference networks shared by the simulator, the firmware, the tests and the benches.
//!
//! | name | layers | parameters | PyTorch baseline |
//! |---|---|---|---|
//! | [`Xor`] | 2-4-1, sigmoid | 17 | `xor_training.json` |
//! | [`DigitsMlp`] | 64-32-10, ReLU | 2,410 | Adam 1e-3, batch 32, 30 epochs: 0.889-0.894 |
//! | [`MnistMlp`] | 784-128-10, ReLU | 101,770 | SGD 0.05 + momentum 0.9, batch 32, 10 epochs: 0.9615 |
//!
//! ```
//! use tinytrain::prelude::*;
//! use tinytrain::zoo::{DigitsMlp, MnistMlp, Xor};
//! assert_eq!(Xor::NUM_PARAMS, 17);
//! assert_eq!(DigitsMlp::NUM_PARAMS, 2410);
//! assert_eq!(MnistMlp::NUM_PARAMS, 101_770);
//! ```

use crate::layers::{Dense, Relu, Sigmoid};

/// The XOR network: 2 inputs, 4 sigmoid hidden units, 1 sigmoid output.
pub type Xor = crate::sequential![Dense<2, 4>, Sigmoid<4>, Dense<4, 1>, Sigmoid<1>];

/// The digits MLP: 8x8 images, 32 ReLU hidden units, 10 logits.
pub type DigitsMlp = crate::sequential![Dense<64, 32>, Relu<32>, Dense<32, 10>];

/// The MNIST MLP: 28x28 images, 128 ReLU hidden units, 10 logits.
pub type MnistMlp = crate::sequential![Dense<784, 128>, Relu<128>, Dense<128, 10>];
