//! The TensorFlow Lite Micro "hello world" sine model: it trains in the simulator to the noise
//! floor, and the weights baked into the inference firmware (`firmware/src/sine_net.rs`) are
//! exactly what `train sine` with its defaults produces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{scratch, sim};

#[test]
fn sine_trains_and_the_firmware_weights_come_from_the_simulator() {
    let dir = scratch("sine");
    let (weights, tensors, source) = (dir.join("sine.ttw"), dir.join("sine.safetensors"), dir.join("sine_net.rs"));
    let run = sim(&["train", "sine", "--save", weights.to_str().unwrap()]);
    assert!(run.ok, "{}", run.stderr);
    let loss: f32 = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("test loss "))
        .and_then(|v| v.trim().parse().ok())
        .expect("a test loss line");
    // The targets carry noise of variance 0.01: a fit of sin(x) lands just above it.
    assert!(loss < 0.02, "test MSE {loss}");
    assert!(sim(&["export", "sine", "--weights", weights.to_str().unwrap(), "--to", tensors.to_str().unwrap()]).ok);
    let run = sim(&["import", "sine", tensors.to_str().unwrap(), "--rust", source.to_str().unwrap()]);
    assert!(run.ok, "{}", run.stderr);
    let generated = std::fs::read_to_string(&source).unwrap();
    let firmware =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware/src/sine_net.rs")).unwrap();
    // The firmware's copy starts with three comment lines saying how it was made.
    let baked: Vec<&str> = firmware.lines().skip(3).collect();
    let generated: Vec<&str> = generated.lines().collect();
    assert_eq!(baked, generated, "firmware/src/sine_net.rs is not what `train sine` produces");
}
