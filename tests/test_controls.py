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

from claims import test_capacity as c1
from claims import test_critical_samples as c8
from claims import test_example_difficulty as c6
from claims import test_learning_order as c5
from claims import test_regularization as c4
from claims import test_scaling as c2c
from claims import test_sharpness as c3
from claims import test_time_to_fit as c0
from claims import test_validation_peak as c7
from harness import measures
from harness.core import RunResult
from tests.helpers import tiny_run

SEEDS = 8


def result(fitted=True, epochs=10, history=None, measures=None) -> RunResult:
    history = history or {"train_acc": np.linspace(0.1, 1.0 if fitted else 0.5, epochs)}
    return RunResult(tiny_run(), history, fitted, epochs, 0.0, 1.0, 0.0, {}, measures or {})


def test_c0_control_fires_when_the_tiny_network_fits_random_labels():
    """C0: the control is the claim's own share test on a network too small to memorize; it passes
    when those runs report fitted (a broken fit criterion), not when they do not."""

    def sweep(fitted):
        return c0.Sweep("smoke", "x", {"labels: randY, tiny net": [result(fitted) for _ in range(SEEDS)]}, 0.0)

    assert c0.fitted_completely(sweep(True), "labels: randY, tiny net").passed
    assert not c0.fitted_completely(sweep(False), "labels: randY, tiny net").passed


@pytest.mark.parametrize(
    "slow, fast", [("labels: real, replicate", "labels: real"), ("real", "real, replicate")], ids=["C2a", "C2b"]
)
def test_c2_controls_fire_when_one_replicate_is_slower(slow, fast):
    """C2a/C2b: the replicate-against-replicate sign test passes when one replicate fits later in
    every seed, and not when both fit at the same epoch."""

    def sweep(late):
        return c0.Sweep(
            "smoke",
            "x",
            {slow: [result(epochs=late) for _ in range(SEEDS)], fast: [result(epochs=10) for _ in range(SEEDS)]},
            0.0,
        )

    assert sweep(20).faster(slow, fast).passed
    assert not sweep(10).faster(slow, fast).passed


def test_c5_control_fires_when_the_sham_half_is_fitted_later():
    """C5: the sham condition (the 'noise' half is real data) passes the claim's test if its chosen
    half reaches 90% later than the rest, and not if both halves move together."""

    def order(lag):
        ramp = np.linspace(0.5, 1.0, 30)
        history = {
            "train_acc_clean": ramp,
            "train_acc_noise": np.concatenate([np.full(lag, 0.5), ramp])[:30],
            "val_acc": ramp,
        }
        return c5.Order("smoke", "x", {"sham": [result(history=history) for _ in range(SEEDS)]}, 0.0)

    assert order(10).clean_first("sham").passed
    assert not order(0).clean_first("sham").passed


def test_c2c_control_fires_when_the_replicates_slow_down_more():
    """C2c: with the slope over n steeper on the real-data replicates than on the real data (a pipeline
    that treats a run by its place in the design), the control's sign test on growth per doubling
    passes; with replicates like real data it does not. The primary test behaves the same on the noise
    levels."""
    points, levels = (500, 1000, 2000, 4000), (0.0, 0.2, 0.4, 0.6, 0.8)
    g = np.random.default_rng(1)

    def panel(replicate_growth):
        slopes = np.concatenate([np.full(len(levels), 0.5), 0.5 + replicate_growth * np.arange(1, len(levels))])
        log_epochs = slopes[:, None, None] * np.log(points) + g.normal(0, 0.01, (len(slopes), SEEDS, len(points)))
        return c2c.Panel("size", points, levels, np.exp(log_epochs), np.zeros(log_epochs.shape, bool))

    assert c2c.panel_verdicts(panel(0.3), +1)[2].passed
    assert not c2c.panel_verdicts(panel(0.0), +1)[2].passed
    assert not c2c.panel_verdicts(panel(0.3), +1)[0].passed  # noise levels have real data's slope here


def test_c3_control_fires_when_sharpness_rises_over_the_replicates():
    """C3: the control's Page test over real data and its replicates passes when sharpness rises
    with the replicate's place, and not when it is flat."""

    def sweep(rise):
        cols = [[result(measures={"sharpness": 10.0 + rise * j + 0.01 * s}) for s in range(5)] for j in range(3)]
        return c3.Sweep("smoke", "x", (0.0, 0.5, 1.0), 0.1, 0.1, {"control": cols}, 0.0)

    assert sweep(2.0).trend("control").passed
    assert not sweep(0.0).trend("control").passed


def test_c1_control_fires_when_the_replicates_need_more_width():
    """C1: with accuracy saturating at ever larger widths across the replicates, the control's Page
    test on capacity needed passes; with the replicates equal to real data it does not."""
    widths, levels = (16, 32, 64, 128, 256), (0.0, 0.2, 0.4, 0.6, 0.8)

    def curves(shift):
        plateau_at = [0] * len(levels) + [shift * j for j in range(1, len(levels))]  # index of the saturating width
        best = np.array([[[0.8 if w >= p else 0.6 for w in range(len(widths))] for _ in range(5)] for p in plateau_at])
        return c1.Curves("randX", widths, levels, best, np.ones(best.shape, bool))

    assert c1.verdicts(curves(1), 0.02)[1].passed
    assert not c1.verdicts(curves(0), 0.02)[1].passed


def test_c4_controls_fire_when_the_dropout_replicate_differs_from_dropout():
    """C4: both controls compare an independent replicate of the dropout curve with dropout; they
    pass when the replicate keeps more real-label accuracy at the crossing, not when it matches."""
    strengths = (0.0, 0.3, 0.6, 0.9)
    fit = np.tile([1.0, 0.8, 0.4, 0.1], (SEEDS, 1))  # random-label fit crosses 50% between 0.6 and 0.9

    def sweep(replicate_val):
        val = {
            "dropout": np.tile([0.8, 0.75, 0.6, 0.2], (SEEDS, 1)),
            "dropout, replicate": np.tile(replicate_val, (SEEDS, 1)),
            "weight_decay": np.tile([0.8, 0.7, 0.5, 0.1], (SEEDS, 1)),
        }
        return c4.Sweep("smoke", "x", {c: strengths for c in val}, {c: fit for c in val}, val, 0.1, 0.0)

    better = sweep([0.8, 0.78, 0.7, 0.5])
    same = sweep([0.8, 0.75, 0.6, 0.2])
    assert c4.ranking_verdicts(better)[1].passed and c4.differential_verdicts(better)[1].passed
    assert not c4.ranking_verdicts(same)[1].passed and not c4.differential_verdicts(same)[1].passed


def test_c1_capacity_needed_handles_a_curve_that_dips_and_recovers():
    """Capacity needed is the first width within the tolerance of the best over widths, wherever the
    best lies: a dip after that width (double descent) does not move it, a best beyond the dip does."""
    widths, levels = (16, 32, 64, 128), (0.0,)
    final = np.array(
        [
            [
                [0.70, 0.80, 0.74, 0.805],  # dips at 64, recovers: 32 is within 1 point of the best
                [0.70, 0.75, 0.70, 0.80],
            ]
        ]
    )  # the best lies beyond the dip: 128
    c = c1.Curves("randY", widths, levels, final, np.ones(final.shape, bool))
    assert c.capacity_needed(0.01).tolist() == [[5.0, 7.0]]


def test_c1_a_run_still_moving_at_the_budget_is_unconverged():
    """Unfitted runs count as converged only if the median of their last quarter's validation checks
    is within the tolerance of the third quarter's, up or down; a single low check (SGD noise) moves
    neither median. Their final accuracy is the last quarter's median."""

    def run(*quarters, fitted=False):  # three epochs per quarter
        val = np.concatenate([np.array(q, float) for q in quarters])
        return RunResult(tiny_run(), {"val_acc": val}, fitted, len(val), 0.0, 1.0, 0.0)

    nan = float("nan")
    first, second = [0.4, nan, 0.5], [nan, nan, 0.6]
    dip = run(first, second, [0.6, 0.59, 0.605], [0.6, 0.45, 0.6])  # one low check in the last quarter
    assert measures.converged(dip, 0.01) and measures.final_val(dip) == 0.6
    assert not measures.converged(run(first, second, [0.6, 0.6, 0.6], [0.58, 0.57, 0.58]), 0.01)  # falling: memorizing
    assert not measures.converged(run(first, second, [0.6, 0.6, 0.6], [0.62, 0.62, 0.63]), 0.01)
    assert measures.converged(run([0.5, 0.3], fitted=True), 0.01)
    assert measures.final_val(run([0.5, 0.3], fitted=True)) == 0.3
    with pytest.raises(ValueError, match="val_every"):
        # none in the last quarter
        measures.final_val(run(first, second, [0.6, 0.6, 0.6], [0.6, nan, nan], [nan, nan, nan]))
    with pytest.raises(ValueError, match="val_every"):
        measures.converged(run(first, second, [nan, nan, nan], [0.6, 0.6, 0.6]), 0.01)  # none in the third


def test_c4_weak_form_misses_a_regularizer_without_a_differential_effect():
    """The weak form needs random-label fit to lose at least twice the share of its gain over chance
    that real-label accuracy loses: a 'dropout' that costs both the same share fails it (the first
    rule, any smaller share, passed such a regularizer whenever real accuracy kept 44% of its gain);
    one that leaves real accuracy nearly intact passes."""
    strengths, chance = (0.0, 0.3, 0.6, 0.9), 0.1
    fit = np.tile([1.0, 0.8, 0.4, 0.1], (SEEDS, 1))  # crosses 50% between 0.6 and 0.9: lost (1-0.5)/0.9 = 56%

    def sweep(dropout_val):
        val = {"dropout": np.tile(dropout_val, (SEEDS, 1)), "dropout, replicate": np.tile(dropout_val, (SEEDS, 1))}
        return c4.Sweep("smoke", "x", {c: strengths for c in val}, {c: fit for c in val}, val, chance, 0.0)

    same_share = sweep([0.82, 0.66, 0.35, 0.1])  # real accuracy's share lost equals random fit's at each point
    fit_lost, val_lost = c4.lost_share(same_share, "dropout")
    assert np.allclose(fit_lost, val_lost, atol=0.02)
    assert not c4.differential_verdicts(same_share)[0].passed
    assert c4.differential_verdicts(sweep([0.82, 0.81, 0.79, 0.7]))[0].passed


def test_c4_curve_score_is_the_mean_real_accuracy_over_the_shared_range():
    """The curve-level score averages real-label accuracy over the range of random-label fit every
    curve covers, interpolating between points sorted by fit."""
    x, y = np.array([1.0, 0.6, 0.2]), np.array([0.8, 0.7, 0.5])
    assert c4.mean_over(x, y, 0.2, 1.0) == pytest.approx((0.5 + 0.7) / 2 * 0.5 + (0.7 + 0.8) / 2 * 0.5, abs=1e-3)
    assert c4.mean_over(x[::-1], y[::-1], 0.6, 1.0) == pytest.approx(0.75, abs=1e-3)


def _examples(loss, grad) -> RunResult:
    n = len(loss)
    history = {
        "train_acc": np.full(3, 0.7),
        "example_loss": np.asarray(loss, float),
        "example_input_grad": np.asarray(grad, float),
        "example_learned_epoch": np.ones(n),
        "example_label": np.zeros(n, np.int16),
    }
    return result(history=history)


def test_c6_and_c9_controls_fire_when_the_second_real_replicates_differ():
    """C6/C9: the control compares real-label replicates with further real-label replicates; it passes
    when the second set disagrees on which examples are hard (C6) or spreads its sensitivity evenly
    (C9), and not when both sets are alike."""
    rng = np.random.default_rng(0)
    hard = rng.exponential(size=(SEEDS, 200))  # per seed, each example's difficulty

    def sweep(second_alike: bool):
        def runs(s, alike):
            return [
                _examples(
                    hard[s] + 0.3 * rng.normal(size=200) if alike else rng.exponential(size=200),
                    hard[s] ** 3 if alike else np.ones(200) + 0.01 * rng.random(200),
                )
                for _ in range(4)
            ]

        results = {
            "real": [runs(s, True) for s in range(SEEDS)],
            "real, replicates": [runs(s, second_alike) for s in range(SEEDS)],
        }
        return c6.Sweep("smoke", "x", "matched", results, 0.0)

    assert sweep(False).easy_examples("real, replicates").passed
    assert sweep(False).concentration("real, replicates").passed
    assert not sweep(True).easy_examples("real, replicates").passed
    assert not sweep(True).concentration("real, replicates").passed


def test_c7_control_fires_when_the_sham_half_is_fitted_after_the_validation_peak():
    """C7: on the sham, the rule passes if the chosen half reaches 50% after validation accuracy
    peaks and validation accuracy falls afterwards, and not when the chosen half fits at once."""

    def order(late: bool):
        epochs = np.arange(1, 61)
        clean = np.clip(epochs / 20, 0, 1)
        chosen = np.clip((epochs - 30) / 20, 0, 1) if late else clean
        val = np.where(epochs < 20, 0.5 + epochs / 100, 0.7 - (epochs - 20) / 400 if late else 0.7)
        history = {"train_acc_clean": clean, "train_acc_noise": chosen, "val_acc": val, "train_acc": clean}
        return c5.Order("smoke", "x", {"sham": [result(history=history) for _ in range(SEEDS)]}, 0.0)

    assert all(v.passed for v in c7.peak_first(order(True), "sham"))
    assert not any(v.passed for v in c7.peak_first(order(False), "sham"))


def test_c8_control_fires_when_the_ratio_rises_over_the_replicates():
    """C8: Page's L over real-data replicates passes when the ratio rises with the replicate index."""
    rng = np.random.default_rng(1)

    def sweep(slope):
        cols = [
            [
                result(measures={"csr_val": 0.3 + slope * j + 0.01 * rng.normal(), "csr_train": 0.3})
                for _ in range(SEEDS)
            ]
            for j in range(4)
        ]
        return c8.Sweep("smoke", "x", (0.0, 1 / 3, 2 / 3, 1.0), {"control": cols}, 0.0)

    assert sweep(0.1).trend("control").passed
    assert not sweep(0.0).trend("control").passed
