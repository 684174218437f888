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

/// One quantised convolution with fused ReLU, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantConv {
    /// Filters, OHWI, int8.
    pub weight: Vec<i8>,
    /// Per-channel filter scales.
    pub weight_scales: Vec<f32>,
    /// Biases in accumulator units.
    pub bias: Vec<i32>,
    /// Per-channel multipliers.
    pub multipliers: Vec<QuantizedMultiplier>,
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// Output scale.
    pub output_scale: f32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// Clamp (the fused ReLU).
    pub activation: (i32, i32),
}

/// The int8 backbone and the pre-trained head, owned (what the generated statics hold).
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Quantised pixel values.
    pub input_lut: [i8; 256],
    /// Input scale and zero point.
    pub input_quant: (f32, i32),
    /// conv 1.
    pub conv1: QuantConv,
    /// conv 2.
    pub conv2: QuantConv,
    /// The head, its columns in the backbone's NHWC feature order.
    pub head: Box<Head>,
    /// Test accuracy of the f32 network on the pre-training classes of the test set.
    pub float_accuracy: f32,
}

/// Asymmetric int8 parameters for values in `[lo, hi]` widened to hold 0 (TFLite's converter).
#[must_use]
pub fn activation_quant(lo: f32, hi: f32) -> (f32, i32) {
    let (lo, hi) = (f64::from(lo.min(0.0)), f64::from(hi.max(0.0)));
    let scale = if hi - lo > 1e-12 { (hi - lo) / 255.0 } else { 1.0 / 255.0 };
    let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0);
    (scale as f32, zero_point as i32)
}

/// Symmetric per-channel int8 weights of `rows` rows.
fn quantize_weights(w: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let per_row = w.len() / rows.max(1);
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(rows);
    for row in w.chunks(per_row.max(1)) {
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 / 127.0 };
        q.extend(row.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8));
        scales.push(scale);
    }
    (q, scales)
}

/// Quantises a convolution `[co][ci][k][k]` with input `(s_in, zp_in)`, output range `range`
/// (after the fused ReLU) and the mean of each input channel (bias correction).
fn quantize_conv(
    w: &[f32],
    b: &[f32],
    co: usize,
    ci: usize,
    k: usize,
    (s_in, zp_in): (f32, i32),
    range: (f32, f32),
    channel_mean: &[f64],
) -> QuantConv {
    let (q, scales) = quantize_weights(w, co);
    let per_row = ci * k * k;
    // Bias correction: the mean error the rounding puts into each output.
    let bias: Vec<f32> = b
        .iter()
        .enumerate()
        .map(|(o, &bias)| {
            let err: f64 = (0..per_row)
                .map(|t| {
                    let at = o * per_row + t;
                    (f64::from(q[at]) * f64::from(scales[o]) - f64::from(w[at])) * channel_mean[t / (k * k)]
                })
                .sum();
            (f64::from(bias) - err) as f32
        })
        .collect();
    let (s_out, zp_out) = activation_quant(range.0, range.1);
    let qbias = bias
        .iter()
        .zip(&scales)
        .map(|(&v, &s)| (f64::from(v) / (f64::from(s_in) * f64::from(s))).round() as i32)
        .collect();
    let multipliers = scales.iter().map(|&s| QuantizedMultiplier::from_real(effective_scale(s_in, s, s_out))).collect();
    // [O, C, KH, KW] -> [O, KH, KW, C].
    let mut ohwi = Vec::with_capacity(q.len());
    for o in 0..co {
        for y in 0..k {
            for x in 0..k {
                for c in 0..ci {
                    ohwi.push(q[((o * ci + c) * k + y) * k + x]);
                }
            }
        }
    }
    QuantConv {
        weight: ohwi,
        weight_scales: scales,
        bias: qbias,
        multipliers,
        input_offset: -zp_in,
        output_scale: s_out,
        output_offset: zp_out,
        activation: activation_range(FusedActivation::Relu, s_out, zp_out),
    }
}

/// The images of the first `n` of `set` whose label is below `classes`.
fn select(set: &ImageSet, range: std::ops::Range<usize>, classes: u8) -> (Vec<u8>, Vec<u8>) {
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in range {
        if set.labels[i] < classes {
            pixels.extend_from_slice(&set.pixels[i * PIXELS..(i + 1) * PIXELS]);
            labels.push(set.labels[i]);
        }
    }
    (pixels, labels)
}

/// Pre-trains `mnist-cnn-tiny` on the classes below `classes` of the first
/// [`PRETRAIN_IMAGES`] training images: He uniform init, Adam lr 2e-3, batch 32,
/// [`PRETRAIN_EPOCHS`] epochs, seed [`PRETRAIN_SEED`] (the registry's defaults but the epochs).
///
/// # Errors
/// Training errors.
pub fn pretrain(train: &ImageSet, classes: u8) -> Result<Box<MnistCnnTiny>> {
    type Opt = Adam<{ <MnistCnnTiny as Layer>::NUM_PARAMS }>;
    let (pixels, labels) = select(train, 0..PRETRAIN_IMAGES.min(train.len()), classes);
    let data = ByteImages::new(&pixels, &labels, PIXELS, mnist::SCALE, usize::from(classes))?;
    let mut t: Box<Trainer<MnistCnnTiny, Opt>> = Box::new(Trainer::ZERO);
    t.model.init_with(Init::HeUniform, &mut Rng::new(PRETRAIN_SEED));
    let adam = AdamConfig { lr: Schedule::Constant(2e-3), ..AdamConfig::default() };
    t.fit(&adam, &CrossEntropy, &data).epochs(PRETRAIN_EPOCHS).batch_size(32).seed(PRETRAIN_SEED).run()?;
    let mut net = Box::new(MnistCnnTiny::ZERO);
    net.copy_from(&t.model);
    Ok(net)
}

/// Quantises the convolutional part of `net` and reorders its head for the backbone's NHWC
/// features, calibrating on the first [`CALIBRATION_IMAGES`] of `calibration` (pixels).
///
/// # Errors
/// No calibration images.
pub fn quantize_backbone(net: &MnistCnnTiny, calibration: &[u8]) -> Result<Prepared> {
    let n = (calibration.len() / PIXELS).min(CALIBRATION_IMAGES);
    ensure!(n > 0, "no calibration images");
    // Ranges and means of the input and of the two ReLU outputs.
    let (mut r1, mut r2) = ((f32::INFINITY, f32::NEG_INFINITY), (f32::INFINITY, f32::NEG_INFINITY));
    let (mut mean_in, mut mean1) = (0f64, [0f64; 6]);
    let mut x = Box::new([[[0f32; 28]; 28]; 1]);
    let mut acts = Box::new(<MnistCnnTiny as Layer>::Acts::ZERO);
    let mut y = [0f32; 10];
    let mut input_range = (f32::INFINITY, f32::NEG_INFINITY);
    for image in calibration.chunks_exact(PIXELS).take(n) {
        for (xv, &p) in x.as_flattened_mut().as_flattened_mut().iter_mut().zip(image) {
            *xv = f32::from(p) * mnist::SCALE;
            input_range = (input_range.0.min(*xv), input_range.1.max(*xv));
            mean_in += f64::from(*xv);
        }
        net.predict(&x, &mut acts, &mut y);
        let mut k = 0;
        <MnistCnnTiny as Layer>::visit_outputs(&acts, &y, &mut |_, out| {
            match k {
                1 => {
                    for (c, plane) in out.chunks(169).enumerate() {
                        mean1[c] += plane.iter().map(|&v| f64::from(v)).sum::<f64>() / 169.0;
                    }
                    r1 = out.iter().fold(r1, |r, &v| (r.0.min(v), r.1.max(v)));
                }
                3 => r2 = out.iter().fold(r2, |r, &v| (r.0.min(v), r.1.max(v))),
                _ => {}
            }
            k += 1;
        });
    }
    mean_in /= (n * PIXELS) as f64;
    mean1.iter_mut().for_each(|m| *m /= n as f64);
    let input_quant = activation_quant(input_range.0, input_range.1);
    let mut input_lut = [0i8; 256];
    for (p, q) in input_lut.iter_mut().enumerate() {
        let v = p as f32 * mnist::SCALE;
        *q = ((v / input_quant.0).round() as i32 + input_quant.1).clamp(-128, 127) as i8;
    }
    let conv1 = quantize_conv(
        net.a.weight.as_flattened().as_flattened().as_flattened(),
        &net.a.bias,
        6,
        1,
        4,
        input_quant,
        r1,
        &[mean_in],
    );
    let c2 = &net.b.b.a;
    let conv2 = quantize_conv(
        c2.weight.as_flattened().as_flattened().as_flattened(),
        &c2.bias,
        24,
        6,
        3,
        (conv1.output_scale, conv1.output_offset),
        r2,
        &mean1,
    );
    // The head: Flatten<24, 3, 3> is channel-major, the int8 features are NHWC.
    let dense = &net.b.b.b.b.b.b.b;
    let mut head = Box::new(Head::ZERO);
    for (o, row) in dense.weight.iter().enumerate() {
        for c in 0..24 {
            for s in 0..9 {
                head.weight[o][s * 24 + c] = row[c * 9 + s];
            }
        }
    }
    head.bias = dense.bias;
    Ok(Prepared { input_lut, input_quant, conv1, conv2, head, float_accuracy: f32::NAN })
}

/// Pre-trains and quantises the scenario's backbone from the data in `data_dir`.
///
/// # Errors
/// Missing data, training errors.
pub fn prepare(data_dir: &Path, scenario: Scenario) -> Result<Prepared> {
    let data = datasets::load(DatasetKind::Mnist, data_dir)?;
    ensure!(
        data.train.len() >= PRETRAIN_IMAGES + STREAM_IMAGES,
        "{}: {} images, fine-tuning needs {}",
        data.train.images_path.display(),
        data.train.len(),
        PRETRAIN_IMAGES + STREAM_IMAGES
    );
    let classes = scenario.pretrain_classes();
    let net = pretrain(&data.train, classes)?;
    let (calib, _) = select(&data.train, 0..PRETRAIN_IMAGES, classes);
    let mut prepared = quantize_backbone(&net, &calib)?;
    // The f32 network's accuracy on the test images of its classes.
    let (pixels, labels) = select(&data.test, 0..data.test.len(), classes);
    let test = ByteImages::new(&pixels, &labels, PIXELS, mnist::SCALE, usize::from(classes))?;
    let mut t: Box<Trainer<MnistCnnTiny, Sgd>> = Box::new(Trainer::ZERO);
    t.model.copy_from(&net);
    prepared.float_accuracy = t.evaluate(&CrossEntropy, &test)?.accuracy;
    Ok(prepared)
}

fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

fn array<T: Copy + Default, const N: usize>(v: &[T]) -> Result<[T; N]> {
    <[T; N]>::try_from(v).map_err(|_| anyhow!("expected {N} values, got {}", v.len()))
}

impl Prepared {
    /// The backbone as the firmware's statics would hold it, leaked for a `'static` borrow.
    ///
    /// # Errors
    /// Tensors of the wrong size (not from [`quantize_backbone`]).
    pub fn leak(&self) -> Result<&'static MnistBackbone<'static>> {
        type Conv<const CO: usize, const K: usize, const KP: usize> =
            (&'static [[[u32; KP]; K]; CO], &'static [i32; CO], &'static [QuantizedMultiplier; CO]);
        fn conv<const CO: usize, const K: usize, const KP: usize>(c: &QuantConv) -> Result<Conv<CO, K, KP>> {
            let mut w = [[[0u32; KP]; K]; CO];
            ensure!(c.weight.len() == CO * K * 2 * KP, "conv weight of {} values", c.weight.len());
            for (d, &v) in w.as_flattened_mut().as_flattened_mut().iter_mut().zip(&packed(&c.weight)) {
                *d = v;
            }
            Ok((leak(w), leak(array::<i32, CO>(&c.bias)?), leak(array::<QuantizedMultiplier, CO>(&c.multipliers)?)))
        }
        let (w1, b1, m1) = conv::<6, 4, 2>(&self.conv1)?;
        let (w2, b2, m2) = conv::<24, 3, 9>(&self.conv2)?;
        let c1 = &self.conv1;
        let c2 = &self.conv2;
        let backbone: MnistBackbone<'static> = Backbone {
            layers: Int8Chain {
                first: Int8Chain {
                    first: Int8Conv2dValid {
                        weight: w1,
                        bias: b1,
                        multipliers: m1,
                        input_offset: c1.input_offset,
                        output_offset: c1.output_offset,
                        activation_min: c1.activation.0,
                        activation_max: c1.activation.1,
                    },
                    second: Int8Conv2dValid {
                        weight: w2,
                        bias: b2,
                        multipliers: m2,
                        input_offset: c2.input_offset,
                        output_offset: c2.output_offset,
                        activation_min: c2.activation.0,
                        activation_max: c2.activation.1,
                    },
                },
                second: Pool::default(),
            },
            input_lut: leak(self.input_lut),
            feature_scale: c2.output_scale,
            feature_zero_point: c2.output_offset,
        };
        Ok(leak(backbone))
    }
}

/// OHWI int8 filters packed in pairs of taps ([`tinytrain::finetune::pack_pairs`]).
fn packed(weight: &[i8]) -> Vec<u32> {
    weight.chunks_exact(2).map(|p| tinytrain::finetune::pack_pairs(i16::from(p[0]), i16::from(p[1]))).collect()
}

fn emit_ints<T: std::fmt::Display>(out: &mut String, values: &[T], dims: &[usize], indent: usize) {
    if dims.len() == 1 {
        out.push('[');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push_str(if i % 24 == 0 { ",\n" } else { ", " });
                if i % 24 == 0 {
                    out.push_str(&" ".repeat(indent + 1));
                }
            }
            let _ = write!(out, "{v}");
        }
        out.push(']');
        return;
    }
    let inner: usize = dims[1..].iter().product();
    out.push('[');
    for (i, chunk) in values.chunks(inner).enumerate() {
        if i > 0 {
            out.push_str(",\n");
            out.push_str(&" ".repeat(indent + 1));
        }
        emit_ints(out, chunk, &dims[1..], indent + 1);
    }
    out.push(']');
}

fn emit_conv(out: &mut String, name: &str, c: &QuantConv, [co, k, ci]: [usize; 3]) {
    let kp = k * ci / 2;
    let _ = write!(out, "static {name}_WEIGHT: [[[u32; {kp}]; {k}]; {co}] = ");
    let words: Vec<String> = packed(&c.weight).iter().map(|w| format!("{w:#010x}")).collect();
    emit_ints(out, &words, &[co, k, kp], 0);
    let _ = write!(out, ";\nstatic {name}_BIAS: [i32; {co}] = ");
    emit_ints(out, &c.bias, &[co], 0);
    let _ = writeln!(out, ";\nstatic {name}_MULTIPLIERS: [QuantizedMultiplier; {co}] = [");
    for m in &c.multipliers {
        let _ = writeln!(out, "    QuantizedMultiplier {{ multiplier: {}, shift: {} }},", m.multiplier, m.shift);
    }
    out.push_str("];\n");
}

fn emit_conv_layer(out: &mut String, name: &str, c: &QuantConv, indent: &str) {
    let _ = writeln!(out, "{indent}Int8Conv2dValid {{");
    let _ = writeln!(out, "{indent}    weight: &{name}_WEIGHT,");
    let _ = writeln!(out, "{indent}    bias: &{name}_BIAS,");
    let _ = writeln!(out, "{indent}    multipliers: &{name}_MULTIPLIERS,");
    let _ = writeln!(out, "{indent}    input_offset: {},", c.input_offset);
    let _ = writeln!(out, "{indent}    output_offset: {},", c.output_offset);
    let _ = writeln!(out, "{indent}    activation_min: {},", c.activation.0);
    let _ = writeln!(out, "{indent}    activation_max: {},", c.activation.1);
    let _ = write!(out, "{indent}}}");
}

/// The Rust source of `firmware/app/src/finetune_weights.rs`: both scenarios' backbones (int8
/// statics in flash) and pre-trained heads.
#[must_use]
pub fn emit_rust(scenarios: &[(Scenario, &Prepared)]) -> String {
    let mut out = String::new();
    out.push_str(
        "//! The frozen int8 backbones and pre-trained heads of the fine-tuning scenarios, generated by\n\
         //! `tinytrain-sim finetune --emit-rust firmware/app/src/finetune_weights.rs` (do not edit: a\n\
         //! host test pre-trains again and compares this file byte for byte).\n//!\n",
    );
    for (s, p) in scenarios {
        let _ = writeln!(
            out,
            "//! {}: pre-trained on classes 0-{}, f32 test accuracy on them {:.4}; input scale {:e}, zero point {}; \
             feature scale {:e}, zero point {}.",
            s.prefix(),
            s.pretrain_classes() - 1,
            p.float_accuracy,
            p.input_quant.0,
            p.input_quant.1,
            p.conv2.output_scale,
            p.conv2.output_offset
        );
    }
    out.push_str(
        "\nuse tinytrain::finetune::{Backbone, Int8Conv2dValid};\nuse tinytrain::int8::{Int8Chain, QuantizedMultiplier};\n\n\
         use crate::finetune::{Head, MnistBackbone, Pool, head_from_bits};\n",
    );
    for (s, p) in scenarios {
        let name = s.prefix();
        let _ = write!(out, "\nstatic {name}_INPUT: [i8; 256] = ");
        emit_ints(&mut out, &p.input_lut, &[256], 0);
        out.push_str(";\n");
        emit_conv(&mut out, &format!("{name}_CONV1"), &p.conv1, [6, 4, 1]);
        emit_conv(&mut out, &format!("{name}_CONV2"), &p.conv2, [24, 3, 6]);
        let _ = writeln!(out, "\n/// The {} scenario's int8 backbone.", name.to_lowercase());
        let _ = writeln!(out, "pub static {name}_BACKBONE: MnistBackbone<'static> = Backbone {{");
        out.push_str("    layers: Int8Chain {\n        first: Int8Chain {\n            first: ");
        emit_conv_layer(&mut out, &format!("{name}_CONV1"), &p.conv1, "            ");
        out.push_str(",\n            second: ");
        emit_conv_layer(&mut out, &format!("{name}_CONV2"), &p.conv2, "            ");
        out.push_str(",\n        },\n        second: Pool {},\n    },\n");
        let _ = writeln!(out, "    input_lut: &{name}_INPUT,");
        let _ = writeln!(out, "    feature_scale: f32::from_bits({:#010x}),", p.conv2.output_scale.to_bits());
        let _ = writeln!(out, "    feature_zero_point: {},\n}};", p.conv2.output_offset);
        let _ = writeln!(
            out,
            "\n/// The {} scenario's pre-trained head (columns in NHWC feature order).",
            name.to_lowercase()
        );
        let _ = writeln!(out, "pub static {name}_HEAD: Head = head_from_bits(&{name}_HEAD_WEIGHT, &{name}_HEAD_BIAS);");
        let bits: Vec<String> = p.head.weight.as_flattened().iter().map(|v| format!("{:#010x}", v.to_bits())).collect();
        let _ = write!(out, "const {name}_HEAD_WEIGHT: [[u32; {FEATURES}]; 10] = ");
        emit_ints(&mut out, &bits, &[10, FEATURES], 0);
        out.push_str(";\n");
        let bits: Vec<String> = p.head.bias.iter().map(|v| format!("{:#010x}", v.to_bits())).collect();
        let _ = write!(out, "const {name}_HEAD_BIAS: [u32; 10] = ");
        emit_ints(&mut out, &bits, &[10], 0);
        out.push_str(";\n");
    }
    out
}

/// The stream, the firmware's test slice and the whole test set, packed as the firmware's
/// `build.rs` packs them.
#[derive(Debug, Clone)]
pub struct FineTuneSets {
    /// The stream's images (training images [`PRETRAIN_IMAGES`]..+[`STREAM_IMAGES`]).
    pub stream: Vec<u8>,
    /// The first [`TEST_IMAGES`] test images.
    pub test: Vec<u8>,
    /// All test images.
    pub test_all: Vec<u8>,
}

fn pack(set: &ImageSet, range: std::ops::Range<usize>) -> Result<Vec<u8>> {
    ensure!(set.len() >= range.end, "{}: {} images, need {}", set.images_path.display(), set.len(), range.end);
    let pixels = &set.pixels[range.start * PIXELS..range.end * PIXELS];
    let mut out = vec![0u8; mnist::packed_len(pixels, range.len())?];
    mnist::pack(pixels, &set.labels[range], &mut out)?;
    Ok(out)
}

/// Loads and packs the fine-tuning sets from `data_dir`.
///
/// # Errors
/// Missing or short data.
pub fn pack_sets(data_dir: &Path) -> Result<FineTuneSets> {
    let data = datasets::load(DatasetKind::Mnist, data_dir)?;
    Ok(FineTuneSets {
        stream: pack(&data.train, PRETRAIN_IMAGES..PRETRAIN_IMAGES + STREAM_IMAGES)?,
        test: pack(&data.test, 0..TEST_IMAGES)?,
        test_all: pack(&data.test, 0..data.test.len())?,
    })
}

/// The simulator's interrupt: every wait delivers the next sample.
struct SimArrivals<'d, 'q> {
    feeder: Feeder<'d>,
    inlet: Inlet<'q, Sample>,
}

impl Arrivals for SimArrivals<'_, '_> {
    fn start(&mut self, first: u32) {
        self.feeder.next = self.feeder.next.saturating_add(first);
    }
    fn wait(&mut self) {
        self.feeder.tick(&mut self.inlet);
    }
}

/// A finished simulated fine-tuning run.
pub struct SimFineTune {
    /// What the app reported.
    pub fine: FineTuneOutcome,
    /// The head after fine-tuning.
    pub head: Box<Head>,
    /// The head's accuracy on all test images (shifted as the scenario says), before and after.
    pub test_all: (Eval, Eval),
    /// The batches: the stream indices each optimizer step trained on.
    pub batches: Vec<Vec<u32>>,
    /// The board as the run left it.
    pub board: SimBoard,
}

/// Records the batches and passes the rest on.
struct Recorder<'r, R> {
    inner: &'r mut R,
    batches: Vec<Vec<u32>>,
}

impl<R: Report> Report for Recorder<'_, R> {
    fn start(&mut self, info: &tinytrain_firmware_app::StartInfo) {
        self.inner.start(info);
    }
    fn epoch(&mut self, record: &EpochRecord) {
        self.inner.epoch(record);
    }
    fn saved(&mut self, len: u32, crc: u32) {
        self.inner.saved(len, crc);
    }
    fn finish(&mut self, outcome: &tinytrain_firmware_app::Outcome) {
        self.inner.finish(outcome);
    }
}

impl<R: FineTuneReport> FineTuneReport for Recorder<'_, R> {
    fn batch(&mut self, step: u32, samples: &[u32]) {
        self.batches.push(samples.to_vec());
        self.inner.batch(step, samples);
    }
    fn fine_tuned(&mut self, outcome: &FineTuneOutcome) {
        self.inner.fine_tuned(outcome);
    }
}

/// Runs [`run_finetune`](tinytrain_firmware_app::finetune::run_finetune) on a simulated board over `backbone` from `head_init`, with the
/// stream and test sets of `sets`.
///
/// # Errors
/// When the packed sets do not read or the app fails.
pub fn simulate(
    backbone: &'static MnistBackbone<'static>,
    head_init: &Head,
    sets: &FineTuneSets,
    cfg: &FineTuneConfig,
    report: &mut impl FineTuneReport,
) -> Result<SimFineTune> {
    match simulate_boot(backbone, head_init, sets, cfg, SimFlash::new(crate::board::SIM_FLASH_BYTES), None, report)? {
        SimBoot::Finished(run) => Ok(*run),
        SimBoot::PowerCut { .. } => Err(anyhow!("a power cut without one asked for")),
    }
}

/// How a simulated boot of [`run_finetune_boot`] ended.
pub enum SimBoot {
    /// The run, finished.
    Finished(Box<SimFineTune>),
    /// Power was cut after `steps` optimizer steps of the boot; `flash` is as it was left.
    PowerCut {
        /// Steps of the boot.
        steps: u32,
        /// The flash.
        flash: SimFlash<4, 4096>,
    },
}

/// One boot of [`run_finetune_boot`] on a simulated board whose flash is `flash` (as a previous
/// boot left it), cut after `cut_after_steps` optimizer steps if given.
///
/// # Errors
/// When the packed sets do not read or the app fails.
#[allow(clippy::too_many_arguments)]
pub fn simulate_boot(
    backbone: &'static MnistBackbone<'static>,
    head_init: &Head,
    sets: &FineTuneSets,
    cfg: &FineTuneConfig,
    flash: SimFlash<4, 4096>,
    cut_after_steps: Option<u32>,
    report: &mut impl FineTuneReport,
) -> Result<SimBoot> {
    let stream = PackedMnist::new(&sets.stream).context("packed stream")?;
    let test = PackedMnist::new(&sets.test).context("packed test slice")?;
    let test_all = PackedMnist::new(&sets.test_all).context("packed test set")?;
    let mut board = sim_board_with(flash);
    let mut tuner: Box<Tuner<'static>> = Box::new(Tuner::new(backbone));
    let mut replay = Box::new(HeadReplay::new());
    let counters = StreamCounters::new();
    let mut queue: Box<SampleQueue> = Box::new(SampleQueue::new());
    let (producer, mut consumer) = queue.split();
    let feeder = Feeder {
        data: stream,
        next: cfg.first,
        end: cfg.first + cfg.stream,
        shift: cfg.shift,
        input_lut: backbone.input_lut,
    };
    let mut arrivals = SimArrivals { feeder, inlet: Inlet::new(producer, &counters) };
    let mut recorder = Recorder { inner: report, batches: Vec::new() };
    let boot = run_finetune_boot(
        &mut board,
        &mut tuner,
        &mut replay,
        &mut consumer,
        &counters,
        &mut arrivals,
        head_init,
        &test,
        cfg,
        cut_after_steps,
        &mut recorder,
    )
    .map_err(|e| anyhow!("fine-tuning app: {e}"))?;
    let fine = match boot {
        FineTuneBoot::Finished(fine) => fine,
        FineTuneBoot::PowerCut { steps } => return Ok(SimBoot::PowerCut { steps, flash: board.flash }),
    };
    let n = tinytrain::data::Dataset::<mnist::Image, usize>::len(&test_all) as u32;
    let after = evaluate(&mut tuner, &test_all, n, cfg.shift).map_err(|e| anyhow!("evaluation: {e}"))?;
    let head = Box::new(tuner.trainer.model.clone());
    tuner.trainer.model.copy_from(head_init);
    let before = evaluate(&mut tuner, &test_all, n, cfg.shift).map_err(|e| anyhow!("evaluation: {e}"))?;
    let batches = recorder.batches.iter().map(|b| b.iter().map(|&s| cfg.first + s).collect()).collect();
    Ok(SimBoot::Finished(Box::new(SimFineTune { fine, head, test_all: (before, after), batches, board })))
}

/// [`simulate`] for a scenario: over `prepared` (pre-trained and quantised in this process) or,
/// without it, over the generated statics the firmware links.
///
/// # Errors
/// As [`simulate`] and [`Prepared::leak`].
pub fn simulate_scenario(
    data_dir: &Path,
    scenario: Scenario,
    prepared: Option<&Prepared>,
    report: &mut impl FineTuneReport,
) -> Result<SimFineTune> {
    let sets = pack_sets(data_dir)?;
    let (backbone, head) = match prepared {
        Some(p) => (p.leak()?, &*p.head),
        None => scenario.statics(),
    };
    simulate(backbone, head, &sets, &scenario.config(), report)
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
