//! `import` takes what people actually save: fixtures written by real PyTorch (`nn.Sequential`
//! indices, a DataParallel `module.` prefix, attribute names of its own) and real Keras 3
//! (automatic names with numeric suffixes, with and without the model's prefix), made by
//! `tools/real_name_fixtures.py`. Each imports into the registry's network, says which mapping
//! it used, and gives the framework's own logits within 1e-5.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use common::{scratch, sim};
use safetensors::SafeTensors;
use tinytrain::checkpoint;
use tinytrain::prelude::*;
use tinytrain::zoo::{DigitsMlp, MnistCnnTiny};
use tinytrain_sim::interop::Layout;
use tinytrain_sim::models;

const TOLERANCE: f32 = 1e-5;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/names").join(name)
}

fn f32s(bytes: &[u8], name: &str) -> (Vec<usize>, Vec<f32>) {
    let file = SafeTensors::deserialize(bytes).unwrap();
    let t = file.tensor(name).unwrap();
    (t.shape().to_vec(), t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Imports `file` for registry model `model` as network `M`, checks the mapping line contains
/// `how`, and compares the logits on the fixture's inputs with the framework's.
fn imports_and_matches<M>(model: &str, file: &str, logits: &str, how: &str)
where
    M: Layer<Output = [f32; 10]>,
{
    let bytes = std::fs::read(fixture(file)).unwrap();
    let imported = models::find(model).unwrap().import(&bytes, Layout::Pytorch, false).unwrap();
    assert!(imported.mapping.contains(how), "{file}: mapping \"{}\", expected \"{how}\"", imported.mapping);
    let mut net = Box::new(M::ZERO);
    checkpoint::load(&mut *net, &imported.weights).unwrap();

    let reference = std::fs::read(fixture(logits)).unwrap();
    let (shape, inputs) = f32s(&reference, "inputs");
    let (_, expected) = f32s(&reference, "logits");
    let n = shape[0];
    assert_eq!(inputs.len(), n * <M::Input as Tensor>::LEN);
    let mut acts = Box::new(<M::Acts as Zero>::ZERO);
    let mut worst = 0.0f32;
    for i in 0..n {
        let mut x = <M::Input as Zero>::ZERO;
        x.flat_mut().copy_from_slice(&inputs[i * M::Input::LEN..(i + 1) * M::Input::LEN]);
        let mut y = [0.0f32; 10];
        net.predict(&x, &mut acts, &mut y);
        for (a, b) in y.iter().zip(&expected[i * 10..i * 10 + 10]) {
            worst = worst.max((a - b).abs());
        }
    }
    println!("{file}: {} ; max |tinytrain - framework| logit difference {worst:e} over {n} samples", imported.mapping);
    assert!(worst <= TOLERANCE, "{file}: logits differ by {worst}");
}

#[test]
fn pytorch_sequential_indices() {
    imports_and_matches::<DigitsMlp>(
        "digits-mlp",
        "digits-mlp-sequential.safetensors",
        "digits-mlp-sequential-logits.safetensors",
        "nn.Sequential indices 0, 2",
    );
    imports_and_matches::<MnistCnnTiny>(
        "mnist-cnn-tiny",
        "mnist-cnn-tiny-sequential.safetensors",
        "mnist-cnn-tiny-sequential-logits.safetensors",
        "nn.Sequential indices 0, 2, 7",
    );
}

#[test]
fn pytorch_dataparallel_prefix() {
    imports_and_matches::<DigitsMlp>(
        "digits-mlp",
        "digits-mlp-dataparallel.safetensors",
        "digits-mlp-dataparallel-logits.safetensors",
        "under a `module.` prefix",
    );
    imports_and_matches::<MnistCnnTiny>(
        "mnist-cnn-tiny",
        "mnist-cnn-tiny-dataparallel.safetensors",
        "mnist-cnn-tiny-dataparallel-logits.safetensors",
        "under a `module.` prefix",
    );
}

#[test]
fn pytorch_names_of_its_own_by_position() {
    imports_and_matches::<DigitsMlp>(
        "digits-mlp",
        "digits-mlp-custom.safetensors",
        "digits-mlp-custom-logits.safetensors",
        "PyTorch layout by position: hidden, out",
    );
}

#[test]
fn keras_names_with_suffixes() {
    imports_and_matches::<DigitsMlp>(
        "digits-mlp",
        "digits-mlp-keras.safetensors",
        "digits-mlp-keras-logits.safetensors",
        "Keras layer names dense_2, dense_3",
    );
    imports_and_matches::<MnistCnnTiny>(
        "mnist-cnn-tiny",
        "mnist-cnn-tiny-keras.safetensors",
        "mnist-cnn-tiny-keras-logits.safetensors",
        "Keras layer names conv2d_2, conv2d_3, dense_1",
    );
}

#[test]
fn keras_variable_paths_with_the_model_prefix() {
    imports_and_matches::<DigitsMlp>(
        "digits-mlp",
        "digits-mlp-keras-path.safetensors",
        "digits-mlp-keras-logits.safetensors",
        "Keras layer names sequential_1/dense_2, sequential_1/dense_3",
    );
    imports_and_matches::<MnistCnnTiny>(
        "mnist-cnn-tiny",
        "mnist-cnn-tiny-keras-path.safetensors",
        "mnist-cnn-tiny-keras-logits.safetensors",
        "Keras layer names sequential_1/conv2d_2",
    );
}

#[test]
fn a_file_of_another_network_is_refused_with_both_lists() {
    // The CNN's tensors offered to the MLP: nothing fits, and the error shows both sides.
    let bytes = std::fs::read(fixture("mnist-cnn-tiny-sequential.safetensors")).unwrap();
    let err = models::find("digits-mlp").unwrap().import(&bytes, Layout::Pytorch, false).unwrap_err();
    let text = format!("{err:#}");
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(text.contains("fc1.weight [32, 64] | -"), "{text}");
    assert!(text.contains("- | 0.weight [6, 1, 4, 4]"), "{text}");
}

#[test]
fn the_command_line_says_which_mapping_it_used() {
    let dir = scratch("real-names");
    let to = dir.join("w.ttw");
    let file = fixture("mnist-cnn-tiny-keras.safetensors");
    let run = sim(&["import", "mnist-cnn-tiny", file.to_str().unwrap(), "--to", to.to_str().unwrap()]);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("tensors matched by Keras layer names conv2d_2, conv2d_3, dense_1"), "{}", run.stdout);
    assert!(to.exists());
}
