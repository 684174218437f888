//! The command line: `train`, `eval`, `summary`, `models`, `qemu`, `predict`, `export` and
//! `import`.
//!
//! Each subcommand is a variant of [`Command`] with its arguments in a struct, and one arm in
//! [`run`]; a new subcommand is one more of each.
//!
//! ```
//! use clap::Parser;
//! use tinytrain_sim::cli::{Cli, Command};
//! let cli = Cli::try_parse_from(["tinytrain-sim", "train", "digits-mlp", "--epochs", "5"]).unwrap();
//! let Command::Train(args) = cli.command else { unreachable!() };
//! let opts = args.options().unwrap();
//! assert_eq!((opts.fit.epochs, opts.fit.batch_size), (5, 32));
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tinytrain::Init;

use crate::atomic;
use crate::interop::{self, Layout};
use crate::models::{self, MODELS, Model};
use crate::optimizers::{OptimizerKind, Overrides};
use crate::predict::PredictOptions;
use crate::run::{EvalOptions, TrainOptions};

/// Train, evaluate and summarise tinytrain models on the desktop.
#[derive(Debug, Parser)]
#[command(name = "tinytrain-sim", version, about, after_help = models_help())]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model with its baseline's settings (override any of them), validating after every
    /// epoch on the test set or on data held out with --validation-split; the last line is
    /// `test accuracy A (correct/total)` (a regression: `test mse E mae E (N samples)`).
    Train(TrainArgs),
    /// Evaluate saved weights on the test set; the last line is `test accuracy A (correct/total)`
    /// (a regression: `test mse E mae E (N samples)`).
    Eval(EvalArgs),
    /// Print the layers, parameter counts and the RAM for inference and training.
    Summary(SummaryArgs),
    /// List the models and their default settings.
    Models,
    /// Build the Cortex-M firmware, train on it in QEMU (mps2-an386) and check that every
    /// epoch's loss and the weights' CRC-32 are bit-identical to the simulator's; exits
    /// non-zero on any difference.
    Qemu(QemuArgs),
    /// Fine-tuning over a frozen int8 backbone: pre-train mnist-cnn-tiny (classes 0-4, or all
    /// ten for the rotated-images scenario), quantise its convolutions to int8, and learn all
    /// ten classes in a head from a stream of images on the simulated board, as the
    /// `qemu_finetune` firmware does; prints the memory budget, losses, drops and the test
    /// accuracy before and after.
    Finetune(FinetuneArgs),
    /// Print every test sample's index, predicted class, label and logits, one line each
    /// (`--json`: JSON lines), to compare with other tools; `--input FILE` predicts the samples
    /// of a file of CSV or JSON lines instead.
    Predict(PredictArgs),
    /// Write saved weights as a safetensors file under PyTorch `state_dict` names and layouts
    /// (`fc1.weight` [out, in], `conv1.weight` [C_out, C_in, kh, kw]) or Keras ones.
    Export(ExportArgs),
    /// Read a safetensors file (PyTorch or Keras names and layouts) into a weights file and/or
    /// Rust source for flash; missing, extra, mis-shaped or non-f32 tensors are refused by name.
    Import(ImportArgs),
    /// Quantise saved weights to int8 (TFLite's full-integer scheme: per-channel weights,
    /// activations calibrated on training samples), compare the int8 model with the f32 one on
    /// the test set, and write it as a `.tflite` file that TFLite, TFLM and `predict` run.
    Quantize(QuantizeArgs),
}

fn models_help() -> String {
    let rows: Vec<String> = MODELS.iter().map(|m| format!("  {:<12} {}", m.name, m.about)).collect();
    format!("Models:\n{}", rows.join("\n"))
}

fn parse_model(name: &str) -> Result<&'static Model, String> {
    models::find(name).ok_or_else(|| format!("unknown model (available: {})", models::names()))
}

/// A registry model by name, or a TensorFlow Lite model by the path of its `.tflite` file.
#[derive(Debug, Clone)]
pub enum ModelArg {
    /// A model of the registry.
    Registry(&'static Model),
    /// A `.tflite` file.
    Tflite(PathBuf),
}

fn parse_model_or_tflite(arg: &str) -> Result<ModelArg, String> {
    if crate::tflite::is_tflite_path(arg) {
        return Ok(ModelArg::Tflite(PathBuf::from(arg)));
    }
    models::find(arg)
        .map(ModelArg::Registry)
        .ok_or_else(|| format!("unknown model (available: {}; or a .tflite file)", models::names()))
}

fn parse_positive(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(_) => Err("must be a positive finite number".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_non_negative(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(_) => Err("must be a non-negative finite number".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_momentum(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        Ok(_) => Err("must be in [0, 1)".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_fraction(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        Ok(_) => Err("must be between 0 and 1 (exclusive)".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The validation split of `--patience` without `--validation-split`.
pub const DEFAULT_VALIDATION_SPLIT: f32 = 0.1;

fn parse_count(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

/// Weight initialisers on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitArg {
    /// Glorot/Xavier uniform, zero biases (Keras default).
    Glorot,
    /// He uniform, zero biases.
    HeUniform,
    /// He normal, zero biases.
    HeNormal,
    /// Weights and biases U(±1/√fan_in) (PyTorch default).
    Torch,
}

impl From<InitArg> for Init {
    fn from(a: InitArg) -> Init {
        match a {
            InitArg::Glorot => Init::GlorotUniform,
            InitArg::HeUniform => Init::HeUniform,
            InitArg::HeNormal => Init::HeNormal,
            InitArg::Torch => Init::TorchDefault,
        }
    }
}

/// Arguments of `train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The model (see the list below or `tinytrain-sim models`).
    #[arg(value_parser = parse_model)]
    pub model: &'static Model,
    /// Optimizer [default: the model's].
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate [default: the model's for its own optimizer, else the optimizer's default].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_positive)]
    pub lr: Option<f32>,
    /// Momentum of the momentum and nesterov optimizers [default: the model's, or 0.9].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_momentum)]
    pub momentum: Option<f32>,
    /// Keras inverse-time decay per update: lr_t = lr / (1 + decay · t).
    #[arg(long, allow_negative_numbers = true, value_parser = parse_non_negative)]
    pub decay: Option<f32>,
    /// Samples per update [default: the model's].
    #[arg(long, value_parser = parse_count)]
    pub batch: Option<u32>,
    /// Passes over the training set [default: the model's].
    #[arg(long, value_parser = parse_count)]
    pub epochs: Option<u32>,
    /// Seed of the initial weights and of the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Stop after this many epochs without a lower validation loss, and restore the best weights.
    /// The validation data is then held out of the training data (`--validation-split`,
    /// 0.1 unless given), so that the test set is only used once, at the end.
    #[arg(long, value_parser = parse_count)]
    pub patience: Option<u32>,
    /// Hold out the last fraction F of the training data (before shuffling, as Keras does) as
    /// the validation data of every epoch and of early stopping; the test set is then evaluated
    /// once, after training [default: none, the test set validates each epoch as in the
    /// baselines; 0.1 with --patience].
    #[arg(long, value_name = "F", value_parser = parse_fraction)]
    pub validation_split: Option<f32>,
    /// Weight initialiser [default: the model's].
    #[arg(long, value_enum)]
    pub init: Option<InitArg>,
    /// Directory with the dataset files [default: ./data if it holds them, else the repository's data/].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Save the trained weights to this file.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Start from these weights (a weights file of this model, from `train --save` or
    /// `import`) instead of initialising: fine-tuning.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Do not train the first N layers with parameters: they keep the weights they start with.
    #[arg(long, value_name = "N")]
    pub freeze: Option<u32>,
    /// Draw training and validation loss and accuracy per epoch into this SVG file, the
    /// early-stopping epoch marked.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Write a training checkpoint to this file every --checkpoint-every optimizer steps and at
    /// the end: `train --resume FILE` with the same options goes on from it, with the same bits
    /// as a run that never stopped.
    #[arg(long, value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,
    /// Optimizer steps between training checkpoints.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = parse_count)]
    pub checkpoint_every: u32,
    /// Go on from this training checkpoint (written by --checkpoint); give the same options as
    /// the run that wrote it. New checkpoints go to the same file unless --checkpoint says.
    #[arg(long, value_name = "FILE")]
    pub resume: Option<PathBuf>,
    /// Write one CSV row per epoch to this file, rewritten after every epoch: epoch, loss,
    /// accuracy, val_loss, val_accuracy, lr, and one dead_relu_K column per ReLU layer.
    #[arg(long, value_name = "FILE.csv")]
    pub log: Option<PathBuf>,
    /// Use the Keras forms and defaults of Adam, RMSprop and momentum instead of PyTorch's
    /// (Adadelta always uses the Keras defaults).
    #[arg(long)]
    pub keras: bool,
    /// Print an epoch line every N epochs [default: the model's].
    #[arg(long, value_name = "N", value_parser = parse_count)]
    pub log_every: Option<u32>,
    /// Do not draw progress bars.
    #[arg(long)]
    pub no_progress: bool,
}

impl TrainArgs {
    /// The model's defaults with these arguments applied.
    ///
    /// # Errors
    /// Arguments that do not go together (a momentum for Adam, say).
    pub fn options(&self) -> Result<TrainOptions> {
        let model = self.model;
        let d = &model.defaults;
        let mut opts = TrainOptions::defaults(model);
        let overrides = Overrides { lr: self.lr, momentum: self.momentum, decay: self.decay };
        opts.optimizer = d.optimizer_with(self.optimizer.unwrap_or(d.optimizer), self.keras, overrides)?;
        if let Some(b) = self.batch {
            opts.fit.batch_size = b as usize;
        }
        if let Some(e) = self.epochs {
            opts.fit.epochs = e;
        }
        opts.fit.seed = self.seed;
        opts.fit.patience = self.patience;
        if let Some(i) = self.init {
            opts.init = i.into();
        }
        if let Some(dir) = &self.data {
            opts.data_dir.clone_from(dir);
        }
        opts.save.clone_from(&self.save);
        opts.weights.clone_from(&self.weights);
        opts.checkpoint = self.checkpoint.clone().or_else(|| self.resume.clone());
        opts.checkpoint_every = self.checkpoint_every;
        opts.plot.clone_from(&self.plot);
        opts.resume.clone_from(&self.resume);
        opts.fit.freeze = self.freeze.unwrap_or(0);
        opts.log.clone_from(&self.log);
        opts.validation_split = self.validation_split.or(self.patience.map(|_| DEFAULT_VALIDATION_SPLIT));
        if let Some(n) = self.log_every {
            opts.log_every = n;
        }
        opts.progress = !self.no_progress;
        Ok(opts)
    }
}

/// Arguments of `eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model the weights belong to.
    #[arg(value_parser = parse_model)]
    pub model: &'static Model,
    /// The weights file written by `train --save`.
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// Directory with the dataset files [default: ./data if it holds them, else the repository's data/].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// Arguments of `summary`.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// The model: a registry name, or a TensorFlow Lite model (`model.tflite`: its operators,
    /// shapes, quantisation, parameters, flash and tensor arena).
    #[arg(value_parser = parse_model_or_tflite)]
    pub model: ModelArg,
    /// Optimizer whose state the training budget includes [default: the model's].
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
}

/// Arguments of `qemu`.
#[derive(Debug, Args)]
pub struct QemuArgs {
    /// The firmware crate to build [default: the repository's firmware/].
    #[arg(long, value_name = "DIR")]
    pub firmware: Option<PathBuf>,
    /// Run this firmware ELF instead of building one.
    #[arg(long, value_name = "FILE")]
    pub elf: Option<PathBuf>,
    /// Directory with the dataset files [default: ./data if it holds them, else the repository's data/].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Longest QEMU run, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,
    /// Which training firmware: the digits MLP (binary `qemu`), mnist-cnn-tiny on a slice of
    /// MNIST (binary `qemu_cnn`), waves-cnn1d, or fine-tuning over an int8 backbone
    /// (`qemu_finetune`, `qemu_finetune_shift`).
    #[arg(long, value_enum, default_value_t = crate::qemu::FirmwareModel::DigitsMlp)]
    pub model: crate::qemu::FirmwareModel,
}

/// Arguments of `finetune`.
#[derive(Debug, Args)]
pub struct FinetuneArgs {
    /// Which scenario [default: both].
    #[arg(long, value_enum)]
    pub scenario: Option<crate::finetune::Scenario>,
    /// Run over the backbones the firmware links (firmware/app/src/finetune_weights.rs)
    /// instead of pre-training and quantising here.
    #[arg(long)]
    pub statics: bool,
    /// Write both scenarios' backbones and pre-trained heads as Rust statics to FILE.
    #[arg(long, value_name = "FILE")]
    pub emit_rust: Option<PathBuf>,
    /// Write what baselines/finetune.py needs (dequantised weights, head, batches) as JSON to
    /// FILE (the shift scenario to FILE with `-shift` before the extension).
    #[arg(long, value_name = "FILE")]
    pub export_baseline: Option<PathBuf>,
    /// Directory with the MNIST files [default: ./data if it holds them, else the repository's data/].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// Arguments of `predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model the weights belong to, or a TensorFlow Lite model (`model.tflite`, with
    /// `--input`: one JSON array of the input tensor's values per line in, one of the output's
    /// per line out, in the model's own type).
    #[arg(value_parser = parse_model_or_tflite)]
    pub model: ModelArg,
    /// The weights file (`train --save` or `import --to`); required for a registry model.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Directory with the dataset files [default: ./data if it holds them, else the repository's data/].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// One JSON object per line: {"index":..,"predicted":..,"label":..,"logits":[..]}.
    #[arg(long)]
    pub json: bool,
    /// Predict these samples instead of the test set: one per line, the network's input values
    /// as CSV or a JSON array (`-`: stdin); the label column is then `-` (JSON: null).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The model the weights belong to.
    #[arg(value_parser = parse_model)]
    pub model: &'static Model,
    /// The weights file (`train --save` or `import --to`).
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// The safetensors file to write.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// Tensor names and layouts.
    #[arg(long, value_enum, default_value_t = Layout::Pytorch)]
    pub layout: Layout,
}

/// Arguments of `quantize`.
#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// The model the weights belong to.
    #[arg(value_parser = parse_model)]
    pub model: &'static Model,
    /// The weights file (`train --save` or `import --to`).
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// Training samples to calibrate the activation ranges on (the first N).
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub calibrate: usize,
    /// Write the int8 model as a `.tflite` file.
    #[arg(long, value_name = "FILE")]
    pub tflite: Option<PathBuf>,
    /// Write the int8 model as Rust source: const-generic `tinytrain::int8` layers with their
    /// tables as `static` data (`pub static NET`), for `include!` in firmware.
    #[arg(long, value_name = "FILE.rs")]
    pub rust: Option<PathBuf>,
    /// Directory with the dataset files [default: ./data if it holds them, else the repository's data/].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// Arguments of `import`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("output").required(true).multiple(true).args(["to", "rust"]))]
pub struct ImportArgs {
    /// The model the tensors belong to, or an int8 TensorFlow Lite model (`model.tflite`, with
    /// `--rust`: the network as const-generic `tinytrain::int8` layers and its tables as
    /// `static` data, for `include!` in firmware).
    #[arg(value_parser = parse_model_or_tflite)]
    pub model: ModelArg,
    /// The safetensors file to read (registry models).
    #[arg(value_name = "SAFETENSORS")]
    pub file: Option<PathBuf>,
    /// Write a tinytrain weights file (for `eval`, `predict`, or `include_bytes!` and
    /// `tinytrain::checkpoint::load` in firmware).
    #[arg(long, value_name = "FILE")]
    pub to: Option<PathBuf>,
    /// Write Rust source with `pub static NET` holding the network and its weights (flash).
    #[arg(long, value_name = "FILE.rs")]
    pub rust: Option<PathBuf>,
    /// Tensor names and layouts of the file.
    #[arg(long, value_enum, default_value_t = Layout::Pytorch)]
    pub layout: Layout,
    /// With a `.tflite` model: how FULLY_CONNECTED rescales its accumulators on the device
    /// (`exact`: TensorFlow's reference rule in integers, the outputs of `predict`; `tflm`:
    /// TensorFlow Lite Micro's fixed-point rule; `float`: the reference rule in f64).
    #[arg(long, value_enum, default_value_t = crate::tflite::FcRequant::Exact)]
    pub fc_requant: crate::tflite::FcRequant,
}

/// Runs a parsed command line, writing its output to `out`.
///
/// # Errors
/// Whatever the subcommand reports.
pub fn run(cli: &Cli, out: &mut dyn Write) -> Result<()> {
    match &cli.command {
        Command::Train(args) => {
            let opts = args.options()?;
            let mut inputs = crate::datasets::input_files(crate::run::dataset_kind(args.model), &opts.data_dir);
            inputs.extend(opts.weights.iter().cloned());
            // A run that resumes from a checkpoint may write the next ones over it.
            inputs.extend(opts.resume.iter().filter(|r| Some(*r) != opts.checkpoint.as_ref()).cloned());
            let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
            let outputs: Vec<&Path> = opts
                .save
                .iter()
                .chain(&opts.log)
                .chain(&opts.checkpoint)
                .chain(&opts.plot)
                .map(PathBuf::as_path)
                .collect();
            atomic::check_outputs(&outputs, &inputs)?;
            args.model.train(&opts, out)?;
        }
        Command::Eval(args) => {
            let data_dir = args
                .data
                .clone()
                .unwrap_or_else(|| crate::datasets::default_dir_for(crate::run::dataset_kind(args.model)));
            let opts = EvalOptions { weights: args.weights.clone(), data_dir };
            args.model.eval(&opts, out)?;
        }
        Command::Summary(args) => match &args.model {
            ModelArg::Registry(model) => {
                let kind = args.optimizer.unwrap_or(model.defaults.optimizer);
                write!(out, "{}", model.summary(kind))?;
            }
            ModelArg::Tflite(path) => {
                if args.optimizer.is_some() {
                    anyhow::bail!("--optimizer applies to registry models, not to {}", path.display());
                }
                let graph = load_tflite(path)?;
                let name =
                    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
                write!(out, "{}", crate::tflite::summary(&graph, &name))?;
            }
        },
        Command::Models => {
            for m in MODELS {
                let d = &m.defaults;
                writeln!(out, "{:<12} {}", m.name, m.about)?;
                writeln!(
                    out,
                    "{:<12} defaults: {}, batch {}, {} epochs, init {:?}",
                    "",
                    d.optimizer_config(false),
                    d.batch_size,
                    d.epochs,
                    d.init
                )?;
            }
        }
        Command::Qemu(args) => {
            let opts = crate::qemu::QemuOptions {
                firmware: args.firmware.clone().unwrap_or_else(crate::qemu::firmware_dir),
                elf: args.elf.clone(),
                data: args
                    .data
                    .clone()
                    .unwrap_or_else(|| crate::datasets::default_dir_for(Some(qemu_dataset(args.model)))),
                timeout: std::time::Duration::from_secs(args.timeout),
                model: args.model,
            };
            crate::qemu::run_and_compare(&opts, out)?;
        }
        Command::Finetune(args) => finetune(args, out)?,
        Command::Predict(args) => match &args.model {
            ModelArg::Registry(model) => {
                let Some(weights) = args.weights.clone() else {
                    anyhow::bail!("predict {} needs --weights FILE (from train --save or import --to)", model.name)
                };
                let opts = PredictOptions {
                    weights,
                    data_dir: args
                        .data
                        .clone()
                        .unwrap_or_else(|| crate::datasets::default_dir_for(crate::run::dataset_kind(model))),
                    json: args.json,
                    input: args.input.clone(),
                };
                model.predict(&opts, out)?;
            }
            ModelArg::Tflite(path) => predict_tflite(args, path, out)?,
        },
        Command::Export(args) => export(args, out)?,
        Command::Import(args) => import(args, out)?,
        Command::Quantize(args) => quantize(args, out)?,
    }
    out.flush()?;
    Ok(())
}

/// Reads and checks a `.tflite` file.
fn load_tflite(path: &Path) -> Result<crate::tflite::Graph> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    crate::tflite::load(&bytes).with_context(|| format!("{}", path.display()))
}

fn predict_tflite(args: &PredictArgs, path: &Path, out: &mut dyn Write) -> Result<()> {
    if args.weights.is_some() || args.data.is_some() {
        anyhow::bail!(
            "{} holds its weights and has no test set: give the samples with --input FILE (or -)",
            path.display()
        );
    }
    let Some(input) = &args.input else {
        anyhow::bail!(
            "predict {} needs --input FILE (or - for stdin): one JSON array of input values per line",
            path.display()
        )
    };
    let graph = load_tflite(path)?;
    let interpreter = crate::tflite::Interpreter::new(&graph).with_context(|| format!("{}", path.display()))?;
    let text = if input.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("cannot read the samples from stdin")?;
        text
    } else {
        std::fs::read_to_string(input).with_context(|| format!("cannot read {}", input.display()))?
    };
    crate::tflite::samples::predict(&interpreter, &text, out).with_context(|| format!("{}", input.display()))?;
    Ok(())
}

fn qemu_dataset(model: crate::qemu::FirmwareModel) -> crate::datasets::DatasetKind {
    match model {
        crate::qemu::FirmwareModel::DigitsMlp => crate::datasets::DatasetKind::Digits,
        crate::qemu::FirmwareModel::MnistCnnTiny => crate::datasets::DatasetKind::Mnist,
        crate::qemu::FirmwareModel::WavesCnn1d => crate::datasets::DatasetKind::Waves,
        crate::qemu::FirmwareModel::Finetune | crate::qemu::FirmwareModel::FinetuneShift => {
            crate::datasets::DatasetKind::Mnist
        }
    }
}

fn finetune(args: &FinetuneArgs, out: &mut dyn Write) -> Result<()> {
    let opts = crate::finetune::FinetuneOptions {
        data: args
            .data
            .clone()
            .unwrap_or_else(|| crate::datasets::default_dir_for(Some(crate::datasets::DatasetKind::Mnist))),
        scenarios: args
            .scenario
            .map_or_else(|| vec![crate::finetune::Scenario::Reference, crate::finetune::Scenario::Shift], |s| vec![s]),
        statics: args.statics,
        emit_rust: args.emit_rust.clone(),
        export_baseline: args.export_baseline.clone(),
    };
    let outputs: Vec<&std::path::Path> =
        opts.emit_rust.iter().chain(&opts.export_baseline).map(PathBuf::as_path).collect();
    atomic::check_outputs(&outputs, &[])?;
    crate::finetune::run_command(&opts, out)?;
    Ok(())
}

fn export(args: &ExportArgs, out: &mut dyn Write) -> Result<()> {
    let (model, path) = (args.model, &args.weights);
    atomic::check_outputs(&[&args.to], &[path])?;
    let weights = std::fs::read(path).with_context(|| format!("cannot read weights file {}", path.display()))?;
    let file = model.export(&weights, args.layout).with_context(|| format!("{}", path.display()))?;
    atomic::write_atomic(&args.to, &file)?;
    let specs = model.tensor_specs(args.layout)?;
    writeln!(
        out,
        "wrote {} ({} bytes, {} layout): {}",
        args.to.display(),
        crate::text::thousands(file.len()),
        args.layout,
        interop::describe_tensors(&specs)
    )?;
    Ok(())
}

fn import(args: &ImportArgs, out: &mut dyn Write) -> Result<()> {
    let model = match &args.model {
        ModelArg::Tflite(path) => return import_tflite(args, path, out),
        ModelArg::Registry(model) => *model,
    };
    let Some(path) = &args.file else {
        anyhow::bail!("import {} needs the safetensors file to read", model.name);
    };
    let outputs: Vec<&Path> = args.to.iter().chain(&args.rust).map(PathBuf::as_path).collect();
    atomic::check_outputs(&outputs, &[path])?;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let imported = model
        .import(&bytes, args.layout, args.rust.is_some())
        .with_context(|| format!("{} does not fit model {} ({} layout)", path.display(), model.name, args.layout))?;
    writeln!(out, "tensors matched by {}", imported.mapping)?;
    let mut files: Vec<(&Path, &[u8])> = Vec::new();
    if let Some(to) = &args.to {
        files.push((to, &imported.weights));
    }
    if let (Some(rs), Some(source)) = (&args.rust, &imported.rust) {
        files.push((rs, source.as_bytes()));
    }
    // Both files or neither.
    atomic::write_all_atomic(&files)?;
    if let Some(to) = &args.to {
        writeln!(out, "wrote weights file {} ({} bytes)", to.display(), crate::run::thousands(imported.weights.len()))?;
    }
    if let (Some(rs), Some(_)) = (&args.rust, &imported.rust) {
        writeln!(out, "wrote Rust source {} (pub static NET: {})", rs.display(), model.type_path)?;
    }
    Ok(())
}

/// `import model.tflite --rust net.rs`: the network and its tables as Rust source.
fn import_tflite(args: &ImportArgs, path: &Path, out: &mut dyn Write) -> Result<()> {
    let Some(rs) = &args.rust else {
        anyhow::bail!(
            "import {} writes Rust source: give --rust FILE.rs (--to is for safetensors files)",
            path.display()
        )
    };
    if args.to.is_some() || args.file.is_some() {
        anyhow::bail!("import {} reads the .tflite file alone and writes only --rust", path.display());
    }
    atomic::check_outputs(&[rs], &[path])?;
    let graph = load_tflite(path)?;
    let source = crate::tflite::rust_source(&graph, &path.to_string_lossy(), args.fc_requant)
        .with_context(|| format!("{}", path.display()))?;
    atomic::write_atomic(rs, source.as_bytes())?;
    writeln!(
        out,
        "wrote Rust source {} (pub static NET: Net, {} operators, FULLY_CONNECTED requantisation {:?})",
        rs.display(),
        graph.ops.len(),
        args.fc_requant
    )?;
    Ok(())
}

/// A clap error as one line: `error: invalid value 'x' for '--lr <LR>': invalid float literal`.
#[must_use]
pub fn error_line(err: &clap::Error) -> String {
    let text = err.to_string();
    let mut parts = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty());
    let mut line = parts.next().unwrap_or("error: invalid arguments").to_owned();
    for p in parts {
        line.push_str(if line.ends_with(':') { " " } else { "; " });
        line.push_str(p);
    }
    line
}

/// Flat inputs of a model's training and test samples, and the test targets.
struct Flat {
    train: Vec<f32>,
    test: Vec<f32>,
    labels: Option<Vec<usize>>,
    values: Vec<f32>,
}

fn flat_samples(model: &Model, data: Option<&Path>) -> Result<Flat> {
    match crate::run::dataset_kind(model) {
        Some(kind) => {
            let dir = data.map_or_else(|| crate::datasets::default_dir_for(Some(kind)), Path::to_path_buf);
            let sets = crate::datasets::load(kind, &dir)?;
            let scaled =
                |s: &crate::datasets::ImageSet| s.pixels.iter().map(|&p| f32::from(p) * s.scale).collect::<Vec<f32>>();
            Ok(Flat {
                train: scaled(&sets.train),
                test: scaled(&sets.test),
                labels: Some(sets.test.labels.iter().map(|&l| usize::from(l)).collect()),
                values: Vec::new(),
            })
        }
        None if model.name == "sine" => {
            use crate::tasks::sine::{TEST, TRAIN, samples};
            let (train, test) = (samples(TRAIN, 1), samples(TEST, 2));
            Ok(Flat {
                train: train.iter().map(|(x, _)| x[0]).collect(),
                test: test.iter().map(|(x, _)| x[0]).collect(),
                labels: None,
                values: test.iter().map(|(_, y)| y[0]).collect(),
            })
        }
        None => anyhow::bail!("{}: quantize needs a model with a dataset", model.name),
    }
}

fn quantize(args: &QuantizeArgs, out: &mut dyn Write) -> Result<()> {
    use crate::quantize::{input_quant, output_quant, quantize_input};
    use crate::tflite::{Data, Interpreter};
    let model = args.model;
    let outputs: Vec<&Path> = args.tflite.iter().chain(&args.rust).map(PathBuf::as_path).collect();
    atomic::check_outputs(&outputs, &[&args.weights])?;
    let weights =
        std::fs::read(&args.weights).with_context(|| format!("cannot read weights file {}", args.weights.display()))?;
    let mut session = model.session(0);
    session.load(&weights).with_context(|| format!("{}", args.weights.display()))?;
    let data = flat_samples(model, args.data.as_deref())?;
    let len: usize = session.input_shape().iter().product();
    anyhow::ensure!(args.calibrate > 0, "--calibrate needs at least one sample");
    let n = args.calibrate.min(data.train.len() / len.max(1));
    let q = session.quantize(&data.train[..n * len])?;
    let graph = &q.graph;
    let (in_scale, in_zp) = input_quant(graph)?;
    let (out_scale, out_zp) = output_quant(graph)?;
    let interp = Interpreter::new(graph)?;
    let f32_out = session.predict(&data.test)?;
    let classes = session.output_len();
    let (mut agree, mut correct_f, mut correct_q, mut se_f, mut se_q) = (0usize, 0usize, 0usize, 0f64, 0f64);
    let samples = data.test.len() / len.max(1);
    for (i, x) in data.test.chunks_exact(len).enumerate() {
        let result = interp.run(&[Data::I8(quantize_input(x, in_scale, in_zp))])?;
        let Some(Data::I8(y)) = result.first() else { anyhow::bail!("the int8 model gave no int8 output") };
        let yf = &f32_out[i * classes..(i + 1) * classes];
        let deq: Vec<f32> = y.iter().map(|&v| out_scale * (i64::from(v) - out_zp) as f32).collect();
        if let Some(labels) = &data.labels {
            let (pf, pq) = (tinytrain::tensor::argmax(yf), tinytrain::tensor::argmax(&deq));
            agree += usize::from(pf == pq);
            correct_f += usize::from(pf == labels[i]);
            correct_q += usize::from(pq == labels[i]);
        } else {
            let t = f64::from(data.values[i]);
            se_f += (f64::from(yf[0]) - t).powi(2);
            se_q += (f64::from(deq[0]) - t).powi(2);
        }
    }
    let weights_bytes: usize = graph.tensors.iter().filter(|t| t.is_const()).map(crate::tflite::Tensor::bytes).sum();
    writeln!(
        out,
        "quantize {}: int8, per-channel weights, activations calibrated on {} training samples",
        model.name, q.samples
    )?;
    writeln!(
        out,
        "input scale {in_scale:.6e} zero point {in_zp}; output scale {out_scale:.6e} zero point {out_zp}; weights and biases {} bytes (f32: {})",
        crate::text::thousands(weights_bytes),
        crate::text::thousands(4 * session.num_params())
    )?;
    if data.labels.is_some() {
        let (af, aq) = (correct_f as f64 / samples as f64, correct_q as f64 / samples as f64);
        writeln!(out, "f32  test accuracy {af:.4} ({correct_f}/{samples})")?;
        writeln!(
            out,
            "int8 test accuracy {aq:.4} ({correct_q}/{samples}), {:+.2} points; same class as f32 on {agree}/{samples}",
            100.0 * (aq - af)
        )?;
    } else {
        let (mf, mq) = (se_f / samples as f64, se_q / samples as f64);
        writeln!(out, "f32  test mse {mf:.6} ({samples} samples)")?;
        writeln!(out, "int8 test mse {mq:.6}, {:+.1}% of the f32 mse", 100.0 * (mq - mf) / mf)?;
    }
    let tflite = args.tflite.as_ref().map(|_| crate::tflite::write(graph));
    if let Some(bytes) = &tflite {
        // What was written reads back as the same graph.
        let back = crate::tflite::load(bytes).context("the written .tflite does not read back")?;
        anyhow::ensure!(back.ops.len() == graph.ops.len(), "the written .tflite reads back with other operators");
    }
    let rust = match &args.rust {
        Some(_) => {
            let weights = args.weights.file_name().map_or(args.weights.to_string_lossy(), |n| n.to_string_lossy());
            let command = format!("quantize {} --weights {weights} --calibrate {} --rust", model.name, args.calibrate);
            Some(crate::tflite::generated_by(graph, &command, crate::tflite::FcRequant::Exact)?)
        }
        None => None,
    };
    let files: Vec<(&Path, &[u8])> = args
        .tflite
        .iter()
        .zip(&tflite)
        .map(|(p, b)| (p.as_path(), b.as_slice()))
        .chain(args.rust.iter().zip(&rust).map(|(p, s)| (p.as_path(), s.as_bytes())))
        .collect();
    // Every file or none.
    atomic::write_all_atomic(&files)?;
    for (path, bytes) in &files {
        writeln!(out, "wrote {} ({} bytes)", path.display(), crate::text::thousands(bytes.len()))?;
    }
    Ok(())
}
