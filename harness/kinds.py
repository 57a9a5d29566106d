"""The two kinds of training run, MLP and CNN, and the one place that tells them apart.

    kind = kind_of(config)                          # from a train.RunConfig or a cnn.CNNConfig
    group = kind.group(runs, ds, device)            # its harness.core.TrainingGroup
    kind.metrics, kind.memory(config, ds), kind.code, kind.forward_flops(config, ds)

Every config names its kind (its class attribute `kind`); everything that differs between the kinds
and is needed outside their trainers (store keys and files, memory sub-batches, the cost model,
progress words) comes from here, so no other module asks which class a config is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import CNN_CODE, MLP_CODE, cnn, train

Config = train.RunConfig | cnn.CNNConfig  # a run config of either kind


@dataclass(frozen=True)
class Kind:
    name: str  # "mlp" or "cnn", the configs' `kind`
    config: type  # its run config class
    group: Callable  # (runs, ds, device="cpu", dtype=float32) -> a TrainingGroup
    metrics: tuple[str, ...]  # the per-epoch history of each run
    memory: Callable  # (config, ds) -> (bytes a group needs once, bytes per run) on the device
    forward_flops: Callable  # (config, ds) -> FLOPs of one example's forward pass
    code: tuple[str, ...]  # harness modules whose code is part of its runs' store keys
    noun: str  # what its runs are called in progress lines


KINDS = {
    "mlp": Kind(
        "mlp", train.RunConfig, train.Group, train.METRICS, train.memory, train.forward_flops, MLP_CODE, "models"
    ),
    "cnn": Kind("cnn", cnn.CNNConfig, cnn.CNNGroup, cnn.METRICS, cnn.memory, cnn.forward_flops, CNN_CODE, "CNNs"),
}


def kind_of(config) -> Kind:
    """The Kind of a run config."""
    return KINDS[config.kind]
