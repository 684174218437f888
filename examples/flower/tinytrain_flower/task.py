"""Data and partitions: the shipped digits IDX files read with gzip and numpy, scaled as the
tinytrain CLI scales them (pixel * 1/16 in float32), split among the clients IID or by label."""

import gzip
import os
import pathlib

import numpy as np

NUM_CLASSES = 10


def data_dir(configured: str) -> pathlib.Path:
    """The directory of the digits files: the run config's `data-dir`, else $TINYTRAIN_DATA."""
    d = configured or os.environ.get("TINYTRAIN_DATA", "")
    if not d:
        raise ValueError("set data-dir in the run config or TINYTRAIN_DATA to the repository's data/ directory")
    return pathlib.Path(d)


def read_idx(path: pathlib.Path) -> np.ndarray:
    """An IDX file (gzipped or not) as a uint8 array of its shape."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {body.size} bytes for shape {dims}")
    return body.reshape(dims)


def load_digits(directory: pathlib.Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """`split` ("train" or "test") as float32 inputs (n, 64) and uint8 labels (n,)."""
    images = read_idx(directory / f"digits-{split}-images-idx3-ubyte.gz")
    labels = read_idx(directory / f"digits-{split}-labels-idx1-ubyte.gz")
    x = images.reshape(len(images), -1).astype(np.float32) * np.float32(1.0 / 16.0)
    return x, labels


def partition(labels: np.ndarray, num_partitions: int, kind: str, classes_per_client: int, seed: int) -> list[np.ndarray]:
    """Sample indices of each client.

    iid: a seeded shuffle cut into `num_partitions` near-equal parts.
    non-iid: each client gets `classes_per_client` classes, consecutive in a seeded cyclic order of
    the ten digits (so a client's classes differ), and each class's samples, shuffled, are cut into
    as many shards as clients that hold it: every sample goes to exactly one client (with fewer
    than 10 / classes_per_client clients, the classes nobody holds are left out).
    """
    rng = np.random.default_rng(seed)
    n = len(labels)
    if kind == "iid":
        return [np.sort(p) for p in np.array_split(rng.permutation(n), num_partitions)]
    if kind == "non-iid":
        if not 1 <= classes_per_client <= NUM_CLASSES:
            raise ValueError(f"classes-per-client {classes_per_client}: expected 1 to {NUM_CLASSES}")
        order = rng.permutation(NUM_CLASSES)
        held = [[int(order[(c * classes_per_client + j) % NUM_CLASSES]) for j in range(classes_per_client)]
                for c in range(num_partitions)]
        holders = {k: [c for c in range(num_partitions) if k in held[c]] for k in range(NUM_CLASSES)}
        parts: list[list[np.ndarray]] = [[] for _ in range(num_partitions)]
        for k in range(NUM_CLASSES):
            samples = rng.permutation(np.flatnonzero(labels == k))
            if not holders[k]:
                continue  # fewer than 10 / classes_per_client clients: nobody holds this class
            for c, shard in zip(holders[k], np.array_split(samples, len(holders[k]))):
                parts[c].append(shard)
        return [np.sort(np.concatenate(p)) for p in parts]
    raise ValueError(f"partition {kind!r}: expected 'iid' or 'non-iid'")


def client_seed(seed: int, server_round: int, partition_id: int) -> int:
    """The training seed of one client in one round: the same every run, different per client and round."""
    return seed * 1_000_003 + server_round * 1_009 + partition_id
