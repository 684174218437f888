//! The tensors a layer owns, and how they describe themselves.
//!
//! Every layer visits its tensors with a [`TensorDesc`]: the local name as PyTorch spells it
//! (`weight`, `bias`, `running_mean`), the Keras name (`kernel`, `gamma`), the shape in PyTorch
//! order, the [`Role`] (trainable, frozen, non-trainable buffer) and the element type.
//! Everything else derives from that one description: parameter iteration and the optimizer's
//! zipping of parameters with gradients ([`Params`]), the trainable count that sizes the
//! optimizer, the summary's rows, the weights-file fingerprint, safetensors names and layouts,
//! and generated Rust source.
//!
//! A layer that owns its tensors directly implements [`Leaf`]: a static list of descriptions
//! and an accessor by index. A layer without tensors writes an empty `impl Leaf for X {}`.
//! Composites ([`Chain`](crate::layer::Chain), [`Frozen`], [`FrozenRef`]) implement [`Params`]
//! themselves.
//!
//! ```
//! use tinytrain::prelude::*;
//! use tinytrain::params::{Params, Role};
//! type Net = tinytrain::sequential![Frozen<Dense<4, 8>>, Relu<8>, Dense<8, 3>];
//! // The optimizer and the gradients cover the trainable tensors only.
//! assert_eq!(<Net as Layer>::NUM_PARAMS, 8 * 3 + 3);
//! assert_eq!(<Net as Params>::STORED_LEN, 4 * 8 + 8 + 8 * 3 + 3);
//! let net = Net::ZERO;
//! let mut rows = Vec::new();
//! net.visit(&mut |d, data| rows.push((d.name, d.shape, d.role, data.len())));
//! assert_eq!(rows[0], ("weight", &[8, 4][..], Role::Frozen, 32));
//! assert_eq!(rows[3], ("bias", &[3][..], Role::Trainable, 3));
//! ```

use crate::init::Init;
use crate::layer::{Layer, LayerInfo, Mode, UnitKind};
use crate::rng::Rng;

/// What a tensor is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// Trained: it has a gradient and optimizer state.
    Trainable,
    /// A parameter that is not trained (a frozen layer's): no gradient, no optimizer state.
    Frozen,
    /// State that is not a parameter (BatchNorm's running statistics): saved with the weights,
    /// never trained.
    Buffer,
}

/// Element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DType {
    /// 32-bit float.
    F32,
}

/// How Keras lays out a tensor that PyTorch stores as [`TensorDesc::shape`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KerasLayout {
    /// The same order (biases, vectors).
    Same,
    /// A kernel `[out, in, k..]` in PyTorch is `[k.., in, out]` in Keras: a dense kernel
    /// `[O, I]` is `[I, O]`, a 2-D convolution kernel `[CO, CI, KH, KW]` is `[KH, KW, CI, CO]`.
    Kernel,
    /// A depthwise kernel `[C, 1, k..]` in PyTorch is `[k.., C, 1]` in Keras.
    Depthwise,
}

/// The description of one tensor of a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorDesc {
    /// Local name as PyTorch's `state_dict` spells it (`weight`); also the Rust field's name.
    pub name: &'static str,
    /// Keras variable name (`kernel`).
    pub keras_name: &'static str,
    /// Shape, outermost first, in PyTorch's order.
    pub shape: &'static [usize],
    /// Dimensions of the Rust field's nested arrays, outermost first (equal to `shape` unless
    /// the layer stores the tensor in fewer dimensions).
    pub rust_dims: &'static [usize],
    /// Trainable, frozen or a buffer.
    pub role: Role,
    /// Element type.
    pub dtype: DType,
    /// Keras' layout of the tensor.
    pub keras_layout: KerasLayout,
}

impl TensorDesc {
    /// A trainable `f32` tensor named `name` (PyTorch) and `keras_name` (Keras).
    #[must_use]
    pub const fn new(name: &'static str, keras_name: &'static str, shape: &'static [usize]) -> Self {
        TensorDesc {
            name,
            keras_name,
            shape,
            rust_dims: shape,
            role: Role::Trainable,
            dtype: DType::F32,
            keras_layout: KerasLayout::Same,
        }
    }

    /// A trainable weight kernel, `weight` / `kernel`, `[out, in, k..]`.
    #[must_use]
    pub const fn kernel(shape: &'static [usize]) -> Self {
        TensorDesc::new("weight", "kernel", shape).keras(KerasLayout::Kernel)
    }

    /// A trainable bias, `bias` / `bias`.
    #[must_use]
    pub const fn bias(shape: &'static [usize]) -> Self {
        TensorDesc::new("bias", "bias", shape)
    }

    /// The same tensor with Keras layout `layout`.
    #[must_use]
    pub const fn keras(mut self, layout: KerasLayout) -> Self {
        self.keras_layout = layout;
        self
    }

    /// The same tensor with role `role`.
    #[must_use]
    pub const fn role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    /// The same tensor stored in nested arrays of `dims` in Rust.
    #[must_use]
    pub const fn stored_as(mut self, dims: &'static [usize]) -> Self {
        self.rust_dims = dims;
        self
    }

    /// Number of elements.
    #[must_use]
    pub const fn len(&self) -> usize {
        let mut n = 1;
        let mut i = 0;
        while i < self.shape.len() {
            n *= self.shape[i];
            i += 1;
        }
        n
    }

    /// `true` for a tensor without elements.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of one element.
    #[must_use]
    pub const fn element_bytes(&self) -> usize {
        match self.dtype {
            DType::F32 => 4,
        }
    }
}

/// Elements of the tensors in `list` whose role is `role` (all of them for `None`).
#[must_use]
pub const fn count(list: &[TensorDesc], role: Option<Role>) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < list.len() {
        let take = match role {
            None => true,
            Some(Role::Trainable) => matches!(list[i].role, Role::Trainable),
            Some(Role::Frozen) => matches!(list[i].role, Role::Frozen),
            Some(Role::Buffer) => matches!(list[i].role, Role::Buffer),
        };
        if take {
            n += list[i].len();
        }
        i += 1;
    }
    n
}

/// A tensor handed to [`Params::visit_mut`]: writable, or fixed where the layer's tensors live
/// in flash ([`FrozenRef`]).
#[derive(Debug)]
pub enum Slot<'a> {
    /// A tensor in RAM.
    Mut(&'a mut [f32]),
    /// A tensor that cannot be written (a static in flash).
    Fixed(&'a [f32]),
}

impl Slot<'_> {
    /// The values, read-only.
    #[must_use]
    pub fn values(&self) -> &[f32] {
        match self {
            Slot::Mut(s) => s,
            Slot::Fixed(s) => s,
        }
    }
}

/// The tensors of a layer or network, and their gradients.
///
/// Orders agree by construction: [`Params::visit`], [`Params::visit_mut`] and the summary rows
/// of [`Layer::describe`] list the same tensors in the same order; the gradient visitors list
/// the trainable ones among them in that order.
pub trait Params {
    /// Gradient storage: the layer itself for a [`Leaf`], `()` for a frozen layer.
    type Grads;
    /// Gradients all zero.
    const GRADS_ZERO: Self::Grads;
    /// Trainable scalars: what the gradients and the optimizer state hold.
    const TRAINABLE_LEN: usize;
    /// Every scalar of every tensor (trainable, frozen and buffers): what a weights file holds.
    const STORED_LEN: usize;

    /// Visits every tensor with its description.
    fn visit(&self, f: &mut impl FnMut(&TensorDesc, &[f32]));

    /// Visits every tensor to write it ([`Slot::Fixed`] where it cannot be written).
    fn visit_mut(&mut self, f: &mut impl FnMut(&TensorDesc, Slot<'_>));

    /// Copies every writable tensor from `other`.
    fn copy_from(&mut self, other: &Self);

    /// Visits the gradient of each trainable tensor.
    fn visit_grads(grads: &Self::Grads, f: &mut impl FnMut(&[f32]));

    /// Visits the gradient of each trainable tensor, mutably.
    fn visit_grads_mut(grads: &mut Self::Grads, f: &mut impl FnMut(&mut [f32]));

    /// Visits each trainable tensor with its gradient.
    fn zip_grads(&mut self, grads: &Self::Grads, f: &mut impl FnMut(&mut [f32], &[f32]));

    /// `true` when every trainable parameter is finite.
    fn params_finite(&self) -> bool {
        let mut ok = true;
        self.visit(&mut |d, p| {
            if d.role == Role::Trainable {
                ok &= crate::kernels::all_finite(p);
            }
        });
        ok
    }

    /// Sets every gradient to zero.
    fn zero_grads(grads: &mut Self::Grads) {
        Self::visit_grads_mut(grads, &mut |g| crate::kernels::fill_zero(g));
    }

    /// `true` when every gradient is finite.
    fn grads_finite(grads: &Self::Grads) -> bool {
        let mut ok = true;
        Self::visit_grads(grads, &mut |g| ok &= crate::kernels::all_finite(g));
        ok
    }

    /// Squared L2 norm of the gradients, summed tensor by tensor in a fixed order.
    fn grads_sum_squares(grads: &Self::Grads) -> f32 {
        let mut s = 0.0;
        Self::visit_grads(grads, &mut |g| s += crate::kernels::sum_squares(g));
        s
    }

    /// Scales every gradient by `s`.
    fn scale_grads(grads: &mut Self::Grads, s: f32) {
        Self::visit_grads_mut(grads, &mut |g| g.iter_mut().for_each(|v| *v *= s));
    }
}

/// A layer that owns its tensors as fields: a static list of their descriptions and an
/// accessor by index. Its gradients are a second value of the layer's own type. A layer
/// without tensors writes `impl Leaf for MyLayer {}`.
pub trait Leaf: Layer + Params<Grads = Self> {
    /// The layer's tensors, in visiting order.
    const TENSORS: &'static [TensorDesc] = &[];

    /// Tensor `i` of [`Leaf::TENSORS`], flat.
    fn tensor(&self, i: usize) -> &[f32] {
        let _ = i;
        &[]
    }

    /// Tensor `i` of [`Leaf::TENSORS`], flat and mutable.
    fn tensor_mut(&mut self, i: usize) -> &mut [f32] {
        let _ = i;
        &mut []
    }
}

impl<L: Leaf> Params for L {
    type Grads = L;
    const GRADS_ZERO: L = L::ZERO;
    const TRAINABLE_LEN: usize = count(L::TENSORS, Some(Role::Trainable));
    const STORED_LEN: usize = count(L::TENSORS, None);

    // Loops over the tensors, not unrolled: a visitor's body then exists once, not once per
    // tensor (unrolled, the streaming of a checkpoint alone took 37 KB of a Cortex-M binary).

    #[inline]
    fn visit(&self, f: &mut impl FnMut(&TensorDesc, &[f32])) {
        for (i, d) in L::TENSORS.iter().enumerate() {
            f(d, self.tensor(i));
        }
    }

    #[inline]
    fn visit_mut(&mut self, f: &mut impl FnMut(&TensorDesc, Slot<'_>)) {
        for (i, d) in L::TENSORS.iter().enumerate() {
            f(d, Slot::Mut(self.tensor_mut(i)));
        }
    }

    #[inline]
    fn copy_from(&mut self, other: &Self) {
        for i in 0..L::TENSORS.len() {
            self.tensor_mut(i).copy_from_slice(other.tensor(i));
        }
    }

    #[inline]
    fn visit_grads(grads: &L, f: &mut impl FnMut(&[f32])) {
        for (i, d) in L::TENSORS.iter().enumerate() {
            if d.role == Role::Trainable {
                f(grads.tensor(i));
            }
        }
    }

    #[inline]
    fn visit_grads_mut(grads: &mut L, f: &mut impl FnMut(&mut [f32])) {
        for (i, d) in L::TENSORS.iter().enumerate() {
            if d.role == Role::Trainable {
                f(grads.tensor_mut(i));
            }
        }
    }

    #[inline]
    fn zip_grads(&mut self, grads: &L, f: &mut impl FnMut(&mut [f32], &[f32])) {
        for (i, d) in L::TENSORS.iter().enumerate() {
            if d.role == Role::Trainable {
                f(self.tensor_mut(i), grads.tensor(i));
            }
        }
    }
}

/// A trainable tensor's description as a frozen layer shows it.
const fn frozen(d: &TensorDesc) -> TensorDesc {
    match d.role {
        Role::Trainable => d.role(Role::Frozen),
        _ => *d,
    }
}

/// Layer `L`, not trained: forward as `L`, gradients passed through to earlier layers, no
/// gradient buffer and no optimizer state. Its tensors are saved and loaded with the rest of
/// the network under the same names, so a weights file of the unfrozen network loads.
///
/// For weights that stay in flash use [`FrozenRef`].
///
/// # Shapes
/// Those of `L`.
#[derive(Debug, Clone, PartialEq)]
pub struct Frozen<L>(pub L);

impl<L: Layer> Layer for Frozen<L> {
    type Input = L::Input;
    type Output = L::Output;
    type Acts = L::Acts;
    const ZERO: Self = Frozen(L::ZERO);
    const RELU_UNITS: usize = L::RELU_UNITS;

    #[inline]
    fn forward(&self, x: &Self::Input, acts: &mut Self::Acts, y: &mut Self::Output, mode: &mut Mode) {
        self.0.forward(x, acts, y, mode);
    }

    #[inline]
    fn backward(
        &self,
        x: &Self::Input,
        acts: &Self::Acts,
        y: &Self::Output,
        dy: &Self::Output,
        deltas: &mut Self::Acts,
        _grads: Option<&mut ()>,
        dx: Option<&mut Self::Input>,
    ) {
        if dx.is_some() {
            self.0.backward(x, acts, y, dy, deltas, None, dx);
        }
    }

    /// Initialises `L` as an unfrozen layer would be, so that the generator's sequence is the
    /// same; its weights normally come from a file.
    fn init_with(&mut self, init: Init, rng: &mut Rng) {
        self.0.init_with(init, rng);
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        L::describe(&mut |info| f(&LayerInfo { frozen: true, ..*info }));
    }

    fn visit_outputs(acts: &Self::Acts, y: &Self::Output, f: &mut impl FnMut(UnitKind, &[f32])) {
        L::visit_outputs(acts, y, f);
    }
}

impl<L: Layer> Params for Frozen<L> {
    type Grads = ();
    const GRADS_ZERO: () = ();
    const TRAINABLE_LEN: usize = 0;
    const STORED_LEN: usize = L::STORED_LEN;

    fn visit(&self, f: &mut impl FnMut(&TensorDesc, &[f32])) {
        self.0.visit(&mut |d, p| f(&frozen(d), p));
    }

    fn visit_mut(&mut self, f: &mut impl FnMut(&TensorDesc, Slot<'_>)) {
        self.0.visit_mut(&mut |d, p| f(&frozen(d), p));
    }

    fn copy_from(&mut self, other: &Self) {
        self.0.copy_from(&other.0);
    }

    fn visit_grads(_grads: &(), _f: &mut impl FnMut(&[f32])) {}

    fn visit_grads_mut(_grads: &mut (), _f: &mut impl FnMut(&mut [f32])) {}

    fn zip_grads(&mut self, _grads: &(), _f: &mut impl FnMut(&mut [f32], &[f32])) {}

    fn params_finite(&self) -> bool {
        true
    }
}

/// A layer that lives in a `static` (flash on a microcontroller), named by a type so that the
/// network that uses it holds nothing at all.
///
/// ```
/// use tinytrain::prelude::*;
/// use tinytrain::params::InFlash;
/// static BACKBONE: Dense<4, 8> = Dense { weight: [[0.5; 4]; 8], bias: [0.0; 8] };
/// struct Backbone;
/// impl InFlash for Backbone {
///     type Layer = Dense<4, 8>;
///     fn get() -> &'static Dense<4, 8> {
///         &BACKBONE
///     }
/// }
/// type Net = tinytrain::sequential![FrozenRef<Backbone>, Relu<8>, Dense<8, 2>];
/// assert_eq!(core::mem::size_of::<Net>(), core::mem::size_of::<Dense<8, 2>>());
/// ```
pub trait InFlash: 'static {
    /// The layer.
    type Layer: Layer;
    /// The static.
    fn get() -> &'static Self::Layer;
}

/// The layer of `S` frozen with its weights in a `static` (flash): the network holds no byte
/// of it. Loading a weights file checks that the file's values for these tensors equal the
/// static's, since flash is not rewritten.
///
/// # Shapes
/// Those of `S::Layer`.
pub struct FrozenRef<S>(core::marker::PhantomData<fn() -> S>);

impl<S> core::fmt::Debug for FrozenRef<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FrozenRef")
    }
}

impl<S> PartialEq for FrozenRef<S> {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl<S: InFlash> Layer for FrozenRef<S> {
    type Input = <S::Layer as Layer>::Input;
    type Output = <S::Layer as Layer>::Output;
    type Acts = <S::Layer as Layer>::Acts;
    const ZERO: Self = FrozenRef(core::marker::PhantomData);
    const RELU_UNITS: usize = <S::Layer as Layer>::RELU_UNITS;

    #[inline]
    fn forward(&self, x: &Self::Input, acts: &mut Self::Acts, y: &mut Self::Output, mode: &mut Mode) {
        S::get().forward(x, acts, y, mode);
    }

    #[inline]
    fn backward(
        &self,
        x: &Self::Input,
        acts: &Self::Acts,
        y: &Self::Output,
        dy: &Self::Output,
        deltas: &mut Self::Acts,
        _grads: Option<&mut ()>,
        dx: Option<&mut Self::Input>,
    ) {
        if dx.is_some() {
            S::get().backward(x, acts, y, dy, deltas, None, dx);
        }
    }

    /// Nothing to initialise: the weights are the static's.
    fn init_with(&mut self, _init: Init, _rng: &mut Rng) {}

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        <S::Layer as Layer>::describe(&mut |info| f(&LayerInfo { frozen: true, in_flash: true, ..*info }));
    }

    fn visit_outputs(acts: &Self::Acts, y: &Self::Output, f: &mut impl FnMut(UnitKind, &[f32])) {
        <S::Layer as Layer>::visit_outputs(acts, y, f);
    }
}

impl<S: InFlash> Params for FrozenRef<S> {
    type Grads = ();
    const GRADS_ZERO: () = ();
    const TRAINABLE_LEN: usize = 0;
    const STORED_LEN: usize = <S::Layer as Params>::STORED_LEN;

    fn visit(&self, f: &mut impl FnMut(&TensorDesc, &[f32])) {
        S::get().visit(&mut |d, p| f(&frozen(d), p));
    }

    fn visit_mut(&mut self, f: &mut impl FnMut(&TensorDesc, Slot<'_>)) {
        S::get().visit(&mut |d, p| f(&frozen(d), Slot::Fixed(p)));
    }

    fn copy_from(&mut self, _other: &Self) {}

    fn visit_grads(_grads: &(), _f: &mut impl FnMut(&[f32])) {}

    fn visit_grads_mut(_grads: &mut (), _f: &mut impl FnMut(&mut [f32])) {}

    fn zip_grads(&mut self, _grads: &(), _f: &mut impl FnMut(&mut [f32], &[f32])) {}

    fn params_finite(&self) -> bool {
        true
    }
}
