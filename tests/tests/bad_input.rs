//! Bad input gets a clear error, never a panic, and loses nothing: a weights file cut at
//! every length and with every single bit flipped, and NaN or infinite inference input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tinytrain::checkpoint::{file_len, load, save};
use tinytrain::prelude::*;
use tinytrain::zoo::DigitsMlp;

type DigitsAdam = Adam<{ <DigitsMlp as Layer>::NUM_PARAMS }>;

fn bits(m: &DigitsMlp) -> Vec<u32> {
    let mut v = Vec::new();
    m.visit(&mut |_, p| v.extend(p.iter().map(|x| x.to_bits())));
    v
}

fn weights_file() -> Vec<u8> {
    let mut m = DigitsMlp::ZERO;
    m.init(&mut Rng::new(17));
    let mut buf = vec![0u8; file_len::<DigitsMlp>()];
    save(&m, &mut buf).unwrap();
    buf
}

fn target() -> DigitsMlp {
    let mut m = DigitsMlp::ZERO;
    m.init(&mut Rng::new(5));
    m
}

#[test]
fn weights_file_truncated_at_every_length_is_refused_as_truncated() {
    let file = weights_file();
    let mut model = target();
    let before = bits(&model);
    for len in 0..file.len() {
        let err = load(&mut model, &file[..len]).expect_err("a truncated file loaded");
        assert!(matches!(err, Error::Truncated { found, .. } if found == len), "length {len}: {err:?}");
        assert!(err.to_string().starts_with("input truncated"), "length {len}: {err}");
    }
    assert_eq!(bits(&model), before, "a refused file changed the model");
    load(&mut model, &file).unwrap();
    assert_ne!(bits(&model), before);
}

#[test]
fn weights_file_with_any_single_bit_flipped_is_refused_by_name() {
    let file = weights_file();
    let mut model = target();
    let before = bits(&model);
    let mut flipped = file.clone();
    let (mut magic, mut version, mut checksum) = (0, 0, 0);
    for byte in 0..file.len() {
        for bit in 0..8 {
            flipped[byte] ^= 1 << bit;
            let err = load(&mut model, &flipped).expect_err("a corrupted file loaded");
            let text = err.to_string();
            match byte {
                0..4 => {
                    assert_eq!(err, Error::BadMagic, "byte {byte} bit {bit}");
                    assert!(text.contains("magic"));
                    magic += 1;
                }
                4..6 => {
                    assert!(matches!(err, Error::UnsupportedVersion { .. }), "byte {byte} bit {bit}: {err:?}");
                    assert!(text.contains("version"));
                    version += 1;
                }
                _ => {
                    assert!(matches!(err, Error::Checksum { .. }), "byte {byte} bit {bit}: {err:?}");
                    assert!(text.contains("checksum") && text.contains("corrupt"));
                    checksum += 1;
                }
            }
            flipped[byte] ^= 1 << bit;
        }
    }
    assert_eq!(bits(&model), before, "a refused file changed the model");
    assert_eq!(magic + version + checksum, 8 * file.len());
    println!("{} flips: {magic} bad magic, {version} bad version, {checksum} checksum", 8 * file.len());
}

#[test]
fn wrong_network_and_wrong_version_are_named() {
    type Other = tinytrain::sequential![Dense<64, 32>, Sigmoid<32>, Dense<32, 10>];
    let file = weights_file();
    let mut other = Other::ZERO;
    let err = load(&mut other, &file).unwrap_err();
    assert!(matches!(err, Error::WrongNetwork { .. }));
    assert!(err.to_string().contains("different network"), "{err}");
    let mut v3 = file.clone();
    v3[4] = 3;
    let err = load(&mut target(), &v3).unwrap_err();
    assert_eq!(err.to_string(), "unsupported format version 3 (this build reads version 2)");
}

#[test]
fn nan_or_infinite_inference_input_is_an_error_not_garbage() {
    let mut t = Box::new(Trainer::<DigitsMlp, DigitsAdam>::ZERO);
    t.model.init(&mut Rng::new(1));
    let mut x = [0.5f32; 64];
    assert!(t.predict(&x).unwrap().iter().all(|v| v.is_finite()));
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        x[17] = bad;
        let err = t.predict(&x).unwrap_err();
        assert_eq!(err, Error::NonFinite { index: 17 });
        assert!(err.to_string().contains("index 17"), "{err}");
    }
}

#[test]
fn labels_out_of_range_are_refused_by_the_loss_and_the_dataset() {
    let mut dz = [0.0f32; 10];
    let err = CrossEntropy.loss_and_grad(&[0.0; 10], &10, 1.0, &mut dz).unwrap_err();
    assert_eq!(err, Error::LabelOutOfRange { label: 10, classes: 10 });
    let err = ByteImages::new(&[0; 8], &[3, 12], 4, 1.0, 10).unwrap_err();
    assert_eq!(err.to_string(), "label 12 out of range: the model has 10 classes");
    let err = ByteImages::new(&[0; 7], &[3, 1], 4, 1.0, 10).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { expected: 4, .. }), "{err:?}");
}
