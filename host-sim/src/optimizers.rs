//! Choosing an optimizer at run time.
//!
//! Optimizer state is sized at compile time from the network (`Adam<{ <Net as Layer>::NUM_PARAMS }>`),
//! which only works where the network is a concrete type. So the choice made on the command
//! line is an [`OptimizerConfig`] value, and [`with_optimizer!`](crate::with_optimizer)
//! expands, for one concrete network, into a `match` that names the optimizer type in each
//! arm and calls generic code with it. The model registry does that once per model.
//!
//! ```
//! use tinytrain::prelude::*;
//! use tinytrain::zoo::DigitsMlp;
//! use tinytrain_sim::optimizers::{OptimizerConfig, OptimizerKind};
//!
//! fn state_bytes<O: Optimizer>(_cfg: &O::Config) -> usize {
//!     core::mem::size_of::<O>()
//! }
//! let cfg = OptimizerConfig::defaults(OptimizerKind::Adam, false);
//! let bytes = tinytrain_sim::with_optimizer!(DigitsMlp, cfg, |Opt, c| state_bytes::<Opt>(&c));
//! assert_eq!(bytes, 2 * 4 * 2410 + 4);
//! ```
//!
//! Adding an optimizer: a variant in [`OptimizerKind`] and in [`OptimizerConfig`], its
//! defaults in [`OptimizerConfig::defaults`], and one arm in `with_optimizer!`.

use std::fmt;

use anyhow::{Result, bail};
use tinytrain::optim::{
    AdadeltaConfig, AdamConfig, AdamForm, MomentumConfig, MomentumForm, RmsPropConfig, RmsPropForm, Schedule, SgdConfig,
};

/// The optimizers the command line offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizerKind {
    /// Plain SGD.
    Sgd,
    /// SGD with momentum.
    Momentum,
    /// SGD with Nesterov momentum.
    Nesterov,
    /// Adam.
    Adam,
    /// RMSprop.
    Rmsprop,
    /// Adadelta (Keras defaults: lr 1.0, rho 0.95, eps 1e-7, as in the Keras mnist_cnn example).
    Adadelta,
}

impl OptimizerKind {
    /// The name used on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Momentum => "momentum",
            OptimizerKind::Nesterov => "nesterov",
            OptimizerKind::Adam => "adam",
            OptimizerKind::Rmsprop => "rmsprop",
            OptimizerKind::Adadelta => "adadelta",
        }
    }
}

impl fmt::Display for OptimizerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A chosen optimizer with its hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerConfig {
    /// Plain SGD.
    Sgd(SgdConfig),
    /// SGD with momentum, Nesterov or not.
    Momentum(MomentumConfig),
    /// Adam.
    Adam(AdamConfig),
    /// RMSprop.
    RmsProp(RmsPropConfig),
    /// Adadelta.
    Adadelta(AdadeltaConfig),
}

/// What the command line may override in an optimizer's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Overrides {
    /// Learning rate.
    pub lr: Option<f32>,
    /// Momentum (momentum and Nesterov only).
    pub momentum: Option<f32>,
    /// Keras inverse-time decay per update: `lr / (1 + decay · t)`.
    pub decay: Option<f32>,
}

impl OptimizerConfig {
    /// The library defaults of `kind`: PyTorch's (Adam lr 1e-3, RMSprop lr 1e-2 alpha 0.99,
    /// momentum 0.9 in the PyTorch form), or Keras' with `keras` (Adam eps 1e-7 "epsilon
    /// hat", RMSprop lr 1e-3 rho 0.9, momentum in the Keras form). PyTorch has no default
    /// learning rate for SGD; both use Keras' 0.01. Adadelta uses the Keras values either way
    /// (lr 1.0, rho 0.95, eps 1e-7), the core's default and what the Keras CNN example uses.
    #[must_use]
    pub fn defaults(kind: OptimizerKind, keras: bool) -> Self {
        let momentum_form = if keras { MomentumForm::Keras } else { MomentumForm::Torch };
        match kind {
            OptimizerKind::Sgd => OptimizerConfig::Sgd(SgdConfig::default()),
            OptimizerKind::Momentum | OptimizerKind::Nesterov => OptimizerConfig::Momentum(MomentumConfig {
                nesterov: kind == OptimizerKind::Nesterov,
                form: momentum_form,
                ..MomentumConfig::default()
            }),
            OptimizerKind::Adam => {
                OptimizerConfig::Adam(if keras { AdamConfig::keras() } else { AdamConfig::default() })
            }
            OptimizerKind::Rmsprop => {
                OptimizerConfig::RmsProp(if keras { RmsPropConfig::keras() } else { RmsPropConfig::default() })
            }
            OptimizerKind::Adadelta => OptimizerConfig::Adadelta(AdadeltaConfig::default()),
        }
    }

    /// The defaults of `kind` with the overrides applied.
    ///
    /// # Errors
    /// A momentum given to an optimizer without one, or a value out of range.
    pub fn build(kind: OptimizerKind, keras: bool, overrides: Overrides) -> Result<Self> {
        let mut cfg = Self::defaults(kind, keras);
        let lr = overrides.lr.unwrap_or_else(|| cfg.lr().initial());
        if !(lr.is_finite() && lr > 0.0) {
            bail!("learning rate {lr} must be positive and finite");
        }
        let schedule = match overrides.decay {
            None => Schedule::Constant(lr),
            Some(d) if d.is_finite() && d >= 0.0 => {
                Schedule::InverseTime { initial: lr, decay_rate: d, decay_steps: 1 }
            }
            Some(d) => bail!("decay {d} must be non-negative and finite"),
        };
        match (&mut cfg, overrides.momentum) {
            (OptimizerConfig::Momentum(c), Some(m)) => {
                if !(m.is_finite() && (0.0..1.0).contains(&m)) {
                    bail!("momentum {m} must be in [0, 1)");
                }
                c.momentum = m;
            }
            (_, Some(_)) => bail!("--momentum applies to the momentum and nesterov optimizers, not {kind}"),
            (_, None) => {}
        }
        cfg.set_lr(schedule);
        Ok(cfg)
    }

    /// The learning-rate schedule.
    #[must_use]
    pub fn lr(&self) -> Schedule {
        match self {
            OptimizerConfig::Sgd(c) => c.lr,
            OptimizerConfig::Momentum(c) => c.lr,
            OptimizerConfig::Adam(c) => c.lr,
            OptimizerConfig::RmsProp(c) => c.lr,
            OptimizerConfig::Adadelta(c) => c.lr,
        }
    }

    fn set_lr(&mut self, lr: Schedule) {
        match self {
            OptimizerConfig::Sgd(c) => c.lr = lr,
            OptimizerConfig::Momentum(c) => c.lr = lr,
            OptimizerConfig::Adam(c) => c.lr = lr,
            OptimizerConfig::RmsProp(c) => c.lr = lr,
            OptimizerConfig::Adadelta(c) => c.lr = lr,
        }
    }
}

/// A number as people write hyper-parameters: `0.05`, `1e-5`, `1e30`.
struct Num(f32);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0.abs();
        if a == 0.0 || (1e-3..1e4).contains(&a) { write!(f, "{}", self.0) } else { write!(f, "{:e}", self.0) }
    }
}

struct LrText(Schedule);

impl fmt::Display for LrText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Schedule::InverseTime { initial, decay_rate, decay_steps: 1 } => {
                write!(f, "lr {} / (1 + {}·t)", Num(initial), Num(decay_rate))
            }
            other => write!(f, "lr {}", Num(other.initial())),
        }
    }
}

impl fmt::Display for OptimizerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let form = |keras: bool| if keras { "Keras form" } else { "PyTorch form" };
        match *self {
            OptimizerConfig::Sgd(c) => write!(f, "SGD {}", LrText(c.lr)),
            OptimizerConfig::Momentum(c) => write!(
                f,
                "SGD {}, {}momentum {} ({})",
                LrText(c.lr),
                if c.nesterov { "Nesterov " } else { "" },
                c.momentum,
                form(c.form == MomentumForm::Keras)
            ),
            OptimizerConfig::Adam(c) => write!(
                f,
                "Adam {}, betas {}/{}, eps {:e} ({})",
                LrText(c.lr),
                c.beta1,
                c.beta2,
                c.eps,
                form(c.form == AdamForm::Keras)
            ),
            OptimizerConfig::RmsProp(c) => write!(
                f,
                "RMSprop {}, rho {}, eps {:e} ({})",
                LrText(c.lr),
                c.rho,
                c.eps,
                form(c.form == RmsPropForm::Keras)
            ),
            OptimizerConfig::Adadelta(c) => write!(f, "Adadelta {}, rho {}, eps {:e}", LrText(c.lr), c.rho, c.eps),
        }
    }
}

/// Runs `$body` with `$opt` naming the optimizer type of `$config` for network `$net` and
/// `$cfg` bound to its hyper-parameters. `$net` must be a concrete type.
///
/// ```
/// use tinytrain::prelude::*;
/// use tinytrain_sim::optimizers::{OptimizerConfig, OptimizerKind};
/// type Net = tinytrain::sequential![Dense<3, 2>];
/// let cfg = OptimizerConfig::defaults(OptimizerKind::Momentum, false);
/// let name = tinytrain_sim::with_optimizer!(Net, cfg, |Opt, _c| <Opt as Optimizer>::NAME);
/// assert_eq!(name, "SGD+momentum");
/// ```
#[macro_export]
macro_rules! with_optimizer {
    ($net:ty, $config:expr, |$opt:ident, $cfg:pat_param| $body:expr) => {
        match $config {
            $crate::optimizers::OptimizerConfig::Sgd($cfg) => {
                #[allow(dead_code)]
                type $opt = ::tinytrain::optim::Sgd;
                $body
            }
            $crate::optimizers::OptimizerConfig::Momentum($cfg) => {
                #[allow(dead_code)]
                type $opt = ::tinytrain::optim::Momentum<{ <$net as ::tinytrain::Layer>::NUM_PARAMS }>;
                $body
            }
            $crate::optimizers::OptimizerConfig::Adam($cfg) => {
                #[allow(dead_code)]
                type $opt = ::tinytrain::optim::Adam<{ <$net as ::tinytrain::Layer>::NUM_PARAMS }>;
                $body
            }
            $crate::optimizers::OptimizerConfig::RmsProp($cfg) => {
                #[allow(dead_code)]
                type $opt = ::tinytrain::optim::RmsProp<{ <$net as ::tinytrain::Layer>::NUM_PARAMS }>;
                $body
            }
            $crate::optimizers::OptimizerConfig::Adadelta($cfg) => {
                #[allow(dead_code)]
                type $opt = ::tinytrain::optim::Adadelta<{ <$net as ::tinytrain::Layer>::NUM_PARAMS }>;
                $body
            }
        }
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn overrides_apply_and_are_checked() {
        let o = Overrides { lr: Some(0.05), momentum: Some(0.8), decay: Some(0.01) };
        let OptimizerConfig::Momentum(c) = OptimizerConfig::build(OptimizerKind::Nesterov, true, o).unwrap() else {
            unreachable!()
        };
        assert!(c.nesterov && c.form == MomentumForm::Keras && c.momentum == 0.8);
        assert_eq!(c.lr, Schedule::InverseTime { initial: 0.05, decay_rate: 0.01, decay_steps: 1 });
        let err = OptimizerConfig::build(OptimizerKind::Adam, false, Overrides { momentum: Some(0.9), ..o });
        assert!(err.unwrap_err().to_string().contains("--momentum"));
        let err =
            OptimizerConfig::build(OptimizerKind::Sgd, false, Overrides { lr: Some(-1.0), ..Overrides::default() });
        assert!(err.is_err());
        assert_eq!(OptimizerConfig::defaults(OptimizerKind::Rmsprop, true).lr().initial(), 1e-3);
    }
}
