//! Training: the [`Trainer`] state, the [`Trainer::fit`] loop, callbacks, early stopping and
//! the dead-ReLU monitor.
//!
//! A mini-batch is gradient accumulation: each sample is loaded, run forward and backward, and
//! its gradient (scaled by 1/batch) added to `grads`; the optimizer steps once per batch. No
//! buffer grows with the batch, so the batch size is a run-time choice that costs no RAM.
//!
//! ```
//! use tinytrain::prelude::*;
//! type Net = tinytrain::sequential![Dense<2, 8>, Tanh<8>, Dense<8, 1>];
//! let data = [([0.0, 0.0], [0.0]), ([0.0, 1.0], [1.0]), ([1.0, 0.0], [1.0]), ([1.0, 1.0], [0.0])];
//! let mut t = Trainer::<Net, Adam<{ <Net as Layer>::NUM_PARAMS }>>::ZERO;
//! t.model.init(&mut Rng::new(0));
//! let adam = AdamConfig { lr: Schedule::Constant(0.05), ..AdamConfig::default() };
//! let report = t.fit(&adam, &Mse::MEAN, &data[..]).epochs(300).batch_size(4).run().unwrap();
//! assert!(report.last.train_loss < 0.01);
//! ```

use crate::data::Dataset;
use crate::error::Error;
use crate::layer::{Layer, Mode, UnitKind};
use crate::loss::Loss;
use crate::optim::{Optimizer, clip_grad_norm};
use crate::rng::{Permutation, Rng};
use crate::tensor::{Tensor, Zero};

/// Everything training needs, in one fixed-size value: parameters, gradients, optimizer state,
/// activation buffers and their gradients, and the current sample's input and output.
///
/// Its `size_of` is the RAM training takes; [`Summary`](crate::summary::Summary) prints it.
/// On a host, box large ones (`Box::new(Trainer::ZERO)` builds on the stack in debug builds).
pub struct Trainer<M: Layer, O: Optimizer> {
    /// The network's parameters.
    pub model: M,
    /// Gradients of the trainable tensors, accumulated over a batch.
    pub grads: M::Grads,
    /// Optimizer state.
    pub opt: O,
    /// Activation buffers of the last forward pass.
    pub acts: M::Acts,
    /// Gradients of the activation buffers (scratch for backward).
    pub deltas: M::Acts,
    /// Current input.
    pub x: M::Input,
    /// Current output.
    pub y: M::Output,
    /// Loss gradient with respect to the output.
    pub dy: M::Output,
}

/// Mean loss and accuracy over a dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Eval {
    /// Mean per-sample loss.
    pub loss: f32,
    /// Fraction of samples the loss counts as correct.
    pub accuracy: f32,
    /// Number of correct samples.
    pub correct: usize,
    /// Number of samples.
    pub samples: usize,
}

/// At most this many ReLU layers are reported by the dead-unit monitor.
pub const MAX_MONITORED_LAYERS: usize = 8;

/// Fraction of units in each ReLU layer that never fired (output > 0) during an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DeadUnits {
    /// ReLU layers reported.
    pub layers: usize,
    /// Dead fraction per ReLU layer, in network order.
    pub fraction: [f32; MAX_MONITORED_LAYERS],
}

impl DeadUnits {
    /// The reported fractions.
    #[must_use]
    pub fn fractions(&self) -> &[f32] {
        &self.fraction[..self.layers.min(MAX_MONITORED_LAYERS)]
    }
}

/// Watches activation outputs during training.
pub trait UnitMonitor {
    /// Looks at the outputs of one training forward pass.
    fn observe<M: Layer>(&mut self, acts: &M::Acts, y: &M::Output);
    /// Reports on the epoch that ended and starts a new one.
    fn end_epoch(&mut self) -> DeadUnits;
}

/// A monitor lent to [`Trainer::fit`].
impl<T: UnitMonitor + ?Sized> UnitMonitor for &mut T {
    fn observe<M: Layer>(&mut self, acts: &M::Acts, y: &M::Output) {
        (**self).observe::<M>(acts, y);
    }
    fn end_epoch(&mut self) -> DeadUnits {
        (**self).end_epoch()
    }
}

/// No monitoring.
impl UnitMonitor for () {
    fn observe<M: Layer>(&mut self, _acts: &M::Acts, _y: &M::Output) {}
    fn end_epoch(&mut self) -> DeadUnits {
        DeadUnits::default()
    }
}

/// The course's advice to watch for dead ReLUs, made real: remembers which of up to `U` ReLU
/// units fired during the epoch. Size it with `<Net as Layer>::RELU_UNITS`; units beyond `U`
/// are not tracked and their layers are reported as 0.
#[derive(Debug, Clone)]
pub struct DeadReluMonitor<const U: usize> {
    fired: [bool; U],
    layer_len: [usize; MAX_MONITORED_LAYERS],
    layers: usize,
}

impl<const U: usize> DeadReluMonitor<U> {
    /// A monitor with nothing seen yet.
    pub const ZERO: Self = DeadReluMonitor { fired: [false; U], layer_len: [0; MAX_MONITORED_LAYERS], layers: 0 };
}

impl<const U: usize> UnitMonitor for DeadReluMonitor<U> {
    fn observe<M: Layer>(&mut self, acts: &M::Acts, y: &M::Output) {
        let mut off = 0;
        let mut layer = 0;
        let fired = &mut self.fired;
        let lens = &mut self.layer_len;
        M::visit_outputs(acts, y, &mut |kind, out| {
            if kind != UnitKind::Relu {
                return;
            }
            if let Some(slot) = lens.get_mut(layer) {
                *slot = out.len();
            }
            if let Some(f) = fired.get_mut(off..off + out.len()) {
                for (fi, &v) in f.iter_mut().zip(out) {
                    *fi |= v > 0.0;
                }
            }
            off += out.len();
            layer += 1;
        });
        self.layers = layer.min(MAX_MONITORED_LAYERS);
    }

    fn end_epoch(&mut self) -> DeadUnits {
        let mut report = DeadUnits { layers: self.layers, ..DeadUnits::default() };
        let mut off = 0;
        for (frac, &len) in report.fraction.iter_mut().zip(&self.layer_len).take(self.layers) {
            if let Some(f) = self.fired.get(off..off + len) {
                let dead = f.iter().filter(|&&b| !b).count();
                *frac = dead as f32 / len.max(1) as f32;
            }
            off += len;
        }
        self.fired = [false; U];
        report
    }
}

/// What a callback wants the loop to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this epoch.
    Stop,
}

/// Figures of one epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EpochStats {
    /// Epoch number, from 1.
    pub epoch: u32,
    /// Mean training loss over the epoch (with the weights as they were at each step).
    pub train_loss: f32,
    /// Training accuracy over the epoch.
    pub train_accuracy: f32,
    /// Validation loss and accuracy after the epoch.
    pub val: Option<Eval>,
    /// Learning rate at the end of the epoch.
    pub lr: f32,
    /// Optimizer steps skipped this epoch because a loss or gradient was not finite.
    pub skipped_steps: u32,
    /// Dead ReLU fractions.
    pub dead: DeadUnits,
}

/// Progress reports from [`Trainer::fit`]. Every method has a default that does nothing.
pub trait Callback {
    /// After each optimizer step.
    fn on_batch_end(&mut self, _epoch: u32, _batch: usize, _batches: usize) {}
    /// After each epoch; return [`Control::Stop`] to end training.
    fn on_epoch_end(&mut self, _stats: &EpochStats) -> Control {
        Control::Continue
    }
    /// When the divergence guard rolled the weights back and lowered the learning rate.
    fn on_divergence(&mut self, _event: &Divergence) {}
}

/// What the divergence guard did.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Divergence {
    /// Epoch in which it happened (from 1).
    pub epoch: u32,
    /// Bad steps in a row that triggered it.
    pub bad_steps: u32,
    /// Whether the weights were restored from the snapshot (false when no snapshot buffer was
    /// given: then only the optimizer state is reset).
    pub restored: bool,
    /// The learning rate from now on.
    pub new_lr: f32,
    /// Set when a finite loss exploded over the running loss (rather than a loss, gradient or
    /// update being non-finite).
    pub explosion: Option<Explosion>,
}

/// A batch loss that exploded over the running loss.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Explosion {
    /// The batch's mean loss.
    pub loss: f32,
    /// The running loss it exceeded by more than [`DivergenceGuard::explosion_factor`].
    pub running_loss: f32,
}

/// The divergence guard: non-finite losses, gradients or updates never reach the weights, and
/// a loss that explodes while staying finite is caught too.
///
/// A bad step is skipped and counted. After `max_bad_steps` bad steps in a row, at once when
/// an update would make a weight non-finite, and at once when a batch's mean loss exceeds
/// `explosion_factor` times the running loss (an exponential moving average of the batch
/// losses, weight 0.1, started from the mean of the first `warmup_steps` batches; taken as at
/// least `explosion_floor`, so that a single hard sample after many easy ones, a loss of 0.5
/// against a running 1e-4 at batch 1, is not an explosion), the weights
/// go back to the snapshot, the optimizer state is reset and the learning rate is multiplied by
/// `lr_factor`. Normal training never comes near the factor: the guard changes nothing, bit for
/// bit, in a run where it does not fire.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DivergenceGuard {
    /// Bad steps in a row before rolling back.
    pub max_bad_steps: u32,
    /// Learning-rate multiplier applied at each rollback.
    pub lr_factor: f32,
    /// A batch loss this many times the running loss is an explosion (`f32::INFINITY`: off).
    pub explosion_factor: f32,
    /// Batches whose losses start the running loss before explosions are looked for.
    pub warmup_steps: u32,
    /// The smallest running loss explosions are measured against (1.0: with the default
    /// factor, a loss must exceed 1000 to be an explosion).
    pub explosion_floor: f32,
}

impl Default for DivergenceGuard {
    /// Roll back after 3 bad steps in a row or a batch loss 1000 times the running loss (and
    /// over 1000; from the first batch on), halving the learning rate.
    fn default() -> Self {
        DivergenceGuard {
            max_bad_steps: 3,
            lr_factor: 0.5,
            explosion_factor: 1e3,
            warmup_steps: 1,
            explosion_floor: 1.0,
        }
    }
}

/// Weight of the newest batch loss in the guard's running loss.
const RUNNING_LOSS_WEIGHT: f32 = 0.1;

/// The running loss of the divergence guard: an exponential moving average of the mean batch
/// losses of accepted steps, the plain mean during the warm-up.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RunningLoss {
    value: f32,
    seen: u32,
}

impl RunningLoss {
    /// Whether `loss` is an explosion over the running loss; if not, it joins the average.
    fn exploded(&mut self, guard: &DivergenceGuard, loss: f32) -> bool {
        if !loss.is_finite() {
            return false;
        }
        if self.seen >= guard.warmup_steps.max(1)
            && loss > guard.explosion_factor * self.value.max(guard.explosion_floor)
        {
            return true;
        }
        self.seen = self.seen.saturating_add(1);
        let weight = if self.seen <= guard.warmup_steps.max(1) { 1.0 / self.seen as f32 } else { RUNNING_LOSS_WEIGHT };
        self.value += weight * (loss - self.value);
        false
    }
}

/// No callback.
impl Callback for () {}

/// A callback lent to [`Trainer::fit`].
impl<T: Callback + ?Sized> Callback for &mut T {
    fn on_batch_end(&mut self, epoch: u32, batch: usize, batches: usize) {
        (**self).on_batch_end(epoch, batch, batches);
    }
    fn on_epoch_end(&mut self, stats: &EpochStats) -> Control {
        (**self).on_epoch_end(stats)
    }
    fn on_divergence(&mut self, event: &Divergence) {
        (**self).on_divergence(event);
    }
}

/// How [`Trainer::fit`] runs.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FitConfig {
    /// Passes over the training set.
    pub epochs: u32,
    /// Samples per optimizer step (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Seed of the shuffling and of dropout.
    pub seed: u64,
    /// Shuffle the training set every epoch.
    pub shuffle: bool,
    /// Clip the global gradient norm to this value before each step.
    pub clip_norm: Option<f32>,
    /// Early stopping: stop after this many epochs without improvement of the monitored loss
    /// (validation loss when there is a validation set, else training loss).
    pub patience: Option<u32>,
    /// The smallest decrease of the monitored loss that counts as an improvement.
    pub min_delta: f32,
    /// What to do when training diverges.
    pub guard: DivergenceGuard,
    /// Do not train the first `freeze` layers that have trainable tensors: their gradients are
    /// dropped before each step, so their weights keep their bits. This is the run-time form
    /// of wrapping those layers in [`Frozen`](crate::Frozen), with the same results; the type
    /// also saves their gradient and optimizer RAM.
    pub freeze: u32,
}

impl Default for FitConfig {
    /// 10 epochs, batch 32, seed 0, shuffled, no clipping, no early stopping (Keras defaults
    /// but for the epochs).
    fn default() -> Self {
        FitConfig {
            epochs: 10,
            batch_size: 32,
            seed: 0,
            shuffle: true,
            clip_norm: None,
            patience: None,
            min_delta: 0.0,
            guard: DivergenceGuard::default(),
            freeze: 0,
        }
    }
}

/// How [`Trainer::fit`] ended.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FitReport {
    /// Epochs run.
    pub epochs_run: u32,
    /// Epoch with the lowest monitored loss (from 1).
    pub best_epoch: u32,
    /// Its monitored loss.
    pub best_loss: f32,
    /// Whether early stopping or the callback ended training before `epochs`.
    pub stopped_early: bool,
    /// Whether the best weights were copied back into the model at the end.
    pub restored_best: bool,
    /// Steps skipped over the whole run because of a non-finite loss, gradient or update.
    pub skipped_steps: u32,
    /// Rollbacks done by the divergence guard.
    pub rollbacks: u32,
    /// Figures of the last epoch run.
    pub last: EpochStats,
}

/// Trainable values of the first `layers` layers that have trainable tensors.
fn frozen_prefix<M: Layer>(layers: u32) -> usize {
    let (mut left, mut values) = (layers, 0);
    M::describe(&mut |info| {
        let n = info.count(Some(crate::params::Role::Trainable));
        if left > 0 && n > 0 {
            values += n;
            left -= 1;
        }
    });
    values
}

/// Figures of one mini-batch.
struct Batch {
    loss_sum: f32,
    counted: usize,
    correct: usize,
    applied: bool,
}

/// Outcome of one optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The update was applied.
    Applied,
    /// A gradient was not finite; the update was skipped and the weights left as they were.
    Skipped,
}

impl<M: Layer, O: Optimizer> Trainer<M, O> {
    /// Zero parameters, zero state. Initialise `model` before training.
    pub const ZERO: Self = Trainer {
        model: M::ZERO,
        grads: M::GRADS_ZERO,
        opt: O::ZERO,
        acts: <M::Acts as Zero>::ZERO,
        deltas: <M::Acts as Zero>::ZERO,
        x: <M::Input as Zero>::ZERO,
        y: <M::Output as Zero>::ZERO,
        dy: <M::Output as Zero>::ZERO,
    };

    /// Runs `self.x` forward and backward, adding `scale ·` the sample's parameter gradients
    /// to `self.grads`. Returns the sample's loss and whether it was correct.
    ///
    /// # Errors
    /// What the loss reports (a label out of range).
    pub fn accumulate<L: Loss<M::Output>>(
        &mut self,
        loss: &L,
        target: &L::Target,
        scale: f32,
        mode: &mut Mode,
    ) -> Result<(f32, bool), Error> {
        self.model.forward(&self.x, &mut self.acts, &mut self.y, mode);
        let l = loss.loss_and_grad(&self.y, target, scale, &mut self.dy)?;
        let correct = loss.correct(&self.y, target);
        self.model.backward(&self.x, &self.acts, &self.y, &self.dy, &mut self.deltas, Some(&mut self.grads), None);
        Ok((l, correct))
    }

    /// Applies the accumulated gradients (clipped to `clip_norm` if given) and clears them.
    /// A non-finite gradient skips the update: the weights never see it. (An update of finite
    /// gradients can still overflow; [`Trainer::fit`] checks for that and rolls back.)
    pub fn apply(&mut self, cfg: &O::Config, clip_norm: Option<f32>) -> Step {
        self.apply_frozen(cfg, clip_norm, 0)
    }

    /// [`Trainer::apply`] with the first `frozen` trainable values not trained (their
    /// gradients dropped first).
    fn apply_frozen(&mut self, cfg: &O::Config, clip_norm: Option<f32>, frozen: usize) -> Step {
        if frozen > 0 {
            let mut left = frozen;
            M::visit_grads_mut(&mut self.grads, &mut |g| {
                let n = left.min(g.len());
                g[..n].fill(0.0);
                left -= n;
            });
        }
        if !M::grads_finite(&self.grads) {
            M::zero_grads(&mut self.grads);
            return Step::Skipped;
        }
        if let Some(max) = clip_norm {
            clip_grad_norm::<M>(&mut self.grads, max);
        }
        self.opt.step(cfg, &mut self.model, &self.grads);
        M::zero_grads(&mut self.grads);
        Step::Applied
    }

    /// Rolls back after divergence: weights from `snapshot` (if any), fresh optimizer state.
    fn roll_back(&mut self, snapshot: Option<&M>) -> bool {
        self.opt.reset();
        M::zero_grads(&mut self.grads);
        match snapshot {
            Some(s) if s.params_finite() => {
                self.model.copy_params_from(s);
                true
            }
            _ => false,
        }
    }

    /// Loads sample `i` of `data` into the trainer's input and `target`, for
    /// [`Trainer::infer`] and [`Trainer::train_step`] (no copy of the sample on the way).
    ///
    /// # Errors
    /// What the dataset reports (an index out of range, a bad label).
    #[inline]
    pub fn load_sample<T, D>(&mut self, data: &D, i: usize, target: &mut T) -> Result<(), Error>
    where
        D: Dataset<M::Input, T> + ?Sized,
    {
        data.get(i, &mut self.x, target)
    }

    /// Runs the loaded input forward in inference mode and returns the output. The input came
    /// from a [`Dataset`] that checked it; for input from elsewhere use [`Trainer::predict`].
    #[inline]
    pub fn infer(&mut self) -> &M::Output {
        self.model.predict(&self.x, &mut self.acts, &mut self.y);
        &self.y
    }

    /// One optimizer step on the loaded input alone (batch 1): forward, backward, update.
    /// Returns the sample's loss and whether it was correct.
    ///
    /// # Errors
    /// What the loss reports (a label out of range).
    pub fn train_step<L: Loss<M::Output>>(
        &mut self,
        cfg: &O::Config,
        loss: &L,
        target: &L::Target,
        mode: &mut Mode,
    ) -> Result<(f32, bool), Error> {
        let out = self.accumulate(loss, target, 1.0, mode)?;
        self.apply(cfg, None);
        Ok(out)
    }

    /// Runs the model on `x` in inference mode and returns a reference to the output.
    ///
    /// # Errors
    /// [`Error::NonFinite`] when `x` holds NaN or infinity: the policy is to refuse such
    /// input rather than return garbage.
    pub fn predict(&mut self, x: &M::Input) -> Result<&M::Output, Error> {
        if let Some(index) = x.flat().iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite { index });
        }
        self.model.predict(x, &mut self.acts, &mut self.y);
        Ok(&self.y)
    }

    /// Mean loss and accuracy of the model over `data`.
    ///
    /// # Errors
    /// [`Error::Empty`] for an empty dataset; errors of the dataset or the loss.
    pub fn evaluate<L, D>(&mut self, loss: &L, data: &D) -> Result<Eval, Error>
    where
        L: Loss<M::Output>,
        L::Target: Zero,
        D: Dataset<M::Input, L::Target> + ?Sized,
    {
        if data.is_empty() {
            return Err(Error::Empty);
        }
        let mut target = L::Target::ZERO;
        let (mut sum, mut correct) = (0.0f64, 0usize);
        for i in 0..data.len() {
            data.get(i, &mut self.x, &mut target)?;
            self.model.predict(&self.x, &mut self.acts, &mut self.y);
            sum += f64::from(loss.loss(&self.y, &target)?);
            correct += usize::from(loss.correct(&self.y, &target));
        }
        let n = data.len();
        Ok(Eval { loss: (sum / n as f64) as f32, accuracy: correct as f32 / n as f32, correct, samples: n })
    }

    /// One mini-batch: accumulates the gradients of samples `range` (in `order`) and applies
    /// them unless a loss was not finite.
    fn run_batch<L, D, U>(
        &mut self,
        opt_cfg: &O::Config,
        loss: &L,
        train: &D,
        order: &Permutation,
        range: core::ops::Range<usize>,
        mode: &mut Mode,
        clip_norm: Option<f32>,
        frozen: usize,
        monitor: &mut U,
    ) -> Result<Batch, Error>
    where
        L: Loss<M::Output>,
        L::Target: Zero,
        D: Dataset<M::Input, L::Target> + ?Sized,
        U: UnitMonitor,
    {
        let scale = 1.0 / range.len().max(1) as f32;
        let mut target = L::Target::ZERO;
        let mut out = Batch { loss_sum: 0.0, counted: 0, correct: 0, applied: false };
        let mut finite = true;
        for i in range {
            train.get(order.get(i), &mut self.x, &mut target)?;
            let (l, ok) = self.accumulate(loss, &target, scale, mode)?;
            monitor.observe::<M>(&self.acts, &self.y);
            if l.is_finite() {
                out.loss_sum += l;
                out.counted += 1;
            } else {
                finite = false;
            }
            out.correct += usize::from(ok);
        }
        if finite {
            out.applied = self.apply_frozen(opt_cfg, clip_norm, frozen) == Step::Applied;
        } else {
            M::zero_grads(&mut self.grads);
        }
        Ok(out)
    }

    /// Trains on `train` for `cfg.epochs` epochs, every argument given: the form behind
    /// [`Trainer::fit`]'s builder, for code that has all of them at hand (firmware).
    ///
    /// Each epoch visits the samples in a seeded order ([`Permutation`], no index buffer), in
    /// batches of `cfg.batch_size`, evaluates `val` if given, reports to `callback`, and
    /// applies early stopping when `cfg.patience` is set.
    ///
    /// `snapshot` is an optional second copy of the parameters (the caller's buffer: it costs
    /// RAM). With early stopping it holds the weights of the best epoch, which are copied back
    /// into the model at the end ("restore best weights"); without, the weights at the end of
    /// the last epoch. The divergence guard ([`FitConfig::guard`]) rolls back to it. Without a
    /// snapshot, an update that overflows a weight cannot be undone: training ends with
    /// [`Error::Diverged`] and the model's weights must not be used. (Non-finite losses and
    /// gradients never need a snapshot: their steps are skipped before any weight changes.)
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for batch size 0; [`Error::Empty`] for an empty training set;
    /// errors of the datasets or the loss.
    #[allow(clippy::too_many_lines)] // the epoch loop reads best top to bottom
    pub fn fit_with<L, D, V, U, C>(
        &mut self,
        opt_cfg: &O::Config,
        loss: &L,
        train: &D,
        val: Option<&V>,
        cfg: &FitConfig,
        mut snapshot: Option<&mut M>,
        monitor: &mut U,
        callback: &mut C,
    ) -> Result<FitReport, Error>
    where
        L: Loss<M::Output>,
        L::Target: Zero,
        D: Dataset<M::Input, L::Target> + ?Sized,
        V: Dataset<M::Input, L::Target> + ?Sized,
        U: UnitMonitor,
        C: Callback,
    {
        let mut state = FitState::new();
        M::zero_grads(&mut self.grads);
        if let Some(s) = snapshot.as_deref_mut() {
            s.copy_params_from(&self.model);
        }
        let report = self.fit_from(&mut state, opt_cfg, loss, train, val, cfg, snapshot, monitor, callback, None)?;
        report.ok_or(Error::InvalidConfig("training paused without a step limit"))
    }

    /// Trains from `state` (a fresh [`FitState::new`], or one saved in a training checkpoint
    /// together with the model, the optimizer state and the snapshot) for at most
    /// `max_steps` optimizer steps. Returns the report when training is over, or `None` when
    /// it paused after `max_steps` steps: `state`, the model, the optimizer and the snapshot
    /// then hold everything needed to go on, in this process or after a restart, with the
    /// same bits as an uninterrupted run. (The dead-unit monitor's count for a paused epoch
    /// restarts with the resumed part of it; it does not touch the weights.)
    ///
    /// # Errors
    /// As [`Trainer::fit_with`].
    #[allow(clippy::too_many_lines)] // the epoch loop reads best top to bottom
    pub fn fit_from<L, D, V, U, C>(
        &mut self,
        state: &mut FitState,
        opt_cfg: &O::Config,
        loss: &L,
        train: &D,
        val: Option<&V>,
        cfg: &FitConfig,
        mut snapshot: Option<&mut M>,
        monitor: &mut U,
        callback: &mut C,
        max_steps: Option<u32>,
    ) -> Result<Option<FitReport>, Error>
    where
        L: Loss<M::Output>,
        L::Target: Zero,
        D: Dataset<M::Input, L::Target> + ?Sized,
        V: Dataset<M::Input, L::Target> + ?Sized,
        U: UnitMonitor,
        C: Callback,
    {
        if cfg.batch_size == 0 {
            return Err(Error::InvalidConfig("batch size must be at least 1"));
        }
        if cfg.clip_norm.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
            return Err(Error::InvalidConfig("clip norm must be positive and finite"));
        }
        if train.is_empty() {
            return Err(Error::Empty);
        }
        if cfg.epochs == 0 {
            return Err(Error::InvalidConfig("epochs must be at least 1"));
        }
        let n = train.len();
        let batches = n.div_ceil(cfg.batch_size);
        let frozen = frozen_prefix::<M>(cfg.freeze);
        let fresh = *state == FitState::new();
        let mut mode = Mode::Train(if fresh { Rng::new(cfg.seed).fork(0x0D0F) } else { Rng::from_state(state.rng) });
        // The learning rate after the rollbacks so far: the same operations as when they happened.
        let mut opt_cfg = *opt_cfg;
        for _ in 0..state.rollbacks {
            opt_cfg = O::scale_learning_rate(&opt_cfg, cfg.guard.lr_factor);
        }
        let mut running = RunningLoss { value: state.running_loss, seen: state.running_seen };
        let mut last = None;
        let mut steps = 0u32;
        let pause = |steps: u32| max_steps.is_some_and(|m| steps >= m);

        while !state.over && state.epoch <= cfg.epochs {
            let epoch = state.epoch;
            let seed = cfg.seed.wrapping_add(u64::from(epoch).wrapping_mul(0x9E37_79B9));
            let order = if cfg.shuffle { Permutation::new(n, seed) } else { Permutation::identity(n) };
            while (state.batch as usize) < batches {
                if pause(steps) {
                    state.rng = match &mode {
                        Mode::Train(rng) => rng.state(),
                        Mode::Infer => state.rng,
                    };
                    (state.running_loss, state.running_seen) = (running.value, running.seen);
                    return Ok(None);
                }
                let b = state.batch as usize;
                let start = b * cfg.batch_size;
                let end = (start + cfg.batch_size).min(n);
                let batch = self.run_batch(
                    &opt_cfg,
                    loss,
                    train,
                    &order,
                    start..end,
                    &mut mode,
                    cfg.clip_norm,
                    frozen,
                    monitor,
                )?;
                steps += 1;
                state.batch += 1;
                state.loss_sum += f64::from(batch.loss_sum);
                state.counted += batch.counted as u32;
                state.correct += batch.correct as u32;
                // An update of finite gradients can still overflow a weight, or the loss can
                // explode while staying finite (the batch's loss shows the last update's effect).
                let overflowed = batch.applied && !self.model.params_finite();
                let batch_loss = batch.loss_sum / batch.counted.max(1) as f32;
                let exploded = batch.counted > 0 && running.exploded(&cfg.guard, batch_loss);
                if (overflowed || exploded) && snapshot.is_none() {
                    return Err(Error::Diverged);
                }
                if batch.applied && !overflowed && !exploded {
                    state.bad_run = 0;
                } else {
                    // An exploded step was applied (and is undone below), not skipped.
                    state.skipped += u32::from(!exploded);
                    state.bad_run += 1;
                }
                if overflowed || exploded || state.bad_run >= cfg.guard.max_bad_steps.max(1) {
                    let restored = self.roll_back(snapshot.as_deref());
                    opt_cfg = O::scale_learning_rate(&opt_cfg, cfg.guard.lr_factor);
                    state.rollbacks += 1;
                    callback.on_divergence(&Divergence {
                        epoch,
                        bad_steps: state.bad_run,
                        restored,
                        new_lr: self.opt.learning_rate(&opt_cfg),
                        explosion: exploded.then_some(Explosion { loss: batch_loss, running_loss: running.value }),
                    });
                    state.bad_run = 0;
                }
                callback.on_batch_end(epoch, b + 1, batches);
            }
            state.skipped_total += state.skipped;
            let val_eval = match val {
                Some(v) => Some(self.evaluate(loss, v)?),
                None => None,
            };
            let train_loss =
                if state.counted == 0 { f32::NAN } else { (state.loss_sum / f64::from(state.counted)) as f32 };
            let stats = EpochStats {
                epoch,
                train_loss,
                train_accuracy: state.correct as f32 / n as f32,
                val: val_eval,
                lr: self.opt.learning_rate(&opt_cfg),
                skipped_steps: state.skipped,
                dead: monitor.end_epoch(),
            };
            last = Some(stats);
            let monitored = val_eval.map_or(stats.train_loss, |e| e.loss);
            let best_before = state.best_loss;
            let improved = monitored < state.best_loss - cfg.min_delta;
            if improved {
                state.best_loss = monitored;
                state.best_epoch = epoch;
                state.bad_epochs = 0;
            } else {
                state.bad_epochs += 1;
            }
            // With early stopping the snapshot keeps the best weights, else the latest, unless
            // their validation loss exploded over the best one (in the first epoch: over the
            // running training loss), as the epoch's last update may have made it do unseen.
            let reference = if best_before.is_finite() { best_before } else { running.value };
            let limit = cfg.guard.explosion_factor * reference.max(cfg.guard.explosion_floor);
            let sane = val_eval.is_none_or(|e| e.loss.partial_cmp(&limit) != Some(core::cmp::Ordering::Greater));
            if (improved || cfg.patience.is_none())
                && sane
                && self.model.params_finite()
                && let Some(s) = snapshot.as_deref_mut()
            {
                s.copy_params_from(&self.model);
            }
            let control = callback.on_epoch_end(&stats);
            let patience_out = cfg.patience.is_some_and(|p| state.bad_epochs >= p);
            (state.loss_sum, state.counted, state.correct, state.skipped, state.batch) = (0.0, 0, 0, 0, 0);
            state.epoch += 1;
            if control == Control::Stop || patience_out {
                state.stopped_early = epoch < cfg.epochs;
                state.over = true;
            }
        }
        state.over = true;
        (state.running_loss, state.running_seen) = (running.value, running.seen);

        let restored_best = match (cfg.patience, snapshot) {
            (Some(_), Some(s)) if state.best_epoch > 0 => {
                self.model.copy_params_from(s);
                true
            }
            _ => false,
        };
        let last = last.ok_or(Error::InvalidConfig("training was already over"))?;
        Ok(Some(FitReport {
            epochs_run: last.epoch,
            best_epoch: state.best_epoch,
            best_loss: state.best_loss,
            stopped_early: state.stopped_early,
            restored_best,
            skipped_steps: state.skipped_total,
            rollbacks: state.rollbacks,
            last,
        }))
    }
}

/// Buffers for inference on four samples at once ([`evaluate4`], [`Batch4::predict`]): four
/// inputs, four sets of activation buffers, four outputs.
pub struct Batch4<M: Layer> {
    /// Inputs.
    pub x: [M::Input; 4],
    /// Activation buffers.
    pub acts: [M::Acts; 4],
    /// Outputs.
    pub y: [M::Output; 4],
}

impl<M: Layer> Batch4<M> {
    /// All zero.
    pub const ZERO: Self = Batch4 {
        x: [const { M::Input::ZERO }; 4],
        acts: [const { M::Acts::ZERO }; 4],
        y: [const { M::Output::ZERO }; 4],
    };

    /// Runs `model` on the first `n` (at most 4) inputs: [`Layer::predict4`] for four, one at a
    /// time for fewer. The outputs have the bits of [`Layer::predict`] on each input.
    pub fn predict(&mut self, model: &M, n: usize) {
        let [x0, x1, x2, x3] = &self.x;
        let [a0, a1, a2, a3] = &mut self.acts;
        let [y0, y1, y2, y3] = &mut self.y;
        if n >= 4 {
            model.predict4([x0, x1, x2, x3], [a0, a1, a2, a3], [y0, y1, y2, y3]);
        } else {
            for ((x, a), y) in [x0, x1, x2].into_iter().zip([a0, a1, a2]).zip([y0, y1, y2]).take(n) {
                model.predict(x, a, y);
            }
        }
    }
}

/// [`Trainer::evaluate`] four samples at a time ([`Layer::predict4`]): the same [`Eval`], bit for
/// bit (the losses are summed in sample order as there), faster where a layer loads its weights
/// once for four samples.
///
/// # Errors
/// As [`Trainer::evaluate`].
pub fn evaluate4<M, L, D>(model: &M, buf: &mut Batch4<M>, loss: &L, data: &D) -> Result<Eval, Error>
where
    M: Layer,
    L: Loss<M::Output>,
    L::Target: Zero,
    D: Dataset<M::Input, L::Target> + ?Sized,
{
    if data.is_empty() {
        return Err(Error::Empty);
    }
    let mut targets = [const { L::Target::ZERO }; 4];
    let (mut sum, mut correct) = (0.0f64, 0usize);
    let n = data.len();
    let mut start = 0;
    while start < n {
        let k = (n - start).min(4);
        for (j, (x, t)) in buf.x.iter_mut().zip(&mut targets).take(k).enumerate() {
            data.get(start + j, x, t)?;
        }
        buf.predict(model, k);
        for (y, t) in buf.y.iter().zip(&targets).take(k) {
            sum += f64::from(loss.loss(y, t)?);
            correct += usize::from(loss.correct(y, t));
        }
        start += k;
    }
    Ok(Eval { loss: (sum / n as f64) as f32, accuracy: correct as f32 / n as f32, correct, samples: n })
}

/// Where a training run is: everything [`Trainer::fit_from`] keeps between optimizer steps
/// besides the model, the optimizer state and the snapshot. With those it is a training
/// checkpoint: saved, then loaded after a power cut or a killed process, training goes on with
/// the same bits as if it had never stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FitState {
    /// The epoch in progress, from 1.
    pub epoch: u32,
    /// Batches of it done.
    pub batch: u32,
    /// State of the generator that dropout draws from.
    pub rng: [u32; 4],
    /// Lowest monitored loss so far.
    pub best_loss: f32,
    /// Its epoch (0: none yet).
    pub best_epoch: u32,
    /// Epochs since the best one.
    pub bad_epochs: u32,
    /// Bad steps in a row.
    pub bad_run: u32,
    /// Steps skipped in finished epochs.
    pub skipped_total: u32,
    /// Rollbacks of the divergence guard (each scaled the learning rate once).
    pub rollbacks: u32,
    /// The guard's running loss.
    pub running_loss: f32,
    /// Steps in the running loss.
    pub running_seen: u32,
    /// Sum of the epoch's batch losses so far.
    pub loss_sum: f64,
    /// Samples with a finite loss in the epoch so far.
    pub counted: u32,
    /// Correct samples in the epoch so far.
    pub correct: u32,
    /// Steps skipped in the epoch so far.
    pub skipped: u32,
    /// Training is over.
    pub over: bool,
    /// It ended before its last epoch.
    pub stopped_early: bool,
}

impl FitState {
    /// The state before the first step.
    #[must_use]
    pub const fn new() -> Self {
        FitState {
            epoch: 1,
            batch: 0,
            rng: [0; 4],
            best_loss: f32::INFINITY,
            best_epoch: 0,
            bad_epochs: 0,
            bad_run: 0,
            skipped_total: 0,
            rollbacks: 0,
            running_loss: 0.0,
            running_seen: 0,
            loss_sum: 0.0,
            counted: 0,
            correct: 0,
            skipped: 0,
            over: false,
            stopped_early: false,
        }
    }
}

impl FitState {
    /// Bytes of [`FitState::to_bytes`].
    pub const BYTES: usize = 19 * 4 + 8;

    /// The state as little-endian bytes, for a training checkpoint: the 19 32-bit fields in
    /// declaration order (flags as 0 or 1, losses as raw `f32` bits), then `loss_sum` as `f64`.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; FitState::BYTES] {
        let words = [
            self.epoch,
            self.batch,
            self.rng[0],
            self.rng[1],
            self.rng[2],
            self.rng[3],
            self.best_loss.to_bits(),
            self.best_epoch,
            self.bad_epochs,
            self.bad_run,
            self.skipped_total,
            self.rollbacks,
            self.running_loss.to_bits(),
            self.running_seen,
            self.counted,
            self.correct,
            self.skipped,
            u32::from(self.over),
            u32::from(self.stopped_early),
        ];
        let mut out = [0u8; FitState::BYTES];
        for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        out[19 * 4..].copy_from_slice(&self.loss_sum.to_le_bytes());
        out
    }

    /// The state [`FitState::to_bytes`] wrote.
    #[must_use]
    pub fn from_bytes(bytes: &[u8; FitState::BYTES]) -> FitState {
        let mut w = [0u32; 19];
        for (v, chunk) in w.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        let mut sum = [0u8; 8];
        sum.copy_from_slice(&bytes[19 * 4..]);
        FitState {
            epoch: w[0],
            batch: w[1],
            rng: [w[2], w[3], w[4], w[5]],
            best_loss: f32::from_bits(w[6]),
            best_epoch: w[7],
            bad_epochs: w[8],
            bad_run: w[9],
            skipped_total: w[10],
            rollbacks: w[11],
            running_loss: f32::from_bits(w[12]),
            running_seen: w[13],
            loss_sum: f64::from_le_bytes(sum),
            counted: w[14],
            correct: w[15],
            skipped: w[16],
            over: w[17] != 0,
            stopped_early: w[18] != 0,
        }
    }
}

impl Default for FitState {
    fn default() -> Self {
        FitState::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Dense, Tanh};
    use crate::loss::Mse;
    use crate::optim::{Sgd, SgdConfig};
    use crate::params::Params;
    use crate::prelude::Schedule;

    type Net = crate::sequential![Dense<2, 4>, Tanh<4>, Dense<4, 1>];
    type Data = [([f32; 2], [f32; 1])];

    #[derive(Default)]
    struct Events(u32);
    impl Callback for Events {
        fn on_divergence(&mut self, _event: &Divergence) {
            self.0 += 1;
        }
    }

    fn trainer() -> Trainer<Net, Sgd> {
        let mut t = Trainer::<Net, Sgd>::ZERO;
        t.model.init(&mut Rng::new(3));
        t
    }

    #[test]
    fn nan_sample_is_skipped_and_never_reaches_the_weights() {
        let data = [([0.0, 1.0], [1.0]), ([f32::NAN, 0.0], [0.0]), ([1.0, 1.0], [0.0]), ([1.0, 0.0], [1.0])];
        let mut t = trainer();
        let mut snapshot = Net::ZERO;
        let cfg = FitConfig { epochs: 5, batch_size: 1, ..FitConfig::default() };
        let mut events = Events::default();
        let sgd = SgdConfig { lr: Schedule::Constant(0.1) };
        let r = t
            .fit_with(&sgd, &Mse::MEAN, &data[..], None::<&Data>, &cfg, Some(&mut snapshot), &mut (), &mut events)
            .unwrap();
        assert!(t.model.params_finite());
        assert_eq!(r.skipped_steps, 5, "one NaN sample per epoch");
        assert!(r.last.train_loss.is_finite());
    }

    #[test]
    fn exploding_learning_rate_rolls_back_and_reports() {
        let data = [([0.0, 1.0], [1e30]), ([1.0, 1.0], [-1e30])];
        let mut t = trainer();
        let mut snapshot = Net::ZERO;
        let cfg = FitConfig { epochs: 3, batch_size: 1, ..FitConfig::default() };
        let mut events = Events::default();
        let sgd = SgdConfig { lr: Schedule::Constant(1e10) };
        let r = t
            .fit_with(&sgd, &Mse::MEAN, &data[..], None::<&Data>, &cfg, Some(&mut snapshot), &mut (), &mut events)
            .unwrap();
        assert!(t.model.params_finite());
        assert!(r.rollbacks > 0 && events.0 == r.rollbacks, "rollbacks {} events {}", r.rollbacks, events.0);
        assert!(r.last.lr < 1e10);
    }

    #[derive(Default)]
    struct Explosions {
        count: usize,
        first: Option<Explosion>,
    }
    impl Callback for Explosions {
        fn on_divergence(&mut self, event: &Divergence) {
            self.count += usize::from(event.explosion.is_some());
            self.first = self.first.or(event.explosion);
        }
    }

    #[test]
    fn a_finite_explosion_rolls_back_and_lowers_the_learning_rate() {
        let data = [([0.0, 1.0], [1.0]), ([1.0, 0.0], [1.0]), ([1.0, 1.0], [0.0]), ([0.0, 0.0], [0.0])];
        let mut t = trainer();
        let mut snapshot = Net::ZERO;
        let cfg = FitConfig { epochs: 1, batch_size: 1, shuffle: false, ..FitConfig::default() };
        let mut events = Explosions::default();
        // Steps of 1e4: every weight stays finite, the loss jumps by orders of magnitude.
        let sgd = SgdConfig { lr: Schedule::Constant(1e4) };
        let r = t
            .fit_with(&sgd, &Mse::MEAN, &data[..], None::<&Data>, &cfg, Some(&mut snapshot), &mut (), &mut events)
            .unwrap();
        assert!(r.rollbacks > 0 && events.count == r.rollbacks as usize, "{r:?}");
        let e = events.first.unwrap();
        assert!(e.loss.is_finite() && e.loss > 1e3 * e.running_loss, "{e:?}");
        assert_eq!(r.skipped_steps, 0, "an exploded step is undone, not skipped");
        assert!(r.last.lr < 1e4);
        assert!(t.model.params_finite());

        // Without a snapshot the explosion cannot be undone: an error, as for an overflow.
        let mut t = trainer();
        let r = t.fit_with(&sgd, &Mse::MEAN, &data[..], None::<&Data>, &cfg, None, &mut (), &mut ());
        assert!(matches!(r, Err(Error::Diverged)), "{r:?}");

        // The check off: the same run goes on with its exploded loss.
        let mut t = trainer();
        let off = FitConfig {
            guard: DivergenceGuard { explosion_factor: f32::INFINITY, ..DivergenceGuard::default() },
            ..cfg
        };
        let r = t
            .fit_with(&sgd, &Mse::MEAN, &data[..], None::<&Data>, &off, Some(&mut snapshot), &mut (), &mut ())
            .unwrap();
        assert_eq!(r.rollbacks, 0);
    }

    #[test]
    fn the_running_loss_starts_from_the_warm_up_mean() {
        let guard = DivergenceGuard { warmup_steps: 2, ..DivergenceGuard::default() };
        let mut running = RunningLoss { value: 0.0, seen: 0 };
        assert!(!running.exploded(&guard, 1.0));
        assert!(!running.exploded(&guard, 3000.0), "still warming up");
        assert_eq!(running.value, 1500.5);
        assert!(!running.exploded(&guard, 1e6));
        assert!(running.exploded(&guard, 1e9));
        assert!(!running.exploded(&guard, f32::NAN), "non-finite losses are the other path's");
    }

    #[test]
    fn overflow_without_snapshot_is_an_error_and_weights_stay_finite() {
        let data = [([0.0, 1.0], [1e15])];
        let mut t = trainer();
        let cfg = FitConfig { epochs: 3, batch_size: 1, ..FitConfig::default() };
        let sgd = SgdConfig { lr: Schedule::Constant(1e30) };
        let r = t.fit_with(&sgd, &Mse::MEAN, &data[..], None::<&Data>, &cfg, None, &mut (), &mut ());
        // Without a snapshot an overflowing update cannot be undone: the error says so.
        assert!(matches!(r, Err(Error::Diverged)), "{r:?}");
    }
}
