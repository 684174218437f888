//! Reading a `.tflite` file into a checked [`Graph`]: the flatbuffer verifier first, then every
//! index, length, type and shape, so that nothing later can go out of bounds. Keras' Flatten
//! (SHAPE, STRIDED_SLICE, PACK feeding a RESHAPE, with a static result) is folded into the
//! RESHAPE here.

use anyhow::{Result, bail};
use flatbuffers::{Follow, Vector, VerifierOptions};

use super::check;
use super::graph::{Activation, DType, Data, Graph, Op, OpKind, Padding, Quant, Tensor, Window};
use super::schema_generated::tflite as fb;

/// The operators tinytrain runs, as error messages list them.
pub const SUPPORTED_OPS: &str = "FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D, \
     RESHAPE, SOFTMAX, LOGISTIC, TANH, QUANTIZE, DEQUANTIZE, ADD (and SHAPE, STRIDED_SLICE, PACK with a static \
     result, as in a Keras Flatten)";

/// The tensor types tinytrain reads, as error messages list them.
pub const SUPPORTED_TYPES: &str = "FLOAT32, INT8, INT32, INT64";

/// Largest tensor, in elements (1 GiB of float32).
pub const MAX_ELEMENTS: usize = 1 << 28;

/// Most dimensions of a tensor.
pub const MAX_RANK: usize = 8;

/// Reads and checks a `.tflite` file.
///
/// # Errors
/// One line saying what is wrong: not a TFLite flatbuffer (truncated, corrupted), more than one
/// subgraph, an operator, option, fused activation or tensor type tinytrain does not run (named,
/// with its index and what is supported), or indices, buffer lengths and shapes that do not fit
/// together.
pub fn load(bytes: &[u8]) -> Result<Graph> {
    if bytes.len() < 8 {
        bail!("not a TFLite model: {} bytes, too short for a flatbuffer", bytes.len());
    }
    if !fb::model_buffer_has_identifier(bytes) {
        bail!("not a TFLite model: no TFL3 file identifier at bytes 4..8");
    }
    let opts = VerifierOptions { max_depth: 64, max_tables: 1 << 20, ..VerifierOptions::default() };
    let model = match fb::root_as_model_with_opts(&opts, bytes) {
        Ok(m) => m,
        Err(e) => bail!("not a valid TFLite flatbuffer: {}", one_line(&e.to_string())),
    };
    Loader::new(model, bytes)?.run()
}

/// A multi-line message as one line.
fn one_line(text: &str) -> String {
    let parts: Vec<&str> = text.lines().map(|l| l.trim().trim_end_matches('.')).filter(|l| !l.is_empty()).collect();
    parts.join("; ")
}

/// A name from the file, safe to print on one line (control characters replaced, at most 80
/// characters).
fn printable(name: &str) -> String {
    let mut s: String = name.chars().take(80).map(|c| if c.is_control() { '?' } else { c }).collect();
    if name.chars().count() > 80 {
        s.push_str("...");
    }
    s
}

/// Element `i` of a verified vector, or an error naming `what`.
fn at<'a, T: Follow<'a> + 'a>(v: &Vector<'a, T>, i: usize, what: &str) -> Result<T::Inner> {
    if i < v.len() { Ok(v.get(i)) } else { bail!("{what} {i} does not exist (the file has {})", v.len()) }
}

/// The builtin operator of an operator code: the larger of `builtin_code` and the deprecated
/// byte-sized `deprecated_builtin_code`, as TFLite's `GetBuiltinCode` takes it (files written
/// before the split only set the byte; newer ones set both, or 127 in the byte for codes above
/// it).
fn builtin_code(code: &fb::OperatorCode<'_>) -> i32 {
    code.builtin_code().0.max(i32::from(code.deprecated_builtin_code()))
}

/// `CONCATENATION`, or `builtin code 300` for one the schema does not know.
fn op_name(code: i32) -> String {
    match fb::BuiltinOperator(code).variant_name() {
        Some(n) => n.to_owned(),
        None => format!("builtin code {code}"),
    }
}

struct Loader<'a> {
    model: fb::Model<'a>,
    bytes: &'a [u8],
    sub: fb::SubGraph<'a>,
    tensors: Vec<Tensor>,
    /// Values known before running: the file's constants and folded SHAPE, STRIDED_SLICE and
    /// PACK results.
    known: Vec<Option<Data>>,
    /// Operators folded into each folded tensor.
    folded: Vec<Vec<&'static str>>,
}

impl<'a> Loader<'a> {
    fn new(model: fb::Model<'a>, bytes: &'a [u8]) -> Result<Self> {
        let Some(subgraphs) = model.subgraphs() else { bail!("the model has no subgraph") };
        if subgraphs.len() != 1 {
            bail!("the model has {} subgraphs; tinytrain runs models with one (no control flow)", subgraphs.len());
        }
        let sub = subgraphs.get(0);
        Ok(Loader { model, bytes, sub, tensors: Vec::new(), known: Vec::new(), folded: Vec::new() })
    }

    fn run(mut self) -> Result<Graph> {
        self.read_tensors()?;
        let ops = self.read_ops()?;
        let inputs = self.io_list(self.sub.inputs(), "input")?;
        let outputs = self.io_list(self.sub.outputs(), "output")?;
        let graph = Graph {
            version: self.model.version(),
            description: self.model.description().map(printable).unwrap_or_default(),
            tensors: self.tensors,
            ops,
            inputs,
            outputs,
        };
        check::data_flow(&graph)?;
        Ok(graph)
    }

    fn io_list(&self, list: Option<Vector<'a, i32>>, what: &str) -> Result<Vec<usize>> {
        let list: Vec<i32> = list.map(|v| v.iter().collect()).unwrap_or_default();
        if list.is_empty() {
            bail!("subgraph 0 has no {what}s");
        }
        list.iter()
            .map(|&t| match usize::try_from(t) {
                Ok(i) if i < self.tensors.len() => Ok(i),
                _ => bail!("subgraph {what} names tensor {t}, which does not exist ({} tensors)", self.tensors.len()),
            })
            .collect()
    }

    fn read_tensors(&mut self) -> Result<()> {
        let Some(list) = self.sub.tensors() else { bail!("subgraph 0 has no tensors") };
        // Tensors may share a buffer; a file that shares one very many times would copy it
        // as many times.
        let limit = self.bytes.len().saturating_mul(4).max(64 << 20);
        let mut copied = 0usize;
        for (i, t) in list.iter().enumerate() {
            let tensor = self.tensor(i, &t)?;
            if tensor.is_const() {
                copied = copied.saturating_add(tensor.bytes());
                if copied > limit {
                    bail!(
                        "the tensors' constant data add up to more than {limit} bytes (buffers shared very many times)"
                    );
                }
            }
            self.known.push(tensor.data.clone());
            self.tensors.push(tensor);
            self.folded.push(Vec::new());
        }
        Ok(())
    }

    fn tensor(&self, i: usize, t: &fb::Tensor<'a>) -> Result<Tensor> {
        let name = t.name().map(printable).unwrap_or_default();
        let what = format!("tensor {i} ({name})");
        let dtype = match t.type_() {
            fb::TensorType::FLOAT32 => DType::F32,
            fb::TensorType::INT8 => DType::I8,
            fb::TensorType::INT32 => DType::I32,
            fb::TensorType::INT64 => DType::I64,
            other => {
                let n = other.variant_name().map_or_else(|| format!("type code {}", other.0), str::to_owned);
                bail!("{what} is {n}; tinytrain supports {SUPPORTED_TYPES}")
            }
        };
        let dims: Vec<i32> = t.shape().map(|v| v.iter().collect()).unwrap_or_default();
        if dims.len() > MAX_RANK {
            bail!("{what} has {} dimensions; tinytrain supports at most {MAX_RANK}", dims.len());
        }
        let mut shape = Vec::with_capacity(dims.len());
        let mut len = 1usize;
        for &d in &dims {
            let Ok(d) = usize::try_from(d) else { bail!("{what} has a negative dimension {d}") };
            len = match len.checked_mul(d) {
                Some(n) if n <= MAX_ELEMENTS => n,
                _ => bail!("{what} is too large (more than {MAX_ELEMENTS} elements)"),
            };
            shape.push(d);
        }
        if t.sparsity().is_some() {
            bail!("{what} is sparse; tinytrain reads dense tensors");
        }
        if t.is_variable() {
            bail!("{what} is a variable tensor; tinytrain runs stateless models");
        }
        if t.external_buffer() != 0 {
            bail!("{what} keeps its data in an external buffer; tinytrain reads data inside the file");
        }
        let quant = match t.quantization() {
            None => None,
            Some(q) => quant(&q, &shape, &what)?,
        };
        let data = self.buffer(t.buffer(), dtype, len, &what)?;
        Ok(Tensor { name, shape, dtype, quant, data })
    }

    fn buffer(&self, index: u32, dtype: DType, len: usize, what: &str) -> Result<Option<Data>> {
        if index == 0 {
            return Ok(None); // Buffer 0 is the empty sentinel.
        }
        let Some(buffers) = self.model.buffers() else { bail!("{what} names buffer {index} but the file has none") };
        let b = at(&buffers, index as usize, &format!("{what} names buffer"))?;
        let raw: &[u8] = match b.data() {
            Some(d) if !d.is_empty() => d.bytes(),
            _ if b.offset() > 1 => {
                // Data outside the flatbuffer, after it in the same file (models above 2 GB).
                let (Ok(start), Ok(size)) = (usize::try_from(b.offset()), usize::try_from(b.size())) else {
                    bail!("{what}: buffer {index} lies outside the file")
                };
                match start.checked_add(size).and_then(|end| self.bytes.get(start..end)) {
                    Some(d) => d,
                    None => bail!("{what}: buffer {index} lies outside the file"),
                }
            }
            _ => return Ok(None),
        };
        if raw.len() != len * dtype.size() {
            bail!("{what} needs {} bytes of {dtype} but buffer {index} holds {}", len * dtype.size(), raw.len());
        }
        Ok(Some(match dtype {
            DType::I8 => Data::I8(raw.iter().map(|&b| b.cast_signed()).collect()),
            DType::F32 => {
                Data::F32(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
            DType::I32 => {
                Data::I32(raw.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
            }
            DType::I64 => Data::I64(
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
        }))
    }

    fn read_ops(&mut self) -> Result<Vec<Op>> {
        let Some(list) = self.sub.operators() else { bail!("subgraph 0 has no operators") };
        let codes = self.model.operator_codes();
        let mut ops = Vec::new();
        for (index, op) in list.iter().enumerate() {
            let Some(codes) = codes.as_ref() else {
                bail!("operator {index} has no operator code (the file has none)")
            };
            let code = at(codes, op.opcode_index() as usize, &format!("operator {index} uses operator code"))?;
            let builtin = builtin_code(&code);
            let name = op_name(builtin);
            let here = format!("operator {index} ({name})");
            let inputs = self.indices(op.inputs(), &here, "input")?;
            let outputs: Vec<usize> = self
                .indices(op.outputs(), &here, "output")?
                .into_iter()
                .map(|o| o.ok_or_else(|| anyhow::anyhow!("{here} has an output of -1")))
                .collect::<Result<_>>()?;
            if outputs.len() != 1 {
                bail!("{here} has {} outputs; tinytrain's operators have one", outputs.len());
            }
            if op.builtin_options_2_type() != fb::BuiltinOptions2::NONE {
                bail!("{here} has options tinytrain does not know (builtin_options_2)");
            }
            if op.custom_options().is_some_and(|c| !c.is_empty()) {
                bail!("{here} has custom options; tinytrain runs builtin operators only");
            }
            let kind = match fb::BuiltinOperator(builtin) {
                fb::BuiltinOperator::SHAPE | fb::BuiltinOperator::STRIDED_SLICE | fb::BuiltinOperator::PACK => {
                    self.fold(&op, builtin, &here, &inputs, outputs[0])?;
                    continue;
                }
                _ => kind(&op, &code, builtin, index, &here)?,
            };
            let mut folded = Vec::new();
            if kind == OpKind::Reshape
                && let Some(shape) = inputs.get(1).copied().flatten()
            {
                folded.clone_from(&self.folded[shape]);
            }
            let mut op = Op { kind, index, inputs, outputs, folded };
            check::op(&op, &self.tensors, &self.known, &here)?;
            if op.kind == OpKind::Reshape {
                // The output tensor's shape is the new shape: the shape input, checked against
                // it, is not read again.
                op.inputs.truncate(1);
            }
            ops.push(op);
        }
        if ops.is_empty() {
            bail!("subgraph 0 has no operators tinytrain runs");
        }
        Ok(ops)
    }

    fn indices(&self, list: Option<Vector<'a, i32>>, here: &str, what: &str) -> Result<Vec<Option<usize>>> {
        let n = self.tensors.len();
        list.map(|v| v.iter().collect::<Vec<i32>>())
            .unwrap_or_default()
            .into_iter()
            .map(|t| match t {
                -1 => Ok(None),
                _ => match usize::try_from(t) {
                    Ok(i) if i < n => Ok(Some(i)),
                    _ => bail!("{here} has {what} tensor {t}, which does not exist ({n} tensors)"),
                },
            })
            .collect()
    }
}

/// Options and fused activation of a supported operator; an error for anything else.
#[allow(clippy::too_many_lines)] // one arm per operator, read top to bottom
fn kind(op: &fb::Operator<'_>, code: &fb::OperatorCode<'_>, builtin: i32, index: usize, here: &str) -> Result<OpKind> {
    let activation = |a: fb::ActivationFunctionType| -> Result<Activation> {
        match a {
            fb::ActivationFunctionType::NONE => Ok(Activation::None),
            fb::ActivationFunctionType::RELU => Ok(Activation::Relu),
            fb::ActivationFunctionType::RELU6 => Ok(Activation::Relu6),
            other => {
                let n = other.variant_name().map_or_else(|| format!("code {}", other.0), str::to_owned);
                bail!("{here} has fused activation {n}; tinytrain supports NONE, RELU, RELU6")
            }
        }
    };
    let padding = |p: fb::Padding| -> Result<Padding> {
        match p {
            fb::Padding::SAME => Ok(Padding::Same),
            fb::Padding::VALID => Ok(Padding::Valid),
            other => bail!("{here} has padding code {}; tinytrain supports SAME and VALID", other.0),
        }
    };
    let positive = |v: i32, what: &str| -> Result<usize> {
        match usize::try_from(v) {
            Ok(n) if n > 0 && n <= 1 << 16 => Ok(n),
            _ => bail!("{here} has {what} {v}"),
        }
    };
    Ok(match fb::BuiltinOperator(builtin) {
        fb::BuiltinOperator::FULLY_CONNECTED => {
            let Some(o) = op.builtin_options_as_fully_connected_options() else {
                return Ok(OpKind::FullyConnected { activation: Activation::None, keep_num_dims: false });
            };
            if o.weights_format() != fb::FullyConnectedOptionsWeightsFormat::DEFAULT {
                bail!("{here} has shuffled weights; tinytrain supports weights_format DEFAULT");
            }
            if o.asymmetric_quantize_inputs() {
                bail!("{here} quantises its inputs at run time (hybrid); tinytrain supports int8 and float32 models");
            }
            bias_type(o.quantized_bias_type(), here)?;
            OpKind::FullyConnected {
                activation: activation(o.fused_activation_function())?,
                keep_num_dims: o.keep_num_dims(),
            }
        }
        fb::BuiltinOperator::CONV_2D => {
            let Some(o) = op.builtin_options_as_conv_2_doptions() else { bail!("{here} has no options") };
            bias_type(o.quantized_bias_type(), here)?;
            OpKind::Conv2d {
                window: Window {
                    padding: padding(o.padding())?,
                    stride_h: positive(o.stride_h(), "stride_h")?,
                    stride_w: positive(o.stride_w(), "stride_w")?,
                    filter_h: 0,
                    filter_w: 0,
                    dilation_h: positive(o.dilation_h_factor(), "dilation_h_factor")?,
                    dilation_w: positive(o.dilation_w_factor(), "dilation_w_factor")?,
                },
                activation: activation(o.fused_activation_function())?,
            }
        }
        fb::BuiltinOperator::DEPTHWISE_CONV_2D => {
            let Some(o) = op.builtin_options_as_depthwise_conv_2_doptions() else { bail!("{here} has no options") };
            OpKind::DepthwiseConv2d {
                window: Window {
                    padding: padding(o.padding())?,
                    stride_h: positive(o.stride_h(), "stride_h")?,
                    stride_w: positive(o.stride_w(), "stride_w")?,
                    filter_h: 0,
                    filter_w: 0,
                    dilation_h: positive(o.dilation_h_factor(), "dilation_h_factor")?,
                    dilation_w: positive(o.dilation_w_factor(), "dilation_w_factor")?,
                },
                activation: activation(o.fused_activation_function())?,
            }
        }
        b @ (fb::BuiltinOperator::AVERAGE_POOL_2D | fb::BuiltinOperator::MAX_POOL_2D) => {
            let Some(o) = op.builtin_options_as_pool_2_doptions() else { bail!("{here} has no options") };
            let window = Window {
                padding: padding(o.padding())?,
                stride_h: positive(o.stride_h(), "stride_h")?,
                stride_w: positive(o.stride_w(), "stride_w")?,
                filter_h: positive(o.filter_height(), "filter_height")?,
                filter_w: positive(o.filter_width(), "filter_width")?,
                dilation_h: 1,
                dilation_w: 1,
            };
            let activation = activation(o.fused_activation_function())?;
            if b == fb::BuiltinOperator::AVERAGE_POOL_2D {
                OpKind::AveragePool2d { window, activation }
            } else {
                OpKind::MaxPool2d { window, activation }
            }
        }
        fb::BuiltinOperator::RESHAPE => OpKind::Reshape,
        fb::BuiltinOperator::SOFTMAX => {
            // TFLite reads beta as 0 when the options are missing.
            let beta = op.builtin_options_as_softmax_options().map_or(0.0, |o| o.beta());
            if !beta.is_finite() {
                bail!("{here} has beta {beta}");
            }
            OpKind::Softmax { beta }
        }
        fb::BuiltinOperator::LOGISTIC => OpKind::Logistic,
        fb::BuiltinOperator::TANH => OpKind::Tanh,
        fb::BuiltinOperator::QUANTIZE => OpKind::Quantize,
        fb::BuiltinOperator::DEQUANTIZE => OpKind::Dequantize,
        fb::BuiltinOperator::ADD => {
            let a = op
                .builtin_options_as_add_options()
                .map_or(fb::ActivationFunctionType::NONE, |o| o.fused_activation_function());
            OpKind::Add { activation: activation(a)? }
        }
        fb::BuiltinOperator::CUSTOM => {
            let custom = code.custom_code().map(printable).unwrap_or_default();
            bail!("operator {index} is the custom operator {custom:?}; tinytrain supports {SUPPORTED_OPS}")
        }
        _ => bail!("operator {index} is {}; tinytrain supports {SUPPORTED_OPS}", op_name(builtin)),
    })
}

impl Loader<'_> {
    /// SHAPE, STRIDED_SLICE or PACK: computed now if their inputs are known (a Keras Flatten's
    /// are), and the result kept as a known value for the RESHAPE that reads it.
    fn fold(
        &mut self,
        op: &fb::Operator<'_>,
        builtin: i32,
        here: &str,
        inputs: &[Option<usize>],
        out: usize,
    ) -> Result<()> {
        let name = match fb::BuiltinOperator(builtin) {
            fb::BuiltinOperator::SHAPE => "SHAPE",
            fb::BuiltinOperator::STRIDED_SLICE => "STRIDED_SLICE",
            _ => "PACK",
        };
        let static_only =
            "tinytrain folds SHAPE, STRIDED_SLICE and PACK only when their result is static (as in a Keras Flatten)";
        if self.known[out].is_some() {
            bail!("{here} writes tensor {out}, which holds constant data");
        }
        let mut values = Vec::new();
        let mut folded = Vec::new();
        for (k, &i) in inputs.iter().enumerate() {
            let Some(i) = i else { bail!("{here} has no input {k}") };
            if name == "SHAPE" {
                values.push(Data::I64(
                    self.tensors[i].shape.iter().map(|&d| i64::try_from(d).unwrap_or(i64::MAX)).collect(),
                ));
                continue;
            }
            if self.known[i].is_none() {
                bail!("{here} reads tensor {i}, computed at run time; {static_only}");
            }
            // Shapes are short: refuse long tensors before copying them.
            if self.tensors[i].len() > 64 {
                bail!("{here} reads tensor {i} of {} values; {static_only}, on shapes", self.tensors[i].len());
            }
            values.push(Data::I64(self.known[i].as_ref().and_then(Data::as_i64).unwrap_or_default()));
            for name in &self.folded[i] {
                if !folded.contains(name) {
                    folded.push(name);
                }
            }
        }
        let ints = |d: &Data| d.as_i64().unwrap_or_default();
        let t = &self.tensors[out];
        let result: Vec<i64> = match name {
            "SHAPE" => {
                let [v] = values.as_slice() else { bail!("{here} has {} inputs; SHAPE has one", values.len()) };
                ints(v)
            }
            "STRIDED_SLICE" => {
                let Some(o) = op.builtin_options_as_strided_slice_options() else { bail!("{here} has no options") };
                let [x, b, e, s] = values.as_slice() else {
                    bail!("{here} has {} inputs; STRIDED_SLICE has four", values.len())
                };
                let x_shape = inputs[0].map(|i| self.tensors[i].shape.clone()).unwrap_or_default();
                if x_shape.len() != 1 || o.ellipsis_mask() != 0 || o.new_axis_mask() != 0 {
                    bail!(
                        "{here} slices a tensor of rank {} or uses ellipsis/new-axis masks; {static_only}",
                        x_shape.len()
                    );
                }
                strided_slice_1d(&ints(x), &ints(b), &ints(e), &ints(s), &o)
                    .map_err(|m| anyhow::anyhow!("{here}: {m}"))?
            }
            _ => {
                let Some(o) = op.builtin_options_as_pack_options() else { bail!("{here} has no options") };
                if o.axis() != 0 || inputs.iter().flatten().any(|&i| !self.tensors[i].shape.is_empty()) {
                    bail!("{here} packs along axis {} or packs non-scalars; {static_only}", o.axis());
                }
                values.iter().flat_map(ints).collect()
            }
        };
        if result.len() != t.len() {
            bail!("{here} computes {} values but its output tensor {out} has shape {:?}", result.len(), t.shape);
        }
        let data = match t.dtype {
            DType::I32 => Data::I32(
                result
                    .iter()
                    .map(|&v| i32::try_from(v).map_err(|_| anyhow::anyhow!("{here}: value {v} does not fit int32")))
                    .collect::<Result<_>>()?,
            ),
            DType::I64 => Data::I64(result),
            other => bail!("{here} writes {other}; {static_only} (int32 or int64)"),
        };
        if !folded.contains(&name) {
            folded.push(name);
        }
        self.known[out] = Some(data);
        self.folded[out] = folded;
        Ok(())
    }
}

/// The quantisation parameters of a tensor of shape `shape`, checked.
fn quant(q: &fb::QuantizationParameters<'_>, shape: &[usize], what: &str) -> Result<Option<Quant>> {
    if q.details_type() != fb::QuantizationDetails::NONE {
        bail!("{what} has custom quantisation details; tinytrain supports affine scale and zero point");
    }
    let scale: Vec<f32> = q.scale().map(|v| v.iter().collect()).unwrap_or_default();
    let zero_point: Vec<i64> = q.zero_point().map(|v| v.iter().collect()).unwrap_or_default();
    if scale.is_empty() && zero_point.is_empty() {
        return Ok(None); // min/max only, or nothing: not quantised.
    }
    if scale.len() != zero_point.len() {
        bail!("{what} has {} quantisation scales but {} zero points", scale.len(), zero_point.len());
    }
    if let Some(s) = scale.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        bail!("{what} has quantisation scale {s}; scales must be positive and finite");
    }
    let dim = if scale.len() == 1 {
        0
    } else {
        let Ok(mut dim) = usize::try_from(q.quantized_dimension()) else {
            bail!("{what} has quantized_dimension {}", q.quantized_dimension())
        };
        // A rank-1 tensor can only be quantised along dimension 0: TFLM accepts person_detect's
        // biases, which say 3.
        if shape.len() == 1 {
            dim = 0;
        }
        match shape.get(dim) {
            Some(&n) if n == scale.len() => dim,
            Some(&n) => bail!("{what} has {} quantisation scales for dimension {dim} of size {n}", scale.len()),
            None => bail!("{what} has quantized_dimension {dim} but {} dimensions", shape.len()),
        }
    };
    Ok(Some(Quant { scale, zero_point, dim }))
}

/// `quantized_bias_type` unset (FLOAT32, the default) or INT32; int64 biases belong to int16
/// models.
fn bias_type(t: fb::TensorType, here: &str) -> Result<()> {
    if t == fb::TensorType::FLOAT32 || t == fb::TensorType::INT32 {
        Ok(())
    } else {
        bail!(
            "{here} has quantized_bias_type {}; tinytrain supports int32 biases",
            t.variant_name().unwrap_or("unknown")
        )
    }
}

/// TFLite's STRIDED_SLICE of a 1-D tensor (begin/end masks, negative indices, shrink_axis).
fn strided_slice_1d(
    x: &[i64],
    begin: &[i64],
    end: &[i64],
    strides: &[i64],
    o: &fb::StridedSliceOptions<'_>,
) -> std::result::Result<Vec<i64>, String> {
    let ([b], [e], [s]) = (begin, end, strides) else {
        return Err("begin, end and strides must have one value".into());
    };
    let (b, mut e, s) = (*b, *e, *s);
    if s == 0 {
        return Err("stride 0".into());
    }
    let n = i64::try_from(x.len()).unwrap_or(i64::MAX);
    let clamp = |v: i64| -> i64 {
        let v = if v < 0 { v + n } else { v };
        if s > 0 { v.clamp(0, n) } else { v.clamp(-1, n - 1) }
    };
    let start = if o.begin_mask() & 1 != 0 { if s > 0 { 0 } else { n - 1 } } else { clamp(b) };
    if o.offset() {
        e = e.saturating_add(b);
    }
    let stop = if o.shrink_axis_mask() & 1 != 0 {
        start + 1
    } else if o.end_mask() & 1 != 0 {
        if s > 0 { n } else { -1 }
    } else {
        clamp(e)
    };
    if o.shrink_axis_mask() & 1 != 0 {
        return match usize::try_from(start).ok().and_then(|i| x.get(i)) {
            Some(&v) => Ok(vec![v]),
            None => Err(format!("index {b} out of range")),
        };
    }
    let mut out = Vec::new();
    let mut i = start;
    while (s > 0 && i < stop) || (s < 0 && i > stop) {
        if let Some(&v) = usize::try_from(i).ok().and_then(|i| x.get(i)) {
            out.push(v);
        }
        i += s;
    }
    Ok(out)
}
