//! Sessions: one network held in memory and driven through a dyn-safe trait, for hosts that
//! pick the model at run time by name (the Python bindings, `python/`).
//!
//! A [`Session`] trains on samples handed over as flat `f32` slices, evaluates, predicts, and
//! reads and writes its tensors under their PyTorch names and shapes (those of
//! [`interop::tensor_specs`] with [`Layout::Pytorch`]) or as a weights file. The registry
//! builds one per model ([`crate::models::Model::session`]); the task of the model (its loss
//! and the kind of its targets) comes from [`crate::tasks`], which calls [`fit`] and
//! [`evaluate`] here with its own loss.
//!
//! Training with the same seed, optimizer and settings gives the same bits as `tinytrain-sim
//! train` on the same samples: the same initialisation (`Rng::new(seed)`), the same
//! [`Trainer::fit_with`], the same snapshot for the divergence guard. Each [`Session::fit`]
//! starts with fresh optimizer state, as a new `train` run does (and as a federated client
//! does each round).
//!
//! ```
//! use tinytrain_sim::models;
//! use tinytrain_sim::session::{FitOptions, Samples, Targets};
//! let model = models::find("xor").unwrap();
//! let mut s = model.session(1);
//! let x = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0];
//! let y = [0.0, 1.0, 1.0, 0.0];
//! let data = Samples { x: &x, targets: Targets::Values(&y) };
//! let mut opts = FitOptions::defaults(model);
//! opts.fit.epochs = 1000;
//! s.fit(&data, None, &opts).unwrap();
//! assert_eq!(s.evaluate(&data).unwrap().accuracy, 1.0);
//! let names: Vec<String> = s.weights().unwrap().into_iter().map(|t| t.name).collect();
//! assert_eq!(names, ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]);
//! ```

use anyhow::{Context, Result, bail, ensure};
use tinytrain::checkpoint;
use tinytrain::loss::Loss;
use tinytrain::prelude::*;
use tinytrain::train::{Batch4, evaluate4};

use crate::interop::{self, Layout};
use crate::optimizers::OptimizerConfig;
use crate::spec::ModelSpec;

/// Targets of a set of samples, one per sample for labels, `outputs` per sample for values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Targets<'a> {
    /// Class labels (classification models).
    Classes(&'a [usize]),
    /// Target values, the output's length per sample (regression models: `xor`, `sine`).
    Values(&'a [f32]),
}

impl Targets<'_> {
    /// Number of targets (labels, or values).
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes(c) => c.len(),
            Targets::Values(v) => v.len(),
        }
    }

    /// `true` without targets.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Samples as flat slices: `x` holds the inputs one after the other (each of the network's
/// input length, CHW for images), `targets` one target per sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Samples<'a> {
    /// Inputs, sample after sample.
    pub x: &'a [f32],
    /// Targets.
    pub targets: Targets<'a>,
}

/// Checks that `x` holds whole, finite samples of `len` values, and returns their count.
///
/// # Errors
/// A length that is not a multiple of `len`, or a NaN or infinite value (named by sample and
/// element).
pub fn sample_count(x: &[f32], len: usize) -> Result<usize> {
    ensure!(len > 0 && x.len().is_multiple_of(len), "inputs of {} values are not whole samples of {len}", x.len());
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        bail!("input of sample {}, element {}, is {}", i / len, i % len, x[i]);
    }
    Ok(x.len() / len)
}

/// Labelled samples as a [`Dataset`] of any input tensor of the right length.
#[derive(Debug, Clone, Copy)]
pub struct Labelled<'a> {
    x: &'a [f32],
    labels: &'a [usize],
    sample_len: usize,
}

impl<'a> Labelled<'a> {
    /// Checks `samples` for inputs of `sample_len` values and labels below `classes`.
    ///
    /// # Errors
    /// Values targets, a count of labels other than of samples, a label out of range, or bad
    /// inputs (see [`sample_count`]).
    pub fn new(samples: &Samples<'a>, sample_len: usize, classes: usize) -> Result<Self> {
        let Targets::Classes(labels) = samples.targets else {
            bail!("this model takes integer class labels as targets, not values");
        };
        let n = sample_count(samples.x, sample_len)?;
        ensure!(labels.len() == n, "{n} samples but {} labels", labels.len());
        if let Some(i) = labels.iter().position(|&l| l >= classes) {
            bail!("label {} of sample {i} is out of range (the model has {classes} classes)", labels[i]);
        }
        ensure!(n > 0, "no samples");
        Ok(Labelled { x: samples.x, labels, sample_len })
    }
}

impl<X: Tensor> Dataset<X, usize> for Labelled<'_> {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn get(&self, index: usize, x: &mut X, target: &mut usize) -> Result<(), tinytrain::Error> {
        if X::LEN != self.sample_len {
            return Err(tinytrain::Error::ShapeMismatch { expected: X::LEN, found: self.sample_len });
        }
        let start = index * self.sample_len;
        let (Some(src), Some(&label)) = (self.x.get(start..start + self.sample_len), self.labels.get(index)) else {
            return Err(tinytrain::Error::Empty);
        };
        x.flat_mut().copy_from_slice(src);
        *target = label;
        Ok(())
    }
}

/// Samples with target values as a [`Dataset`] of any input and target tensors of the right
/// lengths.
#[derive(Debug, Clone, Copy)]
pub struct Valued<'a> {
    x: &'a [f32],
    y: &'a [f32],
    x_len: usize,
    y_len: usize,
}

impl<'a> Valued<'a> {
    /// Checks `samples` for inputs of `x_len` and finite targets of `y_len` values.
    ///
    /// # Errors
    /// Label targets, a count of targets other than of samples, or non-finite values.
    pub fn new(samples: &Samples<'a>, x_len: usize, y_len: usize) -> Result<Self> {
        let Targets::Values(y) = samples.targets else {
            bail!("this model takes float target values ({y_len} per sample), not class labels");
        };
        let n = sample_count(samples.x, x_len)?;
        ensure!(y.len() == n * y_len, "{n} samples but {} target values ({y_len} per sample expected)", y.len());
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            bail!("target of sample {} is {}", i / y_len.max(1), y[i]);
        }
        ensure!(n > 0, "no samples");
        Ok(Valued { x: samples.x, y, x_len, y_len })
    }
}

impl<X: Tensor, Y: Tensor> Dataset<X, Y> for Valued<'_> {
    fn len(&self) -> usize {
        self.x.len() / self.x_len.max(1)
    }

    fn get(&self, index: usize, x: &mut X, target: &mut Y) -> Result<(), tinytrain::Error> {
        if X::LEN != self.x_len || Y::LEN != self.y_len {
            return Err(tinytrain::Error::ShapeMismatch { expected: X::LEN, found: self.x_len });
        }
        let (xs, ys) = (index * self.x_len, index * self.y_len);
        let (Some(a), Some(b)) = (self.x.get(xs..xs + self.x_len), self.y.get(ys..ys + self.y_len)) else {
            return Err(tinytrain::Error::Empty);
        };
        x.flat_mut().copy_from_slice(a);
        target.flat_mut().copy_from_slice(b);
        Ok(())
    }
}

/// How to train: the optimizer and the fit settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Optimizer and hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Epochs, batch size, seed, patience, ...
    pub fit: FitConfig,
}

impl FitOptions {
    /// The model's defaults (its baseline's settings), seed 0.
    #[must_use]
    pub fn defaults(model: &ModelSpec) -> Self {
        let d = &model.defaults;
        FitOptions {
            optimizer: d.optimizer_config(false),
            fit: FitConfig { epochs: d.epochs, batch_size: d.batch_size, ..FitConfig::default() },
        }
    }
}

/// What a training run reports: [`FitReport`] and every epoch's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// How `fit` ended.
    pub report: FitReport,
    /// One entry per epoch run.
    pub history: Vec<EpochStats>,
}

/// One tensor under its PyTorch name, with its PyTorch shape and its values in that order.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// `fc1.weight`.
    pub name: String,
    /// `[32, 64]`.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// A model in memory, driven at run time. Made by [`crate::models::Model::session`].
pub trait Session: Send + Sync {
    /// The model's name, data and defaults.
    fn spec(&self) -> &'static ModelSpec;
    /// Shape of one input sample (`[64]`, `[1, 28, 28]`).
    fn input_shape(&self) -> Vec<usize>;
    /// Outputs per sample.
    fn output_len(&self) -> usize;
    /// Parameters in all.
    fn num_params(&self) -> usize;
    /// Initialises the weights with the model's default initialiser from `Rng::new(seed)`, as
    /// `train --seed` does.
    fn init(&mut self, seed: u64);
    /// Trains on `train`, validating on `val` after every epoch if given.
    ///
    /// # Errors
    /// Bad samples or targets (the weights are then untouched), bad settings, or a failure of
    /// training.
    fn fit(&mut self, train: &Samples<'_>, val: Option<&Samples<'_>>, opts: &FitOptions) -> Result<Fitted>;
    /// Mean loss and accuracy over `data`.
    ///
    /// # Errors
    /// Bad samples or targets.
    fn evaluate(&mut self, data: &Samples<'_>) -> Result<Eval>;
    /// The outputs of every sample of `x`, one after the other.
    ///
    /// # Errors
    /// Inputs that are not whole samples, or not finite.
    fn predict(&mut self, x: &[f32]) -> Result<Vec<f32>>;
    /// Every stored tensor, in PyTorch order, names and shapes.
    ///
    /// # Errors
    /// Layer names that do not fit the network (a registry mistake).
    fn weights(&self) -> Result<Vec<NamedTensor>>;
    /// Sets every tensor; `tensors` in the order and with the names and shapes of
    /// [`Session::weights`]. Nothing is changed when any tensor is wrong.
    ///
    /// # Errors
    /// A missing, extra, misnamed, mis-shaped or non-finite tensor, named.
    fn set_weights(&mut self, tensors: &[NamedTensor]) -> Result<()>;
    /// The weights file ([`checkpoint::save`]), as `train --save` writes it.
    ///
    /// # Errors
    /// A non-finite parameter.
    fn save(&self) -> Result<Vec<u8>>;
    /// Loads a weights file; nothing is changed when it is not valid for this model.
    ///
    /// # Errors
    /// As [`checkpoint::load`].
    fn load(&mut self, bytes: &[u8]) -> Result<()>;
    /// The network quantised to an int8 TFLite graph ([`crate::quantize::quantize`]),
    /// calibrated on the samples of `calibration` (flat, one after the other).
    ///
    /// # Errors
    /// Inputs that are not whole samples, a layer that cannot be quantised.
    fn quantize(&self, calibration: &[f32]) -> Result<crate::quantize::Quantized>;
}

/// Trains `net` with optimizer `O` on `train` (validating on `val`): the generic work behind
/// [`Session::fit`], which a task calls with its loss.
///
/// # Errors
/// As [`Trainer::fit_with`].
pub fn fit<M, O, L, D>(
    net: &mut M,
    cfg: &O::Config,
    opts: &FitConfig,
    loss: &L,
    train: &D,
    val: Option<&D>,
) -> Result<Fitted>
where
    M: Layer,
    O: Optimizer,
    L: Loss<M::Output>,
    L::Target: Zero,
    D: Dataset<M::Input, L::Target> + ?Sized,
{
    struct History(Vec<EpochStats>);
    impl Callback for History {
        fn on_epoch_end(&mut self, stats: &EpochStats) -> Control {
            self.0.push(*stats);
            Control::Continue
        }
    }
    // Boxed: a trainer holds the parameters four times over.
    let mut trainer: Box<Trainer<M, O>> = Box::new(Trainer::ZERO);
    trainer.model.copy_params_from(net);
    let mut snapshot: Box<M> = Box::new(M::ZERO);
    let mut history = History(Vec::new());
    let report = trainer.fit_with(cfg, loss, train, val, opts, Some(&mut *snapshot), &mut (), &mut history);
    let report = report.context("training failed")?;
    net.copy_params_from(&trainer.model);
    Ok(Fitted { report, history: history.0 })
}

/// Evaluates `net` on `data` with `loss`.
///
/// # Errors
/// As [`Trainer::evaluate`].
pub fn evaluate<M, L, D>(net: &M, loss: &L, data: &D) -> Result<Eval>
where
    M: Layer,
    L: Loss<M::Output>,
    L::Target: Zero,
    D: Dataset<M::Input, L::Target> + ?Sized,
{
    let mut batch: Box<Batch4<M>> = Box::new(Batch4::ZERO);
    Ok(evaluate4(net, &mut batch, loss, data)?)
}

/// Trains a network of the session's type (the task's function, monomorphised per model by
/// the registry with the optimizer chosen at run time).
pub type FitFn<M> = fn(&mut M, &FitOptions, &Samples<'_>, Option<&Samples<'_>>) -> Result<Fitted>;
/// Evaluates a network of the session's type with the task's loss.
pub type EvalFn<M> = fn(&M, &Samples<'_>) -> Result<Eval>;

/// The [`Session`] of network `M`.
pub struct NetSession<M: Layer> {
    spec: &'static ModelSpec,
    /// The network, with the buffers for inference.
    trainer: Box<Trainer<M, Sgd>>,
    fit: FitFn<M>,
    eval: EvalFn<M>,
}

impl<M: Layer> NetSession<M> {
    /// A session of `spec` with zero weights, training with `fit` and evaluating with `eval`.
    #[must_use]
    pub fn new(spec: &'static ModelSpec, fit: FitFn<M>, eval: EvalFn<M>) -> Self {
        NetSession { spec, trainer: Box::new(Trainer::ZERO), fit, eval }
    }
}

impl<M: Layer> Session for NetSession<M>
where
    M: Send + Sync,
    M::Grads: Send + Sync,
    M::Acts: Send + Sync,
    M::Input: Send + Sync,
    M::Output: Send + Sync,
{
    fn spec(&self) -> &'static ModelSpec {
        self.spec
    }

    fn input_shape(&self) -> Vec<usize> {
        <M::Input as Tensor>::SHAPE.into_iter().take_while(|&d| d > 0).collect()
    }

    fn output_len(&self) -> usize {
        <M::Output as Tensor>::LEN
    }

    fn num_params(&self) -> usize {
        M::NUM_PARAMS
    }

    fn init(&mut self, seed: u64) {
        self.trainer.model.init_with(self.spec.defaults.init, &mut Rng::new(seed));
    }

    fn fit(&mut self, train: &Samples<'_>, val: Option<&Samples<'_>>, opts: &FitOptions) -> Result<Fitted> {
        (self.fit)(&mut self.trainer.model, opts, train, val)
    }

    fn evaluate(&mut self, data: &Samples<'_>) -> Result<Eval> {
        (self.eval)(&self.trainer.model, data)
    }

    fn quantize(&self, calibration: &[f32]) -> Result<crate::quantize::Quantized> {
        let len = <M::Input as Tensor>::LEN;
        sample_count(calibration, len)?;
        crate::quantize::quantize(&self.trainer.model, calibration.chunks_exact(len), self.spec.name)
    }

    fn predict(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        let len = <M::Input as Tensor>::LEN;
        let n = sample_count(x, len)?;
        let mut out = Vec::with_capacity(n * <M::Output as Tensor>::LEN);
        // Four samples at a time, the bits of one at a time.
        let mut batch: Box<Batch4<M>> = Box::new(Batch4::ZERO);
        for chunk in x.chunks(4 * len) {
            let k = chunk.len() / len;
            for (dst, sample) in batch.x.iter_mut().zip(chunk.chunks_exact(len)) {
                dst.flat_mut().copy_from_slice(sample);
            }
            batch.predict(&self.trainer.model, k);
            for y in batch.y.iter().take(k) {
                out.extend_from_slice(y.flat());
            }
        }
        Ok(out)
    }

    fn weights(&self) -> Result<Vec<NamedTensor>> {
        let specs = interop::tensor_specs::<M>(self.spec.tensors, Layout::Pytorch)?;
        let flat = interop::flat_values(&self.trainer.model);
        Ok(specs
            .into_iter()
            .map(|s| NamedTensor { values: flat[s.offset..s.offset + s.len()].to_vec(), name: s.name, shape: s.shape })
            .collect())
    }

    fn set_weights(&mut self, tensors: &[NamedTensor]) -> Result<()> {
        let specs = interop::tensor_specs::<M>(self.spec.tensors, Layout::Pytorch)?;
        let expected = || interop::describe_tensors(&specs);
        ensure!(
            tensors.len() == specs.len(),
            "{} tensors given, model {} has {}: {}",
            tensors.len(),
            self.spec.name,
            specs.len(),
            expected()
        );
        let mut flat = vec![0.0f32; M::STORED_LEN];
        for (i, (t, s)) in tensors.iter().zip(&specs).enumerate() {
            ensure!(t.name == s.name, "tensor {i} is named {}, expected {} (expected: {})", t.name, s.name, expected());
            ensure!(
                t.shape == s.shape && t.values.len() == s.len(),
                "tensor {} has shape {:?}, expected {:?}",
                t.name,
                t.shape,
                s.shape
            );
            if let Some(e) = t.values.iter().position(|v| !v.is_finite()) {
                bail!("tensor {} holds {} at element {e}", t.name, t.values[e]);
            }
            flat[s.offset..s.offset + s.len()].copy_from_slice(&t.values);
        }
        interop::set_flat_values(&mut self.trainer.model, &flat)
    }

    fn save(&self) -> Result<Vec<u8>> {
        interop::weights_file(&self.trainer.model)
    }

    fn load(&mut self, bytes: &[u8]) -> Result<()> {
        checkpoint::load(&mut self.trainer.model, bytes)
            .with_context(|| format!("not a valid weights file for model {}", self.spec.name))
    }
}
