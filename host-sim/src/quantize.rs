//! Post-training quantisation: a trained f32 network becomes an int8 TensorFlow Lite graph
//! ([`crate::tflite::Graph`]) that the simulator runs ([`crate::tflite::interp`]), writes as a
//! `.tflite` file ([`crate::tflite::write`]) for TFLite and TFLM, and that firmware runs.
//!
//! The scheme is TFLite's full-integer one, as its converter makes it:
//! - activations int8, asymmetric, one scale and zero point per tensor, from the range seen over
//!   the calibration samples (widened to hold 0, as the converter does), so that `real = scale ·
//!   (q − zero_point)`;
//! - weights int8, symmetric (zero point 0), one scale per output channel: `max |w| / 127`;
//! - biases int32 with scale `input scale · weight scale` of their channel, corrected for the
//!   mean error the weights' rounding puts into each output over the calibration samples (bias
//!   correction, Nagel et al. 2019);
//! - ReLU fused into the Dense or Conv2D before it; max and average pooling and Flatten keep
//!   their input's parameters; Softmax and Sigmoid outputs use TFLite's fixed scale 1/256 and
//!   zero point −128, Tanh 1/128 and 0.
//!
//! Layouts: tinytrain's images are `[C, H, W]` and its convolution filters `[O, C, KH, KW]`
//! (PyTorch); TFLite's are `[1, H, W, C]` and `[O, KH, KW, C]`. The filters are transposed, and
//! the weights of a Dense layer after a Flatten of an image get their columns reordered from
//! channel-major to channel-minor, so the graph computes the same function.
//!
//! ```
//! use tinytrain::prelude::*;
//! use tinytrain_sim::quantize::quantize;
//! type Net = tinytrain::sequential![Dense<2, 4>, Relu<4>, Dense<4, 1>];
//! let mut net = Net::ZERO;
//! net.init(&mut Rng::new(1));
//! let calib = [[0.0f32, 1.0], [1.0, 0.0], [0.5, 0.5]];
//! let q = quantize(&net, calib.iter().map(|x| &x[..]), "tiny").unwrap();
//! let ops: Vec<&str> = q.graph.ops.iter().map(|o| o.kind.name()).collect();
//! assert_eq!(ops, ["FULLY_CONNECTED", "FULLY_CONNECTED"]);
//! ```

use anyhow::{Context, Result, bail, ensure};
use tinytrain::layer::LayerInfo;
use tinytrain::prelude::*;
use tinytrain::tensor::Tensor as _;

use crate::tflite::{Activation, DType, Data, Graph, Op, OpKind, Padding, Quant, Tensor, Window};

/// The layers quantisation handles, as error messages list them.
pub const SUPPORTED_LAYERS: &str = "Dense, Conv2D, DepthwiseConv2D, ReLU (after Dense or a convolution), MaxPool2D, AvgPool2D, Flatten, Dropout, Softmax, Sigmoid, Tanh";

/// A quantised network.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    /// The int8 graph: input, operators, output.
    pub graph: Graph,
    /// Calibration samples seen.
    pub samples: usize,
    /// The float range each layer's output covered over them, in layer order.
    pub ranges: Vec<(&'static str, f32, f32)>,
}

/// Asymmetric int8 parameters for values in `[lo, hi]`, the range widened to hold 0 (the
/// converter's rule: zero must be exactly representable).
#[must_use]
pub fn activation_quant(lo: f32, hi: f32) -> (f32, i64) {
    let (lo, hi) = (f64::from(lo.min(0.0)), f64::from(hi.max(0.0)));
    let scale = if hi - lo > 1e-12 { (hi - lo) / 255.0 } else { 1.0 / 255.0 };
    let zero_point = (-128.0 - lo / scale).round().clamp(-128.0, 127.0);
    (scale as f32, zero_point as i64)
}

/// Symmetric per-channel int8 weights: `rows` channels of `per_row` values each.
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

/// Biases corrected for the mean error per-channel quantisation puts into each output (bias
/// correction): the bias minus the sum over the row of (quantised weight − weight) times the
/// mean of its input, `x_mean(o, k)` for the `k`-th value of row `o`.
fn corrected_bias(w: &[f32], b: &[f32], rows: usize, x_mean: impl Fn(usize, usize) -> f64) -> Vec<f32> {
    let (q, scales) = quantize_weights(w, rows);
    let per_row = w.len() / rows.max(1);
    b.iter()
        .enumerate()
        .map(|(o, &bias)| {
            let err: f64 = (0..per_row)
                .map(|k| {
                    let at = o * per_row + k;
                    (f64::from(q[at]) * f64::from(scales[o]) - f64::from(w[at])) * x_mean(o, k)
                })
                .sum();
            (f64::from(bias) - err) as f32
        })
        .collect()
}

/// int32 biases for input scale `s_in` and per-channel weight scales.
fn quantize_bias(b: &[f32], s_in: f32, w_scales: &[f32]) -> (Vec<i32>, Vec<f32>) {
    let scales: Vec<f32> = w_scales.iter().map(|&s| s_in * s).collect();
    let q = b
        .iter()
        .zip(&scales)
        .map(|(&v, &s)| (f64::from(v) / f64::from(s)).round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32)
        .collect();
    (q, scales)
}

/// Where the data flowing between layers is: its tensor, its layout, its float range.
#[derive(Debug, Clone, Copy)]
struct Flow {
    tensor: usize,
    /// `[C, H, W]` of an image; `None` for a vector.
    image: Option<[usize; 3]>,
    /// `[C, H, W]` of the image a Flatten made this vector from: the next Dense reorders.
    flattened: Option<[usize; 3]>,
}

struct Builder {
    graph: Graph,
}

impl Builder {
    fn tensor(
        &mut self,
        name: String,
        shape: Vec<usize>,
        dtype: DType,
        quant: Option<Quant>,
        data: Option<Data>,
    ) -> usize {
        self.graph.tensors.push(Tensor { name, shape, dtype, quant, data });
        self.graph.tensors.len() - 1
    }

    fn activation(&mut self, name: String, shape: Vec<usize>, (scale, zero_point): (f32, i64)) -> usize {
        let quant = Quant { scale: vec![scale], zero_point: vec![zero_point], dim: 0 };
        self.tensor(name, shape, DType::I8, Some(quant), None)
    }

    fn quant_of(&self, t: usize) -> (f32, i64) {
        let q = self.graph.tensors[t].quant.as_ref();
        (q.map_or(1.0, Quant::scale), q.map_or(0, Quant::zero_point))
    }

    fn op(&mut self, kind: OpKind, inputs: Vec<Option<usize>>, output: usize) {
        let index = self.graph.ops.len();
        self.graph.ops.push(Op { kind, index, inputs, outputs: vec![output], folded: Vec::new() });
    }

    /// Weights (per-channel int8, quantised dimension 0) and int32 bias tensors.
    fn weights(&mut self, name: &str, w: &[f32], shape: Vec<usize>, b: &[f32], s_in: f32) -> (usize, usize) {
        let rows = shape[0];
        let (qw, w_scales) = quantize_weights(w, rows);
        let (qb, b_scales) = quantize_bias(b, s_in, &w_scales);
        let wq = Quant { scale: w_scales, zero_point: vec![0; rows], dim: 0 };
        let bq = Quant { scale: b_scales, zero_point: vec![0; rows], dim: 0 };
        let wt = self.tensor(format!("{name}/weight"), shape, DType::I8, Some(wq), Some(Data::I8(qw)));
        let bt = self.tensor(format!("{name}/bias"), vec![rows], DType::I32, Some(bq), Some(Data::I32(qb)));
        (wt, bt)
    }
}

/// TFLite's NHWC shape of a `[C, H, W]` image.
fn nhwc([c, h, w]: [usize; 3]) -> Vec<usize> {
    vec![1, h, w, c]
}

/// `[C, H, W]` values in `[H, W, C]` order.
fn chw_to_hwc(x: &[f32], [c, h, w]: [usize; 3], out: &mut Vec<f32>) {
    for i in 0..h {
        for j in 0..w {
            for k in 0..c {
                out.push(x[(k * h + i) * w + j]);
            }
        }
    }
}

/// Padding of a window as TFLite says it, if tinytrain's symmetric padding `pad` is one.
fn padding(input: usize, kernel: usize, stride: usize, pad: usize, output: usize, what: &str) -> Result<Padding> {
    for p in [Padding::Valid, Padding::Same] {
        if p.out_size(input, kernel, stride, 1) == Some(output) && p.before(input, kernel, stride, 1, output) == pad {
            return Ok(p);
        }
    }
    bail!("{what}: padding {pad} on each side is neither TFLite's VALID nor its SAME")
}

/// Quantises `model` with the samples of `calibration` (flat `f32` inputs) into an int8 graph
/// named `name`.
///
/// # Errors
/// A layer quantisation does not handle (named, with what is handled), a sample of the wrong
/// length or with a non-finite value, no samples.
#[allow(clippy::too_many_lines)] // one pass over the layers, each case a few lines
pub fn quantize<'a, M: Layer>(
    model: &M,
    calibration: impl IntoIterator<Item = &'a [f32]>,
    name: &str,
) -> Result<Quantized> {
    let mut rows: Vec<LayerInfo> = Vec::new();
    M::describe(&mut |r| rows.push(*r));
    // Calibration: the range of the input and of every layer's output.
    let mut input_range = (f32::INFINITY, f32::NEG_INFINITY);
    let mut ranges = vec![(f32::INFINITY, f32::NEG_INFINITY); rows.len()];
    // Sums of every layer's input values, for bias correction.
    let mut input_sum = vec![0f64; M::Input::LEN];
    let mut sums: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut x = Box::new(M::Input::ZERO);
    let mut acts = Box::new(M::Acts::ZERO);
    let mut y = Box::new(M::Output::ZERO);
    let mut samples = 0;
    for (i, sample) in calibration.into_iter().enumerate() {
        ensure!(
            sample.len() == M::Input::LEN,
            "calibration sample {i} has {} values, the network takes {}",
            sample.len(),
            M::Input::LEN
        );
        ensure!(sample.iter().all(|v| v.is_finite()), "calibration sample {i} holds a non-finite value");
        x.flat_mut().copy_from_slice(sample);
        for (&v, sum) in sample.iter().zip(&mut input_sum) {
            input_range = (input_range.0.min(v), input_range.1.max(v));
            *sum += f64::from(v);
        }
        model.predict(&x, &mut acts, &mut y);
        let mut k = 0;
        M::visit_outputs(&acts, &y, &mut |_, out| {
            if let (Some(r), Some(sum)) = (ranges.get_mut(k), sums.get_mut(k)) {
                sum.resize(out.len(), 0.0);
                for (&v, s) in out.iter().zip(sum.iter_mut()) {
                    *r = (r.0.min(v), r.1.max(v));
                    *s += f64::from(v);
                }
            }
            k += 1;
        });
        ensure!(k == rows.len(), "the network reports {k} outputs for {} layers", rows.len());
        samples += 1;
    }
    ensure!(samples > 0, "no calibration samples");
    let mean = |v: &[f64]| -> Vec<f64> { v.iter().map(|s| s / samples as f64).collect() };
    let input_mean = mean(&input_sum);
    let means: Vec<Vec<f64>> = sums.iter().map(|v| mean(v)).collect();

    // The tensors of each layer, in visiting order.
    let mut values: Vec<Vec<f32>> = Vec::new();
    model.visit(&mut |_, p| values.push(p.to_vec()));
    let mut values = values.into_iter();

    let mut b = Builder {
        graph: Graph {
            version: 3,
            description: format!("tinytrain quantize {name}"),
            tensors: Vec::new(),
            ops: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        },
    };
    let shape = M::Input::SHAPE;
    let image = (M::Input::RANK == 3).then_some(shape);
    let input_shape = match image {
        Some(s) => nhwc(s),
        None if M::Input::RANK == 1 => vec![1, shape[0]],
        None => bail!("quantize takes networks with vector or [C, H, W] inputs"),
    };
    let input = b.activation("input".into(), input_shape, activation_quant(input_range.0, input_range.1));
    b.graph.inputs.push(input);
    let mut flow = Flow { tensor: input, image, flattened: None };

    let mut i = 0;
    while i < rows.len() {
        let row = rows[i];
        let here = format!("layer {i} ({})", row.name);
        let tensors: Vec<Vec<f32>> = values.by_ref().take(row.tensors.len()).collect();
        // A ReLU right after a Dense or a convolution is fused into it.
        let fuse = rows.get(i + 1).is_some_and(|next| next.name == "ReLU");
        let (out_lo, out_hi) = if fuse { ranges[i + 1] } else { ranges[i] };
        let act = if fuse { Activation::Relu } else { Activation::None };
        let s_in = b.quant_of(flow.tensor).0;
        match row.name {
            "Dense" => {
                let (Some(w), Some(bias)) = (tensors.first(), tensors.get(1)) else {
                    bail!("{here}: no weight and bias")
                };
                let out_n = row.output_shape[0];
                let in_n = w.len() / out_n.max(1);
                let x_mean = if i == 0 { &input_mean } else { &means[i - 1] };
                let bias = &corrected_bias(w, bias, out_n, |_, k| x_mean.get(k).copied().unwrap_or(0.0));
                let w = match flow.flattened {
                    Some(img) => {
                        let mut reordered = Vec::with_capacity(w.len());
                        for r in w.chunks(in_n) {
                            chw_to_hwc(r, img, &mut reordered);
                        }
                        reordered
                    }
                    None => w.clone(),
                };
                let (wt, bt) = b.weights(&format!("dense{i}"), &w, vec![out_n, in_n], bias, s_in);
                let out = b.activation(format!("dense{i}"), vec![1, out_n], activation_quant(out_lo, out_hi));
                b.op(
                    OpKind::FullyConnected { activation: act, keep_num_dims: false },
                    vec![Some(flow.tensor), Some(wt), Some(bt)],
                    out,
                );
                flow = Flow { tensor: out, image: None, flattened: None };
            }
            "Conv2D" | "DepthwiseConv2D" => {
                let Some(img) = flow.image else { bail!("{here}: a convolution needs an image input") };
                let (Some(w), Some(bias)) = (tensors.first(), tensors.get(1)) else {
                    bail!("{here}: no weight and bias")
                };
                let [kernel, stride, pad] = row.window;
                let [co, ho, wo] = row.output_shape;
                let [ci, h, wi] = img;
                let pad_h = padding(h, kernel, stride, pad, ho, &here)?;
                let pad_w = padding(wi, kernel, stride, pad, wo, &here)?;
                ensure!(pad_h == pad_w, "{here}: different padding along height and width");
                let window = Window {
                    padding: pad_h,
                    stride_h: stride,
                    stride_w: stride,
                    filter_h: 0,
                    filter_w: 0,
                    dilation_h: 1,
                    dilation_w: 1,
                };
                let out = b.activation(format!("conv{i}"), nhwc([co, ho, wo]), activation_quant(out_lo, out_hi));
                // The mean of each input channel: the correction of a tap is its weight error
                // times its channel's mean (padding taps aside).
                let x_mean = if i == 0 { &input_mean } else { &means[i - 1] };
                let plane = h * wi;
                let channel_mean = |c: usize| {
                    x_mean.get(c * plane..(c + 1) * plane).map_or(0.0, |p| p.iter().sum::<f64>() / plane as f64)
                };
                let taps = kernel * kernel;
                let bias = &if row.name == "Conv2D" {
                    corrected_bias(w, bias, co, |_, k| channel_mean(k / taps))
                } else {
                    corrected_bias(w, bias, co, |o, _| channel_mean(o))
                };
                if row.name == "Conv2D" {
                    // [O, C, KH, KW] -> [O, KH, KW, C].
                    let mut filter = Vec::with_capacity(w.len());
                    for o in w.chunks(ci * kernel * kernel) {
                        chw_to_hwc(o, [ci, kernel, kernel], &mut filter);
                    }
                    let (wt, bt) = b.weights(&format!("conv{i}"), &filter, vec![co, kernel, kernel, ci], bias, s_in);
                    b.op(OpKind::Conv2d { window, activation: act }, vec![Some(flow.tensor), Some(wt), Some(bt)], out);
                } else {
                    // [C, KH, KW] -> [1, KH, KW, C], one scale per channel (quantised dimension 3).
                    let (qw, scales) = quantize_weights(w, co);
                    let mut q = Vec::with_capacity(qw.len());
                    for r in 0..kernel * kernel {
                        for c in 0..co {
                            q.push(qw[c * kernel * kernel + r]);
                        }
                    }
                    let (qb, b_scales) = quantize_bias(bias, s_in, &scales);
                    let wq = Quant { scale: scales, zero_point: vec![0; co], dim: 3 };
                    let bq = Quant { scale: b_scales, zero_point: vec![0; co], dim: 0 };
                    let wt = b.tensor(
                        format!("dwconv{i}/weight"),
                        vec![1, kernel, kernel, co],
                        DType::I8,
                        Some(wq),
                        Some(Data::I8(q)),
                    );
                    let bt = b.tensor(format!("dwconv{i}/bias"), vec![co], DType::I32, Some(bq), Some(Data::I32(qb)));
                    b.op(
                        OpKind::DepthwiseConv2d { window, activation: act },
                        vec![Some(flow.tensor), Some(wt), Some(bt)],
                        out,
                    );
                }
                flow = Flow { tensor: out, image: Some([co, ho, wo]), flattened: None };
            }
            "MaxPool2D" | "AvgPool2D" => {
                let Some(img) = flow.image else { bail!("{here}: pooling needs an image input") };
                let [kernel, stride, pad] = row.window;
                let [c, ho, wo] = row.output_shape;
                let p = padding(img[1], kernel, stride, pad, ho, &here)?;
                let window = Window {
                    padding: p,
                    stride_h: stride,
                    stride_w: stride,
                    filter_h: kernel,
                    filter_w: kernel,
                    dilation_h: 1,
                    dilation_w: 1,
                };
                // int8 pooling keeps its input's scale and zero point.
                let out = b.activation(format!("pool{i}"), nhwc([c, ho, wo]), b.quant_of(flow.tensor));
                let kind = if row.name == "MaxPool2D" {
                    OpKind::MaxPool2d { window, activation: Activation::None }
                } else {
                    OpKind::AveragePool2d { window, activation: Activation::None }
                };
                b.op(kind, vec![Some(flow.tensor)], out);
                flow = Flow { tensor: out, image: Some([c, ho, wo]), flattened: None };
            }
            "Flatten" => {
                let n = row.output_shape[0];
                let out = b.activation(format!("flatten{i}"), vec![1, n], b.quant_of(flow.tensor));
                b.op(OpKind::Reshape, vec![Some(flow.tensor)], out);
                flow = Flow { tensor: out, image: None, flattened: flow.image };
            }
            "Dropout" => {}
            "Softmax" | "Sigmoid" | "Tanh" => {
                let shape = b.graph.tensors[flow.tensor].shape.clone();
                let (kind, q) = match row.name {
                    "Softmax" => (OpKind::Softmax { beta: 1.0 }, (1.0 / 256.0, -128)),
                    "Sigmoid" => (OpKind::Logistic, (1.0 / 256.0, -128)),
                    _ => (OpKind::Tanh, (1.0 / 128.0, 0)),
                };
                let out = b.activation(format!("{}{i}", row.name.to_lowercase()), shape, q);
                b.op(kind, vec![Some(flow.tensor)], out);
                flow = Flow { tensor: out, ..flow };
            }
            other => bail!("{here}: {other} cannot be quantised; quantize handles {SUPPORTED_LAYERS}"),
        }
        i += if fuse { 2 } else { 1 };
    }
    ensure!(values.next().is_none(), "the network has tensors its layers did not claim");
    b.graph.outputs.push(flow.tensor);
    let ranges = rows.iter().zip(ranges).map(|(r, (lo, hi))| (r.name, lo, hi)).collect();
    Ok(Quantized { graph: b.graph, samples, ranges })
}

/// `x` quantised as TFLite's QUANTIZE does it (`round(x / scale) + zero_point`, ties away from
/// zero, clamped to int8).
#[must_use]
pub fn quantize_input(x: &[f32], scale: f32, zero_point: i64) -> Vec<i8> {
    x.iter().map(|&v| ((v / scale).round() as i64 + zero_point).clamp(-128, 127) as i8).collect()
}

/// The input tensor's scale and zero point.
///
/// # Errors
/// A graph without a quantised input.
pub fn input_quant(graph: &Graph) -> Result<(f32, i64)> {
    let q = graph.input(0).and_then(|t| t.quant.as_ref()).context("the graph's input is not quantised")?;
    Ok((q.scale(), q.zero_point()))
}

/// The output tensor's scale and zero point.
///
/// # Errors
/// A graph without a quantised output.
pub fn output_quant(graph: &Graph) -> Result<(f32, i64)> {
    let q = graph.output(0).and_then(|t| t.quant.as_ref()).context("the graph's output is not quantised")?;
    Ok((q.scale(), q.zero_point()))
}
