//! Adadelta (Zeiler 2012) with the Keras defaults used by the Keras `mnist_cnn` example.
//!
//! Per parameter, with `g` the gradient:
//!
//! ```text
//! a     = rho·a + (1 − rho)·g²                 accumulated squared gradient
//! delta = √((b + eps) / (a + eps)) · g         the update (before the learning rate)
//! b     = rho·b + (1 − rho)·delta²             accumulated squared update
//! θ    −= lr · delta
//! ```
//!
//! This is Keras' and PyTorch's rule (`√(b + eps) / √(a + eps)` written as one square root of
//! the quotient: one `sqrt` and one division per parameter instead of two and one). Keras and
//! the Keras example use lr 1.0, rho 0.95, eps 1e-7 ([`AdadeltaConfig::default`]); PyTorch's
//! `torch.optim.Adadelta` defaults are rho 0.9, eps 1e-6 ([`AdadeltaConfig::torch`]).
//!
//! ```
//! use tinytrain::prelude::*;
//! type Net = tinytrain::sequential![Dense<1, 1>];
//! let mut net = Net::ZERO;
//! let mut grads = Net::ZERO;
//! grads.bias = [1.0];
//! let mut opt = Adadelta::<{ <Net as Layer>::NUM_PARAMS }>::ZERO;
//! opt.step(&AdadeltaConfig::default(), &mut net, &grads);
//! // First step: a = 0.05, delta = sqrt(1e-7 / (0.05 + 1e-7)) ≈ 1.414e-3.
//! assert!((net.bias[0] + 1.414e-3).abs() < 1e-6);
//! assert_eq!(<Adadelta<2> as Optimizer>::SLOTS, 2);
//! ```

use super::{Optimizer, Schedule, for_each_with_state};
use crate::kernels::wide;
use crate::layer::Layer;
use crate::math::sqrt;

/// Hyper-parameters of [`Adadelta`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdadeltaConfig {
    /// Learning rate (1.0 in the paper, Keras and PyTorch).
    pub lr: Schedule,
    /// Decay of both running averages.
    pub rho: f32,
    /// Epsilon, inside both square roots.
    pub eps: f32,
}

impl Default for AdadeltaConfig {
    /// Keras defaults: lr 1.0, rho 0.95, eps 1e-7.
    fn default() -> Self {
        AdadeltaConfig { lr: Schedule::Constant(1.0), rho: 0.95, eps: 1e-7 }
    }
}

impl AdadeltaConfig {
    /// Keras defaults (the same as [`Default`]): lr 1.0, rho 0.95, eps 1e-7.
    #[must_use]
    pub fn keras() -> Self {
        AdadeltaConfig::default()
    }

    /// PyTorch defaults: lr 1.0, rho 0.9, eps 1e-6.
    #[must_use]
    pub fn torch() -> Self {
        AdadeltaConfig { lr: Schedule::Constant(1.0), rho: 0.9, eps: 1e-6 }
    }
}

/// Adadelta state over `N` parameters: the running averages of squared gradients and of
/// squared updates, and the update count.
#[derive(Debug, Clone, PartialEq)]
pub struct Adadelta<const N: usize> {
    sq_grad: [f32; N],
    sq_delta: [f32; N],
    t: u32,
}

impl<const N: usize> Optimizer for Adadelta<N> {
    type Config = AdadeltaConfig;
    const NAME: &'static str = "Adadelta";
    const ZERO: Self = Adadelta { sq_grad: [0.0; N], sq_delta: [0.0; N], t: 0 };
    const SLOTS: usize = 2;

    fn step<M: Layer>(&mut self, cfg: &AdadeltaConfig, model: &mut M, grads: &M::Grads) {
        const { assert!(N == M::NUM_PARAMS, "Adadelta<N>: N must be the network's NUM_PARAMS") };
        let lr = cfg.lr.at(self.t);
        let (rho, eps) = (cfg.rho, cfg.eps);
        for_each_with_state(model, grads, &mut self.sq_grad, &mut self.sq_delta, &mut |p, g, a, b| {
            wide(|| {
                for (((pi, &gi), ai), bi) in p.iter_mut().zip(g).zip(a.iter_mut()).zip(b.iter_mut()) {
                    *ai = rho * *ai + (1.0 - rho) * (gi * gi);
                    let delta = sqrt((*bi + eps) / (*ai + eps)) * gi;
                    *bi = rho * *bi + (1.0 - rho) * (delta * delta);
                    *pi -= lr * delta;
                }
            });
        });
        self.t = self.t.saturating_add(1);
        super::flush_periodically(self);
    }

    fn set_steps(&mut self, steps: u32) {
        self.t = steps;
    }

    fn visit_state(&self, f: &mut impl FnMut(&[f32])) {
        f(&self.sq_grad);
        f(&self.sq_delta);
    }

    fn visit_state_mut(&mut self, f: &mut impl FnMut(&mut [f32])) {
        f(&mut self.sq_grad);
        f(&mut self.sq_delta);
    }

    fn steps(&self) -> u32 {
        self.t
    }

    fn learning_rate(&self, cfg: &AdadeltaConfig) -> f32 {
        cfg.lr.at(self.t)
    }

    fn scale_learning_rate(cfg: &AdadeltaConfig, factor: f32) -> AdadeltaConfig {
        AdadeltaConfig { lr: cfg.lr.scaled(factor), ..*cfg }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Dense;
    use crate::optim::subnormal_check::assert_state_never_subnormal;

    /// Keras 3's Adadelta in f64: `√(b + eps) / √(a + eps)` with two square roots.
    fn reference(grads: &[f64], rho: f64, eps: f64, lr: f64) -> f64 {
        let sqrt = libm::sqrt;
        let (mut p, mut a, mut b) = (0.5f64, 0.0f64, 0.0f64);
        for &g in grads {
            a = rho * a + (1.0 - rho) * g * g;
            let delta = sqrt(b + eps) / sqrt(a + eps) * g;
            b = rho * b + (1.0 - rho) * delta * delta;
            p -= lr * delta;
        }
        p
    }

    #[test]
    fn accumulators_never_go_subnormal() {
        for cfg in [AdadeltaConfig::default(), AdadeltaConfig::torch()] {
            assert_state_never_subnormal::<Adadelta<10>>(&cfg, 20_000, |o| [&o.sq_grad, &o.sq_delta]);
        }
    }

    #[test]
    fn follows_the_keras_rule_over_many_steps() {
        let grads: [f32; 6] = [0.3, -1.2, 2.5, 0.01, -0.4, 0.9];
        let mut net = Dense::<1, 1>::ZERO;
        net.bias = [0.5];
        let mut opt = Adadelta::<2>::ZERO;
        let cfg = AdadeltaConfig { lr: Schedule::Constant(0.8), ..AdadeltaConfig::default() };
        let mut seq = [0.0f64; 60];
        for (i, &g) in grads.iter().cycle().take(60).enumerate() {
            let mut gr = Dense::<1, 1>::ZERO;
            gr.bias = [g];
            opt.step(&cfg, &mut net, &gr);
            seq[i] = f64::from(g);
            let want = reference(&seq[..=i], 0.95, 1e-7, 0.8);
            let got = f64::from(net.bias[0]);
            assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "step {i}: {got} vs {want}");
        }
        assert_eq!(opt.steps(), 60);
    }
}
