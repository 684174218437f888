//! Optimizers: state sized at compile time, hyper-parameters in a separate config.
//!
//! An optimizer's state (`Adam<N>`: two moment vectors of `N` parameters) is a plain value that
//! can sit in a `static` in `.bss`; its [`Optimizer::Config`] (learning rate schedule, betas,
//! ...) is passed to every [`Optimizer::step`]. In concrete code size it from the network:
//! `Adam<{ <Net as Layer>::NUM_PARAMS }>`. A size that does not match the network fails to
//! build.
//!
//! Where Keras and PyTorch differ, the default follows **PyTorch** (the baselines we compare
//! with are PyTorch runs), and the Keras rule is one field away:
//!
//! | optimizer | default (PyTorch) | Keras form |
//! |---|---|---|
//! | [`Adam`] | eps 1e-8 on √v̂ | [`AdamConfig::keras`]: eps 1e-7 on √v ("epsilon hat") |
//! | [`Adadelta`] | Keras: lr 1.0, rho 0.95, eps 1e-7 (what the Keras `mnist_cnn` example uses) | [`AdadeltaConfig::torch`] gives PyTorch's rho 0.9, eps 1e-6 |
//! | [`RmsProp`] | alpha 0.99, eps 1e-8, g/(√v+eps) | [`RmsPropConfig::keras`]: rho 0.9, eps 1e-7, g/√(v+eps) |
//! | [`Momentum`] | buf = μ·buf + g; θ −= lr_t·buf | [`MomentumForm::Keras`]: v = μ·v − lr_t·g; θ += v |
//!
//! ```
//! use tinytrain::prelude::*;
//! type Net = tinytrain::sequential![Dense<2, 1>];
//! let mut net = Net::ZERO;
//! let mut grads = Net::ZERO;
//! grads.bias = [1.0];
//! let mut adam = Adam::<{ <Net as Layer>::NUM_PARAMS }>::ZERO;
//! adam.step(&AdamConfig::default(), &mut net, &grads);
//! assert!((net.bias[0] + 1e-3).abs() < 1e-6);
//! ```

mod adadelta;
mod adam;
mod rmsprop;
mod schedule;
mod sgd;

pub use adadelta::{Adadelta, AdadeltaConfig};
pub use adam::{Adam, AdamConfig, AdamForm};
pub use rmsprop::{RmsProp, RmsPropConfig, RmsPropForm};
pub use schedule::Schedule;
pub use sgd::{Momentum, MomentumConfig, MomentumForm, Sgd, SgdConfig};

use crate::layer::Layer;

/// An optimizer: state that updates a network's parameters from its gradients.
pub trait Optimizer: Sized {
    /// Hyper-parameters.
    type Config: Copy + core::fmt::Debug;
    /// Name for logs (Keras spelling).
    const NAME: &'static str;
    /// Fresh state.
    const ZERO: Self;
    /// State values kept per parameter (0 for SGD, 1 for momentum and RMSprop, 2 for Adam).
    const SLOTS: usize;

    /// One update of `model` from `grads` (gradients of the batch-mean loss).
    fn step<M: Layer>(&mut self, cfg: &Self::Config, model: &mut M, grads: &M::Grads);

    /// Updates done so far.
    fn steps(&self) -> u32;

    /// Sets the update counter (when resuming from a training checkpoint).
    fn set_steps(&mut self, steps: u32);

    /// Visits the per-parameter state arrays in a fixed order (for training checkpoints).
    fn visit_state(&self, f: &mut impl FnMut(&[f32]));

    /// Visits the per-parameter state arrays mutably, in the same order.
    fn visit_state_mut(&mut self, f: &mut impl FnMut(&mut [f32]));

    /// The learning rate the next update will use.
    fn learning_rate(&self, cfg: &Self::Config) -> f32;

    /// The config with its learning rate (schedule) multiplied by `factor`.
    fn scale_learning_rate(cfg: &Self::Config, factor: f32) -> Self::Config;

    /// Forgets all state, as if freshly created.
    fn reset(&mut self) {
        *self = Self::ZERO;
    }
}

/// Applies `f(param, grad, state_slice_a, state_slice_b)` over a model whose optimizer
/// state is two flat arrays of `N` values, keeping the offsets in step.
pub(crate) fn for_each_with_state<M: Layer, const N: usize>(
    model: &mut M,
    grads: &M::Grads,
    a: &mut [f32; N],
    b: &mut [f32; N],
    f: &mut impl FnMut(&mut [f32], &[f32], &mut [f32], &mut [f32]),
) {
    let mut off = 0;
    model.zip_grads(grads, &mut |p, g| {
        let end = off + p.len();
        if let (Some(sa), Some(sb)) = (a.get_mut(off..end), b.get_mut(off..end)) {
            f(p, g, sa, sb);
        }
        off = end;
    });
}

/// Rescales `grads` so that their global L2 norm is at most `max_norm` (PyTorch
/// `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)`). Returns the norm before clipping.
///
/// ```
/// use tinytrain::prelude::*;
/// let mut g = Dense::<1, 1>::ZERO;
/// g.weight = [[3.0]];
/// g.bias = [4.0];
/// let norm = tinytrain::optim::clip_grad_norm::<Dense<1, 1>>(&mut g, 1.0);
/// assert_eq!(norm, 5.0);
/// assert!((g.weight[0][0] - 0.6).abs() < 1e-5);
/// ```
pub fn clip_grad_norm<M: Layer>(grads: &mut M::Grads, max_norm: f32) -> f32 {
    let norm = crate::math::sqrt(M::grads_sum_squares(grads));
    if norm > max_norm {
        M::scale_grads(grads, max_norm / (norm + 1e-6));
    }
    norm
}
