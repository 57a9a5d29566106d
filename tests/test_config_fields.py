"""Every field of a run config changes what is computed: a field that silently does nothing is a
defect (a store key that differs for equal runs, or a setting a reader believes in that has no
effect). For each field, a base config where the field can matter and another value: the run's
numbers (history, fit, flip rate, weight norm, measures) must differ, or the config must be refused.

Cannot check: that the difference is the intended one (the trainers' own tests do that).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from harness.cnn import CNNConfig
from harness.core import train_to_end
from harness.kinds import kind_of
from tests.helpers import tiny_cnn, tiny_dataset

MLP_BASE = dict(dataset="tiny", n_train=60, n_val=30, width=16, lr=0.2, batch_size=16, max_epochs=4)
NOISY = dict(noise="randY", noise_fraction=0.5)
FITS = dict(width=64, lr=0.5, n_train=30, max_epochs=200)  # fits within its budget (stop_when_fitted matters)
# field: (overrides of the base where the field can matter, the other value)
MLP_FIELDS = {
    "dataset": ({}, "other"),
    "n_train": ({}, 61),
    "n_val": ({}, 31),
    "width": ({}, 17),
    "depth": ({}, 3),
    "lr": ({}, 0.21),
    "batch_size": ({}, 17),
    "max_epochs": ({}, 5),
    "noise": (NOISY, "randX"),
    "noise_fraction": (NOISY, 0.25),
    "seed": ({}, 1),
    "val_every": ({}, 2),
    "stop_when_fitted": (FITS, False),
    "sharpness": ({}, "power"),
    "pool": ({}, 2),
    "nested": ({}, True),
    "target_loss": ({}, 1.5),
}
CNN_FIELDS = {
    "dataset": ({}, "other"),
    "n_train": ({}, 41),
    "n_val": ({}, 21),
    "crop": ({}, 6),
    "downsample": ({}, 2),
    "channels": ({}, 5),
    "dense": ({}, (16, 9)),
    "lr": ({}, 0.06),
    "halve_every": ({}, 1),
    "momentum": ({}, 0.5),
    "batch_size": ({}, 9),
    "epochs": ({}, 4),
    "labels": ({}, "random"),
    "regularizer": (dict(regularizer="dropout", strength=0.3), "input_dropout"),
    "strength": (dict(regularizer="dropout", strength=0.3), 0.5),
    "seed": ({}, 1),
    "val_every": ({}, 2),
}


def outcome(config, ds) -> tuple:
    """What a run computes, as a comparable tuple; ('refused', message) for a config that is refused."""
    try:
        r = train_to_end(kind_of(config).group([config], ds, "cpu", torch.float64), None, None)[0]
    except ValueError as e:
        return ("refused", str(e))
    history = tuple((k, np.nan_to_num(v, nan=-1.0).tobytes()) for k, v in sorted(r.history.items()))
    return history, r.fitted, r.epochs_to_fit, r.label_flip_rate, r.weight_norm, tuple(sorted(r.measures.items()))


def test_every_field_of_each_config_is_covered():
    from harness.train import RunConfig

    assert set(MLP_FIELDS) == {f.name for f in dataclasses.fields(RunConfig)}
    assert set(CNN_FIELDS) == {f.name for f in dataclasses.fields(CNNConfig)}


@pytest.mark.parametrize("field", MLP_FIELDS)
def test_each_mlp_config_field_changes_what_a_run_computes(field):
    from harness.train import RunConfig

    overrides, other = MLP_FIELDS[field]
    base = RunConfig(**{**MLP_BASE, **overrides})
    ds = tiny_dataset()
    assert outcome(base, ds) != outcome(dataclasses.replace(base, **{field: other}), ds)


@pytest.mark.parametrize("field", CNN_FIELDS)
def test_each_cnn_config_field_changes_what_a_run_computes(field):
    overrides, other = CNN_FIELDS[field]
    base = tiny_cnn(**overrides)
    ds = tiny_dataset(n_train=80, n_val=40, side=8)
    assert outcome(base, ds) != outcome(dataclasses.replace(base, **{field: other}), ds)
