//! Layers: [`Dense`], element-wise activations and [`Softmax`]; for images [`Conv2d`],
//! [`DepthwiseConv2d`], [`MaxPool2d`], [`AvgPool2d`], [`GlobalAvgPool2d`], [`Flatten`] and
//! [`Dropout`].

mod activation;
mod conv2d;
mod dense;
mod depthwise;
mod dropout;
mod flatten;
mod pool;

pub use activation::{
    Act, ActivationFn, Elu, EluAlpha, EluFn, KerasSlope, LeakyRelu, LeakyReluFn, LeakySlope, Relu, ReluFn, Sigmoid,
    SigmoidFn, Softmax, Tanh, TanhFn, TorchSlope, UnitAlpha, softmax,
};
pub use conv2d::Conv2d;
pub use dense::Dense;
pub use depthwise::DepthwiseConv2d;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use pool::{AvgPool2d, AvgPool2x2, GlobalAvgPool2d, MaxPool2d, MaxPool2x2};
