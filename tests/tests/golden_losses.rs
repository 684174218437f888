//! Golden vectors for every loss of `losses.json` (PyTorch in float64).
//!
//! A loss in tinytrain works on one sample; a batch is the mean of the per-sample losses, and
//! its gradient is the per-sample `loss_and_grad` with `scale = 1/batch` (for the `sum` and
//! `half_sum` reductions of MSE: the sum, with scale 1), exactly as the training loop does it.
//! ELU has no golden values; the gradient checks cover it.
//!
//! Tolerance: abs 1e-5 + rel 1e-4 ([`Tol::LAYER`], the README's suggestion).
#![allow(clippy::unwrap_used)]

use tinytrain::layers::softmax;
use tinytrain::prelude::*;
use tinytrain_tests::{GTensor, Golden, Node, Tol, assert_close, assert_close_scalar};

/// Per-sample losses and the concatenated per-sample gradients (each scaled by `scale`) of
/// the rows of `y` against `target(i)`.
fn per_sample<Y: Tensor, L: Loss<Y>>(
    loss: &L,
    y: &GTensor,
    target: impl Fn(usize) -> L::Target,
    scale: f32,
) -> (Vec<f32>, Vec<f32>) {
    let (mut losses, mut grads) = (Vec::new(), Vec::new());
    for i in 0..y.rows() {
        let mut yi = Y::ZERO;
        yi.flat_mut().copy_from_slice(y.row(i));
        let mut dy = Y::ZERO;
        dy.flat_mut().fill(f32::NAN);
        let t = target(i);
        let l = loss.loss_and_grad(&yi, &t, scale, &mut dy).unwrap();
        let plain = loss.loss(&yi, &t).unwrap();
        assert!((l - plain).abs() <= 1e-6 * l.abs(), "loss() gives {plain}, loss_and_grad() {l}");
        losses.push(l);
        grads.extend_from_slice(dy.flat());
    }
    (losses, grads)
}

fn mean(v: &[f32]) -> f32 {
    v.iter().sum::<f32>() / v.len() as f32
}

fn losses_case(name: &str) -> (Golden, String) {
    (Golden::open("losses.json"), format!("cases/{name}"))
}

fn row_target<const N: usize>(t: &GTensor) -> impl Fn(usize) -> [f32; N] + '_ {
    move |i| t.row_array(i)
}

#[test]
fn mse_mean_sum_and_half_sum() {
    let (g, c) = losses_case("mse");
    let c = g.at(&c);
    let (p, t) = (c.at("prediction").tensor(), c.at("target").tensor());
    let batch = p.rows() as f32;

    let (l, grad) = per_sample::<[f32; 4], _>(&Mse::MEAN, &p, row_target(&t), 1.0 / batch);
    assert_close_scalar("mse mean", mean(&l), c.at("loss_mean").f32(), Tol::LAYER);
    assert_close("mse mean grad", &grad, &c.at("grad_prediction_mean").tensor().data, Tol::LAYER);

    let (l, grad) = per_sample::<[f32; 4], _>(&Mse::SUM, &p, row_target(&t), 1.0);
    assert_close_scalar("mse sum", l.iter().sum(), c.at("loss_sum").f32(), Tol::LAYER);
    assert_close("mse sum grad", &grad, &c.at("grad_prediction_sum").tensor().data, Tol::LAYER);

    let (l, grad) = per_sample::<[f32; 4], _>(&Mse::HALF_SUM, &p, row_target(&t), 1.0);
    assert_close_scalar("mse half sum", l.iter().sum(), c.at("loss_half_sum").f32(), Tol::LAYER);
    assert_close("mse half sum grad", &grad, &c.at("grad_prediction_half_sum").tensor().data, Tol::LAYER);
}

#[test]
fn mse_default_is_the_mean() {
    assert_eq!(Mse::default(), Mse::MEAN);
}

#[test]
fn mae_with_an_exact_match() {
    let (g, c) = losses_case("mae");
    let c = g.at(&c);
    let (p, t) = (c.at("prediction").tensor(), c.at("target").tensor());
    // Element [1, 2] has p == t exactly: its gradient must be exactly 0 (sign(0) = 0).
    assert_eq!(p.row(1)[2], t.row(1)[2]);
    let (l, grad) = per_sample::<[f32; 4], _>(&Mae, &p, row_target(&t), 1.0 / p.rows() as f32);
    assert_close_scalar("mae", mean(&l), c.at("loss_mean").f32(), Tol::LAYER);
    assert_close("mae grad", &grad, &c.at("grad_prediction_mean").tensor().data, Tol::LAYER);
    assert_eq!(grad[4 + 2], 0.0);
}

#[test]
fn softmax_cross_entropy_including_the_50_logit_row() {
    let (g, c) = losses_case("softmax_cross_entropy");
    let c = g.at(&c);
    let z = c.at("logits").tensor();
    let labels = c.at("labels").tensor().labels();
    // The ±50 row: its loss is 40 and must come out exactly that finite number.
    assert!(z.data.iter().any(|&v| v.abs() == 50.0));
    let (l, grad) = per_sample::<[f32; 5], _>(&CrossEntropy, &z, |i| labels[i], 1.0 / z.rows() as f32);
    assert_close("ce per sample", &l, &c.at("loss_per_sample").tensor().data, Tol::LAYER);
    assert_close_scalar("ce mean", mean(&l), c.at("loss_mean").f32(), Tol::LAYER);
    assert_close("ce grad", &grad, &c.at("grad_logits_mean").tensor().data, Tol::LAYER);

    let mut probs = Vec::new();
    for i in 0..z.rows() {
        let mut s = [0.0; 5];
        softmax(z.row(i), &mut s);
        probs.extend_from_slice(&s);
    }
    assert_close("softmax", &probs, &c.at("softmax").tensor().data, Tol::LAYER);
}

#[test]
fn cross_entropy_is_finite_and_exact_at_logits_of_1000() {
    let z = [1000.0f32, -1000.0, 0.0];
    // logsumexp(z) = 1000 + ln(1 + e^-1000 + e^-2000) = 1000 exactly in f32.
    for (label, expected) in [(0, 0.0f32), (1, 2000.0), (2, 1000.0)] {
        let mut dz = [f32::NAN; 3];
        let l = CrossEntropy.loss_and_grad(&z, &label, 1.0, &mut dz).unwrap();
        assert_eq!(l, expected, "label {label}");
        assert_eq!(CrossEntropy.loss(&z, &label).unwrap(), expected);
        let mut onehot = [0.0f32; 3];
        onehot[label] = 1.0;
        // softmax(z) = [1, 0, 0] in f32; the gradient is softmax - onehot.
        let expected_grad: Vec<f32> = [1.0f32, 0.0, 0.0].iter().zip(onehot).map(|(p, t)| p - t).collect();
        assert_eq!(dz.to_vec(), expected_grad, "label {label}");
    }
    // Two equal logits of -1000: ln 2, up to the spacing of f32 near 1000 (6.1e-5), since
    // logsumexp is -999.307 before -1000 is subtracted.
    let z = [-1000.0f32, -1000.0];
    let mut dz = [0.0; 2];
    let l = CrossEntropy.loss_and_grad(&z, &0, 1.0, &mut dz).unwrap();
    assert!((l - core::f32::consts::LN_2).abs() <= 6.2e-5 && dz == [-0.5, 0.5], "{l} {dz:?}");
}

#[test]
fn class_labels_out_of_range_are_errors() {
    let mut dz = [0.0; 3];
    assert_eq!(
        CrossEntropy.loss_and_grad(&[0.0, 1.0, 2.0], &3, 1.0, &mut dz),
        Err(Error::LabelOutOfRange { label: 3, classes: 3 })
    );
    assert_eq!(Hinge::default().loss(&[0.0, 1.0, 2.0], &7), Err(Error::LabelOutOfRange { label: 7, classes: 3 }));
}

fn bce_check(c: Node<'_>, input: &str, from_logits: bool, loss_key: &str, grad_key: &str) {
    let bce = BinaryCrossEntropy { from_logits };
    let (y, t) = (c.at(input).tensor(), c.at("target").tensor());
    let (loss, grad) = (c.at(loss_key).f32(), c.at(grad_key).tensor());
    // One sample of 6 outputs: the loss is the mean over the outputs.
    let (l, g) = per_sample::<[f32; 6], _>(&bce, &y, row_target(&t), 1.0);
    assert_close_scalar(loss_key, l[0], loss, Tol::LAYER);
    assert_close(grad_key, &g, &grad.data, Tol::LAYER);
    // Six samples of one output, batch mean with scale 1/6: the same numbers.
    let y6 = GTensor { shape: vec![6, 1], ..y };
    let t6 = GTensor { shape: vec![6, 1], ..t };
    let (l, g) = per_sample::<[f32; 1], _>(&bce, &y6, row_target(&t6), 1.0 / 6.0);
    assert_close_scalar(&format!("{loss_key} (6 samples)"), mean(&l), loss, Tol::LAYER);
    assert_close(&format!("{grad_key} (6 samples)"), &g, &grad.data, Tol::LAYER);
}

#[test]
fn binary_cross_entropy_from_probabilities() {
    let (g, c) = losses_case("binary_cross_entropy");
    bce_check(g.at(&c), "probabilities", false, "loss_mean_from_probabilities", "grad_probabilities");
}

#[test]
fn binary_cross_entropy_from_logits() {
    let (g, c) = losses_case("binary_cross_entropy");
    bce_check(g.at(&c), "logits", true, "loss_mean_from_logits", "grad_logits");
}

fn hinge_case(kind: HingeKind, per_sample_key: Option<&str>, mean_key: &str, grad_key: &str) {
    let (g, c) = losses_case("hinge");
    let c = g.at(&c);
    let s = c.at("scores").tensor();
    let labels = c.at("labels").tensor().labels();
    let (l, grad) = per_sample::<[f32; 5], _>(&Hinge { kind }, &s, |i| labels[i], 1.0 / s.rows() as f32);
    if let Some(key) = per_sample_key {
        assert_close(key, &l, &c.at(key).tensor().data, Tol::LAYER);
    }
    assert_close_scalar(mean_key, mean(&l), c.at(mean_key).f32(), Tol::LAYER);
    assert_close(grad_key, &grad, &c.at(grad_key).tensor().data, Tol::LAYER);
}

#[test]
fn hinge_weston_watkins() {
    hinge_case(
        HingeKind::WestonWatkins,
        Some("weston_watkins_loss_per_sample"),
        "weston_watkins_loss_mean",
        "weston_watkins_grad_scores",
    );
    assert_eq!(Hinge::default().kind, HingeKind::WestonWatkins);
}

#[test]
fn hinge_pytorch_multi_margin() {
    hinge_case(HingeKind::MultiMargin, None, "pytorch_multi_margin_loss", "pytorch_multi_margin_grad_scores");
}

#[test]
fn hinge_crammer_singer() {
    hinge_case(
        HingeKind::CrammerSinger,
        Some("crammer_singer_loss_per_sample"),
        "crammer_singer_loss_mean",
        "crammer_singer_grad_scores",
    );
}

#[test]
fn binary_hinge() {
    let (g, c) = losses_case("hinge");
    let c = g.at(&c);
    let s = c.at("binary_scores").tensor();
    let labels = c.at("binary_labels_01").tensor().labels();
    let t = GTensor { data: labels.iter().map(|&l| l as f32).collect(), is_int: false, ..s.clone() };
    let (l, grad) = per_sample::<[f32; 6], _>(&BinaryHinge, &s, row_target(&t), 1.0);
    assert_close_scalar("binary hinge", l[0], c.at("binary_hinge_loss_mean").f32(), Tol::LAYER);
    assert_close("binary hinge grad", &grad, &c.at("binary_hinge_grad_scores").tensor().data, Tol::LAYER);
}
