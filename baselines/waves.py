#!/usr/bin/env python3
"""PyTorch CPU baseline of the 1-D reference model `waves-cnn1d` (zoo::WavesCnn1d) on the
synthesised "waves" time series (data/waves-*, made by tools/make_waves.py).

    python3 baselines/waves.py        # prints the table of baselines/waves.md

Conv1d(1,8,5,padding 2) ReLU MaxPool1d(2) Conv1d(8,16,5,padding 2) ReLU MaxPool1d(2)
Conv1d(16,16,3,padding 1) ReLU AdaptiveAvgPool1d(1) Flatten Linear(16,10); 1,658 parameters;
input [1, 64] = bytes / 255; softmax cross-entropy; PyTorch default init; Adam lr 3e-3,
batch 32, 80 epochs; seeds 0..4; one CPU thread.
"""
import gzip
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
EPOCHS, BATCH, LR = 80, 32, 3e-3


def read_idx_gz(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    _, dtype, ndim = struct.unpack(">HBB", raw[:4])
    shape = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(shape)


def split(prefix):
    x = torch.tensor(read_idx_gz(prefix + "-images-idx3-ubyte.gz").astype(np.float32) / 255.0)
    y = torch.tensor(read_idx_gz(prefix + "-labels-idx1-ubyte.gz").astype(np.int64))
    return x.reshape(len(x), 1, 64), y


class WavesCnn1d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(1, 8, 5, padding=2)
        self.conv2 = nn.Conv1d(8, 16, 5, padding=2)
        self.conv3 = nn.Conv1d(16, 16, 3, padding=1)
        self.fc1 = nn.Linear(16, 10)

    def forward(self, x):
        x = F.max_pool1d(F.relu(self.conv1(x)), 2)
        x = F.max_pool1d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.conv3(x)).mean(dim=2)
        return self.fc1(x)


def run(seed, data):
    (xtr, ytr), (xte, yte) = data
    torch.manual_seed(seed)
    model = WavesCnn1d()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    g = torch.Generator().manual_seed(seed)
    for _ in range(EPOCHS):
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            F.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
    with torch.no_grad():
        return (model(xte).argmax(1) == yte).float().mean().item()


def main():
    data = (split("waves-train"), split("waves-test"))
    accs = [run(s, data) for s in range(5)]
    print("| test accuracy (seeds 0..4) | %s (median %.4f) |" % (", ".join("%.4f" % a for a in accs),
                                                                 float(np.median(accs))))
    print("torch", torch.__version__)


if __name__ == "__main__":
    main()
