//! FULLY_CONNECTED, int8 input and weights, int32 bias, int8 output.
//!
//! Mirrors `reference_integer_ops::FullyConnected` and `FullyConnectedPerChannel`
//! (`tensorflow/lite/kernels/internal/reference/integer_ops/fully_connected.h`):
//! `acc = Σ_d (w[o][d] + weights_offset) * (x[b][d] + input_offset) + bias[o]`, then the
//! [`Requant`], `+ output_offset`, clamp. TensorFlow 2.20+ built the reference kernel with
//! float requantisation ([`Requant::FloatPerTensor`] / [`Requant::FloatPerChannel`]); TFLM and
//! older TFLite use the fixed-point multipliers ([`Requant::PerTensor`] /
//! [`Requant::PerChannel`]). With per-channel weights TFLite ignores `weights_offset` (the
//! weights are symmetric); pass 0.
//!
//! # Shapes
//! `input`: `[batches][input_depth]`, `weights`: `[output_depth][input_depth]` (TFLite's
//! layout), `bias`: `[output_depth]`, `output`: `[batches][output_depth]`.
//!
//! ```
//! use tinytrain::int8::{fully_connected, FullyConnectedParams, QuantizedMultiplier, Requant};
//! let p = FullyConnectedParams { input_offset: 1, weights_offset: 0, output_offset: -3,
//!     activation_min: -128, activation_max: 127 };
//! let mut y = [0i8; 2];
//! // acc = [1*(1+1) + 2*(3+1), -1*(1+1)] + [0, 10] = [10, 8]; * 0.5; - 3
//! fully_connected(&p, Requant::PerTensor(QuantizedMultiplier::from_real(0.5)),
//!     &[1, 3], &[1, 2, -1, 0], 2, Some(&[0, 10]), &mut y).unwrap();
//! assert_eq!(y, [2, 1]);
//! ```

use super::requant::{Requant, check_activation, finish};
use crate::Error;

/// The run-time constants of a FULLY_CONNECTED operator (TFLite's `FullyConnectedParams`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FullyConnectedParams {
    /// `-input_zero_point`.
    pub input_offset: i32,
    /// `-weights_zero_point` (per-tensor weights only; 0 for per-channel).
    pub weights_offset: i32,
    /// `output_zero_point`.
    pub output_offset: i32,
    /// Lower clamp, from [`activation_range`](super::activation_range).
    pub activation_min: i32,
    /// Upper clamp.
    pub activation_max: i32,
}

/// FULLY_CONNECTED with `output_depth` rows of weights: `input_depth = weights.len() /
/// output_depth`, `batches = input.len() / input_depth` (TFLite flattens the input so).
///
/// # Errors
/// [`Error::ShapeMismatch`] when the lengths do not fit together (`weights` must hold
/// `output_depth` whole rows, `input` whole rows of `input_depth`, `output` `batches *
/// output_depth` values, `bias` and a per-channel [`Requant`] `output_depth` entries);
/// [`Error::InvalidConfig`] for an empty activation range.
pub fn fully_connected(
    params: &FullyConnectedParams,
    requant: Requant<'_>,
    input: &[i8],
    weights: &[i8],
    output_depth: usize,
    bias: Option<&[i32]>,
    output: &mut [i8],
) -> Result<(), Error> {
    check_activation(params.activation_min, params.activation_max)?;
    if output_depth == 0 || !weights.len().is_multiple_of(output_depth) {
        return Err(Error::ShapeMismatch { expected: output_depth, found: weights.len() });
    }
    let input_depth = weights.len() / output_depth;
    if input_depth == 0 || !input.len().is_multiple_of(input_depth) {
        return Err(Error::ShapeMismatch { expected: input_depth, found: input.len() });
    }
    let batches = input.len() / input_depth;
    let expected_out = batches.checked_mul(output_depth).ok_or(Error::InvalidConfig("int8: shape too large"))?;
    if output.len() != expected_out {
        return Err(Error::ShapeMismatch { expected: expected_out, found: output.len() });
    }
    if let Some(b) = bias
        && b.len() != output_depth
    {
        return Err(Error::ShapeMismatch { expected: output_depth, found: b.len() });
    }
    requant.check(output_depth)?;
    fully_connected_run(params, requant, input, weights, input_depth, bias, output);
    Ok(())
}

/// The loops of [`fully_connected`] for lengths already checked; with other lengths it
/// computes what the zipped rows allow, never panicking.
pub(crate) fn fully_connected_run(
    params: &FullyConnectedParams,
    requant: Requant<'_>,
    input: &[i8],
    weights: &[i8],
    input_depth: usize,
    bias: Option<&[i32]>,
    output: &mut [i8],
) {
    let output_depth = weights.len() / input_depth.max(1);
    for (x, y) in input.chunks_exact(input_depth.max(1)).zip(output.chunks_exact_mut(output_depth.max(1))) {
        for (o, (w, out)) in weights.chunks_exact(input_depth.max(1)).zip(y.iter_mut()).enumerate() {
            let mut acc = 0i32;
            for (&wv, &xv) in w.iter().zip(x) {
                let wv = i32::from(wv).wrapping_add(params.weights_offset);
                acc = acc.wrapping_add(wv.wrapping_mul(i32::from(xv).wrapping_add(params.input_offset)));
            }
            if let Some(b) = bias.and_then(|b| b.get(o)) {
                acc = acc.wrapping_add(*b);
            }
            *out = finish(requant.apply(acc, o), params.output_offset, params.activation_min, params.activation_max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::int8::QuantizedMultiplier;

    const P: FullyConnectedParams = FullyConnectedParams {
        input_offset: 0,
        weights_offset: 0,
        output_offset: 0,
        activation_min: -128,
        activation_max: 127,
    };

    #[test]
    fn hand_computed_batches_and_clamp() {
        // Two batches of 3 inputs, 2 outputs, scale 1/4.
        let w = [1, 2, 3, -4, 5, -6];
        let x = [10, 20, 30, -1, -2, -3];
        let mut y = [0i8; 4];
        let p = FullyConnectedParams { activation_min: -10, ..P };
        fully_connected(&p, Requant::PerTensor(QuantizedMultiplier::from_real(0.25)), &x, &w, 2, None, &mut y).unwrap();
        // accs: [140, -120, -14, 12] / 4 = [35, -30, -3.5, 3] -> [35, -30, -4, 3], min -10
        assert_eq!(y, [35, -10, -4, 3]);
        // Float requantisation rounds -3.5 away from zero too.
        fully_connected(&p, Requant::FloatPerTensor(0.25), &x, &w, 2, None, &mut y).unwrap();
        assert_eq!(y, [35, -10, -4, 3]);
    }

    #[test]
    fn per_channel_and_errors() {
        let m = [QuantizedMultiplier::from_real(1.0), QuantizedMultiplier::from_real(0.5)];
        let mut y = [0i8; 2];
        fully_connected(&P, Requant::PerChannel(&m), &[3, 4], &[1, 1, 1, 1], 2, Some(&[0, 1]), &mut y).unwrap();
        assert_eq!(y, [7, 4]);
        assert!(fully_connected(&P, Requant::PerChannel(&m[..1]), &[3, 4], &[1, 1, 1, 1], 2, None, &mut y).is_err());
        assert!(fully_connected(&P, Requant::PerChannel(&m), &[3, 4, 5], &[1, 1, 1, 1], 2, None, &mut y).is_err());
        assert!(fully_connected(&P, Requant::FloatPerTensor(1.0), &[3, 4], &[1, 1, 1], 2, None, &mut y).is_err());
        assert!(
            fully_connected(&P, Requant::FloatPerTensor(1.0), &[3, 4], &[1, 1, 1, 1], 2, Some(&[1]), &mut y).is_err()
        );
        assert!(fully_connected(&P, Requant::FloatPerTensor(1.0), &[3, 4], &[1, 1, 1, 1], 0, None, &mut y).is_err());
        let bad = FullyConnectedParams { activation_min: 1, activation_max: 0, ..P };
        assert!(fully_connected(&bad, Requant::FloatPerTensor(1.0), &[3, 4], &[1, 1, 1, 1], 2, None, &mut y).is_err());
    }
}
