//! Shapes and output rescaling shared by the int8 kernels.
//!
//! ```
//! use tinytrain::int8::{QuantizedMultiplier, Requant, Shape4};
//! let s = Shape4([1, 2, 3, 4]);
//! assert_eq!(s.flat_size(), Some(24));
//! assert_eq!(s.offset(0, 1, 2, 3), 23);
//! let r = Requant::PerTensor(QuantizedMultiplier::from_real(0.5));
//! assert_eq!(r.apply(-3, 0), -1); // -1.5: the doubling high multiply rounds ties up
//! assert_eq!(Requant::FloatPerTensor(0.5).apply(-3, 0), -2); // f64 `round`: away from zero
//! ```

use super::exact::ExactScale;
use super::fixedpoint::multiply_by_quantized_multiplier_single_rounding;
use super::quant::{QuantizedMultiplier, ShiftedMultiplier};
use crate::Error;

/// A 4-D shape in TFLite's order: NHWC for activations, OHWI for CONV_2D filters, 1HWO for
/// DEPTHWISE_CONV_2D filters (TFLite's `RuntimeShape` of rank 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Shape4(pub [usize; 4]);

impl Shape4 {
    /// Number of elements, or `None` if it overflows `usize`.
    #[must_use]
    pub const fn flat_size(&self) -> Option<usize> {
        let [a, b, c, d] = self.0;
        match a.checked_mul(b) {
            Some(ab) => match ab.checked_mul(c) {
                Some(abc) => abc.checked_mul(d),
                None => None,
            },
            None => None,
        }
    }

    /// Index of element `(i0, i1, i2, i3)` in the flat buffer (TFLite's `Offset`). Only
    /// meaningful for indices inside the shape.
    #[must_use]
    pub const fn offset(&self, i0: usize, i1: usize, i2: usize, i3: usize) -> usize {
        let [_, d1, d2, d3] = self.0;
        ((i0 * d1 + i1) * d2 + i2) * d3 + i3
    }

    /// `Ok(())` if `len` is the number of elements.
    pub(crate) fn check_len(&self, len: usize) -> Result<(), Error> {
        match self.flat_size() {
            Some(n) if n == len => Ok(()),
            Some(n) => Err(Error::ShapeMismatch { expected: n, found: len }),
            None => Err(Error::InvalidConfig("int8: shape too large")),
        }
    }
}

/// How an int32 accumulator is scaled to output units, per tensor or per output channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Requant<'a> {
    /// One fixed-point multiplier for every channel: TFLite's `MultiplyByQuantizedMultiplier`
    /// (default double-rounding build).
    PerTensor(QuantizedMultiplier),
    /// One fixed-point multiplier per output channel (CONV_2D, DEPTHWISE_CONV_2D, per-channel
    /// FULLY_CONNECTED).
    PerChannel(&'a [QuantizedMultiplier]),
    /// `round(acc * scale)` in `f64`, ties away from zero, with `scale = (double)input_scale *
    /// (double)filter_scale / (double)output_scale`: what TFLite 2.20+'s reference
    /// FULLY_CONNECTED does (`reference_integer_ops::FullyConnected` with float scales, "requant
    /// in float"), checked bit for bit against TensorFlow 2.21's `BUILTIN_REF` interpreter.
    FloatPerTensor(f64),
    /// [`Requant::FloatPerTensor`] with one scale per output channel
    /// (`FullyConnectedPerChannel` with float scales).
    FloatPerChannel(&'a [f64]),
    /// [`Requant::PerTensor`] in a `TFLITE_SINGLE_ROUNDING` build (some TFLM and CMSIS-NN
    /// builds): [`multiply_by_quantized_multiplier_single_rounding`].
    SingleRoundingPerTensor(QuantizedMultiplier),
    /// [`Requant::PerChannel`] in a `TFLITE_SINGLE_ROUNDING` build.
    SingleRoundingPerChannel(&'a [QuantizedMultiplier]),
    /// [`Requant::FloatPerTensor`] in integer arithmetic ([`ExactScale`]): the same outputs
    /// once clamped to the activation range the scale was made for.
    ExactPerTensor(ExactScale),
    /// [`Requant::FloatPerChannel`] in integer arithmetic, one [`ExactScale`] per channel.
    ExactPerChannel(&'a [ExactScale]),
}

impl Requant<'_> {
    /// `Ok(())` if a per-channel table has one entry per output channel.
    pub(crate) fn check(&self, channels: usize) -> Result<(), Error> {
        let found = match *self {
            Requant::PerChannel(m) | Requant::SingleRoundingPerChannel(m) => m.len(),
            Requant::FloatPerChannel(s) => s.len(),
            Requant::ExactPerChannel(s) => s.len(),
            Requant::PerTensor(_)
            | Requant::FloatPerTensor(_)
            | Requant::SingleRoundingPerTensor(_)
            | Requant::ExactPerTensor(_) => return Ok(()),
        };
        if found == channels { Ok(()) } else { Err(Error::ShapeMismatch { expected: channels, found }) }
    }

    /// The accumulator `acc` of output channel `channel` in output units (before the output
    /// zero point). A channel past a per-channel table's end gives 0.
    #[must_use]
    #[inline]
    pub fn apply(&self, acc: i32, channel: usize) -> i32 {
        match *self {
            Requant::PerTensor(m) => m.apply(acc),
            Requant::PerChannel(m) => m.get(channel).map_or(0, |m| m.apply(acc)),
            Requant::FloatPerTensor(s) => float_requant(acc, s),
            Requant::FloatPerChannel(s) => s.get(channel).map_or(0, |&s| float_requant(acc, s)),
            Requant::SingleRoundingPerTensor(m) => single(acc, m),
            Requant::SingleRoundingPerChannel(m) => m.get(channel).map_or(0, |&m| single(acc, m)),
            Requant::ExactPerTensor(s) => s.apply(acc),
            Requant::ExactPerChannel(s) => s.get(channel).map_or(0, |s| s.apply(acc)),
        }
    }
}

/// The requantisation of a const-generic layer, chosen by its type so that the layer's loops
/// are compiled for that one rule (no per-output `match`, no code for the others): a
/// [`QuantizedMultiplier`] or [`ExactScale`] for the whole tensor, an array of them per
/// channel, or [`OutputScale`](super::OutputScale) to choose at run time.
pub trait Rescale {
    /// The accumulator `acc` of output channel `channel` in output units (before the output
    /// zero point); a channel past a table's end gives 0.
    fn rescale(&self, acc: i32, channel: usize) -> i32;

    /// `rescale(acc, channel)` plus the output zero point, wrapping. A rule may fold the
    /// addition into its rounding ([`ExactScale`] does).
    #[inline]
    fn rescale_plus(&self, acc: i32, channel: usize, output_offset: i32) -> i32 {
        self.rescale(acc, channel).wrapping_add(output_offset)
    }
}

impl Rescale for QuantizedMultiplier {
    #[inline]
    fn rescale(&self, acc: i32, _channel: usize) -> i32 {
        self.apply(acc)
    }

    #[inline]
    fn rescale_plus(&self, acc: i32, _channel: usize, output_offset: i32) -> i32 {
        self.apply_plus(acc, output_offset)
    }
}

impl Rescale for ExactScale {
    #[inline]
    fn rescale(&self, acc: i32, _channel: usize) -> i32 {
        self.apply(acc)
    }

    #[inline]
    fn rescale_plus(&self, acc: i32, _channel: usize, output_offset: i32) -> i32 {
        self.apply_plus(acc, output_offset)
    }
}

impl<const O: usize> Rescale for &[QuantizedMultiplier; O] {
    #[inline]
    fn rescale(&self, acc: i32, channel: usize) -> i32 {
        self.get(channel).map_or(0, |m| m.apply(acc))
    }

    #[inline]
    fn rescale_plus(&self, acc: i32, channel: usize, output_offset: i32) -> i32 {
        self.get(channel).map_or(output_offset, |m| m.apply_plus(acc, output_offset))
    }
}

impl<const O: usize> Rescale for &[ShiftedMultiplier; O] {
    #[inline]
    fn rescale(&self, acc: i32, channel: usize) -> i32 {
        self.get(channel).map_or(0, |m| m.apply_plus(acc, 0))
    }

    #[inline]
    fn rescale_plus(&self, acc: i32, channel: usize, output_offset: i32) -> i32 {
        if output_offset.unsigned_abs() < 1 << 24 {
            self.get(channel).map_or(output_offset, |m| m.apply_plus(acc, output_offset))
        } else {
            self.rescale(acc, channel).wrapping_add(output_offset)
        }
    }
}

impl<const O: usize> Rescale for &[ExactScale; O] {
    #[inline]
    fn rescale(&self, acc: i32, channel: usize) -> i32 {
        self.get(channel).map_or(0, |s| s.apply(acc))
    }

    #[inline]
    fn rescale_plus(&self, acc: i32, channel: usize, output_offset: i32) -> i32 {
        self.get(channel).map_or(output_offset, |s| s.apply_plus(acc, output_offset))
    }
}

impl Rescale for Requant<'_> {
    #[inline]
    fn rescale(&self, acc: i32, channel: usize) -> i32 {
        self.apply(acc, channel)
    }
}

#[inline]
fn single(acc: i32, m: QuantizedMultiplier) -> i32 {
    multiply_by_quantized_multiplier_single_rounding(acc, m.multiplier, m.shift)
}

/// `static_cast<int32_t>(round(static_cast<double>(acc) * scale))` (the cast saturates here).
#[inline]
pub(crate) fn float_requant(acc: i32, scale: f64) -> i32 {
    libm::round(f64::from(acc) * scale) as i32
}

/// Adds the output zero point, clamps to the activation range and narrows to `i8` as the
/// kernels' epilogue does (`static_cast<int8_t>` of the clamped value).
#[inline]
pub(crate) fn finish(scaled: i32, output_offset: i32, activation_min: i32, activation_max: i32) -> i8 {
    finish_offset(scaled.wrapping_add(output_offset), activation_min, activation_max)
}

/// [`finish`] of a value that already holds the output zero point. For an activation range
/// inside the int8 range (all that `activation_range` gives) the clamp to `-128..=127` comes
/// first, which changes nothing but lets the compiler use one `SSAT`.
#[inline]
pub(crate) fn finish_offset(value: i32, activation_min: i32, activation_max: i32) -> i8 {
    if activation_min >= -128 && activation_max <= 127 {
        value.clamp(-128, 127).max(activation_min).min(activation_max) as i8
    } else {
        value.max(activation_min).min(activation_max) as i8
    }
}

/// `Ok(())` if the activation range is not empty.
pub(crate) fn check_activation(activation_min: i32, activation_max: i32) -> Result<(), Error> {
    if activation_min <= activation_max {
        Ok(())
    } else {
        Err(Error::InvalidConfig("int8: activation_min > activation_max"))
    }
}
