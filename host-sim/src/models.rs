//! The model registry: every network the command line knows, with its data, its task and the
//! settings of its baseline as defaults.
//!
//! | name | network | data | defaults (the baseline's settings) |
//! |---|---|---|---|
//! | `xor` | [`zoo::Xor`], 2-4-1 sigmoid | 4 built-in samples | Adam lr 0.05, batch 4, 1000 epochs, MSE, Glorot uniform |
//! | `digits-mlp` | [`zoo::DigitsMlp`], 64-32-10 ReLU | digits 1437/360 | Adam lr 1e-3, batch 32, 30 epochs, cross-entropy, PyTorch init |
//! | `mnist-mlp` | [`zoo::MnistMlp`], 784-128-10 ReLU | MNIST 8000/2000 | SGD lr 0.05 momentum 0.9 (PyTorch form), batch 32, 10 epochs, PyTorch init |
//! | `digits-bn-mlp` | [`zoo::DigitsBnMlp`], 64-32-10, BatchNorm1d, ReLU | digits 1437/360 | Adam lr 1e-3, batch 32, 30 epochs, PyTorch init; statistics frozen (import them from PyTorch) |
//! | `waves-cnn1d` | [`zoo::WavesCnn1d`], three 1-D convolutions, global average, dense 10 | waves 2000/1000 | Adam lr 3e-3, batch 32, 80 epochs, PyTorch init (`baselines/waves.py`: median 0.7860 over 5 seeds) |
//! | `mnist-bn-cnn` | [`zoo::MnistBnCnn`], conv 8 s2, BatchNorm2d, ReLU, max-pool, dense 10 | MNIST 8000/2000 | Adam lr 2e-3, batch 32, 5 epochs, PyTorch init; statistics frozen |
//!
//! # Adding a model
//!
//! Declare the network in `tinytrain::zoo` (or anywhere), then add one entry to [`MODELS`]:
//!
//! ```text
//! model! {
//!     name: "mnist-cnn",
//!     net: zoo::MnistCnn,
//!     task: classify,                     // a module of crate::tasks
//!     data: Data::Images(DatasetKind::Mnist),
//!     about: "Keras mnist_cnn: conv 32, conv 64, max-pool, dropout, dense 128, dense 10",
//!     defaults: Defaults {
//!         optimizer: OptimizerKind::Adadelta, // the baseline's optimizer...
//!         lr: 1.0,                        // ...and its learning rate
//!         momentum: 0.9,                  // used by momentum and nesterov only
//!         batch_size: 128,
//!         epochs: 12,
//!         init: Init::TorchDefault,       // the baseline is PyTorch
//!         log_every: 1,
//!     },
//!     // Optional: the layers' names in safetensors files, PyTorch module and Keras layer, in
//!     // order; without it `export`/`import` use `conv1`, `conv2`, `fc1`, `fc2` and `conv2d`,
//!     // `conv2d_1`, `dense`, `dense_1` (see crate::interop). The shapes come from the type.
//!     tensors: &[
//!         LayerNames { torch: "conv1", keras: "conv2d" },
//!         LayerNames { torch: "conv2", keras: "conv2d_1" },
//!         LayerNames { torch: "fc1", keras: "dense" },
//!         LayerNames { torch: "fc2", keras: "dense_1" },
//!     ],
//! },
//! ```
//!
//! That is all: `train`, `eval`, `summary`, `predict`, `export`, `import` and the
//! [`Model::session`] of the Python bindings pick it up, and
//! so does the list of models in `--help`. The `classify` task takes any network whose output is 10 logits and whose input
//! tensor has as many elements as the images have pixels (so a CHW input
//! `[[[f32; 28]; 28]; 1]` reads MNIST as it is). A model with other data gets a task module of
//! its own in [`crate::tasks`], with `train::<M, O, U>` and `eval::<M>` like the others.
//! A new optimizer goes into [`crate::optimizers`] (Adadelta, which the Keras CNN example
//! uses, is there: `optimizer: OptimizerKind::Adadelta, lr: 1.0`).

use std::io::Write;

use anyhow::Result;
use tinytrain::prelude::*;
use tinytrain::zoo;

use crate::datasets::DatasetKind;
use crate::interop::{self, Imported, LayerNames, Layout, TensorSpec};
use crate::optimizers::{OptimizerConfig, OptimizerKind};
use crate::predict::PredictOptions;
use crate::run::{EvalOptions, TrainOptions, TrainOutcome};
use crate::session::{NetSession, Session};
pub use crate::spec::{Data, Defaults, ModelSpec};

type TrainFn = fn(&ModelSpec, &TrainOptions, &mut dyn Write) -> Result<TrainOutcome>;
type EvalFn = fn(&ModelSpec, &EvalOptions, &mut dyn Write) -> Result<Eval>;
type SummaryFn = fn(&ModelSpec, OptimizerKind) -> String;
type PredictFn = fn(&ModelSpec, &PredictOptions, &mut dyn Write) -> Result<Eval>;
type SpecsFn = fn(&ModelSpec, Layout) -> Result<Vec<TensorSpec>>;
type ExportFn = fn(&ModelSpec, &[u8], Layout) -> Result<Vec<u8>>;
type ImportFn = fn(&ModelSpec, &[u8], Layout, bool) -> Result<Imported>;
type SessionFn = fn(&'static ModelSpec) -> Box<dyn Session>;

/// A registered model: its [`ModelSpec`] (reachable through `Deref`) and the functions
/// monomorphised for its network type.
#[derive(Debug)]
pub struct Model {
    /// Name, data, defaults and tensor names.
    pub spec: ModelSpec,
    train: TrainFn,
    eval: EvalFn,
    summary: SummaryFn,
    predict: PredictFn,
    specs: SpecsFn,
    export: ExportFn,
    import: ImportFn,
    session: SessionFn,
}

impl std::ops::Deref for Model {
    type Target = ModelSpec;
    fn deref(&self) -> &ModelSpec {
        &self.spec
    }
}

impl Model {
    /// Trains the model, printing the log to `out`.
    ///
    /// # Errors
    /// Invalid options or data, or output that cannot be written.
    pub fn train(&self, opts: &TrainOptions, out: &mut dyn Write) -> Result<TrainOutcome> {
        (self.train)(&self.spec, opts, out)
    }

    /// Evaluates saved weights on the test set.
    ///
    /// # Errors
    /// An invalid weights file or invalid data.
    pub fn eval(&self, opts: &EvalOptions, out: &mut dyn Write) -> Result<Eval> {
        (self.eval)(&self.spec, opts, out)
    }

    /// The Keras-like summary with the memory budget of training with `optimizer`.
    #[must_use]
    pub fn summary(&self, optimizer: OptimizerKind) -> String {
        (self.summary)(&self.spec, optimizer)
    }

    /// Prints every test sample's prediction, label and outputs ([`crate::predict`]).
    ///
    /// # Errors
    /// An invalid weights file or invalid data.
    pub fn predict(&self, opts: &PredictOptions, out: &mut dyn Write) -> Result<Eval> {
        (self.predict)(&self.spec, opts, out)
    }

    /// The model's tensors in a safetensors file of `layout`.
    ///
    /// # Errors
    /// Layer names that do not fit the network (a registry mistake).
    pub fn tensor_specs(&self, layout: Layout) -> Result<Vec<TensorSpec>> {
        (self.specs)(&self.spec, layout)
    }

    /// The safetensors file of a weights file.
    ///
    /// # Errors
    /// An invalid weights file.
    pub fn export(&self, weights: &[u8], layout: Layout) -> Result<Vec<u8>> {
        (self.export)(&self.spec, weights, layout)
    }

    /// The weights file (and, with `rust`, the Rust source) of a safetensors file.
    ///
    /// # Errors
    /// A file that is not safetensors or whose tensors do not fit, each named.
    pub fn import(&self, safetensors: &[u8], layout: Layout, rust: bool) -> Result<Imported> {
        (self.import)(&self.spec, safetensors, layout, rust)
    }

    /// The model in memory, its weights initialised from `seed` as `train --seed` does: to
    /// train, evaluate, predict and move weights at run time ([`crate::session`]).
    #[must_use]
    pub fn session(&'static self, seed: u64) -> Box<dyn Session> {
        let mut s = (self.session)(&self.spec);
        s.init(seed);
        s
    }
}

/// Builds a [`Model`] for a concrete network type: expands the optimizer dispatch and the
/// dead-ReLU monitor (both sized by the network) and calls the task's generic functions.
macro_rules! model {
    (@tensors) => { &[] };
    (@tensors $tensors:expr) => { $tensors };
    (
        name: $name:literal,
        net: $net:ty,
        task: $task:ident,
        data: $data:expr,
        about: $about:literal,
        defaults: $defaults:expr
        $(, tensors: $tensors:expr)? $(,)?
    ) => {
        Model {
            spec: ModelSpec {
                name: $name,
                about: $about,
                data: $data,
                defaults: $defaults,
                tensors: model!(@tensors $($tensors)?),
                type_path: concat!("tinytrain::", stringify!($net)),
            },
            train: |model, opts, out| {
                let mut monitor = Box::new(DeadReluMonitor::<{ <$net as Layer>::RELU_UNITS }>::ZERO);
                $crate::with_optimizer!($net, opts.optimizer, |Opt, cfg| {
                    $crate::tasks::$task::train::<$net, Opt, _>(model, opts, &cfg, &mut *monitor, out)
                })
            },
            eval: |model, opts, out| $crate::tasks::$task::eval::<$net>(model, opts, out),
            summary: |model, kind| {
                $crate::with_optimizer!($net, OptimizerConfig::defaults(kind, false), |Opt, _| {
                    Summary::<$net, Opt>::new(model.name).to_string()
                })
            },
            predict: |model, opts, out| $crate::tasks::$task::predict::<$net>(model, opts, out),
            specs: |model, layout| interop::tensor_specs::<$net>(model.tensors, layout),
            export: |model, weights, layout| interop::export::<$net>(model.name, model.tensors, weights, layout),
            import: |model, bytes, layout, rust| {
                interop::import_model::<$net>(model.name, model.type_path, model.tensors, bytes, layout, rust)
            },
            session: |model| {
                Box::new(NetSession::<$net>::new(
                    model,
                    |net, opts, train, val| {
                        $crate::with_optimizer!($net, opts.optimizer, |Opt, cfg| {
                            $crate::tasks::$task::fit_arrays::<$net, Opt>(net, &cfg, &opts.fit, train, val)
                        })
                    },
                    |net, data| $crate::tasks::$task::eval_arrays::<$net>(net, data),
                ))
            },
        }
    };
}

/// Every model the command line knows, in the order `--help` lists them.
pub static MODELS: &[Model] = &[
    model! {
        name: "xor",
        net: zoo::Xor,
        task: xor,
        data: Data::Builtin,
        about: "2-4-1 sigmoid network on the 4 XOR samples (MSE)",
        defaults: Defaults {
            optimizer: OptimizerKind::Adam,
            lr: 0.05,
            momentum: 0.9,
            batch_size: 4,
            epochs: 1000,
            init: Init::GlorotUniform,
            log_every: 100,
        },
        tensors: &[LayerNames { torch: "fc1", keras: "dense" }, LayerNames { torch: "fc2", keras: "dense_1" }],
    },
    model! {
        name: "sine",
        net: zoo::Sine,
        task: sine,
        data: Data::Builtin,
        about: "1-16-16-1 ReLU regression of sin(x), the TensorFlow Lite Micro hello-world model (MSE)",
        defaults: Defaults {
            optimizer: OptimizerKind::Adam,
            lr: 0.01,
            momentum: 0.9,
            batch_size: 16,
            epochs: 300,
            init: Init::HeUniform,
            log_every: 50,
        },
    },
    model! {
        name: "digits-mlp",
        net: zoo::DigitsMlp,
        task: classify,
        data: Data::Images(DatasetKind::Digits),
        about: "64-32-10 ReLU MLP on the 8x8 digits (PyTorch baseline: 0.889-0.894)",
        defaults: Defaults {
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            momentum: 0.9,
            batch_size: 32,
            epochs: 30,
            init: Init::TorchDefault,
            log_every: 1,
        },
        tensors: &[LayerNames { torch: "fc1", keras: "dense" }, LayerNames { torch: "fc2", keras: "dense_1" }],
    },
    model! {
        name: "mnist-mlp",
        net: zoo::MnistMlp,
        task: classify,
        data: Data::Images(DatasetKind::Mnist),
        about: "784-128-10 ReLU MLP on MNIST (PyTorch baseline on the 8k/2k subset: 0.9615)",
        defaults: Defaults {
            optimizer: OptimizerKind::Momentum,
            lr: 0.05,
            momentum: 0.9,
            batch_size: 32,
            epochs: 10,
            init: Init::TorchDefault,
            log_every: 1,
        },
        tensors: &[LayerNames { torch: "fc1", keras: "dense" }, LayerNames { torch: "fc2", keras: "dense_1" }],
    },
    model! {
        name: "mnist-cnn",
        net: zoo::MnistCnn,
        task: classify,
        data: Data::Images(DatasetKind::Mnist),
        about: "Keras mnist_cnn: conv 32, conv 64, max-pool, dropout, dense 128, dense 10 (PyTorch baseline: 0.9425 after 3 epochs, 0.9790 after 12)",
        defaults: Defaults {
            optimizer: OptimizerKind::Adadelta,
            lr: 1.0,
            momentum: 0.9,
            batch_size: 128,
            epochs: 12,
            init: Init::TorchDefault,
            log_every: 1,
        },
    },
    model! {
        name: "mnist-cnn-tiny",
        net: zoo::MnistCnnTiny,
        task: classify,
        data: Data::Images(DatasetKind::Mnist),
        about: "CNN whose training state with Adam fits in 96 KB: conv 6 s2, conv 24 s2, max-pool, dense 10 (0.9695)",
        defaults: Defaults {
            optimizer: OptimizerKind::Adam,
            lr: 2e-3,
            momentum: 0.9,
            batch_size: 32,
            epochs: 20,
            init: Init::HeUniform,
            log_every: 1,
        },
    },
    model! {
        name: "digits-bn-mlp",
        net: zoo::DigitsBnMlp,
        task: classify,
        data: Data::Images(DatasetKind::Digits),
        about: "64-32-10 MLP with BatchNorm1d after the hidden layer (PyTorch, tools/bn_reference.py: 0.9222)",
        defaults: Defaults {
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            momentum: 0.9,
            batch_size: 32,
            epochs: 30,
            init: Init::TorchDefault,
            log_every: 1,
        },
    },
    model! {
        name: "mnist-bn-cnn",
        net: zoo::MnistBnCnn,
        task: classify,
        data: Data::Images(DatasetKind::Mnist),
        about: "Conv-BN-ReLU CNN: conv 8 s2, BatchNorm2d, max-pool, dense 10 (PyTorch, tools/bn_reference.py: 0.9450)",
        defaults: Defaults {
            optimizer: OptimizerKind::Adam,
            lr: 2e-3,
            momentum: 0.9,
            batch_size: 32,
            epochs: 5,
            init: Init::TorchDefault,
            log_every: 1,
        },
    },
    model! {
        name: "waves-cnn1d",
        net: zoo::WavesCnn1d,
        task: classify,
        data: Data::Images(DatasetKind::Waves),
        about: "1-D CNN on the synthesised waves time series: conv1d 8, 16, 16, global average, dense 10 (PyTorch: 0.7860)",
        defaults: Defaults {
            optimizer: OptimizerKind::Adam,
            lr: 3e-3,
            momentum: 0.9,
            batch_size: 32,
            epochs: 80,
            init: Init::TorchDefault,
            log_every: 10,
        },
    },
];

/// The model called `name`.
#[must_use]
pub fn find(name: &str) -> Option<&'static Model> {
    MODELS.iter().find(|m| m.name == name)
}

/// The names of all models, comma-separated.
#[must_use]
pub fn names() -> String {
    MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}
