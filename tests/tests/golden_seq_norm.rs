//! Golden vectors for the layers of issue 10: `conv1d.json`, `pooling1d.json`, `maxout.json`
//! and `batchnorm.json`, made by PyTorch in float64 (see `golden/README.md`).
//!
//! Forward per sample, backward per sample with the parameter gradients accumulating over the
//! batch (the golden parameter gradients are summed over the batch). The layers' tensors are
//! loaded from the case by the names the layers give them (`weight`, `bias`, `running_mean`,
//! `running_var`). Tolerance: abs 1e-5 + rel 1e-4 ([`Tol::LAYER`]).
#![allow(clippy::unwrap_used)]

use tinytrain::params::Slot;
use tinytrain::prelude::*;
use tinytrain_tests::{Golden, Node, Tol, assert_close};

/// A tensor of type `T` from the first `T::LEN` values of `data`.
fn tensor<T: Tensor>(data: &[f32]) -> T {
    let mut t = T::ZERO;
    t.flat_mut().copy_from_slice(&data[..T::LEN]);
    t
}

/// Largest `|a - b|`, printed with `--nocapture`.
fn max_err(what: &str, a: &[f32], b: &[f32]) -> f32 {
    let e = a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    println!("{what}: max abs error {e:.3e}");
    e
}

/// Layer `L` with every tensor the case names, by the layer's own tensor names (boxed, as
/// `run_case` takes it).
#[allow(clippy::unnecessary_box_returns)]
fn load<L: Layer>(c: &Node<'_>) -> Box<L> {
    let mut layer = Box::new(L::ZERO);
    layer.visit_mut(&mut |d, slot| {
        if let Slot::Mut(p) = slot {
            let t = c.at(d.name).tensor();
            assert_eq!(t.shape, d.shape, "{}: shape", d.name);
            p.copy_from_slice(&t.data);
        }
    });
    layer
}

/// Runs a golden case through `layer`, one sample at a time.
fn run_case<L: Layer>(file: &'static str, case: &str, layer: impl Fn(&Node<'_>) -> Box<L>) {
    let g = Golden::open(file);
    let c = g.at("cases").at(case);
    let layer = layer(&c);
    let input = c.at("input").tensor();
    let grad_output = c.at("grad_output").tensor();
    let batch = input.shape[0];
    assert_eq!(input.data.len(), batch * <L::Input as Tensor>::LEN, "{case}: input size");
    assert_eq!(grad_output.data.len(), batch * <L::Output as Tensor>::LEN, "{case}: output size");

    let mut grads = Box::new(L::GRADS_ZERO);
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
    let (want_out, want_in) = (c.at("output").tensor().data, c.at("grad_input").tensor().data);
    max_err(&format!("{file} {case} output"), &out, &want_out);
    max_err(&format!("{file} {case} grad_input"), &grad_in, &want_in);
    assert_close(&format!("{case} output"), &out, &want_out, Tol::LAYER);
    assert_close(&format!("{case} grad_input"), &grad_in, &want_in, Tol::LAYER);
    let mut params = Vec::new();
    L::visit_grads(&grads, &mut |p| params.push(p.to_vec()));
    if c.has("grad_weight") {
        let (gw, gb) = (c.at("grad_weight").tensor().data, c.at("grad_bias").tensor().data);
        max_err(&format!("{file} {case} grad_weight"), &params[0], &gw);
        max_err(&format!("{file} {case} grad_bias"), &params[1], &gb);
        assert_close(&format!("{case} grad_weight"), &params[0], &gw, Tol::LAYER);
        assert_close(&format!("{case} grad_bias"), &params[1], &gb, Tol::LAYER);
        assert_eq!(params.len(), 2, "{case}: two trainable tensors");
    } else {
        assert!(params.is_empty(), "{case}: a pooling layer has no parameters");
    }
}

fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v
}

#[test]
fn every_golden_case_is_covered() {
    let keys = |f| sorted(Golden::open(f).at("cases").keys()).into_iter().map(String::from).collect::<Vec<_>>();
    assert_eq!(keys("conv1d.json"), ["kernel5_stride3_pad2", "stride1_pad0", "stride1_pad2_batch2", "stride2_pad1"]);
    assert_eq!(
        keys("pooling1d.json"),
        [
            "avgpool1d_k2s2_basic",
            "avgpool1d_k3s2_odd_7",
            "global_avgpool1d_batch2",
            "maxpool1d_k2s2_no_ties",
            "maxpool1d_k2s2_ties",
            "maxpool1d_k3s2_odd_7"
        ]
    );
    assert_eq!(keys("maxout.json"), ["random_5_3x4_batch3", "ties_4_2x3_batch2"]);
    assert_eq!(keys("batchnorm.json"), ["bn1d_4_batch3", "bn1d_seq_3x7_batch2", "bn2d_3x4x5_batch2"]);
    let bn = Golden::open("batchnorm.json");
    assert_eq!(
        sorted(bn.at("update_bn_cases").keys()),
        ["update_bn_1d_3_n10_batch4", "update_bn_1d_seq_2x5_n7_batch3", "update_bn_2d_2x3x3_n5_batch2"]
    );
}

/// A Conv1d case with kernel, stride and padding as the file says.
fn conv1d_case<const K: usize, const S: usize, const P: usize, const LO: usize>(case: &str) {
    run_case("conv1d.json", case, |c| {
        assert_eq!(c.at("kernel").f32() as usize, K, "{case}: kernel");
        assert_eq!(c.at("stride").f32() as usize, S, "{case}: stride");
        assert_eq!(c.at("padding").f32() as usize, P, "{case}: padding");
        load::<Conv1d<2, 3, K, S, P, 9, LO>>(c)
    });
}

#[test]
fn conv1d_stride1_pad0() {
    conv1d_case::<3, 1, 0, 7>("stride1_pad0");
}

#[test]
fn conv1d_stride2_pad1() {
    conv1d_case::<3, 2, 1, 5>("stride2_pad1");
}

#[test]
fn conv1d_stride1_pad2_batch2_sums_parameter_gradients() {
    conv1d_case::<3, 1, 2, 11>("stride1_pad2_batch2");
}

#[test]
fn conv1d_kernel5_stride3_pad2() {
    conv1d_case::<5, 3, 2, 3>("kernel5_stride3_pad2");
}

#[test]
fn maxpool1d_ties_send_the_gradient_to_the_first_maximum() {
    run_case("pooling1d.json", "maxpool1d_k2s2_ties", |_| Box::new(MaxPool1d::<2, 2, 2, 8, 4>::ZERO));
}

#[test]
fn maxpool1d_no_ties() {
    run_case("pooling1d.json", "maxpool1d_k2s2_no_ties", |_| Box::new(MaxPool1d::<2, 2, 2, 8, 4>::ZERO));
}

#[test]
fn maxpool1d_overlapping_windows_odd_length() {
    run_case("pooling1d.json", "maxpool1d_k3s2_odd_7", |_| Box::new(MaxPool1d::<2, 3, 2, 7, 3>::ZERO));
}

#[test]
fn avgpool1d_basic() {
    run_case("pooling1d.json", "avgpool1d_k2s2_basic", |_| Box::new(AvgPool1d::<2, 2, 2, 8, 4>::ZERO));
}

#[test]
fn avgpool1d_overlapping_windows_odd_length() {
    run_case("pooling1d.json", "avgpool1d_k3s2_odd_7", |_| Box::new(AvgPool1d::<2, 3, 2, 7, 3>::ZERO));
}

#[test]
fn global_avgpool1d() {
    run_case("pooling1d.json", "global_avgpool1d_batch2", |_| Box::new(GlobalAvgPool1d::<3, 7>::ZERO));
}

#[test]
fn maxout_random_pieces() {
    run_case("maxout.json", "random_5_3x4_batch3", load::<Maxout<5, 3, 4>>);
}

#[test]
fn maxout_ties_send_the_gradient_to_the_first_piece() {
    run_case("maxout.json", "ties_4_2x3_batch2", load::<Maxout<4, 2, 3>>);
    // The winners PyTorch reports are the ones the layer keeps.
    let g = Golden::open("maxout.json");
    let c = g.at("cases").at("ties_4_2x3_batch2");
    let m = load::<Maxout<4, 2, 3>>(&c);
    let input = c.at("input").tensor();
    let want = c.at("winner").tensor().data;
    for n in 0..2 {
        let (mut winner, mut y) = ([0usize; 2], [0.0; 2]);
        m.forward(&input.row_array(n), &mut winner, &mut y, &mut Mode::Infer);
        assert_eq!(winner.map(|k| k as f32), [want[2 * n], want[2 * n + 1]]);
    }
}

#[test]
fn batchnorm1d_eval_mode() {
    run_case("batchnorm.json", "bn1d_4_batch3", load::<BatchNorm1d<4>>);
}

#[test]
fn batchnorm1d_on_sequences_eval_mode() {
    run_case("batchnorm.json", "bn1d_seq_3x7_batch2", load::<BatchNorm1dSeq<3, 7>>);
}

#[test]
fn batchnorm2d_eval_mode() {
    run_case("batchnorm.json", "bn2d_3x4x5_batch2", load::<BatchNorm2d<3, 4, 5>>);
}

#[test]
fn batchnorm_refresh_matches_update_bn() {
    let g = Golden::open("batchnorm.json");
    let c = g.at("update_bn_cases").at("update_bn_1d_3_n10_batch4");
    let x = c.at("input").tensor();
    let mut bn = BatchNorm1d::<3>::ZERO;
    bn.running_mean = [3.0; 3];
    let n = bn.refresh_stats((0..x.rows()).map(|i| x.row_array::<3>(i)), 4).unwrap();
    assert_eq!(n, 3, "batches of 4, 4 and 2");
    let (m, v) = (c.at("running_mean").tensor().data, c.at("running_var").tensor().data);
    max_err("update_bn 1d running_mean", &bn.running_mean, &m);
    max_err("update_bn 1d running_var", &bn.running_var, &v);
    assert_close("update_bn 1d running_mean", &bn.running_mean, &m, Tol::LAYER);
    assert_close("update_bn 1d running_var", &bn.running_var, &v, Tol::LAYER);

    let c = g.at("update_bn_cases").at("update_bn_2d_2x3x3_n5_batch2");
    let x = c.at("input").tensor();
    let mut bn = BatchNorm2d::<2, 3, 3>::ZERO;
    let samples = (0..5).map(|i| tensor::<[[[f32; 3]; 3]; 2]>(&x.data[i * 18..]));
    let n = bn.refresh_stats(samples, 2).unwrap();
    assert_eq!(n, 3, "batches of 2, 2 and 1 images");
    let (m, v) = (c.at("running_mean").tensor().data, c.at("running_var").tensor().data);
    max_err("update_bn 2d running_mean", &bn.running_mean, &m);
    max_err("update_bn 2d running_var", &bn.running_var, &v);
    assert_close("update_bn 2d running_mean", &bn.running_mean, &m, Tol::LAYER);
    assert_close("update_bn 2d running_var", &bn.running_var, &v, Tol::LAYER);

    let c = g.at("update_bn_cases").at("update_bn_1d_seq_2x5_n7_batch3");
    let x = c.at("input").tensor();
    let mut bn = BatchNorm1dSeq::<2, 5>::ZERO;
    let samples = (0..7).map(|i| tensor::<[[f32; 5]; 2]>(&x.data[i * 10..]));
    let n = bn.refresh_stats(samples, 3).unwrap();
    assert_eq!(n, 3, "batches of 3, 3 and 1 sequences");
    let (m, v) = (c.at("running_mean").tensor().data, c.at("running_var").tensor().data);
    max_err("update_bn 1d seq running_mean", &bn.running_mean, &m);
    max_err("update_bn 1d seq running_var", &bn.running_var, &v);
    assert_close("update_bn 1d seq running_mean", &bn.running_mean, &m, Tol::LAYER);
    assert_close("update_bn 1d seq running_var", &bn.running_var, &v, Tol::LAYER);
}

type FoldMlp = tinytrain::sequential![Dense<6, 5>, BatchNorm1d<5>];
type FoldSeq = tinytrain::sequential![Conv1d<2, 3, 3, 2, 1, 9, 5>, BatchNorm1dSeq<3, 5>];
type FoldCnn = tinytrain::sequential![Conv2d<2, 3, 3, 1, 1, 5, 5, 5, 5>, BatchNorm2d<3, 5, 5>];

/// Folding a BatchNorm into the layer before it changes the outputs by rounding only.
#[test]
fn batchnorm_folds_into_the_layer_before_it() {
    use tinytrain_tests::gradcheck::random_tensor;
    let mut rng = Rng::new(3);
    let random_bn = |rng: &mut Rng, mean: &mut [f32], var: &mut [f32], gamma: &mut [f32], beta: &mut [f32]| {
        for i in 0..mean.len() {
            (mean[i], var[i]) = (rng.uniform(-1.0, 1.0), rng.uniform(0.01, 3.0));
            (gamma[i], beta[i]) = (rng.uniform(0.5, 1.5), rng.uniform(-0.5, 0.5));
        }
    };

    let mut net = FoldMlp::ZERO;
    net.init_with(Init::TorchDefault, &mut rng);
    let bn = &mut net.b;
    random_bn(&mut rng, &mut bn.running_mean, &mut bn.running_var, &mut bn.weight, &mut bn.bias);
    let mut folded = net.a.clone();
    net.b.fold_into(&mut folded);
    let mut worst = 0.0f32;
    for _ in 0..20 {
        let x: [f32; 6] = random_tensor(&mut rng, 2.0, 0.0);
        let (mut y, mut z) = ([0.0; 5], [0.0; 5]);
        let mut acts = <FoldMlp as Layer>::Acts::ZERO;
        net.predict(&x, &mut acts, &mut y);
        folded.predict(&x, &mut (), &mut z);
        worst = worst.max(max_err("fold dense", &y, &z));
    }
    assert!(worst <= 1e-5, "dense + BatchNorm1d folded: {worst}");

    let mut net = FoldCnn::ZERO;
    net.init_with(Init::TorchDefault, &mut rng);
    let bn = &mut net.b;
    random_bn(&mut rng, &mut bn.running_mean, &mut bn.running_var, &mut bn.weight, &mut bn.bias);
    let mut folded = net.a.clone();
    net.b.fold_into(&mut folded);
    for _ in 0..20 {
        let x: [[[f32; 5]; 5]; 2] = random_tensor(&mut rng, 2.0, 0.0);
        let (mut y, mut z) = ([[[0.0; 5]; 5]; 3], [[[0.0; 5]; 5]; 3]);
        let mut acts = <FoldCnn as Layer>::Acts::ZERO;
        net.predict(&x, &mut acts, &mut y);
        folded.predict(&x, &mut (), &mut z);
        worst = worst.max(max_err("fold conv", y.flat(), z.flat()));
    }
    assert!(worst <= 1e-5, "conv + BatchNorm2d folded: {worst}");

    let mut net = FoldSeq::ZERO;
    net.init_with(Init::TorchDefault, &mut rng);
    let bn = &mut net.b;
    random_bn(&mut rng, &mut bn.running_mean, &mut bn.running_var, &mut bn.weight, &mut bn.bias);
    let mut folded = net.a.clone();
    net.b.fold_into(&mut folded);
    for _ in 0..20 {
        let x: [[f32; 9]; 2] = random_tensor(&mut rng, 2.0, 0.0);
        let (mut y, mut z) = ([[0.0; 5]; 3], [[0.0; 5]; 3]);
        let mut acts = <FoldSeq as Layer>::Acts::ZERO;
        net.predict(&x, &mut acts, &mut y);
        folded.predict(&x, &mut (), &mut z);
        worst = worst.max(max_err("fold conv1d", y.flat(), z.flat()));
    }
    assert!(worst <= 1e-5, "conv1d + BatchNorm1dSeq folded: {worst}");
}
