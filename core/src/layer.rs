//! The [`Layer`] trait and sequential composition.
//!
//! A network is a chain of layers. Each layer says its input and output tensor types, so
//! [`Chain<A, B>`] only exists when `B::Input` is `A::Output`: a mismatch between two layers
//! is a compile error. [`sequential!`](crate::sequential) writes the chain for you.
//!
//! The same type plays three roles: the parameters, the gradients (a second value of the same
//! type), and, through [`Layer::Acts`], the activation buffers kept for backpropagation.
//!
//! ```
//! use tinytrain::prelude::*;
//! type Net = tinytrain::sequential![Dense<4, 8>, Tanh<8>, Dense<8, 3>];
//! let mut net = Net::ZERO;
//! net.init(&mut Rng::new(1));
//! let mut acts = <Net as Layer>::Acts::ZERO;
//! let mut y = [0.0f32; 3];
//! net.forward(&[1.0, 2.0, 3.0, 4.0], &mut acts, &mut y, &mut Mode::Infer);
//! assert_eq!(Net::NUM_PARAMS, 4 * 8 + 8 + 8 * 3 + 3);
//! ```

use crate::init::Init;
use crate::rng::Rng;
use crate::tensor::{Tensor, Zero};

/// Inference or training. Training carries the generator that dropout draws from.
#[derive(Debug)]
pub enum Mode {
    /// Inference: dropout is the identity.
    Infer,
    /// Training, with the generator for stochastic layers.
    Train(Rng),
}

impl Mode {
    /// `true` in training.
    #[must_use]
    pub fn is_training(&self) -> bool {
        matches!(self, Mode::Train(_))
    }
}

/// What kind of units a layer's output holds, for monitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UnitKind {
    /// Output of a ReLU: a unit that is never positive over an epoch is dead.
    Relu,
    /// Any other layer.
    Other,
}

/// One row of a model summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerInfo {
    /// Layer kind, as Keras names it (`Dense`, `ReLU`, ...).
    pub name: &'static str,
    /// Output shape, outermost first; unused dimensions are 0.
    pub output_shape: [usize; 3],
    /// Trainable parameters.
    pub params: usize,
    /// Bytes of activation buffer the layer's output needs (0 for the network's final output,
    /// which the caller holds).
    pub output_bytes: usize,
    /// Extra per-layer bytes kept between forward and backward (masks), per copy.
    pub cache_bytes: usize,
}

/// A differentiable layer with compile-time shapes.
///
/// Parameter gradients *accumulate* (`+=`) in `backward`, so a mini-batch is a loop over its
/// samples with no batch-sized buffer.
pub trait Layer: Sized {
    /// Input tensor.
    type Input: Tensor;
    /// Output tensor.
    type Output: Tensor;
    /// Buffers kept between `forward` and `backward`: the outputs of inner layers and any
    /// masks. Backward uses a second value of this type for the gradients of those buffers.
    type Acts: Zero;
    /// Number of trainable parameters.
    const NUM_PARAMS: usize;
    /// The layer with every parameter zero.
    const ZERO: Self;
    /// Number of ReLU units in the layer's outputs, for sizing a dead-unit monitor.
    const RELU_UNITS: usize = 0;

    /// Computes `y` from `x`, keeping what backward needs in `acts`.
    fn forward(&self, x: &Self::Input, acts: &mut Self::Acts, y: &mut Self::Output, mode: &mut Mode);

    /// Backpropagates `dy` (the loss gradient with respect to `y`): adds the parameter
    /// gradients to `grads`, and writes the input gradient to `dx` when asked for.
    /// `acts` and `y` must be the values of the matching `forward`; `deltas` is scratch of the
    /// same shape.
    fn backward(
        &self,
        x: &Self::Input,
        acts: &Self::Acts,
        y: &Self::Output,
        dy: &Self::Output,
        deltas: &mut Self::Acts,
        grads: &mut Self,
        dx: Option<&mut Self::Input>,
    );

    /// Initialises the parameters with `init` for weights (biases start at zero, or as
    /// [`Init::TorchDefault`] says).
    fn init_with(&mut self, init: Init, rng: &mut Rng);

    /// Initialises the parameters with the Keras default, Glorot uniform and zero biases.
    fn init(&mut self, rng: &mut Rng) {
        self.init_with(Init::GlorotUniform, rng);
    }

    /// Visits parameter slices in a fixed order.
    fn for_each_param(&self, f: &mut impl FnMut(&[f32]));

    /// Visits parameter slices mutably, in the same order.
    fn for_each_param_mut(&mut self, f: &mut impl FnMut(&mut [f32]));

    /// Visits parameter slices with the matching slices of `other` (gradients, say).
    fn zip_params(&mut self, other: &Self, f: &mut impl FnMut(&mut [f32], &[f32]));

    /// Visits the summary rows of the layer and its inner layers.
    fn describe(f: &mut impl FnMut(&LayerInfo));

    /// Visits each output buffer with its unit kind (for the dead-ReLU monitor). `y` is this
    /// layer's output.
    fn visit_outputs(acts: &Self::Acts, y: &Self::Output, f: &mut impl FnMut(UnitKind, &[f32]));

    /// Forward pass in inference mode.
    fn predict(&self, x: &Self::Input, acts: &mut Self::Acts, y: &mut Self::Output) {
        self.forward(x, acts, y, &mut Mode::Infer);
    }

    /// Sets every parameter to zero (use on gradients before a batch).
    fn zero_params(&mut self) {
        self.for_each_param_mut(&mut |p| p.fill(0.0));
    }

    /// Copies every parameter from `other`.
    fn copy_params_from(&mut self, other: &Self) {
        self.zip_params(other, &mut |p, q| p.copy_from_slice(q));
    }

    /// Scales every parameter by `s`.
    fn scale_params(&mut self, s: f32) {
        self.for_each_param_mut(&mut |p| p.iter_mut().for_each(|v| *v *= s));
    }

    /// `true` when every parameter is finite.
    fn params_finite(&self) -> bool {
        let mut ok = true;
        self.for_each_param(&mut |p| ok &= crate::kernels::all_finite(p));
        ok
    }

    /// Squared L2 norm of all parameters, summed slice by slice in a fixed order.
    fn params_sum_squares(&self) -> f32 {
        let mut s = 0.0;
        self.for_each_param(&mut |p| s += crate::kernels::sum_squares(p));
        s
    }
}

/// Two layers in sequence; exists only when the shapes agree.
///
/// # Shapes
/// `A::Input -> A::Output == B::Input -> B::Output`.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain<A, B> {
    /// First layer.
    pub a: A,
    /// Second layer.
    pub b: B,
}

/// Activation buffers of a [`Chain`]: the first layer's buffers, the tensor between the two
/// layers, and the second layer's buffers.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainActs<A: Layer, B: Layer> {
    /// Buffers of the first layer.
    pub a: A::Acts,
    /// Output of the first layer, input of the second.
    pub mid: A::Output,
    /// Buffers of the second layer.
    pub b: B::Acts,
}

impl<A: Layer, B: Layer> Zero for ChainActs<A, B> {
    const ZERO: Self = ChainActs { a: A::Acts::ZERO, mid: A::Output::ZERO, b: B::Acts::ZERO };
}

impl<A, B> Layer for Chain<A, B>
where
    A: Layer,
    B: Layer<Input = A::Output>,
{
    type Input = A::Input;
    type Output = B::Output;
    type Acts = ChainActs<A, B>;
    const NUM_PARAMS: usize = A::NUM_PARAMS + B::NUM_PARAMS;
    const ZERO: Self = Chain { a: A::ZERO, b: B::ZERO };
    const RELU_UNITS: usize = A::RELU_UNITS + B::RELU_UNITS;

    #[inline]
    fn forward(&self, x: &Self::Input, acts: &mut Self::Acts, y: &mut Self::Output, mode: &mut Mode) {
        self.a.forward(x, &mut acts.a, &mut acts.mid, mode);
        self.b.forward(&acts.mid, &mut acts.b, y, mode);
    }

    #[inline]
    fn backward(
        &self,
        x: &Self::Input,
        acts: &Self::Acts,
        y: &Self::Output,
        dy: &Self::Output,
        deltas: &mut Self::Acts,
        grads: &mut Self,
        dx: Option<&mut Self::Input>,
    ) {
        self.b.backward(&acts.mid, &acts.b, y, dy, &mut deltas.b, &mut grads.b, Some(&mut deltas.mid));
        self.a.backward(x, &acts.a, &acts.mid, &deltas.mid, &mut deltas.a, &mut grads.a, dx);
    }

    fn init_with(&mut self, init: Init, rng: &mut Rng) {
        self.a.init_with(init, rng);
        self.b.init_with(init, rng);
    }

    fn for_each_param(&self, f: &mut impl FnMut(&[f32])) {
        self.a.for_each_param(f);
        self.b.for_each_param(f);
    }

    fn for_each_param_mut(&mut self, f: &mut impl FnMut(&mut [f32])) {
        self.a.for_each_param_mut(f);
        self.b.for_each_param_mut(f);
    }

    fn zip_params(&mut self, other: &Self, f: &mut impl FnMut(&mut [f32], &[f32])) {
        self.a.zip_params(&other.a, f);
        self.b.zip_params(&other.b, f);
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        // Every output but the chain's last is an activation buffer the chain owns.
        A::describe(&mut |info| {
            let mut row = *info;
            if row.output_bytes == 0 {
                row.output_bytes = core::mem::size_of::<A::Output>();
            }
            f(&row);
        });
        B::describe(f);
    }

    fn visit_outputs(acts: &Self::Acts, y: &Self::Output, f: &mut impl FnMut(UnitKind, &[f32])) {
        A::visit_outputs(&acts.a, &acts.mid, f);
        B::visit_outputs(&acts.b, y, f);
    }
}

/// Declares a sequential network type from its layers.
///
/// ```
/// use tinytrain::prelude::*;
/// type DigitsMlp = tinytrain::sequential![Dense<64, 32>, Relu<32>, Dense<32, 10>];
/// assert_eq!(DigitsMlp::NUM_PARAMS, 2410);
/// ```
///
/// Layers whose shapes do not line up do not compile:
///
/// ```compile_fail
/// use tinytrain::prelude::*;
/// type Bad = tinytrain::sequential![Dense<64, 32>, Relu<16>, Dense<16, 10>];
/// let _ = Bad::NUM_PARAMS;
/// ```
#[macro_export]
macro_rules! sequential {
    ($last:ty $(,)?) => { $last };
    ($first:ty, $($rest:ty),+ $(,)?) => {
        $crate::layer::Chain<$first, $crate::sequential!($($rest),+)>
    };
}
