//! Every model of `tests/fixtures/tflite/` run by tinytrain's interpreter on the fixtures'
//! inputs gives TensorFlow Lite's outputs (TensorFlow 2.21, `BUILTIN_REF` resolver): int8
//! and float32 outputs bit for bit (hello_world_float runs on the float kernels of
//! `tflite/float.rs`, own_float_io ends in DEQUANTIZE).
//!
//! Inputs are regenerated here with SplitMix64 as the fixtures' README says; their CRC-32
//! (and, for the small models, the stored inputs) must match before outputs are compared.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::cast_possible_wrap)]

use std::path::PathBuf;

use serde_json::Value;
use tinytrain_sim::tflite::{Data, Interpreter, load};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tflite")
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// zlib's CRC-32.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn bytes_of(d: &Data) -> Vec<u8> {
    match d {
        Data::I8(v) => v.iter().map(|&x| x as u8).collect(),
        Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        _ => unreachable!(),
    }
}

/// The fixture's inputs, from its seed and element mapping.
fn inputs(r: &Value, len: usize) -> Vec<Data> {
    let mut state = r["seed"].as_u64().unwrap();
    let mapping = r["input_mapping"].as_str().unwrap();
    let count = r["count"].as_u64().unwrap() as usize;
    (0..count)
        .map(|_| {
            let mut next = || splitmix64(&mut state);
            if mapping.starts_with("(z >> 56) as u8 as i8") {
                Data::I8((0..len).map(|_| (next() >> 56) as u8 as i8).collect())
            } else if mapping.starts_with("((z >> 40) as f32 / 16777216.0) * core::f32::consts::TAU") {
                Data::F32((0..len).map(|_| ((next() >> 40) as f32 / 16_777_216.0) * core::f32::consts::TAU).collect())
            } else if mapping.starts_with("(z >> 40) as f32 / 8388608.0 - 1.0") {
                Data::F32((0..len).map(|_| (next() >> 40) as f32 / 8_388_608.0 - 1.0).collect())
            } else {
                panic!("unknown input mapping {mapping:?}")
            }
        })
        .collect()
}

fn as_data(v: &Value, dtype: &str) -> Data {
    let list = v.as_array().unwrap();
    match dtype {
        "int8" => Data::I8(list.iter().map(|x| i8::try_from(x.as_i64().unwrap()).unwrap()).collect()),
        "float32" => Data::F32(list.iter().map(|x| x.as_f64().unwrap() as f32).collect()),
        d => panic!("dtype {d}"),
    }
}

struct Outcome {
    values: usize,
    differ: usize,
    max_error: f64,
}

fn compare(got: &Data, want: &Data, out: &mut Outcome) {
    match (got, want) {
        (Data::I8(g), Data::I8(w)) => {
            assert_eq!(g.len(), w.len());
            out.values += g.len();
            out.differ += g.iter().zip(w).filter(|(a, b)| a != b).count();
            out.max_error = out.max_error.max(
                g.iter().zip(w).map(|(a, b)| f64::from((i32::from(*a) - i32::from(*b)).abs())).fold(0.0, f64::max),
            );
        }
        (Data::F32(g), Data::F32(w)) => {
            assert_eq!(g.len(), w.len());
            out.values += g.len();
            out.differ += g.iter().zip(w).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
            out.max_error =
                out.max_error.max(g.iter().zip(w).map(|(a, b)| f64::from((a - b).abs())).fold(0.0, f64::max));
        }
        _ => panic!("output types differ: {got:?} vs {want:?}"),
    }
}

/// Runs one model on its fixture inputs; returns how its outputs compare.
fn run_model(name: &str) -> Outcome {
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join(format!("{name}.ref.json"))).unwrap()).unwrap();
    let graph = load(&std::fs::read(dir().join(r["model"].as_str().unwrap())).unwrap()).unwrap();
    let ops: Vec<&str> = graph.ops.iter().map(|o| o.kind.name()).collect();
    let want_ops: Vec<&str> = r["ops"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()).collect();
    let kept: Vec<&str> =
        want_ops.iter().copied().filter(|o| !matches!(*o, "SHAPE" | "STRIDED_SLICE" | "PACK")).collect();
    assert_eq!(ops, kept, "{name}: operators");
    let interpreter = Interpreter::new(&graph).unwrap();
    let input = graph.input(0).unwrap();
    let xs = inputs(&r, input.len());
    let all: Vec<u8> = xs.iter().flat_map(bytes_of).collect();
    assert_eq!(u64::from(crc32(&all)), r["inputs_crc32"].as_u64().unwrap(), "{name}: inputs differ from the fixture's");
    if let Some(stored) = r["inputs"].as_array() {
        for (x, s) in xs.iter().zip(stored) {
            assert_eq!(
                bytes_of(x),
                bytes_of(&as_data(s, r["input"]["dtype"].as_str().unwrap())),
                "{name}: stored input"
            );
        }
    }
    let dtype = r["output"]["dtype"].as_str().unwrap();
    let mut out = Outcome { values: 0, differ: 0, max_error: 0.0 };
    for (x, want) in xs.iter().zip(r["outputs"].as_array().unwrap()) {
        let got = interpreter.run(std::slice::from_ref(x)).unwrap();
        compare(&got[0], &as_data(want, dtype), &mut out);
    }
    println!("{name}: {} outputs, {} differ, largest difference {}", out.values, out.differ, out.max_error);
    out
}

fn assert_bit_exact(name: &str) {
    let out = run_model(name);
    assert!(out.values > 0);
    assert_eq!(
        out.differ, 0,
        "{name}: {} of {} outputs differ from TFLite's (largest by {})",
        out.differ, out.values, out.max_error
    );
}

#[test]
fn hello_world_int8_is_bit_exact() {
    assert_bit_exact("hello_world_int8");
}

/// The target was 1e-6; summing in the reference kernel's order gives TFLite's bits.
#[test]
fn hello_world_float_is_bit_exact() {
    let out = run_model("hello_world_float");
    assert_eq!(out.values, 256);
    assert!(out.max_error <= 1e-6, "largest difference {}", out.max_error);
    assert_eq!(out.differ, 0);
}

#[test]
fn micro_speech_is_bit_exact() {
    assert_bit_exact("micro_speech_quantized");
}

#[test]
fn person_detect_is_bit_exact() {
    assert_bit_exact("person_detect");
}

#[test]
fn own_cnn_is_bit_exact() {
    assert_bit_exact("own_cnn");
}

#[test]
fn own_mlp_add_is_bit_exact() {
    assert_bit_exact("own_mlp_add");
}

#[test]
fn own_float_io_is_bit_exact() {
    assert_bit_exact("own_float_io");
}

/// An 8-bit palette BMP as (palette index, grey value) per pixel, top row first.
fn bmp(bytes: &[u8]) -> Vec<(u8, u8)> {
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    let (data, header, width) = (u32_at(10), u32_at(14), u32_at(18));
    let height = i32::from_le_bytes(bytes[22..26].try_into().unwrap());
    assert_eq!(u16::from_le_bytes([bytes[28], bytes[29]]), 8, "8-bit BMP expected");
    let palette = 14 + header;
    let stride = width.div_ceil(4) * 4;
    let rows = height.unsigned_abs() as usize;
    let mut pixels = Vec::with_capacity(width * rows);
    for r in 0..rows {
        let row = if height > 0 { rows - 1 - r } else { r };
        for c in 0..width {
            let index = bytes[data + row * stride + c];
            pixels.push((index, bytes[palette + 4 * index as usize + 2]));
        }
    }
    pixels
}

#[test]
fn person_detect_scores_the_two_images_as_tflite_does() {
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("person_detect.ref.json")).unwrap()).unwrap();
    let graph = load(&std::fs::read(dir().join("person_detect.tflite")).unwrap()).unwrap();
    let interpreter = Interpreter::new(&graph).unwrap();
    let images = r["images"].as_array().unwrap();
    assert_eq!(images.len(), 4);
    for image in images {
        let pixels = bmp(&std::fs::read(dir().join(image["file"].as_str().unwrap())).unwrap());
        let x: Vec<i8> = match image["input_mapping"].as_str().unwrap() {
            "top-down, byte as i8" => pixels.iter().map(|&(i, _)| i as i8).collect(),
            "top-down, pixel - 128" => pixels.iter().map(|&(_, g)| (i32::from(g) - 128) as i8).collect(),
            m => panic!("mapping {m}"),
        };
        let bytes: Vec<u8> = x.iter().map(|&v| v as u8).collect();
        assert_eq!(u64::from(crc32(&bytes)), image["input_crc32"].as_u64().unwrap(), "{image}");
        let got = interpreter.run(&[Data::I8(x)]).unwrap();
        assert_eq!(got[0], as_data(&image["output"], "int8"), "{image}");
    }
}
