"""harness.bench's accounting of the work it times."""

from __future__ import annotations

import pytest

from harness import bench
from harness.train import RunConfig


def test_a_step_of_25_paper_scale_mlps_moves_at_least_7_7_gb():
    """2x4096 on 784 inputs: 20.0 M parameters per model, read forward, read backward except the
    first layer's, read and written by the update: 76.9 M floats, 7.69 GB for 25 models."""
    assert bench.weight_bytes_per_step(RunConfig(width=4096), 784, 10, 25) / 1e9 == pytest.approx(7.69, abs=0.01)


def test_the_bench_prints_the_bound_and_how_close_the_trainer_comes(capsys):
    bench.main(["--width", "32", "--n", "256", "--n-val", "64", "--seeds", "2", "--epochs", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    assert "memory-traffic bound" in out and "of the bound's speed" in out and "ratio" in out
