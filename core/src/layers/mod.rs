//! Layers: [`Dense`], [`Maxout`], element-wise activations and [`Softmax`]; for images
//! [`Conv2d`], [`DepthwiseConv2d`], [`MaxPool2d`], [`AvgPool2d`], [`GlobalAvgPool2d`],
//! [`Flatten`] and [`Dropout`]; for sequences [`Conv1d`], [`MaxPool1d`], [`AvgPool1d`] and
//! [`GlobalAvgPool1d`]; [`BatchNorm1d`], [`BatchNorm1dSeq`] and [`BatchNorm2d`].

mod activation;
mod batchnorm;
mod bn_stats;
mod conv1d;
mod conv2d;
mod dense;
mod depthwise;
mod dropout;
mod flatten;
mod maxout;
mod pool;
mod pool1d;

pub use activation::{
    Act, ActivationFn, Elu, EluAlpha, EluFn, KerasSlope, LeakyRelu, LeakyReluFn, LeakySlope, Relu, ReluFn, Sigmoid,
    SigmoidFn, Softmax, Tanh, TanhFn, TorchSlope, UnitAlpha, softmax, softmax_parts,
};
pub use batchnorm::{BN_EPS, BN_MOMENTUM, BatchNorm1d, BatchNorm1dSeq, BatchNorm2d};
pub use bn_stats::BnStats;
pub use conv1d::Conv1d;
pub use conv2d::Conv2d;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub use conv2d::X86Path;
pub use dense::Dense;
pub use depthwise::DepthwiseConv2d;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use maxout::Maxout;
pub use pool::{AvgPool2d, AvgPool2x2, GlobalAvgPool2d, MaxPool2d, MaxPool2x2};
pub use pool1d::{AvgPool1d, GlobalAvgPool1d, MaxPool1d};
