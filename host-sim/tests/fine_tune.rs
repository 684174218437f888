//! Fine-tuning on the command line: `train --weights pre.ttw --freeze N` starts from saved
//! weights and leaves the first N layers with parameters exactly as they were.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{data_dir, scratch, sim};
use tinytrain::checkpoint::HEADER_LEN;

#[test]
fn freeze_keeps_the_first_layer_and_trains_the_rest() {
    let dir = scratch("fine-tune");
    let (pre, tuned) = (dir.join("pre.ttw"), dir.join("tuned.ttw"));
    let p = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let data = p(&data_dir());
    let run = sim(&["train", "digits-mlp", "--epochs", "2", "--data", &data, "--save", &p(&pre), "--no-progress"]);
    assert!(run.ok, "{}", run.stderr);
    let run = sim(&[
        "train",
        "digits-mlp",
        "--epochs",
        "2",
        "--seed",
        "4",
        "--data",
        &data,
        "--weights",
        &p(&pre),
        "--freeze",
        "1",
        "--save",
        &p(&tuned),
        "--no-progress",
    ]);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.contains("frozen: the first 1 of 2 layers with parameters (2,080 parameters)"),
        "{}",
        run.stdout
    );
    let (a, b) = (std::fs::read(&pre).unwrap(), std::fs::read(&tuned).unwrap());
    // fc1 (64 x 32 weights and 32 biases) comes first in the file: same bytes; fc2 learned.
    let first = HEADER_LEN + 4 * (64 * 32 + 32);
    assert_eq!(a[..first], b[..first], "the frozen layer changed");
    assert_ne!(a[first..a.len() - 4], b[first..b.len() - 4], "the unfrozen layer did not train");

    sim(&["train", "digits-mlp", "--freeze", "2", "--data", &data]).assert_one_line_error("at most 1 can be frozen");
}
