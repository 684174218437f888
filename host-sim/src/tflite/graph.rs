//! The in-memory graph of a `.tflite` model: tensors (shape, element type, quantisation,
//! constant data) and operators in execution order, as [`super::load`] builds and checks it.
//!
//! Every graph that `load` returns has been checked: tensor indices are in range, constant data
//! has the length its shape says, every operator's inputs are written before they are read, and
//! every operator's output shape is the one its inputs and options give. The interpreter relies
//! on that.

use std::fmt;

/// Element types that tinytrain reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// Signed 8-bit integer (quantised activations and weights).
    I8,
    /// Signed 32-bit integer (quantised biases, shapes).
    I32,
    /// Signed 64-bit integer (shapes).
    I64,
}

impl DType {
    /// Bytes per element.
    #[must_use]
    pub const fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::F32 | DType::I32 => 4,
            DType::I64 => 8,
        }
    }

    /// TFLite's lower-case name (`int8`, `float32`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::I8 => "int8",
            DType::I32 => "int32",
            DType::I64 => "int64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Affine quantisation: `real = scale * (q - zero_point)`, one pair for the whole tensor or one
/// per index of dimension `dim` (per channel).
#[derive(Debug, Clone, PartialEq)]
pub struct Quant {
    /// One scale, or one per channel.
    pub scale: Vec<f32>,
    /// As many zero points as scales.
    pub zero_point: Vec<i64>,
    /// The quantised dimension of a per-channel tensor (0 for a per-tensor one).
    pub dim: usize,
}

impl Quant {
    /// More than one scale.
    #[must_use]
    pub fn per_channel(&self) -> bool {
        self.scale.len() > 1
    }

    /// The scale of a per-tensor quantised tensor (the first one otherwise).
    #[must_use]
    pub fn scale(&self) -> f32 {
        self.scale.first().copied().unwrap_or(0.0)
    }

    /// The zero point of a per-tensor quantised tensor (the first one otherwise).
    #[must_use]
    pub fn zero_point(&self) -> i64 {
        self.zero_point.first().copied().unwrap_or(0)
    }
}

impl fmt::Display for Quant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.per_channel() {
            let (lo, hi) =
                self.scale.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &s| (lo.min(s), hi.max(s)));
            write!(f, "{} scales on axis {} ({lo:.3e}..{hi:.3e})", self.scale.len(), self.dim)?;
            if self.zero_point.iter().any(|&z| z != 0) {
                write!(f, ", zero points vary")?;
            }
            Ok(())
        } else {
            write!(f, "scale {:.6e} zero point {}", self.scale(), self.zero_point())
        }
    }
}

/// The values of a constant tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// float32 values.
    F32(Vec<f32>),
    /// int8 values.
    I8(Vec<i8>),
    /// int32 values.
    I32(Vec<i32>),
    /// int64 values.
    I64(Vec<i64>),
}

impl Data {
    /// Number of elements.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    /// No elements.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Integer values widened to i64 (None for floats).
    #[must_use]
    pub fn as_i64(&self) -> Option<Vec<i64>> {
        match self {
            Data::F32(_) => None,
            Data::I8(v) => Some(v.iter().map(|&x| i64::from(x)).collect()),
            Data::I32(v) => Some(v.iter().map(|&x| i64::from(x)).collect()),
            Data::I64(v) => Some(v.clone()),
        }
    }
}

/// One tensor of subgraph 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Its name in the file.
    pub name: String,
    /// Dimensions (NHWC for images); empty for a scalar.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Quantisation parameters, if the file gives any.
    pub quant: Option<Quant>,
    /// The values of a constant tensor (weights, biases, shapes), from the file's buffers.
    pub data: Option<Data>,
}

impl Tensor {
    /// Number of elements (1 for a scalar).
    #[must_use]
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// No elements.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of its values.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.len() * self.dtype.size()
    }

    /// The file holds its values.
    #[must_use]
    pub fn is_const(&self) -> bool {
        self.data.is_some()
    }

    /// `int8 [1, 96, 96, 1]`.
    #[must_use]
    pub fn type_and_shape(&self) -> String {
        format!("{} {}", self.dtype, shape_text(&self.shape))
    }
}

/// `[1, 96, 96, 1]`.
#[must_use]
pub fn shape_text(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// Fused activation functions that tinytrain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// None.
    None,
    /// max(x, 0).
    Relu,
    /// min(max(x, 0), 6).
    Relu6,
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Activation::None => "NONE",
            Activation::Relu => "RELU",
            Activation::Relu6 => "RELU6",
        })
    }
}

/// TFLite's padding modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Output size ceil(in / stride), zeros (or nothing, for pools) around the input.
    Same,
    /// No padding: output size (in - filter) / stride + 1.
    Valid,
}

impl Padding {
    /// Output size of one spatial dimension (None if the filter does not fit), for a filter of
    /// `filter` taps `dilation` apart.
    #[must_use]
    pub fn out_size(self, input: usize, filter: usize, stride: usize, dilation: usize) -> Option<usize> {
        if stride == 0 || filter == 0 || dilation == 0 {
            return None;
        }
        let filter = (filter - 1).checked_mul(dilation)?.checked_add(1)?;
        match self {
            Padding::Same => Some(input.div_ceil(stride)),
            Padding::Valid => input.checked_sub(filter).map(|d| d / stride + 1),
        }
    }

    /// Padding before the first input element, as TFLite computes it
    /// (`ComputePaddingHeightWidth`): half the total, rounded down.
    #[must_use]
    pub fn before(self, input: usize, filter: usize, stride: usize, dilation: usize, output: usize) -> usize {
        let filter = filter.saturating_sub(1).saturating_mul(dilation).saturating_add(1);
        match self {
            Padding::Valid => 0,
            Padding::Same => {
                (output.saturating_sub(1).saturating_mul(stride).saturating_add(filter)).saturating_sub(input) / 2
            }
        }
    }
}

impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Padding::Same => "same",
            Padding::Valid => "valid",
        })
    }
}

/// Stride, filter size and padding of a 2-D window (pools); convolutions take the filter size
/// from their filter tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Padding mode.
    pub padding: Padding,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Filter height (pools only; 0 for convolutions).
    pub filter_h: usize,
    /// Filter width (pools only; 0 for convolutions).
    pub filter_w: usize,
    /// Vertical dilation (1 for pools).
    pub dilation_h: usize,
    /// Horizontal dilation (1 for pools).
    pub dilation_w: usize,
}

/// The operators tinytrain runs, with their options.
#[derive(Debug, Clone, PartialEq)]
pub enum OpKind {
    /// Inputs: data, weights `[O, I]`, optional bias `[O]`. Output `[batches, O]` (or the
    /// input's shape with the last dimension O, with `keep_num_dims`).
    FullyConnected {
        /// Fused activation.
        activation: Activation,
        /// Keep the input's leading dimensions.
        keep_num_dims: bool,
    },
    /// Inputs: data `[N, H, W, CI]`, filter `[CO, KH, KW, CI]`, optional bias `[CO]`.
    Conv2d {
        /// Padding and strides.
        window: Window,
        /// Fused activation.
        activation: Activation,
    },
    /// Inputs: data `[N, H, W, CI]`, filter `[1, KH, KW, CO]` with CO = CI × multiplier (the
    /// file's `depth_multiplier` is redundant, TFLite ignores it too), optional bias `[CO]`.
    DepthwiseConv2d {
        /// Padding and strides.
        window: Window,
        /// Fused activation.
        activation: Activation,
    },
    /// Average over each window (padding excluded from the count).
    AveragePool2d {
        /// Window, strides, padding.
        window: Window,
        /// Fused activation.
        activation: Activation,
    },
    /// Maximum over each window.
    MaxPool2d {
        /// Window, strides, padding.
        window: Window,
        /// Fused activation.
        activation: Activation,
    },
    /// Same values, the output tensor's shape (a folded Keras Flatten too).
    Reshape,
    /// Softmax over the last dimension of `exp(beta · x)`.
    Softmax {
        /// Inverse temperature.
        beta: f32,
    },
    /// 1 / (1 + exp(-x)).
    Logistic,
    /// tanh(x).
    Tanh,
    /// float32 to int8, or int8 to int8 with another scale and zero point.
    Quantize,
    /// int8 to float32.
    Dequantize,
    /// Element-wise sum (NumPy broadcasting).
    Add {
        /// Fused activation.
        activation: Activation,
    },
}

impl OpKind {
    /// TFLite's name of the operator.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            OpKind::FullyConnected { .. } => "FULLY_CONNECTED",
            OpKind::Conv2d { .. } => "CONV_2D",
            OpKind::DepthwiseConv2d { .. } => "DEPTHWISE_CONV_2D",
            OpKind::AveragePool2d { .. } => "AVERAGE_POOL_2D",
            OpKind::MaxPool2d { .. } => "MAX_POOL_2D",
            OpKind::Reshape => "RESHAPE",
            OpKind::Softmax { .. } => "SOFTMAX",
            OpKind::Logistic => "LOGISTIC",
            OpKind::Tanh => "TANH",
            OpKind::Quantize => "QUANTIZE",
            OpKind::Dequantize => "DEQUANTIZE",
            OpKind::Add { .. } => "ADD",
        }
    }

    /// The fused activation, if the operator has one.
    #[must_use]
    pub fn activation(&self) -> Option<Activation> {
        match self {
            OpKind::FullyConnected { activation, .. }
            | OpKind::Conv2d { activation, .. }
            | OpKind::DepthwiseConv2d { activation, .. }
            | OpKind::AveragePool2d { activation, .. }
            | OpKind::MaxPool2d { activation, .. }
            | OpKind::Add { activation } => Some(*activation),
            _ => None,
        }
    }
}

/// One operator of subgraph 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// What it computes.
    pub kind: OpKind,
    /// Its index among the file's operators (folded operators keep their numbers).
    pub index: usize,
    /// Tensor indices of its inputs; `None` for an optional input left out (a missing bias).
    pub inputs: Vec<Option<usize>>,
    /// Tensor indices of its outputs.
    pub outputs: Vec<usize>,
    /// Operators of the file folded into this one (`SHAPE, STRIDED_SLICE, PACK` of a Keras
    /// Flatten folded into its RESHAPE).
    pub folded: Vec<&'static str>,
}

impl Op {
    /// The tensor index of input `i`, if present.
    #[must_use]
    pub fn input(&self, i: usize) -> Option<usize> {
        self.inputs.get(i).copied().flatten()
    }

    /// The tensor index of output 0.
    #[must_use]
    pub fn output(&self) -> usize {
        self.outputs.first().copied().unwrap_or(0)
    }
}

/// Subgraph 0 of a `.tflite` model, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// The file's schema version.
    pub version: u32,
    /// The file's description (the converter's name, usually).
    pub description: String,
    /// All tensors of the subgraph, indexed as in the file.
    pub tensors: Vec<Tensor>,
    /// Operators in execution order.
    pub ops: Vec<Op>,
    /// The subgraph's input tensors.
    pub inputs: Vec<usize>,
    /// The subgraph's output tensors.
    pub outputs: Vec<usize>,
}

impl Graph {
    /// Input tensor `i`.
    #[must_use]
    pub fn input(&self, i: usize) -> Option<&Tensor> {
        self.inputs.get(i).and_then(|&t| self.tensors.get(t))
    }

    /// Output tensor `i`.
    #[must_use]
    pub fn output(&self, i: usize) -> Option<&Tensor> {
        self.outputs.get(i).and_then(|&t| self.tensors.get(t))
    }
}
