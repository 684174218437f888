"""The Flower app's data and partitions."""

import pathlib
import sys

import numpy as np
import tinytrain

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from tinytrain_flower.task import client_seed, load_digits, partition  # noqa: E402

DATA = pathlib.Path(__file__).resolve().parents[3] / "data"


def test_the_numpy_reader_gives_the_bindings_arrays():
    (x, y), (xt, yt) = tinytrain.load_dataset("digits", str(DATA))
    for split, (ex, ey) in (("train", (x, y)), ("test", (xt, yt))):
        gx, gy = load_digits(DATA, split)
        assert gx.dtype == np.float32 and gx.tobytes() == ex.tobytes()
        assert np.array_equal(gy, ey)


def test_partitions_cover_the_data_once():
    _, y = load_digits(DATA, "train")
    for kind in ("iid", "non-iid"):
        parts = partition(y, 20, kind, 2, seed=0)
        assert len(parts) == 20
        every = np.sort(np.concatenate(parts))
        assert np.array_equal(every, np.arange(len(y))), kind
        assert all(len(p) > 0 for p in parts)
        again = partition(y, 20, kind, 2, seed=0)
        assert all(np.array_equal(a, b) for a, b in zip(parts, again))


def test_non_iid_clients_see_two_classes():
    _, y = load_digits(DATA, "train")
    classes = [len(np.unique(y[p])) for p in partition(y, 20, "non-iid", 2, seed=0)]
    assert classes == [2] * 20, classes
    iid = [len(np.unique(y[p])) for p in partition(y, 20, "iid", 2, seed=0)]
    assert min(iid) >= 8, iid


def test_client_seeds_differ_per_round_and_client():
    seeds = {client_seed(0, r, c) for r in range(1, 31) for c in range(20)}
    assert len(seeds) == 600


def test_few_clients_leave_classes_out():
    _, y = load_digits(DATA, "train")
    parts = partition(y, 4, "non-iid", 2, seed=0)
    held = [set(np.unique(y[p]).tolist()) for p in parts]
    assert all(len(h) == 2 for h in held)
    assert len(set().union(*held)) == 8
