"""Every claim's negative control can fire: on a constructed case where the effect the control looks
for is present, the claim module's own control decision passes, and on the null case it does not.

A control that cannot pass proves nothing (a control that is impossible by construction would stay
silent through any pipeline bug). These tests feed each module's decision function with made-up
results, so nothing trains. Cannot check: that the real runs behind a control are the ones the
claim's docstring names (the claim modules build them).
"""
from __future__ import annotations

import numpy as np
import pytest

from claims import (test_capacity as c1, test_learning_order as c5, test_regularization as c4,
                    test_scaling as c2c, test_sharpness as c3, test_time_to_fit as c0)
from harness.train import RunResult
from tests.helpers import tiny_run

SEEDS = 8


def rng(*_):
    return np.random.default_rng(0)


def result(fitted=True, epochs=10, history=None, measures=None) -> RunResult:
    history = history or {"train_acc": np.linspace(0.1, 1.0 if fitted else 0.5, epochs)}
    return RunResult(tiny_run(), history, fitted, epochs, 0.0, 1.0, 0.0, {}, measures or {})


def test_c0_control_fires_when_the_tiny_network_fits_random_labels():
    """C0: the control is the claim's own share test on a network too small to memorize; it passes
    when those runs report fitted (a broken fit criterion), not when they do not."""
    def sweep(fitted):
        return c0.Sweep("smoke", "x", {"randY, tiny net": [result(fitted) for _ in range(SEEDS)]}, 0.0)
    assert c0.fitted_completely(sweep(True), "randY, tiny net").passed
    assert not c0.fitted_completely(sweep(False), "randY, tiny net").passed


@pytest.mark.parametrize("slow, fast", [("real, replicate", "real"), ("real", "real, replicate")],
                         ids=["C2a", "C2b"])
def test_c2_controls_fire_when_one_replicate_is_slower(slow, fast):
    """C2a/C2b: the replicate-against-replicate sign test passes when one replicate fits later in
    every seed, and not when both fit at the same epoch."""
    def sweep(late):
        return c0.Sweep("smoke", "x", {slow: [result(epochs=late) for _ in range(SEEDS)],
                                       fast: [result(epochs=10) for _ in range(SEEDS)]}, 0.0)
    assert sweep(20).faster(slow, fast, rng()).passed
    assert not sweep(10).faster(slow, fast, rng()).passed


def test_c5_control_fires_when_the_sham_half_is_fitted_later():
    """C5: the sham condition (the 'noise' half is real data) passes the claim's test if its chosen
    half reaches 90% later than the rest, and not if both halves move together."""
    def order(lag):
        ramp = np.linspace(0.5, 1.0, 30)
        history = {"train_acc_clean": ramp, "train_acc_noise": np.concatenate([np.full(lag, 0.5), ramp])[:30],
                   "val_acc": ramp}
        return c5.Order("smoke", "x", 30, {"sham": [result(history=history) for _ in range(SEEDS)]}, 0.0)
    assert order(10).clean_first("sham").passed
    assert not order(0).clean_first("sham").passed


def test_c2c_control_fires_when_sham_levels_slow_down_more():
    """C2c: with the slope over n growing across the sham levels (an artifact of the level), the
    control's Page test passes; with sham levels equal to real data it does not."""
    points, levels = (500, 1000, 2000, 4000), (0.0, 0.2, 0.4, 0.6, 0.8)
    g = np.random.default_rng(1)

    def panel(sham_growth):
        slopes = np.concatenate([np.full(len(levels), 0.5), 0.5 + sham_growth * np.arange(1, len(levels))])
        log_epochs = slopes[:, None, None] * np.log(points) + g.normal(0, 0.01, (len(slopes), 5, len(points)))
        return c2c.Panel("size", points, levels, np.exp(log_epochs), np.zeros(log_epochs.shape, bool))
    assert c2c.panel_verdicts(panel(0.3), +1, rng)[2].passed
    assert not c2c.panel_verdicts(panel(0.0), +1, rng)[2].passed


def test_c3_control_fires_when_sharpness_rises_over_sham_levels():
    """C3: the control's Page test over real data and its sham levels passes when sharpness rises
    with the sham level, and not when it is flat."""
    def sweep(rise):
        cols = [[result(measures={"sharpness": 10.0 + rise * j + 0.01 * s}) for s in range(5)] for j in range(3)]
        return c3.Sweep("smoke", "x", (0.0, 0.5, 1.0), 0.1, {"control": cols}, 0.0)
    assert sweep(2.0).trend("control").passed
    assert not sweep(0.0).trend("control").passed


def test_c1_control_fires_when_sham_levels_need_more_width():
    """C1: with accuracy saturating at ever larger widths across the sham levels, the control's
    Page test on capacity needed passes; with the sham levels equal to real data it does not."""
    widths, levels = (16, 32, 64, 128, 256), (0.0, 0.2, 0.4, 0.6, 0.8)

    def curves(shift):
        plateau_at = [0] * len(levels) + [shift * j for j in range(1, len(levels))]  # index of the saturating width
        best = np.array([[[0.8 if w >= p else 0.6 for w in range(len(widths))] for _ in range(5)]
                         for p in plateau_at])
        return c1.Curves("randX", widths, levels, best, np.ones(best.shape, bool))
    assert c1.verdicts(curves(1), 0.02, rng)[1].passed
    assert not c1.verdicts(curves(0), 0.02, rng)[1].passed


def test_c4_controls_fire_when_the_dropout_replicate_differs_from_dropout():
    """C4: both controls compare an independent replicate of the dropout curve with dropout; they
    pass when the replicate keeps more real-label accuracy at the crossing, not when it matches."""
    strengths = (0.0, 0.3, 0.6, 0.9)
    fit = np.tile([1.0, 0.8, 0.4, 0.1], (SEEDS, 1))  # random-label fit crosses 50% between 0.6 and 0.9

    def sweep(replicate_val):
        val = {"dropout": np.tile([0.8, 0.75, 0.6, 0.2], (SEEDS, 1)),
               "dropout, replicate": np.tile(replicate_val, (SEEDS, 1)),
               "weight_decay": np.tile([0.8, 0.7, 0.5, 0.1], (SEEDS, 1))}
        return c4.Sweep("smoke", "x", {c: strengths for c in val}, {c: fit for c in val}, val, 0.1, 0.0)
    better = sweep([0.8, 0.78, 0.7, 0.5])
    same = sweep([0.8, 0.75, 0.6, 0.2])
    assert c4.ranking_verdicts(better)[1].passed and c4.differential_verdicts(better)[1].passed
    assert not c4.ranking_verdicts(same)[1].passed and not c4.differential_verdicts(same)[1].passed
