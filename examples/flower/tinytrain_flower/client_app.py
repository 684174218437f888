"""ClientApp: tinytrain trains the global model on this client's partition of the digits."""

import numpy as np
import tinytrain
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from tinytrain_flower.task import client_seed, data_dir, load_digits, partition

app = ClientApp()

_cache: dict = {}


def _partition_data(context: Context) -> tuple[np.ndarray, np.ndarray, int]:
    cfg = context.run_config
    pid = int(context.node_config["partition-id"])
    parts = int(context.node_config["num-partitions"])
    key = (str(cfg["data-dir"]), pid, parts, str(cfg["partition"]), int(cfg["classes-per-client"]), int(cfg["seed"]))
    if key not in _cache:
        x, y = load_digits(data_dir(str(cfg["data-dir"])), "train")
        idx = partition(y, parts, str(cfg["partition"]), int(cfg["classes-per-client"]), int(cfg["seed"]))[pid]
        _cache[key] = (x[idx], y[idx])
    x, y = _cache[key]
    return x, y, pid


def _model(context: Context, arrays: ArrayRecord) -> tinytrain.Model:
    model = tinytrain.Model(str(context.run_config["model"]))
    model.set_weights([(name, a.numpy()) for name, a in arrays.items()])
    return model


@app.train()
def train(msg: Message, context: Context) -> Message:
    cfg = context.run_config
    x, y, pid = _partition_data(context)
    model = _model(context, msg.content["arrays"])
    server_round = int(msg.content["config"]["server-round"])
    history = model.fit(
        x,
        y,
        epochs=int(cfg["local-epochs"]),
        batch_size=int(cfg["batch-size"]),
        optimizer=str(cfg["optimizer"]),
        lr=float(cfg["lr"]),
        seed=client_seed(int(cfg["seed"]), server_round, pid),
    )
    arrays = ArrayRecord({name: Array(a) for name, a in model.get_weights()})
    metrics = MetricRecord(
        {"train-loss": float(history[-1]["loss"]), "num-examples": len(y), "partition-id": pid}
    )
    return Message(content=RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    x, y, pid = _partition_data(context)
    loss, accuracy = _model(context, msg.content["arrays"]).evaluate(x, y)
    metrics = MetricRecord({"eval-loss": loss, "eval-acc": accuracy, "num-examples": len(y), "partition-id": pid})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
