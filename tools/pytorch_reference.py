#!/usr/bin/env python3
"""PyTorch reference models for the interchange tests (not needed to run them).

    pip install torch numpy safetensors
    python3 tools/pytorch_reference.py [--out tests/fixtures/pytorch] [MODEL ...]

Trains, in PyTorch on the data shipped in data/, four models of the registry (all of them,
or the ones named) with their baselines' settings (seed 0, one CPU thread: a rerun gives the
same tensors, bit for bit; only the order of the metadata in a file's header may change):

- digits-mlp: Linear(64,32) ReLU Linear(32,10), pixels / 16, Adam lr 1e-3, batch 32, 30 epochs
- mnist-mlp:  Linear(784,128) ReLU Linear(128,10), pixels / 255, SGD lr 0.05 momentum 0.9,
              batch 32, 10 epochs
- mnist-cnn-tiny: Conv2d(1,6,4,stride 2) ReLU Conv2d(6,24,3,stride 2) ReLU MaxPool2d(2)
              Flatten Dropout(0.2) Linear(216,10), CHW input [1,28,28], pixels / 255, He
              uniform weights and zero biases, Adam lr 2e-3, batch 32, 20 epochs (the
              registry's defaults for the model)
- mnist-cnn:  the Keras mnist_cnn example: Conv2d(1,32,3) ReLU Conv2d(32,64,3) ReLU
              MaxPool2d(2) Dropout(0.25) Flatten Linear(9216,128) ReLU Dropout(0.5)
              Linear(128,10), CHW input [1,28,28], pixels / 255, PyTorch's default init,
              Adadelta lr 1.0 rho 0.95 eps 1e-7, batch 128, ONE epoch only (the baseline
              trains 12; one keeps the whole script under a minute on one thread and is
              enough to check the interchange: the weights are trained, not random; the
              modules are created in the baseline's order, so this epoch is the baseline's
              first: loss 0.9186, test accuracy 0.8990)
- waves-cnn1d: Conv1d(1,8,5,padding 2) ReLU MaxPool1d(2) Conv1d(8,16,5,padding 2) ReLU
              MaxPool1d(2) Conv1d(16,16,3,padding 1) ReLU mean over time Linear(16,10), input
              [1,64] = bytes / 255 (the synthesised waves set), Adam lr 3e-3, batch 32, 80
              epochs (baselines/waves.py's settings)

and writes for each model NAME, into the output directory:

- NAME.safetensors          the state_dict: fc1.weight [out, in], fc1.bias, fc2.weight, ...
                            for the MLPs; conv1.weight [out, in, kh, kw], conv1.bias, conv2.*,
                            fc1.* (and fc2.* for mnist-cnn) for the CNNs
- NAME-logits.safetensors   "logits" [test samples, 10] f32: PyTorch's logits on the test set
                            (eval mode, batches of 500); metadata "correct", "samples" and
                            "accuracy" of those logits

`tinytrain-sim import NAME NAME.safetensors --to NAME.ttw` reads the model; the tests in
host-sim/tests/interop.rs check that tinytrain's logits match these within 1e-5 (the CNNs'
9216- and 216-input dense layers included) and that the accuracy is the same.
"""
import argparse
import gzip
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DATA = os.path.join(ROOT, "data")


def read_idx_gz(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    assert zero == 0 and dtype == 0x08
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(shape)


def load(prefix_train, prefix_test, scale, shape=(-1,)):
    """Train and test images as float32 tensors [samples, *shape], pixels / scale, and labels."""

    def images(p):
        x = read_idx_gz(p + "-images-idx3-ubyte.gz")
        return torch.tensor(x.reshape(len(x), *shape).astype(np.float32) / scale)

    def labels(p):
        return torch.tensor(read_idx_gz(p + "-labels-idx1-ubyte.gz").astype(np.int64))

    return images(prefix_train), labels(prefix_train), images(prefix_test), labels(prefix_test)


class Mlp(nn.Module):
    """fc1, ReLU, fc2: the state_dict names tinytrain-sim import expects."""

    def __init__(self, inputs, hidden, outputs):
        super().__init__()
        self.fc1 = nn.Linear(inputs, hidden)
        self.fc2 = nn.Linear(hidden, outputs)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


class MnistCnnTiny(nn.Module):
    """tinytrain's zoo::MnistCnnTiny; conv1, conv2, fc1 as tinytrain-sim import expects."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 4, stride=2)
        self.conv2 = nn.Conv2d(6, 24, 3, stride=2)
        self.fc1 = nn.Linear(216, 10)
        self.dropout = nn.Dropout(0.2)
        # He uniform (Keras he_uniform, tinytrain Init::HeUniform): U(+-sqrt(6 / fan_in)), bias 0.
        for m in (self.conv1, self.conv2, self.fc1):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        return self.fc1(self.dropout(x.flatten(1)))


class MnistCnn(nn.Module):
    """The Keras mnist_cnn, tinytrain's zoo::MnistCnn; conv1, conv2, fc1, fc2 as tinytrain-sim
    import expects. The modules are created in the order of the baseline's nn.Sequential, so
    seed 0 gives the same initial weights."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        x = F.relu(self.fc1(self.dropout1(x).flatten(1)))
        return self.fc2(self.dropout2(x))


class WavesCnn1d(nn.Module):
    """tinytrain's zoo::WavesCnn1d; conv1, conv2, conv3, fc1 as tinytrain-sim import expects."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 8, 5, padding=2)
        self.conv2 = nn.Conv1d(8, 16, 5, padding=2)
        self.conv3 = nn.Conv1d(16, 16, 3, padding=1)
        self.fc1 = nn.Linear(16, 10)

    def forward(self, x):
        x = F.max_pool1d(F.relu(self.conv1(x)), 2)
        x = F.max_pool1d(F.relu(self.conv2(x)), 2)
        return self.fc1(F.relu(self.conv3(x)).mean(dim=2))


def train(model, opt, xtr, ytr, epochs, batch, seed):
    g = torch.Generator().manual_seed(seed)
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
        print("  epoch %2d loss %.4f" % (epoch, total / len(xtr)), flush=True)


def run(name, out, data, make_model, make_opt, epochs, batch, seed=0):
    print("==", name, flush=True)
    xtr, ytr, xte, yte = data
    torch.manual_seed(seed)
    model = make_model()
    train(model, make_opt(model), xtr, ytr, epochs, batch, seed)
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(xte[i:i + 500]) for i in range(0, len(xte), 500)]).contiguous()
    correct = int((logits.argmax(1) == yte).sum().item())
    accuracy = correct / len(yte)
    print("  test accuracy %.4f (%d/%d)" % (accuracy, correct, len(yte)), flush=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(out, name + ".safetensors"), metadata={"format": "pt"})
    meta = {"correct": str(correct), "samples": str(len(yte)), "accuracy": "%.4f" % accuracy,
            "torch": torch.__version__}
    save_file({"logits": logits}, os.path.join(out, name + "-logits.safetensors"), metadata=meta)


MODELS = {
    "digits-mlp": lambda: (load("digits-train", "digits-test", 16.0), lambda: Mlp(64, 32, 10),
                           lambda m: torch.optim.Adam(m.parameters(), lr=1e-3), 30, 32),
    "mnist-mlp": lambda: (load("mnist8k-train", "mnist2k-test", 255.0), lambda: Mlp(784, 128, 10),
                          lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9), 10, 32),
    "mnist-cnn-tiny": lambda: (load("mnist8k-train", "mnist2k-test", 255.0, (1, 28, 28)), MnistCnnTiny,
                               lambda m: torch.optim.Adam(m.parameters(), lr=2e-3), 20, 32),
    "mnist-cnn": lambda: (load("mnist8k-train", "mnist2k-test", 255.0, (1, 28, 28)), MnistCnn,
                          lambda m: torch.optim.Adadelta(m.parameters(), lr=1.0, rho=0.95, eps=1e-7), 1, 128),
    "waves-cnn1d": lambda: (load("waves-train", "waves-test", 255.0, (1, 64)), WavesCnn1d,
                            lambda m: torch.optim.Adam(m.parameters(), lr=3e-3), 80, 32),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "pytorch"))
    ap.add_argument("models", nargs="*", metavar="MODEL",
                    help="models to train (default: all): " + ", ".join(MODELS))
    args = ap.parse_args()
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        ap.error("unknown model %s; known: %s" % (", ".join(unknown), ", ".join(MODELS)))
    os.makedirs(args.out, exist_ok=True)
    for name in args.models or MODELS:
        run(name, args.out, *MODELS[name]())


if __name__ == "__main__":
    main()
