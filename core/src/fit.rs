//! [`Trainer::fit`]: training settings as a Keras user writes them, one call per setting.
//!
//! ```
//! use tinytrain::prelude::*;
//! type Net = tinytrain::sequential![Dense<2, 8>, Tanh<8>, Dense<8, 1>, Sigmoid<1>];
//! let xor = [([0.0, 0.0], [0.0]), ([0.0, 1.0], [1.0]), ([1.0, 0.0], [1.0]), ([1.0, 1.0], [0.0])];
//! let mut trainer = Trainer::<Net, Adam<{ <Net as Layer>::NUM_PARAMS }>>::ZERO;
//! trainer.model.init(&mut Rng::new(7));
//! let adam = AdamConfig { lr: Schedule::Constant(0.05), ..AdamConfig::default() };
//! let report = trainer.fit(&adam, &Mse::MEAN, &xor[..]).epochs(500).batch_size(4).seed(1).run()?;
//! assert_eq!(report.last.train_accuracy, 1.0);
//!
//! // With validation data, early stopping and a snapshot to restore the best weights from:
//! let mut best = Net::ZERO;
//! let report = trainer
//!     .fit(&adam, &Mse::MEAN, &xor[..])
//!     .epochs(50)
//!     .validation(&xor[..])
//!     .patience(5)
//!     .snapshot(&mut best)
//!     .run()?;
//! assert!(report.epochs_run <= 50);
//! # Ok::<(), tinytrain::Error>(())
//! ```

use crate::data::Dataset;
use crate::error::Error;
use crate::layer::Layer;
use crate::loss::Loss;
use crate::optim::Optimizer;
use crate::tensor::Zero;
use crate::train::{Callback, DivergenceGuard, FitConfig, FitReport, Trainer, UnitMonitor};

/// A training run being set up: made by [`Trainer::fit`], started by [`Fit::run`].
///
/// Defaults are those of [`FitConfig::default`]: 10 epochs, batch 32, seed 0, shuffled, no
/// validation, no early stopping, no snapshot, no monitor, no callback.
#[must_use = "a Fit does nothing until `run` is called"]
pub struct Fit<'a, M: Layer, O: Optimizer, L, D: ?Sized, V: ?Sized, U, C> {
    trainer: &'a mut Trainer<M, O>,
    opt_cfg: &'a O::Config,
    loss: &'a L,
    train: &'a D,
    val: Option<&'a V>,
    cfg: FitConfig,
    snapshot: Option<&'a mut M>,
    monitor: U,
    callback: C,
}

impl<M: Layer, O: Optimizer> Trainer<M, O> {
    /// Sets up training on `train` with optimizer config `opt_cfg` and loss `loss`; add
    /// settings with the builder's methods and start with [`Fit::run`].
    pub fn fit<'a, L, D>(
        &'a mut self,
        opt_cfg: &'a O::Config,
        loss: &'a L,
        train: &'a D,
    ) -> Fit<'a, M, O, L, D, D, (), ()>
    where
        D: ?Sized,
    {
        Fit {
            trainer: self,
            opt_cfg,
            loss,
            train,
            val: None,
            cfg: FitConfig::default(),
            snapshot: None,
            monitor: (),
            callback: (),
        }
    }
}

impl<'a, M, O, L, D, V, U, C> Fit<'a, M, O, L, D, V, U, C>
where
    M: Layer,
    O: Optimizer,
    L: Loss<M::Output>,
    L::Target: Zero,
    D: Dataset<M::Input, L::Target> + ?Sized,
    V: Dataset<M::Input, L::Target> + ?Sized,
    U: UnitMonitor,
    C: Callback,
{
    /// Passes over the training set.
    pub fn epochs(mut self, epochs: u32) -> Self {
        self.cfg.epochs = epochs;
        self
    }

    /// Samples per optimizer step.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.cfg.batch_size = batch_size;
        self
    }

    /// Seed of the shuffling and of dropout.
    pub fn seed(mut self, seed: u64) -> Self {
        self.cfg.seed = seed;
        self
    }

    /// Shuffle the training set every epoch (the default) or not.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.cfg.shuffle = shuffle;
        self
    }

    /// Clip the global gradient norm to `max_norm` before each step.
    pub fn clip_norm(mut self, max_norm: f32) -> Self {
        self.cfg.clip_norm = Some(max_norm);
        self
    }

    /// Stop after `patience` epochs without improvement of the validation loss (training
    /// loss without validation data); with a [`Fit::snapshot`], restore the best weights.
    pub fn patience(mut self, patience: u32) -> Self {
        self.cfg.patience = Some(patience);
        self
    }

    /// The smallest decrease of the monitored loss that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f32) -> Self {
        self.cfg.min_delta = min_delta;
        self
    }

    /// What to do when training diverges.
    pub fn guard(mut self, guard: DivergenceGuard) -> Self {
        self.cfg.guard = guard;
        self
    }

    /// Do not train the first `layers` layers with trainable tensors ([`FitConfig::freeze`]).
    pub fn freeze(mut self, layers: u32) -> Self {
        self.cfg.freeze = layers;
        self
    }

    /// Every setting at once.
    pub fn config(mut self, cfg: FitConfig) -> Self {
        self.cfg = cfg;
        self
    }

    /// A second copy of the weights (it costs RAM): the best weights with early stopping, and
    /// what the divergence guard rolls back to.
    pub fn snapshot(mut self, snapshot: &'a mut M) -> Self {
        self.snapshot = Some(snapshot);
        self
    }

    /// Evaluates `val` after every epoch; early stopping watches its loss.
    pub fn validation<V2>(self, val: &'a V2) -> Fit<'a, M, O, L, D, V2, U, C>
    where
        V2: Dataset<M::Input, L::Target> + ?Sized,
    {
        Fit {
            trainer: self.trainer,
            opt_cfg: self.opt_cfg,
            loss: self.loss,
            train: self.train,
            val: Some(val),
            cfg: self.cfg,
            snapshot: self.snapshot,
            monitor: self.monitor,
            callback: self.callback,
        }
    }

    /// Watches the units of every training forward pass (a dead-ReLU monitor).
    pub fn monitor<U2: UnitMonitor>(self, monitor: U2) -> Fit<'a, M, O, L, D, V, U2, C> {
        Fit {
            trainer: self.trainer,
            opt_cfg: self.opt_cfg,
            loss: self.loss,
            train: self.train,
            val: self.val,
            cfg: self.cfg,
            snapshot: self.snapshot,
            monitor,
            callback: self.callback,
        }
    }

    /// Reports progress to `callback` (pass `&mut cb` to keep it).
    pub fn callback<C2: Callback>(self, callback: C2) -> Fit<'a, M, O, L, D, V, U, C2> {
        Fit {
            trainer: self.trainer,
            opt_cfg: self.opt_cfg,
            loss: self.loss,
            train: self.train,
            val: self.val,
            cfg: self.cfg,
            snapshot: self.snapshot,
            monitor: self.monitor,
            callback,
        }
    }

    /// Trains.
    ///
    /// # Errors
    /// As [`Trainer::fit_with`].
    pub fn run(mut self) -> Result<FitReport, Error> {
        self.trainer.fit_with(
            self.opt_cfg,
            self.loss,
            self.train,
            self.val,
            &self.cfg,
            self.snapshot,
            &mut self.monitor,
            &mut self.callback,
        )
    }
}
