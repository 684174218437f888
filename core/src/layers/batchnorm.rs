//! Batch normalisation with frozen statistics: [`BatchNorm1d`] on vectors, [`BatchNorm1dSeq`]
//! on channels-first sequences and [`BatchNorm2d`] on CHW tensors, as PyTorch's `nn.BatchNorm1d` / `nn.BatchNorm2d` compute in `eval()` mode
//! (eps 1e-5, momentum 0.1):
//!
//! ```text
//! y = gamma · (x − running_mean) / sqrt(running_var + eps) + beta      (per channel)
//! ```
//!
//! The same formula serves inference and training. tinytrain accumulates gradients sample by
//! sample and holds no batch, so it cannot normalise with batch statistics; training `gamma`
//! and `beta` (and the layers around) with the statistics frozen is the usual fine-tuning
//! recipe. Backward gives the gradients of `gamma` (`Σ dy·x̂`), `beta` (`Σ dy`) and the input
//! (`dy · gamma / sqrt(running_var + eps)`).
//!
//! The statistics come from a file (PyTorch `running_mean` / `running_var`, Keras
//! `moving_mean` / `moving_variance`) or from [`BatchNorm1d::refresh_stats`] /
//! [`BatchNorm2d::refresh_stats`], which sets them as `torch.optim.swa_utils.update_bn` does
//! (see [`BnStats`]).
//!
//! For inference, [`BatchNorm1d::fold_into`], [`BatchNorm1dSeq::fold_into`] and
//! [`BatchNorm2d::fold_into`] fold the normalisation into the dense layer or convolution
//! before it.
//!
//! # Tensors
//! `weight` (gamma, Keras `gamma`) and `bias` (beta, Keras `beta`) are trained;
//! `running_mean` and `running_var` are buffers ([`Role::Buffer`]): saved with the weights,
//! never trained. PyTorch's `num_batches_tracked` (an int64 counter that only matters with
//! `momentum=None`) is not kept: the layer has no tensor of that name, so a PyTorch
//! `state_dict` is imported after dropping `*.num_batches_tracked`.
//!
//! Gradients are a second value of the layer (as for every layer), so they hold two unused
//! arrays of `C` floats for the statistics.
//!
//! # Shapes
//! [`BatchNorm1d<C>`]: `[f32; C] -> [f32; C]`; [`BatchNorm1dSeq<C, L>`]:
//! `[[f32; L]; C] -> [[f32; L]; C]`; [`BatchNorm2d<C, H, W>`]:
//! `[[[f32; W]; H]; C] -> [[[f32; W]; H]; C]`. `2·C` trainable parameters and `2·C` buffer
//! values.
//!
//! ```
//! use tinytrain::prelude::*;
//! let mut bn = BatchNorm1d::<2>::ZERO;
//! bn.weight = [2.0, 1.0];
//! bn.bias = [0.0, 1.0];
//! bn.running_mean = [1.0, 0.0];
//! bn.running_var = [4.0 - 1e-5, 1.0 - 1e-5];
//! let mut y = [0.0; 2];
//! bn.predict(&[3.0, 2.0], &mut (), &mut y);
//! assert_eq!(y, [2.0, 3.0]);
//! ```

// Channels index several per-channel arrays at once.
#![allow(clippy::needless_range_loop)]

use crate::error::Error;
use crate::layer::{Layer, LayerInfo, Mode, UnitKind};
use crate::layers::bn_stats::{BnStats, gather};
use crate::layers::{Conv1d, Conv2d, Dense};
use crate::math::sqrt;
use crate::params::{Leaf, Role, TensorDesc};

/// PyTorch's default `eps`.
pub const BN_EPS: f32 = 1e-5;
/// PyTorch's default `momentum` (the weight of a new batch in the running statistics when
/// PyTorch trains; tinytrain does not update the statistics while training).
pub const BN_MOMENTUM: f32 = 0.1;

/// Batch normalisation of a vector of `C` features (PyTorch `BatchNorm1d(C)` on `[N, C]`).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm1d<const C: usize> {
    /// Scale per channel (gamma).
    pub weight: [f32; C],
    /// Shift per channel (beta).
    pub bias: [f32; C],
    /// Mean per channel (a buffer).
    pub running_mean: [f32; C],
    /// Unbiased variance per channel (a buffer).
    pub running_var: [f32; C],
}

/// Batch normalisation of `C` channels of `H`x`W` (PyTorch `BatchNorm2d(C)`).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm2d<const C: usize, const H: usize, const W: usize> {
    /// Scale per channel (gamma).
    pub weight: [f32; C],
    /// Shift per channel (beta).
    pub bias: [f32; C],
    /// Mean per channel (a buffer).
    pub running_mean: [f32; C],
    /// Unbiased variance per channel (a buffer).
    pub running_var: [f32; C],
}

/// Batch normalisation of `C` channels of sequences of length `L`, `[[f32; L]; C]` (PyTorch
/// `BatchNorm1d(C)` on `[N, C, L]`, after a [`Conv1d`](crate::layers::Conv1d)).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm1dSeq<const C: usize, const L: usize> {
    /// Scale per channel (gamma).
    pub weight: [f32; C],
    /// Shift per channel (beta).
    pub bias: [f32; C],
    /// Mean per channel (a buffer).
    pub running_mean: [f32; C],
    /// Unbiased variance per channel (a buffer).
    pub running_var: [f32; C],
}

/// `1 / sqrt(var + eps)`.
#[inline]
fn inv_std(var: f32) -> f32 {
    1.0 / sqrt(var + BN_EPS)
}

macro_rules! bn_common {
    () => {
        /// Sets `running_mean` and `running_var` from `inputs` (the values that reach this
        /// layer, one sample each) as `torch.optim.swa_utils.update_bn` does with a loader of
        /// `batch_size`: the average over the batches of each batch's mean and unbiased
        /// variance (the last batch may be shorter). Returns the number of batches.
        ///
        /// Costs one [`BnStats<C>`] on the stack (`4·C` floats); the caller produces the
        /// inputs, typically with a forward pass of the layers before this one.
        ///
        /// # Errors
        /// `batch_size` 0, no input, or a batch of fewer than 2 values per channel.
        pub fn refresh_stats(
            &mut self,
            inputs: impl IntoIterator<Item = <Self as Layer>::Input>,
            batch_size: usize,
        ) -> Result<u32, Error> {
            let stats = gather(inputs, batch_size, |s, x| Self::observe(s, x))?;
            self.running_mean = stats.mean();
            self.running_var = stats.var();
            Ok(stats.batches())
        }

        /// `gamma / sqrt(running_var + eps)` per channel.
        #[inline]
        fn scales(&self) -> [f32; C] {
            core::array::from_fn(|c| self.weight[c] * inv_std(self.running_var[c]))
        }
    };
}

impl<const C: usize> BatchNorm1d<C> {
    const SHAPE_OK: () = assert!(C > 0, "BatchNorm1d: zero channels");

    fn observe(s: &mut BnStats<C>, x: &[f32; C]) {
        s.add_vector(x);
    }

    bn_common!();
}

impl<const C: usize, const L: usize> BatchNorm1dSeq<C, L> {
    const SHAPE_OK: () = assert!(C > 0 && L > 0, "BatchNorm1dSeq: zero-sized input");

    fn observe(s: &mut BnStats<C>, x: &[[f32; L]; C]) {
        // Every step of a channel is one value of that channel's batch.
        for i in 0..L {
            for (c, xc) in x.iter().enumerate() {
                s.add(c, xc[i]);
            }
        }
    }

    bn_common!();
}

impl<const C: usize, const H: usize, const W: usize> BatchNorm2d<C, H, W> {
    const SHAPE_OK: () = assert!(C > 0 && H > 0 && W > 0, "BatchNorm2d: zero-sized input");

    fn observe(s: &mut BnStats<C>, x: &[[[f32; W]; H]; C]) {
        // Every position of a channel is one value of that channel's batch.
        for i in 0..H * W {
            for (c, xc) in x.iter().enumerate() {
                s.add(c, xc.as_flattened()[i]);
            }
        }
    }

    bn_common!();
}

impl<const C: usize> BatchNorm1d<C> {
    /// Folds this normalisation into the dense layer before it, for inference: afterwards
    /// `dense` alone computes what `dense` then `self` computed (to rounding), and the
    /// normalisation can be dropped from the network. Row `c` of the weight is scaled by
    /// `gamma_c / sqrt(var_c + eps)`, and the bias becomes `scale_c · (b_c − mean_c) + beta_c`.
    pub fn fold_into<const I: usize>(&self, dense: &mut Dense<I, C>) {
        let scale = self.scales();
        for c in 0..C {
            dense.weight[c].iter_mut().for_each(|w| *w *= scale[c]);
            dense.bias[c] = (dense.bias[c] - self.running_mean[c]) * scale[c] + self.bias[c];
        }
    }
}

impl<const C: usize, const H: usize, const W: usize> BatchNorm2d<C, H, W> {
    /// Folds this normalisation into the convolution before it, for inference (see
    /// [`BatchNorm1d::fold_into`]): filter `c` is scaled by `gamma_c / sqrt(var_c + eps)`.
    pub fn fold_into<
        const CI: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const HI: usize,
        const WI: usize,
    >(
        &self,
        conv: &mut Conv2d<CI, C, K, S, P, HI, WI, H, W>,
    ) {
        let scale = self.scales();
        for c in 0..C {
            conv.weight[c].as_flattened_mut().as_flattened_mut().iter_mut().for_each(|w| *w *= scale[c]);
            conv.bias[c] = (conv.bias[c] - self.running_mean[c]) * scale[c] + self.bias[c];
        }
    }
}

impl<const C: usize, const L: usize> BatchNorm1dSeq<C, L> {
    /// Folds this normalisation into the 1-D convolution before it, for inference (see
    /// [`BatchNorm1d::fold_into`]): filter `c` is scaled by `gamma_c / sqrt(var_c + eps)`.
    pub fn fold_into<const CI: usize, const K: usize, const S: usize, const P: usize, const LI: usize>(
        &self,
        conv: &mut Conv1d<CI, C, K, S, P, LI, L>,
    ) {
        let scale = self.scales();
        for c in 0..C {
            conv.weight[c].as_flattened_mut().iter_mut().for_each(|w| *w *= scale[c]);
            conv.bias[c] = (conv.bias[c] - self.running_mean[c]) * scale[c] + self.bias[c];
        }
    }
}

impl<const C: usize> Layer for BatchNorm1d<C> {
    type Input = [f32; C];
    type Output = [f32; C];
    type Acts = ();
    const ZERO: Self = BatchNorm1d { weight: [0.0; C], bias: [0.0; C], running_mean: [0.0; C], running_var: [0.0; C] };

    fn forward(&self, x: &[f32; C], _acts: &mut (), y: &mut [f32; C], _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        let scale = self.scales();
        for c in 0..C {
            y[c] = (x[c] - self.running_mean[c]) * scale[c] + self.bias[c];
        }
    }

    fn backward(
        &self,
        x: &[f32; C],
        _acts: &(),
        _y: &[f32; C],
        dy: &[f32; C],
        _deltas: &mut (),
        grads: Option<&mut Self>,
        dx: Option<&mut [f32; C]>,
    ) {
        let () = Self::SHAPE_OK;
        if let Some(g) = grads {
            for c in 0..C {
                g.weight[c] += dy[c] * ((x[c] - self.running_mean[c]) * inv_std(self.running_var[c]));
                g.bias[c] += dy[c];
            }
        }
        if let Some(dx) = dx {
            let scale = self.scales();
            for c in 0..C {
                dx[c] = dy[c] * scale[c];
            }
        }
    }

    /// PyTorch's initialisation whatever `init` says: gamma 1, beta 0, mean 0, variance 1.
    fn init_with(&mut self, _init: crate::init::Init, _rng: &mut crate::rng::Rng) {
        *self = BatchNorm1d { weight: [1.0; C], bias: [0.0; C], running_mean: [0.0; C], running_var: [1.0; C] };
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("BatchNormalization", [C, 0, 0]).with_tensors(
            Self::TENSORS,
            "bn",
            "tinytrain::layers::BatchNorm1d",
        ));
    }

    fn visit_outputs(_acts: &(), y: &[f32; C], f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y);
    }
}

impl<const C: usize, const H: usize, const W: usize> Layer for BatchNorm2d<C, H, W> {
    type Input = [[[f32; W]; H]; C];
    type Output = [[[f32; W]; H]; C];
    type Acts = ();
    const ZERO: Self = BatchNorm2d { weight: [0.0; C], bias: [0.0; C], running_mean: [0.0; C], running_var: [0.0; C] };

    fn forward(&self, x: &Self::Input, _acts: &mut (), y: &mut Self::Output, _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        let scale = self.scales();
        for (c, (xc, yc)) in x.iter().zip(y.iter_mut()).enumerate() {
            let (m, s, b) = (self.running_mean[c], scale[c], self.bias[c]);
            for (yv, &xv) in yc.as_flattened_mut().iter_mut().zip(xc.as_flattened()) {
                *yv = (xv - m) * s + b;
            }
        }
    }

    fn backward(
        &self,
        x: &Self::Input,
        _acts: &(),
        _y: &Self::Output,
        dy: &Self::Output,
        _deltas: &mut (),
        grads: Option<&mut Self>,
        dx: Option<&mut Self::Input>,
    ) {
        let () = Self::SHAPE_OK;
        if let Some(g) = grads {
            for (c, (xc, dyc)) in x.iter().zip(dy).enumerate() {
                let (m, inv) = (self.running_mean[c], inv_std(self.running_var[c]));
                let (mut gw, mut gb) = (0.0f32, 0.0f32);
                for (&xv, &d) in xc.as_flattened().iter().zip(dyc.as_flattened()) {
                    gw += d * ((xv - m) * inv);
                    gb += d;
                }
                g.weight[c] += gw;
                g.bias[c] += gb;
            }
        }
        if let Some(dx) = dx {
            let scale = self.scales();
            for (c, (dxc, dyc)) in dx.iter_mut().zip(dy).enumerate() {
                for (d, &g) in dxc.as_flattened_mut().iter_mut().zip(dyc.as_flattened()) {
                    *d = g * scale[c];
                }
            }
        }
    }

    /// PyTorch's initialisation whatever `init` says: gamma 1, beta 0, mean 0, variance 1.
    fn init_with(&mut self, _init: crate::init::Init, _rng: &mut crate::rng::Rng) {
        *self = BatchNorm2d { weight: [1.0; C], bias: [0.0; C], running_mean: [0.0; C], running_var: [1.0; C] };
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("BatchNormalization", [C, H, W]).with_tensors(
            Self::TENSORS,
            "bn",
            "tinytrain::layers::BatchNorm2d",
        ));
    }

    fn visit_outputs(_acts: &(), y: &Self::Output, f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y.as_flattened().as_flattened());
    }
}

impl<const C: usize, const L: usize> Layer for BatchNorm1dSeq<C, L> {
    type Input = [[f32; L]; C];
    type Output = [[f32; L]; C];
    type Acts = ();
    const ZERO: Self =
        BatchNorm1dSeq { weight: [0.0; C], bias: [0.0; C], running_mean: [0.0; C], running_var: [0.0; C] };

    fn forward(&self, x: &Self::Input, _acts: &mut (), y: &mut Self::Output, _mode: &mut Mode) {
        let () = Self::SHAPE_OK;
        let scale = self.scales();
        for (c, (xc, yc)) in x.iter().zip(y.iter_mut()).enumerate() {
            let (m, s, b) = (self.running_mean[c], scale[c], self.bias[c]);
            for (yv, &xv) in yc.iter_mut().zip(xc) {
                *yv = (xv - m) * s + b;
            }
        }
    }

    fn backward(
        &self,
        x: &Self::Input,
        _acts: &(),
        _y: &Self::Output,
        dy: &Self::Output,
        _deltas: &mut (),
        grads: Option<&mut Self>,
        dx: Option<&mut Self::Input>,
    ) {
        let () = Self::SHAPE_OK;
        if let Some(g) = grads {
            for (c, (xc, dyc)) in x.iter().zip(dy).enumerate() {
                let (m, inv) = (self.running_mean[c], inv_std(self.running_var[c]));
                let (mut gw, mut gb) = (0.0f32, 0.0f32);
                for (&xv, &d) in xc.iter().zip(dyc) {
                    gw += d * ((xv - m) * inv);
                    gb += d;
                }
                g.weight[c] += gw;
                g.bias[c] += gb;
            }
        }
        if let Some(dx) = dx {
            let scale = self.scales();
            for (c, (dxc, dyc)) in dx.iter_mut().zip(dy).enumerate() {
                for (d, &g) in dxc.iter_mut().zip(dyc) {
                    *d = g * scale[c];
                }
            }
        }
    }

    /// PyTorch's initialisation whatever `init` says: gamma 1, beta 0, mean 0, variance 1.
    fn init_with(&mut self, _init: crate::init::Init, _rng: &mut crate::rng::Rng) {
        *self = BatchNorm1dSeq { weight: [1.0; C], bias: [0.0; C], running_mean: [0.0; C], running_var: [1.0; C] };
    }

    fn describe(f: &mut impl FnMut(&LayerInfo)) {
        f(&LayerInfo::new("BatchNormalization", [C, L, 0]).with_tensors(
            Self::TENSORS,
            "bn",
            "tinytrain::layers::BatchNorm1dSeq",
        ));
    }

    fn visit_outputs(_acts: &(), y: &Self::Output, f: &mut impl FnMut(UnitKind, &[f32])) {
        f(UnitKind::Other, y.as_flattened());
    }
}

/// Tensor `i` of a batch normalisation's four.
macro_rules! bn_leaf {
    () => {
        const TENSORS: &'static [TensorDesc] = &[
            TensorDesc::new("weight", "gamma", &[C]),
            TensorDesc::new("bias", "beta", &[C]),
            TensorDesc::new("running_mean", "moving_mean", &[C]).role(Role::Buffer),
            TensorDesc::new("running_var", "moving_variance", &[C]).role(Role::Buffer),
        ];

        #[inline]
        fn tensor(&self, i: usize) -> &[f32] {
            match i {
                0 => &self.weight,
                1 => &self.bias,
                2 => &self.running_mean,
                _ => &self.running_var,
            }
        }

        #[inline]
        fn tensor_mut(&mut self, i: usize) -> &mut [f32] {
            match i {
                0 => &mut self.weight,
                1 => &mut self.bias,
                2 => &mut self.running_mean,
                _ => &mut self.running_var,
            }
        }
    };
}

impl<const C: usize> Leaf for BatchNorm1d<C> {
    bn_leaf!();
}

impl<const C: usize, const H: usize, const W: usize> Leaf for BatchNorm2d<C, H, W> {
    bn_leaf!();
}

impl<const C: usize, const L: usize> Leaf for BatchNorm1dSeq<C, L> {
    bn_leaf!();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn refresh_averages_batch_means_and_unbiased_variances() {
        let mut bn = BatchNorm1d::<1>::ZERO;
        // Batches [1, 3] and [2, 6, 7]: means 2 and 5, unbiased variances 2 and 7.
        let n = bn.refresh_stats([[1.0], [3.0], [2.0], [6.0], [7.0]].iter().copied().take(2), 2).unwrap();
        assert_eq!((n, bn.running_mean, bn.running_var), (1, [2.0], [2.0]));
        let mut s = BnStats::<1>::ZERO;
        for v in [1.0, 3.0] {
            s.add(0, v);
        }
        s.end_batch().unwrap();
        for v in [2.0, 6.0, 7.0] {
            s.add(0, v);
        }
        s.end_batch().unwrap();
        assert_eq!((s.mean(), s.var()), ([3.5], [4.5]));
        assert!(bn.refresh_stats([[1.0]; 3], 2).is_err(), "a last batch of one sample");
        assert!(bn.refresh_stats([[1.0]; 0], 2).is_err(), "no data");
    }
}
