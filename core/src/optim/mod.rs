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
//! # Subnormal state is flushed to zero
//!
//! Every [`FLUSH_EVERY`] (16) updates, every state value an optimizer keeps (Adam's `m` and `v`,
//! the momentum and Nesterov velocity, RMSprop's mean square, Adadelta's two accumulators) goes
//! through [`flush_subnormal`](crate::math::flush_subnormal): a value whose magnitude is below
//! `f32::MIN_POSITIVE` (1.18e-38) becomes `+0.0`. Only there do the optimizers depart from
//! PyTorch and Keras, and only below 1.18e-38.
//!
//! Why: the state of a weight whose gradient has gone to zero (the weights of a ReLU unit that
//! stopped firing, for example) decays geometrically, `m` as 0.9^t and `v` as 0.999^t; without
//! the flush it reaches the subnormal range after about 800 (`m`) and 83,000 (`v`) updates and
//! stays there. x86 computes on subnormals through slow microcode assists: `digits-mlp` at
//! batch 1 went from about 430,000 samples/s to 48,000 once 526 of its 4,820 Adam state words
//! were subnormal, and to 30,000 when `v` followed. The flush is explicit arithmetic (a test of
//! the exponent bits and a select), not the FPU's flush-to-zero mode, so the host and the
//! Cortex-M still compute the same bits. Once flushed, the state of a weight whose gradient
//! stays zero stays exactly zero: in steady state no such word is subnormal, and a decaying
//! word spends at most 15 updates in the subnormal range on its way. Flushing in every update
//! instead cost about 8 instructions per parameter of an Adam step on a Cortex-M4 (digits-mlp
//! at batch 1: 106,623 instructions per sample against 87,879); a pass every 16 updates costs
//! about a sixteenth of that. A state word fed a subnormal contribution every update (a
//! gradient below 1e-19, whose square underflows) is subnormal between flushes.
//!
//! What it changes, numerically: a flushed `m` or velocity would have moved its parameter by
//! less than 1.18e-38 · lr (Adam: · lr / (√v̂ + eps)), which rounds away against any parameter
//! that is not itself tiny; a flushed `v` or Adadelta/RMSprop accumulator sits next to `eps`
//! (1e-8 or more by default; anything above 1e-11 does), which absorbs it. A subnormal
//! gradient leaves zero state at zero. Negative zero in the state becomes `+0.0`. The golden
//! trajectories against PyTorch are unchanged, and so are the short QEMU runs' weights.
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

/// Updates between two flushes of subnormal optimizer state to `+0.0`.
pub const FLUSH_EVERY: u32 = 16;

/// Every [`FLUSH_EVERY`] updates, sets each state value of `opt` whose magnitude is below
/// `f32::MIN_POSITIVE` to `+0.0` (see the module docs).
pub(crate) fn flush_periodically<O: Optimizer>(opt: &mut O) {
    if opt.steps().is_multiple_of(FLUSH_EVERY) {
        opt.visit_state_mut(&mut |s| {
            crate::kernels::wide(|| {
                for v in s {
                    *v = crate::math::flush_subnormal(*v);
                }
            });
        });
    }
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

/// The check every optimizer's tests run: state that must never sit in the subnormal range.
#[cfg(test)]
pub(crate) mod subnormal_check {
    use super::Optimizer;
    use crate::layer::Layer;
    use crate::layers::Dense;

    /// Ten parameters.
    pub(crate) type Net = Dense<4, 2>;

    /// The gradient of step `t`: all ten non-zero for 20 steps, then six of them zero for good
    /// (their state decays geometrically towards zero, through the subnormal range in the old
    /// code), one non-zero once every 10,000 steps, one constant, one whose square is subnormal
    /// and one subnormal itself.
    fn gradient(t: u32) -> Net {
        let mut g = Net::ZERO;
        if t < 20 {
            for (i, w) in g.weight.as_flattened_mut().iter_mut().enumerate() {
                let sign = if (i + t as usize).is_multiple_of(2) { 1.0 } else { -1.0 };
                *w = sign * 0.37 * (i + 1) as f32;
            }
            g.bias = [2.5, -0.01];
        } else {
            g.weight[1][2] = if t.is_multiple_of(10_000) { -1.5 } else { 0.0 };
            g.weight[1][3] = 0.5;
            g.bias = [1e-20, 3e-39];
        }
        g
    }

    /// Runs `steps` updates from fresh state and asserts after each flush (every
    /// [`FLUSH_EVERY`](super::FLUSH_EVERY) updates) that no word of `state(opt)` is subnormal;
    /// returns the model.
    pub(crate) fn assert_state_never_subnormal<O: Optimizer>(
        cfg: &O::Config,
        steps: u32,
        state: fn(&O) -> [&[f32]; 2],
    ) -> Net {
        let mut net = Net::ZERO;
        net.weight = [[0.5, -0.25, 0.125, 1.0], [-1.0, 2.0, 0.75, -0.5]];
        let mut opt = O::ZERO;
        for t in 0..steps {
            opt.step(cfg, &mut net, &gradient(t));
            let flushed = opt.steps().is_multiple_of(super::FLUSH_EVERY);
            for (slot, s) in state(&opt).iter().enumerate() {
                for (i, &x) in s.iter().enumerate() {
                    // Between flushes a decaying word may pass through the subnormal range.
                    assert!(
                        !flushed || !x.is_subnormal(),
                        "{}: step {t}, state {slot}[{i}] = {x:e} is subnormal",
                        O::NAME
                    );
                    assert!(x.is_finite(), "{}: step {t}, state {slot}[{i}] = {x}", O::NAME);
                }
            }
        }
        // The six words whose gradient stopped ended at exactly zero: the run went through the
        // range where the old code left them subnormal.
        for (slot, s) in state(&opt).iter().enumerate().filter(|(_, s)| !s.is_empty()) {
            let zeros = s.iter().filter(|&&x| x == 0.0).count();
            assert!(zeros >= 6, "{}: only {zeros} words of state {slot} reached zero", O::NAME);
        }
        net
    }
}
