"""Every claim's negative control has a real null distribution: on many simulated data sets where the
effect is absent by construction but the variation between seeds is real, the claim module's own
control decision holds at most alpha of the time (plus 3 Monte Carlo standard errors) and more than
never (a control that cannot hold proves nothing; tests/test_controls.py shows each one can).

Null data follow each statistic's own null with a spread like the smoke tier's: epochs to fit
lognormal around 100 with a spread of 15% per seed (some censored at the budget), eigenvalues and
growth slopes Gaussian, capacity-needed curves with ties, C4's curve scores with a 2-point spread.
Cannot check: that the real replicates behind a control are independent (the designs make them so:
other seeds for subset, initialisation and data order).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from claims import test_capacity as c1
from claims import test_critical_samples as c8
from claims import test_example_difficulty as c6
from claims import test_learning_order as c5
from claims import test_regularization as c4
from claims import test_scaling as c2c
from claims import test_sharpness as c3
from claims import test_time_to_fit as c0
from harness.core import RunResult
from tests.helpers import tiny_run

ALPHA = 0.05
DRAWS = 1000  # null data sets per control: 3 standard errors at alpha 0.05 is 0.021
SEEDS = 8


def check(rate_of_holding: list[bool]) -> float:
    """The control's false-positive rate is at most alpha (3 Monte Carlo standard errors) and not 0."""
    held = np.asarray(rate_of_holding, bool)
    rate = float(held.mean())
    bound = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / len(held))
    assert 0 < rate <= bound, f"control held in {rate:.3f} of {len(held)} null data sets (bound {bound:.3f}, > 0)"
    return rate


def run(epochs: float, budget: float = 400, history=None, measures=None) -> RunResult:
    censored = epochs >= budget
    e = int(min(round(epochs), budget))
    history = history or {"train_acc": np.linspace(0.1, 0.99 if censored else 1.0, e)}
    return RunResult(tiny_run(), history, not censored, e, 0.0, 1.0, 0.0, {}, measures or {})


def test_c0_control_holds_at_most_alpha_when_the_tiny_net_fits_half_the_time():
    """C0's control: a network that fits random labels in half its seeds (the boundary of the null)."""
    rng = np.random.default_rng(0)
    held = [
        c0.fitted_completely(
            c0.Sweep("smoke", "x", {"tiny": [run(100 if f else 500) for f in fits]}, 0.0), "tiny"
        ).passed
        for fits in rng.random((DRAWS, SEEDS)) < 0.5
    ]
    check(held)


@pytest.mark.parametrize("censored", [False, True], ids=["uncensored", "some-censored"])
def test_c2_controls_hold_at_most_alpha_on_exchangeable_replicates(censored):
    """C2a/C2b's control: two real-data replicates, epochs to fit from one distribution per seed."""
    rng = np.random.default_rng(1)
    budget = 115 if censored else 400
    held = []
    for _ in range(DRAWS):
        a, b = rng.lognormal(math.log(100), 0.15, (2, SEEDS))
        s = c0.Sweep("smoke", "x", {"A": [run(x, budget) for x in a], "B": [run(x, budget) for x in b]}, 0.0)
        held.append(s.faster("A", "B").passed)
    check(held)


def test_c5_control_holds_at_most_alpha_when_both_halves_are_real():
    """C5's control: the sham's chosen half and the other half reach 90% at epochs from one distribution."""
    rng = np.random.default_rng(2)
    held = []
    for _ in range(DRAWS):
        results = []
        for clean, noise in rng.lognormal(math.log(30), 0.15, (SEEDS, 2)):
            epochs = np.arange(1, 201)
            history = {"train_acc_clean": (epochs >= clean) * 0.95, "train_acc_noise": (epochs >= noise) * 0.95}
            results.append(run(200, 400, history=history))
        held.append(c5.Order("smoke", "x", {"sham": results}, 0.0).clean_first("sham").passed)
    check(held)


def test_c2c_control_holds_at_most_alpha_when_replicates_share_real_datas_slope():
    """C2c's control: every condition's epochs grow with n at one slope, per-run noise 10%."""
    rng = np.random.default_rng(3)
    points, levels = (1600, 2263, 3200, 4525), (0.0, 0.4, 0.8)
    conditions = len(levels) + len(levels) - 1
    held = []
    for _ in range(DRAWS):
        log_epochs = 0.2 * np.log(points) + 4.0 + rng.normal(0, 0.1, (conditions, SEEDS, len(points)))
        panel = c2c.Panel("size", points, levels, np.exp(log_epochs), np.zeros(log_epochs.shape, bool))
        held.append(c2c.panel_verdicts(panel, +1)[2].passed)
    check(held)


def test_c3_control_holds_at_most_alpha_over_exchangeable_replicates():
    """C3's control: top eigenvalues of real data and its replicates from one distribution per seed."""
    rng = np.random.default_rng(4)
    levels = (0.0, 1 / 3, 2 / 3, 1.0)
    held = []
    for _ in range(DRAWS):
        cols = [[run(100, measures={"sharpness": x}) for x in rng.normal(55, 5, SEEDS)] for _ in levels]
        held.append(c3.Sweep("smoke", "x", levels, 0.0025, 0.1, {"control": cols}, 0.0).trend("control").passed)
    check(held)


def test_c1_control_holds_at_most_alpha_over_exchangeable_replicates_with_ties():
    """C1's control: each replicate's validation accuracy saturates at a random width (ties common),
    the same distribution for real data and every replicate."""
    rng = np.random.default_rng(5)
    widths, levels = (16, 32, 64, 128, 256), (0.0, 0.2, 0.4, 0.6, 0.8)
    conditions = 2 * len(levels) - 1
    held = []
    for _ in range(DRAWS):
        plateau = rng.integers(0, 4, (conditions, 5))  # index of the width where accuracy saturates
        final = 0.8 - 0.05 * np.clip(plateau[..., None] - np.arange(len(widths)), 0, None)
        final = final + rng.normal(0, 0.002, final.shape)
        curves = c1.Curves("randX", widths, levels, final, np.ones(final.shape, bool))
        held.append(c1.verdicts(curves, 0.01)[1].passed)
    check(held)


def test_c4_controls_hold_at_most_alpha_when_the_replicate_is_another_draw_of_dropout():
    """C4's controls: the dropout curve and its replicate are two draws of one curve, 2 points of
    real-label accuracy apart per seed and strength."""
    rng = np.random.default_rng(6)
    strengths = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)
    fit = np.array([1.0, 0.9, 0.75, 0.55, 0.35, 0.15])
    curve = np.array([0.66, 0.66, 0.65, 0.63, 0.6, 0.5])
    ranking, differential = [], []
    for _ in range(DRAWS):
        curves = ("dropout", "dropout, replicate", "input_dropout")
        x = {c: np.clip(fit + rng.normal(0, 0.02, (SEEDS, len(fit))), 0, 1) for c in curves}
        y = {c: curve + rng.normal(0, 0.02, (SEEDS, len(fit))) for c in x}
        s = c4.Sweep("smoke", "x", dict.fromkeys(x, strengths), x, y, 0.1, 0.0)
        ranking.append(c4.ranking_verdicts(s)[1].passed)
        differential.append(c4.differential_verdicts(s)[1].passed)
    check(ranking)
    check(differential)


def test_c8_control_holds_at_most_alpha_over_exchangeable_replicates():
    """C8's control: critical sample ratios of real data and its replicates from one distribution per seed."""
    rng = np.random.default_rng(8)
    levels = (0.0, 1 / 3, 2 / 3, 1.0)
    held = []
    for _ in range(DRAWS):
        cols = [[run(30, measures={"csr_val": x}) for x in rng.normal(0.35, 0.03, SEEDS)] for _ in levels]
        held.append(c8.Sweep("smoke", "x", levels, {"control": cols}, 0.0).trend("control").passed)
    check(held)


@pytest.mark.parametrize("minimum", [0.0, None], ids=["no-minimum", "claims-minimum"])
def test_c6_c9_controls_hold_at_most_alpha_on_exchangeable_replicate_sets(minimum):
    """C6/C9's control: per seed the two real-label replicate sets' statistics from one distribution,
    their differences symmetric around 0 with a spread three times the smoke tier's (0.05). Without
    a minimum the sign test alone holds at most alpha and sometimes; with the claims' minimum effects
    (0.1 agreement, 0.02 Gini), which a null of that spread rarely reaches, at most alpha."""
    from harness.examples import paired_difference_test

    rng = np.random.default_rng(9)
    for min_difference in (c6.MIN_AGREEMENT, c6.MIN_GINI) if minimum is None else (minimum,):
        a, b = rng.normal(0.5, 0.05 / math.sqrt(2), (2, DRAWS, SEEDS))
        held = [paired_difference_test(x, y, alpha=ALPHA, min_difference=min_difference).passed for x, y in zip(a, b)]
        if minimum is None:
            assert np.mean(held) <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / DRAWS)
        else:
            check(held)
