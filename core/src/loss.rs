//! Losses and metrics.
//!
//! A [`Loss`] works on one sample: it returns the sample's loss and writes `scale · dL/dy`.
//! The training loop passes `scale = 1/batch`, which gives PyTorch's and Keras' mean over the
//! batch without any batch-sized buffer.
//!
//! | loss | target | per-sample value | PyTorch / Keras |
//! |---|---|---|---|
//! | [`Mse`] | vector | mean((y−t)²) (or sum, or ½·sum) | `MSELoss` / `mean_squared_error` |
//! | [`Mae`] | vector | mean(\|y−t\|) | `L1Loss` / `mean_absolute_error` |
//! | [`CrossEntropy`] | class id | logsumexp(z) − z\[y\] | `CrossEntropyLoss` / `SparseCategoricalCrossentropy(from_logits=True)` |
//! | [`BinaryCrossEntropy`] | vector in \[0,1\] | mean(−t ln p − (1−t) ln(1−p)) | `BCELoss`, `BCEWithLogitsLoss` |
//! | [`Hinge`] | class id | CS231n SVM, `MultiMarginLoss`, Crammer-Singer | `categorical_hinge` |
//! | [`BinaryHinge`] | vector of 0/1 | mean(max(0, 1 − t·s)), t = ±1 | Keras `hinge` |
//!
//! ```
//! use tinytrain::loss::{CrossEntropy, Loss};
//! let mut dz = [0.0f32; 3];
//! let l = CrossEntropy.loss_and_grad(&[1000.0, -1000.0, 0.0], &0, 1.0, &mut dz).unwrap();
//! assert!(l.abs() < 1e-6 && dz.iter().all(|g| g.is_finite()));
//! ```

use crate::error::Error;
use crate::layers::softmax_parts;
use crate::math::{exp, ln, ln_1p, ln_clamped};
use crate::tensor::{Tensor, argmax};

/// A loss on one sample of network output `Y`.
pub trait Loss<Y: Tensor> {
    /// What a sample's target is: a class id or a vector.
    type Target;
    /// Name for logs and summaries.
    const NAME: &'static str;

    /// The sample's loss; writes `scale · dL/dy` into `dy`.
    ///
    /// # Errors
    /// [`Error::LabelOutOfRange`] for a class id outside the output.
    fn loss_and_grad(&self, y: &Y, t: &Self::Target, scale: f32, dy: &mut Y) -> Result<f32, Error>;

    /// The sample's loss.
    ///
    /// # Errors
    /// [`Error::LabelOutOfRange`] for a class id outside the output.
    fn loss(&self, y: &Y, t: &Self::Target) -> Result<f32, Error>;

    /// Whether the prediction counts as correct for accuracy.
    fn correct(&self, y: &Y, t: &Self::Target) -> bool;
}

fn check_label(label: usize, classes: usize) -> Result<(), Error> {
    if label < classes { Ok(()) } else { Err(Error::LabelOutOfRange { label, classes }) }
}

/// All elements within 0.5 of the target: the accuracy of a regression onto 0/1 targets.
fn close_to_target(y: &[f32], t: &[f32]) -> bool {
    y.iter().zip(t).all(|(a, b)| (a - b).abs() < 0.5)
}

/// How [`Mse`] reduces over a sample's elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// Mean over elements (PyTorch `MSELoss`, Keras).
    #[default]
    Mean,
    /// Sum over elements.
    Sum,
    /// Half the sum, the backprop-slide convention whose gradient is `y − t`.
    HalfSum,
}

/// Squared error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mse {
    /// Reduction over the elements of a sample.
    pub reduction: Reduction,
}

impl Mse {
    /// Mean squared error (the default).
    pub const MEAN: Mse = Mse { reduction: Reduction::Mean };
    /// Sum of squared errors.
    pub const SUM: Mse = Mse { reduction: Reduction::Sum };
    /// Half the sum of squared errors.
    pub const HALF_SUM: Mse = Mse { reduction: Reduction::HalfSum };

    fn factors(self, n: usize) -> (f32, f32) {
        match self.reduction {
            Reduction::Mean => (1.0 / n as f32, 2.0 / n as f32),
            Reduction::Sum => (1.0, 2.0),
            Reduction::HalfSum => (0.5, 1.0),
        }
    }
}

impl<Y: Tensor> Loss<Y> for Mse {
    type Target = Y;
    const NAME: &'static str = "mse";

    fn loss_and_grad(&self, y: &Y, t: &Y, scale: f32, dy: &mut Y) -> Result<f32, Error> {
        let (lf, gf) = self.factors(Y::LEN);
        let mut s = 0.0;
        for ((d, &a), &b) in dy.flat_mut().iter_mut().zip(y.flat()).zip(t.flat()) {
            let e = a - b;
            s += e * e;
            *d = scale * gf * e;
        }
        Ok(s * lf)
    }

    fn loss(&self, y: &Y, t: &Y) -> Result<f32, Error> {
        let (lf, _) = self.factors(Y::LEN);
        Ok(y.flat().iter().zip(t.flat()).map(|(a, b)| (a - b) * (a - b)).fold(0.0, |s, v| s + v) * lf)
    }

    fn correct(&self, y: &Y, t: &Y) -> bool {
        close_to_target(y.flat(), t.flat())
    }
}

/// Mean absolute error; the gradient at y == t is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mae;

fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl<Y: Tensor> Loss<Y> for Mae {
    type Target = Y;
    const NAME: &'static str = "mae";

    fn loss_and_grad(&self, y: &Y, t: &Y, scale: f32, dy: &mut Y) -> Result<f32, Error> {
        let inv = 1.0 / Y::LEN as f32;
        let mut s = 0.0;
        for ((d, &a), &b) in dy.flat_mut().iter_mut().zip(y.flat()).zip(t.flat()) {
            s += (a - b).abs();
            *d = scale * inv * sign(a - b);
        }
        Ok(s * inv)
    }

    fn loss(&self, y: &Y, t: &Y) -> Result<f32, Error> {
        let inv = 1.0 / Y::LEN as f32;
        Ok(y.flat().iter().zip(t.flat()).map(|(a, b)| (a - b).abs()).fold(0.0, |s, v| s + v) * inv)
    }

    fn correct(&self, y: &Y, t: &Y) -> bool {
        close_to_target(y.flat(), t.flat())
    }
}

/// Softmax cross-entropy on logits with an integer class label, fused and stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CrossEntropy;

/// `logsumexp(z) - z[t]`, as `(max - z[t]) + ln(sum(exp(z - max)))`: exact when the logits
/// are large and close together, where `max + ln(s) - z[t]` would lose digits.
fn cross_entropy(z: &[f32], t: usize) -> f32 {
    let max = z.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    let s = z.iter().fold(0.0, |s, &v| s + exp(v - max));
    (max - z[t]) + ln(s)
}

impl<const N: usize> Loss<[f32; N]> for CrossEntropy {
    type Target = usize;
    const NAME: &'static str = "cross_entropy";

    fn loss_and_grad(&self, z: &[f32; N], &t: &usize, scale: f32, dz: &mut [f32; N]) -> Result<f32, Error> {
        check_label(t, N)?;
        // cross_entropy(z, t), from the maximum and the sum of exponentials softmax computed
        // (the same values added in the same order: the same bits).
        let (max, sum) = softmax_parts(z, dz);
        let loss = (max - z[t]) + ln(sum);
        dz[t] -= 1.0;
        // A gradient below 2^-100 (a wrong class given a vanishing probability) would make
        // backpropagation compute on subnormals, slowly on x86: it is flushed to zero.
        dz.iter_mut().for_each(|d| *d = crate::math::flush_tiny(*d * scale));
        Ok(loss)
    }

    fn loss(&self, z: &[f32; N], &t: &usize) -> Result<f32, Error> {
        check_label(t, N)?;
        Ok(cross_entropy(z, t))
    }

    fn correct(&self, z: &[f32; N], &t: &usize) -> bool {
        argmax(z) == t
    }
}

/// Binary cross-entropy, averaged over the outputs of a sample.
///
/// From logits (`from_logits: true`, PyTorch `BCEWithLogitsLoss`) it is computed as
/// `max(z,0) − z·t + ln(1 + e^−|z|)`, exact for any logit. From probabilities the logarithms
/// are clamped at −100 like PyTorch's `BCELoss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BinaryCrossEntropy {
    /// Whether the network outputs logits (true) or probabilities (false).
    pub from_logits: bool,
}

impl<Y: Tensor> Loss<Y> for BinaryCrossEntropy {
    type Target = Y;
    const NAME: &'static str = "binary_cross_entropy";

    fn loss_and_grad(&self, y: &Y, t: &Y, scale: f32, dy: &mut Y) -> Result<f32, Error> {
        let inv = 1.0 / Y::LEN as f32;
        let mut s = 0.0;
        for ((d, &v), &tt) in dy.flat_mut().iter_mut().zip(y.flat()).zip(t.flat()) {
            if self.from_logits {
                s += v.max(0.0) - v * tt + ln_1p(exp(-v.abs()));
                let p = <crate::layers::SigmoidFn as crate::layers::ActivationFn>::f(v);
                *d = scale * inv * (p - tt);
            } else {
                s -= tt * ln_clamped(v) + (1.0 - tt) * ln_clamped(1.0 - v);
                let denom = (v * (1.0 - v)).max(1e-12);
                *d = scale * inv * (v - tt) / denom;
            }
        }
        Ok(s * inv)
    }

    fn loss(&self, y: &Y, t: &Y) -> Result<f32, Error> {
        let mut scratch = Y::ZERO;
        self.loss_and_grad(y, t, 0.0, &mut scratch)
    }

    fn correct(&self, y: &Y, t: &Y) -> bool {
        let threshold = if self.from_logits { 0.0 } else { 0.5 };
        y.flat().iter().zip(t.flat()).all(|(&v, &tt)| (v > threshold) == (tt > 0.5))
    }
}

/// Which multiclass hinge loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HingeKind {
    /// CS231n's multiclass SVM loss (Weston-Watkins): Σ_{j≠y} max(0, s_j − s_y + 1).
    #[default]
    WestonWatkins,
    /// PyTorch `MultiMarginLoss`: the Weston-Watkins sum divided by the number of classes.
    MultiMargin,
    /// Crammer-Singer, Keras `categorical_hinge`: max(0, 1 + max_{j≠y} s_j − s_y).
    CrammerSinger,
}

/// Multiclass hinge loss with margin 1 on scores and an integer label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hinge {
    /// The variant.
    pub kind: HingeKind,
}

impl<const N: usize> Loss<[f32; N]> for Hinge {
    type Target = usize;
    const NAME: &'static str = "hinge";

    fn loss_and_grad(&self, s: &[f32; N], &t: &usize, scale: f32, ds: &mut [f32; N]) -> Result<f32, Error> {
        check_label(t, N)?;
        ds.fill(0.0);
        let sy = s[t];
        match self.kind {
            HingeKind::WestonWatkins | HingeKind::MultiMargin => {
                let div = if self.kind == HingeKind::MultiMargin { N as f32 } else { 1.0 };
                let mut loss = 0.0;
                for j in 0..N {
                    let m = s[j] - sy + 1.0;
                    if j != t && m > 0.0 {
                        loss += m;
                        ds[j] += scale / div;
                        ds[t] -= scale / div;
                    }
                }
                Ok(loss / div)
            }
            HingeKind::CrammerSinger => {
                let mut jmax = usize::MAX;
                for j in 0..N {
                    if j != t && (jmax == usize::MAX || s[j] > s[jmax]) {
                        jmax = j;
                    }
                }
                if jmax == usize::MAX {
                    return Ok(0.0);
                }
                let m = 1.0 + s[jmax] - sy;
                if m > 0.0 {
                    ds[jmax] = scale;
                    ds[t] = -scale;
                    Ok(m)
                } else {
                    Ok(0.0)
                }
            }
        }
    }

    fn loss(&self, s: &[f32; N], t: &usize) -> Result<f32, Error> {
        let mut scratch = [0.0; N];
        self.loss_and_grad(s, t, 0.0, &mut scratch)
    }

    fn correct(&self, s: &[f32; N], &t: &usize) -> bool {
        argmax(s) == t
    }
}

/// Binary hinge (Keras `hinge`): targets 0/1 become −1/+1, loss mean(max(0, 1 − t·s)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BinaryHinge;

impl<Y: Tensor> Loss<Y> for BinaryHinge {
    type Target = Y;
    const NAME: &'static str = "binary_hinge";

    fn loss_and_grad(&self, s: &Y, t: &Y, scale: f32, ds: &mut Y) -> Result<f32, Error> {
        let inv = 1.0 / Y::LEN as f32;
        let mut loss = 0.0;
        for ((d, &v), &tt) in ds.flat_mut().iter_mut().zip(s.flat()).zip(t.flat()) {
            let sign = if tt > 0.5 { 1.0 } else { -1.0 };
            let m = 1.0 - sign * v;
            if m > 0.0 {
                loss += m;
                *d = -scale * inv * sign;
            } else {
                *d = 0.0;
            }
        }
        Ok(loss * inv)
    }

    fn loss(&self, s: &Y, t: &Y) -> Result<f32, Error> {
        let mut scratch = Y::ZERO;
        self.loss_and_grad(s, t, 0.0, &mut scratch)
    }

    fn correct(&self, s: &Y, t: &Y) -> bool {
        s.flat().iter().zip(t.flat()).all(|(&v, &tt)| (v > 0.0) == (tt > 0.5))
    }
}

/// Mean bias error, mean(target − prediction): positive when the model under-predicts.
/// A metric, not a loss (errors of opposite sign cancel).
///
/// ```
/// assert_eq!(tinytrain::loss::mean_bias_error(&[1.0, 2.0], &[2.0, 2.0]), 0.5);
/// ```
#[must_use]
pub fn mean_bias_error(prediction: &[f32], target: &[f32]) -> f32 {
    let n = prediction.len().min(target.len());
    if n == 0 {
        return 0.0;
    }
    prediction.iter().zip(target).fold(0.0, |s, (p, t)| s + (t - p)) / n as f32
}

#[cfg(test)]
mod tiny_gradient_tests {
    use super::*;

    /// The cross-entropy gradient is never subnormal, and only values below 2^-100 differ
    /// from the unflushed `scale * (softmax(z) - onehot)`.
    #[test]
    fn cross_entropy_loss_from_softmax_has_the_bits_of_the_plain_loss() {
        // loss_and_grad takes the log-sum-exp from softmax's sum; loss() computes it alone.
        let mut rng = crate::rng::Rng::new(3);
        for k in 0..2000 {
            let spread = [0.1f32, 3.0, 30.0, 300.0][k % 4];
            let z: [f32; 10] = core::array::from_fn(|_| rng.uniform(-spread, spread));
            let t = k % 10;
            let mut dz = [0.0f32; 10];
            let fused = CrossEntropy.loss_and_grad(&z, &t, 1.0, &mut dz).unwrap();
            assert_eq!(fused.to_bits(), CrossEntropy.loss(&z, &t).unwrap().to_bits(), "{z:?} {t}");
        }
    }

    #[test]
    fn cross_entropy_gradient_has_no_tiny_values() {
        let mut flushed = 0;
        for step in 0..600 {
            let gap = step as f32 * 0.37;
            let z = [gap, 0.0, -gap * 0.5, 3.0, -gap, 1.0, gap * 0.25, -7.0];
            for t in [0, 2, 4] {
                for scale in [1.0, 1.0 / 32.0] {
                    let mut dz = [0.0f32; 8];
                    CrossEntropy.loss_and_grad(&z, &t, scale, &mut dz).unwrap();
                    let mut plain = [0.0f32; 8];
                    crate::layers::softmax(&z, &mut plain);
                    plain[t] -= 1.0;
                    for (d, p) in dz.iter().zip(&plain) {
                        let p = p * scale;
                        assert!(!d.is_subnormal() && (d.abs() >= crate::math::TINY || *d == 0.0), "{d:e}");
                        if p.abs() >= crate::math::TINY {
                            assert_eq!(d.to_bits(), p.to_bits());
                        } else {
                            assert_eq!(d.to_bits(), 0);
                            flushed += usize::from(p != 0.0);
                        }
                    }
                }
            }
        }
        assert!(flushed > 100, "the sweep must reach tiny gradients ({flushed})");
    }
}
