//! AVERAGE_POOL_2D and MAX_POOL_2D, int8, NHWC.
//!
//! Mirror `reference_integer_ops::AveragePool` and `reference_integer_ops::MaxPool`
//! (`tensorflow/lite/kernels/internal/reference/integer_ops/pooling.h`): the window is clipped
//! to the image (padding is not counted); the average rounds half away from zero,
//! `acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n` with C's truncating division; the max
//! starts from -128. No requantisation: TFLite requires equal input and output scales.
//!
//! ```
//! use tinytrain::int8::{average_pool, PoolParams, Shape4};
//! let p = PoolParams { stride_height: 2, stride_width: 2, filter_height: 2, filter_width: 2,
//!     pad_height: 0, pad_width: 0, activation_min: -128, activation_max: 127 };
//! let mut y = [0i8; 1];
//! average_pool(&p, Shape4([1, 2, 2, 1]), &[1, 2, 3, 5], Shape4([1, 1, 1, 1]), &mut y).unwrap();
//! assert_eq!(y, [3]); // 11 / 4 = 2.75
//! ```

use super::requant::{Shape4, check_activation};
use crate::Error;

/// The run-time constants of a pooling operator (TFLite's `PoolParams`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PoolParams {
    /// Vertical stride (at least 1).
    pub stride_height: usize,
    /// Horizontal stride (at least 1).
    pub stride_width: usize,
    /// Window height.
    pub filter_height: usize,
    /// Window width.
    pub filter_width: usize,
    /// Rows of padding before the first row.
    pub pad_height: usize,
    /// Columns of padding before the first column.
    pub pad_width: usize,
    /// Lower clamp.
    pub activation_min: i32,
    /// Upper clamp.
    pub activation_max: i32,
}

/// Validates and returns `(batches, in_h, in_w, out_h, out_w, depth)`.
fn check(
    params: &PoolParams,
    input_shape: Shape4,
    input: &[i8],
    output_shape: Shape4,
    output: &[i8],
) -> Result<[usize; 6], Error> {
    check_activation(params.activation_min, params.activation_max)?;
    if params.stride_height == 0 || params.stride_width == 0 {
        return Err(Error::InvalidConfig("int8: zero stride"));
    }
    input_shape.check_len(input.len())?;
    output_shape.check_len(output.len())?;
    let [b, in_h, in_w, c] = input_shape.0;
    let [ob, out_h, out_w, oc] = output_shape.0;
    if ob != b {
        return Err(Error::ShapeMismatch { expected: b, found: ob });
    }
    if oc != c {
        return Err(Error::ShapeMismatch { expected: c, found: oc });
    }
    let reach = |o: usize, s: usize, f: usize| o.checked_mul(s).and_then(|a| a.checked_add(f));
    if reach(out_h, params.stride_height, params.filter_height).is_none()
        || reach(out_w, params.stride_width, params.filter_width).is_none()
    {
        return Err(Error::InvalidConfig("int8: stride too large"));
    }
    Ok([b, in_h, in_w, out_h, out_w, c])
}

/// The window's input range along one axis: `[start, end)` in input coordinates.
#[inline]
fn window(o: usize, stride: usize, pad: usize, filter: usize, size: usize) -> (usize, usize) {
    let origin = o * stride;
    let start = origin.saturating_sub(pad);
    let end = (origin + filter).saturating_sub(pad).min(size);
    (start, end.max(start))
}

/// AVERAGE_POOL_2D.
///
/// # Errors
/// [`Error::ShapeMismatch`] when a slice length differs from its shape or the batch / depth
/// of input and output differ; [`Error::InvalidConfig`] for a zero stride, an empty activation
/// range, or a window that lies wholly in the padding (TFLite returns an error there too).
pub fn average_pool(
    params: &PoolParams,
    input_shape: Shape4,
    input: &[i8],
    output_shape: Shape4,
    output: &mut [i8],
) -> Result<(), Error> {
    let [batches, in_h, in_w, out_h, out_w, depth] = check(params, input_shape, input, output_shape, output)?;
    for b in 0..batches {
        for oy in 0..out_h {
            let (y0, y1) = window(oy, params.stride_height, params.pad_height, params.filter_height, in_h);
            for ox in 0..out_w {
                let (x0, x1) = window(ox, params.stride_width, params.pad_width, params.filter_width, in_w);
                let count = i32::try_from((y1 - y0) * (x1 - x0)).unwrap_or(0);
                if count == 0 {
                    return Err(Error::InvalidConfig("int8: pooling window outside the input or too large"));
                }
                for c in 0..depth {
                    let mut acc = 0i32;
                    for iy in y0..y1 {
                        for ix in x0..x1 {
                            acc = acc.wrapping_add(i32::from(input[input_shape.offset(b, iy, ix, c)]));
                        }
                    }
                    let avg =
                        if acc > 0 { acc.wrapping_add(count / 2) / count } else { acc.wrapping_sub(count / 2) / count };
                    output[output_shape.offset(b, oy, ox, c)] =
                        avg.max(params.activation_min).min(params.activation_max) as i8;
                }
            }
        }
    }
    Ok(())
}

/// MAX_POOL_2D.
///
/// # Errors
/// As [`average_pool`] (an empty window gives -128 clamped, as in TFLite, not an error).
pub fn max_pool(
    params: &PoolParams,
    input_shape: Shape4,
    input: &[i8],
    output_shape: Shape4,
    output: &mut [i8],
) -> Result<(), Error> {
    let [batches, in_h, in_w, out_h, out_w, depth] = check(params, input_shape, input, output_shape, output)?;
    for b in 0..batches {
        for oy in 0..out_h {
            let (y0, y1) = window(oy, params.stride_height, params.pad_height, params.filter_height, in_h);
            for ox in 0..out_w {
                let (x0, x1) = window(ox, params.stride_width, params.pad_width, params.filter_width, in_w);
                for c in 0..depth {
                    let mut max = i8::MIN;
                    for iy in y0..y1 {
                        for ix in x0..x1 {
                            max = max.max(input[input_shape.offset(b, iy, ix, c)]);
                        }
                    }
                    // std::max<int8_t>(max, activation_min): the bound is narrowed to int8 first.
                    let v = max.max(params.activation_min as i8).min(params.activation_max as i8);
                    output[output_shape.offset(b, oy, ox, c)] = v;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: PoolParams = PoolParams {
        stride_height: 1,
        stride_width: 1,
        filter_height: 2,
        filter_width: 2,
        pad_height: 0,
        pad_width: 0,
        activation_min: -128,
        activation_max: 127,
    };

    #[test]
    fn average_rounds_half_away_from_zero() {
        let mut y = [0i8; 1];
        for (x, want) in
            [([1, 1, 1, 2], 1), ([1, 1, 2, 2], 2), ([-1, -1, -2, -2], -2), ([-1, -1, -1, -2], -1), ([-1, 0, 0, 0], 0)]
        {
            average_pool(&P, Shape4([1, 2, 2, 1]), &x, Shape4([1, 1, 1, 1]), &mut y).unwrap();
            assert_eq!(y[0], want, "{x:?}");
        }
    }

    #[test]
    fn padding_is_not_counted() {
        // SAME 3x3 pooling of a 2x2 image: every window sees the whole image.
        let p = PoolParams { filter_height: 3, filter_width: 3, pad_height: 1, pad_width: 1, ..P };
        let mut y = [0i8; 4];
        average_pool(&p, Shape4([1, 2, 2, 1]), &[4, 8, 12, 16], Shape4([1, 2, 2, 1]), &mut y).unwrap();
        assert_eq!(y, [10; 4]);
        max_pool(&p, Shape4([1, 2, 2, 1]), &[4, 8, 12, -16], Shape4([1, 2, 2, 1]), &mut y).unwrap();
        assert_eq!(y, [12; 4]);
        let clamp = PoolParams { activation_max: 5, ..p };
        max_pool(&clamp, Shape4([1, 2, 2, 1]), &[4, 8, 12, -16], Shape4([1, 2, 2, 1]), &mut y).unwrap();
        assert_eq!(y, [5; 4]);
    }

    #[test]
    fn errors() {
        let mut y = [0i8; 1];
        assert!(average_pool(&P, Shape4([1, 2, 2, 1]), &[0; 3], Shape4([1, 1, 1, 1]), &mut y).is_err());
        let p = PoolParams { stride_height: 0, ..P };
        assert!(max_pool(&p, Shape4([1, 2, 2, 1]), &[0; 4], Shape4([1, 1, 1, 1]), &mut y).is_err());
        // A window wholly in the padding.
        let p = PoolParams { filter_height: 1, filter_width: 1, pad_height: 1, pad_width: 1, ..P };
        assert!(average_pool(&p, Shape4([1, 1, 1, 1]), &[0], Shape4([1, 1, 1, 1]), &mut y).is_err());
    }
}
