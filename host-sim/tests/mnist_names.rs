//! A directory holding the original MNIST download (`train-images-idx3-ubyte`, ...,
//! `t10k-labels-idx1-ubyte`, gzipped or not) is found as well as the shipped subset.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{gzip, idx, noise, scratch, sim};
use tinytrain_sim::datasets::{self, DatasetKind, Split};
use tinytrain_sim::idx::{IMAGES_MAGIC, LABELS_MAGIC};

/// Writes `n` random 28x28 images and labels under `images`/`labels`, gzipped if the name
/// ends in `.gz`.
fn write(dir: &std::path::Path, images: &str, labels: &str, n: u32, seed: u32) {
    let put = |name: &str, bytes: Vec<u8>| {
        let gzipped = std::path::Path::new(name).extension().is_some_and(|e| e == "gz");
        let bytes = if gzipped { gzip(&bytes) } else { bytes };
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    put(images, idx(IMAGES_MAGIC, &[n, 28, 28], &noise(784 * n as usize, seed)));
    let labs: Vec<u8> = noise(n as usize, seed + 1).iter().map(|b| b % 10).collect();
    put(labels, idx(LABELS_MAGIC, &[n], &labs));
}

#[test]
fn standard_mnist_names_are_found() {
    let dir = scratch("mnist-standard");
    write(&dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte.gz", 40, 1);
    write(&dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte", 12, 5);
    let (images, labels) = datasets::find(DatasetKind::Mnist, Split::Train, &dir).unwrap();
    assert!(images.ends_with("train-images-idx3-ubyte") && labels.ends_with("train-labels-idx1-ubyte.gz"));
    let data = datasets::load(DatasetKind::Mnist, &dir).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (40, 12));
    assert_eq!(data.train.scale, 1.0 / 255.0);

    let run = sim(&["train", "mnist-mlp", "--epochs", "1", "--no-progress", "--data", dir.to_str().unwrap()]);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("t10k-images-idx3-ubyte.gz"), "{}", run.stdout);
    assert!(run.last_line().starts_with("test accuracy ") && run.last_line().ends_with("/12)"), "{}", run.stdout);
}

#[test]
fn the_mirror_spelling_is_found_too() {
    let dir = scratch("mnist-dots");
    write(&dir, "train-images.idx3-ubyte", "train-labels.idx1-ubyte", 5, 2);
    write(&dir, "t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte", 5, 3);
    let data = datasets::load(DatasetKind::Mnist, &dir).unwrap();
    assert_eq!(data.test.len(), 5);
}

#[test]
fn images_without_labels_are_reported() {
    let dir = scratch("mnist-no-labels");
    write(&dir, "train-images-idx3-ubyte.gz", "unrelated", 3, 4);
    let err = format!("{:#}", datasets::find(DatasetKind::Mnist, Split::Train, &dir).unwrap_err());
    assert!(err.contains("train-labels-idx1-ubyte"), "{err}");
}

#[test]
fn the_shipped_subset_is_found() {
    let data = datasets::load(DatasetKind::Mnist, &common::data_dir()).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (8000, 2000));
    assert!(data.train.images_path.ends_with("mnist8k-train-images-idx3-ubyte.gz"));
}
