#!/usr/bin/env python3
"""PyTorch reference models with batch normalisation, for the interchange tests (not needed
to run them).

    pip install torch numpy safetensors
    python3 tools/bn_reference.py [--out tests/fixtures/pytorch] [MODEL ...]

Trains in PyTorch (train() mode: batch statistics, running statistics updated with momentum
0.1), seed 0, one CPU thread, on the data shipped in data/:

- digits-bn-mlp: fc1 Linear(64,32), bn1 BatchNorm1d(32), ReLU, fc2 Linear(32,10); pixels / 16,
                 Adam lr 1e-3, batch 32, 30 epochs (digits-mlp's settings)
- mnist-bn-cnn:  conv1 Conv2d(1,8,3,stride 2) -> 8x13x13, bn1 BatchNorm2d(8), ReLU,
                 MaxPool2d(2) -> 8x6x6, Flatten, fc1 Linear(288,10); CHW input [1,28,28],
                 pixels / 255, Adam lr 2e-3, batch 32, 5 epochs

and writes, as tools/pytorch_reference.py does, NAME.safetensors (the state_dict: weights,
biases, BatchNorm weight/bias/running_mean/running_var) and NAME-logits.safetensors (eval()
logits on the test set, metadata "correct", "samples", "accuracy").

The one tensor of the state_dict left out is `bn1.num_batches_tracked`: an int64 counter
that eval() does not use and tinytrain's BatchNorm does not keep (import takes f32 tensors
and refuses names the network does not have).
"""
import argparse
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import ROOT, load, train  # noqa: E402


class DigitsBnMlp(nn.Module):
    """tinytrain's zoo::DigitsBnMlp: fc1, bn1, fc2 as tinytrain-sim import expects."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.bn1 = nn.BatchNorm1d(32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.bn1(self.fc1(x.flatten(1)))))


class MnistBnCnn(nn.Module):
    """tinytrain's zoo::MnistBnCnn: conv1, bn1, fc1 as tinytrain-sim import expects."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, stride=2)
        self.bn1 = nn.BatchNorm2d(8)
        self.fc1 = nn.Linear(288, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        return self.fc1(x.flatten(1))


MODELS = {
    "digits-bn-mlp": lambda: (load("digits-train", "digits-test", 16.0), DigitsBnMlp,
                              lambda m: torch.optim.Adam(m.parameters(), lr=1e-3), 30, 32),
    "mnist-bn-cnn": lambda: (load("mnist8k-train", "mnist2k-test", 255.0, (1, 28, 28)), MnistBnCnn,
                             lambda m: torch.optim.Adam(m.parameters(), lr=2e-3), 5, 32),
}


def run(name, out, data, make_model, make_opt, epochs, batch, seed=0):
    print("==", name, flush=True)
    xtr, ytr, xte, yte = data
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = make_model()
    model.train()
    train(model, make_opt(model), xtr, ytr, epochs, batch, seed)
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(xte[i:i + 500]) for i in range(0, len(xte), 500)]).contiguous()
    correct = int((logits.argmax(1) == yte).sum().item())
    accuracy = correct / len(yte)
    print("  test accuracy %.4f (%d/%d)" % (accuracy, correct, len(yte)), flush=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    save_file(state, os.path.join(out, name + ".safetensors"), metadata={"format": "pt"})
    meta = {"correct": str(correct), "samples": str(len(yte)), "accuracy": "%.4f" % accuracy,
            "torch": torch.__version__}
    save_file({"logits": logits}, os.path.join(out, name + "-logits.safetensors"), metadata=meta)


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
