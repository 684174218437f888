//! The divergence guard changes nothing in normal training: `digits-mlp` at batch 1 (where a
//! single hard sample after many easy ones has a loss thousands of times the running average)
//! ends with the same bits with the explosion check on as with it off.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use tinytrain::prelude::*;
use tinytrain::zoo::DigitsMlp;
use tinytrain_sim::datasets::{self, DatasetKind, Split};
use tinytrain_tests::param_bits;

type Opt = Adam<{ <DigitsMlp as Layer>::NUM_PARAMS }>;

fn train(guard: DivergenceGuard) -> (Vec<u32>, FitReport) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
    let set = datasets::load_split(DatasetKind::Digits, Split::Train, &dir).unwrap();
    let data = set.byte_images(10).unwrap();
    let mut t = Box::new(Trainer::<DigitsMlp, Opt>::ZERO);
    t.model.init_with(Init::TorchDefault, &mut Rng::new(0));
    let mut snapshot = Box::new(DigitsMlp::ZERO);
    let cfg = FitConfig { epochs: 8, batch_size: 1, guard, ..FitConfig::default() };
    let report = t.fit(&AdamConfig::default(), &CrossEntropy, &data).config(cfg).snapshot(&mut snapshot).run().unwrap();
    (param_bits(&t.model), report)
}

#[test]
fn batch_1_training_is_the_same_with_and_without_the_explosion_check() {
    let (on, report) = train(DivergenceGuard::default());
    let (off, _) = train(DivergenceGuard { explosion_factor: f32::INFINITY, ..DivergenceGuard::default() });
    assert_eq!(report.rollbacks, 0, "the guard fired in normal training");
    assert_eq!(on, off);
}
