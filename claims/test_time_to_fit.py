"""Claims C0, C2a, C2b: how long an MLP takes to fit real data, random labels and random inputs.

C0 (Zhang et al. 2017): an MLP "can fit completely random labels" to 100% training accuracy. C2a
(abstract): "time to convergence" (epochs to 100% training accuracy) "is longer with random labels"
... C2b: "... but shorter with random inputs", and (beyond the paper's words, Zhang et al.'s Fig. 1a)
shorter than with random labels too.
Statistic: epochs to 100% training accuracy per seed, right-censored at the budget; seeds are paired
blocks (same subset, initialisation and data order in every condition). Alpha 0.05.
- C0: exact one-sided binomial test that a seed fits random labels (against 1/2); minimum share 0.8.
  Control: the same test on a 2x4 network, too small to memorize them.
- C2a: censoring-aware exact sign test that randY needs more epochs than real; minimum median ratio
  1.2 (absent: an exact sign test that most seeds' ratio is below 1.2). Control: two independent
  real-data replicates (seeds + 10^9).
- C2b: intersection-union of two such tests (randX faster than real, and than randY). Control: the
  replicates the other way round.
Seeds: 8 smoke, 8 full. Design and reasons: docs/design.md#c0-c2a-c2b-time-to-fit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

from harness import report, stats
from harness.core import RunResult
from harness.tiers import tier_params

PAPER_DATASET = "mnist"
ALPHA = 0.05
MIN_RATIO = 1.2  # slower condition needs >= 20% more epochs (median over seeds)
MIN_SHARE = 0.8  # C0: share of seeds that reach 100% on random labels
REPLICATE = 10**9  # seed offset of the independent real-data replicate (negative controls)
CONTROL_WIDTH = 4  # C0's control: hidden units per layer of a network too small to memorize
CONDITIONS = {  # name: (tier setting, noise, fraction, seed offset, width; None = the setting's)
    "real": ("time_to_fit", "none", 0.0, 0, None),  # C2b
    "randY": ("time_to_fit", "randY", 1.0, 0, None),
    "randX": ("time_to_fit", "randX", 1.0, 0, None),
    "real, replicate": ("time_to_fit", "none", 0.0, REPLICATE, None),
    "labels: real": ("labels", "none", 0.0, 0, None),  # C0, C2a
    "labels: randY": ("labels", "randY", 1.0, 0, None),
    "labels: real, replicate": ("labels", "none", 0.0, REPLICATE, None),
    "labels: randY, tiny net": ("labels", "randY", 1.0, 0, CONTROL_WIDTH),
}
TIERS = tier_params()


@dataclass
class Sweep:
    tier: str
    dataset: str
    results: dict[str, list[RunResult]]  # condition -> one result per seed, seeds in order
    compute_s: float  # training time of all runs (stored or fresh)

    def epochs(self, condition: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs to fit, censored) per seed; censored runs carry the budget."""
        rs = self.results[condition]
        return np.array([r.epochs_to_fit for r in rs]), np.array([not r.fitted for r in rs])

    def faster(self, slow: str, fast: str) -> stats.Verdict:
        (s, sc), (f, fc) = self.epochs(slow), self.epochs(fast)
        return stats.censored_sign_test(s, f, sc, fc, alpha=ALPHA, min_ratio=MIN_RATIO)


def sweep(claims, tier: str) -> Sweep:
    t, seeds = claims.tier(tier), claims.seeds(tier)

    def design(dataset):
        runs = {}
        for c, (setting, k, f, off, w) in CONDITIONS.items():
            base = dataclasses.replace(getattr(t, setting), dataset=dataset)
            runs[c] = [
                dataclasses.replace(base, noise=k, noise_fraction=f, seed=s + off, width=w or base.width) for s in seeds
            ]
        return runs  # the full tier's settings coincide: shared runs train once

    trained = claims.sweep("time to fit", tier, PAPER_DATASET, design)
    return Sweep(tier, trained.dataset, trained.results, trained.compute_s)


def figures(s: Sweep, t) -> dict:
    """The sweep's figure: training accuracy by epoch per condition (t: the tier's settings)."""

    def plot(path):
        shown = ("real", "randY", "randX", "labels: real", "labels: randY")
        longest = max(r.epochs_run for c in shown for r in s.results[c])
        base, labels = t.time_to_fit, t.labels
        report.plot_curves(
            {c: report.padded([r.history["train_acc"] for r in s.results[c]], longest) for c in shown},
            path,
            f"Time to fit, {s.dataset}, 2x{base.width} MLP, lr {base.lr}; n {base.n_train}, "
            f"pool {base.pool} (labels: n {labels.n_train}, pool {labels.pool})",
        )

    return {"time_to_fit.png": plot}


def _describe(sweep: Sweep, condition: str) -> str:
    e, c = sweep.epochs(condition)
    return f"{condition}: " + ", ".join(f"{v}{'+' if cen else ''}" for v, cen in zip(e, c))


def fitted_completely(s: Sweep, condition: str) -> stats.Verdict:
    """C0's decision (and, on the tiny network, its control): most seeds fit random labels."""
    return stats.share_test([r.fitted for r in s.results[condition]], alpha=ALPHA, min_share=MIN_SHARE)


@pytest.mark.parametrize("tier", TIERS)
def test_random_labels_are_fitted_completely(tier, claims, decide):
    """C0: with every label random, the MLP still reaches 100% training accuracy in most seeds."""
    s = sweep(claims, tier)
    v, control = fitted_completely(s, "labels: randY"), fitted_completely(s, "labels: randY, tiny net")
    final = lambda c: ", ".join(f"{r.history['train_acc'][-1]:.3f}" for r in s.results[c])  # noqa: E731
    flips = np.mean([r.label_flip_rate for r in s.results["labels: randY"]])
    note = (
        f"epochs to 100% ({_describe(s, 'labels: randY')}); final train accuracy {final('labels: randY')}; "
        f"labels changed {flips:.1%}"
    )
    decide(
        "C0",
        v,
        control,
        tier=tier,
        dataset=s.dataset,
        note=note,
        compute_s=s.compute_s,
        figures=figures(s, claims.tier(tier)),
        control_note=f"random labels on a 2x{CONTROL_WIDTH} network, too small to memorize them; final train "
        f"accuracy {final('labels: randY, tiny net')}",
    )


@pytest.mark.parametrize("tier", TIERS)
def test_random_labels_take_longer_to_fit(tier, claims, decide):
    """C2a: in every seed, random labels need more epochs to reach 100% than real labels."""
    s = sweep(claims, tier)
    v = s.faster("labels: randY", "labels: real")
    control = s.faster("labels: real, replicate", "labels: real")
    note = f"{_describe(s, 'labels: randY')}; {_describe(s, 'labels: real')} (+ = censored at the budget)"
    decide(
        "C2a",
        v,
        control,
        tier=tier,
        dataset=s.dataset,
        note=note,
        compute_s=s.compute_s,
        figures=figures(s, claims.tier(tier)),
        control_note=f"two independent real-data replicates; {_describe(s, 'labels: real, replicate')}",
    )


@pytest.mark.parametrize("tier", TIERS)
def test_random_inputs_are_fitted_faster(tier, claims, decide):
    """C2b (beyond the paper's abstract in its second half: Zhang et al.'s Fig. 1a): in every seed,
    Gaussian inputs reach 100% sooner than real data and than random labels."""
    s = sweep(claims, tier)
    v = stats.all_of([s.faster("real", "randX"), s.faster("randY", "randX")], "randX faster than real and than randY")
    control = s.faster("real", "real, replicate")
    note = f"{_describe(s, 'randX')}; {_describe(s, 'real')}; {_describe(s, 'randY')}"
    decide(
        "C2b",
        v,
        control,
        tier=tier,
        dataset=s.dataset,
        note=note,
        compute_s=s.compute_s,
        figures=figures(s, claims.tier(tier)),
        control_note=f"replicate A against B; {_describe(s, 'real, replicate')}",
    )
