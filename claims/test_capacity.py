"""Claim C1 (paper Fig. 1): the more of the data is noise, the more capacity it takes to reach the best
validation accuracy.

"As more examples are replaced with noise, more capacity is needed in order to reach maximal
validation performance ... for real data, performance is already very close to maximal with 4096
hidden units." Fig. 1 plots validation accuracy against hidden units, one curve per noise level.

Design (settings in harness/tiers.py, `Capacity`, on top of the tier's time_to_fit run): for each
noise type (randX: inputs replaced by Gaussian noise; randY: labels replaced by random ones), noise
level and seed, the MLP at every width of the grid; seed s has the same subset, data order and noise
examples everywhere. For the negative control, "sham" levels choose the same examples as each noise
level but leave them unchanged (real data at every level, the same pipeline). A run trains until
100% training accuracy or its epoch budget and is validated every val_every epochs and where it
ends. Per run: the best validation accuracy, the maximum over its validation checks (for random
labels it comes early, before the noise is fitted).
A known bias: runs that fit late (narrow, noisy) are checked more often, and a maximum over more
noisy checks reads higher, which if anything flattens the curves over width; the full tier checks
every epoch, the smoke tier every 5 epochs and where a run ends.

Convergence (with a short budget, capacity and training speed are confounded): a run
counts as converged if it reached 100% training accuracy, or if the last quarter of its epochs raised
its best validation accuracy by less than the tolerance. Decided before running: if more than 5% of
a noise type's runs are unconverged, the test fails as inconclusive (the budget is too short).

Statistic, per seed and noise level: the capacity needed, log2 of the smallest width whose best
validation accuracy is within the tolerance of that seed's best over all widths.
Decision rules, fixed before running (alpha = 0.05), per noise type:
- claim: capacity needed increases with the noise level: Page's L, seeds as blocks; minimum effect:
  mean Spearman rho >= 0.5.
- part, "real data is at its plateau at the largest width": doubling the width up to the largest
  one gains less than the tolerance in more seeds than chance (exact binomial test against 1/2,
  minimum share 0.8).
- part, "noisy data still gains there": at the highest noise level that last doubling gains more
  than it does on real data, paired by seed, in more seeds than chance (same test).
Negative control: Page's L on the capacity needed over the sham levels (real data at level 0) must
not pass; it would if an artifact of the pipeline (the examples chosen per level, the number of
validation checks of runs that fit later) grew with the noise fraction.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

from harness import numpy_generator, report, stats
from harness.tiers import tier_params
from harness.train import RunResult

PAPER_DATASET = "mnist"
ALPHA = 0.05
MIN_RHO = 0.5  # mean Spearman rho of capacity needed against noise level
MIN_SHARE = 0.8  # share of seeds for the two plateau parts
MAX_UNCONVERGED = 0.05  # share of a noise type's runs; above it the test is inconclusive
KINDS = ("randX", "randY")


@dataclass
class Curves:
    """Best validation accuracy of one noise type over (conditions, seeds, widths)."""
    kind: str
    widths: tuple[int, ...]
    levels: tuple[float, ...]  # conditions 0..len(levels)-1; level 0 is real data
    best: np.ndarray  # (conditions, seeds, widths); conditions = levels + sham levels[1:]
    converged: np.ndarray  # same shape, bool

    def capacity_needed(self, tolerance: float) -> np.ndarray:
        """(conditions, seeds) log2 of the smallest width within `tolerance` of the best over widths."""
        reached = self.best >= self.best.max(-1, keepdims=True) - tolerance
        return np.log2(self.widths)[reached.argmax(-1)]

    def last_gain(self) -> np.ndarray:
        """(conditions, seeds) gain in best validation accuracy from the second-largest width to the largest."""
        return self.best[..., -1] - self.best[..., -2]


@dataclass
class Capacity:
    tier: str
    dataset: str
    tolerance: float
    curves: dict[str, Curves]
    compute_s: float


def best_val(r: RunResult) -> float:
    return float(np.nanmax(r.history["val_acc"]))


def converged(r: RunResult, tolerance: float) -> bool:
    """Fitted, or the last quarter of the run raised its best validation accuracy by less than `tolerance`."""
    if r.fitted:
        return True
    v = r.history["val_acc"]
    q = len(v) * 3 // 4
    return bool(np.nanmax(v[q:]) - np.nanmax(v[:q]) < tolerance)


def capacity(claims, tier: str) -> Capacity:
    def compute():
        name = claims.dataset_name(PAPER_DATASET)
        ds = claims.dataset(name)
        t = claims.tier(tier)
        base, cap = dataclasses.replace(t.time_to_fit, dataset=name), t.capacity
        seeds = claims.seeds(tier, default=cap.seeds)
        shams = [("sham", f) for f in cap.levels[1:]]
        conditions = {kind: [("none", 0.0)] + [(kind, f) for f in cap.levels[1:]] + shams for kind in KINDS}
        runs = {(kind, c, s, w): dataclasses.replace(base, width=w, noise=k, noise_fraction=f, seed=s)
                for kind in KINDS for c, (k, f) in enumerate(conditions[kind]) for s in seeds
                for w in cap.widths}
        unique = list(dict.fromkeys(runs.values()))
        done = dict(zip(unique, claims.train(unique, ds, f"capacity, {tier}, {name}, {len(unique)} models")))
        curves = {}
        for kind in KINDS:
            shape = (len(conditions[kind]), len(seeds), len(cap.widths))
            res = [done[runs[(kind, c, s, w)]] for c in range(shape[0]) for s in seeds for w in cap.widths]
            curves[kind] = Curves(kind, cap.widths, cap.levels,
                                  np.array([best_val(r) for r in res]).reshape(shape),
                                  np.array([converged(r, cap.tolerance) for r in res]).reshape(shape))
        plot(curves, claims.figure(tier, name, "fig1_capacity.png"), name, base)
        return Capacity(tier, name, cap.tolerance, curves, sum(r.wall_s for r in done.values()))
    return claims.memo(("capacity", tier), compute)


def plot(curves: dict[str, Curves], path, dataset: str, base):
    fig, axes = report.new_figure(2, figsize=(10, 4))
    for ax, kind, what in zip(axes, KINDS, ("Gaussian inputs", "random labels")):
        c = curves[kind]
        for i, level in enumerate(c.levels):
            b = c.best[i]  # (seeds, widths)
            ax.plot(c.widths, b.mean(0), marker="o", label=f"noise {level:.0%}")
            ax.fill_between(c.widths, b.min(0), b.max(0), alpha=0.2)
        ax.set(xscale="log", xlabel="hidden units per layer", ylabel="best validation accuracy")
        ax.set_xticks(c.widths, [str(w) for w in c.widths], minor=False)
        ax.minorticks_off()
        ax.set_title(f"{dataset}, {base.n_train} examples, {kind} ({what})", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return report.save_figure(fig, path)


def verdicts(c: Curves, tolerance: float, rng) -> tuple[stats.Verdict, ...]:
    """(trend, negative control, real data at its plateau, noisiest data still gains) for one noise
    type; rng(what) gives a bootstrap generator."""
    n_levels = len(c.levels)
    needed = c.capacity_needed(tolerance)  # (conditions, seeds)
    trend = stats.page_trend(needed[:n_levels].T, alpha=ALPHA, min_effect=MIN_RHO, rng=rng("trend"))
    control = stats.page_trend(needed[[0, *range(n_levels, len(needed))]].T, alpha=ALPHA, min_effect=MIN_RHO,
                               rng=rng("control"))
    gain = c.last_gain()
    plateau = stats.share_test(gain[0] < tolerance, alpha=ALPHA, min_share=MIN_SHARE)
    still = stats.share_test(gain[n_levels - 1] > gain[0], alpha=ALPHA, min_share=MIN_SHARE)
    return trend, control, plateau, still


SMOKE_REASONS = {
    "randX": (
        "at smoke scale (Fashion-MNIST, n 1000, widths 16-256, base seed 0) the width needed to come within 2 points "
        "of the best does not grow with input noise: geometric-mean width 0%: 28, 20%: 37, 40%: 37, 60%: 32, 80%: "
        "32; Page's L mean rho 0.07, p 0.38. Noisy data gains more from width (16->256: real +0.026, 80% noise "
        "+0.043), but within the tolerance at every level. Real data is at its plateau at 256 units (5/5 seeds, p "
        "0.031); 80% noise gains more there in 4/5 seeds (p 0.19). Over --base-seed 0..4 the trend alone holds at 3 "
        "(2, 3, 4: rho 0.51-0.77, p 0.0007-0.049; at 1 rho 0.47, p 0.033, below the minimum effect) and the real-data "
        "plateau at 5, but noisy data never gains significantly more at the largest width (2-3 of 5 seeds), so the "
        "whole test holds at none"),
    "randY": (
        "no capacity effect for random labels at smoke scale (Fashion-MNIST, n 1000, widths 16-256, base seed 0), "
        "as the extended paper found on CIFAR-10: geometric-mean width needed 0%: 28, 20%: 42, 40%: 37, 60%: 49, "
        "80%: 42; Page's L mean rho 0.13, p 0.32; best validation accuracy is flat over widths at every level "
        "(80%: 0.42/0.42/0.47/0.47/0.41) and 80% noise loses 0.058 from 128 to 256 units. Over --base-seed 0..4 "
        "the trend holds at none (rho -0.13 to 0.44, p >= 0.06)"),
}
PARAMS = [p for kind in KINDS
          for p in tier_params(kind, expect=("not shown",), smoke_fails=SMOKE_REASONS[kind])]


@pytest.mark.parametrize("tier, kind", PARAMS)
def test_noisier_data_needs_more_capacity(tier, kind, claims, decide):
    """C1, Fig. 1: the width needed to reach the best validation accuracy grows with the noise level;
    real data is at its plateau at the largest width while noisy data still gains."""
    cap = capacity(claims, tier)
    c, tol = cap.curves[kind], cap.tolerance
    n_levels = len(c.levels)
    unconverged = ~c.converged[:n_levels]
    if unconverged.mean() > MAX_UNCONVERGED:  # a failure, not the claim's verdict (xfail covers only that)
        pytest.fail(f"C1 {kind} inconclusive: {int(unconverged.sum())} of {unconverged.size} runs neither fitted "
                    f"nor plateaued within the budget, so narrow widths may only be slow, not short of capacity; "
                    f"unconverged per width {unconverged.sum((0, 1)).tolist()} for widths {list(c.widths)}",
                    pytrace=False)

    trend, control, plateau, still = verdicts(c, tol, lambda what: numpy_generator("bootstrap", "C1", kind, what,
                                                                                   tier, cap.dataset))
    needed, gain, w = c.capacity_needed(tol), c.last_gain(), c.widths
    mean_needed = ", ".join(f"{lv:.0%}: {2 ** m:.0f}" for lv, m in zip(c.levels, needed[:n_levels].mean(1)))
    curves = "; ".join(f"{lv:.0%}: " + "/".join(f"{a:.3f}" for a in c.best[i].mean(0))
                       for i, lv in enumerate(c.levels))
    note = (f"{kind}; tolerance {tol}; geometric-mean width needed per noise level {mean_needed}; mean best "
            f"validation accuracy at widths {'/'.join(map(str, w))}: {curves}; gain {w[-2]}->{w[-1]} real "
            f"{gain[0].mean():+.3f}, noise {c.levels[-1]:.0%} {gain[n_levels - 1].mean():+.3f}; "
            f"{int(unconverged.sum())} of {unconverged.size} runs unconverged; described, not tested: gain "
            f"{w[0]}->{w[-1]} per level " + ", ".join(f"{lv:.0%}: {g:+.3f}" for lv, g in
                                                      zip(c.levels, (c.best[:n_levels, :, -1] - c.best[:n_levels, :, 0]).mean(1))))
    decide("C1", trend, control, tier=tier, dataset=cap.dataset, note=note, compute_s=cap.compute_s,
           control_note="capacity needed over sham levels (the examples of each level chosen but left unchanged)",
           parts=[(f"real data at its plateau at {w[-1]} units", plateau),
                  (f"noise {c.levels[-1]:.0%} still gains more than real data at {w[-1]} units", still)])
