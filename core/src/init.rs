//! Weight initialisers, drawn from the portable [`Rng`](crate::Rng).
//!
//! | initialiser | weights | biases | convention |
//! |---|---|---|---|
//! | [`Init::GlorotUniform`] | U(±√(6/(fan_in+fan_out))) | 0 | Keras default |
//! | [`Init::HeUniform`] | U(±√(6/fan_in)) | 0 | Keras `he_uniform` |
//! | [`Init::HeNormal`] | N(0, 2/fan_in) | 0 | Keras `he_normal` (untruncated) |
//! | [`Init::TorchDefault`] | U(±1/√fan_in) | U(±1/√fan_in) | PyTorch `nn.Linear`/`nn.Conv2d` |
//! | [`Init::Zeros`] | 0 | 0 | |
//!
//! ```
//! use tinytrain::{Init, Rng};
//! let mut w = [0.0f32; 6];
//! let mut b = [1.0f32; 2];
//! Init::GlorotUniform.fill(&mut w, &mut b, 3, 2, &mut Rng::new(0));
//! assert!(w.iter().all(|v| v.abs() <= 1.0955));
//! assert_eq!(b, [0.0, 0.0]);
//! ```

use crate::math::sqrt;
use crate::rng::Rng;

/// How to draw initial weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Init {
    /// Glorot/Xavier uniform, zero biases (the Keras default).
    #[default]
    GlorotUniform,
    /// He uniform, zero biases.
    HeUniform,
    /// He normal, zero biases.
    HeNormal,
    /// PyTorch's default for `Linear` and `Conv2d`: weights and biases U(±1/√fan_in).
    TorchDefault,
    /// All zeros.
    Zeros,
}

impl Init {
    /// Fills `weights` and `bias` of a layer with the given fans.
    pub fn fill(self, weights: &mut [f32], bias: &mut [f32], fan_in: usize, fan_out: usize, rng: &mut Rng) {
        let fi = fan_in.max(1) as f32;
        let fo = fan_out.max(1) as f32;
        bias.fill(0.0);
        match self {
            Init::GlorotUniform => {
                let limit = sqrt(6.0 / (fi + fo));
                weights.iter_mut().for_each(|w| *w = rng.uniform(-limit, limit));
            }
            Init::HeUniform => {
                let limit = sqrt(6.0 / fi);
                weights.iter_mut().for_each(|w| *w = rng.uniform(-limit, limit));
            }
            Init::HeNormal => {
                let std = sqrt(2.0 / fi);
                weights.iter_mut().for_each(|w| *w = std * rng.normal());
            }
            Init::TorchDefault => {
                let limit = 1.0 / sqrt(fi);
                weights.iter_mut().for_each(|w| *w = rng.uniform(-limit, limit));
                bias.iter_mut().for_each(|b| *b = rng.uniform(-limit, limit));
            }
            Init::Zeros => weights.fill(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn he_normal_has_the_right_spread() {
        let mut w = [0.0f32; 4000];
        Init::HeNormal.fill(&mut w, &mut [], 50, 10, &mut Rng::new(9));
        let var = w.iter().map(|v| v * v).sum::<f32>() / 4000.0;
        assert!((var - 0.04).abs() < 0.004, "variance {var}");
    }

    #[test]
    fn torch_default_fills_biases_within_bound() {
        let mut w = [0.0f32; 100];
        let mut b = [0.0f32; 10];
        Init::TorchDefault.fill(&mut w, &mut b, 25, 10, &mut Rng::new(1));
        assert!(b.iter().all(|v| v.abs() <= 0.2) && b.iter().any(|v| *v != 0.0));
        assert!(w.iter().all(|v| v.abs() <= 0.2));
    }
}
