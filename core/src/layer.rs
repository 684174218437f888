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
use crate::params::{Params, Role, TensorDesc};
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

/// One row of a model summary: a layer as it describes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerInfo {
    /// Layer class, as Keras names it (`Dense`, `Conv2D`, `ReLU`, ...).
    pub name: &'static str,
    /// Output shape, outermost first; unused dimensions are 0.
    pub output_shape: [usize; 3],
    /// Bytes of activation buffer the layer's output needs (0 for the network's final output,
    /// which the caller holds).
    pub output_bytes: usize,
    /// Extra per-layer bytes kept between forward and backward (masks), per copy.
    pub cache_bytes: usize,
    /// The layer's tensors, in visiting order.
    pub tensors: &'static [TensorDesc],
    /// Default PyTorch module name prefix (`fc` gives `fc1`, `fc2`, ...); empty for a layer
    /// without tensors.
    pub module: &'static str,
    /// Path of the Rust struct whose fields are the tensors, for generated source.
    pub rust_path: &'static str,
    /// Inside a frozen wrapper: its trainable tensors are not trained.
    pub frozen: bool,
    /// The tensors live in a static (flash), not in the network's RAM.
    pub in_flash: bool,
    /// Kernel size, stride and padding (per side) of a convolution or pooling window, the
    /// same along every spatial axis; zero for other layers. Exporters (`.tflite`) read it.
    pub window: [usize; 3],
}

impl LayerInfo {
    /// A layer without tensors.
    #[must_use]
    pub const fn new(name: &'static str, output_shape: [usize; 3]) -> Self {
        LayerInfo {
            name,
            output_shape,
            output_bytes: 0,
            cache_bytes: 0,
            tensors: &[],
            module: "",
            rust_path: "",
            frozen: false,
            in_flash: false,
            window: [0; 3],
        }
    }

    /// The same row with a `kernel`-wide window moved by `stride`, `padding` zeros on each side.
    #[must_use]
    pub const fn with_window(mut self, kernel: usize, stride: usize, padding: usize) -> Self {
        self.window = [kernel, stride, padding];
        self
    }

    /// The same row with `tensors`, the PyTorch module prefix `module` and the Rust struct
    /// `rust_path`.
    #[must_use]
    pub const fn with_tensors(
        mut self,
        tensors: &'static [TensorDesc],
        module: &'static str,
        rust_path: &'static str,
    ) -> Self {
        self.tensors = tensors;
        self.module = module;
        self.rust_path = rust_path;
        self
    }

    /// The role tensor `d` of this layer plays (a trainable tensor of a frozen layer is frozen).
    #[must_use]
    pub fn role(&self, d: &TensorDesc) -> Role {
        match d.role {
            Role::Trainable if self.frozen => Role::Frozen,
            r => r,
        }
    }

    /// Scalars of the layer's tensors with role `role` (all of them for `None`).
    #[must_use]
    pub fn count(&self, role: Option<Role>) -> usize {
        self.tensors.iter().filter(|d| role.is_none_or(|r| self.role(d) == r)).map(TensorDesc::len).sum()
    }

    /// All scalars of the layer's tensors (the summary's "Param #").
    #[must_use]
    pub fn params(&self) -> usize {
        self.count(None)
    }
}

/// A differentiable layer with compile-time shapes.
///
/// Parameter gradients *accumulate* (`+=`) in `backward`, so a mini-batch is a loop over its
/// samples with no batch-sized buffer.
pub trait Layer: Params + Sized {
    /// Input tensor.
    type Input: Tensor;
    /// Output tensor.
    type Output: Tensor;
    /// Buffers kept between `forward` and `backward`: the outputs of inner layers and any
    /// masks. Backward uses a second value of this type for the gradients of those buffers.
    type Acts: Zero;
    /// Number of trainable parameters: what the gradients and the optimizer state hold.
    const NUM_PARAMS: usize = <Self as Params>::TRAINABLE_LEN;
    /// The layer with every parameter zero.
    const ZERO: Self;
    /// Number of ReLU units in the layer's outputs, for sizing a dead-unit monitor.
    const RELU_UNITS: usize = 0;

    /// Computes `y` from `x`, keeping what backward needs in `acts`.
    fn forward(&self, x: &Self::Input, acts: &mut Self::Acts, y: &mut Self::Output, mode: &mut Mode);

    /// Backpropagates `dy` (the loss gradient with respect to `y`): adds the parameter
    /// gradients to `grads` when given, and writes the input gradient to `dx` when asked for.
    /// `acts` and `y` must be the values of the matching `forward`; `deltas` is scratch of the
    /// same shape.
    fn backward(
        &self,
        x: &Self::Input,
        acts: &Self::Acts,
        y: &Self::Output,
        dy: &Self::Output,
        deltas: &mut Self::Acts,
        grads: Option<&mut Self::Grads>,
        dx: Option<&mut Self::Input>,
    );

    /// Initialises the parameters with `init` for weights (biases start at zero, or as
    /// [`Init::TorchDefault`] says). Layers without parameters keep the default, which does
    /// nothing.
    fn init_with(&mut self, init: Init, rng: &mut Rng) {
        let _ = (init, rng);
    }

    /// Initialises the parameters with the Keras default, Glorot uniform and zero biases.
    fn init(&mut self, rng: &mut Rng) {
        self.init_with(Init::GlorotUniform, rng);
    }

    /// Visits the summary rows of the layer and its inner layers.
    fn describe(f: &mut impl FnMut(&LayerInfo));

    /// Visits each output buffer with its unit kind (for the dead-ReLU monitor). `y` is this
    /// layer's output.
    fn visit_outputs(acts: &Self::Acts, y: &Self::Output, f: &mut impl FnMut(UnitKind, &[f32]));

    /// Forward pass in inference mode.
    fn predict(&self, x: &Self::Input, acts: &mut Self::Acts, y: &mut Self::Output) {
        self.forward(x, acts, y, &mut Mode::Infer);
    }

    /// [`Layer::predict`] for four samples at once, with the same bits as four calls. Layers
    /// whose work is loads of weights (Dense) override it to load each weight once for the
    /// four samples; the default runs them one after the other.
    fn predict4(&self, x: [&Self::Input; 4], acts: [&mut Self::Acts; 4], y: [&mut Self::Output; 4]) {
        for ((x, acts), y) in x.into_iter().zip(acts).zip(y) {
            self.predict(x, acts, y);
        }
    }

    /// Copies every parameter from `other`.
    fn copy_params_from(&mut self, other: &Self) {
        self.copy_from(other);
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
    const ZERO: Self = Chain { a: A::ZERO, b: B::ZERO };
    const RELU_UNITS: usize = A::RELU_UNITS + B::RELU_UNITS;

    #[inline]
    fn forward(&self, x: &Self::Input, acts: &mut Self::Acts, y: &mut Self::Output, mode: &mut Mode) {
        self.a.forward(x, &mut acts.a, &mut acts.mid, mode);
        self.b.forward(&acts.mid, &mut acts.b, y, mode);
    }

    #[inline]
    fn predict4(&self, x: [&Self::Input; 4], acts: [&mut Self::Acts; 4], y: [&mut Self::Output; 4]) {
        let [a0, a1, a2, a3] = acts;
        self.a.predict4(
            x,
            [&mut a0.a, &mut a1.a, &mut a2.a, &mut a3.a],
            [&mut a0.mid, &mut a1.mid, &mut a2.mid, &mut a3.mid],
        );
        self.b.predict4([&a0.mid, &a1.mid, &a2.mid, &a3.mid], [&mut a0.b, &mut a1.b, &mut a2.b, &mut a3.b], y);
    }

    #[inline]
    fn backward(
        &self,
        x: &Self::Input,
        acts: &Self::Acts,
        y: &Self::Output,
        dy: &Self::Output,
        deltas: &mut Self::Acts,
        grads: Option<&mut Self::Grads>,
        dx: Option<&mut Self::Input>,
    ) {
        let (ga, gb) = match grads {
            Some(g) => (Some(&mut g.a), Some(&mut g.b)),
            None => (None, None),
        };
        // The gradient at the junction is needed only if the first layer trains or the caller
        // wants the input gradient: a frozen or parameter-free front costs no backward pass.
        let wants_mid = A::TRAINABLE_LEN > 0 || dx.is_some();
        let mid = if wants_mid { Some(&mut deltas.mid) } else { None };
        self.b.backward(&acts.mid, &acts.b, y, dy, &mut deltas.b, gb, mid);
        if wants_mid {
            self.a.backward(x, &acts.a, &acts.mid, &deltas.mid, &mut deltas.a, ga, dx);
        }
    }

    fn init_with(&mut self, init: Init, rng: &mut Rng) {
        self.a.init_with(init, rng);
        self.b.init_with(init, rng);
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

impl<A, B> Params for Chain<A, B>
where
    A: Layer,
    B: Layer<Input = A::Output>,
{
    type Grads = Chain<A::Grads, B::Grads>;
    const GRADS_ZERO: Self::Grads = Chain { a: A::GRADS_ZERO, b: B::GRADS_ZERO };
    const TRAINABLE_LEN: usize = A::TRAINABLE_LEN + B::TRAINABLE_LEN;
    const STORED_LEN: usize = A::STORED_LEN + B::STORED_LEN;

    #[inline]
    fn visit(&self, f: &mut impl FnMut(&TensorDesc, &[f32])) {
        self.a.visit(f);
        self.b.visit(f);
    }

    #[inline]
    fn visit_mut(&mut self, f: &mut impl FnMut(&TensorDesc, crate::params::Slot<'_>)) {
        self.a.visit_mut(f);
        self.b.visit_mut(f);
    }

    #[inline]
    fn copy_from(&mut self, other: &Self) {
        self.a.copy_from(&other.a);
        self.b.copy_from(&other.b);
    }

    #[inline]
    fn visit_grads(grads: &Self::Grads, f: &mut impl FnMut(&[f32])) {
        A::visit_grads(&grads.a, f);
        B::visit_grads(&grads.b, f);
    }

    #[inline]
    fn visit_grads_mut(grads: &mut Self::Grads, f: &mut impl FnMut(&mut [f32])) {
        A::visit_grads_mut(&mut grads.a, f);
        B::visit_grads_mut(&mut grads.b, f);
    }

    #[inline]
    fn zip_grads(&mut self, grads: &Self::Grads, f: &mut impl FnMut(&mut [f32], &[f32])) {
        self.a.zip_grads(&grads.a, f);
        self.b.zip_grads(&grads.b, f);
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
