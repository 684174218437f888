//! Fine-tuning over a frozen int8 backbone, the simulator's side: pre-training, quantisation of
//! the backbone, the generated Rust statics the firmware links, and the simulated run of the
//! firmware app's [`run_finetune`](tinytrain_firmware_app::finetune::run_finetune).
//!
//! The reference scenario: `mnist-cnn-tiny` pre-trained on MNIST classes 0-4 (the images of
//! those classes among the first [`PRETRAIN_IMAGES`] of the shipped `mnist8k` training subset),
//! its convolutional part quantised to int8 (per-channel symmetric weights, activations
//! calibrated on [`CALIBRATION_IMAGES`] pre-training images, bias correction: the very filters,
//! biases, scales and zero points [`crate::quantize::quantize`] gives, a test checks), then the
//! head learns all ten classes from a stream of the next [`STREAM_IMAGES`] training images. The shift scenario pre-trains on all ten classes of the same images and
//! streams them rotated by 30 degrees. Both are evaluated on the first [`TEST_IMAGES`] of
//! `mnist2k-test` (what the firmware holds) and on all 2,000.
//!
//! [`emit_rust`] writes the two backbones and pre-trained heads as Rust statics
//! (`firmware/app/src/finetune_weights.rs`); a test checks that pre-training again gives that
//! file byte for byte.
//!
//! ```no_run
//! use tinytrain_sim::finetune::{Scenario, prepare, simulate_scenario};
//! let data = tinytrain_sim::datasets::workspace_data_dir();
//! let prepared = prepare(&data, Scenario::Reference).unwrap();
//! let run = simulate_scenario(&data, Scenario::Reference, Some(&prepared), &mut ()).unwrap();
//! println!("{:.4} -> {:.4}", run.fine.before.accuracy, run.fine.outcome.test.accuracy);
//! ```

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use tinytrain::data::ByteImages;
use tinytrain::finetune::{Backbone, Inlet, Int8Conv2dValid, StreamCounters};
use tinytrain::int8::{FusedActivation, Int8Chain, QuantizedMultiplier, activation_range, effective_scale};
use tinytrain::prelude::*;
use tinytrain::train::Eval;
use tinytrain::zoo::MnistCnnTiny;
use tinytrain_firmware_app::finetune::Pool;
use tinytrain_firmware_app::finetune::{
    Arrivals, FEATURES, Feeder, FineTuneBoot, FineTuneConfig, FineTuneOutcome, FineTuneReport, Head, HeadReplay,
    MnistBackbone, Sample, SampleQueue, Shift, Tuner, evaluate, run_finetune_boot,
};
use tinytrain_firmware_app::finetune_weights;
use tinytrain_firmware_app::mnist::{self, PIXELS, PackedMnist};
use tinytrain_firmware_app::{EpochRecord, Report};

use crate::board::{SimBoard, SimFlash, sim_board_with};
use crate::datasets::{self, DatasetKind, ImageSet};

mod backbone;
mod emit;
mod sim;

pub use backbone::{Prepared, QuantConv, activation_quant, prepare, pretrain, quantize_backbone};
pub use emit::emit_rust;
pub use sim::{FineTuneSets, SimBoot, SimFineTune, pack_sets, simulate, simulate_boot, simulate_scenario};

/// Training images the backbones are pre-trained on (the first of `mnist8k-train`).
pub const PRETRAIN_IMAGES: usize = tinytrain_firmware_app::finetune::STREAM_FIRST;
pub use tinytrain_firmware_app::finetune::{STREAM_IMAGES, TEST_IMAGES};
/// Pre-training images the activation ranges are calibrated on.
pub const CALIBRATION_IMAGES: usize = 1000;
/// Pre-training epochs.
pub const PRETRAIN_EPOCHS: u32 = 4;
/// Pre-training seed (initial weights, shuffling, dropout).
pub const PRETRAIN_SEED: u64 = 7;

/// Which scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Backbone pre-trained on classes 0-4, stream of all ten classes.
    Reference,
    /// Backbone pre-trained on all ten classes, stream and test set rotated by 30 degrees.
    Shift,
}

impl Scenario {
    /// Classes the backbone is pre-trained on.
    #[must_use]
    pub fn pretrain_classes(self) -> u8 {
        match self {
            Scenario::Reference => 5,
            Scenario::Shift => 10,
        }
    }

    /// The fine-tuning run.
    #[must_use]
    pub fn config(self) -> FineTuneConfig {
        match self {
            Scenario::Reference => FineTuneConfig::REFERENCE,
            Scenario::Shift => FineTuneConfig::SHIFT,
        }
    }

    /// Prefix of its statics in the generated source.
    #[must_use]
    pub fn prefix(self) -> &'static str {
        match self {
            Scenario::Reference => "REFERENCE",
            Scenario::Shift => "SHIFT",
        }
    }

    /// The backbone and pre-trained head the firmware links (the generated statics).
    #[must_use]
    pub fn statics(self) -> (&'static MnistBackbone<'static>, &'static Head) {
        match self {
            Scenario::Reference => (&finetune_weights::REFERENCE_BACKBONE, &finetune_weights::REFERENCE_HEAD),
            Scenario::Shift => (&finetune_weights::SHIFT_BACKBONE, &finetune_weights::SHIFT_HEAD),
        }
    }
}

/// What `tinytrain-sim finetune` does.
#[derive(Debug, Clone)]
pub struct FinetuneOptions {
    /// Directory with the MNIST files.
    pub data: std::path::PathBuf,
    /// The scenarios to run.
    pub scenarios: Vec<Scenario>,
    /// Run over the generated statics (what the firmware links) instead of pre-training.
    pub statics: bool,
    /// Write the generated statics of both scenarios here.
    pub emit_rust: Option<std::path::PathBuf>,
    /// Write what the PyTorch baseline needs (weights, schedule) here, one JSON file per
    /// scenario (`FILE` for the reference, `FILE` with `-shift` before the extension for the
    /// other).
    pub export_baseline: Option<std::path::PathBuf>,
}

fn dequantized_conv(c: &QuantConv, s_in: f32, [co, k, ci]: [usize; 3]) -> (Vec<f32>, Vec<f32>) {
    // OHWI int8 -> OIHW f32.
    let mut w = vec![0f32; co * ci * k * k];
    for o in 0..co {
        for y in 0..k {
            for x in 0..k {
                for i in 0..ci {
                    let q = c.weight[((o * k + y) * k + x) * ci + i];
                    w[((o * ci + i) * k + y) * k + x] = f32::from(q) * c.weight_scales[o];
                }
            }
        }
    }
    let b = c
        .bias
        .iter()
        .zip(&c.weight_scales)
        .map(|(&q, &s)| (f64::from(q) * f64::from(s_in) * f64::from(s)) as f32)
        .collect();
    (w, b)
}

fn baseline_json(scenario: Scenario, p: &Prepared, run: &SimFineTune) -> serde_json::Value {
    let cfg = scenario.config();
    let (w1, b1) = dequantized_conv(&p.conv1, p.input_quant.0, [6, 4, 1]);
    let (w2, b2) = dequantized_conv(&p.conv2, p.conv1.output_scale, [24, 3, 6]);
    let rotation: Vec<i64> = tinytrain_firmware_app::finetune::ROTATE_30
        .iter()
        .map(|&m| if m == u16::MAX { -1 } else { i64::from(m) })
        .collect();
    serde_json::json!({
        "scenario": format!("{scenario:?}").to_lowercase(),
        "stream_first": PRETRAIN_IMAGES,
        "stream": STREAM_IMAGES,
        "shift": if cfg.shift == Shift::Rotate30 { "rotate30" } else { "none" },
        "rotation_map": rotation,
        "lr": cfg.lr,
        "momentum": cfg.momentum,
        "conv1": {"weight": w1, "bias": b1},
        "conv2": {"weight": w2, "bias": b2},
        "head": {"weight": p.head.weight.as_flattened(), "bias": p.head.bias},
        "batches": run.batches.iter().map(|b| b.iter().map(|&s| s as usize + PRETRAIN_IMAGES).collect::<Vec<_>>()).collect::<Vec<_>>(),
        "tinytrain": {
            "before_all": run.test_all.0.accuracy,
            "after_all": run.test_all.1.accuracy,
            "before_slice": run.fine.before.accuracy,
            "after_slice": run.fine.outcome.test.accuracy,
            "record_losses": run.fine.outcome.epochs().iter().map(|r| r.loss).collect::<Vec<_>>(),
        },
    })
}

/// Pre-trains and quantises (or takes the generated statics), runs the scenarios on the
/// simulated board and reports, as the module docs say.
///
/// # Errors
/// Missing data, training or app errors, files that cannot be written.
pub fn run_command(opts: &FinetuneOptions, out: &mut dyn std::io::Write) -> Result<()> {
    let summary = tinytrain_firmware_app::finetune::FineTuneSummary::new(
        "fine-tuning head (Dense 216 -> 10, SGD + momentum)",
        std::mem::size_of::<SampleQueue>(),
        tinytrain_firmware_app::finetune::QUEUE_SLOTS,
    );
    write!(out, "{summary}")?;
    let mut prepared = Vec::new();
    let needs_pretraining = !opts.statics || opts.emit_rust.is_some();
    for &scenario in &[Scenario::Reference, Scenario::Shift] {
        if needs_pretraining && (opts.scenarios.contains(&scenario) || opts.emit_rust.is_some()) {
            writeln!(
                out,
                "{scenario:?}: pre-training mnist-cnn-tiny on classes 0-{} of the first {PRETRAIN_IMAGES} training images, {PRETRAIN_EPOCHS} epochs",
                scenario.pretrain_classes() - 1
            )?;
            let p = prepare(&opts.data, scenario)?;
            writeln!(
                out,
                "{scenario:?}: f32 test accuracy on classes 0-{}: {:.4}; quantised: input scale {:e} zero point {}, features scale {:e} zero point {}",
                scenario.pretrain_classes() - 1,
                p.float_accuracy,
                p.input_quant.0,
                p.input_quant.1,
                p.conv2.output_scale,
                p.conv2.output_offset
            )?;
            prepared.push((scenario, p));
        }
    }
    if let Some(path) = &opts.emit_rust {
        let refs: Vec<(Scenario, &Prepared)> = prepared.iter().map(|(s, p)| (*s, p)).collect();
        let text = emit_rust(&refs);
        crate::atomic::write_atomic(path, text.as_bytes())?;
        writeln!(out, "wrote {}", path.display())?;
    }
    for &scenario in &opts.scenarios {
        let p = prepared.iter().find(|(s, _)| *s == scenario).map(|(_, p)| p);
        let run = simulate_scenario(&opts.data, scenario, if opts.statics { None } else { p }, &mut ())?;
        let f = &run.fine;
        writeln!(
            out,
            "{scenario:?} scenario ({}):",
            if opts.statics { "the firmware's statics" } else { "pre-trained here" }
        )?;
        for r in f.outcome.epochs() {
            writeln!(
                out,
                "  record {:>2}: loss {:.4} (bits {:#010x}), accuracy {:.4}",
                r.epoch,
                r.loss,
                r.loss_bits(),
                r.accuracy
            )?;
        }
        writeln!(
            out,
            "  stream: {} offered, {} dropped, {} trained on; {} steps, {} head checkpoints of {} bytes",
            f.offered, f.dropped, f.consumed, f.steps, f.checkpoints, f.checkpoint_bytes
        )?;
        writeln!(
            out,
            "  test accuracy, first {TEST_IMAGES} images: before {:.4}, after {:.4}; all {}: before {:.4}, after {:.4}",
            f.before.accuracy,
            f.outcome.test.accuracy,
            run.test_all.1.samples,
            run.test_all.0.accuracy,
            run.test_all.1.accuracy
        )?;
        writeln!(out, "  head params CRC-32 {:#010x}", f.outcome.params_crc)?;
        if let (Some(path), Some(p)) = (&opts.export_baseline, p) {
            let path = match scenario {
                Scenario::Reference => path.clone(),
                Scenario::Shift => {
                    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                    let ext = path.extension().map(|s| format!(".{}", s.to_string_lossy())).unwrap_or_default();
                    path.with_file_name(format!("{stem}-shift{ext}"))
                }
            };
            let json = baseline_json(scenario, p, &run);
            crate::atomic::write_atomic(&path, serde_json::to_string(&json)?.as_bytes())?;
            writeln!(out, "  wrote {}", path.display())?;
        }
    }
    Ok(())
}
