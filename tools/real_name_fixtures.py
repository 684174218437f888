#!/usr/bin/env python3
"""Name fixtures for the import tests: weights under the tensor names real PyTorch and Keras 3 give.

    pip install torch safetensors numpy keras        # Keras 3, run on its torch backend
    python3 tools/real_name_fixtures.py [--out tests/fixtures/names]

For digits-mlp (Linear 64->32, ReLU, Linear 32->10 on the flattened 8x8 digits, pixels / 16)
and mnist-cnn-tiny (Conv2d(1,6,4,stride 2) ReLU Conv2d(6,24,3,stride 2) ReLU MaxPool2d(2)
Flatten Dropout(0.2) Linear(216,10), no padding, pixels / 255), the same architectures and
input scaling as tools/pytorch_reference.py, this writes into the output directory:

- NAME-sequential.safetensors    a real nn.Sequential state_dict: `0.weight`, `0.bias`,
                                 `2.weight`, ... (the indices nn.Sequential gives, with the gaps
                                 of the ReLU / pool / flatten / dropout modules)
- NAME-dataparallel.safetensors  the same trained nn.Sequential wrapped in nn.DataParallel:
                                 `module.0.weight`, ...
- digits-mlp-custom.safetensors  an nn.Module with attribute names that are not tinytrain's
                                 defaults: `hidden.*`, `out.*` (trained separately, seed 1)
- NAME-keras.safetensors         a real Keras 3 Sequential, channels-last, built twice in one
                                 process so that its automatic layer names carry suffixes; keys
                                 `<layer.name>/<variable.name>` (`dense_2/kernel`, ...)
- NAME-keras-path.safetensors    the same Keras weights under Keras 3's own `variable.path`,
                                 which includes the model's name (`sequential_1/dense_2/kernel`);
                                 same weights as NAME-keras, so it shares NAME-keras-logits
- <file>-logits.safetensors      for each file above but the -keras-path ones: `inputs`, the first
                                 100 test images as tinytrain reads them (f32 [100, 64] for the
                                 MLP, [100, 1, 28, 28] channels-first for the CNN), and `logits`
                                 f32 [100, 10], computed by the framework that made the file
                                 (PyTorch in eval mode; Keras `model(x, training=False)` on the
                                 channels-last [100, 28, 28, 1] images)

The PyTorch models are trained briefly (Adam, the registry's learning rate, batch 32: digits
10 epochs, CNN 2 epochs) with seed 0 and one CPU thread. The Keras models get the trained
nn.Sequential weights through `layer.set_weights` (dense kernels transposed to [in, out], conv
kernels to [kh, kw, in, out], and the rows of the CNN's dense kernel reordered from PyTorch's
C,H,W flattening to Keras's H,W,C one); Keras then computes its own logits, and the script
prints their largest difference from PyTorch's. A README.md listing every file's tensors and
the tool versions is written next to them.
"""
import argparse
import gzip
import os
import struct

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

assert keras.backend.backend() == "torch", "run with KERAS_BACKEND=torch"

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "data")
SAMPLES = 100


def read_idx_gz(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    assert zero == 0 and dtype == 0x08
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(shape)


def load(prefix_train, prefix_test, scale, shape=(-1,)):
    """As tools/pytorch_reference.py: f32 images [samples, *shape], pixels / scale, and labels."""

    def images(p):
        x = read_idx_gz(p + "-images-idx3-ubyte.gz")
        return torch.tensor(x.reshape(len(x), *shape).astype(np.float32) / scale)

    def labels(p):
        return torch.tensor(read_idx_gz(p + "-labels-idx1-ubyte.gz").astype(np.int64))

    return images(prefix_train), labels(prefix_train), images(prefix_test), labels(prefix_test)


# ---- PyTorch models ----------------------------------------------------------------------

def digits_sequential():
    # keys 0.*, 2.*
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def cnn_tiny_sequential():
    # keys 0.*, 2.*, 7.*: ReLU 1, ReLU 3, MaxPool2d 4, Flatten 5, Dropout 6 have no parameters
    m = nn.Sequential(
        nn.Conv2d(1, 6, 4, stride=2), nn.ReLU(),
        nn.Conv2d(6, 24, 3, stride=2), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.2),
        nn.Linear(216, 10),
    )
    # He uniform, zero biases, as tools/pytorch_reference.py (the registry's init for the model)
    for layer in (m[0], m[2], m[7]):
        nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
    return m


class DigitsCustom(nn.Module):
    """digits-mlp with attribute names that are not tinytrain's `fc1`, `fc2`."""

    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(64, 32)
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        return self.out(F.relu(self.hidden(x.flatten(1))))


def train(model, xtr, ytr, lr, epochs, seed, batch=32):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(xtr), generator=g)
        total = 0.0
        for i in range(0, len(xtr), batch):
            idx = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print("    epoch %2d loss %.4f" % (epoch, total / len(xtr)), flush=True)
    model.eval()
    return model


def torch_logits(model, x):
    model.eval()
    with torch.no_grad():
        return model(x).detach().float().contiguous()


# ---- Keras models ------------------------------------------------------------------------

def keras_digits():
    return keras.Sequential([
        keras.Input(shape=(64,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10),
    ])


def keras_cnn_tiny():
    # 'valid' padding and the same strides give the PyTorch model's 13x13 and 6x6 maps exactly.
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(6, 4, strides=2, padding="valid", activation="relu"),
        keras.layers.Conv2D(24, 3, strides=2, padding="valid", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10),
    ])


def build_twice(make):
    """Builds the model twice in one Keras session; the second one, whose automatic layer names
    have numeric suffixes (dense_2, conv2d_2, ...), is the one kept."""
    keras.backend.clear_session()  # name counters start afresh: independent of what ran before
    make()
    return make()


def to_keras_tensors(torch_module, flattened_from=None):
    """Weights of a trained nn.Sequential, in order, as Keras wants them for set_weights."""
    out = []
    for layer in torch_module:
        if isinstance(layer, nn.Conv2d):
            w = layer.weight.detach().numpy()               # [CO, CI, KH, KW]
            out.append([w.transpose(2, 3, 1, 0).copy(), layer.bias.detach().numpy().copy()])
        elif isinstance(layer, nn.Linear):
            w = layer.weight.detach().numpy()               # [O, I]
            if flattened_from is not None and layer.in_features == int(np.prod(flattened_from)):
                c, h, wd = flattened_from                    # PyTorch columns in C,H,W order
                w = w.reshape(-1, c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
            out.append([w.T.copy(), layer.bias.detach().numpy().copy()])
    return out


def keras_tensors(model, key):
    """{key(layer, variable): f32 array} for every variable of every layer."""
    tensors = {}
    for layer in model.layers:
        for v in layer.weights:
            tensors[key(layer, v)] = torch.from_numpy(
                np.ascontiguousarray(keras.ops.convert_to_numpy(v.value), dtype=np.float32))
    return tensors


# ---- writing -----------------------------------------------------------------------------

WRITTEN = []   # (file name, what made it)


def write(out, name, tensors, made_by):
    path = os.path.join(out, name)
    tensors = {k: v.detach().float().contiguous() for k, v in tensors.items()}
    save_file(tensors, path, metadata={"made_by": made_by})
    WRITTEN.append((name, made_by))


def write_logits(out, name, inputs, logits, labels, made_by):
    correct = int((logits.argmax(1) == labels).sum().item())
    meta = {"made_by": made_by, "samples": str(len(labels)), "correct": str(correct)}
    save_file({"inputs": inputs.contiguous(), "logits": logits.contiguous()},
              os.path.join(out, name), metadata=meta)
    WRITTEN.append((name, made_by))
    print("    %s: %d/%d correct" % (name, correct, len(labels)), flush=True)


def digits(out):
    print("== digits-mlp", flush=True)
    xtr, ytr, xte, yte = load("digits-train", "digits-test", 16.0)
    x, y = xte[:SAMPLES].contiguous(), yte[:SAMPLES]

    torch.manual_seed(0)
    seq = train(digits_sequential(), xtr, ytr, 1e-3, 10, seed=0)
    write(out, "digits-mlp-sequential.safetensors", seq.state_dict(), "torch nn.Sequential")
    write_logits(out, "digits-mlp-sequential-logits.safetensors", x, torch_logits(seq, x), y,
                 "torch nn.Sequential")

    dp = nn.DataParallel(seq)
    write(out, "digits-mlp-dataparallel.safetensors", dp.state_dict(), "torch nn.DataParallel")
    write_logits(out, "digits-mlp-dataparallel-logits.safetensors", x, torch_logits(dp, x), y,
                 "torch nn.DataParallel")

    torch.manual_seed(1)
    custom = train(DigitsCustom(), xtr, ytr, 1e-3, 10, seed=1)
    write(out, "digits-mlp-custom.safetensors", custom.state_dict(), "torch nn.Module hidden/out")
    write_logits(out, "digits-mlp-custom-logits.safetensors", x, torch_logits(custom, x), y,
                 "torch nn.Module hidden/out")

    km = build_twice(keras_digits)
    for layer, w in zip([l for l in km.layers if l.weights], to_keras_tensors(seq)):
        layer.set_weights(w)
    return keras_part(out, "digits-mlp", km, x, x, y, torch_logits(seq, x))


def cnn_tiny(out):
    print("== mnist-cnn-tiny", flush=True)
    xtr, ytr, xte, yte = load("mnist8k-train", "mnist2k-test", 255.0, (1, 28, 28))
    x, y = xte[:SAMPLES].contiguous(), yte[:SAMPLES]

    torch.manual_seed(0)
    seq = train(cnn_tiny_sequential(), xtr, ytr, 2e-3, 2, seed=0)
    write(out, "mnist-cnn-tiny-sequential.safetensors", seq.state_dict(), "torch nn.Sequential")
    write_logits(out, "mnist-cnn-tiny-sequential-logits.safetensors", x, torch_logits(seq, x), y,
                 "torch nn.Sequential")

    dp = nn.DataParallel(seq)
    write(out, "mnist-cnn-tiny-dataparallel.safetensors", dp.state_dict(), "torch nn.DataParallel")
    write_logits(out, "mnist-cnn-tiny-dataparallel-logits.safetensors", x, torch_logits(dp, x), y,
                 "torch nn.DataParallel")

    km = build_twice(keras_cnn_tiny)
    for layer, w in zip([l for l in km.layers if l.weights],
                        to_keras_tensors(seq, flattened_from=(24, 3, 3))):
        layer.set_weights(w)
    x_hwc = x.permute(0, 2, 3, 1).contiguous()  # Keras is channels-last
    return keras_part(out, "mnist-cnn-tiny", km, x_hwc, x, y, torch_logits(seq, x))


def keras_part(out, name, km, x_keras, x_tinytrain, y, reference):
    made_by = "keras %s Sequential (backend %s)" % (keras.__version__, keras.backend.backend())
    write(out, name + "-keras.safetensors",
          keras_tensors(km, lambda layer, v: "%s/%s" % (layer.name, v.name)), made_by)
    write(out, name + "-keras-path.safetensors", keras_tensors(km, lambda layer, v: v.path),
          made_by + ", keys variable.path")
    logits = torch.from_numpy(np.asarray(
        keras.ops.convert_to_numpy(km(x_keras.numpy(), training=False)), dtype=np.float32))
    write_logits(out, name + "-keras-logits.safetensors", x_tinytrain, logits, y, made_by)
    diff = float((logits - reference).abs().max())
    print("    max |keras - torch| logit difference: %.3g" % diff, flush=True)
    naming = ["%s %s -> %s/%s, path %s" % (type(l).__name__, list(v.shape), l.name, v.name, v.path)
              for l in km.layers for v in l.weights]
    return name, diff, naming


def readme(out, results):
    lines = [
        "# Name fixtures",
        "",
        "Weights of `digits-mlp` and `mnist-cnn-tiny` under the tensor names real PyTorch and",
        "Keras 3 give, with the logits those frameworks compute, for the import tests. Made by",
        "`tools/real_name_fixtures.py` (its docstring says how each file is made):",
        "",
        "    pip install torch safetensors numpy keras",
        "    python3 tools/real_name_fixtures.py",
        "",
        "(Keras 3 runs on its torch backend: the script sets `KERAS_BACKEND=torch`.) Seeds are",
        "fixed and PyTorch runs on one CPU thread.",
        "",
        "Versions: torch %s, keras %s (backend %s), safetensors %s, numpy %s." % (
            torch.__version__, keras.__version__, keras.backend.backend(),
            safetensors.__version__, np.__version__),
        "",
        "Each `*-logits.safetensors` holds `inputs` (the first %d test images as tinytrain reads" % SAMPLES,
        "them: f32 `[100, 64]` for digits-mlp, pixels / 16; f32 `[100, 1, 28, 28]` channels-first",
        "for mnist-cnn-tiny, pixels / 255) and `logits` f32 `[100, 10]`, computed by the framework",
        "that made the weights (PyTorch in eval mode; Keras `model(x, training=False)` on the",
        "channels-last images). `*-keras-path.safetensors` holds the same weights as `*-keras`",
        "and shares its logits file. The metadata of a logits file has `correct` and `samples`.",
        "",
        "## Keras 3 naming",
        "",
        "Each Keras model is built twice in one session, so the kept one has suffixed automatic",
        "names. `layer.name` + `/` + `variable.name` gives the `-keras` keys; Keras 3's",
        "`variable.path` prefixes the model's own name, giving the `-keras-path` keys:",
        "",
    ]
    for name, diff, naming in results:
        lines.append("- %s (max |keras - torch| logit difference %.3g):" % (name, diff))
        lines += ["  - `%s`" % n for n in naming]
    lines += [
        "",
        "## Notes",
        "",
        "- The Keras CNN matches the PyTorch one layer for layer: no padding in PyTorch is",
        "  Keras's `padding=\"valid\"` (28 -> 13 -> 6 -> pool 3), same kernels and strides, then",
        "  MaxPooling2D(2), Flatten, Dropout(0.2), Dense(10). Its Flatten is channels-last, so",
        "  the rows of `dense_1/kernel` are in H,W,C order (row `(h * 3 + w) * 24 + c` is",
        "  PyTorch's column `c * 9 + h * 3 + w`).",
        "- safetensors keeps no insertion order: the header and the data are sorted by name, so",
        "  a match by position has only the names to order by (`0` < `2` < `7`; `hidden` <",
        "  `out`; `conv2d_2` < `conv2d_3` < `dense_1` hold both as text and as layer order; a",
        "  Sequential with ten or more modules would not sort as text, `10.weight` < `2.weight`).",
        "- The `*-sequential` and `*-dataparallel` files hold the same trained weights (the",
        "  DataParallel wraps that nn.Sequential); `digits-mlp-custom` is a separate run (seed 1).",
    ]
    lines += ["", "## Files", ""]
    for fname, made_by in WRITTEN:
        lines.append("### `%s`" % fname)
        lines.append("")
        lines.append("Made by %s." % made_by)
        lines.append("")
        lines.append("| tensor | shape |")
        lines.append("|---|---|")
        with safe_open(os.path.join(out, fname), framework="pt") as f:
            for k in f.keys():
                lines.append("| `%s` | `%s` |" % (k, list(f.get_slice(k).get_shape())))
        lines.append("")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines))


def verify(out):
    print("== read back", flush=True)
    for fname, _ in WRITTEN:
        with safe_open(os.path.join(out, fname), framework="pt") as f:
            keys = list(f.keys())
            print("  %s" % fname)
            for k in keys:
                t = f.get_tensor(k)
                assert t.dtype == torch.float32 and torch.isfinite(t).all(), (fname, k)
                print("    %-28s %s" % (k, list(t.shape)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "names"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    keras.utils.set_random_seed(0)
    results = [digits(args.out), cnn_tiny(args.out)]
    verify(args.out)
    readme(args.out, results)


if __name__ == "__main__":
    main()
