"""Claim C1 (paper Fig. 1): the more of the data is noise, the more capacity it takes to reach the best
validation accuracy.

"As more examples are replaced with noise, more capacity is needed in order to reach maximal
validation performance ... for real data, performance is already very close to maximal with 4096
hidden units." Fig. 1 plots validation accuracy against hidden units, one curve per noise level.

Design (settings in harness/tiers.py, `Capacity`): for each noise type (randX: inputs replaced by
Gaussian noise; randY: labels replaced by random ones), noise level and seed, the MLP at every width
of the grid; seed s has the same subset, data order and noise examples everywhere. The smoke tier
pools images to 14x14 (d = 196, n = 2,000, n/d = 10.2) so that random inputs are not trivially
separable. For the negative control, "sham" levels choose the same examples as each noise level but
leave them unchanged (real data at every level, the same pipeline). A run trains until 100%
training accuracy or its epoch budget. Per run, on all 10,000 validation examples (standard error
about 0.35 points at 87%), checked every 25 epochs in the smoke tier: the validation accuracy at
the end of training, that is where a fitted run stops, or, for a run that trains to its budget, the
median of its checks in the last quarter of the budget. At a constant learning rate an unfitted
network hovers rather than settles, and single checks drop by up to 15 points below its level (a
pilot on seeds 1000-1004 at 2x16: 0.637 among checks of 0.79), so one check is a noisy end point.
The best accuracy over its checks is reported beside it, not tested: for random labels it comes
early, before the noise is memorized, the phase the claim is about.

Convergence (with a short budget, capacity and training speed are confounded): a run counts as
converged if it reached 100% training accuracy, or if the median of its checks in the last quarter
of its epochs is within the tolerance of the median in the third quarter. A part of the claim: at
least 95% of a noise type's runs converge (share test against 1/2, minimum share 0.95; never
"contradicted", since a short budget says nothing against the claim), otherwise the claim is not
shown. History of this rule, each revision stated before the runs it decided: (1) the first rule
failed the test as inconclusive, which turned a budget too short for narrow networks into a broken
CI run instead of the outcome "not shown"; (2) the second compared the last check with the one at
three quarters (checks every 100 epochs) and so measured the SGD noise of single checks: at base
seed 0 it left 12 of 125 randX runs (all at 16 units) and 40 randY runs unconverged, which made
randX "not shown" while its trend, plateau and gain parts held; (3) the medians above, chosen on the
pilot seeds (3 of 25 unconverged randX-or-real runs at 16 units against 7 for the second rule; 28
of 50 randY runs at 16-32 units, which are still memorizing random labels). At base seeds 0-4 the
median rule left 8, 4, 4, 10 and 9 of 125 randX runs unconverged at 400 epochs (all at 16 units;
the second rule: 12, 6, 9, 13, 13). (4) So the budget went from 400 to 1,600 epochs, the shortest of
400/800/1,200/1,600 at which a pilot (seeds 1000-1004, widths 16 and 32) had at least 95% of each
noise type's runs converged (randY 97, 107, 112, 120 of 125; randX 122 and then 125). Runs that fit
stop, so only the narrow widths train longer. The seeds stay at 5, although the two plateau parts
below are sign tests that 5 seeds fail with one discordant seed: at 8 seeds C1 took 920 s on 2
cores instead of 428 s at 5 (CI), beyond the CI budget (its 8-seed outcomes are in docs/design.md).
The note shows whether capacity binds: real data's accuracy at the smallest and the largest
widths, and the share of runs at 100% training accuracy per width.

Statistic, per seed and noise level: the capacity needed, log2 of the smallest width whose final
validation accuracy is within the tolerance (1 point, about 3 standard errors) of that seed's best
over all widths. It is defined whatever the shape of the curve: with label noise, accuracy at the
end of training can dip near the width where the network first fits the noisy set and recover
beyond it ("double descent", Nakkiran et al. 2019); the first width to come within the tolerance of
the best counts, wherever the best lies.
Decision rules, fixed before running (alpha = 0.05), per noise type:
- claim: capacity needed increases with the noise level: Page's L, seeds as blocks; minimum effect:
  mean Spearman rho >= 0.5.
- part, "real data is at its plateau at the largest width": doubling the width up to the largest
  one gains less than the tolerance in more seeds than chance (exact binomial test against 1/2,
  minimum share 0.8).
- part, "noisy data still gains there": at the highest noise level that last doubling gains more
  than it does on real data, paired by seed, in more seeds than chance (same test).
Negative control: Page's L on the capacity needed over the sham levels (real data at level 0) must
not pass; it would if an artifact of the pipeline (the examples chosen per level) grew with the
noise fraction.
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


RANDX_FAILS = (
    "not shown at smoke scale (Fashion-MNIST at 14x14, n 2,000, widths 16-256, up to 1,600 epochs, 10,000 validation "
    "examples, base seed 0, CPU) because 80% Gaussian inputs gain more than real data from the last doubling (128 to "
    "256 units) in only 3 of 5 seeds (mean gain +0.008 against real data's +0.003; the part needs 5 of 5). The rest "
    "holds: the width needed grows with input noise (geometric mean 0%: 74, 20%: 64, 40%: 97, 60%: 111, 80%: 169; "
    "Page's L mean rho 0.75, p 0.001), real data is at its plateau at 256 units (5/5 seeds) and all 125 runs "
    "converge. Not shown at each of --base-seed 1..4 too (1-3 of 5 seeds gain more; the trend's mean rho 0.40, 0.68, "
    "0.58, 0.32). With autograd's SGD step instead of the fused one (float32's last bits) it held at base seed 0 "
    "only, on gains of 0.08-0.33 points")
RANDY_FAILS = (
    "not shown at smoke scale (Fashion-MNIST at 14x14, n 2,000, widths 16-256, up to 1,600 epochs, 10,000 validation "
    "examples, base seed 0, CPU) because 10 of 125 runs (all at 16 units, still memorizing random labels: 20% of "
    "them fitted) are unconverged at 1,600 epochs (92%; the part needs 95%), and 80% noise gains more than real data "
    "from 128 to 256 units in 3 of 5 seeds only. The width needed grows with label noise (geometric mean 0%: 74, "
    "20%: 147, 40%: 223, 60%: 256, 80%: 147; Page's L mean rho 0.54, p 0.013) and real data is at its plateau at 256 "
    "units (5/5 seeds). At the end of training accuracy at 80% noise dips at 32 units and recovers "
    "(0.247/0.228/0.258/0.269/0.282). Not shown at each of --base-seed 1..4 too (9-14 runs unconverged)")
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
