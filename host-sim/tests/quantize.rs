//! Post-training quantisation (`tinytrain-sim quantize`): the int8 models it writes load in
//! TensorFlow Lite's own interpreter and give our outputs there bit for bit (reference outputs
//! in `tests/fixtures/quantize/*.ref.json`, from `tools/quantize_reference.py`), the command
//! writes the committed `.tflite` files byte for byte from the committed f32 weights, and the
//! int8 models stay within the accuracy bounds of the f32 ones. `quantize --rust`
//! writes the committed sources `tests/fixtures/quantize/*.rs` and, but for its header,
//! `firmware/src/nets/sine_int8.rs` (const-generic
//! `tinytrain::int8` layers), which, compiled into this test, give TFLite's outputs too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use tinytrain::int8::Int8Layer;
use tinytrain_sim::tflite::Interpreter;
use tinytrain_sim::tflite::{Data, FcRequant, load, rust_source};

#[allow(dead_code, missing_docs, clippy::pedantic)]
mod nets {
    // The firmware's copy (`import sine.tflite --rust`): the same network, another header.
    pub mod sine {
        include!("../../firmware/src/nets/sine_int8.rs");
    }
    pub mod digits {
        include!("../../tests/fixtures/quantize/digits-mlp.rs");
    }
    pub mod cnn {
        include!("../../tests/fixtures/quantize/mnist-cnn-tiny.rs");
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/quantize")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const MODELS: [&str; 3] = ["digits-mlp", "sine", "mnist-cnn-tiny"];

/// SplitMix64 int8 inputs, as `tools/tflite_reference.py` draws them.
fn splitmix_i8(seed: u64, n: usize) -> Vec<i8> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 56) as u8).cast_signed()
        })
        .collect()
}

fn cli(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tinytrain-sim"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tinytrain-sim {args:?} failed:\n{text}");
    text
}

#[test]
fn exported_models_give_tflites_reference_outputs_bit_for_bit() {
    for name in MODELS {
        let bytes = std::fs::read(fixtures().join(format!("{name}.tflite"))).unwrap();
        let graph = load(&bytes).unwrap();
        let reference: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures().join(format!("{name}.ref.json"))).unwrap())
                .unwrap();
        let seed = reference["seed"].as_u64().unwrap();
        let count = reference["count"].as_u64().unwrap() as usize;
        let len = graph.input(0).unwrap().len();
        let inputs = splitmix_i8(seed, count * len);
        let bytes_in: Vec<u8> = inputs.iter().map(|&v| v as u8).collect();
        assert_eq!(u64::from(crc32(&bytes_in)), reference["inputs_crc32"].as_u64().unwrap(), "{name}: inputs differ");
        let interp = Interpreter::new(&graph).unwrap();
        let expected = reference["outputs"].as_array().unwrap();
        for (i, x) in inputs.chunks_exact(len).enumerate() {
            let out = interp.run(&[Data::I8(x.to_vec())]).unwrap();
            let Some(Data::I8(y)) = out.first() else { panic!("{name}: no int8 output") };
            let want: Vec<i8> = expected[i].as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i8).collect();
            assert_eq!(y, &want, "{name}: sample {i} differs from TFLite's BUILTIN_REF interpreter");
        }
        println!("{name}: {count} outputs equal TFLite's ({})", reference["tensorflow"]);
    }
}

/// Runs a generated network over `inputs`, one sample after another.
fn run_net<const IN: usize, const OUT: usize>(net: &impl Int8Layer<IN, OUT>, inputs: &[i8]) -> Vec<Vec<i8>> {
    inputs
        .chunks_exact(IN)
        .map(|x| {
            let mut y = [0i8; OUT];
            net.forward(x.try_into().unwrap(), &mut y);
            y.to_vec()
        })
        .collect()
}

#[test]
fn quantized_rust_networks_give_tflites_reference_outputs_bit_for_bit() {
    for name in MODELS {
        let reference: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures().join(format!("{name}.ref.json"))).unwrap())
                .unwrap();
        let (seed, count) = (reference["seed"].as_u64().unwrap(), reference["count"].as_u64().unwrap() as usize);
        let got = match name {
            "sine" => run_net(&nets::sine::NET, &splitmix_i8(seed, count * nets::sine::INPUT_LEN)),
            "digits-mlp" => run_net(&nets::digits::NET, &splitmix_i8(seed, count * nets::digits::INPUT_LEN)),
            _ => run_net::<{ nets::cnn::INPUT_LEN }, { nets::cnn::OUTPUT_LEN }>(
                &nets::cnn::NET,
                &splitmix_i8(seed, count * nets::cnn::INPUT_LEN),
            ),
        };
        let want: Vec<Vec<i8>> = reference["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|y| y.as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as i8).collect())
            .collect();
        assert_eq!(got.len(), count);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{name}: sample {i} of the generated Rust differs from TFLite's interpreter");
        }
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    tinytrain::checkpoint::CRC32.checksum(bytes)
}

#[test]
fn quantize_writes_the_committed_models_and_keeps_their_accuracy() {
    let dir = tempfile_dir();
    for name in MODELS {
        let weights = fixtures().join(format!("{name}.ttw"));
        let (out, rs) = (dir.join(format!("{name}.tflite")), dir.join(format!("{name}.rs")));
        let log = cli(&[
            "quantize",
            name,
            "--weights",
            weights.to_str().unwrap(),
            "--tflite",
            out.to_str().unwrap(),
            "--rust",
            rs.to_str().unwrap(),
        ]);
        println!("{log}");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            std::fs::read(fixtures().join(format!("{name}.tflite"))).unwrap(),
            "{name}: quantize no longer writes the committed model"
        );
        let source = std::fs::read_to_string(&rs).unwrap();
        let (body, committed) = match name {
            "sine" => (source.split_once('\n').unwrap().1, repo().join("firmware/src/nets/sine_int8.rs")),
            _ => (source.as_str(), fixtures().join(format!("{name}.rs"))),
        };
        let committed = std::fs::read_to_string(committed).unwrap();
        let committed = if name == "sine" { committed.split_once('\n').unwrap().1 } else { committed.as_str() };
        assert!(body == committed, "{name}: quantize --rust no longer writes the committed source");
        // The same network as importing the written .tflite (only the header's command differs).
        let imported =
            rust_source(&load(&std::fs::read(&out).unwrap()).unwrap(), "x.tflite", FcRequant::Exact).unwrap();
        assert_eq!(source.split_once('\n').unwrap().1, imported.split_once('\n').unwrap().1, "{name}");
        let field = |prefix: &str, key: &str| -> f64 {
            let line = log.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no `{prefix}` line"));
            let at = line.find(key).unwrap() + key.len();
            line[at..].split_whitespace().next().unwrap().trim_end_matches(',').parse().unwrap()
        };
        if name == "sine" {
            let (f, q) = (field("f32  test mse", "mse "), field("int8 test mse", "mse "));
            assert!(q <= 1.10 * f, "sine: int8 mse {q} more than 10% over f32 {f}");
        } else {
            let (f, q) = (field("f32  test accuracy", "accuracy "), field("int8 test accuracy", "accuracy "));
            println!("{name}: f32 {f:.4}, int8 {q:.4}, {:+.2} points", 100.0 * (q - f));
            assert!(q >= f - 0.005, "{name}: int8 accuracy {q} lost more than half a point against {f}");
        }
    }
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tinytrain-quantize-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn unsupported_layer_is_refused_in_one_line() {
    let log = std::process::Command::new(env!("CARGO_BIN_EXE_tinytrain-sim"))
        .args(["quantize", "digits-bn-mlp", "--weights", "nonexistent.ttw"])
        .output()
        .unwrap();
    assert!(!log.status.success());
    let mut net = Box::new(<tinytrain::zoo::DigitsBnMlp as tinytrain::Layer>::ZERO);
    tinytrain::Layer::init(&mut *net, &mut tinytrain::Rng::new(1));
    let calib = vec![0.5f32; 64];
    let err =
        tinytrain_sim::quantize::quantize(&*net, calib.chunks_exact(64), "digits-bn-mlp").unwrap_err().to_string();
    assert!(err.contains("BatchNorm") && err.contains("quantize handles") && !err.contains('\n'), "{err}");
}

/// A network with every layout change quantisation makes (filters to OHWI, a depthwise filter
/// to 1HWC with SAME padding, the Flatten of an image before a Dense): the int8 graph computes
/// what the f32 network does, within a few output steps, on inputs it was not calibrated on.
#[test]
fn int8_graph_follows_the_f32_network_through_every_layout_change() {
    use tinytrain::layers::{Conv2d, DepthwiseConv2d, Flatten, MaxPool2x2};
    use tinytrain::prelude::*;
    use tinytrain_sim::quantize::{input_quant, output_quant, quantize, quantize_input};
    type Net = tinytrain::sequential![
        Conv2d<2, 4, 3, 1, 0, 8, 8, 6, 6>,
        Act<ReluFn, [[[f32; 6]; 6]; 4]>,
        DepthwiseConv2d<4, 3, 1, 1, 6, 6, 6, 6>,
        Act<ReluFn, [[[f32; 6]; 6]; 4]>,
        MaxPool2x2<4, 6, 6, 3, 3>,
        Flatten<4, 3, 3, 36>,
        Dense<36, 5>,
    ];
    let mut net = Box::new(Net::ZERO);
    net.init(&mut Rng::new(5));
    let mut rng = Rng::new(9);
    let mut draw = |n: usize| -> Vec<f32> { (0..n * 128).map(|_| rng.uniform(-1.0, 1.0)).collect() };
    let (calib, test) = (draw(64), draw(32));
    let q = quantize(&*net, calib.chunks_exact(128), "layouts").unwrap();
    let ops: Vec<&str> = q.graph.ops.iter().map(|o| o.kind.name()).collect();
    assert_eq!(ops, ["CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED"]);
    let (si, zi) = input_quant(&q.graph).unwrap();
    let (so, zo) = output_quant(&q.graph).unwrap();
    let interp = Interpreter::new(&q.graph).unwrap();
    let (mut x, mut acts, mut y) = (Box::new([[[0f32; 8]; 8]; 2]), Box::new(<Net as Layer>::Acts::ZERO), [0f32; 5]);
    let mut worst = 0f32;
    for sample in test.chunks_exact(128) {
        // The graph's input is [1, H, W, C]: the f32 sample is [C, H, W].
        let mut nhwc = Vec::with_capacity(128);
        for h in 0..8 {
            for w in 0..8 {
                for c in 0..2 {
                    nhwc.push(sample[(c * 8 + h) * 8 + w]);
                }
            }
        }
        x.flat_mut().copy_from_slice(sample);
        net.predict(&x, &mut acts, &mut y);
        let out = interp.run(&[Data::I8(quantize_input(&nhwc, si, zi))]).unwrap();
        let Some(Data::I8(yq)) = out.first() else { panic!("no int8 output") };
        for (&a, &b) in y.iter().zip(yq) {
            worst = worst.max((a - so * (i64::from(b) - zo) as f32).abs() / so);
        }
    }
    println!("largest difference: {worst:.2} output steps");
    assert!(worst <= 8.0, "the int8 graph is {worst} output steps off the f32 network");
}
