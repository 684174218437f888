"""ServerApp: FedAvg or FedAdam over the tinytrain clients, the global model evaluated on the
digits test set after every round.

Determinism: Flower hands the replies over in the order they arrive, and a float sum depends
on its order, so the strategies here sort the replies by partition id before aggregating.
With the clients' seeds fixed per round and partition, the same seed gives the same global
weights, run to run, in simulation and in deployment.
"""

import json
import pathlib
import time

import numpy as np
import tinytrain
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAdam, FedAvg

from tinytrain_flower.task import data_dir, load_digits

app = ServerApp()


class SortedReplies:
    """Aggregates the replies in partition-id order, whatever order they arrived in, and keeps
    the global model in float32 (FedAdam's update is computed in float64)."""

    def aggregate_train(self, server_round, replies):
        replies = sorted(replies, key=lambda m: int(m.content["metrics"]["partition-id"]) if m.has_content() else -1)
        arrays, metrics = super().aggregate_train(server_round, replies)
        if arrays is not None:
            arrays = ArrayRecord({k: Array(a.numpy().astype(np.float32)) for k, a in arrays.items()})
        return arrays, metrics


class SortedFedAvg(SortedReplies, FedAvg):
    pass


class SortedFedAdam(SortedReplies, FedAdam):
    pass


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    rounds = int(cfg["num-server-rounds"])
    model = tinytrain.Model(str(cfg["model"]), seed=int(cfg["seed"]))
    x_test, y_test = load_digits(data_dir(str(cfg["data-dir"])), "test")
    # Every round trains on all clients; with min-clients set, the first round waits until that
    # many are connected (else a client that connects late would change round 1's average).
    expected = max(1, int(cfg["min-clients"]))
    common = dict(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=expected, min_available_nodes=expected)
    name = str(cfg["strategy"])
    if name == "fedavg":
        strategy = SortedFedAvg(**common)
    elif name == "fedadam":
        strategy = SortedFedAdam(**common, eta=float(cfg["server-lr"]), eta_l=float(cfg["lr"]), tau=1e-3)
    else:
        raise ValueError(f"strategy {name!r}: expected 'fedavg' or 'fedadam'")

    per_round = []
    start = time.time()

    def evaluate_global(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model.set_weights([(k, a.numpy()) for k, a in arrays.items()])
        loss, accuracy = model.evaluate(x_test, y_test)
        per_round.append({"round": server_round, "loss": loss, "accuracy": accuracy, "seconds": time.time() - start})
        return MetricRecord({"test-loss": loss, "test-accuracy": accuracy})

    initial = ArrayRecord({k: Array(a) for k, a in model.get_weights()})
    result = strategy.start(
        grid=grid,
        initial_arrays=initial,
        num_rounds=rounds,
        train_config=ConfigRecord({}),
        evaluate_fn=evaluate_global,
    )
    model.set_weights([(k, a.numpy()) for k, a in result.arrays.items()])
    nodes = len(list(grid.get_node_ids()))
    print(f"tinytrain-flower: {name}, {cfg['partition']}, {nodes} clients, final test accuracy {per_round[-1]['accuracy']:.4f}")
    if str(cfg["weights-file"]):
        model.save(str(cfg["weights-file"]))
    if str(cfg["results-file"]):
        out = {key: cfg[key] for key in cfg}
        out.update({"clients": nodes, "rounds": per_round, "seconds": time.time() - start})
        pathlib.Path(str(cfg["results-file"])).write_text(json.dumps(out, indent=1))
