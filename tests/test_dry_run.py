"""`--dry-run`: every selected group trains a few epochs on the device, no test passes and nothing is
stored, and a plan of device-hours comes out."""

from __future__ import annotations

import pytest

from tests.helpers import claims_session


def test_the_plan_adds_up_each_sweep_and_the_total():
    from harness.plan import PlanGroup, table

    plan = table(
        [
            PlanGroup("a", "2 models", "cpu", 1.8, 1000, 0.5),
            PlanGroup("a", "3 models", "cpu", 3.6, 1000, 1.0),
            PlanGroup("b", "1 model", "cpu", 7.2, 500, 1.0),
        ]
    )
    assert "| a | 1.50 |" in plan and "| b | 1.00 |" in plan and "| **total** | **2.50** |" in plan


def test_a_dry_run_skips_every_test_stores_nothing_and_prints_the_plan(tmp_path):
    """Also under a memory budget too small for the whole group (0.05 GiB for 24 models of ~8 MB):
    it is timed in sub-batches."""
    out, store, reports = claims_session(
        tmp_path,
        "-m",
        "smoke",
        "--dry-run",
        "--memory-budget=0.05",
        "-k",
        "real_examples_are_fitted_before_random_labels",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 skipped" in out.stdout and "dry run: no verdict" in out.stdout
    assert "| learning order | 24 models, MLP 2x256" in out.stdout and "| **total** |" in out.stdout
    assert "sub-batches (the first timed, scaled by runs)" in out.stdout
    assert not list(store.glob("*.npz")) and not reports.exists()


class TimedGroup:
    """A training group on a fake clock (harness.core's perf_counter patched to `clock`): step(n)
    costs `step_s(n)` seconds, an evaluation `eval_s`; nothing sleeps."""

    def __init__(self, monkeypatch, n_train: int, step_s, eval_s: float = 0.0):
        from types import SimpleNamespace

        from harness import core

        self.clock, self.step_s, self.eval_s = [0.0], step_s, eval_s
        self.c, self.evaluation_share = SimpleNamespace(n_train=n_train, batch_size=32), 1.0
        self.device = core.torch.device("cpu")
        monkeypatch.setattr(core.time, "perf_counter", lambda: self.clock[0])

    def precision(self):
        import contextlib

        return contextlib.nullcontext()

    def step(self, steps):
        self.clock[0] += self.step_s(steps)

    def evaluate(self, force):
        self.clock[0] += self.eval_s


def test_an_epoch_estimate_charges_the_per_call_cost_once_not_per_step(monkeypatch):
    """A group whose step() costs 30 ms per call (its epoch's data order) plus 0.1 ms per step, and
    whose evaluation costs 50 ms, at 1,563 batches: 0.03 + 0.1563 + 0.05 s per epoch, not the
    1.6 ms per step that 20 steps in one call would suggest (2.4 s)."""
    from harness.core import epoch_seconds

    group = TimedGroup(monkeypatch, 50_000, lambda n: 0.03 + 1e-4 * n, eval_s=0.05)
    assert epoch_seconds(group, 20) == pytest.approx(0.03 + 1e-4 * 1563 + 0.05)


def test_an_epoch_estimate_survives_timing_noise_that_hides_the_steps(monkeypatch):
    """When the longer call is timed no slower than the shorter one (noise: 40 ms against 50), the
    estimate charges the longer call's time per step to every step: an upper bound, never zero steps."""
    from harness.core import epoch_seconds

    group = TimedGroup(monkeypatch, 3200, lambda n: 0.05 if n == 20 else 0.04)
    assert epoch_seconds(group, 20) == pytest.approx(0.04 / 40 * 100)
