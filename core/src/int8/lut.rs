//! LOGISTIC and TANH, int8, by a 256-entry lookup table, as TFLite's reference kernels do.
//!
//! TFLite's `BUILTIN_REF` resolver registers `SigmoidPrepare<kReference>` /
//! `TanhPrepare<kReference>` (`tensorflow/lite/kernels/activations.cc`). For int8 these fill a
//! table with `LUTPopulate<int8_t>` (`kernel_type == kGenericOptimized || kernel_type ==
//! kReference`), and Eval looks every input up in it (`optimized_integer_ops::LookupTable`);
//! the fixed-point `reference_integer_ops::Logistic` / `Tanh` with `input_multiplier`,
//! `input_left_shift` and `input_range_radius` are the int16 (and `kFixedPointOptimized`)
//! paths, not this one. The table entry for `q` is
//! `clamp(round(f(input_scale * (q - input_zero_point)) / output_scale) + output_zero_point)`,
//! everything in `f32` as in `LUTPopulateInt8`: `f(x) = 1 / (1 + exp(-x))` for LOGISTIC,
//! `tanh(x)` for TANH, `round` half away from zero. `libm`'s `expf` / `tanhf` stand in for the
//! C library's; a one-ulp difference changes an entry only at an exact rounding tie.
//!
//! ```
//! use tinytrain::int8::{logistic_table, lookup};
//! let lut = logistic_table(0.1, 0, 1.0 / 256.0, -128).unwrap();
//! let mut y = [0i8; 3];
//! lookup(&lut, &[0, 127, -128], &mut y).unwrap();
//! assert_eq!(y, [0, 127, -128]); // 0.5, ~1, ~0
//! ```

use crate::Error;

/// A 256-entry int8 lookup table, indexed by the input's bits (`q as u8`), as TFLite's
/// `LUTIndex` orders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lut(pub [i8; 256]);

impl Lut {
    /// The output for input `q`.
    #[must_use]
    #[inline]
    pub const fn get(&self, q: i8) -> i8 {
        self.0[q as u8 as usize]
    }
}

/// `LUTPopulateInt8` with `transform` in `f32`.
fn populate(
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
    transform: impl Fn(f32) -> f32,
) -> Lut {
    let inverse_scale = 1.0 / output_scale;
    let mut lut = [0i8; 256];
    for q in i8::MIN..=i8::MAX {
        let dequantized = input_scale * (i32::from(q).wrapping_sub(input_zero_point)) as f32;
        let transformed = transform(dequantized);
        let rescaled = libm::roundf(transformed * inverse_scale);
        // static_cast<int32_t>(rescaled + output_zero_point), saturating here.
        let quantized = (rescaled + output_zero_point as f32) as i32;
        lut[q as u8 as usize] = quantized.clamp(i32::from(i8::MIN), i32::from(i8::MAX)) as i8;
    }
    Lut(lut)
}

/// The LOGISTIC table of `SigmoidPrepare<kReference>` for int8: `1.0f / (1.0f +
/// std::exp(-x))`. The exponential is `libm::expf` on every target (not the `fast-math`
/// approximation), so the table is the same everywhere.
///
/// # Errors
/// [`Error::InvalidConfig`] unless `output_scale` is exactly 1/256, which TFLite requires.
pub fn logistic_table(
    input_scale: f32,
    input_zero_point: i32,
    output_scale: f32,
    output_zero_point: i32,
) -> Result<Lut, Error> {
    if output_scale != 1.0 / 256.0 {
        return Err(Error::InvalidConfig("int8 logistic: output scale must be 1/256"));
    }
    Ok(populate(input_scale, input_zero_point, output_scale, output_zero_point, |x| 1.0 / (1.0 + libm::expf(-x))))
}

/// The TANH table of `TanhPrepare<kReference>` for int8: `std::tanh(x)` (`libm::tanhf`).
#[must_use]
pub fn tanh_table(input_scale: f32, input_zero_point: i32, output_scale: f32, output_zero_point: i32) -> Lut {
    populate(input_scale, input_zero_point, output_scale, output_zero_point, libm::tanhf)
}

/// `output[i] = lut[input[i]]` (`LookupTable`).
///
/// # Errors
/// [`Error::ShapeMismatch`] if the slices differ in length.
pub fn lookup(lut: &Lut, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
    if input.len() != output.len() {
        return Err(Error::ShapeMismatch { expected: output.len(), found: input.len() });
    }
    for (y, &x) in output.iter_mut().zip(input) {
        *y = lut.get(x);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_follow_the_functions() {
        let lut = tanh_table(0.05, 3, 1.0 / 128.0, 0);
        for q in i8::MIN..=i8::MAX {
            let want = libm::tanh(0.05 * f64::from(i32::from(q) - 3)) * 128.0;
            let want = want.round().clamp(-128.0, 127.0);
            assert!((f64::from(lut.get(q)) - want).abs() <= 1.0, "q={q}");
        }
        assert_eq!(lut.get(3), 0);
        let lut = logistic_table(0.05, 0, 1.0 / 256.0, -128).unwrap();
        assert_eq!(lut.get(0), 0);
        assert_eq!(lut.get(-128), -128); // 1/(1+e^6.4) * 256 = 0.42 -> 0, -128
        assert!(logistic_table(0.05, 0, 1.0 / 255.0, -128).is_err());
        let mut y = [0i8; 2];
        assert!(lookup(&lut, &[1], &mut y).is_err());
    }
}
