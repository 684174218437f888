//! Golden vectors for the image layers: every case of `conv2d.json` and `pooling.json`, made
//! by PyTorch in float64 (see `golden/README.md`).
//!
//! Forward per sample, backward per sample with the parameter gradients accumulating over the
//! batch (the golden parameter gradients are summed over the batch). Tolerance: abs 1e-5 +
//! rel 1e-4 ([`Tol::LAYER`]).

use tinytrain::prelude::*;
use tinytrain_tests::{Golden, Tol, assert_close};

/// A tensor of type `T` from the first `T::LEN` values of `data`.
fn tensor<T: Tensor>(data: &[f32]) -> T {
    let mut t = T::ZERO;
    t.flat_mut().copy_from_slice(&data[..T::LEN]);
    t
}

/// Runs a golden case through layer `L` (built by `make` from the case), one sample at a time.
fn run_case<L: Layer>(file: &'static str, case: &str, make: impl Fn(&tinytrain_tests::Node<'_>) -> L) {
    let g = Golden::open(file);
    let c = g.at("cases").at(case);
    let layer = make(&c);
    let input = c.at("input").tensor();
    let grad_output = c.at("grad_output").tensor();
    let batch = input.shape[0];
    assert_eq!(input.data.len(), batch * <L::Input as Tensor>::LEN, "{case}: input size");
    assert_eq!(grad_output.data.len(), batch * <L::Output as Tensor>::LEN, "{case}: output size");

    let mut grads = L::GRADS_ZERO;
    let (mut out, mut grad_in) = (Vec::new(), Vec::new());
    for n in 0..batch {
        let x: L::Input = tensor(&input.data[n * L::Input::LEN..]);
        let dy: L::Output = tensor(&grad_output.data[n * L::Output::LEN..]);
        let mut acts = <L::Acts as Zero>::ZERO;
        let mut deltas = <L::Acts as Zero>::ZERO;
        let mut y = L::Output::ZERO;
        let mut dx = L::Input::ZERO;
        dx.flat_mut().fill(f32::NAN);
        layer.forward(&x, &mut acts, &mut y, &mut Mode::Infer);
        layer.backward(&x, &acts, &y, &dy, &mut deltas, Some(&mut grads), Some(&mut dx));
        out.extend_from_slice(y.flat());
        grad_in.extend_from_slice(dx.flat());
    }
    assert_close(&format!("{case} output"), &out, &c.at("output").tensor().data, Tol::LAYER);
    assert_close(&format!("{case} grad_input"), &grad_in, &c.at("grad_input").tensor().data, Tol::LAYER);
    let mut params = Vec::new();
    L::visit_grads(&grads, &mut |p| params.push(p.to_vec()));
    if c.has("grad_weight") {
        assert_close(&format!("{case} grad_weight"), &params[0], &c.at("grad_weight").tensor().data, Tol::LAYER);
        assert_close(&format!("{case} grad_bias"), &params[1], &c.at("grad_bias").tensor().data, Tol::LAYER);
    } else {
        assert!(params.is_empty(), "{case}: a pooling layer has no parameters");
    }
}

/// A convolution case: stride and padding as the file says, weights and bias from the file.
fn conv_case<const S: usize, const P: usize, const HO: usize, const WO: usize>(case: &str) {
    run_case("conv2d.json", case, |c| {
        assert_eq!(c.at("stride").f32() as usize, S, "{case}: stride");
        assert_eq!(c.at("padding").f32() as usize, P, "{case}: padding");
        let mut conv = Conv2d::<2, 3, 3, S, P, 7, 7, HO, WO>::ZERO;
        let w = c.at("weight").tensor();
        assert_eq!(w.shape, [3, 2, 3, 3]);
        conv.weight.as_flattened_mut().as_flattened_mut().as_flattened_mut().copy_from_slice(&w.data);
        conv.bias = c.at("bias").tensor().array();
        conv
    });
}

fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v
}

#[test]
fn every_golden_case_is_covered() {
    let conv = Golden::open("conv2d.json");
    assert_eq!(sorted(conv.at("cases").keys()), ["stride1_pad0", "stride1_pad0_batch2", "stride2_pad1"]);
    let pool = Golden::open("pooling.json");
    assert_eq!(
        sorted(pool.at("cases").keys()),
        sorted(vec![
            "maxpool2x2_ties",
            "maxpool2x2_no_ties",
            "maxpool2x2_odd_5x5",
            "avgpool2x2_basic",
            "avgpool2x2_no_ties",
            "avgpool2x2_odd_5x5",
        ])
    );
}

#[test]
fn conv2d_stride1_pad0() {
    conv_case::<1, 0, 5, 5>("stride1_pad0");
}

#[test]
fn conv2d_stride2_pad1() {
    conv_case::<2, 1, 4, 4>("stride2_pad1");
}

#[test]
fn conv2d_stride1_pad0_batch2_sums_parameter_gradients() {
    conv_case::<1, 0, 5, 5>("stride1_pad0_batch2");
}

#[test]
fn maxpool_ties_send_the_gradient_to_the_first_maximum() {
    run_case("pooling.json", "maxpool2x2_ties", |_| MaxPool2x2::<2, 4, 4, 2, 2>::ZERO);
}

#[test]
fn maxpool_no_ties() {
    run_case("pooling.json", "maxpool2x2_no_ties", |_| MaxPool2x2::<2, 4, 4, 2, 2>::ZERO);
}

#[test]
fn maxpool_odd_size_floor_mode() {
    run_case("pooling.json", "maxpool2x2_odd_5x5", |_| MaxPool2x2::<1, 5, 5, 2, 2>::ZERO);
}

#[test]
fn avgpool_basic() {
    run_case("pooling.json", "avgpool2x2_basic", |_| AvgPool2x2::<2, 4, 4, 2, 2>::ZERO);
}

#[test]
fn avgpool_no_ties() {
    run_case("pooling.json", "avgpool2x2_no_ties", |_| AvgPool2x2::<2, 4, 4, 2, 2>::ZERO);
}

#[test]
fn avgpool_odd_size_floor_mode() {
    run_case("pooling.json", "avgpool2x2_odd_5x5", |_| AvgPool2x2::<1, 5, 5, 2, 2>::ZERO);
}
