"""Small synthetic datasets and configs shared by the harness tests (no files, no network)."""

from __future__ import annotations

import torch

from harness.cnn import CNNConfig
from harness.data import Dataset
from harness.train import RunConfig


def tiny_dataset(n_train=200, n_val=100, side=4, classes=3, seed=0) -> Dataset:
    """Random uint8 'images' (N, 1, side, side) labelled by a fixed random linear teacher (learnable, balanced)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n_train + n_val, 1, side, side), generator=g, dtype=torch.uint8)
    teacher = torch.randn(side * side, classes, generator=g)
    y = ((x.flatten(1).float() - 127.5) @ teacher).argmax(1)
    return Dataset("tiny", x[:n_train], y[:n_train], x[n_train:], y[n_train:], classes, "memory", f"tiny{seed}")


def tiny_run(**overrides) -> RunConfig:
    base = dict(dataset="tiny", n_train=60, n_val=30, width=16, lr=0.2, batch_size=16, max_epochs=6)
    return RunConfig(**{**base, **overrides})


def tiny_cnn(**overrides) -> CNNConfig:
    base = dict(
        dataset="tiny",
        n_train=40,
        n_val=20,
        crop=8,
        channels=4,
        dense=(16, 8),
        lr=0.05,
        halve_every=2,
        batch_size=8,
        epochs=3,
    )
    return CNNConfig(**{**base, **overrides})


class Interrupted(Exception):
    """Stands for a process killed during training (resume tests)."""


def interrupt_at(epoch: int):
    """A progress callback that interrupts training when it reports `epoch`, i.e. before that epoch
    is checkpointed: the checkpoint then holds epoch - 1."""

    def progress(reported, *_):
        if reported == epoch:
            raise Interrupted

    return progress


def claims_session(tmp_path, *args, timeout=600):
    """`pytest claims --dataset=fashion-mnist *args` in a subprocess with its own store and report
    folder under tmp_path: (completed process, store, reports). Skips where Fashion-MNIST is absent."""
    import subprocess
    import sys
    from pathlib import Path

    import pytest

    from harness import data

    try:
        data.load("fashion-mnist", download=False)
    except data.DataError as e:
        pytest.skip(f"needs Fashion-MNIST on this machine: {e}")
    store, reports = tmp_path / "store", tmp_path / "reports"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "claims",
            "--dataset=fashion-mnist",
            "-p",
            "no:cacheprovider",
            f"--store={store}",
            f"--report-dir={reports}",
            "-rs",
            *args,
        ],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return out, store, reports
