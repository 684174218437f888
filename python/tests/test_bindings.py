"""Tests of the Python bindings: every model, the same bits as the CLI, and bad input refused.

Run with the bindings installed (`maturin develop --release` in python/) from anywhere:
`pytest python/tests`. The CLI comparison runs `tinytrain-sim` from $TINYTRAIN_SIM, else from
the workspace's target/release or target/debug, else builds it with cargo.
"""

import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

import tinytrain

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "data"


@pytest.fixture(scope="session")
def cli():
    env = os.environ.get("TINYTRAIN_SIM")
    if env:
        return env
    for profile in ("release", "debug"):
        exe = ROOT / "target" / profile / "tinytrain-sim"
        if exe.exists():
            return str(exe)
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.fail("no tinytrain-sim binary and no cargo to build it: set TINYTRAIN_SIM")
    subprocess.run([cargo, "build", "--release", "-p", "tinytrain-sim"], cwd=ROOT, check=True)
    return str(ROOT / "target" / "release" / "tinytrain-sim")


@pytest.fixture(scope="module")
def digits():
    return tinytrain.load_dataset("digits", str(DATA))


def test_every_model_of_the_registry():
    names = tinytrain.models()
    assert names[:6] == ["xor", "sine", "digits-mlp", "mnist-mlp", "mnist-cnn", "mnist-cnn-tiny"]
    for name in names:
        m = tinytrain.Model(name, seed=1)
        assert m.name == name
        x = np.zeros((3,) + m.input_shape, dtype=np.float32)
        assert m.predict(x).shape == (3, m.output_size)
        weights = m.get_weights()
        assert sum(a.size for _, a in weights) >= m.num_params  # BatchNorm running statistics are buffers
        assert all(a.dtype == np.float32 for _, a in weights)
        assert f'"{name}"' in m.summary()


def test_pytorch_names_and_shapes():
    m = tinytrain.Model("mnist-cnn-tiny")
    assert [(n, a.shape) for n, a in m.get_weights()] == [
        ("conv1.weight", (6, 1, 4, 4)),
        ("conv1.bias", (6,)),
        ("conv2.weight", (24, 6, 3, 3)),
        ("conv2.bias", (24,)),
        ("fc1.weight", (10, 216)),
        ("fc1.bias", (10,)),
    ]
    assert m.input_shape == (1, 28, 28)


def test_seed_initialises_and_weights_round_trip():
    a, b, c = tinytrain.Model("digits-mlp", seed=5), tinytrain.Model("digits-mlp", seed=5), tinytrain.Model("digits-mlp", seed=6)
    wa, wb, wc = a.get_weights(), b.get_weights(), c.get_weights()
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(wa, wb))
    assert not np.array_equal(wa[0][1], wc[0][1])
    c.set_weights(wa)
    assert a.to_bytes() == c.to_bytes()
    c.init(6)
    c.set_weights([arr for _, arr in wa])  # arrays alone, in order
    assert a.to_bytes() == c.to_bytes()


def test_digits_train_and_evaluate(digits):
    (x, y), (xt, yt) = digits
    assert x.shape == (1437, 64) and x.dtype == np.float32 and xt.shape == (360, 64)
    m = tinytrain.Model("digits-mlp", seed=0)
    history = m.fit(x, y, epochs=30, batch_size=32, optimizer="adam", lr=1e-3, seed=0, validation_data=(xt, yt))
    assert len(history) == 30 and history[-1]["epoch"] == 30
    loss, accuracy = m.evaluate(xt, yt)
    assert accuracy == pytest.approx(322 / 360)  # README: seed 0 gives 0.8944
    assert history[-1]["val_accuracy"] == pytest.approx(accuracy)
    logits = m.predict(xt)
    assert (logits.argmax(axis=1) == yt).mean() == pytest.approx(accuracy)


@pytest.mark.parametrize(
    "seed,args",
    [
        (3, {}),
        (7, {"optimizer": "sgd", "lr": 0.1, "batch_size": 16, "epochs": 5}),
        (11, {"optimizer": "nesterov", "lr": 0.02, "momentum": 0.8, "decay": 1e-4, "epochs": 4}),
    ],
)
def test_same_bits_as_the_cli(cli, digits, tmp_path, seed, args):
    (x, y), _ = digits
    m = tinytrain.Model("digits-mlp", seed=seed)
    m.fit(x, y, seed=seed, **args)
    m.save(str(tmp_path / "python.ttw"))
    flags = {"optimizer": "--optimizer", "lr": "--lr", "batch_size": "--batch", "epochs": "--epochs", "momentum": "--momentum", "decay": "--decay"}
    cmd = [cli, "train", "digits-mlp", "--seed", str(seed), "--data", str(DATA), "--save", str(tmp_path / "cli.ttw")]
    for k, v in args.items():
        cmd += [flags[k], str(v)]
    subprocess.run(cmd, check=True, capture_output=True)
    assert (tmp_path / "python.ttw").read_bytes() == (tmp_path / "cli.ttw").read_bytes()
    # and the CLI evaluates the Python weights as Python does
    out = subprocess.run([cli, "eval", "digits-mlp", "--data", str(DATA), "--weights", str(tmp_path / "python.ttw")], check=True, capture_output=True, text=True).stdout
    _, (xt, yt) = digits
    assert f"test accuracy {m.evaluate(xt, yt)[1]:.4f}" in out


def test_regression_models_take_float_targets():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    m = tinytrain.Model("xor", seed=1)
    m.fit(x, y, seed=1)
    assert m.evaluate(x, y)[1] == 1.0
    xs = np.linspace(0, 6.28, 200, dtype=np.float32).reshape(-1, 1)
    s = tinytrain.Model("sine", seed=0)
    ys = np.sin(xs).astype(np.float32)
    initial = s.evaluate(xs, ys)[0]
    s.fit(xs, ys, seed=0)
    assert s.evaluate(xs, ys)[0] < initial / 5
    with pytest.raises(ValueError, match="float32"):
        m.fit(x, np.array([0, 1, 1, 0]), seed=1)


def test_save_and_load(tmp_path, digits):
    (x, y), _ = digits
    m = tinytrain.Model("digits-mlp", seed=2)
    m.fit(x[:100], y[:100], epochs=1)
    m.save(str(tmp_path / "w.ttw"))
    other = tinytrain.Model("digits-mlp", seed=9)
    other.load(str(tmp_path / "w.ttw"))
    assert other.to_bytes() == m.to_bytes()
    (tmp_path / "bad.ttw").write_bytes(b"not weights")
    before = other.to_bytes()
    with pytest.raises(ValueError, match="not a valid weights file for model digits-mlp"):
        other.load(str(tmp_path / "bad.ttw"))
    with pytest.raises(ValueError, match="not a valid weights file"):
        tinytrain.Model("mnist-mlp").load(str(tmp_path / "w.ttw"))
    with pytest.raises(OSError, match="cannot read"):
        other.load(str(tmp_path / "missing.ttw"))
    assert other.to_bytes() == before


def test_bad_arrays_raise_with_the_rust_message(digits):
    (x, y), _ = digits
    m = tinytrain.Model("digits-mlp")
    before = m.to_bytes()
    with pytest.raises(ValueError, match=r"x has shape \[10, 63\]; model digits-mlp takes \(n, 64\)"):
        m.fit(x[:10, :63], y[:10])
    with pytest.raises(ValueError, match="x must be a numpy array of float32, not float64"):
        m.fit(x.astype(np.float64), y)
    with pytest.raises(ValueError, match="integer labels"):
        m.fit(x, y.astype(np.float32))
    bad = x[:10].copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match="input of sample 3, element 5, is NaN"):
        m.fit(bad, y[:10])
    with pytest.raises(ValueError, match="input of sample 3, element 5, is NaN"):
        m.predict(bad)
    with pytest.raises(ValueError, match="10 samples but 9 labels"):
        m.fit(x[:10], y[:9])
    with pytest.raises(ValueError, match="label 10 of sample 0 is out of range"):
        m.evaluate(x[:2], np.array([10, 0]))
    with pytest.raises(ValueError, match="label -1 of sample 1 is negative"):
        m.evaluate(x[:2], np.array([0, -1]))
    with pytest.raises(ValueError, match="batch size must be at least 1"):
        m.fit(x, y, batch_size=0)
    with pytest.raises(ValueError, match="no optimizer"):
        m.fit(x, y, optimizer="lion")
    with pytest.raises(ValueError, match="learning rate"):
        m.fit(x, y, lr=-1.0)
    with pytest.raises(ValueError, match="numpy array"):
        m.predict([[0.0] * 64])
    with pytest.raises(ValueError, match="no model"):
        tinytrain.Model("resnet")
    assert m.to_bytes() == before


def test_bad_weights_change_nothing():
    m = tinytrain.Model("digits-mlp", seed=4)
    before = m.to_bytes()
    w = m.get_weights()
    with pytest.raises(ValueError, match="tensor 1 is named fc1.b, expected fc1.bias"):
        m.set_weights([w[0], ("fc1.b", w[1][1])] + w[2:])
    with pytest.raises(ValueError, match=r"tensor fc2.weight has shape \[32, 10\], expected \[10, 32\]"):
        m.set_weights(w[:2] + [("fc2.weight", w[2][1].T.copy())] + w[3:])
    nan = w[3][1].copy()
    nan[2] = np.inf
    with pytest.raises(ValueError, match="tensor fc2.bias holds inf at element 2"):
        m.set_weights(w[:3] + [("fc2.bias", nan)])
    with pytest.raises(ValueError, match="3 tensors given, model digits-mlp has 4"):
        m.set_weights(w[:3])
    with pytest.raises(ValueError, match="float32"):
        m.set_weights([(n, a.astype(np.float64)) for n, a in w])
    assert m.to_bytes() == before


def test_load_dataset_errors(tmp_path):
    with pytest.raises(ValueError, match="no dataset"):
        tinytrain.load_dataset("cifar")
    with pytest.raises(ValueError, match="no digits training images"):
        tinytrain.load_dataset("digits", str(tmp_path))
