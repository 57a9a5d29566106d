"""Claim C7, extended paper (Arpit et al., ICML 2017): with random labels in the training set,
validation accuracy peaks before the noise is memorized, and falls as it is.

Runs: C5's (claims/test_learning_order.py), half the training labels random, the other half real.
Statistic, per seed: (1) the first epoch at which the noise half reaches 50% training accuracy
(right-censored at the run's end) against the epoch of best validation accuracy; (2) the best
validation accuracy minus the validation accuracy where the run ends. Decision (alpha 0.05): (1)
censoring-aware exact one-sided sign test that the noise half needs more epochs, minimum median
ratio 1.2, and (2) exact one-sided sign test of the drop, minimum median 0.05: five points, about
four standard errors of one check on 1,000 validation examples, twice what the best of 25 checks
exceeds the true level by through noise alone. The claim holds when both do.
Control: the same rule, both parts, on C5's sham condition, whose "noise" half keeps its real labels.
Seeds: 8 smoke, 8 full (C5's). Design and reasons: docs/design.md#the-extended-papers-claims.
"""

from __future__ import annotations

import numpy as np
import pytest

from claims.test_learning_order import Order, learning_order
from harness import report, stats
from harness.examples import paired_difference_test
from harness.measures import final_val, first_epoch
from harness.tiers import tier_params

ALPHA = 0.05
MIN_RATIO = 1.2  # the noise half reaches NOISE_FIT at least 20% later than validation accuracy peaks
NOISE_FIT = 0.5  # training accuracy of the noise half that counts as memorization under way
MIN_DROP = 0.05  # the best validation accuracy exceeds the final one by this (median over seeds)
TIERS = tier_params()


def peak_epochs(o: Order, condition: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per seed: (epoch of best validation accuracy, first epoch the noise half reaches NOISE_FIT, censored)."""
    runs = o.results[condition]
    best = np.array([int(np.nanargmax(r.history["val_acc"])) + 1 for r in runs])
    noise = [first_epoch(r.history["train_acc_noise"], NOISE_FIT) for r in runs]
    return best, np.array([e for e, _ in noise]), np.array([c for _, c in noise])


def drops(o: Order, condition: str) -> tuple[np.ndarray, np.ndarray]:
    """Per seed: (best validation accuracy over the checks, validation accuracy where the run ends)."""
    runs = o.results[condition]
    return np.array([np.nanmax(r.history["val_acc"]) for r in runs]), np.array([final_val(r) for r in runs])


def peak_first(o: Order, condition: str) -> tuple[stats.Verdict, stats.Verdict]:
    """(validation peaks before the noise half reaches NOISE_FIT, validation accuracy falls from its peak)."""
    best, noise, censored = peak_epochs(o, condition)
    order = stats.censored_sign_test(noise, best, censored, np.zeros(len(best), bool), alpha=ALPHA, min_ratio=MIN_RATIO)
    return order, paired_difference_test(*drops(o, condition), alpha=ALPHA, min_difference=MIN_DROP)


def describe(o: Order, condition: str) -> str:
    best, noise, censored = peak_epochs(o, condition)
    fmt = ", ".join(f"{b}/{e}{'+' if c else ''}" for b, e, c in zip(best, noise, censored))
    peak, end = drops(o, condition)
    fall = ", ".join(f"{p:.3f}/{e:.3f}" for p, e in zip(peak, end))
    return (
        f"epoch of best validation accuracy / epoch the noise half reaches {NOISE_FIT:.0%}: {fmt}; best / final "
        f"validation accuracy: {fall}"
    )


def figures(o: Order, run) -> dict:
    def plot(path):
        longest = max(r.epochs_run for r in o.results["randY"])
        curves = {
            "validation accuracy": report.padded([_filled(r.history["val_acc"]) for r in o.results["randY"]], longest),
            "noise half, training accuracy": report.padded(
                [r.history["train_acc_noise"] for r in o.results["randY"]], longest
            ),
        }
        report.plot_curves(
            curves,
            path,
            f"Validation peak, {o.dataset}, half the labels random, {run.n_train} examples, 2x{run.width} MLP",
            ylabel="accuracy",
        )

    return {"validation_peak.png": plot}


def _filled(val: np.ndarray) -> np.ndarray:
    """Validation accuracy carried forward between checks (for the figure)."""
    idx = np.where(~np.isnan(val), np.arange(len(val)), 0)
    return val[np.maximum.accumulate(idx)]


@pytest.mark.parametrize("tier", TIERS)
def test_validation_accuracy_peaks_before_random_labels_are_memorized(tier, claims, decide):
    """C7: validation accuracy is best before the random-label half is half fitted, and falls after."""
    o = learning_order(claims, tier)
    order, fall = peak_first(o, "randY")
    decide(
        "C7",
        order,
        stats.all_of(list(peak_first(o, "sham")), "the sham's peak before its chosen half fits, and its fall"),
        tier=tier,
        dataset=o.dataset,
        note=f"randY: {describe(o, 'randY')}",
        control_note=f"sham (the 'noise' half keeps its labels): {describe(o, 'sham')}",
        compute_s=o.compute_s,
        parts=(("validation accuracy falls from its peak", fall),),
        figures=figures(o, claims.tier(tier).time_to_fit),
    )
