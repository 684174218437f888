//! # tinytrain
//!
//! Train and run neural networks on microcontrollers: `#![no_std]`, no heap, every shape a
//! const generic (a wrong network does not compile), every buffer fixed (the RAM is known
//! before flashing), and the same bits on a desktop and on a Cortex-M.
//!
//! ```
//! use tinytrain::prelude::*;
//!
//! // 2-8-1 network; `Dense<2, 8>` then `Dense<4, 1>` would not compile.
//! type Net = tinytrain::sequential![Dense<2, 8>, Tanh<8>, Dense<8, 1>, Sigmoid<1>];
//!
//! let xor = [([0.0, 0.0], [0.0]), ([0.0, 1.0], [1.0]), ([1.0, 0.0], [1.0]), ([1.0, 1.0], [0.0])];
//! let mut t = Trainer::<Net, Adam<{ <Net as Layer>::NUM_PARAMS }>>::ZERO;
//! t.model.init(&mut Rng::new(7));
//! let adam = AdamConfig { lr: Schedule::Constant(0.05), ..AdamConfig::default() };
//! let report = t.fit(&adam, &Mse::MEAN, &xor[..]).epochs(500).batch_size(4).run().unwrap();
//! assert_eq!(report.last.train_accuracy, 1.0);
//! println!("{}", Summary::<Net, Adam<{ <Net as Layer>::NUM_PARAMS }>>::new("xor"));
//! ```
//!
//! Modules: [`layer`] (the `Layer` trait and `sequential!`), [`params`] (tensors that describe
//! themselves, frozen layers), [`layers`], [`loss`], [`optim`],
//! [`shape`], [`train`], [`fit`], [`summary`], [`checkpoint`], [`data`], [`zoo`]; [`int8`] holds
//! int8 inference kernels bit-exact with TensorFlow Lite's reference kernels; [`finetune`] trains
//! an f32 head over a frozen int8 backbone from a stream of samples.
#![no_std]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(feature = "std")]
extern crate std;

pub mod checkpoint;
pub mod data;
mod error;
pub mod finetune;
pub mod fit;
pub mod init;
pub mod int8;
pub mod kernels;
pub mod layer;
pub mod layers;
pub mod loss;
pub mod math;
pub mod optim;
pub mod params;
pub mod rng;
pub mod shape;
pub mod storage;
pub mod summary;
pub mod tensor;
pub mod train;
pub mod zoo;

pub use error::{Error, FlashError};
pub use init::Init;
pub use layer::{Chain, Layer, Mode};
pub use params::{Frozen, FrozenRef, Leaf, Params};
pub use rng::Rng;
pub use tensor::{Tensor, Zero};

/// Everything needed to declare and train a network.
pub mod prelude {
    pub use crate::data::{ByteImages, Dataset};
    pub use crate::error::Error;
    pub use crate::init::Init;
    pub use crate::layer::{Chain, Layer, Mode};
    pub use crate::layers::{
        Act, AvgPool1d, AvgPool2d, AvgPool2x2, BatchNorm1d, BatchNorm1dSeq, BatchNorm2d, Conv1d, Conv2d, Dense,
        DepthwiseConv2d, Dropout, Elu, Flatten, GlobalAvgPool1d, GlobalAvgPool2d, KerasSlope, LeakyRelu, MaxPool1d,
        MaxPool2d, MaxPool2x2, Maxout, Relu, ReluFn, Sigmoid, SigmoidFn, Softmax, Tanh, TanhFn, TorchSlope,
    };
    pub use crate::loss::{BinaryCrossEntropy, BinaryHinge, CrossEntropy, Hinge, HingeKind, Loss, Mae, Mse};
    pub use crate::optim::{
        Adadelta, AdadeltaConfig, Adam, AdamConfig, AdamForm, Momentum, MomentumConfig, MomentumForm, Optimizer,
        RmsProp, RmsPropConfig, RmsPropForm, Schedule, Sgd, SgdConfig,
    };
    pub use crate::params::{Frozen, FrozenRef, Leaf, Params};
    pub use crate::rng::Rng;
    pub use crate::summary::Summary;
    pub use crate::tensor::{Tensor, Zero};
    pub use crate::train::{
        Callback, Control, DeadReluMonitor, Divergence, DivergenceGuard, EpochStats, Eval, FitConfig, FitReport,
        Trainer,
    };
}
