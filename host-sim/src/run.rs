//! Training and evaluation of any network, generic over the network, the optimizer, the loss
//! and the data: what `train` and `eval` do once the model registry has picked the types.
//!
//! Output: a few header lines, one line per epoch (or per `log_every` epochs) on `out`, a
//! progress bar per epoch on stderr when it is a terminal, and, last, one line a script can
//! read: `test accuracy 0.9028 (325/360)`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tinytrain::checkpoint;
use tinytrain::loss::Loss;
use tinytrain::prelude::*;
use tinytrain::train::{Divergence, UnitMonitor};

use crate::models::Model;
use crate::optimizers::OptimizerConfig;

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
    /// Print one epoch line every this many epochs (and always the last).
    pub log_every: u32,
    /// Draw progress bars on stderr (only when it is a terminal).
    pub progress: bool,
}

impl TrainOptions {
    /// The model's defaults: the settings of its baseline.
    #[must_use]
    pub fn defaults(model: &Model) -> Self {
        let d = &model.defaults;
        TrainOptions {
            optimizer: d.optimizer_config(false),
            fit: FitConfig { epochs: d.epochs, batch_size: d.batch_size, ..FitConfig::default() },
            init: d.init,
            data_dir: crate::datasets::default_dir_for(model.data),
            save: None,
            log_every: d.log_every,
            progress: true,
        }
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

/// The script-readable last line of `train` and `eval`.
#[must_use]
pub fn accuracy_line(e: &Eval) -> String {
    format!("test accuracy {:.4} ({}/{})", e.accuracy, e.correct, e.samples)
}

/// Writes `n` with thousands separators.
#[must_use]
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

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
        self.events.push(format!(
            "epoch {}: {} bad steps in a row: {}, optimizer state reset, lr now {:.3e}",
            event.epoch,
            event.bad_steps,
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
        self.epoch_start = Instant::now();
        Control::Continue
    }
}

/// Trains network `M` with optimizer `O` on `train`, validating on `test` after every epoch
/// (as the baselines do), then evaluates the final weights on `test`, saves them if asked, and
/// prints the accuracy line last. `data_note` (lines about the data) is printed after the
/// model line.
///
/// # Errors
/// Invalid options, errors of the data or the loss, or writing the output or the weights.
pub fn train<M, O, L, D, V, U>(
    model: &Model,
    data_note: &str,
    opts: &TrainOptions,
    cfg: &O::Config,
    loss: &L,
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
    D: Dataset<M::Input, L::Target> + ?Sized,
    V: Dataset<M::Input, L::Target> + ?Sized,
    U: UnitMonitor,
{
    // Boxed: a Trainer holds the parameters four times over (MNIST MLP with Adam: 1.6 MB).
    let mut trainer: Box<Trainer<M, O>> = Box::new(Trainer::ZERO);
    trainer.model.init_with(opts.init, &mut Rng::new(opts.fit.seed));
    // The snapshot the divergence guard rolls back to, and with --patience the best weights.
    let mut snapshot: Box<M> = Box::new(M::ZERO);

    writeln!(
        out,
        "model {}: {} parameters, training state {} bytes",
        model.name,
        thousands(M::NUM_PARAMS),
        thousands(core::mem::size_of::<Trainer<M, O>>())
    )?;
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
    writeln!(out, "; {} training samples, {} test samples", train.len(), test.len())?;

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
    };
    let start = Instant::now();
    let report = trainer.fit(cfg, loss, train, Some(test), f, Some(&mut *snapshot), monitor, &mut progress);
    let wall = start.elapsed().as_secs_f64();
    if let Some(bar) = progress.bar.take() {
        bar.finish_and_clear();
    }
    if let Some(e) = progress.error {
        return Err(e).context("cannot write the training log");
    }
    let train_time = progress.train_time.as_secs_f64();
    let report = report.context("training failed")?;

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
    let samples = report.epochs_run as usize * train.len();
    let samples_per_second = if train_time > 0.0 { samples as f64 / train_time } else { f64::INFINITY };
    writeln!(
        out,
        "trained {} samples in {:.2} s: {} samples/s (wall time {:.2} s with evaluation)",
        thousands(samples),
        train_time,
        thousands(samples_per_second.min(1e15) as usize),
        wall
    )?;
    let test_eval = trainer.evaluate(loss, test).context("evaluating on the test set")?;
    if let Some(path) = &opts.save {
        let mut bytes = vec![0u8; checkpoint::file_len::<M>()];
        let n = checkpoint::save(&trainer.model, &mut bytes).context("cannot save the weights")?;
        crate::atomic::write_atomic(path, &bytes[..n])?;
        writeln!(out, "saved weights to {} ({} bytes)", path.display(), thousands(n))?;
    }
    writeln!(out, "test loss {:.4}", test_eval.loss)?;
    writeln!(out, "{}", accuracy_line(&test_eval))?;
    out.flush()?;
    Ok(TrainOutcome { report, test: test_eval, train_seconds: train_time, samples_per_second, wall_seconds: wall })
}

/// Loads the weights file of `opts` into network `M` and evaluates it on `test`, printing the
/// loss and, last, the accuracy line.
///
/// # Errors
/// An unreadable or invalid weights file (wrong network, corrupt, truncated), or errors of
/// the data or the loss.
pub fn evaluate<M, L, V>(
    model: &Model,
    data_note: &str,
    opts: &EvalOptions,
    loss: &L,
    test: &V,
    out: &mut dyn Write,
) -> Result<Eval>
where
    M: Layer,
    L: Loss<M::Output>,
    L::Target: Zero,
    V: Dataset<M::Input, L::Target> + ?Sized,
{
    let path = &opts.weights;
    let mut trainer: Box<Trainer<M, Sgd>> = Box::new(Trainer::ZERO);
    load_weights(&mut trainer.model, path, model.name)?;
    let eval = trainer.evaluate(loss, test).context("evaluating on the test set")?;
    writeln!(out, "model {}: weights from {}", model.name, path.display())?;
    write!(out, "{data_note}")?;
    writeln!(out, "test loss {:.4}", eval.loss)?;
    writeln!(out, "{}", accuracy_line(&eval))?;
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
