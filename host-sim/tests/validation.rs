//! Validation as Keras does it: `--validation-split F` holds out the last fraction of the
//! training data, which is never trained on; early stopping monitors it; the test set is
//! evaluated once, after training.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::cell::Cell;

use common::{gzip, idx, scratch, sim};
use tinytrain::prelude::*;
use tinytrain::zoo::DigitsMlp;
use tinytrain_sim::idx::{IMAGES_MAGIC, LABELS_MAGIC};
use tinytrain_sim::{models, run};

/// A dataset that counts the samples read from it.
struct Counting<'a> {
    samples: &'a [([f32; 64], usize)],
    reads: Cell<usize>,
}

impl Dataset<[f32; 64], usize> for Counting<'_> {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn get(&self, index: usize, x: &mut [f32; 64], target: &mut usize) -> Result<(), Error> {
        self.reads.set(self.reads.get() + 1);
        Dataset::get(self.samples, index, x, target)
    }
}

fn clusters(n: usize, seed: u64) -> Vec<([f32; 64], usize)> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|i| {
            let class = i % 10;
            (core::array::from_fn(|k| if k % 10 == class { 1.0 } else { 0.0 } + 0.3 * rng.normal()), class)
        })
        .collect()
}

fn train_counting(validation_split: Option<f32>, patience: Option<u32>) -> (usize, usize, FitReport) {
    let model = models::find("digits-mlp").unwrap();
    let mut opts = run::TrainOptions::defaults(model);
    opts.fit.epochs = 6;
    opts.fit.patience = patience;
    opts.validation_split = validation_split;
    opts.progress = false;
    let (train, test) = (clusters(200, 1), clusters(50, 2));
    let test = Counting { samples: &test, reads: Cell::new(0) };
    let sgd = SgdConfig { lr: Schedule::Constant(0.05) };
    let mut out = Vec::new();
    let no_mae = None::<&CrossEntropy>;
    let outcome = run::train::<DigitsMlp, Sgd, _, _, _, _, _>(
        model,
        "",
        &opts,
        &sgd,
        &CrossEntropy,
        no_mae,
        &train[..],
        &test,
        &mut (),
        &mut out,
    )
    .unwrap();
    (test.reads.get(), test.samples.len(), outcome.report)
}

#[test]
fn with_a_validation_split_the_test_set_is_read_once_after_training() {
    let (reads, n, report) = train_counting(Some(0.2), Some(2));
    assert_eq!(reads, n, "one pass over the test set, after training ({} epochs run)", report.epochs_run);
    let (reads, n, _) = train_counting(Some(0.2), None);
    assert_eq!(reads, n);
    // Without a split the test set validates every epoch, as the baselines do.
    let (reads, n, report) = train_counting(None, None);
    assert_eq!(reads, n * (report.epochs_run as usize + 1));
}

/// The shipped digits training set, as (pixels, labels).
fn shipped_digits() -> (Vec<u8>, Vec<u8>) {
    let dir = common::data_dir();
    let images = tinytrain_sim::idx::read_images(&dir.join("digits-train-images-idx3-ubyte.gz")).unwrap();
    let labels = tinytrain_sim::idx::read_labels(&dir.join("digits-train-labels-idx1-ubyte.gz"), 10).unwrap();
    (images.pixels, labels)
}

/// Writes a digits dataset with the first `n` shipped training images and the shipped test set.
fn write_digits_prefix(dir: &std::path::Path, n: usize) {
    let (pixels, labels) = shipped_digits();
    let images = gzip(&idx(IMAGES_MAGIC, &[n as u32, 8, 8], &pixels[..64 * n]));
    std::fs::write(dir.join("digits-train-images-idx3-ubyte.gz"), images).unwrap();
    std::fs::write(dir.join("digits-train-labels-idx1-ubyte.gz"), gzip(&idx(LABELS_MAGIC, &[n as u32], &labels[..n])))
        .unwrap();
    for name in ["digits-test-images-idx3-ubyte.gz", "digits-test-labels-idx1-ubyte.gz"] {
        std::fs::copy(common::data_dir().join(name), dir.join(name)).unwrap();
    }
}

#[test]
fn held_out_samples_are_never_trained_on() {
    // Keras: floor(1437 · 0.8) = 1149 samples train, the last 288 validate.
    let dir = scratch("validation-held-out");
    let prefix = dir.join("first-1149");
    std::fs::create_dir(&prefix).unwrap();
    write_digits_prefix(&prefix, 1149);
    let (a, b) = (dir.join("prefix.ttw"), dir.join("split.ttw"));
    let run = sim(&[
        "train",
        "digits-mlp",
        "--epochs",
        "3",
        "--data",
        prefix.to_str().unwrap(),
        "--save",
        a.to_str().unwrap(),
    ]);
    assert!(run.ok, "{}", run.stderr);
    let args = ["train", "digits-mlp", "--epochs", "3", "--validation-split", "0.2", "--save", b.to_str().unwrap()];
    let run = sim(&args);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("1149 training samples, 288 validation samples"), "{}", run.stdout);
    // The same weights, bit for bit: the held-out samples changed nothing.
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn patience_holds_out_a_tenth_and_restores_the_best_weights() {
    let dir = scratch("validation-patience");
    let w = dir.join("w.ttw");
    let args =
        ["train", "digits-mlp", "--epochs", "60", "--lr", "0.01", "--patience", "3", "--save", w.to_str().unwrap()];
    let run = sim(&args);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("1293 training samples, 144 validation samples"), "{}", run.stdout);
    assert!(run.stdout.contains("early stopping after epoch"), "{}", run.stdout);
    let eval = sim(&["eval", "digits-mlp", "--weights", w.to_str().unwrap()]);
    assert_eq!(run.last_line(), eval.last_line());
    sim(&["train", "xor", "--validation-split", "1.5"]).assert_one_line_error("between 0 and 1");
    sim(&["train", "xor", "--validation-split", "0.9"]).assert_one_line_error("leaves none");
}
