//! Int8 networks written as Rust by `tinytrain-sim import model.tflite --rust` and run on the
//! Cortex-M4F:
//!
//! - the sources in `firmware/src/nets/` are what the importer writes today;
//! - compiled into this test (the portable kernels), they give the host interpreter's outputs
//!   (TensorFlow's reference rule; and TensorFlow's own outputs on the fixtures' inputs), on
//!   all 256 inputs of the sine models and the 100 fixture inputs of micro_speech; the
//!   `--fc-requant tflm` variant gives TFLM's fixed-point rule, computed here with the slice
//!   kernels, which differs from the reference on a few inputs by a few steps;
//! - the firmware binaries (`sine_int8`, `hello_world_int8`, `micro_speech`) print the same
//!   outputs bit for bit in QEMU.
//!
//! The QEMU test needs `qemu-system-arm` and `defmt-print`; without them it says so and
//! passes, unless `TINYTRAIN_REQUIRE_QEMU=1` (as `firmware/ci.sh` sets).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::cast_possible_wrap)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tinytrain::int8::{
    FullyConnectedParams, FusedActivation, Int8Layer, QuantizedMultiplier, Requant, activation_range, fully_connected,
    fully_connected_real_multiplier,
};
use tinytrain_sim::qemu::{QEMU, build_firmware_bin, find_program, firmware_dir, run_qemu};
use tinytrain_sim::tflite::{Activation, Data, FcRequant, Graph, Interpreter, OpKind, load, rust_source};

#[allow(dead_code, missing_docs, clippy::pedantic)]
mod nets {
    pub mod sine {
        include!("../../firmware/src/nets/sine_int8.rs");
    }
    pub mod exact {
        include!("../../firmware/src/nets/hello_world_int8.rs");
    }
    pub mod tflm {
        include!("../../firmware/src/nets/hello_world_int8_tflm.rs");
    }
    pub mod float {
        include!("../../firmware/src/nets/hello_world_int8_float.rs");
    }
    pub mod micro_speech {
        include!("../../firmware/src/nets/micro_speech.rs");
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The committed sources: file under `firmware/src/nets/`, model, requantisation.
const SOURCES: [(&str, &str, FcRequant); 5] = [
    ("sine_int8.rs", "tests/fixtures/quantize/sine.tflite", FcRequant::Exact),
    ("hello_world_int8.rs", "tests/fixtures/tflite/hello_world_int8.tflite", FcRequant::Exact),
    ("hello_world_int8_tflm.rs", "tests/fixtures/tflite/hello_world_int8.tflite", FcRequant::Tflm),
    ("hello_world_int8_float.rs", "tests/fixtures/tflite/hello_world_int8.tflite", FcRequant::Float),
    ("micro_speech.rs", "tests/fixtures/tflite/micro_speech_quantized.tflite", FcRequant::Exact),
];

fn graph(model: &str) -> Graph {
    load(&std::fs::read(root().join(model)).unwrap()).unwrap()
}

#[test]
fn committed_sources_are_what_import_writes() {
    for (file, model, requant) in SOURCES {
        let name = std::path::Path::new(model).file_name().unwrap().to_str().unwrap();
        let written = rust_source(&graph(model), name, requant).unwrap();
        let committed = std::fs::read_to_string(root().join("firmware/src/nets").join(file)).unwrap();
        assert!(committed == written, "firmware/src/nets/{file} is not what `import {name} --rust` writes now");
    }
}

#[test]
fn import_refuses_what_it_cannot_write_in_one_line() {
    let fixture = |name: &str| root().join("tests/fixtures/tflite").join(name).to_str().unwrap().to_owned();
    let out = common::scratch("import_rust").join("net.rs");
    let out = out.to_str().unwrap();
    common::sim(&["import", &fixture("own_mlp_add.tflite"), "--rust", out])
        .assert_one_line_error("operator 2 (LOGISTIC): not supported by --rust");
    common::sim(&["import", &fixture("own_float_io.tflite"), "--rust", out]).assert_one_line_error("int8");
    common::sim(&["import", &fixture("own_cnn.tflite"), "--rust", out])
        .assert_one_line_error("DEPTHWISE_CONV_2D with depth multiplier 1 or one input channel");
    common::sim(&["import", &fixture("hello_world_int8.tflite"), "--to", out]).assert_one_line_error("--rust");
    let run = common::sim(&["import", &fixture("hello_world_int8.tflite"), "--rust", out]);
    assert!(run.ok, "{}", run.stderr);
    assert!(std::fs::read_to_string(out).unwrap().contains("pub static NET: Net"));
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// micro_speech's 100 fixture inputs (SplitMix64 from seed 3) and TensorFlow's outputs.
fn micro_speech_fixture() -> (Vec<Vec<i8>>, Vec<Vec<i8>>) {
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/tflite/micro_speech_quantized.ref.json")).unwrap(),
    )
    .unwrap();
    let mut state = r["seed"].as_u64().unwrap();
    let inputs = (0..r["count"].as_u64().unwrap())
        .map(|_| (0..1960).map(|_| (splitmix64(&mut state) >> 56) as u8 as i8).collect())
        .collect();
    let outputs = r["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_array().unwrap().iter().map(|v| i8::try_from(v.as_i64().unwrap()).unwrap()).collect())
        .collect();
    (inputs, outputs)
}

fn interpret(interpreter: &Interpreter<'_>, x: &[i8]) -> Vec<i8> {
    match &interpreter.run(&[Data::I8(x.to_vec())]).unwrap()[0] {
        Data::I8(y) => y.clone(),
        other => panic!("int8 output expected, got {other:?}"),
    }
}

/// TFLM's rule on a chain of FULLY_CONNECTED operators, with the slice kernels: the fixed-point
/// multiplier of `GetQuantizedConvolutionMultipler` (`(double)(input_scale * filter_scale) /
/// output_scale`, the product in f32).
fn tflm_fully_connected_chain(g: &Graph, x: &[i8]) -> Vec<i8> {
    let mut x = x.to_vec();
    for op in &g.ops {
        let OpKind::FullyConnected { activation, .. } = op.kind else { panic!("FULLY_CONNECTED only") };
        let t = |i: usize| &g.tensors[op.input(i).unwrap()];
        let (xin, w, out) = (t(0), t(1), &g.tensors[op.output()]);
        let q = |t: &tinytrain_sim::tflite::Tensor| {
            let q = t.quant.as_ref().unwrap();
            (q.scale(), q.zero_point() as i32)
        };
        let ((sx, zx), (sw, _), (so, zo)) = (q(xin), q(w), q(out));
        let fused = match activation {
            Activation::None => FusedActivation::None,
            Activation::Relu => FusedActivation::Relu,
            Activation::Relu6 => FusedActivation::Relu6,
        };
        let (activation_min, activation_max) = activation_range(fused, so, zo);
        let params = FullyConnectedParams {
            input_offset: -zx,
            weights_offset: 0,
            output_offset: zo,
            activation_min,
            activation_max,
        };
        let m = QuantizedMultiplier::from_real(fully_connected_real_multiplier(sx, sw, so));
        let (Some(Data::I8(weights)), bias) = (&w.data, op.input(2).map(|b| &g.tensors[b].data)) else { panic!() };
        let bias = match bias {
            Some(Some(Data::I32(b))) => Some(b.as_slice()),
            _ => None,
        };
        let mut y = vec![0i8; out.len()];
        fully_connected(&params, Requant::PerTensor(m), &x, weights, w.shape[0], bias, &mut y).unwrap();
        x = y;
    }
    x
}

/// The outputs every model of the firmware must print: model name -> outputs in order.
fn expected() -> BTreeMap<&'static str, Vec<Vec<i8>>> {
    let every: Vec<Vec<i8>> = (0..256).map(|k| vec![(k - 128) as i8]).collect();
    let sine = graph("tests/fixtures/quantize/sine.tflite");
    let hello = graph("tests/fixtures/tflite/hello_world_int8.tflite");
    let speech = graph("tests/fixtures/tflite/micro_speech_quantized.tflite");
    let (si, hi, mi) =
        (Interpreter::new(&sine).unwrap(), Interpreter::new(&hello).unwrap(), Interpreter::new(&speech).unwrap());
    let (inputs, tensorflow) = micro_speech_fixture();
    let speech_out: Vec<Vec<i8>> = inputs.iter().map(|x| interpret(&mi, x)).collect();
    assert_eq!(speech_out, tensorflow, "the interpreter gives TensorFlow's micro_speech outputs");
    let mut map = BTreeMap::new();
    map.insert("sine", every.iter().map(|x| interpret(&si, x)).collect());
    let reference: Vec<Vec<i8>> = every.iter().map(|x| interpret(&hi, x)).collect();
    map.insert("hello_world_exact", reference.clone());
    map.insert("hello_world_float", reference);
    map.insert("hello_world_tflm", every.iter().map(|x| tflm_fully_connected_chain(&hello, x)).collect());
    map.insert("micro_speech", speech_out);
    map
}

/// Runs a generated network on the host.
fn run_net<const IN: usize, const OUT: usize>(net: &impl Int8Layer<IN, OUT>, x: &[i8]) -> Vec<i8> {
    let mut y = [0i8; OUT];
    net.forward(&x.try_into().unwrap(), &mut y);
    y.to_vec()
}

#[test]
fn generated_networks_give_the_reference_outputs_on_the_host() {
    let want = expected();
    let every: Vec<Vec<i8>> = (0..256).map(|k| vec![(k - 128) as i8]).collect();
    let (speech_inputs, _) = micro_speech_fixture();
    let got: BTreeMap<&str, Vec<Vec<i8>>> = [
        ("sine", every.iter().map(|x| run_net(&nets::sine::NET, x)).collect()),
        ("hello_world_exact", every.iter().map(|x| run_net(&nets::exact::NET, x)).collect()),
        ("hello_world_float", every.iter().map(|x| run_net(&nets::float::NET, x)).collect()),
        ("hello_world_tflm", every.iter().map(|x| run_net(&nets::tflm::NET, x)).collect()),
        (
            "micro_speech",
            speech_inputs
                .iter()
                .map(|x| {
                    run_net::<{ nets::micro_speech::INPUT_LEN }, { nets::micro_speech::OUTPUT_LEN }>(
                        &nets::micro_speech::NET,
                        x,
                    )
                })
                .collect(),
        ),
    ]
    .into_iter()
    .collect();
    for (model, outputs) in &want {
        assert_eq!(&got[model], outputs, "{model}");
    }
    // TFLM's rule against the reference rule: one step apart now and then in each layer, a few
    // steps at the output where hidden differences add up; most outputs agree.
    let differ: Vec<(usize, i8, i8)> = want["hello_world_tflm"]
        .iter()
        .zip(&want["hello_world_exact"])
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(k, (a, b))| (k, a[0], b[0]))
        .collect();
    println!("hello_world_int8: TFLM's rule differs from TensorFlow's on {} of 256 inputs: {differ:?}", differ.len());
    assert!(differ.iter().all(|&(_, a, b)| (i32::from(a) - i32::from(b)).abs() <= 4));
    assert!(!differ.is_empty() && differ.len() < 64);
}

/// Whether QEMU and defmt-print are installed; without them a test says so and passes, unless
/// `TINYTRAIN_REQUIRE_QEMU=1`.
fn qemu_available(test: &str) -> bool {
    let missing: Vec<&str> = [QEMU, "defmt-print"].into_iter().filter(|p| find_program(p).is_none()).collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("{} not installed: cannot run the firmware in QEMU", missing.join(" and "));
    assert!(std::env::var_os("TINYTRAIN_REQUIRE_QEMU").is_none_or(|v| v != "1"), "{msg}");
    eprintln!("SKIPPED {test}: {msg} (firmware/ci.sh installs them)");
    false
}

/// `key=value` of a log line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("{key}="))? + key.len() + 1;
    let rest = &line[start..];
    Some(if rest.starts_with('[') { &rest[..=rest.find(']')?] } else { rest.split(' ').next()? })
}

/// The `TT-I8` lines of a log: model -> outputs in index order.
fn printed_outputs(log: &str) -> BTreeMap<String, Vec<Vec<i8>>> {
    let mut map: BTreeMap<String, Vec<Vec<i8>>> = BTreeMap::new();
    for line in log.lines().filter(|l| l.starts_with("TT-I8 ")) {
        let model = field(line, "model").unwrap().to_owned();
        let index: usize = field(line, "index").unwrap().parse().unwrap();
        let list = field(line, "output").unwrap().trim_matches(['[', ']']);
        let values: Vec<i8> = list.split(',').map(|v| v.trim().parse().unwrap()).collect();
        let outputs = map.entry(model).or_default();
        assert_eq!(outputs.len(), index, "outputs in order");
        outputs.push(values);
    }
    map
}

fn run_bin(bin: &str) -> String {
    let elf = build_firmware_bin(&firmware_dir(), bin).unwrap();
    let run = run_qemu(&elf, Duration::from_mins(5)).unwrap();
    assert_eq!(run.exit_code, 0, "{bin} failed:\n{}", run.log);
    run.log
}

#[test]
fn qemu_int8_firmware_matches_the_host_bit_for_bit() {
    if !qemu_available("qemu_int8_firmware_matches_the_host_bit_for_bit") {
        return;
    }
    let want = expected();
    let mut printed = printed_outputs(&run_bin("hello_world_int8"));
    printed.extend(printed_outputs(&run_bin("micro_speech")));
    for (model, outputs) in &want {
        let got = printed.get(*model).unwrap_or_else(|| panic!("the firmware printed no outputs for {model}"));
        assert_eq!(got.len(), outputs.len(), "{model}: outputs printed");
        for (k, (g, w)) in got.iter().zip(outputs).enumerate() {
            assert_eq!(g, w, "{model}: input {k}: QEMU {g:?}, host {w:?}");
        }
        println!("{model}: {} outputs identical in QEMU and on the host", got.len());
    }
    // The footprint binary: quantise x, the network, dequantise; the printed f32 bits are the
    // host's for the same x.
    let log = run_bin("sine_int8");
    let hello = graph("tests/fixtures/tflite/hello_world_int8.tflite");
    let interpreter = Interpreter::new(&hello).unwrap();
    let (si, zi) = {
        let q = hello.input(0).unwrap().quant.as_ref().unwrap();
        (q.scale(), q.zero_point() as i32)
    };
    let (so, zo) = {
        let q = hello.output(0).unwrap().quant.as_ref().unwrap();
        (q.scale(), q.zero_point() as i32)
    };
    let mut checked = 0;
    for line in log.lines().filter(|l| l.starts_with("TT-SINE-OUT ")) {
        let x: f32 = field(line, "x").unwrap().parse().unwrap();
        let bits = u32::from_str_radix(field(line, "y_bits").unwrap().trim_start_matches("0x"), 16).unwrap();
        let mut q = [0i8; 1];
        tinytrain::int8::quantize(&[x], si, zi, &mut q).unwrap();
        let y = interpret(&interpreter, &q);
        let mut f = [0f32; 1];
        tinytrain::int8::dequantize(&y, so, zo, &mut f).unwrap();
        assert_eq!(bits, f[0].to_bits(), "sine_int8 at x = {x}");
        checked += 1;
    }
    assert_eq!(checked, 8, "eight TT-SINE-OUT lines:\n{log}");
}
