//! End-to-end training: the XOR trajectory of `xor_training.json` (2-4-1 sigmoid net,
//! [`tinytrain::zoo::Xor`], full batch, `Mse::MEAN`, SGD lr 0.5, 2000 epochs), and XOR
//! converging from a seeded random init through [`Trainer::fit`].
//!
//! Tolerance: abs 1e-4 for the loss curve, the final outputs and the final parameters
//! ([`Tol::XOR`], the README's suggestion after 2000 steps; f32 vs f64 there is 6.6e-6).
#![allow(clippy::unwrap_used)]

use tinytrain::prelude::*;
use tinytrain::zoo::Xor;
use tinytrain_tests::{Golden, Tol, assert_close, flat_params, set_flat_params};

const KEYS: [&str; 4] = ["W1", "b1", "W2", "b2"];

fn xor_data(g: &Golden) -> Vec<([f32; 2], [f32; 1])> {
    let (x, t) = (g.at("x").tensor(), g.at("target").tensor());
    (0..x.rows()).map(|i| (x.row_array(i), t.row_array(i))).collect()
}

/// Records the training loss of every epoch.
struct LossLog(Vec<f32>);

impl Callback for LossLog {
    fn on_epoch_end(&mut self, stats: &EpochStats) -> Control {
        self.0.push(stats.train_loss);
        Control::Continue
    }
}

#[test]
fn xor_trajectory_matches_pytorch() {
    let g = Golden::open("xor_training.json");
    let data = xor_data(&g);
    let epochs = g.at("epochs").f32() as u32;
    let mut t = Box::new(Trainer::<Xor, Sgd>::ZERO);
    set_flat_params(&mut t.model, &g.at("init_params").concat(&KEYS));
    let sgd = SgdConfig { lr: Schedule::Constant(g.at("lr").f32()) };
    // Full batch in the file's order: one update per epoch on all 4 samples (scale 1/4).
    let fit = FitConfig { epochs, batch_size: data.len(), shuffle: false, ..FitConfig::default() };
    let mut log = LossLog(Vec::new());
    let report = t
        .fit_with(&sgd, &Mse::MEAN, &data[..], None::<&[([f32; 2], [f32; 1])]>, &fit, None, &mut (), &mut log)
        .unwrap();
    assert_eq!((report.epochs_run, report.skipped_steps, t.opt.steps()), (epochs, 0, epochs));

    // Epoch k's training loss is measured before its update, so with the weights after k - 1
    // updates; loss_curve[i] is the loss after 100·i updates and its last entry is the final loss.
    let final_loss = t.evaluate(&Mse::MEAN, &data[..]).unwrap().loss;
    let curve: Vec<f32> =
        (0..epochs as usize).step_by(100).map(|updates| log.0[updates]).chain(core::iter::once(final_loss)).collect();
    assert_close("loss curve", &curve, &g.at("loss_curve").f32s(), Tol::XOR);

    let outputs: Vec<f32> = data.iter().map(|(x, _)| t.predict(x).unwrap()[0]).collect();
    assert_close("final outputs", &outputs, &g.at("final_outputs").tensor().data, Tol::XOR);
    assert_close("final params", &flat_params(&t.model), &g.at("final_params").concat(&KEYS), Tol::XOR);
    assert_eq!(report.last.train_accuracy, 1.0);
}

#[test]
fn xor_converges_from_a_seeded_random_init() {
    type Opt = Adam<{ <Xor as Layer>::NUM_PARAMS }>;
    let g = Golden::open("xor_training.json");
    let data = xor_data(&g);
    let adam = AdamConfig { lr: Schedule::Constant(0.1), ..AdamConfig::default() };
    let fit = FitConfig { epochs: 600, batch_size: 4, seed: 3, ..FitConfig::default() };
    for seed in 0..8 {
        let mut t = Box::new(Trainer::<Xor, Opt>::ZERO);
        t.model.init(&mut Rng::new(seed));
        let before = t.evaluate(&Mse::MEAN, &data[..]).unwrap();
        let report = t
            .fit_with(&adam, &Mse::MEAN, &data[..], None::<&[([f32; 2], [f32; 1])]>, &fit, None, &mut (), &mut ())
            .unwrap();
        let after = t.evaluate(&Mse::MEAN, &data[..]).unwrap();
        assert_eq!(after.accuracy, 1.0, "init seed {seed}: accuracy {} (loss {})", after.accuracy, after.loss);
        assert!(after.loss < 0.05 && after.loss < before.loss / 4.0, "init seed {seed}: loss {}", after.loss);
        assert_eq!(report.last.train_accuracy, 1.0);
    }
}
