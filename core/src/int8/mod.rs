//! Int8 inference kernels, bit-exact with TensorFlow Lite's reference kernels.
//!
//! The arithmetic of TFLite's `BUILTIN_REF` op resolver (the reference kernels TFLite Micro
//! mirrors), ported from its sources and checked bit for bit against TensorFlow 2.21's
//! interpreter (`tests/tests/int8_tflite_ref.rs`):
//!
//! - [`fixedpoint`]: gemmlowp's and TFLite's fixed-point primitives
//!   ([`saturating_rounding_doubling_high_mul`], [`rounding_divide_by_pot`],
//!   [`multiply_by_quantized_multiplier`], `exp_on_negative_values`, ...);
//! - prepare-time parameters from real scales: [`quantize_multiplier`], [`activation_range`],
//!   [`per_channel_multipliers`], [`effective_scale`], [`compute_padding`],
//!   [`SoftmaxParams::new`], [`AddParams::new`], [`logistic_table`], [`tanh_table`];
//! - slice kernels with run-time shapes, NHWC, for an interpreter: [`fully_connected`],
//!   [`conv_2d`], [`depthwise_conv_2d`], [`average_pool`], [`max_pool`], [`softmax`],
//!   [`lookup`] (LOGISTIC, TANH), [`add`], [`quantize`], [`dequantize`]. They check every
//!   length and return [`Error`](crate::Error) instead of panicking; integer overflow wraps as
//!   it does in TFLite's C++ on real hardware;
//! - const-generic layers for networks known at compile time ([`Int8Dense`], [`Int8Conv2d`],
//!   [`Int8DepthwiseConv2d`], [`Int8MaxPool2d`], [`Int8AvgPool2d`], [`Int8Softmax`], chained
//!   with [`Int8Chain`]), weights borrowed from `static`s in flash, the requantisation chosen
//!   by type ([`Rescale`]); `tinytrain-sim import model.tflite --rust` writes them. They give
//!   the slice kernels' bits through [`dsp`]: Cortex-M4 inline assembly (`SMLAD`, `SXTB16`)
//!   on `thumbv7em`, portable twins elsewhere;
//! - [`ExactScale`]: TensorFlow's `f64` FULLY_CONNECTED requantisation as one 32 x 32 multiply,
//!   proven equal on every accumulator once clamped.
//!
//! Rounding: TFLite's default build (PyPI wheels) uses the double-rounding
//! `MultiplyByQuantizedMultiplier` ([`multiply_by_quantized_multiplier`]); CONV_2D,
//! DEPTHWISE_CONV_2D and ADD use it. TensorFlow 2.20+ requantises the reference
//! FULLY_CONNECTED in `f64` instead ([`Requant::FloatPerTensor`]); TFLM's FULLY_CONNECTED uses
//! the fixed-point multiplier ([`Requant::PerTensor`]). Builds with `TFLITE_SINGLE_ROUNDING`
//! use [`multiply_by_quantized_multiplier_single_rounding`].
//!
//! ```
//! use tinytrain::int8::{activation_range, effective_scale, fully_connected, FullyConnectedParams,
//!     FusedActivation, Requant};
//! // A 2-input, 1-output FULLY_CONNECTED with ReLU, as an importer would set it up.
//! let (input_scale, input_zp, weight_scale, output_scale, output_zp) = (0.02f32, -128, 0.01f32, 0.05f32, -10);
//! let (activation_min, activation_max) = activation_range(FusedActivation::Relu, output_scale, output_zp);
//! let p = FullyConnectedParams { input_offset: -input_zp, weights_offset: 0, output_offset: output_zp,
//!     activation_min, activation_max };
//! let scale = effective_scale(input_scale, weight_scale, output_scale);
//! let mut y = [0i8; 1];
//! fully_connected(&p, Requant::FloatPerTensor(scale), &[127, -28], &[100, 50], 1, Some(&[1000]), &mut y).unwrap();
//! // acc = 100 * 255 + 50 * 100 + 1000 = 31500; * 0.004 = 126; - 10
//! assert_eq!(y, [116]);
//! ```

mod add;
mod conv;
mod conv_layers;
pub mod dsp;
mod exact;
pub mod fixedpoint;
mod fully_connected;
mod layers;
mod lut;
mod pool;
mod quant;
mod requant;
mod softmax;

pub use add::{AddParams, add, add_one};
pub use conv::{ConvParams, conv_2d, depthwise_conv_2d};
pub use conv_layers::{Int8Conv2d, Int8DepthwiseConv2d};
pub use exact::ExactScale;
pub use fixedpoint::{
    multiply_by_quantized_multiplier, multiply_by_quantized_multiplier_fast,
    multiply_by_quantized_multiplier_greater_than_one, multiply_by_quantized_multiplier_plus,
    multiply_by_quantized_multiplier_single_rounding, multiply_by_quantized_multiplier_smaller_than_one_exp,
    rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
};
pub use fully_connected::{FullyConnectedParams, fully_connected};
pub use layers::{Int8AvgPool2d, Int8Chain, Int8Dense, Int8Layer, Int8MaxPool2d, Int8Softmax, OutputScale};
pub use lut::{Lut, logistic_table, lookup, tanh_table};
pub use pool::{PoolParams, average_pool, max_pool};
pub use quant::{
    FusedActivation, Padding, QuantizedMultiplier, ShiftedMultiplier, activation_range, compute_out_size,
    compute_padding, dequantize, effective_scale, fully_connected_real_multiplier, per_channel_multipliers, quantize,
    quantize_multiplier, quantize_multiplier_greater_than_one, quantize_multiplier_smaller_than_one_exp,
};
pub use requant::{Requant, Rescale, Shape4};
pub use softmax::{SoftmaxParams, calculate_input_radius, softmax};
