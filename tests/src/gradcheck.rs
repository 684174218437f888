//! Finite-difference gradient checks for any [`Layer`] and any [`Loss`].
//!
//! The objective is a scalar function of the layer's output: a fixed random linear form
//! `f = Σ c_k·y_k` (so `dL/dy = c`), or a loss. The numeric derivative along one coordinate
//! (a parameter, an input element, or a loss argument) is a central difference computed in f64
//! from f32 forward passes, over the step actually taken in f32:
//!
//! ```text
//! D(h) = (f(v + h) - f(v - h)) / ((v + h) - (v - h))
//! ```
//!
//! taken at `h` and `h/2` and combined by Richardson extrapolation, `(4·D(h/2) − D(h)) / 3`,
//! which cancels the h² error term. When `D(h)` and `D(h/2)` disagree, the interval holds a
//! kink (ReLU at 0, a hinge margin, MAE at y = t); the coordinate is skipped and counted, and
//! [`Options::max_kinks`] bounds how many may be.
//!
//! A coordinate passes when
//! `|analytic − numeric| <= rtol·max(|analytic|, |numeric|) + atol·max(1, g_max)`, with `g_max`
//! the largest analytic component of that gradient: relative where the component is large,
//! and scaled to the gradient where it is close to zero, since an f32 forward pass carries
//! noise of about `1e-7·|f| / h` into every difference quotient. A gradient that is wrong by a
//! factor, a sign, a missing term of size > 1 % or a transposition fails.
//!
//! A new layer needs one line in `tests/gradcheck.rs`: `layer_case!(name, Type);` runs
//! [`check_layer`] on it with a seeded [`Init::TorchDefault`] initialisation and a random
//! input kept away from 0 (where ReLU-like kinks sit).
// A check that fails must fail the test, with a message.
#![allow(clippy::panic)]

use tinytrain::loss::Loss;
use tinytrain::{Init, Layer, Mode, Rng, Tensor, Zero};

use crate::{flat_grads, flat_trainable};

/// Step sizes and tolerances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// The larger step; the second is half of it.
    pub h: f32,
    /// Relative tolerance.
    pub rtol: f64,
    /// Absolute tolerance, times `max(1, g_max)`.
    pub atol: f64,
    /// How many coordinates may be skipped because their interval holds a kink.
    pub max_kinks: usize,
}

impl Options {
    /// For smooth layers and losses: h = 1e-2, rtol 1e-3, atol 1e-4, no kinks.
    pub const SMOOTH: Options = Options { h: 1e-2, rtol: 1e-3, atol: 1e-4, max_kinks: 0 };

    /// The same tolerances, with up to `n` kinks allowed (networks with ReLU inside).
    #[must_use]
    pub const fn allowing_kinks(self, n: usize) -> Options {
        Options { max_kinks: n, ..self }
    }

    /// The same, with step `h`.
    #[must_use]
    pub const fn with_step(self, h: f32) -> Options {
        Options { h, ..self }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options::SMOOTH
    }
}

/// Outcome of a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Coordinates compared.
    pub checked: usize,
    /// Coordinates skipped because of a kink.
    pub kinks: usize,
    /// Worst `|a − n| / tolerance` over the compared coordinates (<= 1 passes).
    pub worst_ratio: f64,
    /// Descriptions of the failing coordinates (empty when the check passes).
    pub failures: Vec<String>,
}

impl Report {
    fn new() -> Self {
        Report { checked: 0, kinks: 0, worst_ratio: 0.0, failures: Vec::new() }
    }

    /// Whether every compared coordinate passed and the kinks stayed within the bound.
    #[must_use]
    pub fn passed(&self, opts: &Options) -> bool {
        self.failures.is_empty() && self.kinks <= opts.max_kinks && self.checked > 0
    }

    /// Panics with the failures unless the check [`passed`](Report::passed).
    #[track_caller]
    pub fn assert_passed(&self, name: &str, opts: &Options) {
        assert!(
            self.passed(opts),
            "gradient check of {name} failed: {} compared, {} kinks (at most {} allowed), worst ratio {:.3}\n  {}",
            self.checked,
            self.kinks,
            opts.max_kinks,
            self.worst_ratio,
            self.failures.iter().take(12).cloned().collect::<Vec<_>>().join("\n  ")
        );
    }
}

/// The numeric derivative of `f` at `v`, or `None` when `[v − h, v + h]` holds a kink.
///
/// Four estimates are formed: central differences at `h` and `h/2`, and second-order
/// one-sided differences from the right and from the left. On a smooth function they agree to
/// O(h²) plus rounding noise; a kink anywhere in the interval (also exactly at `v`, where the
/// central differences agree with each other but not with the one-sided ones) moves at least
/// one of them by the jump of the derivative.
fn numeric(f: &mut impl FnMut(f32) -> f64, v: f32, opts: &Options) -> Option<f64> {
    let (h, h2) = (opts.h, opts.h / 2.0);
    let (up, down, up2, down2) = (v + h, v - h, v + h2, v - h2);
    let f0 = f(v);
    let (f_up, f_down, f_up2, f_down2) = (f(up), f(down), f(up2), f(down2));
    let wide = |a: f32, b: f32| f64::from(a) - f64::from(b);
    let d1 = (f_up - f_down) / wide(up, down);
    let d2 = (f_up2 - f_down2) / wide(up2, down2);
    let right = (-3.0 * f0 + 4.0 * f_up2 - f_up) / wide(up, v);
    let left = (3.0 * f0 - 4.0 * f_down2 + f_down) / wide(v, down);
    // Rounding noise of the one-sided formulas: 8 values of relative error ~4 eps over h.
    let scale = [f0, f_up, f_down].iter().fold(1.0f64, |m, x| m.max(x.abs()));
    let noise = 32.0 * f64::from(f32::EPSILON) * scale / f64::from(h);
    let agree = |a: f64, b: f64| (a - b).abs() <= 10.0 * (opts.rtol * a.abs().max(b.abs()) + opts.atol) + noise;
    (agree(d1, d2) && agree(right, left) && agree(d2, right) && agree(d2, left)).then(|| (4.0 * d2 - d1) / 3.0)
}

/// Compares `analytic` with the numeric derivatives `numeric[i]` (None: kink).
fn compare(report: &mut Report, what: &str, analytic: &[f32], numeric: &[Option<f64>], opts: &Options) {
    let g_max = analytic.iter().fold(1.0f64, |m, &a| m.max(f64::from(a).abs()));
    for (i, (&a, n)) in analytic.iter().zip(numeric).enumerate() {
        let Some(n) = *n else {
            report.kinks += 1;
            continue;
        };
        let a = f64::from(a);
        let tol = opts.rtol * a.abs().max(n.abs()) + opts.atol * g_max;
        let ratio = if a.is_finite() { (a - n).abs() / tol } else { f64::INFINITY };
        report.checked += 1;
        if ratio.is_nan() || ratio > report.worst_ratio {
            report.worst_ratio = ratio;
        }
        if ratio.is_nan() || ratio > 1.0 {
            report.failures.push(format!("{what}[{i}]: analytic {a:.7e}, numeric {n:.7e}, tolerance {tol:.2e}"));
        }
    }
}

/// A scalar function of a tensor with its gradient: the part of the objective after the
/// layer under test.
pub trait Head<Y> {
    /// The value, with `dL/dy` written into `dy`.
    fn eval(&self, y: &Y, dy: &mut Y) -> f64;
}

/// `f = Σ c_k·y_k`, evaluated in f64.
#[derive(Debug, Clone)]
pub struct Linear<Y>(pub Y);

impl<Y: Tensor> Head<Y> for Linear<Y> {
    fn eval(&self, y: &Y, dy: &mut Y) -> f64 {
        dy.flat_mut().copy_from_slice(self.0.flat());
        y.flat().iter().zip(self.0.flat()).map(|(&a, &c)| f64::from(a) * f64::from(c)).sum()
    }
}

/// A loss with its target, as the head of a network.
#[derive(Debug, Clone)]
pub struct LossHead<'a, L, T> {
    /// The loss.
    pub loss: &'a L,
    /// The target.
    pub target: &'a T,
}

impl<Y: Tensor, L: Loss<Y>> Head<Y> for LossHead<'_, L, L::Target> {
    fn eval(&self, y: &Y, dy: &mut Y) -> f64 {
        match self.loss.loss_and_grad(y, self.target, 1.0, dy) {
            Ok(v) => f64::from(v),
            Err(e) => panic!("loss failed during a gradient check: {e}"),
        }
    }
}

/// A tensor of uniform values in `±scale`, each at least `gap` away from 0.
#[must_use]
pub fn random_tensor<T: Tensor>(rng: &mut Rng, scale: f32, gap: f32) -> T {
    let mut t = T::ZERO;
    for v in t.flat_mut() {
        *v = loop {
            let u = rng.uniform(-scale, scale);
            if u.abs() >= gap {
                break u;
            }
        };
    }
    t
}

fn copy_of<T: Tensor>(x: &T) -> T {
    let mut c = T::ZERO;
    c.flat_mut().copy_from_slice(x.flat());
    c
}

fn value<L: Layer>(layer: &L, x: &L::Input, head: &impl Head<L::Output>) -> f64 {
    let mut acts = <L::Acts as Zero>::ZERO;
    let mut y = <L::Output as Zero>::ZERO;
    let mut dy = <L::Output as Zero>::ZERO;
    layer.forward(x, &mut acts, &mut y, &mut Mode::Infer);
    head.eval(&y, &mut dy)
}

/// Sets trainable parameter `k` (in visiting order) to `v` and returns its old value.
fn set_param<L: Layer>(layer: &mut L, k: usize, v: f32) -> f32 {
    let (mut at, mut old) = (0, f32::NAN);
    layer.visit_mut(&mut |d, slot| {
        if d.role != tinytrain::params::Role::Trainable {
            return;
        }
        if let tinytrain::params::Slot::Mut(p) = slot {
            if (at..at + p.len()).contains(&k) {
                old = p[k - at];
                p[k - at] = v;
            }
            at += p.len();
        }
    });
    old
}

/// Checks the parameter and input gradients of `layer.backward` at input `x` against central
/// differences of `head ∘ layer`, without asserting.
pub fn try_check_layer<L: Layer>(layer: &mut L, x: &L::Input, head: &impl Head<L::Output>, opts: &Options) -> Report {
    let mut acts = <L::Acts as Zero>::ZERO;
    let mut deltas = <L::Acts as Zero>::ZERO;
    let mut y = <L::Output as Zero>::ZERO;
    let mut dy = <L::Output as Zero>::ZERO;
    let mut dx = <L::Input as Zero>::ZERO;
    let mut grads = L::GRADS_ZERO;
    layer.forward(x, &mut acts, &mut y, &mut Mode::Infer);
    head.eval(&y, &mut dy);
    layer.backward(x, &acts, &y, &dy, &mut deltas, Some(&mut grads), Some(&mut dx));

    let mut report = Report::new();
    let analytic = flat_grads::<L>(&grads);
    let params = flat_trainable(layer);
    let numeric_params: Vec<Option<f64>> = params
        .iter()
        .enumerate()
        .map(|(k, &p)| {
            let d = numeric(
                &mut |v| {
                    set_param(layer, k, v);
                    value(layer, x, head)
                },
                p,
                opts,
            );
            set_param(layer, k, p);
            d
        })
        .collect();
    compare(&mut report, "param", &analytic, &numeric_params, opts);

    let mut xp = copy_of(x);
    let numeric_input: Vec<Option<f64>> = (0..L::Input::LEN)
        .map(|i| {
            let v0 = x.flat()[i];
            let d = numeric(
                &mut |v| {
                    xp.flat_mut()[i] = v;
                    value(layer, &xp, head)
                },
                v0,
                opts,
            );
            xp.flat_mut()[i] = v0;
            d
        })
        .collect();
    compare(&mut report, "input", dx.flat(), &numeric_input, opts);
    report
}

/// [`try_check_layer`], asserting that it passed.
#[track_caller]
pub fn check_layer_with<L: Layer>(
    name: &str,
    layer: &mut L,
    x: &L::Input,
    head: &impl Head<L::Output>,
    opts: &Options,
) -> Report {
    let report = try_check_layer(layer, x, head, opts);
    report.assert_passed(name, opts);
    report
}

/// The one-line check of a layer type: parameters from [`Init::TorchDefault`] (so biases are
/// non-zero), an input uniform in ±1.5 kept 0.1 away from 0, and a random linear head, all
/// drawn from `seed`.
#[track_caller]
pub fn check_layer<L: Layer>(name: &str, seed: u64, opts: &Options) -> Report {
    let mut rng = Rng::new(seed);
    let mut layer = Box::new(L::ZERO);
    layer.init_with(Init::TorchDefault, &mut rng);
    let x: Box<L::Input> = Box::new(random_tensor(&mut rng, 1.5, 0.1));
    let head = Linear(random_tensor::<L::Output>(&mut rng, 1.0, 0.05));
    check_layer_with(name, &mut *layer, &x, &head, opts)
}

/// Checks `loss.loss_and_grad` at `y` against central differences of `loss.loss`, and that
/// the returned value equals `loss.loss` and the gradient scales with `scale`.
pub fn try_check_loss<Y: Tensor, L: Loss<Y>>(loss: &L, y: &Y, target: &L::Target, opts: &Options) -> Report {
    let mut report = Report::new();
    let mut dy = Y::ZERO;
    let value = loss.loss_and_grad(y, target, 1.0, &mut dy);
    let plain = loss.loss(y, target);
    // Both routes must give the same value (to a few ulps: they may round differently).
    let same = match (value, plain) {
        (Ok(a), Ok(b)) => (f64::from(a) - f64::from(b)).abs() <= 1e-6 * f64::from(a).abs(),
        (a, b) => a == b,
    };
    if !same {
        report.failures.push(format!("loss_and_grad gives {value:?}, loss gives {plain:?}"));
    }
    let mut scaled = Y::ZERO;
    let _ = loss.loss_and_grad(y, target, 0.25, &mut scaled);
    for (i, (&g, &s)) in dy.flat().iter().zip(scaled.flat()).enumerate() {
        if (0.25 * f64::from(g) - f64::from(s)).abs() > 1e-6 * f64::from(g).abs() {
            report.failures.push(format!("grad[{i}] with scale 0.25 is {s}, expected a quarter of {g}"));
        }
    }
    let mut yp = copy_of(y);
    let numeric_y: Vec<Option<f64>> = (0..Y::LEN)
        .map(|i| {
            let v0 = y.flat()[i];
            let d = numeric(
                &mut |v| {
                    yp.flat_mut()[i] = v;
                    loss.loss(&yp, target).map_or(f64::NAN, f64::from)
                },
                v0,
                opts,
            );
            yp.flat_mut()[i] = v0;
            d
        })
        .collect();
    compare(&mut report, "dy", dy.flat(), &numeric_y, opts);
    report
}

/// [`try_check_loss`], asserting that it passed.
#[track_caller]
pub fn check_loss<Y: Tensor, L: Loss<Y>>(name: &str, loss: &L, y: &Y, target: &L::Target, opts: &Options) -> Report {
    let report = try_check_loss(loss, y, target, opts);
    report.assert_passed(name, opts);
    report
}
