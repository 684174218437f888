//! RMSprop, in the PyTorch form by default and the Keras form on request.
//!
//! ```
//! use tinytrain::prelude::*;
//! assert_eq!(RmsPropConfig::default().rho, 0.99);
//! assert_eq!(RmsPropConfig::keras().rho, 0.9);
//! ```

use super::{Optimizer, Schedule};
use crate::kernels::wide;
use crate::layer::Layer;
use crate::math::sqrt;

/// Where epsilon goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RmsPropForm {
    /// PyTorch: θ −= lr · g / (√v + eps).
    #[default]
    Torch,
    /// Keras 3: θ −= lr · g / √(v + eps).
    Keras,
}

/// Hyper-parameters of [`RmsProp`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RmsPropConfig {
    /// Learning rate.
    pub lr: Schedule,
    /// Decay of the mean square (PyTorch `alpha`, Keras `rho`).
    pub rho: f32,
    /// Epsilon.
    pub eps: f32,
    /// PyTorch or Keras placement of epsilon.
    pub form: RmsPropForm,
}

impl Default for RmsPropConfig {
    /// PyTorch defaults: lr 0.01, alpha 0.99, eps 1e-8.
    fn default() -> Self {
        RmsPropConfig { lr: Schedule::Constant(0.01), rho: 0.99, eps: 1e-8, form: RmsPropForm::Torch }
    }
}

impl RmsPropConfig {
    /// Keras 3 defaults: lr 1e-3, rho 0.9, eps 1e-7 inside the square root.
    #[must_use]
    pub fn keras() -> Self {
        RmsPropConfig { lr: Schedule::Constant(1e-3), rho: 0.9, eps: 1e-7, form: RmsPropForm::Keras }
    }
}

/// RMSprop state over `N` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct RmsProp<const N: usize> {
    v: [f32; N],
    t: u32,
}

impl<const N: usize> Optimizer for RmsProp<N> {
    type Config = RmsPropConfig;
    const NAME: &'static str = "RMSprop";
    const ZERO: Self = RmsProp { v: [0.0; N], t: 0 };
    const SLOTS: usize = 1;

    fn step<M: Layer>(&mut self, cfg: &RmsPropConfig, model: &mut M, grads: &M::Grads) {
        const { assert!(N == M::NUM_PARAMS, "RmsProp<N>: N must be the network's NUM_PARAMS") };
        let lr = cfg.lr.at(self.t);
        let (rho, eps) = (cfg.rho, cfg.eps);
        let mut off = 0;
        let state = &mut self.v;
        model.zip_grads(grads, &mut |p, g| {
            let end = off + p.len();
            let Some(v) = state.get_mut(off..end) else { return };
            off = end;
            let it = p.iter_mut().zip(g).zip(v.iter_mut());
            wide(|| match cfg.form {
                RmsPropForm::Torch => it.for_each(|((pi, &gi), vi)| {
                    *vi = rho * *vi + (1.0 - rho) * (gi * gi);
                    *pi -= lr * gi / (sqrt(*vi) + eps);
                }),
                RmsPropForm::Keras => it.for_each(|((pi, &gi), vi)| {
                    *vi = rho * *vi + (1.0 - rho) * (gi * gi);
                    *pi -= lr * gi / sqrt(*vi + eps);
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
        f(&self.v);
    }

    fn visit_state_mut(&mut self, f: &mut impl FnMut(&mut [f32])) {
        f(&mut self.v);
    }

    fn steps(&self) -> u32 {
        self.t
    }

    fn learning_rate(&self, cfg: &RmsPropConfig) -> f32 {
        cfg.lr.at(self.t)
    }

    fn scale_learning_rate(cfg: &RmsPropConfig, factor: f32) -> RmsPropConfig {
        RmsPropConfig { lr: cfg.lr.scaled(factor), ..*cfg }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::subnormal_check::assert_state_never_subnormal;

    #[test]
    fn mean_square_never_goes_subnormal() {
        for cfg in [RmsPropConfig::default(), RmsPropConfig::keras()] {
            assert_state_never_subnormal::<RmsProp<10>>(&cfg, 20_000, |o| [&o.v, &[]]);
        }
    }
}
