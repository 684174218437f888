//! The memory budget of [`Summary`] is the RAM the structs really take: every figure is
//! compared with `size_of` of the value it describes.
//!
//! * parameters: `param_bytes == size_of::<M>()`, `params == M::NUM_PARAMS`;
//! * activations: `activation_bytes == size_of::<M::Acts>()`;
//! * optimizer state: `optimizer_bytes == size_of::<O>()`;
//! * training: `training_bytes() == size_of::<Trainer<M, O>>()`.
#![allow(clippy::unwrap_used)]

use core::mem::size_of;

use tinytrain::prelude::*;
use tinytrain::zoo::{DigitsMlp, MnistCnnTiny, MnistMlp, Xor};
use tinytrain_tests::flat_params;

fn check<M: Layer, O: Optimizer>(name: &'static str) -> Summary<M, O> {
    let s = Summary::<M, O>::new(name);
    assert_eq!(s.params, M::NUM_PARAMS, "{name}: params");
    assert_eq!(s.param_bytes, size_of::<M>(), "{name}: parameter bytes");
    assert_eq!(s.activation_bytes, size_of::<M::Acts>(), "{name}: activation bytes");
    assert_eq!(s.optimizer_bytes, size_of::<O>(), "{name}: optimizer bytes ({})", O::NAME);
    assert_eq!(s.io_bytes, (size_of::<M::Input>(), size_of::<M::Output>()), "{name}: input/output bytes");
    assert_eq!(s.training_bytes(), size_of::<Trainer<M, O>>(), "{name}: training bytes ({})", O::NAME);
    assert_eq!(
        s.inference_bytes(),
        size_of::<M>() + size_of::<M::Acts>() + size_of::<M::Input>() + size_of::<M::Output>(),
        "{name}: inference bytes"
    );
    assert_eq!(s.inference_bytes_weights_in_flash(), s.inference_bytes() - size_of::<M>());
    s
}

#[test]
fn digits_mlp_with_every_optimizer() {
    const P: usize = <DigitsMlp as Layer>::NUM_PARAMS;
    assert_eq!(P, 2410);
    check::<DigitsMlp, Adam<2410>>("digits-mlp");
    check::<DigitsMlp, Sgd>("digits-mlp");
    check::<DigitsMlp, Momentum<P>>("digits-mlp");
    check::<DigitsMlp, RmsProp<P>>("digits-mlp");
    // The parameter count agrees with what the model actually visits.
    assert_eq!(flat_params(&DigitsMlp::ZERO).len(), P);
}

#[test]
fn digits_mlp_trains_with_adam_in_under_40_kb() {
    let s = check::<DigitsMlp, Adam<2410>>("digits-mlp");
    // 2 x 9,640 (weights, gradients) + 19,284 (Adam) + 2 x 256 (activations) + 256 + 2 x 40.
    assert_eq!(s.training_bytes(), 39_412);
    assert!(s.training_bytes() < 40_000);
}

#[test]
fn xor_and_mnist_mlp() {
    check::<Xor, Sgd>("xor");
    check::<Xor, Adam<{ <Xor as Layer>::NUM_PARAMS }>>("xor");
    assert_eq!(flat_params(&Xor::ZERO).len(), 17);
    check::<MnistMlp, Sgd>("mnist-mlp");
    check::<MnistMlp, Momentum<{ <MnistMlp as Layer>::NUM_PARAMS }>>("mnist-mlp");
    check::<MnistMlp, Adam<{ <MnistMlp as Layer>::NUM_PARAMS }>>("mnist-mlp");
}

#[test]
fn a_convolutional_network() {
    check::<MnistCnnTiny, Sgd>("mnist-cnn-tiny");
    check::<MnistCnnTiny, Adam<{ <MnistCnnTiny as Layer>::NUM_PARAMS }>>("mnist-cnn-tiny");
}

#[test]
fn the_printed_table_shows_the_same_totals() {
    let s = Summary::<DigitsMlp, Adam<2410>>::new("digits-mlp");
    let text = s.to_string();
    assert!(text.contains("Model: \"digits-mlp\""), "{text}");
    assert!(text.contains("Total params: 2,410 (9,640 bytes)"), "{text}");
    let total = text.lines().find(|l| l.starts_with("total")).unwrap();
    let numbers: Vec<&str> = total.split_whitespace().skip(1).collect();
    assert_eq!(numbers, [thousands(s.inference_bytes()), thousands(s.training_bytes())], "{text}");
    assert_eq!(numbers[1], "39,412");
    // One row per layer.
    for row in ["dense_0 (Dense)", "relu_1 (ReLU)", "dense_2 (Dense)"] {
        assert!(text.contains(row), "missing {row}:\n{text}");
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn every_summary_line_fits_the_65_column_table() {
    use tinytrain::zoo::{DigitsBnMlp, MnistBnCnn};
    let texts = [
        Summary::<DigitsBnMlp, Adam<{ <DigitsBnMlp as Layer>::NUM_PARAMS }>>::new("digits-bn-mlp").to_string(),
        Summary::<MnistBnCnn, Adam<{ <MnistBnCnn as Layer>::NUM_PARAMS }>>::new("mnist-bn-cnn").to_string(),
    ];
    for text in &texts {
        for line in text.lines() {
            assert!(line.len() <= 65, "line of {} columns:\n{line}\nin\n{text}", line.len());
        }
        // The long BatchNormalization name wraps, its figures stay in their columns.
        let at = text.lines().position(|l| l.starts_with("batchnormalization_")).expect("a BatchNorm row");
        let next = text.lines().nth(at + 1).unwrap();
        assert!(next.starts_with(&" ".repeat(28)) && next.contains("(None, "), "{next}");
    }
}
