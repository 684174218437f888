"""Runs the Flower app in Flower's simulation runtime and compares it with centralised training.

    python experiments.py --data ../../data --out ../../docs            # the README's runs
    python experiments.py --data ../../data --clients 4 --rounds 2 --quick  # CI: a short run

Starts its own `flower-superlink --simulation` on 127.0.0.1 (a free port, a private
FLWR_HOME), submits each configuration with `flwr run`, reads the per-round results the
ServerApp writes, trains the centralised baseline (the union of the client data, the same
optimizer, batch size and total epochs) through the bindings, checks that a repeated run gives
the same global weights bit for bit, and stops the SuperLink and everything it started.
"""

import argparse
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tinytrain_flower.task import load_digits  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} not healthy on 127.0.0.1:{port} after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    """Stops a process started in its own session, and its children, by its process group."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    else:
        try:  # children left behind by a process that already exited
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_config(overrides: dict) -> str:
    def value(v):
        return f"'{v}'" if isinstance(v, (str, pathlib.Path)) else str(v).lower() if isinstance(v, bool) else str(v)

    return " ".join(f"{k}={value(v)}" for k, v in overrides.items())


def flwr_run(home: pathlib.Path, connection: str, overrides: dict, log: pathlib.Path) -> float:
    """`flwr run` of the app against `connection`; returns the wall time in seconds."""
    env = dict(os.environ, FLWR_HOME=str(home), FLWR_DISABLE_UPDATE_CHECK="1")
    start = time.time()
    with open(log, "w") as out:
        subprocess.run(
            ["flwr", "run", str(HERE), connection, "--stream", "--run-config", run_config(overrides)],
            env=env, stdout=out, stderr=subprocess.STDOUT, check=True, timeout=3600,
        )
    return time.time() - start


def centralised(data: pathlib.Path, cfg: dict, epochs: int) -> list[float]:
    import tinytrain

    x, y = load_digits(data, "train")
    xt, yt = load_digits(data, "test")
    model = tinytrain.Model(cfg["model"], seed=cfg["seed"])
    history = model.fit(x, y, epochs=epochs, batch_size=cfg["batch-size"], optimizer=cfg["optimizer"],
                        lr=cfg["lr"], seed=cfg["seed"], validation_data=(xt, yt))
    return [h["val_accuracy"] for h in history]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, type=pathlib.Path, help="directory with the digits IDX files")
    ap.add_argument("--out", type=pathlib.Path, help="where flower.json and flower.png go")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--local-epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--optimizer", default="sgd")
    ap.add_argument("--lr", type=float, default=0.2)
    ap.add_argument("--server-lr", type=float, default=0.03)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="FedAvg IID twice and FedAdam non-IID once, no plot")
    args = ap.parse_args()
    data = args.data.resolve()

    work = pathlib.Path(tempfile.mkdtemp(prefix="tinytrain-flower-"))
    home = work / "flwr-home"
    home.mkdir()
    port = free_port()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "sim"\n\n[superlink.sim]\naddress = "127.0.0.1:{port}"\ninsecure = true\n'
        f"options.num-supernodes = {args.clients}\n"
    )
    env = dict(os.environ, FLWR_HOME=str(home), FLWR_DISABLE_UPDATE_CHECK="1")
    superlink = subprocess.Popen(
        ["flower-superlink", "--insecure", "--simulation", "--isolation", "subprocess",
         "--disable-runtime-dependency-installation", "--host", "127.0.0.1", "--port", str(port),
         "--database", str(work / "state.db")],
        env=env, stdout=open(work / "superlink.log", "w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = {
        "model": "digits-mlp", "num-server-rounds": args.rounds, "local-epochs": args.local_epochs,
        "batch-size": args.batch_size, "optimizer": args.optimizer, "lr": args.lr, "server-lr": args.server_lr,
        "seed": args.seed, "data-dir": str(data), "classes-per-client": 2, "min-clients": args.clients,
    }
    runs = [("fedavg", "iid"), ("fedavg", "non-iid"), ("fedadam", "iid"), ("fedadam", "non-iid")]
    if args.quick:
        runs = [("fedavg", "iid"), ("fedadam", "non-iid")]
    shown = {k: v for k, v in base.items() if k != "data-dir"}  # no local paths in the results
    results = {"config": dict(shown, clients=args.clients), "runs": {}}
    try:
        wait_healthy(port, superlink, "flower-superlink")
        for strategy, part in runs + [("fedavg", "iid-repeat")]:
            name = f"{strategy}-{part}"
            cfg = dict(base, strategy=strategy, partition=part.replace("-repeat", ""),
                       **{"results-file": str(work / f"{name}.json"), "weights-file": str(work / f"{name}.ttw")})
            seconds = flwr_run(home, "sim", cfg, work / f"{name}.log")
            r = json.loads((work / f"{name}.json").read_text())
            acc = [p["accuracy"] for p in r["rounds"]]
            results["runs"][name] = {"accuracy": acc, "seconds": seconds, "clients": r["clients"]}
            print(f"{name}: {r['clients']} clients, accuracy per round {' '.join(f'{a:.4f}' for a in acc)}, "
                  f"{seconds:.0f} s", flush=True)
    finally:
        stop(superlink)
    same = (work / "fedavg-iid.ttw").read_bytes() == (work / "fedavg-iid-repeat.ttw").read_bytes()
    results["repeat_identical"] = same
    print(f"repeated FedAvg IID run: global weights {'identical' if same else 'DIFFERENT'}")
    epochs = args.rounds * args.local_epochs
    central = centralised(data, base, epochs)
    results["centralised"] = central
    print(f"centralised, {epochs} epochs: {central[-1]:.4f}")
    if not same:
        sys.exit("the repeated run gave other weights")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "flower.json").write_text(json.dumps(results, indent=1))
        plot(results, args.out / "flower.png")
    shutil.rmtree(work, ignore_errors=True)


def plot(results: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = results["config"]
    fig, ax = plt.subplots(figsize=(8, 5))
    styles = {"fedavg-iid": "C0-", "fedavg-non-iid": "C0--", "fedadam-iid": "C1-", "fedadam-non-iid": "C1--"}
    for name, style in styles.items():
        if name in results["runs"]:
            acc = results["runs"][name]["accuracy"]  # round 0 is the initial model
            ax.plot(range(len(acc)), acc, style, label=name.replace("-", " ", 1))
    central = results["centralised"]
    ax.plot(np.arange(1, len(central) + 1) / cfg["local-epochs"], central, "k:", label="centralised (per epoch)")
    ax.set_xlabel("round (centralised: epochs / local epochs)")
    ax.set_ylabel("test accuracy (360 digits)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(f"digits-mlp, {cfg['clients']} Flower clients, {cfg['optimizer']} lr {cfg['lr']} batch {cfg['batch-size']}, "
                 f"{cfg['local-epochs']} local epoch(s)/round", fontsize=9)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
