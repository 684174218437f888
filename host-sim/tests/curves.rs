//! `train --plot FILE.svg` draws training and validation loss and accuracy per epoch, with the
//! epoch early stopping restored marked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{data_dir, scratch, sim};

#[test]
fn the_plot_has_both_curves_and_the_best_epoch() {
    let dir = scratch("curves");
    let svg = dir.join("curves.svg");
    let data = data_dir();
    let run = sim(&[
        "train",
        "digits-mlp",
        "--epochs",
        "12",
        "--validation-split",
        "0.2",
        "--patience",
        "2",
        "--lr",
        "0.05",
        "--data",
        data.to_str().unwrap(),
        "--plot",
        svg.to_str().unwrap(),
        "--no-progress",
    ]);
    assert!(run.ok, "{}", run.stderr);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg"), "not an SVG file");
    for label in ["loss", "val_loss", "accuracy", "val_accuracy"] {
        assert!(text.contains(&format!(">\n{label}\n<")), "no {label} curve");
    }
    let restored = run.stdout.lines().find_map(|l| l.strip_prefix("restored the weights of epoch "));
    let best = restored.and_then(|r| r.split_whitespace().next()).expect("early stopping restored an epoch");
    assert!(text.contains(&format!("best epoch {best}")), "the best epoch is not marked");
    // A plot path in a missing directory is refused before training.
    let run = sim(&["train", "digits-mlp", "--plot", dir.join("no/such/dir.svg").to_str().unwrap()]);
    assert!(!run.ok);
}
