#!/usr/bin/env python3
"""Generate golden (reference) JSON files for a f32 neural-network library.

    python3 gen_golden.py            # writes ../tests/golden/*.json

Conventions (also in golden/README.md):
  * every tensor is {"shape": [...], "data": [...]} with data flattened row-major (C order);
  * PyTorch layouts: dense weight W is [out, in] and y = x @ W.T + b; conv weight is
    [out_ch, in_ch, kh, kw]; images are NCHW;  conv2d is cross-correlation (no kernel flip);
  * all numbers are computed in float64 from inputs that are exactly representable in f32,
    then rounded to the nearest f32 and printed with the shortest decimal string that
    parses back to that same f32;
  * each case also carries "f32_torch_max_abs_diff": the largest |difference| between the
    stored values and the same computation done by PyTorch in float32 - a guide for test
    tolerances.
Needs: torch, numpy. Optional: keras>=3 (run with KERAS_BACKEND=torch; used only to
cross-check the Keras-convention optimizers; the result of the check is stored).
"""
import json
import math
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "golden")
torch.set_num_threads(1)

PRECISION_NOTE = ("computed in float64 from float32-exact inputs, rounded to nearest float32; "
                  "f32_torch_max_abs_diff = max |stored - PyTorch float32 result| over the case's outputs")


# ----------------------------------------------------------------------------- helpers
def rs(seed):
    return np.random.RandomState(seed)


def f32(a):
    return np.asarray(a, dtype=np.float32)


def tt(a, dtype, grad=False):
    """numpy (f32-exact) -> torch tensor of the working dtype."""
    t = torch.tensor(np.asarray(a, dtype=np.float64), dtype=dtype)
    if grad:
        t.requires_grad_(True)
    return t


class Tensor:
    """Marks a float tensor for serialisation."""

    def __init__(self, a):
        if isinstance(a, torch.Tensor):
            a = a.detach().to(torch.float64).cpu().numpy()
        self.a = np.asarray(a, dtype=np.float64)


class IntTensor:
    def __init__(self, a):
        if isinstance(a, torch.Tensor):
            a = a.detach().cpu().numpy()
        self.a = np.asarray(a, dtype=np.int64)


def fnum(v):
    v32 = np.float32(v)
    if not np.isfinite(v32):
        raise ValueError("non-finite value %r" % v)
    s = str(v32)  # numpy: shortest string that round-trips this float32
    if s == "-0.0":
        s = "0.0"
    return s


def enc(o, ind=0):
    pad = " " * ind
    if isinstance(o, Tensor):
        return '{"shape": %s, "data": [%s]}' % (json.dumps(list(o.a.shape)),
                                                 ", ".join(fnum(v) for v in o.a.ravel(order="C")))
    if isinstance(o, IntTensor):
        return '{"shape": %s, "dtype": "int", "data": [%s]}' % (
            json.dumps(list(o.a.shape)), ", ".join(str(int(v)) for v in o.a.ravel()))
    if isinstance(o, dict):
        if not o:
            return "{}"
        items = [pad + " " + json.dumps(str(k)) + ": " + enc(v, ind + 1) for k, v in o.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(o, (list, tuple)):
        if all(isinstance(x, (int, float, np.floating, np.integer, str, bool)) for x in o):
            return "[" + ", ".join(enc(x, ind) for x in o) + "]"
        return "[\n" + ",\n".join(pad + " " + enc(x, ind + 1) for x in o) + "\n" + pad + "]"
    if isinstance(o, bool):
        return "true" if o else "false"
    if isinstance(o, (int, np.integer)):
        return str(int(o))
    if isinstance(o, (float, np.floating)):
        return fnum(o)
    if o is None:
        return "null"
    if isinstance(o, str):
        return json.dumps(o)
    raise TypeError(type(o))


def write(name, obj):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    text = enc(obj) + "\n"
    json.loads(text)  # must be valid JSON
    with open(path, "w") as f:
        f.write(text)
    print("wrote %-28s %8d bytes" % (name, len(text)))


def run_case(fn, output_keys=None):
    """fn(dtype) -> dict name -> torch tensor / number / other.  Runs in f64 and f32."""
    r64 = fn(torch.float64)
    r32 = fn(torch.float32)
    out = {}
    maxdiff = 0.0
    for k, v in r64.items():
        if isinstance(v, torch.Tensor) and v.dtype in (torch.float64, torch.float32):
            out[k] = Tensor(v)
            if output_keys is None or k in output_keys:
                d = (v.detach().double() - r32[k].detach().double()).abs().max().item() if v.numel() else 0.0
                maxdiff = max(maxdiff, d)
        elif isinstance(v, torch.Tensor):
            out[k] = IntTensor(v)
        else:
            out[k] = v
    out["f32_torch_max_abs_diff"] = float("%.3g" % maxdiff) if maxdiff > 0 else 0.0
    return out


def grads_of(out, inputs, gy):
    gs = torch.autograd.grad(out, inputs, grad_outputs=gy, allow_unused=False)
    return [g.detach() for g in gs]


# ----------------------------------------------------------------------------- a. slide example
def slide_example():
    x = np.array([1.0, 1.0])
    W1 = f32([[0.8, 0.6], [0.2, 0.9], [0.7, 0.1]])  # rows: h1, h2, h3 ; [out=3, in=2]
    W2 = f32([[0.2, 0.8, 0.5]])  # [out=1, in=3]
    t = np.array([0.0])
    lr = 0.5

    def fn(dtype):
        xw = tt(x, dtype)
        w1 = tt(W1, dtype, True)
        w2 = tt(W2, dtype, True)
        tg = tt(t, dtype)
        net_h = w1 @ xw
        h = torch.sigmoid(net_h)
        net_o = w2 @ h
        y = torch.sigmoid(net_o)
        half_se = 0.5 * ((tg - y) ** 2).sum()
        mse = ((tg - y) ** 2).mean()
        g1, g2 = torch.autograd.grad(half_se, [w1, w2], retain_graph=True)
        m1, m2 = torch.autograd.grad(mse, [w1, w2])
        # manual backprop (classic slide formulas) - must agree with autograd
        yd, hd = y.detach(), h.detach()
        delta_o = (yd - tg) * yd * (1 - yd)
        delta_h = (w2.detach().T @ delta_o) * hd * (1 - hd)
        assert torch.allclose(g2, torch.outer(delta_o, hd))
        assert torch.allclose(g1, torch.outer(delta_h, xw))
        return {
            "hidden_net": net_h.detach(), "hidden_activations": h.detach(),
            "output_net": net_o.detach(), "output": y.detach(),
            "loss_half_squared_error": half_se.detach(), "loss_mean_squared_error": mse.detach(),
            "delta_output": delta_o, "delta_hidden": delta_h,
            "grad_W1_half_se": g1, "grad_W2_half_se": g2,
            "grad_W1_mse": m1, "grad_W2_mse": m2,
            "W1_after_sgd_half_se": (w1 - lr * g1).detach(), "W2_after_sgd_half_se": (w2 - lr * g2).detach(),
            "W1_after_sgd_mse": (w1 - lr * m1).detach(), "W2_after_sgd_mse": (w2 - lr * m2).detach(),
        }

    res = run_case(fn)
    obj = {
        "description": "2-3-1 sigmoid network from the classic backprop slide; no biases; one SGD step.",
        "precision": PRECISION_NOTE,
        "layout": "W1 is [3 hidden, 2 inputs] (row j = weights into hidden unit h_{j+1}); W2 is [1, 3]; "
                  "net_h = W1 @ x, h = sigmoid(net_h), net_o = W2 @ h, y = sigmoid(net_o)",
        "losses": "loss_half_squared_error = 0.5*(t-y)^2 (slide convention, used for grad_*_half_se); "
                  "loss_mean_squared_error = mean((t-y)^2) = (t-y)^2 here (PyTorch/Keras MSE, used for grad_*_mse, "
                  "which is exactly 2x the half_se gradient)",
        "delta": "delta_output = (y-t)*y*(1-y); delta_hidden = (W2^T delta_output) * h*(1-h); "
                 "grad_W2 = delta_output h^T; grad_W1 = delta_hidden x^T  (for the half_se loss)",
        "sgd": "W_new = W - lr*grad, lr = 0.5",
        "x": Tensor(x), "W1": Tensor(W1), "W2": Tensor(W2), "target": Tensor(t), "lr": lr,
    }
    obj.update(res)
    write("slide_example.json", obj)
    return res


# ----------------------------------------------------------------------------- b. layers
def dense_cases():
    cases = {}
    for name, batch, seed in (("batch2", 2, 101), ("batch1", 1, 102)):
        r = rs(seed)
        X = f32(r.uniform(-1, 1, (batch, 5)))
        W = f32(r.uniform(-0.5, 0.5, (3, 5)))
        b = f32(r.uniform(-0.2, 0.2, (3,)))
        GY = f32(r.uniform(-1, 1, (batch, 3)))

        def fn(dtype, X=X, W=W, b=b, GY=GY):
            x, w, bb = tt(X, dtype, True), tt(W, dtype, True), tt(b, dtype, True)
            y = F.linear(x, w, bb)
            gx, gw, gb = grads_of(y, [x, w, bb], tt(GY, dtype))
            return {"input": x.detach(), "weight": w.detach(), "bias": bb.detach(), "output": y.detach(),
                    "grad_output": tt(GY, dtype), "grad_input": gx, "grad_weight": gw, "grad_bias": gb}

        cases[name] = run_case(fn, {"output", "grad_input", "grad_weight", "grad_bias"})
    write("dense.json", {
        "description": "Dense/linear layer forward+backward, 5 inputs -> 3 outputs, with bias.",
        "precision": PRECISION_NOTE,
        "layout": "input [batch, in]; weight [out, in] (PyTorch nn.Linear; Keras kernel is the transpose [in, out]); "
                  "bias [out]; output = input @ weight^T + bias  [batch, out]",
        "backward": "grad_input = grad_output @ weight; grad_weight = grad_output^T @ input (SUMMED over the batch, "
                    "no 1/batch - averaging belongs to the loss); grad_bias = sum over batch rows of grad_output",
        "cases": cases,
    })


ACT_X = f32([-20.0, -3.5, -1.0, -0.01, 0.0, 0.01, 0.5, 1.0, 3.5, 20.0])


def activation_cases():
    gy = f32(rs(201).uniform(-1, 1, ACT_X.shape))
    acts = {
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": F.relu,
        "leaky_relu_0.01": lambda z: F.leaky_relu(z, 0.01),
        "softmax": lambda z: F.softmax(z, dim=-1),
    }
    cases = {}
    for name, f in acts.items():
        def fn(dtype, f=f):
            x = tt(ACT_X, dtype, True)
            y = f(x)
            (gx,) = grads_of(y, [x], tt(gy, dtype))
            return {"input": x.detach(), "output": y.detach(), "grad_output": tt(gy, dtype), "grad_input": gx}
        cases[name] = run_case(fn, {"output", "grad_input"})
    # extra softmax cases
    extra = {
        "softmax_large_logits": f32([1000.0, 1001.0, 1002.0, 999.0]),
        "softmax_batch_2x4_rowwise": f32(rs(202).uniform(-3, 3, (2, 4))),
    }
    for name, X in extra.items():
        g = f32(rs(203).uniform(-1, 1, X.shape))

        def fn(dtype, X=X, g=g):
            x = tt(X, dtype, True)
            y = F.softmax(x, dim=-1)
            (gx,) = grads_of(y, [x], tt(g, dtype))
            return {"input": x.detach(), "output": y.detach(), "grad_output": tt(g, dtype), "grad_input": gx}
        cases[name] = run_case(fn, {"output", "grad_input"})
    write("activations.json", {
        "description": "Element-wise activations and softmax: forward and vector-Jacobian product.",
        "precision": PRECISION_NOTE,
        "definitions": {
            "sigmoid": "1/(1+exp(-x)); dy/dx = y(1-y)",
            "tanh": "dy/dx = 1 - y^2",
            "relu": "max(x,0); derivative at x==0 is 0 (PyTorch)",
            "leaky_relu_0.01": "x if x>0 else 0.01*x; derivative at x==0 is 0.01 (PyTorch: grad*(x>0 ? 1 : slope)). "
                               "NOTE Keras LeakyReLU default negative_slope is 0.3, PyTorch default is 0.01",
            "softmax": "over the last axis; grad_input = y * (grad_output - sum(grad_output * y)); "
                       "softmax_large_logits checks max-subtraction (naive exp overflows f32)",
        },
        "cases": cases,
    })


def conv_cases():
    cases = {}
    specs = [
        ("stride1_pad0", 1, 0, 1, 301),
        ("stride2_pad1", 2, 1, 1, 302),
        ("stride1_pad0_batch2", 1, 0, 2, 303),
    ]
    for name, stride, pad, n, seed in specs:
        r = rs(seed)
        X = f32(r.uniform(-1, 1, (n, 2, 7, 7)))
        W = f32(r.uniform(-0.5, 0.5, (3, 2, 3, 3)))
        b = f32(r.uniform(-0.2, 0.2, (3,)))
        ho = (7 + 2 * pad - 3) // stride + 1
        GY = f32(r.uniform(-1, 1, (n, 3, ho, ho)))

        def fn(dtype, X=X, W=W, b=b, GY=GY, stride=stride, pad=pad):
            x, w, bb = tt(X, dtype, True), tt(W, dtype, True), tt(b, dtype, True)
            y = F.conv2d(x, w, bb, stride=stride, padding=pad)
            gx, gw, gb = grads_of(y, [x, w, bb], tt(GY, dtype))
            return {"input": x.detach(), "weight": w.detach(), "bias": bb.detach(), "output": y.detach(),
                    "grad_output": tt(GY, dtype), "grad_input": gx, "grad_weight": gw, "grad_bias": gb}

        c = {"stride": stride, "padding": pad}
        c.update(run_case(fn, {"output", "grad_input", "grad_weight", "grad_bias"}))
        cases[name] = c
    write("conv2d.json", {
        "description": "2-D convolution forward+backward: 2 input channels 7x7, 3 output channels, 3x3 kernel, bias.",
        "precision": PRECISION_NOTE,
        "layout": "input [N, C_in, H, W] (NCHW; the batch-1 cases are a single CHW image); weight [C_out, C_in, kh, kw]; "
                  "bias [C_out]; output [N, C_out, H_out, W_out]; H_out = floor((H + 2*padding - kh)/stride) + 1",
        "semantics": "cross-correlation, no kernel flip (PyTorch/Keras/TF convention): "
                     "out[n,o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] * in_padded[n,c,i*stride+u,j*stride+v]; zero padding",
        "backward": "grad_weight and grad_bias are SUMMED over the batch and all output positions",
        "cases": cases,
    })


def pool_cases():
    cases = {}
    # maxpool with ties (channel 0: integer values with many ties; channel 1: an all-equal window)
    r = rs(401)
    X_ties = f32(np.stack([r.randint(0, 3, (4, 4)),
                           [[5, 5, 1, 2], [5, 5, 3, 3], [0, -1, 7, 6], [-1, 0, 6, 7]]]).reshape(1, 2, 4, 4))
    X_noties = f32(r.permutation(32).reshape(1, 2, 4, 4) * 0.25 - 4.0)
    X_odd = f32(r.uniform(-1, 1, (1, 1, 5, 5)))
    for kind in ("maxpool2x2", "avgpool2x2"):
        for label, X in (("ties", X_ties), ("no_ties", X_noties), ("odd_5x5", X_odd)):
            if kind == "avgpool2x2" and label == "ties":
                label = "basic"
            ho = X.shape[2] // 2
            GY = f32(rs(402).uniform(-1, 1, (X.shape[0], X.shape[1], ho, ho)))

            def fn(dtype, X=X, GY=GY, kind=kind):
                x = tt(X, dtype, True)
                if kind == "maxpool2x2":
                    y = F.max_pool2d(x, 2, 2)
                else:
                    y = F.avg_pool2d(x, 2, 2)
                (gx,) = grads_of(y, [x], tt(GY, dtype))
                return {"input": x.detach(), "output": y.detach(), "grad_output": tt(GY, dtype), "grad_input": gx}
            cases[kind + "_" + label] = run_case(fn, {"output", "grad_input"})
    write("pooling.json", {
        "description": "2x2 max pooling and 2x2 average pooling, stride 2, no padding, floor mode.",
        "precision": PRECISION_NOTE,
        "layout": "NCHW; pooling is per channel",
        "maxpool_ties": "the whole upstream gradient of a window goes to ONE input: the FIRST maximum in row-major "
                        "scan order inside the window (PyTorch CPU: strict '>' comparison while scanning). Use the "
                        "*_no_ties case for a strict test if your library breaks ties differently",
        "odd_sizes": "5x5 -> 2x2 (floor); the last row and column are never read and get zero gradient",
        "avgpool": "grad_input = grad_output/4 spread over each window",
        "cases": cases,
    })


def loss_cases():
    cases = {}
    r = rs(501)
    # ---- MSE
    P = f32(r.uniform(-1, 1, (3, 4)))
    T = f32(r.uniform(-1, 1, (3, 4)))

    def mse_fn(dtype):
        p, t = tt(P, dtype, True), tt(T, dtype)
        out = {"prediction": p.detach(), "target": t}
        for red, f in (("mean", lambda: ((p - t) ** 2).mean()),
                       ("sum", lambda: ((p - t) ** 2).sum()),
                       ("half_sum", lambda: 0.5 * ((p - t) ** 2).sum())):
            L = f()
            out["loss_" + red] = L.detach()
            out["grad_prediction_" + red] = torch.autograd.grad(L, p)[0]
        assert torch.allclose(out["loss_mean"], F.mse_loss(p, t))
        return out
    cases["mse"] = run_case(mse_fn, None)
    cases["mse"]["definition"] = ("loss_mean = sum((p-t)^2)/numel (PyTorch MSELoss default; Keras MSE = mean over last axis "
                                  "then mean over batch = same); loss_sum; loss_half_sum = 0.5*sum")
    # ---- MAE (one exact tie p == t)
    P2 = P.copy()
    T2 = T.copy()
    T2[1, 2] = P2[1, 2]

    def mae_fn(dtype):
        p, t = tt(P2, dtype, True), tt(T2, dtype)
        L = (p - t).abs().mean()
        assert torch.allclose(L, F.l1_loss(p, t))
        return {"prediction": p.detach(), "target": t, "loss_mean": L.detach(),
                "grad_prediction_mean": torch.autograd.grad(L, p)[0]}
    cases["mae"] = run_case(mae_fn, None)
    cases["mae"]["definition"] = ("loss_mean = sum|p-t|/numel; grad = sign(p-t)/numel with sign(0)=0 "
                                  "(element [1,2] has p == t exactly)")
    # ---- softmax cross-entropy with integer labels
    Z = f32(r.uniform(-3, 3, (4, 5)))
    Z[3] = f32([50.0, -50.0, 0.0, 10.0, -10.0])  # large logits: needs log-sum-exp
    Y = np.array([2, 0, 4, 3], dtype=np.int64)

    def ce_fn(dtype):
        z = tt(Z, dtype, True)
        y = torch.tensor(Y)
        per = F.cross_entropy(z, y, reduction="none")
        L = per.mean()
        g = torch.autograd.grad(L, z)[0]
        sm = F.softmax(z.detach(), -1)
        assert torch.allclose(g, (sm - F.one_hot(y, 5).to(dtype)) / len(Y))
        return {"logits": z.detach(), "labels": y, "softmax": sm, "loss_per_sample": per.detach(),
                "loss_mean": L.detach(), "grad_logits_mean": g}
    cases["softmax_cross_entropy"] = run_case(ce_fn, None)
    cases["softmax_cross_entropy"]["definition"] = (
        "per sample: logsumexp(z) - z[label]; loss_mean = mean over batch (PyTorch CrossEntropyLoss, "
        "Keras SparseCategoricalCrossentropy(from_logits=True)); grad_logits_mean = (softmax(z) - onehot)/batch. "
        "Row 3 has logits +-50 (naive exp/log overflows or gives log(0) in f32)")
    # ---- binary cross-entropy on probabilities and on logits
    Zb = f32(r.uniform(-4, 4, (6,)))
    Tb = f32([1, 0, 1, 0, 1, 0.3])

    def bce_fn(dtype):
        z = tt(Zb, dtype)
        p = torch.sigmoid(z)
        p = tt(f32(p.double().numpy()), dtype, True)  # probabilities are themselves f32-exact inputs
        t = tt(Tb, dtype)
        L = -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()
        assert torch.allclose(L, F.binary_cross_entropy(p, t))
        gp = torch.autograd.grad(L, p)[0]
        zz = tt(Zb, dtype, True)
        Lz = F.binary_cross_entropy_with_logits(zz, t)
        gz = torch.autograd.grad(Lz, zz)[0]
        return {"probabilities": p.detach(), "logits": zz.detach(), "target": t,
                "loss_mean_from_probabilities": L.detach(), "grad_probabilities": gp,
                "loss_mean_from_logits": Lz.detach(), "grad_logits": gz}
    cases["binary_cross_entropy"] = run_case(bce_fn, None)
    cases["binary_cross_entropy"]["definition"] = (
        "loss = mean(-(t*ln p + (1-t)*ln(1-p))); grad_probabilities = (p-t)/(p(1-p))/n; from logits: "
        "p = sigmoid(z) computed inside, grad_logits = (sigmoid(z)-t)/n. 'probabilities' are sigmoid(logits) rounded "
        "to f32 and used as exact inputs, so the two losses agree only to f32 rounding. Last target is soft (0.3). "
        "Clamping differs between libraries: PyTorch clamps ln() at -100, Keras clips p to [1e-7, 1-1e-7]; no value "
        "here is near the clamps")
    # ---- hinge losses
    S = f32(r.uniform(-1.5, 1.5, (4, 5)))
    Yh = np.array([1, 4, 0, 2], dtype=np.int64)
    S[np.arange(4), Yh] += f32([3.5, 1.0, 0.0, 0.5])  # mix of active and inactive margins
    S = f32(S)
    Sb = f32([2.5, -1.7, 0.3, -0.4, 0.6, -2.2])  # with labels below: inactive, inactive, active x3, inactive
    Tb01 = np.array([1, 0, 1, 1, 0, 0], dtype=np.int64)

    def hinge_fn(dtype):
        s = tt(S, dtype, True)
        y = torch.tensor(Yh)
        n, c = s.shape
        sy = s.gather(1, y[:, None])
        margins = torch.clamp(s - sy + 1.0, min=0.0)
        mask = 1.0 - F.one_hot(y, c).to(dtype)
        ww_per = (margins * mask).sum(1)
        ww = ww_per.mean()
        g_ww = torch.autograd.grad(ww, s, retain_graph=True)[0]
        mm = F.multi_margin_loss(s, y)  # PyTorch: divides the sum by the number of classes
        g_mm = torch.autograd.grad(mm, s, retain_graph=True)[0]
        assert torch.allclose(mm, ww / c)
        neg = (s + (-1e30) * (1 - mask)).max(1).values
        cs_per = torch.clamp(1.0 + neg - sy[:, 0], min=0.0)
        cs = cs_per.mean()
        g_cs = torch.autograd.grad(cs, s)[0]
        sb = tt(Sb, dtype, True)
        tpm = tt(2.0 * Tb01 - 1.0, dtype)
        bh = torch.clamp(1.0 - tpm * sb, min=0.0).mean()
        g_bh = torch.autograd.grad(bh, sb)[0]
        # no score sits exactly on a hinge kink (gradient well defined)
        assert (((s - sy + 1.0).abs() > 1e-4) | (mask == 0)).all() and ((1.0 - tpm * sb).abs() > 1e-4).all()
        return {"scores": s.detach(), "labels": y,
                "weston_watkins_loss_per_sample": ww_per.detach(), "weston_watkins_loss_mean": ww.detach(),
                "weston_watkins_grad_scores": g_ww,
                "pytorch_multi_margin_loss": mm.detach(), "pytorch_multi_margin_grad_scores": g_mm,
                "crammer_singer_loss_per_sample": cs_per.detach(), "crammer_singer_loss_mean": cs.detach(),
                "crammer_singer_grad_scores": g_cs,
                "binary_scores": sb.detach(), "binary_labels_01": torch.tensor(Tb01),
                "binary_hinge_loss_mean": bh.detach(), "binary_hinge_grad_scores": g_bh}
    cases["hinge"] = run_case(hinge_fn, None)
    cases["hinge"]["definition"] = {
        "weston_watkins": "multiclass SVM loss (CS231n): L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + 1); mean over batch",
        "pytorch_multi_margin": "torch.nn.MultiMarginLoss(p=1, margin=1) = weston_watkins / num_classes",
        "crammer_singer": "Keras categorical_hinge: L_i = max(0, 1 + max_{j != y_i} s_j - s_{y_i}); mean over batch",
        "binary_hinge": "Keras hinge: labels 0/1 mapped to -1/+1, L = mean(max(0, 1 - t*s))",
        "kinks": "subgradient 0 at the kink (PyTorch strict '>'); no value here sits on a kink",
    }
    write("losses.json", {
        "description": "Loss functions: value and gradient wrt the prediction/scores.",
        "precision": PRECISION_NOTE,
        "layout": "prediction/target [batch, features]; logits/scores [batch, classes]; labels are integer class ids",
        "cases": cases,
    })


# ----------------------------------------------------------------------------- c. optimizers
MLP_SEED = 601


def mlp_init():
    r = rs(MLP_SEED)
    lim1 = math.sqrt(6.0 / (4 + 8))
    lim2 = math.sqrt(6.0 / (8 + 3))
    params = {
        "W1": f32(r.uniform(-lim1, lim1, (8, 4))),
        "b1": f32(r.uniform(-0.1, 0.1, (8,))),
        "W2": f32(r.uniform(-lim2, lim2, (3, 8))),
        "b2": f32(r.uniform(-0.1, 0.1, (3,))),
    }
    X = f32(r.normal(0, 1, (6, 4)))
    Y = np.array([0, 1, 2, 2, 1, 0], dtype=np.int64)
    return params, X, Y


PNAMES = ["W1", "b1", "W2", "b2"]


def mlp_loss(p, x, y):
    h = torch.tanh(F.linear(x, p["W1"], p["b1"]))
    z = F.linear(h, p["W2"], p["b2"])
    return F.cross_entropy(z, y)  # mean over the batch


def opt_specs():
    return {
        "sgd": dict(kind="sgd", lr=0.1),
        "sgd_momentum": dict(kind="sgd_momentum", lr=0.05, momentum=0.9),
        "sgd_nesterov": dict(kind="sgd_nesterov", lr=0.05, momentum=0.9),
        "sgd_time_decay": dict(kind="sgd", lr=0.1, decay=0.01),
        "sgd_momentum_time_decay_keras": dict(kind="sgd_momentum_keras", lr=0.05, momentum=0.9, decay=0.01),
        "sgd_momentum_time_decay_torch": dict(kind="sgd_momentum", lr=0.05, momentum=0.9, decay=0.01),
        "adam_keras": dict(kind="adam_keras", lr=0.01, beta1=0.9, beta2=0.999, eps=1e-7),
        "adam_torch": dict(kind="adam_torch", lr=0.01, beta1=0.9, beta2=0.999, eps=1e-7),
        "rmsprop_keras": dict(kind="rmsprop_keras", lr=0.01, rho=0.9, eps=1e-7),
        "rmsprop_torch": dict(kind="rmsprop_torch", lr=0.01, rho=0.9, eps=1e-7),
    }


OPT_DOC = {
    "common": "t = number of updates already applied (0 for the first update); g = gradient of the batch-mean loss; "
              "lr_t = lr/(1 + decay*t) when 'decay' is given, else lr. All state (v, m, buf) starts at 0.",
    "sgd": "theta -= lr_t * g",
    "sgd_momentum": "PyTorch form: buf = momentum*buf + g; theta -= lr_t*buf.  (Keras form v = momentum*v - lr*g; "
                    "theta += v is IDENTICAL when lr is constant, but differs when lr changes over time - see the "
                    "two *_time_decay_* cases)",
    "sgd_nesterov": "PyTorch form: buf = momentum*buf + g; theta -= lr*(g + momentum*buf)  "
                    "(== Keras: v = momentum*v - lr*g; theta += momentum*v - lr*g)",
    "sgd_momentum_keras": "Keras form: v = momentum*v - lr_t*g; theta += v",
    "adam_keras": "Keras/TF ('epsilon hat'): m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; "
                  "alpha = lr*sqrt(1-b2^(t+1))/(1-b1^(t+1)); theta -= alpha*m/(sqrt(v) + eps). Keras default eps 1e-7",
    "adam_torch": "PyTorch (Algorithm 1 of the paper): m_hat = m/(1-b1^(t+1)); v_hat = v/(1-b2^(t+1)); "
                  "theta -= lr*m_hat/(sqrt(v_hat) + eps). PyTorch default eps 1e-8; here eps = 1e-7 for comparison. "
                  "Keras == PyTorch with eps_torch = eps_keras/sqrt(1-b2^(t+1)) (31.6x larger at the first step)",
    "rmsprop_keras": "Keras 3: v = rho*v + (1-rho)*g^2; theta -= lr*g/sqrt(v + eps)  (eps INSIDE the sqrt; "
                     "Keras default rho 0.9, eps 1e-7)",
    "rmsprop_torch": "PyTorch: v = alpha*v + (1-alpha)*g^2; theta -= lr*g/(sqrt(v) + eps)  (eps OUTSIDE; "
                     "PyTorch defaults alpha 0.99, eps 1e-8; here alpha = rho = 0.9, eps = 1e-7)",
}


def run_optimizer(spec, params0, X, Y, dtype, steps=10):
    p = {k: tt(v, dtype, True) for k, v in params0.items()}
    x, y = tt(X, dtype), torch.tensor(Y)
    st = {k: {"m": torch.zeros_like(p[k]), "v": torch.zeros_like(p[k])} for k in p}
    snaps, losses = {}, []
    kind = spec["kind"]
    for t in range(steps):
        L = mlp_loss(p, x, y)
        losses.append(L.item())
        gs = torch.autograd.grad(L, [p[k] for k in PNAMES])
        lr = spec["lr"] / (1.0 + spec.get("decay", 0.0) * t)
        with torch.no_grad():
            for k, g in zip(PNAMES, gs):
                th, s = p[k], st[k]
                if kind == "sgd":
                    th -= lr * g
                elif kind == "sgd_momentum":
                    s["m"] = spec["momentum"] * s["m"] + g
                    th -= lr * s["m"]
                elif kind == "sgd_nesterov":
                    s["m"] = spec["momentum"] * s["m"] + g
                    th -= lr * (g + spec["momentum"] * s["m"])
                elif kind == "sgd_momentum_keras":
                    s["m"] = spec["momentum"] * s["m"] - lr * g
                    th += s["m"]
                elif kind in ("adam_keras", "adam_torch"):
                    b1, b2, eps = spec["beta1"], spec["beta2"], spec["eps"]
                    s["m"] = b1 * s["m"] + (1 - b1) * g
                    s["v"] = b2 * s["v"] + (1 - b2) * g * g
                    if kind == "adam_keras":
                        alpha = lr * math.sqrt(1 - b2 ** (t + 1)) / (1 - b1 ** (t + 1))
                        th -= alpha * s["m"] / (s["v"].sqrt() + eps)
                    else:
                        mh = s["m"] / (1 - b1 ** (t + 1))
                        vh = s["v"] / (1 - b2 ** (t + 1))
                        th -= lr * mh / (vh.sqrt() + eps)
                elif kind in ("rmsprop_keras", "rmsprop_torch"):
                    rho, eps = spec["rho"], spec["eps"]
                    s["v"] = rho * s["v"] + (1 - rho) * g * g
                    if kind == "rmsprop_keras":
                        th -= lr * g / (s["v"] + eps).sqrt()
                    else:
                        th -= lr * g / (s["v"].sqrt() + eps)
                else:
                    raise ValueError(kind)
        if t + 1 in (1, 2, 10):
            snaps[t + 1] = {k: p[k].detach().clone() for k in PNAMES}
    final_loss = mlp_loss(p, x, y).item()
    return snaps, losses, final_loss


def torch_optim_reference(name, spec, params0, X, Y, steps=10):
    """Same trajectory with torch.optim (float64), for the PyTorch-convention optimizers."""
    p = {k: tt(v, torch.float64, True) for k, v in params0.items()}
    plist = [p[k] for k in PNAMES]
    kind = spec["kind"]
    if kind == "sgd":
        opt = torch.optim.SGD(plist, lr=spec["lr"])
    elif kind == "sgd_momentum":
        opt = torch.optim.SGD(plist, lr=spec["lr"], momentum=spec["momentum"])
    elif kind == "sgd_nesterov":
        opt = torch.optim.SGD(plist, lr=spec["lr"], momentum=spec["momentum"], nesterov=True)
    elif kind == "adam_torch":
        opt = torch.optim.Adam(plist, lr=spec["lr"], betas=(spec["beta1"], spec["beta2"]), eps=spec["eps"])
    elif kind == "rmsprop_torch":
        opt = torch.optim.RMSprop(plist, lr=spec["lr"], alpha=spec["rho"], eps=spec["eps"])
    else:
        return None
    decay = spec.get("decay", 0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1.0 + decay * t))
    x, y = tt(X, torch.float64), torch.tensor(Y)
    for _ in range(steps):
        opt.zero_grad()
        mlp_loss(p, x, y).backward()
        opt.step()
        sched.step()
    return {k: p[k].detach() for k in PNAMES}


def keras_reference(name, spec, params0, X, Y, steps=10):
    """Same trajectory with real Keras 3 optimizers (float64 variables), for Keras-convention optimizers."""
    try:
        import keras
    except Exception as e:  # keras is optional
        return None, "keras not importable: %s" % e
    if keras.backend.backend() != "torch":
        return None, "keras backend is %s, need torch" % keras.backend.backend()
    kind = spec["kind"]
    lr = spec["lr"]
    if "decay" in spec:
        lr = keras.optimizers.schedules.InverseTimeDecay(spec["lr"], decay_steps=1, decay_rate=spec["decay"])
    if kind == "sgd":
        opt = keras.optimizers.SGD(learning_rate=lr)
    elif kind in ("sgd_momentum", "sgd_momentum_keras"):
        opt = keras.optimizers.SGD(learning_rate=lr, momentum=spec["momentum"])
    elif kind == "sgd_nesterov":
        opt = keras.optimizers.SGD(learning_rate=lr, momentum=spec["momentum"], nesterov=True)
    elif kind == "adam_keras":
        opt = keras.optimizers.Adam(learning_rate=lr, beta_1=spec["beta1"], beta_2=spec["beta2"], epsilon=spec["eps"])
    elif kind == "rmsprop_keras":
        opt = keras.optimizers.RMSprop(learning_rate=lr, rho=spec["rho"], epsilon=spec["eps"])
    else:
        return None, None
    vs = [keras.Variable(np.asarray(params0[k], dtype=np.float64), dtype="float64", name=k) for k in PNAMES]
    x, y = tt(X, torch.float64), torch.tensor(Y)
    for _ in range(steps):
        p = {k: torch.tensor(np.asarray(v.numpy(), dtype=np.float64), requires_grad=True) for k, v in zip(PNAMES, vs)}
        L = mlp_loss(p, x, y)
        gs = torch.autograd.grad(L, [p[k] for k in PNAMES])
        opt.apply_gradients(list(zip([g.detach() for g in gs], vs)))
    return {k: torch.tensor(np.asarray(v.numpy(), dtype=np.float64)) for k, v in zip(PNAMES, vs)}, \
        "keras %s (torch backend), float64 variables" % keras.__version__


def kind_matches_keras(spec):
    if spec["kind"] == "sgd_momentum" and "decay" in spec:
        return False
    return spec["kind"] in ("sgd", "sgd_momentum", "sgd_nesterov", "sgd_momentum_keras", "adam_keras", "rmsprop_keras")


def optimizer_trajectories():
    params0, X, Y = mlp_init()
    p = {k: tt(v, torch.float64, True) for k, v in params0.items()}
    L0 = mlp_loss(p, tt(X, torch.float64), torch.tensor(Y))
    g0 = torch.autograd.grad(L0, [p[k] for k in PNAMES])
    with torch.no_grad():
        h0 = torch.tanh(F.linear(tt(X, torch.float64), p["W1"], p["b1"]))
        z0 = F.linear(h0, p["W2"], p["b2"])
    runs = {}
    for name, spec in opt_specs().items():
        snaps, losses, final = run_optimizer(spec, params0, X, Y, torch.float64)
        snaps32, losses32, _ = run_optimizer(spec, params0, X, Y, torch.float32)
        diff32 = max((snaps[s][k] - snaps32[s][k].double()).abs().max().item() for s in snaps for k in PNAMES)
        entry = {"hyperparameters": {k: v for k, v in spec.items() if k != "kind"}, "update_rule": spec["kind"]}
        checks = []
        ref = torch_optim_reference(name, spec, params0, X, Y)
        if ref is not None:
            d = max((ref[k] - snaps[10][k]).abs().max().item() for k in PNAMES)
            assert d < 1e-12, (name, d)
            checks.append("torch.optim %s float64 after 10 steps: max abs diff %.1e" % (torch.__version__, d))
        kref, kdesc = keras_reference(name, spec, params0, X, Y)
        if kref is not None:
            d = max((kref[k] - snaps[10][k]).abs().max().item() for k in PNAMES)
            if kind_matches_keras(spec):
                assert d < 1e-6, (name, d)  # keras keeps lr (and hyper-params) as float32 -> ~1e-9 diffs
                checks.append("%s after 10 steps: max abs diff %.1e (Keras keeps lr as a float32 variable)"
                              % (kdesc, d))
            else:
                assert d > 1e-4, (name, d)
                checks.append("%s DIFFERS by design (Keras update rule is another one): max abs diff %.2g "
                              "after 10 steps" % (kdesc, d))
        elif kdesc:
            checks.append("keras check skipped: " + kdesc)
        entry["cross_checks"] = checks
        entry["loss_before_step"] = losses  # losses[t] = loss with the parameters before update t+1
        entry["loss_after_10_steps"] = final
        for s in (1, 2, 10):
            entry["params_after_%d_steps" % s] = {k: Tensor(snaps[s][k]) for k in PNAMES}
        entry["f32_torch_max_abs_diff"] = float("%.3g" % diff32)
        runs[name] = entry
    # magnitude of the Keras-vs-PyTorch Adam difference
    a = runs["adam_keras"]["params_after_10_steps"]
    b = runs["adam_torch"]["params_after_10_steps"]
    adam_gap = max(np.abs(a[k].a - b[k].a).max() for k in PNAMES)
    r = runs["rmsprop_keras"]["params_after_10_steps"]
    q = runs["rmsprop_torch"]["params_after_10_steps"]
    rms_gap = max(np.abs(r[k].a - q[k].a).max() for k in PNAMES)
    write("optimizers.json", {
        "description": "Optimizer trajectories on a fixed 4-8-3 MLP (tanh hidden, softmax + cross-entropy), "
                       "full batch of 6 samples, 10 updates.",
        "precision": PRECISION_NOTE.replace("over the case's outputs", "over the recorded parameters"),
        "model": "h = tanh(x @ W1^T + b1); z = h @ W2^T + b2; loss = mean_i cross_entropy(softmax(z_i), y_i). "
                 "W1 [8,4], b1 [8], W2 [3,8], b2 [3] (PyTorch [out,in] layout)",
        "init": "numpy RandomState(%d): W1 ~ U(+-sqrt(6/12)), b1 ~ U(+-0.1), W2 ~ U(+-sqrt(6/11)), b2 ~ U(+-0.1), "
                "then X ~ N(0,1) [6,4], all cast to f32 (values below are exact)" % MLP_SEED,
        "update_rules": OPT_DOC,
        "gotchas": {
            "adam_eps": "Keras puts eps on sqrt(v) without bias correction ('epsilon hat'), PyTorch on sqrt(v_hat). "
                        "With identical eps=1e-7 the two differ here by max |dtheta| = %.3g after 10 steps" % adam_gap,
            "rmsprop_eps": "Keras 3 uses sqrt(v + eps), PyTorch sqrt(v) + eps (and different default rho/alpha, eps); "
                           "here max |dtheta| = %.3g after 10 steps" % rms_gap,
            "momentum_with_decay": "Keras keeps lr inside the velocity, PyTorch multiplies the buffer by the current lr; "
                                   "only matters when lr varies (compare the two sgd_momentum_time_decay_* cases)",
        },
        "init_params": {k: Tensor(v) for k, v in params0.items()},
        "batch_x": Tensor(X), "batch_labels": IntTensor(Y),
        "init_hidden_activations": Tensor(h0), "init_logits": Tensor(z0),
        "init_loss": L0.item(),
        "init_grads": {k: Tensor(g) for k, g in zip(PNAMES, g0)},
        "runs": runs,
    })


# ----------------------------------------------------------------------------- d. XOR
XOR_SEED = 701


def xor_training():
    r = rs(XOR_SEED)
    params0 = {
        "W1": f32(r.uniform(-1, 1, (4, 2))), "b1": f32(r.uniform(-1, 1, (4,))),
        "W2": f32(r.uniform(-1, 1, (1, 4))), "b2": f32(r.uniform(-1, 1, (1,))),
    }
    X = f32([[0, 0], [0, 1], [1, 0], [1, 1]])
    T = f32([[0], [1], [1], [0]])
    lr, epochs = 0.5, 2000

    def train(dtype):
        p = {k: tt(v, dtype, True) for k, v in params0.items()}
        x, t = tt(X, dtype), tt(T, dtype)
        curve = []
        for ep in range(epochs + 1):
            y = torch.sigmoid(F.linear(torch.sigmoid(F.linear(x, p["W1"], p["b1"])), p["W2"], p["b2"]))
            L = ((y - t) ** 2).mean()
            if ep % 100 == 0:
                curve.append(L.item())
            if ep == epochs:
                break
            gs = torch.autograd.grad(L, [p[k] for k in PNAMES])
            with torch.no_grad():
                for k, g in zip(PNAMES, gs):
                    p[k] -= lr * g
        return p, y.detach(), curve

    p64, y64, c64 = train(torch.float64)
    p32, y32, c32 = train(torch.float32)
    diff = max([(p64[k] - p32[k].double()).abs().max().item() for k in PNAMES] +
               [(y64 - y32.double()).abs().max().item()])
    write("xor_training.json", {
        "description": "2-4-1 sigmoid network (with biases) trained on XOR, full batch, plain SGD.",
        "precision": PRECISION_NOTE.replace("over the case's outputs", "over final params and outputs"),
        "model": "h = sigmoid(x @ W1^T + b1); y = sigmoid(h @ W2^T + b2); W1 [4,2], b1 [4], W2 [1,4], b2 [1]",
        "loss": "MSE mean over the 4 samples: mean((y - t)^2) (PyTorch MSELoss; NOT 0.5*sum)",
        "optimizer": "theta -= lr * grad, lr = 0.5, one update per epoch on all 4 samples, %d epochs" % epochs,
        "init": "numpy RandomState(%d), every tensor ~ U(-1,1) in the order W1, b1, W2, b2, cast to f32" % XOR_SEED,
        "loss_curve_note": "loss_curve[i] = loss with the parameters after i*100 updates (i = 0..20; [0] is the "
                           "initial loss, [20] the final one)",
        "x": Tensor(X), "target": Tensor(T),
        "init_params": {k: Tensor(v) for k, v in params0.items()},
        "lr": lr, "epochs": epochs,
        "loss_curve": c64,
        "final_outputs": Tensor(y64),
        "final_params": {k: Tensor(p64[k]) for k in PNAMES},
        "f32_torch_max_abs_diff": float("%.3g" % diff),
        "f32_torch_loss_curve": c32,
    })
    print("xor loss curve:", ["%.4f" % v for v in c64])
    print("xor final outputs:", y64.flatten().tolist())


# ----------------------------------------------------------------------------- e. issue 10 layers
def conv1d_cases():
    cases = {}
    specs = [
        ("stride1_pad0", 3, 1, 0, 1, 1001),
        ("stride2_pad1", 3, 2, 1, 1, 1002),
        ("stride1_pad2_batch2", 3, 1, 2, 2, 1003),
        ("kernel5_stride3_pad2", 5, 3, 2, 1, 1004),
    ]
    for name, k, stride, pad, n, seed in specs:
        r = rs(seed)
        X = f32(r.uniform(-1, 1, (n, 2, 9)))
        W = f32(r.uniform(-0.5, 0.5, (3, 2, k)))
        b = f32(r.uniform(-0.2, 0.2, (3,)))
        lo = (9 + 2 * pad - k) // stride + 1
        GY = f32(r.uniform(-1, 1, (n, 3, lo)))

        def fn(dtype, X=X, W=W, b=b, GY=GY, stride=stride, pad=pad):
            x, w, bb = tt(X, dtype, True), tt(W, dtype, True), tt(b, dtype, True)
            y = F.conv1d(x, w, bb, stride=stride, padding=pad)
            gx, gw, gb = grads_of(y, [x, w, bb], tt(GY, dtype))
            return {"input": x.detach(), "weight": w.detach(), "bias": bb.detach(), "output": y.detach(),
                    "grad_output": tt(GY, dtype), "grad_input": gx, "grad_weight": gw, "grad_bias": gb}

        c = {"kernel": k, "stride": stride, "padding": pad}
        c.update(run_case(fn, {"output", "grad_input", "grad_weight", "grad_bias"}))
        cases[name] = c
    write("conv1d.json", {
        "description": "1-D convolution forward+backward (PyTorch nn.Conv1d): 2 input channels of length 9, "
                       "3 output channels, bias.",
        "precision": PRECISION_NOTE,
        "layout": "input [N, C_in, L] (channels first; the batch-1 cases are one [C_in, L] sequence); weight "
                  "[C_out, C_in, k] (a Keras Conv1D kernel is [k, C_in, C_out]); bias [C_out]; output "
                  "[N, C_out, L_out]; L_out = floor((L + 2*padding - k)/stride) + 1",
        "semantics": "cross-correlation: out[n,o,i] = b[o] + sum_{c,u} w[o,c,u] * in_padded[n,c,i*stride+u]",
        "backward": "grad_weight and grad_bias are SUMMED over the batch and all output positions",
        "cases": cases,
    })


def pool1d_cases():
    cases = {}
    r = rs(1101)
    X_ties = f32(np.stack([r.randint(0, 3, (8,)), [5, 5, 1, 2, 7, 7, 0, 0]]).reshape(1, 2, 8))
    X_noties = f32(r.permutation(16).reshape(1, 2, 8) * 0.25 - 2.0)
    X_odd = f32(r.uniform(-1, 1, (1, 2, 7)))
    X_batch = f32(r.uniform(-1, 1, (2, 3, 7)))
    specs = [
        ("maxpool1d_k2s2_ties", "max", 2, 2, X_ties),
        ("maxpool1d_k2s2_no_ties", "max", 2, 2, X_noties),
        ("maxpool1d_k3s2_odd_7", "max", 3, 2, X_odd),
        ("avgpool1d_k2s2_basic", "avg", 2, 2, X_ties),
        ("avgpool1d_k3s2_odd_7", "avg", 3, 2, X_odd),
        ("global_avgpool1d_batch2", "global", 7, 7, X_batch),
    ]
    for i, (name, kind, k, stride, X) in enumerate(specs):
        lo = 1 if kind == "global" else (X.shape[2] - k) // stride + 1
        shape = (X.shape[0], X.shape[1]) if kind == "global" else (X.shape[0], X.shape[1], lo)
        GY = f32(rs(1102 + i).uniform(-1, 1, shape))

        def fn(dtype, X=X, GY=GY, kind=kind, k=k, stride=stride):
            x = tt(X, dtype, True)
            if kind == "max":
                y = F.max_pool1d(x, k, stride)
            elif kind == "avg":
                y = F.avg_pool1d(x, k, stride)
            else:
                y = F.adaptive_avg_pool1d(x, 1).flatten(1)
            (gx,) = grads_of(y, [x], tt(GY, dtype))
            return {"input": x.detach(), "output": y.detach(), "grad_output": tt(GY, dtype), "grad_input": gx}
        c = {"kernel": k, "stride": stride}
        c.update(run_case(fn, {"output", "grad_input"}))
        cases[name] = c
    write("pooling1d.json", {
        "description": "1-D max and average pooling (no padding, floor mode) and global average pooling "
                       "(AdaptiveAvgPool1d(1) then flatten) on [N, C, L].",
        "precision": PRECISION_NOTE,
        "layout": "[N, C, L] (channels first); pooling is per channel; global pooling gives [N, C]",
        "maxpool_ties": "the whole upstream gradient of a window goes to the FIRST maximum inside the window "
                        "(PyTorch CPU)",
        "odd_sizes": "length 7 with k 3, stride 2 -> 3 overlapping windows; with k 2, stride 2 the last element "
                     "would be dropped",
        "cases": cases,
    })


def maxout_ref(x, w, b, o, k):
    """Maxout as tinytrain lays it out: nn.Linear(I, O*K), row o*K + j is piece j of output o."""
    z = F.linear(x, w, b)
    return z.view(x.shape[0], o, k).max(dim=-1)


def maxout_cases():
    cases = {}
    # random pieces
    r = rs(1201)
    I, O, K, N = 5, 3, 4, 3
    X = f32(r.uniform(-1, 1, (N, I)))
    W = f32(r.uniform(-0.5, 0.5, (O * K, I)))
    b = f32(r.uniform(-0.2, 0.2, (O * K,)))
    GY = f32(r.uniform(-1, 1, (N, O)))
    # ties: output 0 has pieces 0 and 2 equal (and largest), output 1 pieces 1 and 2
    r2 = rs(1202)
    I2, O2, K2, N2 = 4, 2, 3, 2
    X2 = f32(r2.uniform(-1, 1, (N2, I2)))
    W2 = f32(r2.uniform(-0.5, 0.5, (O2 * K2, I2)))
    b2 = f32(r2.uniform(-0.2, 0.2, (O2 * K2,)))
    W2[2] = W2[0]
    b2[0] = b2[2] = 5.0
    W2[5] = W2[4]
    b2[4] = b2[5] = 5.0
    GY2 = f32(r2.uniform(-1, 1, (N2, O2)))
    for name, (X_, W_, b_, GY_, o, k) in (("random_5_3x4_batch3", (X, W, b, GY, O, K)),
                                          ("ties_4_2x3_batch2", (X2, W2, b2, GY2, O2, K2))):
        def fn(dtype, X_=X_, W_=W_, b_=b_, GY_=GY_, o=o, k=k):
            x, w, bb = tt(X_, dtype, True), tt(W_, dtype, True), tt(b_, dtype, True)
            y, idx = maxout_ref(x, w, bb, o, k)
            gx, gw, gb = grads_of(y, [x, w, bb], tt(GY_, dtype))
            return {"input": x.detach(), "weight": w.detach(), "bias": bb.detach(), "output": y.detach(),
                    "winner": idx.detach(), "grad_output": tt(GY_, dtype), "grad_input": gx, "grad_weight": gw,
                    "grad_bias": gb}
        c = {"outputs": o, "pieces": k}
        c.update(run_case(fn, {"output", "grad_input", "grad_weight", "grad_bias"}))
        cases[name] = c
    w = cases["ties_4_2x3_batch2"]["winner"].a
    assert (w[:, 0] == 0).all() and (w[:, 1] == 1).all(), w  # first maximum on ties
    write("maxout.json", {
        "description": "Maxout (Goodfellow et al. 2013), y_o = max_j (W x + b)[o*K + j]: one nn.Linear(I, O*K), "
                       "then view [N, O, K] and max over the last axis.",
        "precision": PRECISION_NOTE,
        "layout": "weight [O*K, I] (row o*K + j is piece j of output o; a Keras kernel would be [I, O*K]); "
                  "bias [O*K]; input [N, I]; output [N, O]; winner [N, O] = index of the winning piece",
        "ties": "ties_4_2x3_batch2 has two identical, winning pieces per output; PyTorch CPU max(dim) picks the "
                "FIRST and the gradient goes to it only (checked when the file is made)",
        "backward": "grad_weight and grad_bias are SUMMED over the batch; only the winning rows get gradient",
        "cases": cases,
    })


BN_EPS = 1e-5


def batchnorm_cases():
    cases = {}
    for name, shape, seed in (("bn1d_4_batch3", (3, 4), 1301), ("bn2d_3x4x5_batch2", (2, 3, 4, 5), 1302),
                              ("bn1d_seq_3x7_batch2", (2, 3, 7), 1305)):
        r = rs(seed)
        C = shape[1]
        X = f32(r.normal(0.5, 2.0, shape))
        gamma = f32(r.uniform(0.5, 1.5, (C,)))
        beta = f32(r.uniform(-0.5, 0.5, (C,)))
        mean = f32(r.uniform(-1, 1, (C,)))
        var = f32(r.uniform(0.2, 3.0, (C,)))
        var[0] = np.float32(1e-3)  # eps matters here
        GY = f32(r.uniform(-1, 1, shape))

        def fn(dtype, X=X, gamma=gamma, beta=beta, mean=mean, var=var, GY=GY):
            x, g, bb = tt(X, dtype, True), tt(gamma, dtype, True), tt(beta, dtype, True)
            y = F.batch_norm(x, tt(mean, dtype), tt(var, dtype), g, bb, training=False, eps=BN_EPS)
            gx, gg, gb = grads_of(y, [x, g, bb], tt(GY, dtype))
            return {"input": x.detach(), "weight": g.detach(), "bias": bb.detach(), "running_mean": tt(mean, dtype),
                    "running_var": tt(var, dtype), "output": y.detach(), "grad_output": tt(GY, dtype),
                    "grad_input": gx, "grad_weight": gg, "grad_bias": gb}
        cases[name] = run_case(fn, {"output", "grad_input", "grad_weight", "grad_bias"})
    # statistics refresh, as torch.optim.swa_utils.update_bn sets them
    stats = {}
    for name, shape, batch, seed in (("update_bn_1d_3_n10_batch4", (10, 3), 4, 1303),
                                     ("update_bn_2d_2x3x3_n5_batch2", (5, 2, 3, 3), 2, 1304),
                                     ("update_bn_1d_seq_2x5_n7_batch3", (7, 2, 5), 3, 1306)):
        X = f32(rs(seed).normal(0.7, 1.5, shape))

        def fn(dtype, X=X, batch=batch, shape=shape):
            bn = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(shape[1]).to(dtype)
            bn.running_mean.fill_(3.0)  # update_bn resets them
            loader = [tt(X[i:i + batch], dtype) for i in range(0, len(X), batch)]
            torch.optim.swa_utils.update_bn(loader, bn)
            return {"input": tt(X, dtype), "running_mean": bn.running_mean.detach().clone(),
                    "running_var": bn.running_var.detach().clone()}
        c = {"batch_size": batch}
        c.update(run_case(fn, {"running_mean", "running_var"}))
        stats[name] = c
    write("batchnorm.json", {
        "description": "BatchNorm1d on [N, C] and on [N, C, L], BatchNorm2d on [N, C, H, W] in eval() mode (running statistics), "
                       "forward and backward; and the running statistics torch.optim.swa_utils.update_bn sets.",
        "precision": PRECISION_NOTE,
        "definition": "y = weight * (x - running_mean) / sqrt(running_var + eps) + bias per channel, eps = 1e-5 "
                      "(PyTorch default; momentum 0.1 plays no part in eval mode). Channel 0 has running_var 1e-3, "
                      "where eps matters",
        "backward": "grad_weight = sum dy * (x - mean)/sqrt(var + eps), grad_bias = sum dy (SUMMED over the batch and "
                    "positions); grad_input = dy * weight/sqrt(var + eps)",
        "update_bn": "update_bn resets the statistics, sets momentum=None (cumulative average) and runs the loader "
                     "in training mode: running_mean = mean over batches of the batch mean, running_var = mean over "
                     "batches of the batch's UNBIASED variance (n - 1, n = batch * H * W). The loader is the input "
                     "cut into batches of batch_size in order (the last one shorter)",
        "cases": cases,
        "update_bn_cases": stats,
    })


def main():
    print("torch", torch.__version__, "numpy", np.__version__)
    slide_example()
    dense_cases()
    activation_cases()
    conv_cases()
    pool_cases()
    loss_cases()
    optimizer_trajectories()
    xor_training()
    conv1d_cases()
    pool1d_cases()
    maxout_cases()
    batchnorm_cases()


if __name__ == "__main__":
    main()
