//! Golden optimizer trajectories (`optimizers.json`): a 4-8-3 tanh MLP with softmax
//! cross-entropy, a fixed batch of 6 and a fixed init, ten optimizer runs of ten steps each.
//!
//! The batch is gradient accumulation through [`Trainer::accumulate`] with scale 1/6 and one
//! [`Trainer::apply`] per step, the path `fit` takes. Every run checks the loss before each of
//! the 10 steps, the loss after them, and every parameter after 1, 2 and 10 steps.
//!
//! Tolerance: abs 1e-5 ([`Tol::TRAJECTORY`], the README's suggestion for trajectories), also for
//! the initial activations, loss and gradients.
#![allow(clippy::unwrap_used)]

use tinytrain::prelude::*;
use tinytrain::train::Step;
use tinytrain_tests::{Golden, Tol, assert_close, assert_close_scalar, flat_params, set_flat_params};

type Net = tinytrain::sequential![Dense<4, 8>, Tanh<8>, Dense<8, 3>];
const P: usize = <Net as Layer>::NUM_PARAMS;
/// The golden parameters in visiting order.
const KEYS: [&str; 4] = ["W1", "b1", "W2", "b2"];
const STEPS: usize = 10;

fn trainer<O: Optimizer>(g: &Golden) -> Box<Trainer<Net, O>> {
    let mut t = Box::new(Trainer::<Net, O>::ZERO);
    set_flat_params(&mut t.model, &g.at("init_params").concat(&KEYS));
    t
}

/// Accumulates the batch-mean gradient into `t.grads` and returns the batch-mean loss.
fn accumulate_batch<O: Optimizer>(t: &mut Trainer<Net, O>, g: &Golden) -> f32 {
    let x = g.at("batch_x").tensor();
    let labels = g.at("batch_labels").tensor().labels();
    let scale = 1.0 / x.rows() as f32;
    let mut sum = 0.0;
    for (i, label) in labels.iter().enumerate() {
        t.x = x.row_array(i);
        sum += t.accumulate(&CrossEntropy, label, scale, &mut Mode::Infer).unwrap().0;
    }
    sum * scale
}

#[test]
fn init_activations_logits_loss_and_gradients() {
    let g = Golden::open("optimizers.json");
    let mut t = trainer::<Sgd>(&g);
    let x = g.at("batch_x").tensor();
    let (mut hidden, mut logits) = (Vec::new(), Vec::new());
    for i in 0..x.rows() {
        let xi: [f32; 4] = x.row_array(i);
        t.model.forward(&xi, &mut t.acts, &mut t.y, &mut Mode::Infer);
        // acts.mid is the first Dense's output; acts.b.mid the tanh of it.
        hidden.extend_from_slice(&t.acts.b.mid);
        logits.extend_from_slice(&t.y);
    }
    assert_close("init_hidden_activations", &hidden, &g.at("init_hidden_activations").tensor().data, Tol::TRAJECTORY);
    assert_close("init_logits", &logits, &g.at("init_logits").tensor().data, Tol::TRAJECTORY);
    let loss = accumulate_batch(&mut t, &g);
    assert_close_scalar("init_loss", loss, g.at("init_loss").f32(), Tol::TRAJECTORY);
    assert_close("init_grads", &flat_params(&t.grads), &g.at("init_grads").concat(&KEYS), Tol::TRAJECTORY);
}

fn trajectory<O: Optimizer>(name: &str, cfg: &O::Config) {
    let g = Golden::open("optimizers.json");
    let r = g.at("runs").at(name);
    let mut t = trainer::<O>(&g);
    let mut losses = Vec::new();
    for step in 1..=STEPS {
        losses.push(accumulate_batch(&mut t, &g));
        assert_eq!(t.apply(cfg, None), Step::Applied, "{name}: step {step} skipped");
        assert_eq!(t.opt.steps() as usize, step);
        assert!(flat_params(&t.grads).iter().all(|&v| v == 0.0), "{name}: apply must clear the gradients");
        if matches!(step, 1 | 2 | STEPS) {
            let expected = r.at(&format!("params_after_{step}_steps")).concat(&KEYS);
            assert_close(
                &format!("{name}: params after {step} steps"),
                &flat_params(&t.model),
                &expected,
                Tol::TRAJECTORY,
            );
        }
    }
    assert_close(&format!("{name}: loss before each step"), &losses, &r.at("loss_before_step").f32s(), Tol::TRAJECTORY);
    let after = accumulate_batch(&mut t, &g);
    assert_close_scalar(
        &format!("{name}: loss after 10 steps"),
        after,
        r.at("loss_after_10_steps").f32(),
        Tol::TRAJECTORY,
    );
}

fn hyper(run: &str, key: &str) -> f32 {
    Golden::open("optimizers.json").at("runs").at(run).at("hyperparameters").at(key).f32()
}

fn inverse_time(run: &str) -> Schedule {
    Schedule::InverseTime { initial: hyper(run, "lr"), decay_rate: hyper(run, "decay"), decay_steps: 1 }
}

fn momentum(run: &str, lr: Schedule, nesterov: bool, form: MomentumForm) {
    let cfg = MomentumConfig { lr, momentum: hyper(run, "momentum"), nesterov, form };
    trajectory::<Momentum<P>>(run, &cfg);
}

#[test]
fn sgd() {
    trajectory::<Sgd>("sgd", &SgdConfig { lr: Schedule::Constant(hyper("sgd", "lr")) });
}

#[test]
fn sgd_momentum_torch_form() {
    momentum("sgd_momentum", Schedule::Constant(hyper("sgd_momentum", "lr")), false, MomentumForm::Torch);
}

#[test]
fn sgd_momentum_keras_form_is_identical_at_constant_lr() {
    momentum("sgd_momentum", Schedule::Constant(hyper("sgd_momentum", "lr")), false, MomentumForm::Keras);
}

#[test]
fn sgd_nesterov() {
    momentum("sgd_nesterov", Schedule::Constant(hyper("sgd_nesterov", "lr")), true, MomentumForm::Torch);
}

#[test]
fn sgd_nesterov_keras_form_is_identical_at_constant_lr() {
    momentum("sgd_nesterov", Schedule::Constant(hyper("sgd_nesterov", "lr")), true, MomentumForm::Keras);
}

#[test]
fn sgd_time_decay() {
    trajectory::<Sgd>("sgd_time_decay", &SgdConfig { lr: inverse_time("sgd_time_decay") });
}

#[test]
fn sgd_momentum_time_decay_keras() {
    let run = "sgd_momentum_time_decay_keras";
    momentum(run, inverse_time(run), false, MomentumForm::Keras);
}

#[test]
fn sgd_momentum_time_decay_torch() {
    let run = "sgd_momentum_time_decay_torch";
    momentum(run, inverse_time(run), false, MomentumForm::Torch);
}

fn adam(run: &str, form: AdamForm) {
    let cfg = AdamConfig {
        lr: Schedule::Constant(hyper(run, "lr")),
        beta1: hyper(run, "beta1"),
        beta2: hyper(run, "beta2"),
        eps: hyper(run, "eps"),
        form,
    };
    trajectory::<Adam<P>>(run, &cfg);
}

#[test]
fn adam_keras() {
    adam("adam_keras", AdamForm::Keras);
}

#[test]
fn adam_torch() {
    adam("adam_torch", AdamForm::Torch);
}

fn rmsprop(run: &str, form: RmsPropForm) {
    let cfg = RmsPropConfig {
        lr: Schedule::Constant(hyper(run, "lr")),
        rho: hyper(run, "rho"),
        eps: hyper(run, "eps"),
        form,
    };
    assert_eq!((cfg.rho, cfg.eps), (0.9, 1e-7));
    trajectory::<RmsProp<P>>(run, &cfg);
}

#[test]
fn rmsprop_keras() {
    rmsprop("rmsprop_keras", RmsPropForm::Keras);
}

#[test]
fn rmsprop_torch() {
    rmsprop("rmsprop_torch", RmsPropForm::Torch);
}

/// The two forms that the golden file says differ must differ here too, by more than the
/// tolerance: otherwise the tests above could not tell the forms apart.
#[test]
fn the_forms_are_distinguishable() {
    let g = Golden::open("optimizers.json");
    let runs = g.at("runs");
    for (a, b) in [
        ("adam_keras", "adam_torch"),
        ("rmsprop_keras", "rmsprop_torch"),
        ("sgd_momentum_time_decay_keras", "sgd_momentum_time_decay_torch"),
    ] {
        let pa = runs.at(a).at("params_after_10_steps").concat(&KEYS);
        let pb = runs.at(b).at("params_after_10_steps").concat(&KEYS);
        let diff = pa.iter().zip(&pb).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(f64::from(diff) > Tol::TRAJECTORY.abs, "{a} vs {b}: {diff}");
    }
}
