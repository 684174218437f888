//! Learning-rate schedules, evaluated at the update count `t` (0 for the first update).
//!
//! ```
//! use tinytrain::optim::Schedule;
//! let s = Schedule::InverseTime { initial: 0.1, decay_rate: 0.01, decay_steps: 1 };
//! assert_eq!(s.at(0), 0.1);
//! assert!((s.at(100) - 0.05).abs() < 1e-7);
//! ```

use crate::math::{floor, powf};

/// A learning rate as a function of the number of updates already done.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Schedule {
    /// The same rate throughout.
    Constant(f32),
    /// Keras `InverseTimeDecay` (and the legacy Keras `decay=` argument with `decay_steps` 1):
    /// `initial / (1 + decay_rate · t / decay_steps)`.
    InverseTime {
        /// Rate at t = 0.
        initial: f32,
        /// Decay rate.
        decay_rate: f32,
        /// Steps per unit of decay.
        decay_steps: u32,
    },
    /// Step decay (PyTorch `StepLR` counted in updates): `initial · factor^⌊t / every⌋`.
    Step {
        /// Rate at t = 0.
        initial: f32,
        /// Multiplier applied every `every` updates.
        factor: f32,
        /// Updates between drops.
        every: u32,
    },
    /// Keras `ExponentialDecay`: `initial · rate^(t / decay_steps)`.
    Exponential {
        /// Rate at t = 0.
        initial: f32,
        /// Decay rate per `decay_steps`.
        rate: f32,
        /// Steps per unit of decay.
        decay_steps: u32,
    },
}

impl Schedule {
    /// The learning rate for update `t`.
    #[must_use]
    pub fn at(&self, t: u32) -> f32 {
        match *self {
            Schedule::Constant(lr) => lr,
            Schedule::InverseTime { initial, decay_rate, decay_steps } => {
                initial / (1.0 + decay_rate * (t as f32 / decay_steps.max(1) as f32))
            }
            Schedule::Step { initial, factor, every } => initial * powf(factor, floor(t as f32 / every.max(1) as f32)),
            Schedule::Exponential { initial, rate, decay_steps } => {
                initial * powf(rate, t as f32 / decay_steps.max(1) as f32)
            }
        }
    }

    /// The rate at t = 0.
    #[must_use]
    pub fn initial(&self) -> f32 {
        self.at(0)
    }

    /// The same schedule with every rate multiplied by `factor`.
    #[must_use]
    pub fn scaled(self, factor: f32) -> Self {
        match self {
            Schedule::Constant(lr) => Schedule::Constant(lr * factor),
            Schedule::InverseTime { initial, decay_rate, decay_steps } => {
                Schedule::InverseTime { initial: initial * factor, decay_rate, decay_steps }
            }
            Schedule::Step { initial, factor: f, every } => {
                Schedule::Step { initial: initial * factor, factor: f, every }
            }
            Schedule::Exponential { initial, rate, decay_steps } => {
                Schedule::Exponential { initial: initial * factor, rate, decay_steps }
            }
        }
    }

    /// `true` when every rate it gives is finite and non-negative.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        let ok = |v: f32| v.is_finite() && v >= 0.0;
        match *self {
            Schedule::Constant(lr) => ok(lr),
            Schedule::InverseTime { initial, decay_rate, .. } => ok(initial) && ok(decay_rate),
            Schedule::Step { initial, factor, .. } => ok(initial) && ok(factor),
            Schedule::Exponential { initial, rate, .. } => ok(initial) && ok(rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_and_exponential_schedules() {
        let s = Schedule::Step { initial: 1.0, factor: 0.5, every: 10 };
        assert_eq!(s.at(9), 1.0);
        assert_eq!(s.at(10), 0.5);
        assert_eq!(s.at(25), 0.25);
        let e = Schedule::Exponential { initial: 1.0, rate: 0.5, decay_steps: 2 };
        assert_eq!(e.at(2), 0.5);
        assert!((e.at(1) - core::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!(!Schedule::Constant(f32::NAN).is_valid());
        assert_eq!(Schedule::Constant(0.1).scaled(0.5).at(3), 0.05);
    }
}
