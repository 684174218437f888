//! Reading `.tflite` files: the TensorFlow Lite Micro models (and the fixtures' own Keras
//! models) parse into the operators and shapes their README lists; truncated, bit-flipped and
//! edited files, and models with operators, options or types tinytrain does not run, are
//! refused with one line, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::{scratch, sim};
use flatbuffers::FlatBufferBuilder;
use tinytrain_sim::tflite::{DType, Data, Graph, Interpreter, OpKind, arena, load, macs, schema, summary};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tflite").join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap()
}

fn ops(g: &Graph) -> Vec<&'static str> {
    g.ops.iter().map(|o| o.kind.name()).collect()
}

fn out_shapes(g: &Graph) -> Vec<Vec<usize>> {
    g.ops.iter().map(|o| g.tensors[o.output()].shape.clone()).collect()
}

/// An error message on one line.
fn one_line(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    assert!(!text.contains('\n'), "error on more than one line: {text:?}");
    assert!(!text.is_empty());
    text
}

fn refused(bytes: &[u8]) -> String {
    match load(bytes) {
        Ok(g) => panic!("accepted: {:?}", ops(&g)),
        Err(e) => one_line(&e),
    }
}

#[test]
fn hello_world_models_parse() {
    for (name, dtype) in [("hello_world_int8.tflite", DType::I8), ("hello_world_float.tflite", DType::F32)] {
        let g = load(&read(name)).unwrap();
        assert_eq!(ops(&g), ["FULLY_CONNECTED"; 3], "{name}");
        assert_eq!(out_shapes(&g), [vec![1, 16], vec![1, 16], vec![1, 1]], "{name}");
        assert_eq!((g.input(0).unwrap().shape.clone(), g.input(0).unwrap().dtype), (vec![1, 1], dtype));
        let acts: Vec<_> = g.ops.iter().map(|o| o.kind.activation().unwrap().to_string()).collect();
        assert_eq!(acts, ["RELU", "RELU", "NONE"]);
    }
    let g = load(&read("hello_world_int8.tflite")).unwrap();
    let q = g.input(0).unwrap().quant.clone().unwrap();
    assert_eq!((q.scale(), q.zero_point()), (0.024_480_115, -128));
    let q = g.output(0).unwrap().quant.clone().unwrap();
    assert_eq!((q.scale(), q.zero_point()), (0.008_290_957, 5));
    let text = summary(&g, "hello_world_int8.tflite");
    assert!(text.contains("Total params: 321 (288 int8, 33 int32)"), "{text}");
    assert!(text.contains("Flash (weights and biases): 420 bytes"), "{text}");
    // Two [1, 16] int8 activations live at once.
    assert_eq!(arena(&g).bytes, 32);
    assert_eq!(macs(&g), 16 + 256 + 16);
}

#[test]
fn micro_speech_parses() {
    let g = load(&read("micro_speech_quantized.tflite")).unwrap();
    assert_eq!(ops(&g), ["RESHAPE", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"]);
    assert_eq!(out_shapes(&g), [vec![1, 49, 40, 1], vec![1, 25, 20, 8], vec![1, 4], vec![1, 4]]);
    assert_eq!((g.input(0).unwrap().shape.clone(), g.input(0).unwrap().dtype), (vec![1, 1960], DType::I8));
    let OpKind::DepthwiseConv2d { window, .. } = &g.ops[1].kind else { panic!() };
    assert_eq!((window.stride_h, window.stride_w, window.padding.to_string().as_str()), (2, 2, "same"));
    let filter = &g.tensors[g.ops[1].input(1).unwrap()];
    assert_eq!(filter.shape, [1, 10, 8, 8]);
    assert_eq!(filter.quant.as_ref().unwrap().dim, 3);
    // The FULLY_CONNECTED flattens its rank-4 input itself.
    assert_eq!(g.tensors[g.ops[2].input(1).unwrap()].shape, [4, 4000]);
    // Input [1, 1960] and the reshaped [1, 49, 40, 1] live together while RESHAPE runs, then
    // that and the depthwise output: 1,960 + 4,000.
    assert_eq!(arena(&g).bytes, 5_960);
}

#[test]
fn person_detect_parses_with_its_rank1_quantized_dimension_3() {
    let g = load(&read("person_detect.tflite")).unwrap();
    assert_eq!(g.ops.len(), 31);
    let count = |n: &str| ops(&g).iter().filter(|o| **o == n).count();
    assert_eq!((count("DEPTHWISE_CONV_2D"), count("CONV_2D")), (14, 14));
    assert_eq!(ops(&g)[27..], ["AVERAGE_POOL_2D", "CONV_2D", "RESHAPE", "SOFTMAX"]);
    assert_eq!(out_shapes(&g)[0], [1, 48, 48, 8]);
    assert_eq!(out_shapes(&g)[26], [1, 3, 3, 256]);
    assert_eq!(out_shapes(&g)[27], [1, 1, 1, 256]);
    assert_eq!(out_shapes(&g)[30], [1, 2]);
    assert_eq!(g.input(0).unwrap().shape, [1, 96, 96, 1]);
    // The biases say quantized_dimension 3 for a rank-1 tensor: read as 0.
    let biases: Vec<_> = g.ops.iter().filter_map(|o| o.input(2)).map(|b| &g.tensors[b]).collect();
    assert!(biases.iter().all(|b| b.shape.len() == 1 && b.quant.as_ref().unwrap().dim == 0));
    // [1, 48, 48, 8] in, [1, 48, 48, 16] out of the first 1x1 convolution.
    assert_eq!(arena(&g).bytes, 48 * 48 * 24);
}

#[test]
fn keras_flatten_is_folded_into_one_reshape() {
    let g = load(&read("own_cnn.tflite")).unwrap();
    assert_eq!(
        ops(&g),
        [
            "CONV_2D",
            "DEPTHWISE_CONV_2D",
            "MAX_POOL_2D",
            "AVERAGE_POOL_2D",
            "RESHAPE",
            "FULLY_CONNECTED",
            "TANH",
            "FULLY_CONNECTED",
            "SOFTMAX"
        ]
    );
    let reshape = &g.ops[4];
    assert_eq!(reshape.folded, ["SHAPE", "STRIDED_SLICE", "PACK"]);
    assert_eq!(reshape.index, 7);
    assert_eq!(g.tensors[reshape.output()].shape, [1, 72]);
    assert_eq!(ops(&load(&read("own_mlp_add.tflite")).unwrap()).last(), Some(&"FULLY_CONNECTED"));
    assert_eq!(
        ops(&load(&read("own_float_io.tflite")).unwrap()),
        ["QUANTIZE", "FULLY_CONNECTED", "FULLY_CONNECTED", "DEQUANTIZE"]
    );
}

#[test]
fn every_truncation_of_hello_world_int8_is_refused() {
    let bytes = read("hello_world_int8.tflite");
    let mut messages = std::collections::BTreeSet::new();
    for len in 0..bytes.len() {
        let msg = refused(&bytes[..len]);
        messages.insert(msg.split(':').next().unwrap_or_default().to_owned());
    }
    assert!(messages.iter().all(|m| m.starts_with("not a")), "{messages:?}");
}

/// Loads, prepares and runs (on zeros) whatever loads; a panic fails the test.
fn load_and_run(bytes: &[u8]) -> Result<(), String> {
    let g = load(bytes).map_err(|e| one_line(&e))?;
    let interpreter = Interpreter::new(&g).map_err(|e| one_line(&e))?;
    if macs(&g) > 50_000_000 {
        return Ok(());
    }
    let inputs: Vec<Data> = g
        .inputs
        .iter()
        .map(|&i| match g.tensors[i].dtype {
            DType::F32 => Data::F32(vec![0.0; g.tensors[i].len()]),
            _ => Data::I8(vec![0; g.tensors[i].len()]),
        })
        .collect();
    interpreter.run(&inputs).map_err(|e| one_line(&e))?;
    Ok(())
}

#[test]
fn single_bit_flips_never_panic() {
    for name in ["hello_world_int8.tflite", "own_cnn.tflite", "own_mlp_add.tflite"] {
        let bytes = read(name);
        let (mut accepted, mut refused) = (0, 0);
        for pos in 0..bytes.len() {
            for bit in [pos % 8, (pos * 5 + 3) % 8] {
                let mut b = bytes.clone();
                b[pos] ^= 1 << bit;
                match load_and_run(&b) {
                    Ok(()) => accepted += 1,
                    Err(_) => refused += 1,
                }
            }
        }
        println!("{name}: {refused} flips refused, {accepted} accepted (weights, scales, names, padding)");
        assert!(refused > 100 && accepted > 0, "{name}: {refused} refused, {accepted} accepted");
    }
}

/// hello_world_int8 with its (only) operator code set to `code`.
fn with_operator_code(code: i32) -> Vec<u8> {
    with_operator_codes(code, code.min(127) as u8)
}

/// hello_world_int8 with `builtin_code` and `deprecated_builtin_code` set.
fn with_operator_codes(code: i32, deprecated: u8) -> Vec<u8> {
    let mut bytes = read("hello_world_int8.tflite");
    let (loc, b_off, d_off) = {
        let model = schema::root_as_model(&bytes).unwrap();
        let codes = model.operator_codes().unwrap();
        assert_eq!(codes.len(), 1);
        let table = codes.get(0)._tab;
        let vt = table.vtable();
        (
            table.loc(),
            vt.get(schema::OperatorCode::VT_BUILTIN_CODE) as usize,
            vt.get(schema::OperatorCode::VT_DEPRECATED_BUILTIN_CODE) as usize,
        )
    };
    assert!(b_off > 0 && d_off > 0, "both code fields are in the file");
    bytes[loc + b_off..loc + b_off + 4].copy_from_slice(&code.to_le_bytes());
    bytes[loc + d_off] = deprecated;
    bytes
}

#[test]
fn unsupported_operators_are_named_with_their_index() {
    let msg = refused(&with_operator_code(2));
    assert!(
        msg.starts_with("operator 0 is CONCATENATION; tinytrain supports FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D,"),
        "{msg}"
    );
    let msg = refused(&with_operator_code(300));
    assert!(msg.starts_with("operator 0 is builtin code 300; tinytrain supports"), "{msg}");
    // Codes above 127 live in `builtin_code` only (the byte holds the placeholder 127).
    let msg = refused(&with_operator_code(163));
    assert!(msg.starts_with("operator 0 is STABLEHLO_ADD;"), "{msg}");
    // The original still loads, and so does a file from before the split (only the byte set).
    assert_eq!(load(&with_operator_code(9)).unwrap().ops.len(), 3);
    assert_eq!(ops(&load(&with_operator_codes(0, 9)).unwrap()), ["FULLY_CONNECTED"; 3]);
}

#[test]
fn wrong_tensor_type_is_named() {
    let mut bytes = read("hello_world_int8.tflite");
    let (input, loc, off) = {
        let model = schema::root_as_model(&bytes).unwrap();
        let sub = model.subgraphs().unwrap().get(0);
        let input = sub.inputs().unwrap().get(0) as usize;
        let t = sub.tensors().unwrap().get(input)._tab;
        (input, t.loc(), t.vtable().get(schema::Tensor::VT_TYPE_) as usize)
    };
    assert!(off > 0);
    bytes[loc + off] = 3; // UINT8
    let msg = refused(&bytes);
    let want = format!(
        "tensor {input} (serving_default_dense_input:0) is UINT8; tinytrain supports FLOAT32, INT8, INT32, INT64"
    );
    assert_eq!(msg, want);
}

#[test]
fn unsupported_fused_activation_is_named() {
    let mut bytes = read("hello_world_int8.tflite");
    let (loc, off) = {
        let model = schema::root_as_model(&bytes).unwrap();
        let op = model.subgraphs().unwrap().get(0).operators().unwrap().get(0);
        let o = op.builtin_options_as_fully_connected_options().unwrap();
        assert_eq!(o.fused_activation_function(), schema::ActivationFunctionType::RELU);
        (o._tab.loc(), o._tab.vtable().get(schema::FullyConnectedOptions::VT_FUSED_ACTIVATION_FUNCTION) as usize)
    };
    bytes[loc + off] = 4; // TANH
    let msg = refused(&bytes);
    assert_eq!(msg, "operator 0 (FULLY_CONNECTED) has fused activation TANH; tinytrain supports NONE, RELU, RELU6");
}

/// What a small model built here has.
struct Spec {
    code: i32,
    input_type: schema::TensorType,
    activation: schema::ActivationFunctionType,
    weights_format: schema::FullyConnectedOptionsWeightsFormat,
    subgraphs: usize,
    custom: Option<&'static str>,
    weights_len: usize,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            code: 9,
            input_type: schema::TensorType::INT8,
            activation: schema::ActivationFunctionType::RELU,
            weights_format: schema::FullyConnectedOptionsWeightsFormat::DEFAULT,
            subgraphs: 1,
            custom: None,
            weights_len: 8,
        }
    }
}

/// A FULLY_CONNECTED 4 → 2 int8 model (or whatever `spec` changes), built with the
/// flatbuffers builder.
fn build(spec: &Spec) -> Vec<u8> {
    let mut b = FlatBufferBuilder::new();
    let quant = |b: &mut FlatBufferBuilder<'static>, scale: f32, zp: i64| {
        let (s, z) = (b.create_vector(&[scale]), b.create_vector(&[zp]));
        schema::QuantizationParameters::create(
            b,
            &schema::QuantizationParametersArgs { scale: Some(s), zero_point: Some(z), ..Default::default() },
        )
    };
    let mut tensors = Vec::new();
    for (shape, t, buffer, name, scale, zp) in [
        (vec![1, 4], spec.input_type, 0, "x", 0.5, -1),
        (vec![2, 4], schema::TensorType::INT8, 1, "w", 0.25, 0),
        (vec![2], schema::TensorType::INT32, 2, "b", 0.125, 0),
        (vec![1, 2], schema::TensorType::INT8, 0, "y", 1.0, 3),
    ] {
        let shape = b.create_vector(&shape);
        let name = b.create_string(name);
        let q = quant(&mut b, scale, zp);
        tensors.push(schema::Tensor::create(
            &mut b,
            &schema::TensorArgs {
                shape: Some(shape),
                type_: t,
                buffer,
                name: Some(name),
                quantization: Some(q),
                ..Default::default()
            },
        ));
    }
    let tensors = b.create_vector(&tensors);
    let options = schema::FullyConnectedOptions::create(
        &mut b,
        &schema::FullyConnectedOptionsArgs {
            fused_activation_function: spec.activation,
            weights_format: spec.weights_format,
            ..Default::default()
        },
    );
    let (ins, outs) = (b.create_vector(&[0i32, 1, 2]), b.create_vector(&[3i32]));
    let op = schema::Operator::create(
        &mut b,
        &schema::OperatorArgs {
            opcode_index: 0,
            inputs: Some(ins),
            outputs: Some(outs),
            builtin_options_type: schema::BuiltinOptions::FullyConnectedOptions,
            builtin_options: Some(options.as_union_value()),
            ..Default::default()
        },
    );
    let operators = b.create_vector(&[op]);
    let (sin, sout) = (b.create_vector(&[0i32]), b.create_vector(&[3i32]));
    let mut subgraphs = Vec::new();
    for _ in 0..spec.subgraphs {
        subgraphs.push(schema::SubGraph::create(
            &mut b,
            &schema::SubGraphArgs {
                tensors: Some(tensors),
                inputs: Some(sin),
                outputs: Some(sout),
                operators: Some(operators),
                ..Default::default()
            },
        ));
    }
    let subgraphs = b.create_vector(&subgraphs);
    let custom = spec.custom.map(|c| b.create_string(c));
    let code = schema::OperatorCode::create(
        &mut b,
        &schema::OperatorCodeArgs {
            deprecated_builtin_code: spec.code.min(127) as i8,
            builtin_code: schema::BuiltinOperator(spec.code),
            custom_code: custom,
            version: 1,
        },
    );
    let codes = b.create_vector(&[code]);
    let weights: Vec<u8> = (0..spec.weights_len).map(|i| i as u8).collect();
    let bias: Vec<u8> = [10i32, -20].iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut buffers = vec![schema::Buffer::create(&mut b, &schema::BufferArgs::default())];
    for data in [&weights[..], &bias[..]] {
        let data = b.create_vector(data);
        buffers.push(schema::Buffer::create(&mut b, &schema::BufferArgs { data: Some(data), ..Default::default() }));
    }
    let buffers = b.create_vector(&buffers);
    let model = schema::Model::create(
        &mut b,
        &schema::ModelArgs {
            version: 3,
            operator_codes: Some(codes),
            subgraphs: Some(subgraphs),
            buffers: Some(buffers),
            ..Default::default()
        },
    );
    schema::finish_model_buffer(&mut b, model);
    b.finished_data().to_vec()
}

#[test]
fn a_model_built_here_loads_and_runs() {
    let g = load(&build(&Spec::default())).unwrap();
    let y = Interpreter::new(&g).unwrap().run(&[Data::I8(vec![1, 2, 3, 4])]).unwrap();
    // acc = Σ w·(x + 1) + b = [0·2 + 1·3 + 2·4 + 3·5 + 10, 4·2 + 5·3 + 6·4 + 7·5 - 20] = [36, 62];
    // × 0.5 · 0.25 / 1.0, rounded, + 3: [8, 11] (RELU keeps both).
    assert_eq!(y, [Data::I8(vec![8, 11])]);
}

#[test]
fn unsupported_models_are_refused_in_one_line() {
    let cases: [(Spec, &str); 6] = [
        (Spec { subgraphs: 2, ..Spec::default() }, "the model has 2 subgraphs; tinytrain runs models with one"),
        (
            Spec { code: 32, custom: Some("TFLite_Detection_PostProcess"), ..Spec::default() },
            "operator 0 is the custom operator \"TFLite_Detection_PostProcess\"; tinytrain supports",
        ),
        (Spec { code: 39, ..Spec::default() }, "operator 0 is TRANSPOSE; tinytrain supports"),
        (
            Spec { activation: schema::ActivationFunctionType::SIGN_BIT, ..Spec::default() },
            "operator 0 (FULLY_CONNECTED) has fused activation SIGN_BIT; tinytrain supports NONE, RELU, RELU6",
        ),
        (
            Spec { weights_format: schema::FullyConnectedOptionsWeightsFormat::SHUFFLED4x16INT8, ..Spec::default() },
            "operator 0 (FULLY_CONNECTED) has shuffled weights",
        ),
        (
            Spec { input_type: schema::TensorType::INT16, ..Spec::default() },
            "tensor 0 (x) is INT16; tinytrain supports FLOAT32, INT8, INT32, INT64",
        ),
    ];
    for (spec, want) in cases {
        let msg = refused(&build(&spec));
        assert!(msg.starts_with(want), "{msg}\nshould start with\n{want}");
    }
    let msg = refused(&build(&Spec { weights_len: 7, ..Spec::default() }));
    assert_eq!(msg, "tensor 1 (w) needs 8 bytes of int8 but buffer 1 holds 7");
    let msg = refused(&build(&Spec { input_type: schema::TensorType::FLOAT32, ..Spec::default() }));
    assert!(msg.contains("mixes float32 and int8 tensors"), "{msg}");
}

#[test]
fn cli_summary_and_predict_of_a_tflite_file() {
    let model = fixture("hello_world_int8.tflite");
    let m = model.to_str().unwrap();
    let run = sim(&["summary", m]);
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("FULLY_CONNECTED RELU"), "{}", run.stdout);
    assert!(run.stdout.contains("Total params: 321"), "{}", run.stdout);
    assert!(run.stdout.contains("RAM (tensor arena estimate): 32 bytes, at operator 1"), "{}", run.stdout);

    let dir = scratch("tflite-predict");
    let samples = dir.join("samples.txt");
    std::fs::write(&samples, "# x quantised\n[-128]\n\n[[0]]\n127\n").unwrap();
    let run = sim(&["predict", m, "--input", samples.to_str().unwrap()]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout, "[4]\n[4]\n[-9]\n");

    std::fs::write(&samples, "[1, 2]\n").unwrap();
    sim(&["predict", m, "--input", samples.to_str().unwrap()])
        .assert_one_line_error("line 1: input serving_default_dense_input:0 int8 [1, 1]: 2 values; the input takes 1");
    std::fs::write(&samples, "[200]\n").unwrap();
    sim(&["predict", m, "--input", samples.to_str().unwrap()]).assert_one_line_error("200 is outside int8");
    sim(&["predict", m]).assert_one_line_error("needs --input FILE");

    let float = fixture("hello_world_float.tflite");
    std::fs::write(&samples, "[0.0]\n[1.5707964]\n").unwrap();
    let run = sim(&["predict", float.to_str().unwrap(), "--input", samples.to_str().unwrap()]);
    assert!(run.ok, "{}", run.stderr);
    let lines: Vec<f32> = run.stdout.lines().map(|l| l.trim_matches(['[', ']']).parse().unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].abs() < 0.1 && (lines[1] - 1.0).abs() < 0.1, "{lines:?}");

    // A corrupted file: one line, no panic.
    let bad = dir.join("bad.tflite");
    let mut bytes = read("hello_world_int8.tflite");
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&bad, &bytes).unwrap();
    sim(&["summary", bad.to_str().unwrap()]).assert_one_line_error("not a valid TFLite flatbuffer");
    std::fs::write(&bad, with_operator_code(2)).unwrap();
    sim(&["summary", bad.to_str().unwrap()]).assert_one_line_error("operator 0 is CONCATENATION; tinytrain supports");
    sim(&["summary", dir.join("missing.tflite").to_str().unwrap()]).assert_one_line_error("cannot read");
    // Registry models still need their weights.
    sim(&["predict", "xor"]).assert_one_line_error("--weights");
}
