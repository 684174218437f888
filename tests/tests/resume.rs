//! Resumable training: a run paused every few steps, written to a training checkpoint and read
//! back into a fresh trainer each time, ends with the same bits as a run that never paused —
//! dropout's generator, Adam's moments, early stopping and the best-weights snapshot included.
#![allow(clippy::unwrap_used)]

use tinytrain::prelude::*;
use tinytrain::train::FitState;
use tinytrain_sim::resume::{Checkpoint, read, write};
use tinytrain_tests::param_bits;

type Net = tinytrain::sequential![Dense<8, 16>, Relu<16>, Dropout<[f32; 16], 200>, Dense<16, 3>];
type Opt = Adam<{ <Net as Layer>::NUM_PARAMS }>;

fn data() -> Vec<([f32; 8], usize)> {
    let mut rng = Rng::new(9);
    (0..120)
        .map(|i| {
            let c = i % 3;
            (core::array::from_fn(|k| if k % 3 == c { 1.0 } else { 0.0 } + 0.5 * rng.uniform(-1.0, 1.0)), c)
        })
        .collect()
}

fn config() -> FitConfig {
    FitConfig { epochs: 12, batch_size: 8, seed: 21, patience: Some(4), ..FitConfig::default() }
}

fn fresh() -> (Box<Trainer<Net, Opt>>, Box<Net>) {
    let mut t = Box::new(Trainer::<Net, Opt>::ZERO);
    t.model.init(&mut Rng::new(2));
    let snapshot = Box::new(t.model.clone());
    (t, snapshot)
}

/// Trains to the end, pausing every `every` steps; with `restart`, each pause goes through a
/// checkpoint into a new trainer (as a killed process would); `forget_rng` drops the dropout
/// generator on the way (a broken checkpoint, to show the test can fail).
fn paused_run(every: u32, restart: bool, forget_rng: bool) -> (Vec<u32>, FitReport) {
    let mut train = data();
    let val = train.split_off(96);
    let adam = AdamConfig { lr: Schedule::Constant(0.01), ..AdamConfig::default() };
    let (mut t, mut snapshot) = fresh();
    let initial = t.model.clone();
    let mut state = FitState::new();
    loop {
        let r = t
            .fit_from(
                &mut state,
                &adam,
                &CrossEntropy,
                &train[..],
                Some(&val[..]),
                &config(),
                Some(&mut *snapshot),
                &mut (),
                &mut (),
                Some(every),
            )
            .unwrap();
        if let Some(report) = r {
            return (param_bits(&t.model), report);
        }
        if restart {
            let bytes = write(&Checkpoint { trainer: &t, snapshot: &snapshot, initial: &initial, state: &state }, 1);
            let (mut t2, mut s2) = fresh();
            let (mut i2, mut st2) = (Net::ZERO, FitState::new());
            read(&bytes, 1, &mut t2, &mut s2, &mut i2, &mut st2).unwrap();
            if forget_rng {
                st2.rng = [1, 2, 3, 4];
            }
            (t, snapshot, state) = (t2, s2, st2);
        }
    }
}

#[test]
fn paused_and_restarted_runs_give_the_uninterrupted_bits() {
    let mut train = data();
    let val = train.split_off(96);
    let adam = AdamConfig { lr: Schedule::Constant(0.01), ..AdamConfig::default() };
    let (mut t, mut snapshot) = fresh();
    let whole = t
        .fit(&adam, &CrossEntropy, &train[..])
        .config(config())
        .validation(&val[..])
        .snapshot(&mut snapshot)
        .run()
        .unwrap();
    let reference = param_bits(&t.model);
    for every in [1, 3, 7, 50] {
        let (bits, report) = paused_run(every, false, false);
        assert_eq!(bits, reference, "paused every {every} steps");
        assert_eq!(report, whole);
        let (bits, report) = paused_run(every, true, false);
        assert_eq!(bits, reference, "restarted every {every} steps");
        assert_eq!(report, whole);
    }
    // Without the dropout generator the run goes elsewhere: the checkpoint's content matters.
    assert_ne!(paused_run(5, true, true).0, reference);
}
