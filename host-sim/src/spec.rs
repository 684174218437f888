//! What the work modules need to know of a model, without the registry: its name, data,
//! defaults and tensor names. [`crate::models`] builds the registry on top of it; [`crate::run`],
//! [`crate::tasks`] and [`crate::predict`] take a [`ModelSpec`], never the registry.

use anyhow::Result;
use tinytrain::Init;

use crate::datasets::DatasetKind;
use crate::interop::LayerNames;
use crate::optimizers::{OptimizerConfig, OptimizerKind, Overrides};

/// Where a model's data comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    /// Built into the task (XOR).
    Builtin,
    /// An image dataset found with [`crate::datasets`].
    Images(DatasetKind),
}

/// A model's default training settings: those of its baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Defaults {
    /// Optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate of that optimizer.
    pub lr: f32,
    /// Momentum, for the momentum and nesterov optimizers.
    pub momentum: f32,
    /// Samples per update.
    pub batch_size: usize,
    /// Epochs.
    pub epochs: u32,
    /// Weight initialiser.
    pub init: Init,
    /// Print an epoch line every this many epochs.
    pub log_every: u32,
}

impl Defaults {
    /// The optimizer config of these defaults, in the PyTorch or the Keras form.
    #[must_use]
    pub fn optimizer_config(&self, keras: bool) -> OptimizerConfig {
        self.optimizer_with(self.optimizer, keras, Overrides::default())
            .unwrap_or_else(|_| OptimizerConfig::defaults(self.optimizer, keras))
    }

    /// The config of optimizer `kind` under `overrides`. The model's learning rate and
    /// momentum are the defaults when `kind` is the model's own optimizer; another optimizer
    /// starts from its library defaults.
    ///
    /// # Errors
    /// As [`OptimizerConfig::build`].
    pub fn optimizer_with(&self, kind: OptimizerKind, keras: bool, overrides: Overrides) -> Result<OptimizerConfig> {
        let own = kind == self.optimizer;
        let momentum_kind = matches!(kind, OptimizerKind::Momentum | OptimizerKind::Nesterov);
        let overrides = Overrides {
            lr: overrides.lr.or(own.then_some(self.lr)),
            momentum: overrides.momentum.or((own && momentum_kind).then_some(self.momentum)),
            decay: overrides.decay,
        };
        OptimizerConfig::build(kind, keras, overrides)
    }
}

/// A model as the work modules see it.
#[derive(Debug)]
pub struct ModelSpec {
    /// Name on the command line.
    pub name: &'static str,
    /// One line about the network.
    pub about: &'static str,
    /// Where its data comes from.
    pub data: Data,
    /// Default training settings.
    pub defaults: Defaults,
    /// Names of the layers with tensors in safetensors files, in order; empty for the
    /// defaults of [`crate::interop`] (`fc1`/`dense`, `conv1`/`conv2d`, ...).
    pub tensors: &'static [LayerNames],
    /// The network type as generated Rust source names it (`tinytrain::zoo::DigitsMlp`).
    pub type_path: &'static str,
}
