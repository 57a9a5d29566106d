"""Claim C1 (paper Fig. 1): the more of the data is noise, the more capacity it takes to reach the best
validation accuracy.

"As more examples are replaced with noise, more capacity is needed in order to reach maximal
validation performance ... for real data, performance is already very close to maximal with 4096
hidden units." Per noise type (randX, randY), level and seed, the MLP at every width of the grid.
Statistic: capacity needed, log2 of the smallest width whose validation accuracy at the end of
training is within the tolerance (1 point) of the seed's best over widths (measures.final_val).
Decisions (alpha 0.05), per noise type: Page's L that capacity needed grows with the noise level,
seeds as blocks, minimum mean Spearman rho 0.5; parts: at least 95% of the runs converge (fitted, or
the medians of their last two quarters' checks within the tolerance); real data gains less than the
tolerance from the last width doubling, and the noisiest data gains more than real data there, each
in more seeds than chance (exact binomial test against 1/2, minimum share 0.8).
Control: Page's L over sham levels (the examples of each level chosen but left unchanged).
Seeds: 5 smoke, 5 full. Design and reasons: docs/design.md#c1-capacity.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

from harness import numpy_generator, report, stats
from harness.measures import best_val, converged, final_val
from harness.tiers import tier_params

PAPER_DATASET = "mnist"
ALPHA = 0.05
MIN_RHO = 0.5  # mean Spearman rho of capacity needed against noise level
MIN_SHARE = 0.8  # share of seeds for the two plateau parts
MIN_CONVERGED = 0.95  # share of a noise type's runs that must converge within the budget
KINDS = ("randX", "randY")


@dataclass
class Curves:
    """Validation accuracy of one noise type over (conditions, seeds, widths)."""
    kind: str
    widths: tuple[int, ...]
    levels: tuple[float, ...]  # conditions 0..len(levels)-1; level 0 is real data
    final: np.ndarray  # (conditions, seeds, widths) at the end of training; conditions = levels + sham levels[1:]
    converged: np.ndarray  # same shape, bool
    best: np.ndarray | None = None  # same shape, best over validation checks (reported, not tested)
    fitted: np.ndarray | None = None  # same shape, bool: reached 100% training accuracy

    def capacity_needed(self, tolerance: float) -> np.ndarray:
        """(conditions, seeds) log2 of the smallest width within `tolerance` of the best over widths."""
        reached = self.final >= self.final.max(-1, keepdims=True) - tolerance
        return np.log2(self.widths)[reached.argmax(-1)]

    def last_gain(self) -> np.ndarray:
        """(conditions, seeds) gain in final validation accuracy from the second-largest width to the largest."""
        return self.final[..., -1] - self.final[..., -2]


@dataclass
class Capacity:
    tier: str
    dataset: str
    tolerance: float
    curves: dict[str, Curves]
    compute_s: float


def capacity(claims, tier: str) -> Capacity:
    cap = claims.tier(tier).capacity
    seeds = claims.seeds(tier, default=cap.seeds)
    shams = [("sham", f) for f in cap.levels[1:]]
    conditions = {kind: [("none", 0.0)] + [(kind, f) for f in cap.levels[1:]] + shams for kind in KINDS}

    def design(dataset):
        base = dataclasses.replace(cap.run, dataset=dataset)
        return {kind: [[[dataclasses.replace(base, width=w, noise=k, noise_fraction=f, seed=s) for w in cap.widths]
                        for s in seeds] for k, f in conditions[kind]]
                for kind in KINDS}  # kind -> [condition][seed][width]
    t = claims.sweep("capacity", tier, PAPER_DATASET, design)
    curves = {}
    for kind in KINDS:
        res = [r for by_seed in t.results[kind] for by_width in by_seed for r in by_width]
        shape = (len(conditions[kind]), len(seeds), len(cap.widths))
        curves[kind] = Curves(kind, cap.widths, cap.levels,
                              np.array([final_val(r) for r in res]).reshape(shape),
                              np.array([converged(r, cap.tolerance) for r in res]).reshape(shape),
                              np.array([best_val(r) for r in res]).reshape(shape),
                              np.array([r.fitted for r in res]).reshape(shape))
    return Capacity(tier, t.dataset, cap.tolerance, curves, t.compute_s)


def plot(curves: dict[str, Curves], path, dataset: str, run):
    fig, axes = report.new_figure(2, figsize=(10, 4))
    for ax, kind, what in zip(axes, KINDS, ("Gaussian inputs", "random labels")):
        c = curves[kind]
        for i, level in enumerate(c.levels):
            b = c.final[i]  # (seeds, widths)
            ax.plot(c.widths, b.mean(0), marker="o", label=f"noise {level:.0%}")
            ax.fill_between(c.widths, b.min(0), b.max(0), alpha=0.2)
        ax.set(xscale="log", xlabel="hidden units per layer", ylabel="validation accuracy at the end of training")
        ax.set_xticks(c.widths, [str(w) for w in c.widths], minor=False)
        ax.minorticks_off()
        ax.set_title(f"{dataset}, {run.n_train} examples, {kind} ({what})", fontsize=10)
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


def convergence(c: Curves) -> stats.Verdict:
    """The part "the budget lets the runs converge": at least MIN_CONVERGED of the runs at the noise
    levels (sham levels excluded) fitted or plateaued. Never contradicted: a short budget is no
    evidence against the claim."""
    v = stats.share_test(c.converged[:len(c.levels)].ravel(), alpha=ALPHA, min_share=MIN_CONVERGED)
    return dataclasses.replace(v, p_reverse=1.0, outcome=stats.outcome(v.passed, 1.0, ALPHA))


RANDX_FAILS = ("80% Gaussian inputs do not gain more than real data from the last width doubling in enough seeds "
               "(smoke tier, Fashion-MNIST, at every base seed 0-4)")
RANDY_FAILS = ("runs at the narrowest width are still memorizing random labels at the budget (fewer than 95% "
               "converged), and 80% noise does not gain more than real data from the last width doubling in enough "
               "seeds (smoke tier, Fashion-MNIST, at every base seed 0-4)")
PARAMS = [*tier_params("randX", expect=("not shown",), smoke_fails=RANDX_FAILS),
          *tier_params("randY", expect=("not shown",), smoke_fails=RANDY_FAILS)]


@pytest.mark.parametrize("tier, kind", PARAMS)
def test_noisier_data_needs_more_capacity(tier, kind, claims, decide):
    """C1, Fig. 1: the width needed to reach the best validation accuracy grows with the noise level;
    real data is at its plateau at the largest width while noisy data still gains."""
    cap = capacity(claims, tier)
    c, tol = cap.curves[kind], cap.tolerance
    n_levels = len(c.levels)
    unconverged = ~c.converged[:n_levels]

    trend, control, plateau, still = verdicts(c, tol, lambda what: numpy_generator("bootstrap", "C1", kind, what,
                                                                                   tier, cap.dataset))
    needed, gain, w = c.capacity_needed(tol), c.last_gain(), c.widths
    mean_needed = ", ".join(f"{lv:.0%}: {2 ** m:.0f}" for lv, m in zip(c.levels, needed[:n_levels].mean(1)))
    per_level = lambda a: "; ".join(f"{lv:.0%}: " + "/".join(f"{x:.3f}" for x in a[i].mean(0))  # noqa: E731
                                    for i, lv in enumerate(c.levels))
    fitted = "/".join(f"{x:.0%}" for x in c.fitted[:n_levels].mean((0, 1)))
    note = (f"{kind}; tolerance {tol}; geometric-mean width needed per noise level {mean_needed}; mean validation "
            f"accuracy at the end of training at widths {'/'.join(map(str, w))}: {per_level(c.final)}; gain "
            f"{w[-2]}->{w[-1]} real {gain[0].mean():+.3f}, noise {c.levels[-1]:.0%} {gain[n_levels - 1].mean():+.3f}; "
            f"runs at 100% training accuracy per width {fitted}; {int(unconverged.sum())} of {unconverged.size} runs "
            f"unconverged; reported, not tested: best over validation checks {per_level(c.best)}")
    decide("C1", trend, control, tier=tier, dataset=cap.dataset, note=note, compute_s=cap.compute_s,
           control_note="capacity needed over sham levels (the examples of each level chosen but left unchanged)",
           parts=[("runs converged within the budget (unconverged per width "
                   f"{unconverged.sum((0, 1)).tolist()})", convergence(c)),
                  (f"real data at its plateau at {w[-1]} units", plateau),
                  (f"noise {c.levels[-1]:.0%} still gains more than real data at {w[-1]} units", still)],
           figures={"fig1_capacity.png": lambda path: plot(cap.curves, path, cap.dataset,
                                                           claims.tier(tier).capacity.run)})
