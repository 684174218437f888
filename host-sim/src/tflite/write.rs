//! Writing a [`Graph`] as a `.tflite` flatbuffer that TensorFlow Lite's interpreter (and TFLM)
//! loads: schema version 3, buffer 0 empty as the converter leaves it, one buffer per constant
//! tensor, operator codes with both the byte-sized and the 32-bit builtin code, and the
//! operator versions the TFLite converter writes for int8 models.

use flatbuffers::{FlatBufferBuilder, WIPOffset};

use super::graph::{Activation, DType, Data, Graph, OpKind, Padding, Tensor, Window};
use super::schema_generated::tflite as fb;

fn activation(a: Activation) -> fb::ActivationFunctionType {
    match a {
        Activation::None => fb::ActivationFunctionType::NONE,
        Activation::Relu => fb::ActivationFunctionType::RELU,
        Activation::Relu6 => fb::ActivationFunctionType::RELU6,
    }
}

fn padding(p: Padding) -> fb::Padding {
    match p {
        Padding::Same => fb::Padding::SAME,
        Padding::Valid => fb::Padding::VALID,
    }
}

fn tensor_type(d: DType) -> fb::TensorType {
    match d {
        DType::F32 => fb::TensorType::FLOAT32,
        DType::I8 => fb::TensorType::INT8,
        DType::I32 => fb::TensorType::INT32,
        DType::I64 => fb::TensorType::INT64,
    }
}

/// The builtin operator and the version the TFLite converter gives it in an int8 model.
fn code(kind: &OpKind) -> (fb::BuiltinOperator, i32) {
    match kind {
        OpKind::FullyConnected { .. } => (fb::BuiltinOperator::FULLY_CONNECTED, 4),
        OpKind::Conv2d { .. } => (fb::BuiltinOperator::CONV_2D, 3),
        OpKind::DepthwiseConv2d { .. } => (fb::BuiltinOperator::DEPTHWISE_CONV_2D, 3),
        OpKind::AveragePool2d { .. } => (fb::BuiltinOperator::AVERAGE_POOL_2D, 2),
        OpKind::MaxPool2d { .. } => (fb::BuiltinOperator::MAX_POOL_2D, 2),
        OpKind::Reshape => (fb::BuiltinOperator::RESHAPE, 1),
        OpKind::Softmax { .. } => (fb::BuiltinOperator::SOFTMAX, 2),
        OpKind::Logistic => (fb::BuiltinOperator::LOGISTIC, 2),
        OpKind::Tanh => (fb::BuiltinOperator::TANH, 2),
        OpKind::Quantize => (fb::BuiltinOperator::QUANTIZE, 1),
        OpKind::Dequantize => (fb::BuiltinOperator::DEQUANTIZE, 2),
        OpKind::Add { .. } => (fb::BuiltinOperator::ADD, 2),
    }
}

fn data_bytes(d: &Data) -> Vec<u8> {
    match d {
        Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::I8(v) => v.iter().map(|&x| x.to_le_bytes()[0]).collect(),
        Data::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn dims(shape: &[usize]) -> Vec<i32> {
    shape.iter().map(|&d| i32::try_from(d).unwrap_or(i32::MAX)).collect()
}

fn index(i: usize) -> i32 {
    i32::try_from(i).unwrap_or(i32::MAX)
}

fn window_options<'a>(fbb: &mut FlatBufferBuilder<'a>, w: &Window, a: Activation) -> WIPOffset<fb::Pool2DOptions<'a>> {
    fb::Pool2DOptions::create(
        fbb,
        &fb::Pool2DOptionsArgs {
            padding: padding(w.padding),
            stride_w: index(w.stride_w),
            stride_h: index(w.stride_h),
            filter_width: index(w.filter_w),
            filter_height: index(w.filter_h),
            fused_activation_function: activation(a),
        },
    )
}

/// The options table of an operator, with its union tag.
fn options(
    fbb: &mut FlatBufferBuilder<'_>,
    kind: &OpKind,
    out: &Tensor,
) -> (fb::BuiltinOptions, Option<WIPOffset<flatbuffers::UnionWIPOffset>>) {
    match kind {
        OpKind::FullyConnected { activation: a, keep_num_dims } => {
            let o = fb::FullyConnectedOptions::create(
                fbb,
                &fb::FullyConnectedOptionsArgs {
                    fused_activation_function: activation(*a),
                    keep_num_dims: *keep_num_dims,
                    ..Default::default()
                },
            );
            (fb::BuiltinOptions::FullyConnectedOptions, Some(o.as_union_value()))
        }
        OpKind::Conv2d { window: w, activation: a } => {
            let o = fb::Conv2DOptions::create(
                fbb,
                &fb::Conv2DOptionsArgs {
                    padding: padding(w.padding),
                    stride_w: index(w.stride_w),
                    stride_h: index(w.stride_h),
                    fused_activation_function: activation(*a),
                    dilation_w_factor: index(w.dilation_w),
                    dilation_h_factor: index(w.dilation_h),
                    ..Default::default()
                },
            );
            (fb::BuiltinOptions::Conv2DOptions, Some(o.as_union_value()))
        }
        OpKind::DepthwiseConv2d { window: w, activation: a } => {
            let multiplier = 1;
            let o = fb::DepthwiseConv2DOptions::create(
                fbb,
                &fb::DepthwiseConv2DOptionsArgs {
                    padding: padding(w.padding),
                    stride_w: index(w.stride_w),
                    stride_h: index(w.stride_h),
                    depth_multiplier: multiplier,
                    fused_activation_function: activation(*a),
                    dilation_w_factor: index(w.dilation_w),
                    dilation_h_factor: index(w.dilation_h),
                },
            );
            (fb::BuiltinOptions::DepthwiseConv2DOptions, Some(o.as_union_value()))
        }
        OpKind::AveragePool2d { window: w, activation: a } | OpKind::MaxPool2d { window: w, activation: a } => {
            let o = window_options(fbb, w, *a);
            (fb::BuiltinOptions::Pool2DOptions, Some(o.as_union_value()))
        }
        OpKind::Reshape => {
            let shape = dims(&out.shape);
            let new_shape = fbb.create_vector(&shape);
            let o = fb::ReshapeOptions::create(fbb, &fb::ReshapeOptionsArgs { new_shape: Some(new_shape) });
            (fb::BuiltinOptions::ReshapeOptions, Some(o.as_union_value()))
        }
        OpKind::Softmax { beta } => {
            let o = fb::SoftmaxOptions::create(fbb, &fb::SoftmaxOptionsArgs { beta: *beta });
            (fb::BuiltinOptions::SoftmaxOptions, Some(o.as_union_value()))
        }
        OpKind::Add { activation: a } => {
            let o = fb::AddOptions::create(
                fbb,
                &fb::AddOptionsArgs { fused_activation_function: activation(*a), ..Default::default() },
            );
            (fb::BuiltinOptions::AddOptions, Some(o.as_union_value()))
        }
        OpKind::Logistic | OpKind::Tanh | OpKind::Quantize | OpKind::Dequantize => (fb::BuiltinOptions::NONE, None),
    }
}

/// `graph` as the bytes of a `.tflite` file.
#[must_use]
#[allow(clippy::too_many_lines)] // the model's tables, innermost first, as flatbuffers builds them
pub fn write(graph: &Graph) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::with_capacity(64 * 1024);

    // Buffers: 0 is the empty sentinel, then one per constant tensor.
    let mut buffers = vec![fb::Buffer::create(&mut fbb, &fb::BufferArgs::default())];
    let mut tensors = Vec::with_capacity(graph.tensors.len());
    for t in &graph.tensors {
        let buffer = match &t.data {
            Some(d) => {
                let bytes = data_bytes(d);
                // A byte vector starts 4-byte aligned (after its length): enough for
                // int32 and float32 data read in place.
                let data = fbb.create_vector(&bytes);
                buffers.push(fb::Buffer::create(&mut fbb, &fb::BufferArgs { data: Some(data), ..Default::default() }));
                u32::try_from(buffers.len() - 1).unwrap_or(0)
            }
            None => 0,
        };
        let quantization = t.quant.as_ref().map(|q| {
            let scale = fbb.create_vector(&q.scale);
            let zero_point = fbb.create_vector(&q.zero_point);
            fb::QuantizationParameters::create(
                &mut fbb,
                &fb::QuantizationParametersArgs {
                    scale: Some(scale),
                    zero_point: Some(zero_point),
                    quantized_dimension: index(q.dim),
                    ..Default::default()
                },
            )
        });
        let shape = fbb.create_vector(&dims(&t.shape));
        let name = fbb.create_string(&t.name);
        tensors.push(fb::Tensor::create(
            &mut fbb,
            &fb::TensorArgs {
                shape: Some(shape),
                type_: tensor_type(t.dtype),
                buffer,
                name: Some(name),
                quantization,
                ..Default::default()
            },
        ));
    }

    // Operator codes, one per operator kind in order of first use.
    let mut codes: Vec<(fb::BuiltinOperator, i32)> = Vec::new();
    let mut operators = Vec::with_capacity(graph.ops.len());
    for op in &graph.ops {
        let c = code(&op.kind);
        let opcode_index = codes.iter().position(|&k| k == c).unwrap_or_else(|| {
            codes.push(c);
            codes.len() - 1
        });
        let inputs: Vec<i32> = op.inputs.iter().map(|i| i.map_or(-1, index)).collect();
        let outputs: Vec<i32> = op.outputs.iter().map(|&o| index(o)).collect();
        let out = &graph.tensors[op.output()];
        let (options_type, options_value) = options(&mut fbb, &op.kind, out);
        let inputs = fbb.create_vector(&inputs);
        let outputs = fbb.create_vector(&outputs);
        operators.push(fb::Operator::create(
            &mut fbb,
            &fb::OperatorArgs {
                opcode_index: u32::try_from(opcode_index).unwrap_or(0),
                inputs: Some(inputs),
                outputs: Some(outputs),
                builtin_options_type: options_type,
                builtin_options: options_value,
                ..Default::default()
            },
        ));
    }
    let operator_codes: Vec<_> = codes
        .iter()
        .map(|&(builtin, version)| {
            let small = i8::try_from(builtin.0).unwrap_or(127);
            fb::OperatorCode::create(
                &mut fbb,
                &fb::OperatorCodeArgs {
                    deprecated_builtin_code: small,
                    builtin_code: builtin,
                    version,
                    ..Default::default()
                },
            )
        })
        .collect();

    let tensors = fbb.create_vector(&tensors);
    let operators = fbb.create_vector(&operators);
    let inputs = fbb.create_vector(&graph.inputs.iter().map(|&i| index(i)).collect::<Vec<_>>());
    let outputs = fbb.create_vector(&graph.outputs.iter().map(|&i| index(i)).collect::<Vec<_>>());
    let name = fbb.create_string("main");
    let subgraph = fb::SubGraph::create(
        &mut fbb,
        &fb::SubGraphArgs {
            tensors: Some(tensors),
            inputs: Some(inputs),
            outputs: Some(outputs),
            operators: Some(operators),
            name: Some(name),
            ..Default::default()
        },
    );
    let subgraphs = fbb.create_vector(&[subgraph]);
    let operator_codes = fbb.create_vector(&operator_codes);
    let buffers = fbb.create_vector(&buffers);
    let description = fbb.create_string(&graph.description);
    let model = fb::Model::create(
        &mut fbb,
        &fb::ModelArgs {
            version: 3,
            operator_codes: Some(operator_codes),
            subgraphs: Some(subgraphs),
            description: Some(description),
            buffers: Some(buffers),
            ..Default::default()
        },
    );
    fb::finish_model_buffer(&mut fbb, model);
    fbb.finished_data().to_vec()
}
