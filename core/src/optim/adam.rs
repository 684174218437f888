//! Adam (Kingma & Ba), in the PyTorch form by default and the Keras form on request.
//!
//! ```
//! use tinytrain::prelude::*;
//! let cfg = AdamConfig::keras();
//! assert_eq!((cfg.eps, cfg.form), (1e-7, AdamForm::Keras));
//! assert_eq!(AdamConfig::default().eps, 1e-8);
//! ```

use super::{Optimizer, Schedule, for_each_with_state};
use crate::kernels::{AdamUpdate, adam_update};
use crate::layer::Layer;
use crate::math::{one_minus_powi, sqrt};

/// Where epsilon goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AdamForm {
    /// PyTorch (Algorithm 1 of the paper): θ −= lr · m̂ / (√v̂ + eps).
    #[default]
    Torch,
    /// Keras/TF "epsilon hat": θ −= lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m / (√v + eps).
    Keras,
}

/// Hyper-parameters of [`Adam`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: Schedule,
    /// β₁, decay of the first moment.
    pub beta1: f32,
    /// β₂, decay of the second moment.
    pub beta2: f32,
    /// Epsilon.
    pub eps: f32,
    /// PyTorch or Keras placement of epsilon.
    pub form: AdamForm,
}

impl Default for AdamConfig {
    /// PyTorch defaults: lr 1e-3, betas 0.9/0.999, eps 1e-8.
    fn default() -> Self {
        AdamConfig { lr: Schedule::Constant(1e-3), beta1: 0.9, beta2: 0.999, eps: 1e-8, form: AdamForm::Torch }
    }
}

impl AdamConfig {
    /// Keras defaults: lr 1e-3, betas 0.9/0.999, eps 1e-7 on √v ("epsilon hat").
    #[must_use]
    pub fn keras() -> Self {
        AdamConfig { eps: 1e-7, form: AdamForm::Keras, ..AdamConfig::default() }
    }
}

/// Adam state over `N` parameters: first and second moments and the update count.
#[derive(Debug, Clone, PartialEq)]
pub struct Adam<const N: usize> {
    m: [f32; N],
    v: [f32; N],
    t: u32,
}

impl<const N: usize> Optimizer for Adam<N> {
    type Config = AdamConfig;
    const NAME: &'static str = "Adam";
    const ZERO: Self = Adam { m: [0.0; N], v: [0.0; N], t: 0 };
    const SLOTS: usize = 2;

    fn step<M: Layer>(&mut self, cfg: &AdamConfig, model: &mut M, grads: &M::Grads) {
        const { assert!(N == M::NUM_PARAMS, "Adam<N>: N must be the network's NUM_PARAMS") };
        let lr = cfg.lr.at(self.t);
        let t1 = self.t.saturating_add(1);
        let (b1, b2, eps) = (cfg.beta1, cfg.beta2, cfg.eps);
        let bc1 = one_minus_powi(b1, t1);
        let bc2 = one_minus_powi(b2, t1);
        let form = cfg.form;
        // PyTorch: denom = √v/√bc2 + eps; θ −= (lr/bc1)·m/denom.
        // Keras:   denom = √v + eps;       θ −= (lr·√bc2/bc1)·m/denom.
        let (step_size, inv_sqrt_bc2) = match form {
            AdamForm::Torch => (lr / bc1, 1.0 / sqrt(bc2)),
            AdamForm::Keras => (lr * sqrt(bc2) / bc1, 1.0),
        };
        let c = AdamUpdate {
            beta1: b1,
            one_minus_beta1: 1.0 - b1,
            beta2: b2,
            one_minus_beta2: 1.0 - b2,
            inv_sqrt_bc2,
            eps,
            step_size,
        };
        for_each_with_state(model, grads, &mut self.m, &mut self.v, &mut |p, g, m, v| {
            adam_update(p, g, m, v, &c);
        });
        self.t = t1;
        super::flush_periodically(self);
    }

    fn set_steps(&mut self, steps: u32) {
        self.t = steps;
    }

    fn visit_state(&self, f: &mut impl FnMut(&[f32])) {
        f(&self.m);
        f(&self.v);
    }

    fn visit_state_mut(&mut self, f: &mut impl FnMut(&mut [f32])) {
        f(&mut self.m);
        f(&mut self.v);
    }

    fn steps(&self) -> u32 {
        self.t
    }

    fn learning_rate(&self, cfg: &AdamConfig) -> f32 {
        cfg.lr.at(self.t)
    }

    fn scale_learning_rate(cfg: &AdamConfig, factor: f32) -> AdamConfig {
        AdamConfig { lr: cfg.lr.scaled(factor), ..*cfg }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::subnormal_check::assert_state_never_subnormal;

    #[test]
    fn moments_never_go_subnormal() {
        // v of a gradient that stopped decays as 0.999^t: subnormal after about 83,000 steps.
        for cfg in [AdamConfig::default(), AdamConfig::keras()] {
            assert_state_never_subnormal::<Adam<10>>(&cfg, 100_000, |o| [&o.m, &o.v]);
        }
    }
}
