//! Finite-difference gradient checks of every layer, activation and loss, and of whole
//! networks (see [`tinytrain_tests::gradcheck`] for the method and the tolerances:
//! Richardson-extrapolated central differences at h = 1e-2 and 5e-3, computed in f64 from f32
//! forward passes; a coordinate passes within rtol 1e-3 · |g| + atol 1e-4 · max(1, max |g|)).
//!
//! Adding a layer is one line: `layer_case!(test_name, LayerType);`.
#![allow(clippy::unwrap_used)]

use tinytrain::prelude::*;
use tinytrain::zoo::Xor;
use tinytrain_tests::gradcheck::{
    Linear, LossHead, Options, check_layer, check_layer_with, check_loss, random_tensor, try_check_layer,
    try_check_loss,
};

/// One test per layer type: seeded TorchDefault init, random input away from 0, random
/// linear head; parameter and input gradients checked, no kink allowed.
macro_rules! layer_case {
    ($name:ident, $layer:ty) => {
        layer_case!($name, $layer, Options::SMOOTH);
    };
    ($name:ident, $layer:ty, $opts:expr) => {
        #[test]
        fn $name() {
            for seed in 0..3 {
                check_layer::<$layer>(concat!(stringify!($layer), " seed "), seed, &$opts);
            }
        }
    };
}

layer_case!(dense_5_3, Dense<5, 3>);
layer_case!(dense_1_1, Dense<1, 1>);
layer_case!(dense_17_9, Dense<17, 9>);
layer_case!(sigmoid, Sigmoid<7>);
layer_case!(tanh, Tanh<7>);
layer_case!(relu, Relu<7>);
layer_case!(leaky_relu_torch, LeakyRelu<7>);
layer_case!(leaky_relu_keras, LeakyRelu<7, KerasSlope>);
layer_case!(elu, Elu<7>);
layer_case!(softmax, Softmax<6>);
layer_case!(tanh_on_a_matrix, Act<TanhFn, [[f32; 3]; 2]>);
layer_case!(relu_on_a_chw_tensor, Act<ReluFn, [[[f32; 3]; 2]; 2]>);
layer_case!(chain_dense_tanh_dense, tinytrain::sequential![Dense<4, 8>, Tanh<8>, Dense<8, 3>]);
layer_case!(chain_with_softmax_output, tinytrain::sequential![Dense<3, 5>, Sigmoid<5>, Dense<5, 4>, Softmax<4>]);
// Maxout: a kink is an input or weight step that changes the winning piece.
layer_case!(maxout_5_3x4, Maxout<5, 3, 4>, Options::SMOOTH.allowing_kinks(3));
layer_case!(maxout_1_1x2, Maxout<1, 1, 2>, Options::SMOOTH.allowing_kinks(1));

/// BatchNorm with random statistics (the initialisation makes them 0 and 1, gamma 1, beta 0).
fn batchnorm_case<L: Layer>(name: &str, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut layer = Box::new(L::ZERO);
    layer.visit_mut(&mut |d, slot| {
        if let tinytrain::params::Slot::Mut(p) = slot {
            for v in p.iter_mut() {
                // Variances in [0.05, 2]; the rest in +-1.5.
                *v = if d.name == "running_var" { rng.uniform(0.05, 2.0) } else { rng.uniform(-1.5, 1.5) };
            }
        }
    });
    let x: Box<L::Input> = Box::new(random_tensor(&mut rng, 1.5, 0.1));
    let head = Linear(random_tensor::<L::Output>(&mut rng, 1.0, 0.05));
    check_layer_with(name, &mut *layer, &x, &head, &Options::SMOOTH);
}

#[test]
fn batchnorm1d() {
    for seed in 0..3 {
        batchnorm_case::<BatchNorm1d<6>>("BatchNorm1d<6>", seed);
    }
}

#[test]
fn batchnorm1d_on_sequences() {
    for seed in 0..3 {
        batchnorm_case::<BatchNorm1dSeq<3, 5>>("BatchNorm1dSeq<3, 5>", seed);
    }
}

#[test]
fn batchnorm2d() {
    for seed in 0..3 {
        batchnorm_case::<BatchNorm2d<3, 2, 4>>("BatchNorm2d<3, 2, 4>", seed);
    }
}

#[test]
fn batchnorm_in_a_network() {
    type Net = tinytrain::sequential![Dense<4, 6>, BatchNorm1d<6>, Tanh<6>, Maxout<6, 3, 2>, Dense<3, 2>];
    network_case::<Net, _>("dense-bn-tanh-maxout + CE", &CrossEntropy, &1, 5, &Options::SMOOTH.allowing_kinks(2));
}

/// Softmax at large logits: the gradient is still right (it is tiny but not NaN).
#[test]
fn softmax_at_shifted_logits() {
    let x = [1000.0f32, 1001.0, 1002.0, 999.0];
    let head = Linear([0.7f32, -0.6, -0.1, 0.25]);
    // Steps must be representable at 1000 (f32 spacing 6e-5 there).
    let opts = Options::SMOOTH.with_step(0.05);
    let mut layer = Softmax::<4>::ZERO;
    check_layer_with("Softmax<4> at 1000", &mut layer, &x, &head, &opts);
}

/// A network checked through a loss rather than a linear head.
fn network_case<M: Layer, L: Loss<M::Output>>(name: &str, loss: &L, target: &L::Target, seed: u64, opts: &Options) {
    let mut rng = Rng::new(seed);
    let mut net = Box::new(M::ZERO);
    net.init_with(Init::TorchDefault, &mut rng);
    let x: M::Input = random_tensor(&mut rng, 1.0, 0.0);
    check_layer_with(name, &mut *net, &x, &LossHead { loss, target }, opts);
}

type Mixed = tinytrain::sequential![
    Dense<4, 6>,
    Tanh<6>,
    Dense<6, 5>,
    LeakyRelu<5>,
    Dense<5, 5>,
    Elu<5>,
    Dense<5, 4>,
    Sigmoid<4>,
    Dense<4, 3>
];

#[test]
fn whole_network_cross_entropy() {
    for seed in 0..4 {
        // LeakyReLU and ELU pre-activations are not controlled here; a kink inside a step is
        // detected and skipped, and at most 2 of the 124 coordinates may be.
        network_case::<Mixed, _>(
            "mixed network + cross-entropy",
            &CrossEntropy,
            &(seed as usize % 3),
            seed,
            &Options::SMOOTH.allowing_kinks(2),
        );
    }
}

#[test]
fn whole_network_xor_mse() {
    for seed in 0..4 {
        network_case::<Xor, _>("zoo::Xor + MSE", &Mse::MEAN, &[1.0], seed, &Options::SMOOTH);
    }
}

#[test]
fn whole_network_relu_mlp_hinge() {
    type ReluMlp = tinytrain::sequential![Dense<6, 10>, Relu<10>, Dense<10, 4>];
    // ReLU pre-activations and hinge margins are not controlled: at most 12 of the 120
    // coordinates (10 %) may hold a kink.
    for seed in 0..4 {
        let hinge = Hinge { kind: HingeKind::CrammerSinger };
        network_case::<ReluMlp, _>("ReLU MLP + hinge", &hinge, &1, seed, &Options::SMOOTH.allowing_kinks(12));
    }
}

// ---- losses -------------------------------------------------------------------------------

const N: usize = 5;

fn scores(rng: &mut Rng) -> [f32; N] {
    random_tensor(rng, 2.0, 0.0)
}

#[test]
fn mse_all_reductions() {
    let mut rng = Rng::new(11);
    for _ in 0..5 {
        let (y, t) = (scores(&mut rng), scores(&mut rng));
        check_loss("Mse::MEAN", &Mse::MEAN, &y, &t, &Options::SMOOTH);
        check_loss("Mse::SUM", &Mse::SUM, &y, &t, &Options::SMOOTH);
        check_loss("Mse::HALF_SUM", &Mse::HALF_SUM, &y, &t, &Options::SMOOTH);
    }
}

#[test]
fn mae_away_from_its_kink() {
    let mut rng = Rng::new(12);
    for _ in 0..5 {
        let t = scores(&mut rng);
        // y - t at least 0.1 away from 0: no kink inside a step.
        let offset: [f32; N] = random_tensor(&mut rng, 1.0, 0.1);
        let y: [f32; N] = core::array::from_fn(|i| t[i] + offset[i]);
        check_loss("Mae", &Mae, &y, &t, &Options::SMOOTH);
    }
}

#[test]
fn cross_entropy() {
    let mut rng = Rng::new(13);
    for label in 0..N {
        check_loss("CrossEntropy", &CrossEntropy, &scores(&mut rng), &label, &Options::SMOOTH);
    }
}

#[test]
fn binary_cross_entropy_from_probabilities() {
    let mut rng = Rng::new(14);
    for _ in 0..5 {
        let y: [f32; N] = core::array::from_fn(|_| rng.uniform(0.15, 0.85));
        let t: [f32; N] = core::array::from_fn(|_| rng.uniform(0.0, 1.0));
        // ln is curved near 0 and 1: a smaller step keeps the h^4 term small.
        check_loss(
            "BCE probabilities",
            &BinaryCrossEntropy { from_logits: false },
            &y,
            &t,
            &Options::SMOOTH.with_step(2e-3),
        );
    }
}

#[test]
fn binary_cross_entropy_from_logits() {
    let mut rng = Rng::new(15);
    for _ in 0..5 {
        let z: [f32; N] = random_tensor(&mut rng, 4.0, 0.0);
        let t: [f32; N] = core::array::from_fn(|_| rng.uniform(0.0, 1.0));
        check_loss("BCE logits", &BinaryCrossEntropy { from_logits: true }, &z, &t, &Options::SMOOTH);
    }
}

/// Scores whose hinge margins and pairwise differences are all at least `gap` from a kink.
fn hinge_scores(rng: &mut Rng, label: usize, gap: f32) -> [f32; N] {
    loop {
        let s = scores(rng);
        let margins_ok = (0..N).filter(|&j| j != label).all(|j| (s[j] - s[label] + 1.0).abs() >= gap);
        let ties_ok = (0..N).all(|i| (0..i).all(|j| (s[i] - s[j]).abs() >= gap));
        if margins_ok && ties_ok {
            return s;
        }
    }
}

#[test]
fn hinge_all_kinds() {
    let mut rng = Rng::new(16);
    for kind in [HingeKind::WestonWatkins, HingeKind::MultiMargin, HingeKind::CrammerSinger] {
        for label in 0..N {
            let s = hinge_scores(&mut rng, label, 0.05);
            let report = check_loss(&format!("Hinge {kind:?}"), &Hinge { kind }, &s, &label, &Options::SMOOTH);
            assert_eq!(report.checked, N);
        }
    }
}

#[test]
fn binary_hinge() {
    let mut rng = Rng::new(17);
    for _ in 0..5 {
        let t: [f32; N] = core::array::from_fn(|_| if rng.next_f32() < 0.5 { 0.0 } else { 1.0 });
        let s: [f32; N] = loop {
            let s = scores(&mut rng);
            if s.iter().zip(&t).all(|(&v, &tt)| (1.0 - if tt > 0.5 { v } else { -v }).abs() >= 0.05) {
                break s;
            }
        };
        check_loss("BinaryHinge", &BinaryHinge, &s, &t, &Options::SMOOTH);
    }
}

// ---- the checker itself can fail ----------------------------------------------------------

/// Tanh with a wrong derivative (sigmoid's, y(1 - y)), to show the checker catches it.
#[derive(Debug, Clone, PartialEq)]
struct WrongTanh;

impl Layer for WrongTanh {
    type Input = [f32; 4];
    type Output = [f32; 4];
    type Acts = ();
    const ZERO: Self = WrongTanh;

    fn forward(&self, x: &[f32; 4], _acts: &mut (), y: &mut [f32; 4], _mode: &mut Mode) {
        for (yi, xi) in y.iter_mut().zip(x) {
            *yi = xi.tanh();
        }
    }

    fn backward(
        &self,
        _x: &[f32; 4],
        _acts: &(),
        y: &[f32; 4],
        dy: &[f32; 4],
        _deltas: &mut (),
        _grads: Option<&mut Self>,
        dx: Option<&mut [f32; 4]>,
    ) {
        if let Some(dx) = dx {
            for ((d, yi), g) in dx.iter_mut().zip(y).zip(dy) {
                *d = g * yi * (1.0 - yi);
            }
        }
    }

    fn describe(_f: &mut impl FnMut(&tinytrain::layer::LayerInfo)) {}
    fn visit_outputs(_acts: &(), _y: &[f32; 4], _f: &mut impl FnMut(tinytrain::layer::UnitKind, &[f32])) {}
}

/// No tensors: the empty marker impl is all a layer without parameters needs.
impl tinytrain::Leaf for WrongTanh {}

#[test]
fn the_checker_rejects_a_wrong_layer_gradient() {
    let report = try_check_layer(&mut WrongTanh, &[0.3, -0.8, 1.2, 0.5], &Linear([1.0; 4]), &Options::SMOOTH);
    assert!(!report.passed(&Options::SMOOTH) && report.failures.len() == 4, "{report:?}");
}

#[test]
fn the_checker_rejects_a_gradient_off_by_one_percent() {
    // Dense's true gradient is checked against a loss whose reported gradient is 1 % too big.
    #[derive(Debug)]
    struct Inflated;
    impl Loss<[f32; 3]> for Inflated {
        type Target = [f32; 3];
        const NAME: &'static str = "inflated";
        fn loss_and_grad(&self, y: &[f32; 3], t: &[f32; 3], scale: f32, dy: &mut [f32; 3]) -> Result<f32, Error> {
            let l = Mse::SUM.loss_and_grad(y, t, scale * 1.01, dy)?;
            Ok(l)
        }
        fn loss(&self, y: &[f32; 3], t: &[f32; 3]) -> Result<f32, Error> {
            Mse::SUM.loss(y, t)
        }
        fn correct(&self, _y: &[f32; 3], _t: &[f32; 3]) -> bool {
            true
        }
    }
    let report = try_check_loss(&Inflated, &[0.5, -1.0, 2.0], &[0.0, 0.0, 0.0], &Options::SMOOTH);
    assert!(!report.passed(&Options::SMOOTH), "{report:?}");
    // And the kink detector does not hide a true kink's wrong side: ReLU exactly at 0 is skipped,
    // so a layer check that requires no kinks fails.
    let mut relu = Relu::<2>::ZERO;
    let report = try_check_layer(&mut relu, &[0.0, 1.0], &Linear([1.0, 1.0]), &Options::SMOOTH);
    assert_eq!((report.kinks, report.passed(&Options::SMOOTH)), (1, false), "{report:?}");
}
