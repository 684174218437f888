#!/usr/bin/env python3
"""PyTorch baseline of on-device fine-tuning over a frozen backbone (issue 12).

    cargo run --release -p tinytrain-sim -- finetune --export-baseline /tmp/ft.json
    python3 baselines/finetune.py /tmp/ft.json /tmp/ft-shift.json   # the table of baselines/finetune.md

Each JSON file (one per scenario, written by `tinytrain-sim finetune --export-baseline`) holds
the frozen backbone with the very weights the device uses (the int8 filters and biases times
their scales, in PyTorch's OIHW layout), the pre-trained head (its 216 columns in the
backbone's NHWC feature order), the optimizer (SGD, lr, momentum 0.9: PyTorch's form, which is
tinytrain's `MomentumForm::Torch`) and every optimizer step's batch as indices into
`data/mnist8k-train` (the stream order, the new samples and the replayed ones). PyTorch runs the
backbone in float32 (Conv2d(1,6,4,stride 2), ReLU, Conv2d(6,24,3,stride 2), ReLU, MaxPool2d(2),
features permuted to NHWC and flattened), trains the head Linear(216,10) with mean
cross-entropy over each batch on the same batches, and evaluates on all 2,000 images of
`data/mnist2k-test` (rotated as the device rotates them in the shift scenario: the same
nearest-neighbour map). One CPU thread.
"""
import gzip
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")


def read_idx_gz(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    _, _, ndim = struct.unpack(">HBB", raw[:4])
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    t = torch.frombuffer(bytearray(raw[4 + 4 * ndim:]), dtype=torch.uint8)
    return t.reshape(shape)


def images(prefix, rotation):
    x = read_idx_gz(prefix + "-images-idx3-ubyte.gz").reshape(-1, 784).to(torch.int64)
    y = read_idx_gz(prefix + "-labels-idx1-ubyte.gz").to(torch.int64)
    if rotation is not None:
        m = torch.tensor(rotation, dtype=torch.int64)
        outside = m < 0
        x = x[:, m.clamp(min=0)]
        x[:, outside] = 0
    return (x.to(torch.float32) / 255.0).reshape(-1, 1, 28, 28), y


class Backbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 4, stride=2)
        self.conv2 = nn.Conv2d(6, 24, 3, stride=2)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.tensor(cfg["conv1"]["weight"]).reshape(6, 1, 4, 4))
            self.conv1.bias.copy_(torch.tensor(cfg["conv1"]["bias"]))
            self.conv2.weight.copy_(torch.tensor(cfg["conv2"]["weight"]).reshape(24, 6, 3, 3))
            self.conv2.bias.copy_(torch.tensor(cfg["conv2"]["bias"]))
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        return x.permute(0, 2, 3, 1).reshape(len(x), 216)  # NHWC, as the int8 backbone


def accuracy(head, feats, labels):
    with torch.no_grad():
        return (head(feats).argmax(1) == labels).float().mean().item()


def run(path):
    cfg = json.load(open(path))
    rotation = cfg["rotation_map"] if cfg["shift"] == "rotate30" else None
    train_x, train_y = images("mnist8k-train", rotation)
    test_x, test_y = images("mnist2k-test", rotation)
    backbone = Backbone(cfg).eval()
    with torch.no_grad():
        train_f, test_f = backbone(train_x), backbone(test_x)
    head = nn.Linear(216, 10)
    with torch.no_grad():
        head.weight.copy_(torch.tensor(cfg["head"]["weight"]).reshape(10, 216))
        head.bias.copy_(torch.tensor(cfg["head"]["bias"]))
    before = accuracy(head, test_f, test_y)
    opt = torch.optim.SGD(head.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])
    for batch in cfg["batches"]:
        idx = torch.tensor(batch)
        opt.zero_grad()
        F.cross_entropy(head(train_f[idx]), train_y[idx]).backward()
        opt.step()
    after = accuracy(head, test_f, test_y)
    ours = cfg["tinytrain"]
    return {
        "scenario": cfg["scenario"],
        "steps": len(cfg["batches"]),
        "samples": cfg["stream"],
        "pytorch_before": before,
        "pytorch_after": after,
        "tinytrain_before": ours["before_all"],
        "tinytrain_after": ours["after_all"],
    }


def main():
    rows = [run(p) for p in sys.argv[1:]]
    print(f"PyTorch {torch.__version__}, one thread; all 2,000 test images of data/mnist2k-test")
    print("| scenario | steps (stream samples) | PyTorch before | PyTorch after | tinytrain before | tinytrain after |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['scenario']} | {r['steps']} ({r['samples']}) | {r['pytorch_before']:.4f} | {r['pytorch_after']:.4f} "
            f"| {r['tinytrain_before']:.4f} | {r['tinytrain_after']:.4f} |"
        )


if __name__ == "__main__":
    main()
