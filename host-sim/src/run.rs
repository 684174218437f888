//! Training and evaluation of any network, generic over the network, the optimizer, the loss
//! and the data: what `train` and `eval` do once the model registry has picked the types.
//!
//! Output: a few header lines, one line per epoch (or per `log_every` epochs) on `out`, a
//! progress bar per epoch on stderr when it is a terminal, and, last, one line a script can
//! read: `test accuracy 0.9028 (325/360)`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tinytrain::checkpoint;
use tinytrain::loss::Loss;
use tinytrain::prelude::*;
use tinytrain::train::{Batch4, Divergence, FitState, UnitMonitor, evaluate4};

use crate::csvlog::CsvLog;
use crate::optimizers::OptimizerConfig;
use crate::spec::ModelSpec;
use crate::split::{Either, Part};

/// Everything `train` needs besides the model, resolved from the model's defaults and the
/// command line.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Optimizer and its hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Epochs, batch size, seed, patience.
    pub fit: FitConfig,
    /// Weight initialiser (drawn from `Rng::new(fit.seed)`).
    pub init: Init,
    /// Directory with the dataset files.
    pub data_dir: PathBuf,
    /// Where to save the trained weights.
    pub save: Option<PathBuf>,
    /// Weights to start from instead of initialising (fine-tuning).
    pub weights: Option<PathBuf>,
    /// Draw the training curves into this SVG file ([`crate::plot`]).
    pub plot: Option<PathBuf>,
    /// Write a training checkpoint ([`crate::resume`]) to this file every `checkpoint_every`
    /// optimizer steps and at the end.
    pub checkpoint: Option<PathBuf>,
    /// Optimizer steps between training checkpoints.
    pub checkpoint_every: u32,
    /// Go on from this training checkpoint.
    pub resume: Option<PathBuf>,
    /// Hold out this last fraction of the training data for validation (Keras
    /// `validation_split`); without it the test set is the validation set, as in the baselines.
    pub validation_split: Option<f32>,
    /// Write one CSV row per epoch to this file ([`crate::csvlog`]).
    pub log: Option<PathBuf>,
    /// Print one epoch line every this many epochs (and always the last).
    pub log_every: u32,
    /// Draw progress bars on stderr (only when it is a terminal).
    pub progress: bool,
}

impl TrainOptions {
    /// The model's defaults: the settings of its baseline.
    #[must_use]
    pub fn defaults(model: &ModelSpec) -> Self {
        let d = &model.defaults;
        TrainOptions {
            optimizer: d.optimizer_config(false),
            fit: FitConfig { epochs: d.epochs, batch_size: d.batch_size, ..FitConfig::default() },
            init: d.init,
            data_dir: crate::datasets::default_dir_for(dataset_kind(model)),
            save: None,
            weights: None,
            plot: None,
            checkpoint: None,
            checkpoint_every: 100,
            resume: None,
            validation_split: None,
            log: None,
            log_every: d.log_every,
            progress: true,
        }
    }
}

/// The image dataset `model` reads, if any.
#[must_use]
pub fn dataset_kind(model: &ModelSpec) -> Option<crate::datasets::DatasetKind> {
    match model.data {
        crate::spec::Data::Images(kind) => Some(kind),
        crate::spec::Data::Builtin => None,
    }
}

/// What `eval` needs besides the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalOptions {
    /// The weights file.
    pub weights: PathBuf,
    /// Directory with the dataset files.
    pub data_dir: PathBuf,
}

/// How a training run went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOutcome {
    /// The report of `fit`.
    pub report: FitReport,
    /// Loss and accuracy on the test set of the final (or restored best) weights.
    pub test: Eval,
    /// Seconds spent in training steps (forward, backward, update), evaluation excluded.
    pub train_seconds: f64,
    /// Training samples per second of `train_seconds`.
    pub samples_per_second: f64,
    /// Seconds of the whole `fit`, per-epoch evaluation included.
    pub wall_seconds: f64,
}

/// The script-readable last line of `train` and `eval` for a classifier.
#[must_use]
pub fn accuracy_line(e: &Eval) -> String {
    format!("test accuracy {:.4} ({}/{})", e.accuracy, e.correct, e.samples)
}

/// The script-readable last line of `train` and `eval` for a regression.
#[must_use]
pub fn regression_line(mse: &Eval, mae: &Eval) -> String {
    format!("test mse {:.6} mae {:.6} ({} samples)", mse.loss, mae.loss, mse.samples)
}

/// Evaluates the trainer's model on `test` and prints the test loss and, last, the line a
/// script reads: the accuracy of a classifier, or with `mae` (a regression, whose loss is the
/// MSE) the MSE and the MAE.
fn final_lines<M, O, L, A, V>(
    trainer: &mut Trainer<M, O>,
    loss: &L,
    mae: Option<&A>,
    test: &V,
    out: &mut dyn Write,
) -> Result<Eval>
where
    M: Layer,
    O: Optimizer,
    L: Loss<M::Output>,
    L::Target: Zero,
    A: Loss<M::Output, Target = L::Target>,
    V: Dataset<M::Input, L::Target> + ?Sized,
{
    // Four samples at a time: the same figures as `Trainer::evaluate`, bit for bit.
    let mut batch: Box<Batch4<M>> = Box::new(Batch4::ZERO);
    let eval = evaluate4(&trainer.model, &mut batch, loss, test).context("evaluating on the test set")?;
    writeln!(out, "test loss {:.4}", eval.loss)?;
    match mae {
        None => writeln!(out, "{}", accuracy_line(&eval))?,
        Some(mae) => {
            let abs = evaluate4(&trainer.model, &mut batch, mae, test).context("evaluating on the test set")?;
            writeln!(out, "{}", regression_line(&eval, &abs))?;
        }
    }
    Ok(eval)
}

pub use crate::text::thousands;

/// Draws the bars, prints the epoch lines and measures the time spent in training steps.
struct Progress<'a> {
    out: &'a mut dyn Write,
    error: Option<std::io::Error>,
    bar: Option<ProgressBar>,
    draw: bool,
    epochs: u32,
    log_every: u32,
    epoch_start: Instant,
    train_time: Duration,
    events: Vec<String>,
    csv: Option<CsvLog>,
    /// Every epoch's figures, for `--plot`.
    history: Vec<EpochStats>,
    csv_error: Option<anyhow::Error>,
}

impl Progress<'_> {
    fn line(&mut self, stats: &EpochStats) -> std::io::Result<()> {
        let width = self.epochs.to_string().len();
        write!(
            self.out,
            "epoch {:>width$}/{}  loss {:.4}  acc {:.4}",
            stats.epoch, self.epochs, stats.train_loss, stats.train_accuracy
        )?;
        if let Some(v) = stats.val {
            write!(self.out, "  val_loss {:.4}  val_acc {:.4}", v.loss, v.accuracy)?;
        }
        write!(self.out, "  lr {:.3e}", stats.lr)?;
        let dead = stats.dead.fractions();
        if !dead.is_empty() {
            let text: Vec<String> = dead.iter().map(|d| format!("{d:.3}")).collect();
            write!(self.out, "  dead_relu {}", text.join("/"))?;
        }
        if stats.skipped_steps > 0 {
            write!(self.out, "  skipped {}", stats.skipped_steps)?;
        }
        writeln!(self.out)
    }
}

impl Callback for Progress<'_> {
    fn on_batch_end(&mut self, epoch: u32, batch: usize, batches: usize) {
        if self.draw {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = ProgressBar::new(batches as u64);
                if let Ok(style) = ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} batches, {elapsed} elapsed, eta {eta}",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_prefix(format!("epoch {epoch}/{}", self.epochs));
                bar
            });
            bar.set_position(batch as u64);
        }
        if batch == batches {
            self.train_time += self.epoch_start.elapsed();
            if let Some(bar) = self.bar.take() {
                bar.finish_and_clear();
            }
        }
    }

    fn on_divergence(&mut self, event: &Divergence) {
        let cause = match event.explosion {
            Some(e) => format!("loss {:.3e} exploded over its running value {:.3e}", e.loss, e.running_loss),
            None => format!("{} bad steps in a row", event.bad_steps),
        };
        self.events.push(format!(
            "epoch {}: {cause}: {}, optimizer state reset, lr now {:.3e}",
            event.epoch,
            if event.restored { "weights restored from the snapshot" } else { "weights kept" },
            event.new_lr
        ));
    }

    fn on_epoch_end(&mut self, stats: &EpochStats) -> Control {
        let last = stats.epoch == self.epochs;
        let wanted = stats.epoch.is_multiple_of(self.log_every.max(1)) || last || stats.epoch == 1;
        let events = std::mem::take(&mut self.events);
        let written = events.iter().try_for_each(|e| writeln!(self.out, "{e}"));
        if let Err(e) = written.and_then(|()| if wanted { self.line(stats) } else { Ok(()) }) {
            self.error = Some(e);
            return Control::Stop;
        }
        if let Some(Err(e)) = self.csv.as_mut().map(|csv| csv.epoch(stats)) {
            self.csv_error = Some(e);
            return Control::Stop;
        }
        self.history.push(*stats);
        self.epoch_start = Instant::now();
        Control::Continue
    }
}

/// The lines `train` prints before the first epoch; `sizes` are the training samples, all the
/// training data (the rest is validation data) and the test samples.
fn header_lines<M: Layer, O: Optimizer, L: Loss<M::Output>>(
    model: &ModelSpec,
    data_note: &str,
    opts: &TrainOptions,
    sizes: (usize, usize, usize),
    out: &mut dyn Write,
) -> Result<()> {
    let (at, n, test_len) = sizes;
    writeln!(
        out,
        "model {}: {} parameters, training state {} bytes",
        model.name,
        thousands(M::NUM_PARAMS),
        thousands(core::mem::size_of::<Trainer<M, O>>())
    )?;
    if let Some(path) = &opts.weights {
        writeln!(out, "starting from the weights in {}", path.display())?;
    }
    if opts.fit.freeze > 0 {
        writeln!(out, "{}", freeze_note::<M>(model.name, opts.fit.freeze)?)?;
    }
    write!(out, "{data_note}")?;
    let f = &opts.fit;
    write!(
        out,
        "training: {}, {}, batch {}, {} epochs, seed {}, init {:?}",
        opts.optimizer,
        L::NAME,
        f.batch_size,
        f.epochs,
        f.seed,
        opts.init
    )?;
    if let Some(p) = f.patience {
        write!(out, ", early stopping after {p} epochs without improvement")?;
    }
    if at < n {
        writeln!(
            out,
            "; {at} training samples, {} validation samples (the last {} of the training data), {} test samples",
            n - at,
            opts.validation_split.unwrap_or_default(),
            test_len
        )?;
    } else {
        writeln!(out, "; {n} training samples, {test_len} test samples (also the validation data)")?;
    }
    Ok(())
}

/// Trains network `M` with optimizer `O` on `train`, then evaluates the final (or restored
/// best) weights on `test` once, saves them if asked, and prints the test loss and, last, the
/// line a script reads ([`accuracy_line`], or [`regression_line`] when `mae` is given).
/// `data_note` (lines about the data) is printed after the model line.
///
/// The validation data of every epoch (and of early stopping) is the last
/// `opts.validation_split` of `train`, held out and never trained on, or without a split the
/// test set, as the baselines do.
///
/// When the divergence guard rolled back and the weights end no better on the validation data
/// than they started, or the guard had to cut the learning rate over 1000-fold, training never
/// recovered: the weights are not saved and the error says so, after the usual lines.
///
/// # Errors
/// Invalid options, errors of the data or the loss, writing the output, the log or the weights,
/// or training that diverged and never recovered.
pub fn train<M, O, L, A, D, V, U>(
    model: &ModelSpec,
    data_note: &str,
    opts: &TrainOptions,
    cfg: &O::Config,
    loss: &L,
    mae: Option<&A>,
    train: &D,
    test: &V,
    monitor: &mut U,
    out: &mut dyn Write,
) -> Result<TrainOutcome>
where
    M: Layer,
    O: Optimizer,
    L: Loss<M::Output>,
    L::Target: Zero,
    A: Loss<M::Output, Target = L::Target>,
    D: Dataset<M::Input, L::Target> + ?Sized,
    V: Dataset<M::Input, L::Target> + ?Sized,
    U: UnitMonitor,
{
    let n = train.len();
    let at = match opts.validation_split {
        Some(fraction) => crate::split::keras_split(n, fraction)?,
        None => n,
    };
    let fit_data = Part::new(train, 0..at);
    let val = if at < n { Either::Left(Part::new(train, at..n)) } else { Either::Right(test) };

    // Boxed: a Trainer holds the parameters four times over (MNIST MLP with Adam: 1.6 MB).
    let mut trainer: Box<Trainer<M, O>> = Box::new(Trainer::ZERO);
    trainer.model.init_with(opts.init, &mut Rng::new(opts.fit.seed));
    if let Some(path) = &opts.weights {
        load_weights(&mut trainer.model, path, model.name)?;
    }
    // The snapshot the divergence guard rolls back to, and with --patience the best weights.
    let mut snapshot: Box<M> = Box::new(M::ZERO);
    // The initial weights, to tell whether training recovered after a rollback.
    let mut initial: Box<M> = Box::new(M::ZERO);
    initial.copy_params_from(&trainer.model);

    let f = &opts.fit;
    header_lines::<M, O, L>(model, data_note, opts, (at, n, test.len()), out)?;

    let mut progress = Progress {
        out: &mut *out,
        error: None,
        bar: None,
        draw: opts.progress && std::io::stderr().is_terminal(),
        epochs: f.epochs,
        log_every: opts.log_every,
        epoch_start: Instant::now(),
        train_time: Duration::ZERO,
        events: Vec::new(),
        csv: opts.log.clone().map(CsvLog::new),
        history: Vec::new(),
        csv_error: None,
    };
    let start = Instant::now();
    let report = fit_resumable(
        &mut trainer,
        &mut snapshot,
        &mut initial,
        opts,
        cfg,
        loss,
        &fit_data,
        &val,
        monitor,
        &mut progress,
    );
    let wall = start.elapsed().as_secs_f64();
    if let Some(bar) = progress.bar.take() {
        bar.finish_and_clear();
    }
    if let Some(e) = progress.error {
        return Err(e).context("cannot write the training log");
    }
    if let Some(e) = progress.csv_error {
        return Err(e);
    }
    let train_time = progress.train_time.as_secs_f64();
    let history = std::mem::take(&mut progress.history);
    let report = report.context("training failed")?;
    if let Some(path) = &opts.plot {
        plot(model.name, path, &history, &report, out)?;
    }

    report_lines(&report, out)?;
    let samples = report.epochs_run as usize * at;
    let samples_per_second = if train_time > 0.0 { samples as f64 / train_time } else { f64::INFINITY };
    writeln!(
        out,
        "trained {} samples in {:.2} s: {} samples/s (wall time {:.2} s with evaluation)",
        thousands(samples),
        train_time,
        thousands(samples_per_second.min(1e15) as usize),
        wall
    )?;
    let unrecovered =
        if report.rollbacks > 0 { never_recovered(&mut trainer, &initial, loss, &val, &report, f)? } else { None };
    if let Some(path) = opts.save.as_ref().filter(|_| unrecovered.is_none()) {
        let mut bytes = vec![0u8; checkpoint::file_len::<M>()];
        let n = checkpoint::save(&trainer.model, &mut bytes).context("cannot save the weights")?;
        crate::atomic::write_atomic(path, &bytes[..n])?;
        writeln!(out, "saved weights to {} ({} bytes)", path.display(), thousands(n))?;
    }
    let test_eval = final_lines(&mut trainer, loss, mae, test, out)?;
    out.flush()?;
    if let Some(why) = unrecovered {
        let saved = opts.save.as_ref().map(|p| format!("; the weights were not saved to {}", p.display()));
        bail!(
            "training diverged and never recovered: {} rollbacks, {why}{}",
            report.rollbacks,
            saved.unwrap_or_default()
        );
    }
    Ok(TrainOutcome { report, test: test_eval, train_seconds: train_time, samples_per_second, wall_seconds: wall })
}

/// Trains from the start, or from the training checkpoint `opts.resume`, writing checkpoints
/// to `opts.checkpoint` every `opts.checkpoint_every` steps and at the end.
///
/// # Errors
/// An unreadable or foreign checkpoint, a checkpoint that cannot be written, or what training
/// reports.
fn fit_resumable<M, O, L, D, V, U>(
    trainer: &mut Trainer<M, O>,
    snapshot: &mut M,
    initial: &mut M,
    opts: &TrainOptions,
    cfg: &O::Config,
    loss: &L,
    fit_data: &D,
    val: &V,
    monitor: &mut U,
    progress: &mut Progress<'_>,
) -> Result<FitReport>
where
    M: Layer,
    O: Optimizer,
    L: Loss<M::Output>,
    L::Target: Zero,
    D: Dataset<M::Input, L::Target> + ?Sized,
    V: Dataset<M::Input, L::Target> + ?Sized,
    U: UnitMonitor,
{
    let settings = settings_hash(opts);
    let mut state = FitState::new();
    if let Some(path) = &opts.resume {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        crate::resume::read(&bytes, settings, trainer, snapshot, initial, &mut state)
            .with_context(|| format!("cannot resume from {}", path.display()))?;
        writeln!(progress.out, "resuming from {} at epoch {}, batch {}", path.display(), state.epoch, state.batch + 1)?;
    } else {
        snapshot.copy_params_from(&trainer.model);
    }
    let every = opts.checkpoint.as_ref().map(|_| opts.checkpoint_every.max(1));
    loop {
        let step = trainer.fit_from(
            &mut state,
            cfg,
            loss,
            fit_data,
            Some(val),
            &opts.fit,
            Some(&mut *snapshot),
            monitor,
            progress,
            every,
        )?;
        if let Some(path) = &opts.checkpoint {
            let c = crate::resume::Checkpoint { trainer, snapshot, initial, state: &state };
            crate::atomic::write_atomic(path, &crate::resume::write(&c, settings))?;
        }
        if let Some(report) = step {
            return Ok(report);
        }
    }
}

/// The lines about how training ended: early stopping, restored weights, skipped steps.
fn report_lines(report: &FitReport, out: &mut dyn Write) -> Result<()> {
    if report.stopped_early {
        writeln!(out, "early stopping after epoch {}", report.epochs_run)?;
    }
    if report.restored_best {
        writeln!(out, "restored the weights of epoch {} (val_loss {:.4})", report.best_epoch, report.best_loss)?;
    }
    if report.skipped_steps > 0 || report.rollbacks > 0 {
        writeln!(
            out,
            "{} steps skipped because of a non-finite loss, gradient or update; {} rollbacks",
            report.skipped_steps, report.rollbacks
        )?;
    }
    Ok(())
}

/// Writes the training curves of `history` to `path`, the restored epoch marked.
///
/// # Errors
/// No epoch to draw, or a file that cannot be written.
fn plot(
    name: &str,
    path: &std::path::Path,
    history: &[EpochStats],
    report: &FitReport,
    out: &mut dyn Write,
) -> Result<()> {
    let best = report.restored_best.then_some(report.best_epoch);
    let svg = crate::plot::svg(name, history, best)?;
    crate::atomic::write_atomic(path, svg.as_bytes())?;
    writeln!(out, "plotted the training curves to {}", path.display())?;
    Ok(())
}

/// A hash of the settings that decide a run's bits, so that a training checkpoint resumes only
/// the run it was written by.
fn settings_hash(opts: &TrainOptions) -> u32 {
    let text = format!(
        "{:?}|{:?}|{:?}|{:?}|{}|{:?}",
        opts.optimizer,
        opts.fit,
        opts.init,
        opts.validation_split,
        opts.data_dir.display(),
        opts.weights
    );
    checkpoint::CRC32.checksum(text.as_bytes())
}

/// The line that says what `--freeze layers` freezes in network `M`.
///
/// # Errors
/// Freezing every layer with parameters (nothing would train).
fn freeze_note<M: Layer>(name: &str, freeze: u32) -> Result<String> {
    let (mut layers, mut frozen, mut left) = (0u32, 0usize, freeze);
    M::describe(&mut |info| {
        let n = info.count(Some(tinytrain::params::Role::Trainable));
        if n > 0 {
            layers += 1;
            if left > 0 {
                frozen += n;
                left -= 1;
            }
        }
    });
    anyhow::ensure!(
        freeze < layers,
        "--freeze {freeze}: model {name} has {layers} layers with parameters, so at most {} can be frozen",
        layers.saturating_sub(1)
    );
    Ok(format!(
        "frozen: the first {freeze} of {layers} layers with parameters ({} parameters) are not trained",
        thousands(frozen)
    ))
}

/// After rollbacks of the divergence guard, why training never recovered, if it did not: the
/// final weights are no better on the validation data than the initial ones (or their loss is
/// not finite), or the guard had to cut the learning rate more than 1000-fold, so that what
/// trained is not the run that was asked for.
fn never_recovered<M, O, L, V>(
    trainer: &mut Trainer<M, O>,
    initial: &M,
    loss: &L,
    val: &V,
    report: &FitReport,
    fit: &FitConfig,
) -> Result<Option<String>>
where
    M: Layer,
    O: Optimizer,
    L: Loss<M::Output>,
    L::Target: Zero,
    V: Dataset<M::Input, L::Target> + ?Sized,
{
    let after = trainer.evaluate(loss, val).context("evaluating on the validation data")?.loss;
    let mut first: Box<Trainer<M, Sgd>> = Box::new(Trainer::ZERO);
    first.model.copy_params_from(initial);
    let before = first.evaluate(loss, val).context("evaluating on the validation data")?.loss;
    if after.partial_cmp(&before) != Some(core::cmp::Ordering::Less) {
        return Ok(Some(format!("validation loss {after:.4e} after training, {before:.4e} before")));
    }
    let cut = f64::from(fit.guard.lr_factor).powf(f64::from(report.rollbacks));
    if cut < 1e-3 {
        return Ok(Some(format!(
            "the learning rate had to be cut {:.1e}-fold to {:.3e}: use a smaller --lr",
            1.0 / cut,
            report.last.lr
        )));
    }
    Ok(None)
}

/// Loads the weights file of `opts` into network `M` and evaluates it on `test`, printing the
/// loss and, last, the accuracy line (with `mae`, a regression: the MSE and MAE line).
///
/// # Errors
/// An unreadable or invalid weights file (wrong network, corrupt, truncated), or errors of
/// the data or the loss.
pub fn evaluate<M, L, A, V>(
    model: &ModelSpec,
    data_note: &str,
    opts: &EvalOptions,
    loss: &L,
    mae: Option<&A>,
    test: &V,
    out: &mut dyn Write,
) -> Result<Eval>
where
    M: Layer,
    L: Loss<M::Output>,
    L::Target: Zero,
    A: Loss<M::Output, Target = L::Target>,
    V: Dataset<M::Input, L::Target> + ?Sized,
{
    let path = &opts.weights;
    let mut trainer: Box<Trainer<M, Sgd>> = Box::new(Trainer::ZERO);
    load_weights(&mut trainer.model, path, model.name)?;
    writeln!(out, "model {}: weights from {}", model.name, path.display())?;
    write!(out, "{data_note}")?;
    let eval = final_lines(&mut trainer, loss, mae, test, out)?;
    out.flush()?;
    Ok(eval)
}

/// Loads the weights file at `path` into `net`; the error names the file and the model.
///
/// # Errors
/// When the file cannot be read or is not a valid weights file for the model (the model is
/// then left as it was).
pub fn load_weights<M: Layer>(net: &mut M, path: &std::path::Path, model: &str) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read weights file {}", path.display()))?;
    checkpoint::load(net, &bytes)
        .with_context(|| format!("{} is not a valid weights file for model {model}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_for_people() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        let e = Eval { loss: 0.3, accuracy: 325.0 / 360.0, correct: 325, samples: 360 };
        assert_eq!(accuracy_line(&e), "test accuracy 0.9028 (325/360)");
    }
}
