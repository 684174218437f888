#!/usr/bin/env python3
"""tinytrain against PyTorch (CPU, 1 thread) on the same digits-mlp workloads, in one run.

    python3 compare.py                 # PyTorch, the criterion bench and the CLI
    python3 compare.py --no-bench      # skip the criterion bench (the slowest part)
    python3 compare.py --torch-warm-up 20000   # Adam steps PyTorch takes before it is timed
    python3 compare.py --cnn           # mnist-cnn only (--digits: digits-mlp only; default both)

Workloads (digits, 1437 training samples, pixels / 16, Adam lr 1e-3, softmax cross-entropy):

- training throughput at batch 1 and batch 32, forward + backward + optimizer step on data in
  memory. tinytrain: `cargo bench -p tinytrain-benches --bench dense -- digits_mlp`, which
  times each trainer after 100,000 Adam steps (steady state). PyTorch: `baselines.py`'s
  `time_training` (3 repeats, median), after `--torch-warm-up` steps (default 2,000; PyTorch's
  own Adam state decays into the subnormal range too, so a fresh model flatters it as well);
- inference latency at batch 1 (`baselines.py`'s `time_inference` against the bench's
  `digits_mlp/inference`);
- a whole 30-epoch run at batch 1 with shuffling: `tinytrain-sim train digits-mlp --batch 1
  --epochs 30` (its "samples/s" line, evaluation excluded) against `baselines.py`'s
  `train_epochs` with the same settings (epoch times, evaluation excluded).

`mnist-cnn` (Keras mnist_cnn, Adadelta, MNIST 8000/2000 subset): the CLI's own samples/s line
of `tinytrain-sim train mnist-cnn --epochs 1` at batch 128 and at batch 1 (one shuffled epoch,
evaluation excluded) against PyTorch's epoch at batch 128 (`train_epochs`, evaluation
excluded) and `time_training` at batch 1 (300 steps, 3 repeats); inference at batch 1 from
`cargo bench -p tinytrain-benches --bench conv -- mnist-cnn/inference` against
`time_inference`.

Prints one table per model with both figures and the ratio tinytrain / PyTorch (for latency, PyTorch /
tinytrain, so that above 1 always means tinytrain is faster). Needs torch and numpy
(`pip install torch numpy`) and cargo.
"""
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import baselines as bl  # noqa: E402  (sets torch to one thread)

UNITS = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}
SCALE = {"elem/s": 1.0, "Kelem/s": 1e3, "Melem/s": 1e6, "Gelem/s": 1e9}


def arg_value(name, default):
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


def torch_figures(warm_up):
    xtr, ytr, xte, yte = bl.load("digits-train", "digits-test", 16.0)
    make_model = bl.digits_mlp

    def make_opt(m):
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        if warm_up:
            g = torch.Generator().manual_seed(99)
            for i in torch.randint(0, len(xtr), (warm_up, 1), generator=g):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(m(xtr[i]), ytr[i]).backward()
                opt.step()
        return opt

    out = {}
    print(f"PyTorch {torch.__version__}: training batch 1 ...", flush=True)
    out["train_b1"] = bl.time_training(make_model, make_opt, xtr, ytr, 1, 2000)["median_samples_per_s"]
    print("PyTorch: training batch 32 ...", flush=True)
    out["train_b32"] = bl.time_training(make_model, make_opt, xtr, ytr, 32, 500)["median_samples_per_s"]
    print("PyTorch: 30 epochs at batch 1 ...", flush=True)
    torch.manual_seed(0)
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    hist = bl.train_epochs(model, opt, xtr, ytr, xte, yte, 30, 1, 0, eval_at={30})
    out["run_b1"] = 30 * len(xtr) / sum(h["epoch_seconds"] for h in hist)
    out["infer_us"] = bl.time_inference(model, xte, 2000)["median_latency_us"]
    out["infer_b360_us"] = 1e6 / bl.time_inference_batched(model, xte, 360)["median_samples_per_s"]
    return out


def torch_cnn_figures():
    xtr, ytr, xte, yte = bl.load("mnist8k-train", "mnist2k-test", 255.0)
    xtr, xte = xtr.unsqueeze(1), xte.unsqueeze(1)

    def make_opt(m):
        return torch.optim.Adadelta(m.parameters(), lr=1.0, rho=0.95, eps=1e-7)

    out = {}
    print(f"PyTorch {torch.__version__}: mnist-cnn, one epoch at batch 128 ...", flush=True)
    torch.manual_seed(0)
    model = bl.mnist_cnn()
    hist = bl.train_epochs(model, make_opt(model), xtr, ytr, xte, yte, 1, 128, 0, eval_at=set())
    out["train_b128"] = len(xtr) / hist[0]["epoch_seconds"]
    print("PyTorch: mnist-cnn, batch 1 ...", flush=True)
    out["train_b1"] = bl.time_training(bl.mnist_cnn, make_opt, xtr, ytr, 1, 300)["median_samples_per_s"]
    print("PyTorch: mnist-cnn, inference ...", flush=True)
    out["infer_us"] = bl.time_inference(model, xte, 300)["median_latency_us"]
    return out


def cli_samples_per_s(*args):
    text = cargo("run", "--release", "-q", "-p", "tinytrain-sim", "--", "train", *args, "--no-progress")
    m = re.search(r"([\d,]+) samples/s", text)
    if not m:
        sys.exit("no samples/s line from tinytrain-sim train")
    return float(m.group(1).replace(",", ""))


def tinytrain_cnn_figures():
    out = {
        "train_b128": cli_samples_per_s("mnist-cnn", "--batch", "128", "--epochs", "1"),
        "train_b1": cli_samples_per_s("mnist-cnn", "--batch", "1", "--epochs", "1"),
    }
    text = cargo("bench", "-p", "tinytrain-benches", "--bench", "conv", "--", "mnist-cnn/inference")
    out["infer_us"] = criterion_middle(text, "mnist-cnn/inference", "time")
    return out


def print_table(title, rows, tt, pt):
    print(f"\n{title}")
    print(f"| workload | tinytrain | PyTorch {torch.__version__} | tinytrain faster by |")
    print("|---|---:|---:|---:|")
    for label, key, lower_is_better in rows:
        if key not in tt:
            continue
        ratio = pt[key] / tt[key] if lower_is_better else tt[key] / pt[key]
        fmt = "{:,.2f}" if lower_is_better else "{:,.0f}"
        print(f"| {label} | {fmt.format(tt[key])} | {fmt.format(pt[key])} | {ratio:,.1f}x |")


def cargo(*args):
    print("$ cargo " + " ".join(args), flush=True)
    done = subprocess.run(["cargo", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"cargo {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout + done.stderr


def criterion_middle(text, name, kind):
    """The middle of criterion's three estimates for `name`: `thrpt` in elem/s or `time` in µs."""
    block = text[text.index(name):]
    m = re.search(kind + r":\s*\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", block)
    if not m:
        sys.exit(f"no {kind} for {name} in the bench output")
    value, unit = float(m.group(1)), m.group(2)
    return value * (SCALE[unit] if kind == "thrpt" else UNITS[unit])


def tinytrain_figures(bench):
    out = {}
    if bench:
        text = cargo("bench", "-p", "tinytrain-benches", "--bench", "dense", "--", "digits_mlp")
        out["train_b1"] = criterion_middle(text, "digits_mlp/train_step_batch_1", "thrpt")
        out["train_b32"] = criterion_middle(text, "digits_mlp/train_step_batch_32", "thrpt")
        out["infer_us"] = criterion_middle(text, "digits_mlp/inference", "time")
        out["infer_b360_us"] = criterion_middle(text, "digits_mlp/inference_batched_360", "time") / 360
    text = cargo("run", "--release", "-q", "-p", "tinytrain-sim", "--", "train", "digits-mlp", "--batch", "1",
                 "--epochs", "30")
    m = re.search(r"([\d,]+) samples/s", text)
    if not m:
        sys.exit("no samples/s line from tinytrain-sim train")
    out["run_b1"] = float(m.group(1).replace(",", ""))
    return out


def main():
    warm_up = arg_value("--torch-warm-up", 2000)
    bench = "--no-bench" not in sys.argv
    models = [m for m in ("digits", "cnn") if f"--{m}" in sys.argv] or ["digits", "cnn"]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    tables = []
    if "digits" in models:
        pt = torch_figures(warm_up)
        tt = tinytrain_figures(bench)
        rows = [
            ("training, batch 1 (samples/s)", "train_b1", False),
            ("training, batch 32 (samples/s)", "train_b32", False),
            ("inference, batch 1 (µs)", "infer_us", True),
            ("inference, the 360 test samples (µs per sample; PyTorch one batch of 360)", "infer_b360_us", True),
            ("30 epochs at batch 1, whole run (samples/s)", "run_b1", False),
        ]
        title = (f"digits-mlp, {started}, one thread; PyTorch timed after {warm_up} Adam steps, "
                 "tinytrain's bench after 100,000")
        tables.append((title, rows, tt, pt))
    if "cnn" in models:
        pt = torch_cnn_figures()
        tt = tinytrain_cnn_figures()
        rows = [
            ("training, batch 128, one epoch (samples/s; tinytrain: the CLI's figure)", "train_b128", False),
            ("training, batch 1 (samples/s; tinytrain: the CLI's figure over one epoch)", "train_b1", False),
            ("inference, batch 1 (µs)", "infer_us", True),
        ]
        tables.append((f"mnist-cnn, {started}, one thread, Adadelta", rows, tt, pt))
    for title, rows, tt, pt in tables:
        print_table(title, rows, tt, pt)

if __name__ == "__main__":
    main()
