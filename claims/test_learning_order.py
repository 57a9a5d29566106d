"""Claim C5 (the paper's thesis): real examples are fitted before noise examples.

"DNNs ... first learn and then refine simple patterns, which are shared across examples, and only
incorporate more case-by-case memorization as a later resort" (introduction; measured directly in
the extended version, Arpit et al. 2017). In a training set where half of the examples are noise,
the real (clean) examples reach high training accuracy earlier than the noise examples.

Design: the time-to-fit tier settings (harness/tiers.py) with 50% of the training examples replaced
by noise, randY (random labels) and randX (Gaussian inputs) separately, and a sham condition that
picks the same 50% but leaves them unchanged (negative control). Seed s has the same subset, init,
data order and noise examples in every condition. Statistic, per seed: the first epoch at which the
clean subset reaches THRESHOLD training accuracy, and the same for the noise subset; right-censored
at the budget. In the smoke tier (14x14 images, d = 196, n = 2,000) the randX half has 1,000 Gaussian
inputs, 5.1 d: beyond the n = 2d where they would be linearly separable under any labelling.
The randX verdict goes beyond the paper, whose extended version measures the order with label noise.
It is contradicted with the paper's noise model, i.i.d. Gaussian pixels, which are easy to separate.
A pilot (seeds 1000-1007, docs/design.md; docs/pilots/structured_noise.py) drew the noise inputs
from a Gaussian with the training split's per-pixel mean and covariance instead, which keeps the
pixel correlations of images: the clean half then reached 90% first in 8 of 8 seeds (noise/clean
ratio 1.45, against 0.64 and 0 of 8 with the paper's noise), as the thesis says.

Decision rule, fixed before running (alpha = 0.05): censoring-aware exact one-sided sign test,
seeds paired, that the noise subset needs more epochs than the clean subset; minimum effect:
geometric-mean ratio noise/clean >= 1.2. One verdict for randY, one for randX. Negative control: the
same test on the sham condition, whose "noise" half is real data, must not pass. Also reported,
not tested: the epoch of best validation accuracy against the epoch the noise subset is fitted.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

from harness import numpy_generator, report, stats
from harness.core import RunResult
from harness.measures import first_epoch
from harness.tiers import tier_params

PAPER_DATASET = "mnist"
ALPHA = 0.05
MIN_RATIO = 1.2  # the noise subset needs >= 20% more epochs than the clean subset (geometric mean)
THRESHOLD = 0.9  # training accuracy a subset must reach to count as fitted
FRACTION = 0.5  # share of the training examples that are noise
CONDITIONS = ("randY", "randX", "sham")
TIERS = tier_params()
RANDX_TIERS = tier_params(expect=("contradicted",), smoke_fails=(
    "at smoke scale (Fashion-MNIST at 14x14, n 2,000, half of the inputs Gaussian; base seed 0, CPU) the noise "
    "inputs are memorized before the real examples are learned: the noise half reaches 90% training accuracy "
    "after 14-18 epochs, the clean half after 22-31 (ratio noise/clean 0.62, 0/8 seeds clean first, p 1, reverse "
    "p 0.0039; contradicted at each of --base-seed 1..4 too). i.i.d. Gaussian pixels are easy to fit, as C2b shows; "
    "with Gaussian inputs that keep the data's covariance a pilot saw the clean half first in 8 of 8 seeds (module "
    "docstring). The paper's extended version measures the order with label noise, which does reproduce (test above)"))


@dataclass
class Order:
    tier: str
    dataset: str
    results: dict[str, list[RunResult]]  # condition -> one result per seed
    compute_s: float

    def reach(self, condition: str, subset: str) -> tuple[np.ndarray, np.ndarray]:
        """(first epoch with `subset` accuracy >= THRESHOLD, censored) per seed."""
        reached = [first_epoch(r.history[f"train_acc_{subset}"], THRESHOLD) for r in self.results[condition]]
        return np.array([e for e, _ in reached]), np.array([c for _, c in reached])

    def clean_first(self, condition: str) -> stats.Verdict:
        (noise, nc), (clean, cc) = self.reach(condition, "noise"), self.reach(condition, "clean")
        rng = numpy_generator("bootstrap", "C5", condition, self.tier, self.dataset)
        return stats.censored_sign_test(noise, clean, nc, cc, alpha=ALPHA, min_ratio=MIN_RATIO, rng=rng)

    def describe(self, condition: str) -> str:
        (noise, nc), (clean, cc) = self.reach(condition, "noise"), self.reach(condition, "clean")
        best_val = [int(np.nanargmax(r.history["val_acc"])) + 1 for r in self.results[condition]]
        fmt = lambda e, c: ", ".join(f"{v}{'+' if x else ''}" for v, x in zip(e, c))  # noqa: E731
        return (f"epochs to {THRESHOLD:.0%} on clean examples: {fmt(clean, cc)}; on noise examples: "
                f"{fmt(noise, nc)}; epoch of best validation accuracy: {', '.join(map(str, best_val))}")


def learning_order(claims, tier: str) -> Order:
    run, seeds = claims.tier(tier).time_to_fit, claims.seeds(tier)

    def design(dataset):
        base = dataclasses.replace(run, dataset=dataset)
        return {c: [dataclasses.replace(base, noise=c, noise_fraction=FRACTION, seed=s) for s in seeds]
                for c in CONDITIONS}
    t = claims.sweep("learning order", tier, PAPER_DATASET, design)
    return Order(tier, t.dataset, t.results, t.compute_s)


def figures(o: Order, run) -> dict:
    """The sweep's figure: clean and noise examples' training accuracy by epoch (run: the tier's setting)."""
    def plot(path):
        longest = max(r.epochs_run for v in o.results.values() for r in v)
        curves = {f"{c}: {subset} examples": report.padded([r.history[f"train_acc_{subset}"] for r in o.results[c]],
                                                           longest)
                  for c in ("randY", "randX") for subset in ("clean", "noise")}
        report.plot_curves(curves, path, f"Learning order, {o.dataset}, {FRACTION:.0%} noise, {run.n_train} examples, "
                                         f"2x{run.width} MLP, lr {run.lr}")
    return {"learning_order.png": plot}


def check_clean_first(condition, tier, claims, decide):
    o = learning_order(claims, tier)
    v, control = o.clean_first(condition), o.clean_first("sham")
    note = o.describe(condition)
    decide("C5", v, control, tier=tier, dataset=o.dataset, note=f"{condition}: {note}", compute_s=o.compute_s,
           control_note=f"sham (the 'noise' half is real data): {o.describe('sham')}",
           figures=figures(o, claims.tier(tier).time_to_fit))


@pytest.mark.parametrize("tier", TIERS)
def test_real_examples_are_fitted_before_random_labels(tier, claims, decide):
    """C5, randY: with half the labels random, the clean half reaches 90% training accuracy first."""
    check_clean_first("randY", tier, claims, decide)


@pytest.mark.parametrize("tier", RANDX_TIERS)
def test_real_examples_are_fitted_before_random_inputs(tier, claims, decide):
    """C5, randX: with half the inputs Gaussian noise, the clean half reaches 90% training accuracy first."""
    check_clean_first("randX", tier, claims, decide)
