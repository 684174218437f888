//! Golden vectors for layers: `dense.json`, `activations.json` and the 2-3-1 backprop slide
//! (`slide_example.json`), made by PyTorch in float64 (see `golden/README.md`).
//!
//! Tolerance: abs 1e-5 + rel 1e-4 everywhere ([`Tol::LAYER`], the README's suggestion).
#![allow(clippy::unwrap_used)]

use tinytrain::prelude::*;
use tinytrain_tests::{GTensor, Golden, Tol, assert_close, assert_close_scalar};

/// Runs one `Dense<5, 3>` case: forward per sample, backward per sample with the gradients
/// accumulating over the batch (the golden parameter gradients are summed over the batch).
fn dense_case(case: &str) {
    let g = Golden::open("dense.json");
    let c = g.at("cases").at(case);
    let input = c.at("input").tensor();
    let grad_output = c.at("grad_output").tensor();
    let mut d = Dense::<5, 3>::ZERO;
    d.weight = c.at("weight").tensor().matrix();
    d.bias = c.at("bias").tensor().array();

    let mut grads = Dense::<5, 3>::ZERO;
    let (mut out, mut grad_in) = (Vec::new(), Vec::new());
    for i in 0..input.rows() {
        let x: [f32; 5] = input.row_array(i);
        let mut y = [0.0; 3];
        d.forward(&x, &mut (), &mut y, &mut Mode::Infer);
        let dy: [f32; 3] = grad_output.row_array(i);
        let mut dx = [f32::NAN; 5];
        d.backward(&x, &(), &y, &dy, &mut (), Some(&mut grads), Some(&mut dx));
        out.extend_from_slice(&y);
        grad_in.extend_from_slice(&dx);
    }
    assert_close(&format!("{case} output"), &out, &c.at("output").tensor().data, Tol::LAYER);
    assert_close(&format!("{case} grad_input"), &grad_in, &c.at("grad_input").tensor().data, Tol::LAYER);
    assert_close(
        &format!("{case} grad_weight"),
        grads.weight.as_flattened(),
        &c.at("grad_weight").tensor().data,
        Tol::LAYER,
    );
    assert_close(&format!("{case} grad_bias"), &grads.bias, &c.at("grad_bias").tensor().data, Tol::LAYER);
}

#[test]
fn dense_batch2() {
    dense_case("batch2");
}

#[test]
fn dense_batch1() {
    dense_case("batch1");
}

/// Forward and input gradient of a parameter-free layer on every row of a golden case.
fn activation_case<L>(case: &str, layer: &L)
where
    L: Layer<Acts = ()>,
    L::Input: Tensor,
    L::Output: Tensor,
{
    let g = Golden::open("activations.json");
    let c = g.at("cases").at(case);
    let (input, grad_output) = (c.at("input").tensor(), c.at("grad_output").tensor());
    let (mut out, mut grad_in) = (Vec::new(), Vec::new());
    for i in 0..input.rows() {
        let mut x = L::Input::ZERO;
        x.flat_mut().copy_from_slice(input.row(i));
        let mut y = L::Output::ZERO;
        layer.forward(&x, &mut (), &mut y, &mut Mode::Infer);
        let mut dy = L::Output::ZERO;
        dy.flat_mut().copy_from_slice(grad_output.row(i));
        let mut dx = L::Input::ZERO;
        dx.flat_mut().fill(f32::NAN);
        let mut grads = L::GRADS_ZERO;
        layer.backward(&x, &(), &y, &dy, &mut (), Some(&mut grads), Some(&mut dx));
        out.extend_from_slice(y.flat());
        grad_in.extend_from_slice(dx.flat());
    }
    assert_close(&format!("{case} output"), &out, &c.at("output").tensor().data, Tol::LAYER);
    assert_close(&format!("{case} grad_input"), &grad_in, &c.at("grad_input").tensor().data, Tol::LAYER);
}

#[test]
fn sigmoid() {
    activation_case("sigmoid", &Sigmoid::<10>::ZERO);
}

#[test]
fn tanh() {
    activation_case("tanh", &Tanh::<10>::ZERO);
}

#[test]
fn relu() {
    activation_case("relu", &Relu::<10>::ZERO);
}

#[test]
fn leaky_relu_torch_slope() {
    // `LeakyRelu<N>` defaults to `TorchSlope`, 0.01, the slope of the golden file.
    activation_case("leaky_relu_0.01", &LeakyRelu::<10>::ZERO);
    activation_case("leaky_relu_0.01", &LeakyRelu::<10, TorchSlope>::ZERO);
}

#[test]
fn softmax() {
    activation_case("softmax", &Softmax::<10>::ZERO);
}

#[test]
fn softmax_large_logits() {
    activation_case("softmax_large_logits", &Softmax::<4>::ZERO);
}

#[test]
fn softmax_rowwise_2x4() {
    activation_case("softmax_batch_2x4_rowwise", &Softmax::<4>::ZERO);
}

/// Elementwise layers on a matrix-shaped tensor give the same numbers as on a vector.
#[test]
fn activation_on_a_2d_tensor_matches_the_vector_form() {
    let g = Golden::open("activations.json");
    let c = g.at("cases/tanh");
    let x: [[f32; 5]; 2] = c.at("input").tensor().matrix();
    let mut y = [[0.0; 5]; 2];
    Act::<TanhFn, [[f32; 5]; 2]>::ZERO.forward(&x, &mut (), &mut y, &mut Mode::Infer);
    assert_close("tanh on [2, 5]", y.as_flattened(), &c.at("output").tensor().data, Tol::LAYER);
}

/// The 2-3-1 network of the slide: sigmoid everywhere, no biases.
type Slide = tinytrain::sequential![Dense<2, 3>, Sigmoid<3>, Dense<3, 1>, Sigmoid<1>];

struct SlideRun {
    net: Slide,
    acts: <Slide as Layer>::Acts,
    deltas: <Slide as Layer>::Acts,
    grads: Slide,
    y: [f32; 1],
    loss: f32,
}

fn slide_run(loss: Mse) -> SlideRun {
    let g = Golden::open("slide_example.json");
    let mut net = Slide::ZERO;
    net.a.weight = g.at("W1").tensor().matrix();
    net.b.b.a.weight = g.at("W2").tensor().matrix();
    // The slide has no biases: they stay at zero (Slide::ZERO) and their gradients are dropped.
    let x: [f32; 2] = g.at("x").tensor().array();
    let t: [f32; 1] = g.at("target").tensor().array();
    let mut acts = <Slide as Layer>::Acts::ZERO;
    let mut deltas = <Slide as Layer>::Acts::ZERO;
    let mut grads = Slide::ZERO;
    let (mut y, mut dy) = ([0.0; 1], [0.0; 1]);
    net.forward(&x, &mut acts, &mut y, &mut Mode::Infer);
    let l = loss.loss_and_grad(&y, &t, 1.0, &mut dy).unwrap();
    net.backward(&x, &acts, &y, &dy, &mut deltas, Some(&mut grads), None);
    SlideRun { net, acts, deltas, grads, y, loss: l }
}

fn t(g: &Golden, key: &str) -> GTensor {
    g.at(key).tensor()
}

#[test]
fn slide_forward() {
    let g = Golden::open("slide_example.json");
    let r = slide_run(Mse::HALF_SUM);
    // acts: mid = W1 x (net inputs), b.mid = h, b.b.mid = W2 h.
    assert_close("hidden_net", &r.acts.mid, &t(&g, "hidden_net").data, Tol::LAYER);
    assert_close("hidden_activations", &r.acts.b.mid, &t(&g, "hidden_activations").data, Tol::LAYER);
    assert_close("output_net", &r.acts.b.b.mid, &t(&g, "output_net").data, Tol::LAYER);
    assert_close("output", &r.y, &t(&g, "output").data, Tol::LAYER);
}

#[test]
fn slide_losses_both_conventions() {
    let g = Golden::open("slide_example.json");
    let half = slide_run(Mse::HALF_SUM);
    assert_close_scalar("0.5*(t-y)^2", half.loss, g.at("loss_half_squared_error").f32(), Tol::LAYER);
    let mean = slide_run(Mse::MEAN);
    assert_close_scalar("mean (t-y)^2", mean.loss, g.at("loss_mean_squared_error").f32(), Tol::LAYER);
    // The slide's numbers themselves, to four places.
    assert!((half.loss - 0.28224).abs() < 5e-5 && (mean.loss - 0.56447).abs() < 5e-5);
}

#[test]
fn slide_deltas_half_squared_error() {
    let g = Golden::open("slide_example.json");
    let r = slide_run(Mse::HALF_SUM);
    // deltas.b.b.mid = dL/d(net_o); deltas.mid = dL/d(net_h).
    assert_close("delta_output", &r.deltas.b.b.mid, &t(&g, "delta_output").data, Tol::LAYER);
    assert_close("delta_hidden", &r.deltas.mid, &t(&g, "delta_hidden").data, Tol::LAYER);
}

#[test]
fn slide_deltas_mse_are_twice_the_half_ones() {
    let g = Golden::open("slide_example.json");
    let r = slide_run(Mse::MEAN);
    let twice = |key: &str| t(&g, key).data.iter().map(|v| 2.0 * v).collect::<Vec<_>>();
    assert_close("delta_output (mse)", &r.deltas.b.b.mid, &twice("delta_output"), Tol::LAYER);
    assert_close("delta_hidden (mse)", &r.deltas.mid, &twice("delta_hidden"), Tol::LAYER);
}

fn slide_grads_and_step(loss: Mse, suffix: &str) {
    let g = Golden::open("slide_example.json");
    let mut r = slide_run(loss);
    assert_close(
        &format!("grad_W1_{suffix}"),
        r.grads.a.weight.as_flattened(),
        &t(&g, &format!("grad_W1_{suffix}")).data,
        Tol::LAYER,
    );
    assert_close(
        &format!("grad_W2_{suffix}"),
        r.grads.b.b.a.weight.as_flattened(),
        &t(&g, &format!("grad_W2_{suffix}")).data,
        Tol::LAYER,
    );
    // The bias gradients are the deltas (they would move biases the slide does not have):
    // check them, then drop them so the biases stay fixed at zero.
    assert_close("bias grad hidden", &r.grads.a.bias, &r.deltas.mid, Tol::LAYER);
    assert_close("bias grad output", &r.grads.b.b.a.bias, &r.deltas.b.b.mid, Tol::LAYER);
    r.grads.a.bias = [0.0; 3];
    r.grads.b.b.a.bias = [0.0; 1];

    let lr = g.at("lr").f32();
    let mut sgd = Sgd::ZERO;
    sgd.step(&SgdConfig { lr: Schedule::Constant(lr) }, &mut r.net, &r.grads);
    assert_close(
        &format!("W1_after_sgd_{suffix}"),
        r.net.a.weight.as_flattened(),
        &t(&g, &format!("W1_after_sgd_{suffix}")).data,
        Tol::LAYER,
    );
    assert_close(
        &format!("W2_after_sgd_{suffix}"),
        r.net.b.b.a.weight.as_flattened(),
        &t(&g, &format!("W2_after_sgd_{suffix}")).data,
        Tol::LAYER,
    );
    assert_eq!((r.net.a.bias, r.net.b.b.a.bias), ([0.0; 3], [0.0; 1]), "biases must stay at zero");
}

#[test]
fn slide_grads_and_sgd_step_half_squared_error() {
    slide_grads_and_step(Mse::HALF_SUM, "half_se");
}

#[test]
fn slide_grads_and_sgd_step_mse() {
    slide_grads_and_step(Mse::MEAN, "mse");
}
