#!/usr/bin/env python3
"""Reference outputs of TensorFlow Lite's reference kernels, for tinytrain's .tflite support.

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install -r tools/requirements-tflite.txt
    /tmp/tfvenv/bin/python tools/tflite_reference.py [--out tests/fixtures/tflite]

The output directory holds the TensorFlow Lite Micro models (hello_world_int8,
hello_world_float, micro_speech_quantized, person_detect) and the two person_detect test
images, copied there by hand. This script

1. builds three small Keras 3 models with seeded random weights and converts them with
   `TFLiteConverter.from_keras_model` (full int8, seeded representative dataset), writing
   own_cnn.tflite, own_mlp_add.tflite and own_float_io.tflite;
2. runs every model on inputs drawn from SplitMix64 (below) with
   `tf.lite.Interpreter(..., experimental_op_resolver_type=OpResolverType.BUILTIN_REF)`,
   TensorFlow Lite's reference kernels, and writes `<model>.ref.json`;
3. checks itself: the SplitMix64 test vector, a second run in a fresh interpreter gives the
   same outputs, the person image scores "person" and the other one "no person", and every
   operator tinytrain supports appears in an own model; then prints a summary.

Inputs. One SplitMix64 stream per model, started at the model's seed; one u64 per input
element, elements in row-major order, inputs one after another:

    state = state + 0x9E3779B97F4A7C15              (mod 2^64)
    z = state
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9        (mod 2^64)
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB        (mod 2^64)
    z = z ^ (z >> 31)

(seed 0 gives 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F). An int8 element
is `(z >> 56) as u8 as i8`, the top byte read as signed. A float element is
`((z >> 40) as f32 / 16777216.0) * core::f32::consts::TAU` for hello_world_float (one
rounding, in the multiplication; values in [0, 2pi)) and `(z >> 40) as f32 / 8388608.0 - 1.0`
for own_float_io (exact; values in [-1, 1)). `inputs_crc32` is zlib's CRC-32 of all inputs'
bytes in that order (int8 as bytes, f32 little-endian).

person_detect.tflite is refused by the Python interpreter ("quantized_dimension must be in
range [0, 1). Was 3"): 14 rank-1 bias tensors carry quantized_dimension 3. The reference run
uses a temporary copy with those set to 0 (values unchanged); the committed model is the
original. Its two test images are 8-bit grayscale BMPs with rows stored bottom-up; they are
read top row first (as PIL's `Image.tobytes` gives them) and fed two ways: each byte read as
i8, which is what TensorFlow Lite Micro's person_detection_test does (it copies the bytes
unchanged into the int8 input), and `pixel - 128`. The two files differ: person.bmp holds the
int8 image's bytes (viewed as uint8 it shows wrap-around bands), no_person.bmp holds ordinary
uint8 pixels. Fed TFLM's way, each scores its own class, which the checks assert.
"""
import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.lite.python import schema_py_generated as schema  # noqa: E402
from tensorflow.lite.tools import flatbuffer_utils  # noqa: E402

GAMMA = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
MASK64 = (1 << 64) - 1

# The operators tinytrain's importer supports; each must appear in an own model.
REQUIRED_OPS = [
    "FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D",
    "RESHAPE", "SOFTMAX", "LOGISTIC", "TANH", "QUANTIZE", "DEQUANTIZE", "ADD",
]
REQUIRED_FUSED = ["RELU", "RELU6"]

OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
ACT_NAMES = {v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")}
PADDING_NAMES = {v: k for k, v in vars(schema.Padding).items() if not k.startswith("_")}
TYPE_NAMES = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}


def splitmix64_scalar(seed, n):
    """The generator as written above, one value at a time (checks the vectorised one)."""
    state, out = seed & MASK64, []
    for _ in range(n):
        state = (state + GAMMA) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * MIX1) & MASK64
        z = ((z ^ (z >> 27)) * MIX2) & MASK64
        out.append(z ^ (z >> 31))
    return out


def splitmix64(seed, n, start=0):
    """Values start..start+n of the stream from `seed`, as uint64 (state_i = seed + i * GAMMA)."""
    with np.errstate(over="ignore"):
        steps = np.arange(start + 1, start + n + 1, dtype=np.uint64)
        z = np.uint64(seed) + steps * np.uint64(GAMMA)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
        return z ^ (z >> np.uint64(31))


def int8_inputs(seed, count, shape):
    z = splitmix64(seed, count * int(np.prod(shape)))
    return (z >> np.uint64(56)).astype(np.uint8).view(np.int8).reshape((count, *shape))


def float_inputs_tau(seed, count, shape):
    z = splitmix64(seed, count * int(np.prod(shape)))
    unit = (z >> np.uint64(40)).astype(np.float32) / np.float32(16777216.0)
    return (unit * np.float32(2.0 * np.pi)).reshape((count, *shape))


def float_inputs_signed(seed, count, shape):
    z = splitmix64(seed, count * int(np.prod(shape)))
    x = (z >> np.uint64(40)).astype(np.float32) / np.float32(8388608.0) - np.float32(1.0)
    return x.reshape((count, *shape))


FLOAT_MAPPINGS = {
    "tau": (
        float_inputs_tau,
        "((z >> 40) as f32 / 16777216.0) * core::f32::consts::TAU, in [0, 2pi)",
    ),
    "signed": (float_inputs_signed, "(z >> 40) as f32 / 8388608.0 - 1.0, in [-1, 1), exact"),
}
INT8_MAPPING = "(z >> 56) as u8 as i8"


# ---------------------------------------------------------------------------------------
# Models: the TensorFlow Lite Micro ones (copied in by hand) and our own.

# name -> (seed, count, float mapping or None)
TFLM_MODELS = {
    "hello_world_int8": (1, 256, None),
    "hello_world_float": (2, 256, "tau"),
    "micro_speech_quantized": (3, 100, None),
    "person_detect": (4, 100, None),
}
OWN_MODELS = {
    "own_cnn": (5, 100, None),
    "own_mlp_add": (6, 100, None),
    "own_float_io": (7, 100, "signed"),
}
SMALL = {"hello_world_int8", "hello_world_float", "own_cnn", "own_mlp_add", "own_float_io"}
IMAGES = ["person.bmp", "no_person.bmp"]
PERSON_INDEX, NO_PERSON_INDEX = 1, 0


def build_own_cnn():
    x = keras.Input((8, 8, 2), name="image")
    y = keras.layers.Conv2D(4, 3, padding="same", activation="relu6")(x)
    y = keras.layers.DepthwiseConv2D(3, padding="valid", depth_multiplier=2, activation="relu")(y)
    y = keras.layers.MaxPooling2D(2)(y)
    y = keras.layers.AveragePooling2D(2, strides=1, padding="same")(y)
    y = keras.layers.Flatten()(y)
    y = keras.layers.Dense(8, activation="tanh")(y)
    y = keras.layers.Dense(3, activation="softmax")(y)
    return keras.Model(x, y, name="own_cnn")


def build_own_mlp_add():
    x = keras.Input((16,), name="features")
    h = keras.layers.Dense(12, activation="relu")(x)
    a = keras.layers.Dense(8, activation="sigmoid")(h)
    b = keras.layers.Dense(8, activation="sigmoid")(h)
    y = keras.layers.Add()([a, b])
    y = keras.layers.Dense(4)(y)
    return keras.Model(x, y, name="own_mlp_add")


def build_own_float_io():
    x = keras.Input((8,), name="features")
    y = keras.layers.Dense(8, activation="relu")(x)
    y = keras.layers.Dense(4)(y)
    return keras.Model(x, y, name="own_float_io")


OWN_BUILDERS = {
    "own_cnn": (build_own_cnn, True),
    "own_mlp_add": (build_own_mlp_add, True),
    "own_float_io": (build_own_float_io, False),  # float32 in and out: QUANTIZE/DEQUANTIZE
}


def seed_weights(model, seed):
    """Uniform weights with variance 1/fan_in (depthwise: kh * kw); biases in [-0.25, 0.25)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        new = []
        for w in weights:
            if w.ndim == 1:
                new.append(rng.uniform(-0.25, 0.25, w.shape).astype(np.float32))
                continue
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                fan_in = w.shape[0] * w.shape[1]
            else:
                fan_in = int(np.prod(w.shape[:-1]))
            limit = np.sqrt(3.0 / fan_in)
            new.append(rng.uniform(-limit, limit, w.shape).astype(np.float32))
        layer.set_weights(new)


def convert_own(name, seed, out_dir):
    build, int8_io = OWN_BUILDERS[name]
    keras.utils.set_random_seed(seed)
    model = build()
    seed_weights(model, seed)
    shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(seed + 1000)
    representative = rng.uniform(-1.0, 1.0, (100, 1, *shape)).astype(np.float32)

    def representative_dataset():
        for sample in representative:
            yield [sample]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()):  # the SavedModel export's listing
        flatbuffer = converter.convert()
    path = os.path.join(out_dir, f"{name}.tflite")
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path


# ---------------------------------------------------------------------------------------
# Reading models and images.


def model_ops(path):
    """[(name, builtin code, fused activation or None, padding or None)] in execution order."""
    model = flatbuffer_utils.read_model(path)
    assert len(model.subgraphs) == 1, f"{path}: {len(model.subgraphs)} subgraphs"
    ops = []
    for op in model.subgraphs[0].operators:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        options = op.builtinOptions
        act = getattr(options, "fusedActivationFunction", None)
        padding = getattr(options, "padding", None)
        ops.append((
            OP_NAMES[builtin],
            builtin,
            None if act in (None, schema.ActivationFunctionType.NONE) else ACT_NAMES[act],
            None if padding is None else PADDING_NAMES[padding],
        ))
    return ops


def patch_quantized_dimension(path, tmp_dir):
    """A copy whose rank-1 tensors with quantized_dimension >= 1 say 0; returns (path, count)."""
    model = flatbuffer_utils.read_model(path)
    patched = 0
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            q = tensor.quantization
            if q is not None and q.quantizedDimension and len(tensor.shape) <= q.quantizedDimension:
                assert len(tensor.shape) == 1, tensor.name
                q.quantizedDimension = 0
                patched += 1
    out = os.path.join(tmp_dir, os.path.basename(path))
    flatbuffer_utils.write_model(model, out)
    # Values unchanged: every buffer of the copy equals the original's.
    a, b = flatbuffer_utils.read_model(path), flatbuffer_utils.read_model(out)
    assert len(a.buffers) == len(b.buffers)
    for x, y in zip(a.buffers, b.buffers):
        assert (x.data is None and y.data is None) or np.array_equal(x.data, y.data)
    return out, patched


def read_bmp_gray(path):
    """An uncompressed 8-bit BMP with a grayscale palette, as uint8 [rows, cols], top row first."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:2] == b"BM", f"{path}: not a BMP"
    offset = int.from_bytes(data[10:14], "little")
    header_size = int.from_bytes(data[14:18], "little")
    width = int.from_bytes(data[18:22], "little", signed=True)
    height = int.from_bytes(data[22:26], "little", signed=True)
    bpp = int.from_bytes(data[28:30], "little")
    compression = int.from_bytes(data[30:34], "little")
    assert bpp == 8 and compression == 0, f"{path}: {bpp} bpp, compression {compression}"
    palette = np.frombuffer(data[14 + header_size:offset], np.uint8).reshape(-1, 4)
    assert all((palette[i, :3] == i).all() for i in range(len(palette))), "palette not gray"
    stride = (width + 3) // 4 * 4
    rows = np.frombuffer(data[offset:offset + stride * abs(height)], np.uint8)
    image = rows.reshape(abs(height), stride)[:, :width]
    # A positive height means the rows are stored bottom-up.
    return image[::-1] if height > 0 else image


# ---------------------------------------------------------------------------------------
# Running.


class Runner:
    """One model in an interpreter with the reference kernels (BUILTIN_REF)."""

    def __init__(self, path, resolver=tf.lite.experimental.OpResolverType.BUILTIN_REF):
        self.interpreter = tf.lite.Interpreter(
            model_path=path, experimental_op_resolver_type=resolver)
        self.interpreter.allocate_tensors()
        (self.input,) = self.interpreter.get_input_details()
        (self.output,) = self.interpreter.get_output_details()

    def run(self, xs):
        outs = []
        for x in xs:
            self.interpreter.set_tensor(self.input["index"], x.reshape(self.input["shape"]))
            self.interpreter.invoke()
            outs.append(self.interpreter.get_tensor(self.output["index"]).reshape(-1).copy())
        return np.stack(outs)


def tensor_info(detail):
    scale, zero_point = detail["quantization"]
    return {
        "shape": [int(d) for d in detail["shape"]],
        "dtype": np.dtype(detail["dtype"]).name,
        "scale": float(scale),
        "zero_point": int(zero_point),
    }


def as_json_values(array):
    if array.dtype == np.float32:
        # float(f32) is exact; its repr reads back (as f64, then as f32) to the same value.
        return [float(v) for v in array.reshape(-1)]
    return [int(v) for v in array.reshape(-1)]


def write_fixture(path, fields):
    """JSON with one sample per line in `inputs`, `outputs` and `images`."""
    lines = ["{"]
    items = list(fields.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i + 1 < len(items) else ""
        if key in ("inputs", "outputs", "images"):
            rows = [json.dumps(v) for v in value]
            body = ",\n    ".join(rows)
            lines.append(f'  "{key}": [\n    {body}\n  ]{comma}')
        else:
            lines.append(f'  "{key}": {json.dumps(value)}{comma}')
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def reference(name, path, run_path, seed, count, float_mapping, out_dir):
    runner = Runner(run_path)
    shape = tuple(int(d) for d in runner.input["shape"][1:])
    if float_mapping is None:
        assert runner.input["dtype"] == np.int8, f"{name}: input {runner.input['dtype']}"
        xs, mapping = int8_inputs(seed, count, shape), INT8_MAPPING
    else:
        assert runner.input["dtype"] == np.float32, f"{name}: input {runner.input['dtype']}"
        generate, mapping = FLOAT_MAPPINGS[float_mapping]
        xs = generate(seed, count, shape)
    input_bytes = xs.astype(xs.dtype.newbyteorder("<")).tobytes()
    outputs = runner.run(xs)

    # A fresh interpreter gives the same outputs.
    again = Runner(run_path).run(xs)
    assert np.array_equal(outputs, again), f"{name}: a second run differs"
    # How far TFLite's default (optimised) kernels are from the reference ones: information only.
    optimised = Runner(run_path, tf.lite.experimental.OpResolverType.BUILTIN).run(xs)

    fields = {
        "model": os.path.basename(path),
        "generator": "tools/tflite_reference.py",
        "tensorflow": tf.__version__,
        "resolver": "BUILTIN_REF",
        "ops": [op for op, _, _, _ in model_ops(path)],
        "seed": seed,
        "count": count,
        "prng": "splitmix64",
        "input_mapping": mapping,
        "input": tensor_info(runner.input),
        "output": tensor_info(runner.output),
        "inputs_crc32": zlib.crc32(input_bytes),
    }
    images = None
    if name == "person_detect":
        images = []
        for file in IMAGES:
            pixels = read_bmp_gray(os.path.join(out_dir, file))
            assert pixels.shape == shape[:2], f"{file}: {pixels.shape}"
            for mapping_name, x in (
                ("top-down, byte as i8", pixels.view(np.int8)),
                ("top-down, pixel - 128", (pixels.astype(np.int16) - 128).astype(np.int8)),
            ):
                x = x.reshape(1, *shape)
                out = runner.run(x)[0]
                images.append({"file": file, "input_mapping": mapping_name,
                               "input_crc32": zlib.crc32(x.tobytes()),
                               "output": as_json_values(out)})
        fields["images"] = images
    if name in SMALL:
        fields["inputs"] = [as_json_values(x) for x in xs]
    fields["outputs"] = [as_json_values(o) for o in outputs]
    fixture = os.path.join(out_dir, f"{name}.ref.json")
    write_fixture(fixture, fields)

    if outputs.dtype == np.float32:
        opt_diff = float(np.max(np.abs(outputs - optimised)))
    else:
        opt_diff = int(np.max(np.abs(outputs.astype(np.int32) - optimised.astype(np.int32))))
    return {
        "fixture": fixture,
        "fields": fields,
        "images": images,
        "optimised_max_diff": opt_diff,
        "optimised_samples_differing": int(np.sum(np.any(outputs != optimised, axis=1))),
        "distinct_outputs": len({tuple(o) for o in outputs.tolist()}),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tests/fixtures/tflite")
    args = parser.parse_args()
    out_dir = args.out

    assert splitmix64_scalar(0, 3) == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4,
                                       0x06C45D188009454F], "SplitMix64 test vector"
    assert splitmix64(12345, 1000).tolist() == splitmix64_scalar(12345, 1000)
    assert splitmix64(7, 5, start=3).tolist() == splitmix64_scalar(7, 8)[3:]

    for name, (seed, _, _) in OWN_MODELS.items():
        convert_own(name, seed, out_dir)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (seed, count, mapping) in {**TFLM_MODELS, **OWN_MODELS}.items():
            path = os.path.join(out_dir, f"{name}.tflite")
            run_path = path
            if name == "person_detect":
                run_path, patched = patch_quantized_dimension(path, tmp)
                assert patched == 14, f"person_detect: patched {patched} tensors, expected 14"
            results[name] = reference(name, path, run_path, seed, count, mapping, out_dir)

    # As TensorFlow Lite Micro's person_detection_test feeds them (the BMP's bytes, top row
    # first, copied unchanged into the int8 input), the person image scores "person" and the
    # other one "no person".
    images = {image["file"]: image["output"] for image in results["person_detect"]["images"]
              if image["input_mapping"] == "top-down, byte as i8"}
    person, no_person = images["person.bmp"], images["no_person.bmp"]
    assert person[PERSON_INDEX] > person[NO_PERSON_INDEX], f"person.bmp scores {person}"
    assert no_person[NO_PERSON_INDEX] > no_person[PERSON_INDEX], f"no_person.bmp scores {no_person}"

    # Every supported operator and fused activation appears in an own model.
    own_ops = {n: model_ops(os.path.join(out_dir, f"{n}.tflite")) for n in OWN_MODELS}
    seen = {op for ops in own_ops.values() for op, _, _, _ in ops}
    fused = {act for ops in own_ops.values() for _, _, act, _ in ops if act}
    missing = [op for op in REQUIRED_OPS if op not in seen]
    missing += [act for act in REQUIRED_FUSED if act not in fused]
    assert not missing, f"own models lack {missing}"

    print(f"tensorflow {tf.__version__}, keras {keras.__version__}, numpy {np.__version__}")
    for name, r in results.items():
        f = r["fields"]
        path = os.path.join(out_dir, f"{name}.tflite")
        print(f"\n{name}.tflite ({os.path.getsize(path)} B) -> {name}.ref.json "
              f"({os.path.getsize(r['fixture'])} B)")
        ops = ", ".join(
            op + (f"({act})" if act else "") for op, _, act, _ in model_ops(path))
        print(f"  ops: {ops}")
        for side in ("input", "output"):
            t = f[side]
            print(f"  {side}: {t['dtype']} {t['shape']} scale {t['scale']!r} zero point "
                  f"{t['zero_point']}")
        print(f"  {f['count']} inputs (seed {f['seed']}, crc32 {f['inputs_crc32']:#010x}), "
              f"{r['distinct_outputs']} distinct outputs; default kernels differ on "
              f"{r['optimised_samples_differing']} samples, by at most {r['optimised_max_diff']}")
        for image in r["images"] or []:
            print(f"  {image['file']} ({image['input_mapping']}): {image['output']}")
    print("\nchecks: SplitMix64 test vector, identical second run, person/no_person scores, "
          "operator coverage: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
