"""`--dry-run`: every selected group trains a few epochs on the device, no test passes and nothing is
stored, and a plan of device-hours comes out."""
from __future__ import annotations

from tests.helpers import claims_session


def test_the_plan_adds_up_each_sweep_and_the_total():
    import conftest

    plan = conftest.dry_run_plan([
        {"sweep": "a", "group": "2 models", "device": "cpu", "s_per_epoch": 1.8, "budget_epochs": 1000, "hours": 0.5},
        {"sweep": "a", "group": "3 models", "device": "cpu", "s_per_epoch": 3.6, "budget_epochs": 1000, "hours": 1.0},
        {"sweep": "b", "group": "1 model", "device": "cpu", "s_per_epoch": 7.2, "budget_epochs": 500, "hours": 1.0}])
    assert "| a | 1.50 |" in plan and "| b | 1.00 |" in plan and "| **total** | **2.50** |" in plan


def test_a_dry_run_skips_every_test_stores_nothing_and_prints_the_plan(tmp_path):
    """Also under a memory budget too small for the whole group (0.05 GiB for 24 models of ~8 MB):
    it is timed in sub-batches."""
    out, store, reports = claims_session(tmp_path, "-m", "smoke", "--dry-run", "--memory-budget=0.05",
                                         "-k", "real_examples_are_fitted_before_random_labels")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 skipped" in out.stdout and "dry run: no verdict" in out.stdout
    assert "| learning order | 24 models, MLP 2x256" in out.stdout and "| **total** |" in out.stdout
    assert "sub-batches (the first timed, scaled by runs)" in out.stdout
    assert not list(store.glob("*.npz")) and not reports.exists()
