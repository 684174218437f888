//! Activation layers: sigmoid, tanh, ReLU, leaky ReLU, ELU (element-wise) and softmax.
//!
//! Element-wise activations are one generic layer, [`Act<F, T>`], over a function `F` and any
//! tensor `T`; the aliases [`Relu<N>`], [`Sigmoid<N>`], ... cover vectors. For a CHW tensor write
//! `Act<ReluFn, [[[f32; W]; H]; C]>`.
//!
//! Derivatives at kinks follow PyTorch: relu'(0) = 0, leaky_relu'(0) = slope.
//! The leaky-ReLU slope is a type: [`TorchSlope`] (0.01, PyTorch's default, also the alias's
//! default) or [`KerasSlope`] (0.3, Keras `LeakyReLU`'s default); implement [`LeakySlope`]
//! for another value.
//!
//! ```
//! use tinytrain::prelude::*;
//! let mut y = [0.0f32; 3];
//! Relu::<3>::ZERO.predict(&[-1.0, 0.0, 2.0], &mut (), &mut y);
//! assert_eq!(y, [0.0, 0.0, 2.0]);
//! let mut y = [0.0f32; 2];
//! LeakyRelu::<2, KerasSlope>::ZERO.predict(&[-1.0, 1.0], &mut (), &mut y);
//! assert_eq!(y, [-0.3, 1.0]);
//! ```

use core::marker::PhantomData;

use crate::layer::{Layer, LayerInfo, Mode, UnitKind};
use crate::math::{exp, tanh};
use crate::params::Leaf;
use crate::tensor::Tensor;

/// An element-wise activation function and its derivative.
pub trait ActivationFn {
    /// Name in the summary (Keras spelling).
    const NAME: &'static str;
    /// Unit kind reported to monitors.
    const KIND: UnitKind = UnitKind::Other;
    /// f(x).
    fn f(x: f32) -> f32;
    /// f'(x), given x and y = f(x).
    fn df(x: f32, y: f32) -> f32;
    /// `y = f(x)` element by element (a function may run a kernel with the same bits).
    #[inline]
    fn f_slice(x: &[f32], y: &mut [f32]) {
        for (yi, &xi) in y.iter_mut().zip(x) {
            *yi = Self::f(xi);
        }
    }
    /// `dx = dy · f'(x, y)` element by element (a function may run a kernel with the same
    /// bits).
    #[inline]
    fn df_slice(x: &[f32], y: &[f32], dy: &[f32], dx: &mut [f32]) {
        for (((d, &xi), &yi), &g) in dx.iter_mut().zip(x).zip(y).zip(dy) {
            *d = g * Self::df(xi, yi);
        }
    }
}

/// Logistic sigmoid, 1/(1+e^-x), computed without overflow for large |x|.
#[derive(Debug, Clone, Copy)]
pub struct SigmoidFn;
impl ActivationFn for SigmoidFn {
    const NAME: &'static str = "Sigmoid";
    #[inline]
    fn f(x: f32) -> f32 {
        if x >= 0.0 {
            1.0 / (1.0 + exp(-x))
        } else {
            let e = exp(x);
            e / (1.0 + e)
        }
    }
    #[inline]
    fn df(_x: f32, y: f32) -> f32 {
        y * (1.0 - y)
    }
}

/// Hyperbolic tangent.
#[derive(Debug, Clone, Copy)]
pub struct TanhFn;
impl ActivationFn for TanhFn {
    const NAME: &'static str = "Tanh";
    #[inline]
    fn f(x: f32) -> f32 {
        tanh(x)
    }
    #[inline]
    fn df(_x: f32, y: f32) -> f32 {
        1.0 - y * y
    }
}

/// Rectified linear unit, max(x, 0); derivative 0 at 0.
#[derive(Debug, Clone, Copy)]
pub struct ReluFn;
impl ActivationFn for ReluFn {
    const NAME: &'static str = "ReLU";
    const KIND: UnitKind = UnitKind::Relu;
    #[inline]
    fn f(x: f32) -> f32 {
        if x > 0.0 { x } else { 0.0 }
    }
    #[inline]
    fn df(x: f32, _y: f32) -> f32 {
        if x > 0.0 { 1.0 } else { 0.0 }
    }
    #[inline]
    fn f_slice(x: &[f32], y: &mut [f32]) {
        crate::kernels::relu(x, y);
    }
    #[inline]
    fn df_slice(x: &[f32], _y: &[f32], dy: &[f32], dx: &mut [f32]) {
        crate::kernels::relu_backward(x, dy, dx);
    }
}

/// The negative-side slope of a leaky ReLU.
pub trait LeakySlope {
    /// The slope.
    const SLOPE: f32;
}

/// Slope 0.01, PyTorch's `LeakyReLU` default.
#[derive(Debug, Clone, Copy)]
pub struct TorchSlope;
impl LeakySlope for TorchSlope {
    const SLOPE: f32 = 0.01;
}

/// Slope 0.3, Keras' `LeakyReLU` default.
#[derive(Debug, Clone, Copy)]
pub struct KerasSlope;
impl LeakySlope for KerasSlope {
    const SLOPE: f32 = 0.3;
}

/// Leaky ReLU, x for x > 0 and slope·x otherwise; derivative `slope` at 0 (PyTorch).
#[derive(Debug, Clone, Copy)]
pub struct LeakyReluFn<S>(PhantomData<S>);
impl<S: LeakySlope> ActivationFn for LeakyReluFn<S> {
    const NAME: &'static str = "LeakyReLU";
    #[inline]
    fn f(x: f32) -> f32 {
        if x > 0.0 { x } else { S::SLOPE * x }
    }
    #[inline]
    fn df(x: f32, _y: f32) -> f32 {
        if x > 0.0 { 1.0 } else { S::SLOPE }
    }
}

/// The alpha of an ELU.
pub trait EluAlpha {
    /// Alpha.
    const ALPHA: f32;
}

/// Alpha 1.0, the default of both Keras and PyTorch.
#[derive(Debug, Clone, Copy)]
pub struct UnitAlpha;
impl EluAlpha for UnitAlpha {
    const ALPHA: f32 = 1.0;
}

/// Exponential linear unit: x for x > 0, alpha·(e^x − 1) otherwise.
#[derive(Debug, Clone, Copy)]
pub struct EluFn<A>(PhantomData<A>);
impl<A: EluAlpha> ActivationFn for EluFn<A> {
    const NAME: &'static str = "ELU";
    #[inline]
    fn f(x: f32) -> f32 {
        if x > 0.0 { x } else { A::ALPHA * (exp(x) - 1.0) }
    }
    #[inline]
    fn df(x: f32, y: f32) -> f32 {
        if x > 0.0 { 1.0 } else { y + A::ALPHA }
    }
}

/// An element-wise activation layer over tensor `T`. No parameters, no buffers.
///
/// # Shapes
/// `T -> T`.
pub struct Act<F, T>(PhantomData<fn() -> (F, T)>);

impl<F, T> core::fmt::Debug for Act<F, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Act")
    }
}
impl<F, T> Clone for Act<F, T> {
    fn clone(&self) -> Self {
        Act(PhantomData)
    }
}
impl<F, T> PartialEq for Act<F, T> {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

/// ReLU on a vector of `N`.
pub type Relu<const N: usize> = Act<ReluFn, [f32; N]>;
/// Sigmoid on a vector of `N`.
pub type Sigmoid<const N: usize> = Act<SigmoidFn, [f32; N]>;
/// Tanh on a vector of `N`.
pub type Tanh<const N: usize> = Act<TanhFn, [f32; N]>;
/// Leaky ReLU on a vector of `N`, slope 0.01 (PyTorch) unless `S` says otherwise.
pub type LeakyRelu<const N: usize, S = TorchSlope> = Act<LeakyReluFn<S>, [f32; N]>;
/// ELU on a vector of `N`, alpha 1 unless `A` says otherwise.
pub type Elu<const N: usize, A = UnitAlpha> = Act<EluFn<A>, [f32; N]>;

impl<F: ActivationFn, T: Tensor> Layer for Act<F, T> {
    type Input = T;
    type Output = T;
    type Acts = ();
    const ZERO: Self = Act(PhantomData);
    const RELU_UNITS: usize = if matches!(F::KIND, UnitKind::Relu) { T::LEN } else { 0 };

    #[inline]
    fn forward(&self, x: &T, _acts: &mut (), y: &mut T, _mode: &mut Mode) {
        F::f_slice(x.flat(), y.flat_mut());
    }

    #[inline]
    fn backward(
        &self,
        x: &T,
        _acts: &(),
        y: &T,
        dy: &T,
        _deltas: &mut (),
        _grads: Option<&mut Self>,
        dx: Option<&mut T>,
    ) {
        if let Some(dx) = dx {
            F::df_slice(x.flat(), y.flat(), dy.flat(), dx.flat_mut());
        }
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new(F::NAME, T::SHAPE));
    }

    fn visit_outputs(_acts: &(), y: &T, f: &mut impl FnMut(UnitKind, &[f32])) {
        f(F::KIND, y.flat());
    }
}

/// Numerically stable softmax of `x` into `y` (the maximum is subtracted first).
pub fn softmax(x: &[f32], y: &mut [f32]) {
    softmax_parts(x, y);
}

/// [`softmax`], returning the maximum of `x` and the sum of `exp(x - max)` (in order from
/// `0.0`) it divided by: cross-entropy's log-sum-exp without a second round of exponentials.
pub fn softmax_parts(x: &[f32], y: &mut [f32]) -> (f32, f32) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    let n = x.len().min(y.len());
    let y = &mut y[..n];
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = xi - max;
    }
    crate::kernels::wide(|| crate::math::exp_in_place(y));
    let mut sum = 0.0;
    for yi in y.iter() {
        sum += *yi;
    }
    let inv = 1.0 / sum;
    for yi in y.iter_mut() {
        *yi *= inv;
    }
    (max, sum)
}

/// Softmax over a vector of `N`, as an output layer for probabilities.
///
/// Train classifiers on logits with [`CrossEntropy`](crate::loss::CrossEntropy) instead: the
/// fused loss is exact where softmax followed by a logarithm underflows.
///
/// # Shapes
/// `[f32; N] -> [f32; N]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Softmax<const N: usize>;

impl<const N: usize> Layer for Softmax<N> {
    type Input = [f32; N];
    type Output = [f32; N];
    type Acts = ();
    const ZERO: Self = Softmax;

    fn forward(&self, x: &[f32; N], _acts: &mut (), y: &mut [f32; N], _mode: &mut Mode) {
        softmax(x, y);
    }

    fn backward(
        &self,
        _x: &[f32; N],
        _acts: &(),
        y: &[f32; N],
        dy: &[f32; N],
        _deltas: &mut (),
        _grads: Option<&mut Self>,
        dx: Option<&mut [f32; N]>,
    ) {
        if let Some(dx) = dx {
            let s = crate::kernels::dot(dy, y);
            for ((d, &yi), &g) in dx.iter_mut().zip(y).zip(dy) {
                *d = yi * (g - s);
            }
        }
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("Softmax", [N, 0, 0]));
    }

    fn visit_outputs(_acts: &(), y: &[f32; N], f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y);
    }
}

impl<F: ActivationFn, T: Tensor> Leaf for Act<F, T> {}
impl<const N: usize> Leaf for Softmax<N> {}
