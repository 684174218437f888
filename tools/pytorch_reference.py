#!/usr/bin/env python3
"""PyTorch reference models for the interchange tests (not needed to run them).

    pip install torch numpy safetensors
    python3 tools/pytorch_reference.py [--out tests/fixtures/pytorch]

Trains, in PyTorch on the data shipped in data/, the two MLPs of the registry with their
baselines' settings (seed 0, one CPU thread: a rerun gives the same tensors, bit for bit;
only the order of the metadata in a file's header may change):

- digits-mlp: Linear(64,32) ReLU Linear(32,10), pixels / 16, Adam lr 1e-3, batch 32, 30 epochs
- mnist-mlp:  Linear(784,128) ReLU Linear(128,10), pixels / 255, SGD lr 0.05 momentum 0.9,
              batch 32, 10 epochs

and writes for each model NAME, into the output directory:

- NAME.safetensors          the state_dict: fc1.weight [out, in], fc1.bias, fc2.weight, fc2.bias
- NAME-logits.safetensors   "logits" [test samples, 10] f32: PyTorch's logits on the test set;
                            metadata "correct", "samples" and "accuracy" of those logits

`tinytrain-sim import NAME NAME.safetensors --to NAME.ttw` reads the model; the tests in
host-sim/tests/interop.rs check that tinytrain's logits match these within 1e-5 and that the
accuracy is the same.
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


def load(prefix_train, prefix_test, scale):
    def images(p):
        x = read_idx_gz(p + "-images-idx3-ubyte.gz")
        return torch.tensor(x.reshape(len(x), -1).astype(np.float32) / scale)

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


def run(name, out, data, sizes, make_opt, epochs, seed=0):
    print("==", name, flush=True)
    xtr, ytr, xte, yte = data
    torch.manual_seed(seed)
    model = Mlp(*sizes)
    train(model, make_opt(model), xtr, ytr, epochs, 32, seed)
    model.eval()
    with torch.no_grad():
        logits = model(xte).contiguous()
    correct = int((logits.argmax(1) == yte).sum().item())
    accuracy = correct / len(yte)
    print("  test accuracy %.4f (%d/%d)" % (accuracy, correct, len(yte)), flush=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(out, name + ".safetensors"), metadata={"format": "pt"})
    meta = {"correct": str(correct), "samples": str(len(yte)), "accuracy": "%.4f" % accuracy,
            "torch": torch.__version__}
    save_file({"logits": logits}, os.path.join(out, name + "-logits.safetensors"), metadata=meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "pytorch"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    run("digits-mlp", args.out, load("digits-train", "digits-test", 16.0), (64, 32, 10),
        lambda m: torch.optim.Adam(m.parameters(), lr=1e-3), 30)
    run("mnist-mlp", args.out, load("mnist8k-train", "mnist2k-test", 255.0), (784, 128, 10),
        lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9), 10)


if __name__ == "__main__":
    main()
