//! Stochastic gradient descent, plain and with (Nesterov) momentum.
//!
//! ```
//! use tinytrain::prelude::*;
//! let mut net = Dense::<1, 1>::ZERO;
//! let mut g = Dense::<1, 1>::ZERO;
//! g.weight = [[1.0]];
//! Sgd::ZERO.step(&SgdConfig { lr: Schedule::Constant(0.5) }, &mut net, &g);
//! assert_eq!(net.weight, [[-0.5]]);
//! ```

use super::{Optimizer, Schedule};
use crate::kernels::wide;
use crate::layer::Layer;

/// Hyper-parameters of plain [`Sgd`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SgdConfig {
    /// Learning rate (Keras default 0.01).
    pub lr: Schedule,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: Schedule::Constant(0.01) }
    }
}

/// Plain SGD, θ −= lr_t · g. Its only state is the update count.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sgd {
    t: u32,
}

impl Optimizer for Sgd {
    type Config = SgdConfig;
    const NAME: &'static str = "SGD";
    const ZERO: Self = Sgd { t: 0 };
    const SLOTS: usize = 0;

    fn step<M: Layer>(&mut self, cfg: &SgdConfig, model: &mut M, grads: &M::Grads) {
        let lr = cfg.lr.at(self.t);
        model.zip_grads(grads, &mut |p, g| {
            wide(|| {
                for (pi, gi) in p.iter_mut().zip(g) {
                    *pi -= lr * gi;
                }
            });
        });
        self.t = self.t.saturating_add(1);
        super::flush_periodically(self);
    }

    fn set_steps(&mut self, steps: u32) {
        self.t = steps;
    }

    fn visit_state(&self, _f: &mut impl FnMut(&[f32])) {}

    fn visit_state_mut(&mut self, _f: &mut impl FnMut(&mut [f32])) {}

    fn steps(&self) -> u32 {
        self.t
    }

    fn learning_rate(&self, cfg: &SgdConfig) -> f32 {
        cfg.lr.at(self.t)
    }

    fn scale_learning_rate(cfg: &SgdConfig, factor: f32) -> SgdConfig {
        SgdConfig { lr: cfg.lr.scaled(factor) }
    }
}

/// Where the learning rate sits in the momentum update; only matters when it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MomentumForm {
    /// PyTorch: buf = μ·buf + g; θ −= lr_t · buf (Nesterov: θ −= lr_t · (g + μ·buf)).
    #[default]
    Torch,
    /// Keras: v = μ·v − lr_t·g; θ += v (Nesterov: θ += μ·v − lr_t·g).
    Keras,
}

/// Hyper-parameters of [`Momentum`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MomentumConfig {
    /// Learning rate.
    pub lr: Schedule,
    /// Momentum μ.
    pub momentum: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// PyTorch or Keras update.
    pub form: MomentumForm,
}

impl Default for MomentumConfig {
    /// lr 0.01, momentum 0.9, PyTorch form.
    fn default() -> Self {
        MomentumConfig { lr: Schedule::Constant(0.01), momentum: 0.9, nesterov: false, form: MomentumForm::Torch }
    }
}

/// SGD with momentum over `N` parameters: one velocity per parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Momentum<const N: usize> {
    velocity: [f32; N],
    t: u32,
}

impl<const N: usize> Optimizer for Momentum<N> {
    type Config = MomentumConfig;
    const NAME: &'static str = "SGD+momentum";
    const ZERO: Self = Momentum { velocity: [0.0; N], t: 0 };
    const SLOTS: usize = 1;

    fn step<M: Layer>(&mut self, cfg: &MomentumConfig, model: &mut M, grads: &M::Grads) {
        const { assert!(N == M::NUM_PARAMS, "Momentum<N>: N must be the network's NUM_PARAMS") };
        let lr = cfg.lr.at(self.t);
        let mu = cfg.momentum;
        let mut off = 0;
        let velocity = &mut self.velocity;
        model.zip_grads(grads, &mut |p, g| {
            let end = off + p.len();
            let Some(v) = velocity.get_mut(off..end) else { return };
            off = end;
            let it = p.iter_mut().zip(g).zip(v.iter_mut());
            wide(|| match (cfg.form, cfg.nesterov) {
                (MomentumForm::Torch, false) => it.for_each(|((pi, &gi), vi)| {
                    *vi = mu * *vi + gi;
                    *pi -= lr * *vi;
                }),
                (MomentumForm::Torch, true) => it.for_each(|((pi, &gi), vi)| {
                    *vi = mu * *vi + gi;
                    *pi -= lr * (gi + mu * *vi);
                }),
                (MomentumForm::Keras, false) => it.for_each(|((pi, &gi), vi)| {
                    *vi = mu * *vi - lr * gi;
                    *pi += *vi;
                }),
                (MomentumForm::Keras, true) => it.for_each(|((pi, &gi), vi)| {
                    *vi = mu * *vi - lr * gi;
                    *pi += mu * *vi - lr * gi;
                }),
            });
        });
        self.t = self.t.saturating_add(1);
        super::flush_periodically(self);
    }

    fn set_steps(&mut self, steps: u32) {
        self.t = steps;
    }

    fn visit_state(&self, f: &mut impl FnMut(&[f32])) {
        f(&self.velocity);
    }

    fn visit_state_mut(&mut self, f: &mut impl FnMut(&mut [f32])) {
        f(&mut self.velocity);
    }

    fn steps(&self) -> u32 {
        self.t
    }

    fn learning_rate(&self, cfg: &MomentumConfig) -> f32 {
        cfg.lr.at(self.t)
    }

    fn scale_learning_rate(cfg: &MomentumConfig, factor: f32) -> MomentumConfig {
        MomentumConfig { lr: cfg.lr.scaled(factor), ..*cfg }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::subnormal_check::assert_state_never_subnormal;

    #[test]
    fn velocity_never_goes_subnormal() {
        for form in [MomentumForm::Torch, MomentumForm::Keras] {
            for nesterov in [false, true] {
                let cfg = MomentumConfig { nesterov, form, ..MomentumConfig::default() };
                assert_state_never_subnormal::<Momentum<10>>(&cfg, 20_000, |o| [&o.velocity, &[]]);
            }
        }
    }
}
