//! tinytrain-sim: the desktop side of tinytrain.
//!
//! - [`board`]: the simulated board (LED, virtual clock, flash) that runs the firmware app.
//! - [`finetune`]: fine-tuning over a frozen int8 backbone: pre-training, quantisation, the
//!   generated statics and the simulated run of the firmware app.
//! - [`qemu`]: builds the firmware, runs it in QEMU and compares it with the simulator.
//! - [`idx`]: IDX files (MNIST format), gzipped or not, checked before use.
//! - [`datasets`]: finds the shipped datasets or a full MNIST download in a directory.
//! - [`flash`]: a simulated NOR flash that obeys NOR rules and can lose power at any step.
//! - [`models`]: the registry of models the command line knows, with their baselines'
//!   settings as defaults.
//! - [`optimizers`]: the optimizer chosen at run time, dispatched to compile-time-sized state.
//! - [`tasks`], [`run`]: training and evaluation, generic over network, optimizer and data.
//! - [`interop`]: safetensors in and out under PyTorch or Keras names and layouts, and Rust
//!   source that puts trained weights into flash.
//! - [`split`]: validation data held out of the training data, as Keras does it.
//! - [`csvlog`]: the per-epoch CSV log of `train --log`.
//! - [`predict`]: per-sample predictions and outputs, as text or JSON lines.
//! - [`session`]: a model in memory behind a dyn-safe trait (train, evaluate, predict, tensors
//!   in and out), chosen at run time by name: what the Python bindings (`python/`) drive.
//! - [`plot`]: training curves (`train --plot FILE.svg`).
//! - [`resume`]: training checkpoints that a killed run goes on from, bit for bit.
//! - [`atomic`]: output files checked before any work and written whole or not at all.
//! - [`cli`]: the `tinytrain-sim` command line.
//! - [`spec`], [`text`]: what the work modules know of a model, and small text helpers.
//!
//! Modules form layers with arrows pointing one way: leaves that know nothing of the registry
//! (`idx`, `datasets`, `flash`, `board`, `interop`, `optimizers`, `spec`, `text`, `split`,
//! `csvlog`, `atomic`, `resume`, `plot`), then the work
//! (`run`, `predict`, `session`, `tasks`, `qemu`, `finetune`, taking a [`spec::ModelSpec`] or a
//! scenario), then [`models`] (the
//! registry) and [`cli`] on top.
//!
//! ```no_run
//! use tinytrain_sim::{models, run::TrainOptions};
//! let model = models::find("digits-mlp").unwrap();
//! let outcome = model.train(&TrainOptions::defaults(model), &mut std::io::stdout()).unwrap();
//! assert!(outcome.test.accuracy > 0.88);
//! ```
#![deny(missing_docs)]

pub mod atomic;
pub mod board;
pub mod cli;
pub mod csvlog;
pub mod datasets;
pub mod finetune;
pub mod flash;
pub mod idx;
pub mod interop;
pub mod models;
pub mod optimizers;
pub mod plot;
pub mod predict;
pub mod qemu;
pub mod quantize;
pub mod resume;
pub mod run;
pub mod session;
pub mod spec;
pub mod split;
pub mod tasks;
pub mod text;
pub mod tflite;
