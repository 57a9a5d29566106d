"""`--plan`: the full tier's cost from harness/plan.py's cost model, without training or a GPU."""
from __future__ import annotations

import pytest
import torch

from harness import plan
from harness.cnn import CNNConfig
from harness.data import Dataset
from harness.train import RunConfig
from tests.helpers import claims_session


def shaped(side: int, channels: int, classes: int = 10) -> Dataset:
    """A dataset with the right image shape (the cost model reads nothing else)."""
    x = torch.zeros(2, channels, side, side, dtype=torch.uint8)
    y = torch.zeros(2, dtype=torch.long)
    return Dataset("shape", x, y, x, y, classes, "memory", "shape")


@pytest.mark.parametrize("run, models, ds, measured", [
    (RunConfig(width=4096), 25, shaped(28, 1), 12.5),
    (RunConfig(width=64), 20, shaped(28, 1), 7.3),
    (CNNConfig(), 42, shaped(32, 3), 38.0)])
def test_the_cost_model_reproduces_the_h100_measurements_it_was_calibrated_on(run, models, ds, measured):
    assert plan.epoch_seconds(run, ds, models) == pytest.approx(measured, rel=0.05)


def test_the_cost_model_never_under_estimates_a_small_group_by_more_than_5_percent():
    """20 MLPs 2x512 took 4.6 s per epoch: the step floor over-estimates it (7 s), the safe side."""
    assert 4.6 * 0.95 <= plan.epoch_seconds(RunConfig(width=512), shaped(28, 1), 20) <= 4.6 * 1.6


def test_plan_prints_an_estimated_plan_and_trains_nothing(tmp_path):
    out, store, reports = claims_session(tmp_path, "-m", "full", "--plan", "-k", "time_to_fit", timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 skipped" in out.stdout and "plan: no verdict" in out.stdout
    assert "| time to fit | 20 models, MLP 2x4096, n 50000 | H100 (estimate, cost model) |" in out.stdout
    assert "Estimated, not measured" in out.stdout
    assert not list(store.glob("*.npz")) and not reports.exists()
