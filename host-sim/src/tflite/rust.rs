//! Rust source for an int8 `.tflite` model (`tinytrain-sim import model.tflite --rust net.rs`):
//! the network as const-generic [`tinytrain::int8`] layers, its weights, biases and
//! quantisation parameters as `static` data, ready for `include!` in firmware.
//!
//! The source defines `pub type Net` (an [`Int8Chain`](tinytrain::int8::Int8Chain) of the
//! layers), `pub static NET: Net`, and the input's and output's length, scale and zero point
//! (`INPUT_LEN`, `INPUT_SCALE`, `INPUT_ZERO_POINT`, and `OUTPUT_*`) and `MACS`, the
//! multiply-accumulates of one inference. `NET.forward(&input, &mut output)`
//! ([`Int8Layer`](tinytrain::int8::Int8Layer)) runs it; the layers' shapes are checked when it
//! compiles. Every prepare-time constant (multipliers and shifts, activation ranges, the
//! softmax's) is computed here, as TFLite's `Prepare` computes it, so the device only runs
//! the kernels.
//!
//! Operators, int8 in and out, one input and one output, each operator reading the one
//! before: FULLY_CONNECTED, CONV_2D and MAX_POOL_2D / AVERAGE_POOL_2D (dilation 1),
//! DEPTHWISE_CONV_2D with depth multiplier 1 or one input channel (written as the CONV_2D it
//! is, its filter transposed to OHWI), RESHAPE (nothing: the layers pass flat arrays) and
//! SOFTMAX. Anything else is refused in one line.
//!
//! FULLY_CONNECTED's requantisation follows [`FcRequant`]: by default TensorFlow 2.21's
//! reference rule (`round(acc * scale)` in `f64`) done exactly in integers
//! ([`ExactScale`](tinytrain::int8::ExactScale)), so the device gives the reference
//! interpreter's outputs bit for bit at the cost of one `SMLAL`.
//!
//! ```no_run
//! use tinytrain_sim::tflite::{FcRequant, load, rust_source};
//! let graph = load(&std::fs::read("hello_world_int8.tflite").unwrap()).unwrap();
//! let source = rust_source(&graph, "hello_world_int8.tflite", FcRequant::Exact).unwrap();
//! std::fs::write("net.rs", source).unwrap();
//! ```

use std::fmt::{Display, Write as _};

use anyhow::{Context as _, Result, bail};
use tinytrain::int8::{
    ExactScale, FusedActivation, QuantizedMultiplier, ShiftedMultiplier, SoftmaxParams, activation_range,
    effective_scale, fully_connected_real_multiplier, per_channel_multipliers,
};

use super::graph::{Activation, DType, Graph, Op, OpKind, Padding, Tensor};
use crate::text::thousands;

/// How the device rescales FULLY_CONNECTED's accumulators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FcRequant {
    /// TensorFlow 2.21's reference rule, `round(acc * scale)` in `f64`, computed exactly with
    /// a 32 x 32 multiply ([`ExactScale`]): the outputs of TFLite's `BUILTIN_REF` interpreter
    /// and of `tinytrain-sim predict`.
    #[default]
    Exact,
    /// TensorFlow Lite Micro's fixed-point multiplier (`MultiplyByQuantizedMultiplier`): the
    /// outputs of TFLM; they differ from the reference rule's by one in rare cases.
    Tflm,
    /// The reference rule in `f64` on the device (software floating point on a Cortex-M4:
    /// the same outputs as `exact`, slowly).
    Float,
}

/// Operators `--rust` writes.
pub const RUST_OPS: &str = "FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D (depth multiplier 1 or one input channel), \
                            MAX_POOL_2D, AVERAGE_POOL_2D, RESHAPE, SOFTMAX";

/// One layer of the generated network.
struct Layer {
    /// Its type, e.g. `tinytrain::int8::Int8Dense<'static, 16, 16>`.
    ty: String,
    /// Its value.
    init: String,
    /// Flat output length.
    out_len: usize,
    /// Its `static` tables.
    statics: Vec<String>,
    /// A line for the header.
    about: String,
    /// Bytes of its tables in flash.
    flash: usize,
    /// Its multiply-accumulates (every filter tap, padding included, as usually counted).
    macs: u64,
}

/// Rust source for `graph`, read from `file` (named in the header).
///
/// # Errors
/// An operator outside [`RUST_OPS`], a graph that is not one chain of operators from one int8
/// input to one int8 output, batches other than 1, dilations other than 1, or quantisation
/// parameters TFLite's `Prepare` would refuse.
pub fn rust_source(graph: &Graph, file: &str, fc_requant: FcRequant) -> Result<String> {
    let base = std::path::Path::new(file).file_name().map_or(file.into(), |n| n.to_string_lossy());
    generated_by(graph, &format!("import {base} --rust"), fc_requant)
}

/// [`rust_source`] with the header naming `command` (the `tinytrain-sim` arguments that wrote
/// it, e.g. `quantize sine --weights sine.ttw --rust`).
///
/// # Errors
/// As [`rust_source`].
pub fn generated_by(graph: &Graph, command: &str, fc_requant: FcRequant) -> Result<String> {
    let (Some(input), Some(output)) = (graph.input(0), graph.output(0)) else {
        bail!("the model has no input or no output");
    };
    if graph.inputs.len() != 1 || graph.outputs.len() != 1 {
        bail!(
            "--rust writes models with one input and one output (this one has {} and {})",
            graph.inputs.len(),
            graph.outputs.len()
        );
    }
    for (what, t) in [("input", input), ("output", output)] {
        if t.dtype != DType::I8 {
            bail!("--rust writes int8 models: the {what} is {}", t.type_and_shape());
        }
    }
    let mut layers = Vec::new();
    let mut current = graph.inputs[0];
    for op in &graph.ops {
        let ctx = || format!("operator {} ({})", op.index, op.kind.name());
        if op.input(0) != Some(current) {
            bail!("{}: --rust writes chains of operators, each reading the one before", ctx());
        }
        if let Some(layer) = layer(graph, op, layers.len(), fc_requant).with_context(ctx)? {
            layers.push(layer);
        }
        current = op.output();
    }
    if current != graph.outputs[0] {
        bail!("the last operator does not write the model's output");
    }
    if layers.is_empty() {
        bail!("the model has no layer to write (only reshapes)");
    }
    Ok(render(command, fc_requant, input, output, &layers))
}

fn render(command: &str, fc_requant: FcRequant, input: &Tensor, output: &Tensor, layers: &[Layer]) -> String {
    let (in_scale, in_zp) = qparams(input);
    let (out_scale, out_zp) = qparams(output);
    let flash: usize = layers.iter().map(|l| l.flash).sum();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// Generated by `tinytrain-sim {command}` (FULLY_CONNECTED requantisation: {fc_requant:?}); do not edit."
    );
    let macs: u64 = layers.iter().map(|l| l.macs).sum();
    let _ = writeln!(
        s,
        "// {} layers, {} multiply-accumulates, {} bytes of tables in flash:",
        layers.len(),
        thousands(macs as usize),
        thousands(flash)
    );
    for l in layers {
        let _ = writeln!(s, "//   {}", l.about);
    }
    let _ = writeln!(s, "// Run it with `NET.forward(&input, &mut output)` (`tinytrain::int8::Int8Layer` in scope).");
    s.push('\n');
    // The chain type, nested to the right: Chain<A, Chain<B, C, m2>, m1>.
    let mut ty = layers[layers.len() - 1].ty.clone();
    let mut init = layers[layers.len() - 1].init.clone();
    for l in layers.iter().rev().skip(1) {
        ty = format!("tinytrain::int8::Int8Chain<{}, {ty}, {}>", l.ty, l.out_len);
        init = format!(
            "tinytrain::int8::Int8Chain {{\n    first: {},\n    second: {},\n}}",
            indent(&l.init, 4),
            indent(&init, 4)
        );
    }
    let _ = writeln!(
        s,
        "/// The network: {}.",
        layers.iter().map(|l| l.about.split(':').next().unwrap_or("")).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(s, "#[rustfmt::skip]\npub type Net = {ty};\n");
    let _ = writeln!(s, "/// Input elements (int8, {}).", input.type_and_shape());
    let _ = writeln!(s, "pub const INPUT_LEN: usize = {};", input.len());
    let _ = writeln!(s, "/// Input scale: `real = INPUT_SCALE * (q - INPUT_ZERO_POINT)`.");
    let _ = writeln!(
        s,
        "#[allow(clippy::excessive_precision, clippy::unreadable_literal)]\npub const INPUT_SCALE: f32 = {in_scale:?};"
    );
    let _ = writeln!(s, "/// Input zero point.\npub const INPUT_ZERO_POINT: i32 = {in_zp};");
    let _ = writeln!(s, "/// Output elements (int8, {}).", output.type_and_shape());
    let _ = writeln!(s, "pub const OUTPUT_LEN: usize = {};", output.len());
    let _ = writeln!(s, "/// Output scale.");
    let _ = writeln!(
        s,
        "#[allow(clippy::excessive_precision, clippy::unreadable_literal)]\npub const OUTPUT_SCALE: f32 = {out_scale:?};"
    );
    let _ = writeln!(s, "/// Output zero point.\npub const OUTPUT_ZERO_POINT: i32 = {out_zp};");
    let _ = writeln!(
        s,
        "/// Multiply-accumulates of one inference (filter taps in the padding included).\npub const MACS: u64 = {};\n",
        thousands(macs as usize).replace(',', "_")
    );
    for l in layers {
        for st in &l.statics {
            s.push_str(st);
            s.push('\n');
        }
    }
    let _ = writeln!(s, "/// The network, its tables in flash.");
    let _ = writeln!(
        s,
        "#[rustfmt::skip]\n#[allow(clippy::unreadable_literal, clippy::excessive_precision)]\npub static NET: Net = {init};"
    );
    s
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .enumerate()
        .map(|(i, l)| if i == 0 { l.to_owned() } else { format!("{pad}{l}") })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Scale and zero point of a per-tensor quantised tensor.
fn qparams(t: &Tensor) -> (f32, i32) {
    t.quant.as_ref().map_or((0.0, 0), |q| (q.scale(), q.zero_point() as i32))
}

fn fused(a: Activation) -> FusedActivation {
    match a {
        Activation::None => FusedActivation::None,
        Activation::Relu => FusedActivation::Relu,
        Activation::Relu6 => FusedActivation::Relu6,
    }
}

/// `[[i8; I]; O]` for dims `[O, I]`.
fn array_type(elem: &str, dims: &[usize]) -> String {
    dims.iter().rev().fold(elem.to_owned(), |t, d| format!("[{t}; {d}]"))
}

/// A nested array literal of `values` with `dims`, the innermost rows wrapped.
fn array_literal<T: Display>(values: &[T], dims: &[usize], depth: usize) -> String {
    let pad = "    ".repeat(depth + 1);
    let close = "    ".repeat(depth);
    match dims {
        [] | [_] => {
            let items: Vec<String> = values.iter().map(ToString::to_string).collect();
            let one_line = format!("[{}]", items.join(", "));
            if one_line.len() + depth * 4 <= 110 {
                return one_line;
            }
            let lines: Vec<String> = items.chunks(16).map(|c| format!("{pad}{}", c.join(", "))).collect();
            format!("[\n{},\n{close}]", lines.join(",\n"))
        }
        [n, rest @ ..] => {
            let inner: usize = rest.iter().product();
            let rows: Vec<String> = (0..*n)
                .map(|i| format!("{pad}{}", array_literal(&values[i * inner..(i + 1) * inner], rest, depth + 1)))
                .collect();
            format!("[\n{},\n{close}]", rows.join(",\n"))
        }
    }
}

fn static_array<T: Display>(name: &str, elem: &str, dims: &[usize], values: &[T], doc: &str) -> String {
    format!(
        "/// {doc}\n#[rustfmt::skip]\n#[allow(clippy::unreadable_literal)]\nstatic {name}: {} = {};\n",
        array_type(elem, dims),
        array_literal(values, dims, 0)
    )
}

fn multiplier_literal(m: QuantizedMultiplier) -> String {
    format!("tinytrain::int8::QuantizedMultiplier {{ multiplier: {}, shift: {} }}", m.multiplier, m.shift)
}

fn shifted_literal(m: ShiftedMultiplier) -> String {
    format!(
        "tinytrain::int8::ShiftedMultiplier {{ multiplier: {}, right_shift_less_one: {} }}",
        m.multiplier, m.right_shift_less_one
    )
}

fn exact_literal(e: ExactScale) -> String {
    format!("tinytrain::int8::ExactScale {{ multiplier: {}, shift: {} }}", e.multiplier, e.shift)
}

/// An int8 constant tensor's values.
fn i8_data<'g>(graph: &'g Graph, op: &Op, k: usize, what: &str) -> Result<(&'g Tensor, &'g [i8])> {
    let t = op.input(k).map(|i| &graph.tensors[i]).with_context(|| format!("no {what}"))?;
    match &t.data {
        Some(super::graph::Data::I8(v)) => Ok((t, v)),
        _ => bail!("the {what} must be constant int8 (it is {})", t.type_and_shape()),
    }
}

/// The optional int32 bias.
fn bias_data<'g>(graph: &'g Graph, op: &Op) -> Result<Option<&'g [i32]>> {
    let Some(b) = op.input(2) else { return Ok(None) };
    match &graph.tensors[b].data {
        Some(super::graph::Data::I32(v)) => Ok(Some(v)),
        _ => bail!("the bias must be constant int32 (it is {})", graph.tensors[b].type_and_shape()),
    }
}

fn weight_scales(w: &Tensor) -> Vec<f32> {
    w.quant.as_ref().map_or_else(Vec::new, |q| q.scale.clone())
}

/// The layer of one operator (`None` for a RESHAPE).
#[allow(clippy::too_many_lines)] // one arm per operator, read top to bottom
fn layer(graph: &Graph, op: &Op, index: usize, fc_requant: FcRequant) -> Result<Option<Layer>> {
    let x = &graph.tensors[op.input(0).unwrap_or(0)];
    let y = &graph.tensors[op.output()];
    if x.dtype != DType::I8 || y.dtype != DType::I8 {
        bail!("--rust writes int8 operators: {} to {}", x.type_and_shape(), y.type_and_shape());
    }
    let (sx, zx) = qparams(x);
    let (so, zo) = qparams(y);
    let name = format!("L{index}");
    let range = |a: Activation| activation_range(fused(a), so, zo);
    Ok(Some(match &op.kind {
        OpKind::Reshape => return Ok(None),
        OpKind::FullyConnected { activation, .. } => {
            let (w, weights) = i8_data(graph, op, 1, "weights")?;
            let (o, i) = (w.shape[0], w.shape.get(1).copied().unwrap_or(1));
            if x.len() != i || y.len() != o {
                bail!("--rust writes batch 1: input {} for {o} x {i} weights", x.type_and_shape());
            }
            let bias = bias_data(graph, op)?;
            let (amin, amax) = range(*activation);
            let scales = weight_scales(w);
            if w.quant.as_ref().is_some_and(|q| q.zero_point.iter().any(|&z| z != 0)) {
                bail!("weights with a non-zero zero point (TFLite's int8 weights are symmetric)");
            }
            let mut statics =
                vec![static_array(&format!("{name}_WEIGHT"), "i8", &[o, i], weights, "Weights, [out][in].")];
            let mut flash = weights.len();
            if let Some(b) = bias {
                statics.push(static_array(&format!("{name}_BIAS"), "i32", &[o], b, "Bias."));
                flash += 4 * o;
            }
            let real: Vec<f64> = scales.iter().map(|&sw| effective_scale(sx, sw, so)).collect();
            let per_channel = real.len() > 1;
            let (scale_ty, scale) = match fc_requant {
                FcRequant::Exact => {
                    let exact = real
                        .iter()
                        .map(|&s| ExactScale::for_float_rule(s, amin - zo, amax - zo))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| anyhow::anyhow!("{e} (write it with --fc-requant float)"))?;
                    if per_channel {
                        let items: Vec<String> = exact.iter().map(|&e| exact_literal(e)).collect();
                        statics.push(static_array(
                            &format!("{name}_SCALE"),
                            "tinytrain::int8::ExactScale",
                            &[o],
                            &items,
                            "Requantisation per output channel.",
                        ));
                        flash += 8 * o;
                        (format!("&'static [tinytrain::int8::ExactScale; {o}]"), format!("&{name}_SCALE"))
                    } else {
                        ("tinytrain::int8::ExactScale".to_owned(), exact_literal(exact[0]))
                    }
                }
                FcRequant::Tflm => {
                    if per_channel {
                        let mut m = vec![QuantizedMultiplier::default(); o];
                        per_channel_multipliers(sx, &scales, so, &mut m)?;
                        let items: Vec<String> = m.into_iter().map(multiplier_literal).collect();
                        statics.push(static_array(
                            &format!("{name}_MULTIPLIER"),
                            "tinytrain::int8::QuantizedMultiplier",
                            &[o],
                            &items,
                            "Requantisation per output channel.",
                        ));
                        flash += 8 * o;
                        (format!("&'static [tinytrain::int8::QuantizedMultiplier; {o}]"), format!("&{name}_MULTIPLIER"))
                    } else {
                        let m = QuantizedMultiplier::from_real(fully_connected_real_multiplier(
                            sx,
                            scales.first().copied().unwrap_or(0.0),
                            so,
                        ));
                        ("tinytrain::int8::QuantizedMultiplier".to_owned(), multiplier_literal(m))
                    }
                }
                FcRequant::Float => {
                    if per_channel {
                        let items: Vec<String> = real.iter().map(|r| format!("{r:?}")).collect();
                        statics.push(static_array(
                            &format!("{name}_SCALE"),
                            "f64",
                            &[o],
                            &items,
                            "Requantisation per output channel.",
                        ));
                        flash += 8 * o;
                        (
                            format!("tinytrain::int8::OutputScale<'static, {o}>"),
                            format!("tinytrain::int8::OutputScale::FloatPerChannel(&{name}_SCALE)"),
                        )
                    } else {
                        (
                            format!("tinytrain::int8::OutputScale<'static, {o}>"),
                            format!("tinytrain::int8::OutputScale::FloatPerTensor({:?})", real[0]),
                        )
                    }
                }
            };
            Layer {
                ty: format!("tinytrain::int8::Int8Dense<'static, {i}, {o}, {scale_ty}>"),
                init: format!(
                    "tinytrain::int8::Int8Dense {{\n    weight: &{name}_WEIGHT,\n    bias: {},\n    params: tinytrain::int8::FullyConnectedParams {{ input_offset: {}, weights_offset: 0, output_offset: {zo}, activation_min: {amin}, activation_max: {amax} }},\n    scale: {scale},\n}}",
                    if bias.is_some() { format!("Some(&{name}_BIAS)") } else { "None".into() },
                    -zx
                ),
                out_len: o,
                statics,
                about: format!("FULLY_CONNECTED {i} -> {o} [{activation}]: {} B", thousands(flash)),
                flash,
                macs: (i * o) as u64,
            }
        }
        OpKind::Conv2d { window, activation } | OpKind::DepthwiseConv2d { window, activation } => {
            let depthwise = matches!(op.kind, OpKind::DepthwiseConv2d { .. });
            let (w, weights) = i8_data(graph, op, 1, "filter")?;
            let [n, h, wd, ci] = dims4(&x.shape)?;
            let [_, ho, wo, co] = dims4(&y.shape)?;
            let [_, kh, kw, _] = dims4(&w.shape)?;
            if n != 1 {
                bail!("--rust writes batch 1 (the input is {})", x.type_and_shape());
            }
            if window.dilation_h != 1 || window.dilation_w != 1 {
                bail!("--rust writes dilation 1 (this operator has {} x {})", window.dilation_h, window.dilation_w);
            }
            check_padding(window.padding, h, kh, window.stride_h, ho)?;
            check_padding(window.padding, wd, kw, window.stride_w, wo)?;
            let bias = bias_data(graph, op)?;
            let (amin, amax) = range(*activation);
            let mut m = vec![QuantizedMultiplier::default(); co];
            per_channel_multipliers(sx, &weight_scales(w), so, &mut m)?;
            // Scales below 1/4 in every channel (all convolutions in practice): the prepared form.
            let shifted: Option<Vec<ShiftedMultiplier>> = m.iter().map(|&m| ShiftedMultiplier::new(m)).collect();
            let (scale_ty, items): (&str, Vec<String>) = match &shifted {
                Some(sh) => ("tinytrain::int8::ShiftedMultiplier", sh.iter().map(|&s| shifted_literal(s)).collect()),
                None => ("tinytrain::int8::QuantizedMultiplier", m.into_iter().map(multiplier_literal).collect()),
            };
            let (sh, sw) = (window.stride_h, window.stride_w);
            // A depthwise convolution of one input channel is a convolution: filter [1][KH][KW][CO]
            // transposed to [CO][KH][KW][1].
            let as_conv = !depthwise || ci == 1;
            if depthwise && !as_conv && co != ci {
                bail!(
                    "--rust writes DEPTHWISE_CONV_2D with depth multiplier 1 or one input channel (here {ci} -> {co} channels)"
                );
            }
            let filter: Vec<i8> = if depthwise && as_conv {
                let mut t = vec![0i8; weights.len()];
                for (k, &v) in weights.iter().enumerate() {
                    let (tap, c) = (k / co, k % co);
                    t[c * kh * kw + tap] = v;
                }
                t
            } else {
                weights.to_vec()
            };
            let mut statics = Vec::new();
            let mut flash = filter.len() + 8 * co;
            let (ty, weight_dims, what) = if as_conv {
                (
                    format!(
                        "tinytrain::int8::Int8Conv2d<'static, {h}, {wd}, {ci}, {co}, {kh}, {kw}, {sh}, {sw}, {ho}, {wo}, &'static [{scale_ty}; {co}]>"
                    ),
                    vec![co, kh, kw, ci],
                    if depthwise {
                        "Filters [co][kh][kw][ci] (the depthwise filter of one input channel, transposed)."
                    } else {
                        "Filters [co][kh][kw][ci]."
                    },
                )
            } else {
                (
                    format!(
                        "tinytrain::int8::Int8DepthwiseConv2d<'static, {h}, {wd}, {ci}, {kh}, {kw}, {sh}, {sw}, {ho}, {wo}, &'static [{scale_ty}; {co}]>"
                    ),
                    vec![kh, kw, co],
                    "Filters [kh][kw][c].",
                )
            };
            statics.push(static_array(&format!("{name}_WEIGHT"), "i8", &weight_dims, &filter, what));
            if let Some(b) = bias {
                statics.push(static_array(&format!("{name}_BIAS"), "i32", &[co], b, "Bias per output channel."));
                flash += 4 * co;
            }
            statics.push(static_array(
                &format!("{name}_MULTIPLIER"),
                scale_ty,
                &[co],
                &items,
                "Requantisation per output channel.",
            ));
            let layer_name = if as_conv { "Int8Conv2d" } else { "Int8DepthwiseConv2d" };
            Layer {
                ty,
                init: format!(
                    "tinytrain::int8::{layer_name} {{\n    weight: &{name}_WEIGHT,\n    bias: {},\n    input_offset: {},\n    output_offset: {zo},\n    activation_min: {amin},\n    activation_max: {amax},\n    scale: &{name}_MULTIPLIER,\n}}",
                    if bias.is_some() { format!("Some(&{name}_BIAS)") } else { "None".into() },
                    -zx
                ),
                out_len: y.len(),
                statics,
                about: format!(
                    "{}{} {h}x{wd}x{ci} -> {ho}x{wo}x{co}, {kh}x{kw} stride {sh}x{sw} {} [{activation}]: {} B",
                    op.kind.name(),
                    if depthwise && as_conv { " (as CONV_2D)" } else { "" },
                    window.padding,
                    thousands(flash)
                ),
                flash,
                macs: (ho * wo * co * kh * kw * if as_conv { ci } else { 1 }) as u64,
            }
        }
        OpKind::MaxPool2d { window, activation } | OpKind::AveragePool2d { window, activation } => {
            let [n, h, wd, c] = dims4(&x.shape)?;
            let [_, ho, wo, _] = dims4(&y.shape)?;
            if n != 1 {
                bail!("--rust writes batch 1 (the input is {})", x.type_and_shape());
            }
            let (kh, kw, sh, sw) = (window.filter_h, window.filter_w, window.stride_h, window.stride_w);
            check_padding(window.padding, h, kh, sh, ho)?;
            check_padding(window.padding, wd, kw, sw, wo)?;
            let (amin, amax) = range(*activation);
            let layer_name =
                if matches!(op.kind, OpKind::MaxPool2d { .. }) { "Int8MaxPool2d" } else { "Int8AvgPool2d" };
            Layer {
                ty: format!("tinytrain::int8::{layer_name}<{h}, {wd}, {c}, {kh}, {kw}, {sh}, {sw}, {ho}, {wo}>"),
                init: format!("tinytrain::int8::{layer_name} {{ activation_min: {amin}, activation_max: {amax} }}"),
                out_len: y.len(),
                statics: Vec::new(),
                about: format!(
                    "{} {h}x{wd}x{c} -> {ho}x{wo}x{c}, {kh}x{kw} stride {sh}x{sw} {} [{activation}]",
                    op.kind.name(),
                    window.padding
                ),
                flash: 0,
                macs: 0,
            }
        }
        OpKind::Softmax { beta } => {
            let d = x.shape.last().copied().unwrap_or(1);
            let p = SoftmaxParams::new(*beta, sx, so, zo)?;
            Layer {
                ty: format!("tinytrain::int8::Int8Softmax<{d}>"),
                init: format!(
                    "tinytrain::int8::Int8Softmax {{ params: tinytrain::int8::SoftmaxParams {{ input_multiplier: {}, input_left_shift: {}, diff_min: {} }} }}",
                    p.input_multiplier, p.input_left_shift, p.diff_min
                ),
                out_len: y.len(),
                statics: Vec::new(),
                about: format!("SOFTMAX over {d} (beta {beta})"),
                flash: 0,
                macs: 0,
            }
        }
        _ => bail!("not supported by --rust (it writes {RUST_OPS})"),
    }))
}

/// The four dimensions of an NHWC shape.
fn dims4(shape: &[usize]) -> Result<[usize; 4]> {
    match shape {
        &[n, h, w, c] => Ok([n, h, w, c]),
        _ => bail!("expected a rank-4 shape, got {shape:?}"),
    }
}

/// The const-generic layers work out their padding from the sizes: they must be SAME's or
/// VALID's.
fn check_padding(padding: Padding, n: usize, k: usize, s: usize, out: usize) -> Result<()> {
    if padding.out_size(n, k, s, 1) != Some(out) {
        bail!("output size {out} is not the {padding} size of {n} with filter {k}, stride {s}");
    }
    Ok(())
}
