#!/usr/bin/env python3
"""Synthesise the "waves" time-series set in ./data/ (see data/README.md).

    python3 tools/make_waves.py

Ten classes of noisy 1-D signals of 64 steps, one channel, for the 1-D reference model
(tinytrain's zoo::WavesCnn1d, registry model `waves-cnn1d`). No real time-series set with a
clear licence is small enough to ship, so the set is generated; this script is its whole
definition. Needs numpy only. Deterministic: numpy RandomState(20261129), gzip with mtime 0
and no file name, so a rerun gives byte-identical files.

Each sample: t = 0..63 / 64, a class-specific shape with random frequency f in [1.5, 4]
cycles, phase in [0, 2pi), amplitude a in [0.5, 1] and offset in [-0.3, 0.3], plus Gaussian
noise of standard deviation 0.25; then quantised to a byte as round((v + 2) / 4 * 255),
clipped to 0..255 (tinytrain and PyTorch read v' = byte / 255).

    0 sine            a sin(2 pi f t + phase)
    1 square          a sign(sin(2 pi f t + phase))
    2 sawtooth        a (2 frac(f t + phase / 2pi) - 1)
    3 triangle        a (2 |2 frac(f t + phase / 2pi) - 1| - 1)
    4 chirp           a sin(2 pi (f / 2) t (1 + 3 t) + phase): the frequency rises
    5 damped sine     a exp(-4 t) sin(2 pi f t + phase) (times 1.5)
    6 pulse           a Gaussian bump of width 0.05 at a random time in [0.2, 0.8] (times 1.5)
    7 step            a (t > t0) with t0 in [0.25, 0.75], minus a / 2
    8 random walk     cumulative sum of N(0, 0.15) steps, centred
    9 spike train     spikes of height 1.5 a every 1 / f at a random phase, else 0

Files: waves-train-images-idx3-ubyte.gz (2000 x 1 x 64, 200 per class, shuffled),
waves-train-labels-idx1-ubyte.gz, waves-test-images-idx3-ubyte.gz (1000 x 1 x 64, 100 per
class), waves-test-labels-idx1-ubyte.gz. The IDX "images" are 1 row of 64 columns.
"""
import gzip
import hashlib
import io
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data")
SEED = 20261129
L = 64
NOISE = 0.25


def idx_bytes(arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim)
    header += b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.tobytes(order="C")


def write_gz(name, payload):
    path = os.path.join(OUT, name)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f:
        f.write(payload)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    data = buf.getvalue()
    print("| `%s` | %d | `%s` |" % (name, len(data), hashlib.sha256(data).hexdigest()))


def sample(r, cls):
    t = np.arange(L) / L
    f = r.uniform(1.5, 4.0)
    ph = r.uniform(0, 2 * np.pi)
    a = r.uniform(0.5, 1.0)
    off = r.uniform(-0.3, 0.3)
    frac = lambda v: v - np.floor(v)  # noqa: E731
    if cls == 0:
        v = a * np.sin(2 * np.pi * f * t + ph)
    elif cls == 1:
        v = a * np.sign(np.sin(2 * np.pi * f * t + ph))
    elif cls == 2:
        v = a * (2 * frac(f * t + ph / (2 * np.pi)) - 1)
    elif cls == 3:
        v = a * (2 * np.abs(2 * frac(f * t + ph / (2 * np.pi)) - 1) - 1)
    elif cls == 4:
        v = a * np.sin(2 * np.pi * (f / 2) * t * (1 + 3 * t) + ph)
    elif cls == 5:
        v = 1.5 * a * np.exp(-4 * t) * np.sin(2 * np.pi * f * t + ph)
    elif cls == 6:
        v = 1.5 * a * np.exp(-0.5 * ((t - r.uniform(0.2, 0.8)) / 0.05) ** 2)
    elif cls == 7:
        v = a * (t > r.uniform(0.25, 0.75)) - a / 2
    elif cls == 8:
        w = np.cumsum(r.normal(0, 0.15, L))
        v = w - w.mean()
    else:
        period = max(2, int(round(L / (f * 2))))
        start = r.randint(0, period)
        v = np.zeros(L)
        v[start::period] = 1.5 * a
    v = v + off + r.normal(0, NOISE, L)
    return np.clip(np.round((v + 2.0) / 4.0 * 255.0), 0, 255).astype(np.uint8)


def make(r, per_class):
    labels = np.repeat(np.arange(10), per_class)
    r.shuffle(labels)
    x = np.stack([sample(r, c) for c in labels]).reshape(len(labels), 1, L)
    return x, labels.astype(np.uint8)


def main():
    r = np.random.RandomState(SEED)
    xtr, ytr = make(r, 200)
    xte, yte = make(r, 100)
    write_gz("waves-train-images-idx3-ubyte.gz", idx_bytes(xtr))
    write_gz("waves-train-labels-idx1-ubyte.gz", idx_bytes(ytr))
    write_gz("waves-test-images-idx3-ubyte.gz", idx_bytes(xte))
    write_gz("waves-test-labels-idx1-ubyte.gz", idx_bytes(yte))


if __name__ == "__main__":
    main()
