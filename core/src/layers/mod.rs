//! Layers: [`Dense`], element-wise activations and [`Softmax`].

mod activation;
mod dense;

pub use activation::{
    Act, ActivationFn, Elu, EluAlpha, EluFn, KerasSlope, LeakyRelu, LeakyReluFn, LeakySlope, Relu,
    ReluFn, Sigmoid, SigmoidFn, Softmax, Tanh, TanhFn, TorchSlope, UnitAlpha, softmax,
};
pub use dense::Dense;
