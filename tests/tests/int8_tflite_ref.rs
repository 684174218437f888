//! tinytrain's int8 kernels against TensorFlow Lite's reference kernels, bit for bit.
//!
//! `tests/fixtures/int8/*.json` hold, for every operator of a model, its options, its input
//! tensors and the output TensorFlow 2.21's `BUILTIN_REF` interpreter computed
//! (`tests/fixtures/int8/gen_int8_fixtures.py`): single-operator Keras models converted to
//! int8 (some with power-of-two scales so that exact rounding ties occur) and the TFLM models
//! hello_world_int8, micro_speech_quantized and person_detect. Each operator is prepared here
//! from the tensors' scales and zero points as an importer would (every multiplier, table and
//! clamp comes from `tinytrain::int8`'s helpers), run on the recorded inputs, and compared.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::too_many_lines)]

use serde_json::Value;
use std::collections::BTreeMap;
use tinytrain::int8::{
    AddParams, ConvParams, FullyConnectedParams, FusedActivation, Int8Chain, Int8Dense, Int8Layer, OutputScale,
    Padding, PoolParams, QuantizedMultiplier, Requant, Shape4, SoftmaxParams, activation_range, add, average_pool,
    compute_padding, conv_2d, depthwise_conv_2d, dequantize, effective_scale, fully_connected,
    fully_connected_real_multiplier, logistic_table, lookup, max_pool, per_channel_multipliers, quantize, softmax,
    tanh_table,
};

struct Tensor {
    shape: Vec<usize>,
    scale: Vec<f32>,
    zero_point: Vec<i32>,
    i8: Vec<i8>,
    i32: Vec<i32>,
    f32: Vec<f32>,
}

fn tensor(v: &Value) -> Option<Tensor> {
    if v.is_null() {
        return None;
    }
    let nums = |k: &str| {
        v[k].as_array().map(|a| a.iter().map(|x| x.as_f64().unwrap()).collect::<Vec<_>>()).unwrap_or_default()
    };
    let hex = v["hex"].as_str().unwrap_or("");
    let i8 =
        (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap().cast_signed()).collect();
    Some(Tensor {
        shape: v["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect(),
        scale: nums("scale").iter().map(|&x| x as f32).collect(),
        zero_point: nums("zero_point").iter().map(|&x| x as i32).collect(),
        i8,
        i32: nums("data").iter().map(|&x| x as i32).collect(),
        f32: nums("f32").iter().map(|&x| x as f32).collect(),
    })
}

fn shape4(t: &Tensor) -> Shape4 {
    assert_eq!(t.shape.len(), 4, "rank-4 tensor expected");
    Shape4([t.shape[0], t.shape[1], t.shape[2], t.shape[3]])
}

fn activation(options: &Value) -> FusedActivation {
    match options["fusedActivationFunction"].as_str().unwrap_or("NONE") {
        "NONE" => FusedActivation::None,
        "RELU" => FusedActivation::Relu,
        "RELU6" => FusedActivation::Relu6,
        "RELU_N1_TO_1" => FusedActivation::ReluN1To1,
        other => panic!("unsupported fused activation {other}"),
    }
}

fn opt(options: &Value, key: &str) -> usize {
    options[key].as_u64().unwrap() as usize
}

fn padding(options: &Value) -> Padding {
    if options["padding"] == "SAME" { Padding::Same } else { Padding::Valid }
}

/// Runs one operator; returns `(checked, mismatches)` or `None` for an operator the int8
/// kernels do not cover (RESHAPE, SPACE_TO_BATCH_ND, ...).
fn run_op(op: &Value, notes: &mut Vec<String>, single_rounding_differs: &mut usize) -> Option<(usize, usize)> {
    let name = op["op"].as_str().unwrap();
    let options = &op["options"];
    let ins: Vec<Option<Tensor>> = op["inputs"].as_array().unwrap().iter().map(tensor).collect();
    let out = tensor(&op["outputs"][0]).unwrap();
    let mut got = vec![0i8; out.i8.len()];
    let (so, zo) = (out.scale.first().copied().unwrap_or(0.0), out.zero_point.first().copied().unwrap_or(0));
    match name {
        "FULLY_CONNECTED" => {
            let (x, w) = (ins[0].as_ref().unwrap(), ins[1].as_ref().unwrap());
            if x.i8.is_empty() || w.i8.is_empty() {
                return None;
            }
            let bias = ins.get(2).and_then(Option::as_ref).map(|b| b.i32.as_slice());
            let (act_min, act_max) = activation_range(activation(options), so, zo);
            let per_channel = w.scale.len() > 1;
            let p = FullyConnectedParams {
                input_offset: -x.zero_point[0],
                weights_offset: if per_channel { 0 } else { -w.zero_point[0] },
                output_offset: zo,
                activation_min: act_min,
                activation_max: act_max,
            };
            let si = x.scale[0];
            let scales: Vec<f64> = w.scale.iter().map(|&sw| effective_scale(si, sw, so)).collect();
            let requant =
                if per_channel { Requant::FloatPerChannel(&scales) } else { Requant::FloatPerTensor(scales[0]) };
            fully_connected(&p, requant, &x.i8, &w.i8, w.shape[0], bias, &mut got).unwrap();
            // How often the fixed-point path (TFLM, TFLite < 2.20) would have differed.
            let mut fixed = vec![0i8; got.len()];
            let multipliers: Vec<QuantizedMultiplier> = if per_channel {
                scales.iter().map(|&s| QuantizedMultiplier::from_real(s)).collect()
            } else {
                vec![QuantizedMultiplier::from_real(fully_connected_real_multiplier(si, w.scale[0], so))]
            };
            let requant =
                if per_channel { Requant::PerChannel(&multipliers) } else { Requant::PerTensor(multipliers[0]) };
            fully_connected(&p, requant, &x.i8, &w.i8, w.shape[0], bias, &mut fixed).unwrap();
            let differ = fixed.iter().zip(&out.i8).filter(|(a, b)| a != b).count();
            if differ > 0 {
                notes.push(format!(
                    "FULLY_CONNECTED: the fixed-point requantisation differs in {differ} of {}",
                    got.len()
                ));
            }
        }
        "CONV_2D" | "DEPTHWISE_CONV_2D" => {
            let (x, w) = (ins[0].as_ref().unwrap(), ins[1].as_ref().unwrap());
            let bias = ins.get(2).and_then(Option::as_ref).map(|b| b.i32.as_slice());
            let (xs, ws, os) = (shape4(x), shape4(w), shape4(&out));
            let (sh, sw) = (opt(options, "strideH"), opt(options, "strideW"));
            let (dh, dw) = (opt(options, "dilationHFactor"), opt(options, "dilationWFactor"));
            let (act_min, act_max) = activation_range(activation(options), so, zo);
            let p = ConvParams {
                input_offset: -x.zero_point[0],
                output_offset: zo,
                stride_height: sh,
                stride_width: sw,
                dilation_height: dh,
                dilation_width: dw,
                pad_height: compute_padding(sh, dh, xs.0[1], ws.0[1], os.0[1]),
                pad_width: compute_padding(sw, dw, xs.0[2], ws.0[2], os.0[2]),
                activation_min: act_min,
                activation_max: act_max,
            };
            let mut m = vec![QuantizedMultiplier::default(); os.0[3]];
            per_channel_multipliers(x.scale[0], &w.scale, so, &mut m).unwrap();
            let dm = os.0[3] / xs.0[3];
            let run = |requant: Requant<'_>, y: &mut [i8]| {
                if name == "CONV_2D" {
                    conv_2d(&p, requant, xs, &x.i8, ws, &w.i8, bias, os, y).unwrap();
                } else {
                    depthwise_conv_2d(&p, dm, requant, xs, &x.i8, ws, &w.i8, bias, os, y).unwrap();
                }
            };
            run(Requant::PerChannel(&m), &mut got);
            // How often a TFLITE_SINGLE_ROUNDING build would have differed.
            let mut single = vec![0i8; got.len()];
            run(Requant::SingleRoundingPerChannel(&m), &mut single);
            let differ = single.iter().zip(&out.i8).filter(|(a, b)| a != b).count();
            if differ > 0 {
                notes.push(format!("{name}: single rounding differs in {differ} of {}", got.len()));
                *single_rounding_differs += 1;
            }
        }
        "AVERAGE_POOL_2D" | "MAX_POOL_2D" => {
            let x = ins[0].as_ref().unwrap();
            let (xs, os) = (shape4(x), shape4(&out));
            let (sh, sw) = (opt(options, "strideH"), opt(options, "strideW"));
            let (fh, fw) = (opt(options, "filterHeight"), opt(options, "filterWidth"));
            let _ = padding(options);
            let (act_min, act_max) = activation_range(activation(options), so, zo);
            let p = PoolParams {
                stride_height: sh,
                stride_width: sw,
                filter_height: fh,
                filter_width: fw,
                pad_height: compute_padding(sh, 1, xs.0[1], fh, os.0[1]),
                pad_width: compute_padding(sw, 1, xs.0[2], fw, os.0[2]),
                activation_min: act_min,
                activation_max: act_max,
            };
            if name == "AVERAGE_POOL_2D" {
                average_pool(&p, xs, &x.i8, os, &mut got).unwrap();
            } else {
                max_pool(&p, xs, &x.i8, os, &mut got).unwrap();
            }
        }
        "SOFTMAX" => {
            let x = ins[0].as_ref().unwrap();
            let beta = options["beta"].as_f64().unwrap() as f32;
            let p = SoftmaxParams::new(beta, x.scale[0], so, zo).unwrap();
            softmax(&p, *x.shape.last().unwrap(), &x.i8, &mut got).unwrap();
        }
        "LOGISTIC" | "TANH" => {
            let x = ins[0].as_ref().unwrap();
            let lut = if name == "LOGISTIC" {
                logistic_table(x.scale[0], x.zero_point[0], so, zo).unwrap()
            } else {
                tanh_table(x.scale[0], x.zero_point[0], so, zo)
            };
            lookup(&lut, &x.i8, &mut got).unwrap();
        }
        "ADD" => {
            let (a, b) = (ins[0].as_ref().unwrap(), ins[1].as_ref().unwrap());
            if a.i8.is_empty() || a.shape != b.shape {
                return None;
            }
            let p =
                AddParams::new(a.scale[0], a.zero_point[0], b.scale[0], b.zero_point[0], so, zo, activation(options))
                    .unwrap();
            add(&p, &a.i8, &b.i8, &mut got).unwrap();
        }
        "QUANTIZE" => {
            let x = ins[0].as_ref().unwrap();
            if x.f32.is_empty() {
                return None;
            }
            quantize(&x.f32, so, zo, &mut got).unwrap();
        }
        "DEQUANTIZE" => {
            let x = ins[0].as_ref().unwrap();
            let mut y = vec![0f32; out.f32.len()];
            dequantize(&x.i8, x.scale[0], x.zero_point[0], &mut y).unwrap();
            let bad = y.iter().zip(&out.f32).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
            return Some((y.len(), bad));
        }
        _ => return None,
    }
    let bad = got.iter().zip(&out.i8).filter(|(a, b)| a != b).count();
    if bad > 0 {
        let first = got.iter().zip(&out.i8).position(|(a, b)| a != b).unwrap();
        notes.push(format!(
            "{name}: {bad} of {} differ, first at {first}: {} vs TFLite {}",
            got.len(),
            got[first],
            out.i8[first]
        ));
    }
    Some((got.len(), bad))
}

#[test]
fn int8_kernels_match_tflite_builtin_ref() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/int8");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "fixtures missing in {dir}");
    let mut per_op: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut single_rounding_differs = 0;
    for path in &files {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for (i, op) in case["ops"].as_array().unwrap().iter().enumerate() {
            let mut notes = Vec::new();
            let name = op["op"].as_str().unwrap().to_string();
            if let Some((n, bad)) = run_op(op, &mut notes, &mut single_rounding_differs) {
                let e = per_op.entry(name.clone()).or_default();
                e.0 += 1;
                e.1 += n;
                e.2 += bad;
                if bad > 0 {
                    failures.push(format!("{} op {i} {name}: {}", case["model"], notes.join("; ")));
                } else {
                    for note in notes {
                        println!("{} op {i}: {note}", case["model"]);
                    }
                }
            }
        }
    }
    for (op, (count, values, bad)) in &per_op {
        println!("{op}: {count} operators, {values} values, {bad} differ");
    }
    assert!(failures.is_empty(), "mismatches against TFLite:\n{}", failures.join("\n"));
    // The fixtures tell the rounding rules apart: single rounding fails some convolutions.
    assert!(single_rounding_differs > 0, "no fixture separates single from double rounding");
    for op in [
        "FULLY_CONNECTED",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "AVERAGE_POOL_2D",
        "MAX_POOL_2D",
        "SOFTMAX",
        "LOGISTIC",
        "TANH",
        "ADD",
        "QUANTIZE",
        "DEQUANTIZE",
    ] {
        assert!(per_op.get(op).is_some_and(|e| e.0 > 0), "no {op} was checked");
    }
}

/// One FULLY_CONNECTED of a fixture as an `Int8Dense<I, O>` over borrowed weights.
struct DenseParts<const I: usize, const O: usize> {
    weight: [[i8; I]; O],
    bias: [i32; O],
    params: FullyConnectedParams,
    scale: f64,
}

impl<const I: usize, const O: usize> DenseParts<I, O> {
    fn from_op(op: &Value) -> Self {
        assert_eq!(op["op"], "FULLY_CONNECTED");
        let x = tensor(&op["inputs"][0]).unwrap();
        let w = tensor(&op["inputs"][1]).unwrap();
        let b = tensor(&op["inputs"][2]).unwrap();
        let out = tensor(&op["outputs"][0]).unwrap();
        assert_eq!(w.shape, [O, I]);
        let (act_min, act_max) = activation_range(activation(&op["options"]), out.scale[0], out.zero_point[0]);
        DenseParts {
            weight: core::array::from_fn(|o| core::array::from_fn(|i| w.i8[o * I + i])),
            bias: core::array::from_fn(|o| b.i32[o]),
            params: FullyConnectedParams {
                input_offset: -x.zero_point[0],
                weights_offset: -w.zero_point[0],
                output_offset: out.zero_point[0],
                activation_min: act_min,
                activation_max: act_max,
            },
            scale: effective_scale(x.scale[0], w.scale[0], out.scale[0]),
        }
    }

    fn layer(&self) -> Int8Dense<'_, I, O> {
        Int8Dense {
            weight: &self.weight,
            bias: Some(&self.bias),
            params: self.params,
            scale: OutputScale::FloatPerTensor(self.scale),
        }
    }
}

/// TFLM's hello_world_int8 (FULLY_CONNECTED 1-16-16-1 with ReLU) wired by hand as a
/// const-generic `Int8Chain` of `Int8Dense` layers gives TFLite's outputs for 64 inputs.
#[test]
fn hello_world_int8_as_a_const_generic_chain() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/int8/hello_world_int8.json");
    let case: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ops = case["ops"].as_array().unwrap();
    let (l1, l2, l3) = (
        DenseParts::<1, 16>::from_op(&ops[0]),
        DenseParts::<16, 16>::from_op(&ops[1]),
        DenseParts::<16, 1>::from_op(&ops[2]),
    );
    let net: Int8Chain<_, Int8Chain<_, _, 16>, 16> =
        Int8Chain { first: l1.layer(), second: Int8Chain { first: l2.layer(), second: l3.layer() } };
    let x = tensor(&ops[0]["inputs"][0]).unwrap();
    let y = tensor(&ops[2]["outputs"][0]).unwrap();
    assert_eq!(x.i8.len(), 64);
    for (xi, yi) in x.i8.iter().zip(&y.i8) {
        let mut out = [0i8; 1];
        net.forward(&[*xi], &mut out);
        assert_eq!(out[0], *yi, "input {xi}");
    }
    // The model is a sine: the dequantised output follows sin(x) within the model's error.
    let (si, zi) = (x.scale[0], x.zero_point[0]);
    let (so, zo) = (y.scale[0], y.zero_point[0]);
    for (xi, yi) in x.i8.iter().zip(&y.i8) {
        let xf = si * f32::from(i16::from(*xi) - i16::try_from(zi).unwrap());
        let yf = so * f32::from(i16::from(*yi) - i16::try_from(zo).unwrap());
        assert!((yf - xf.sin()).abs() < 0.2, "sin({xf}) = {yf}");
    }
}
