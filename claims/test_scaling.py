"""Claim C2c (paper Fig. 2): less capacity or more data slows training, more steeply with noise.

"Reducing the capacity or increasing the size of the dataset slows down training for real data as
well as noise. However, the effect is more severe for datasets containing noise." Fig. 2 plots
epochs to 100% training accuracy against hidden units (left, fixed n) and against dataset size
(right, fixed width), one curve per noise level: the fraction of inputs replaced by Gaussian noise.

Design (settings in harness/tiers.py, `Scaling`): for each noise level (randX fraction) and seed, a
sweep over dataset sizes at the tier's width and over widths at the tier's size; seed s has the
same initialisation, subset and data order at every level. For the negative control, "sham" levels
choose the same examples as each noise level but leave them unchanged, so the data are real at
every sham level while everything else that depends on the level (which examples are chosen, the
run's key) goes through the same pipeline. Statistic, per seed and level: the
least-squares slope of log(epochs to fit) against log(size), or against log(width). Runs not
fitted within the budget enter at the budget (a lower bound, counted in the report).

Decision rules, fixed before running (alpha = 0.05), per panel:
- "slows down for real data as well as noise": the slope has the expected sign (positive for size,
  negative for width) on real data, and so has each seed's mean slope over the noise levels, in
  more seeds than chance (exact binomial test against 1/2, minimum share 0.8, each), combined as an
  intersection-union test. (A first version asked this of every level separately: 25 of 25
  seed-level pairs at 5 seeds and 5 levels, which a true effect fails by chance; see the issue.)
- "more severe with noise": the slope (size) or minus the slope (width) increases with the noise
  level: Page's L, seeds as blocks; minimum effect: mean Spearman rho >= 0.5.
Negative control: Page's L over the sham levels (real data at level 0), the same decision as the
claim's, must not pass; it would if an artifact of the pipeline grew with the noise fraction.
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
MIN_SHARE = 0.8  # share of seeds whose slope has the expected sign (real data; mean over noise levels)
MIN_RHO = 0.5  # mean Spearman rho of slope against noise level
TIERS = tier_params()


@dataclass
class Panel:
    axis: str  # "size" or "width"
    points: tuple[int, ...]
    levels: tuple[float, ...]
    epochs: np.ndarray  # (conditions, seeds, points) epochs to fit; conditions = levels + sham levels[1:]
    censored: np.ndarray  # same shape, bool

    def slopes(self) -> np.ndarray:
        """(conditions, seeds) least-squares slope of log(epochs) on log(points)."""
        x = np.log(np.asarray(self.points, float))
        x = x - x.mean()
        y = np.log(self.epochs)
        return (y - y.mean(-1, keepdims=True)) @ x / (x @ x)


@dataclass
class Scaling:
    tier: str
    dataset: str
    panels: dict[str, Panel]
    compute_s: float


def scaling(claims, tier: str) -> Scaling:
    def compute():
        name = claims.dataset_name(PAPER_DATASET)
        ds = claims.dataset(name)
        t = claims.tier(tier)
        base, sc = dataclasses.replace(t.time_to_fit, dataset=name), t.scaling
        seeds = claims.seeds(tier, default=sc.seeds)
        conditions = [("randX" if f else "none", f) for f in sc.levels] + [("sham", f) for f in sc.levels[1:]]
        grids = {"size": [dataclasses.replace(base, n_train=n) for n in sc.sizes],
                 "width": [dataclasses.replace(base, width=w) for w in sc.widths]}
        runs = {(axis, i, c, s): dataclasses.replace(cfg, noise=k, noise_fraction=f, seed=s)
                for axis, cfgs in grids.items() for i, cfg in enumerate(cfgs)
                for c, (k, f) in enumerate(conditions) for s in seeds}
        unique = list(dict.fromkeys(runs.values()))
        done = dict(zip(unique, claims.train(unique, ds, f"scaling, {tier}, {name}, {len(unique)} models")))
        panels = {}
        for axis, points in (("size", sc.sizes), ("width", sc.widths)):
            shape = (len(conditions), len(seeds), len(points))
            res: list[RunResult] = [done[runs[(axis, i, c, s)]] for c in range(shape[0]) for s in seeds
                                    for i in range(shape[2])]
            panels[axis] = Panel(axis, points, sc.levels,
                                 np.array([r.epochs_to_fit for r in res], float).reshape(shape),
                                 np.array([not r.fitted for r in res]).reshape(shape))
        plot(panels, claims.figure(tier, name, "fig2_time_to_fit.png"), name, base)
        return Scaling(tier, name, panels, sum(r.wall_s for r in done.values()))
    return claims.memo(("scaling", tier), compute)


def plot(panels: dict[str, Panel], path, dataset: str, base):
    fig, axes = report.new_figure(2, figsize=(10, 4))
    for ax, axis, label in zip(axes, ("width", "size"), ("hidden units per layer", "training examples")):
        p = panels[axis]
        for c, level in enumerate(p.levels):
            e = p.epochs[c]  # (seeds, points)
            ax.plot(p.points, np.exp(np.log(e).mean(0)), marker="o", label=f"noise {level:.0%}")
            ax.fill_between(p.points, e.min(0), e.max(0), alpha=0.2)
        ax.set(xscale="log", yscale="log", xlabel=label, ylabel="epochs to 100% train accuracy")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    axes[0].set_title(f"{dataset}, {base.n_train} examples", fontsize=10)
    axes[1].set_title(f"{dataset}, 2x{base.width} MLP", fontsize=10)
    return report.save_figure(fig, path)


def panel_verdicts(p: Panel, sign: int, rng) -> tuple[stats.Verdict, stats.Verdict, stats.Verdict]:
    """(steeper with noise, slows for real and noise, negative control) of one panel; `sign` is the
    expected sign of the slope (+1 size, -1 width), rng(what) a bootstrap generator."""
    slopes = sign * p.slopes()  # (conditions, seeds)
    n_levels = len(p.levels)
    real, noisy = slopes[0], slopes[1:n_levels].mean(0)  # (seeds,) each
    slows = stats.all_of([stats.share_test(x > 0, alpha=ALPHA, min_share=MIN_SHARE) for x in (real, noisy)],
                         f"slope sign {'+' if sign > 0 else '-'} on real data and on noise (mean over levels)")
    steeper = stats.page_trend(slopes[:n_levels].T, alpha=ALPHA, min_effect=MIN_RHO, rng=rng("trend"))
    control = stats.page_trend(slopes[[0, *range(n_levels, len(slopes))]].T, alpha=ALPHA, min_effect=MIN_RHO,
                               rng=rng("control"))
    return steeper, slows, control


def check_panel(axis: str, sign: int, tier, claims, decide):
    s = scaling(claims, tier)
    p = s.panels[axis]
    steeper, slows, control = panel_verdicts(p, sign, lambda what: numpy_generator("bootstrap", "C2c", axis, what,
                                                                                   tier, s.dataset))
    n_levels = len(p.levels)
    mean_slopes = ", ".join(f"{lv:.0%}: {m:+.2f}" for lv, m in zip(p.levels, p.slopes()[:n_levels].mean(1)))
    note = (f"mean slope of log epochs on log {axis} per noise level {mean_slopes}; "
            f"{int(p.censored.sum())} of {p.censored.size} runs censored at the budget")
    decide("C2c", steeper, control, tier=tier, dataset=s.dataset, note=note, compute_s=s.compute_s,
           control_note="sham levels: the examples of each noise level chosen but left unchanged",
           parts=[("claim (slows for real and noise)", slows)])


SIZE_TIERS = tier_params(expect=("not shown",), smoke_fails=(
    "at smoke scale (Fashion-MNIST, base seed 0, n 500-2000 at 2x256) more data slows fitting on real data and "
    "on noise (5/5 seeds each, p 0.031), but the slope of log epochs on log n does not grow with noise: mean "
    "slopes 0%: +0.19, 20%: +0.24, 40%: +0.18, 60%: +0.33, 80%: +0.21; Page's L mean rho -0.06, p 0.62 . Borderline at "
    "this scale: over --base-seed 0..4 the trend holds at 2 (rho 0.56, p 0.006 at seeds 1 and 2) and the whole "
    "test at 1 (seed 2)"))


@pytest.mark.parametrize("tier", SIZE_TIERS)
def test_more_data_slows_fitting_more_with_noise(tier, claims, decide):
    """C2c, Fig. 2 right: epochs to fit grow with n, and grow faster the more inputs are noise."""
    check_panel("size", +1, tier, claims, decide)


@pytest.mark.parametrize("tier", TIERS)
def test_less_capacity_slows_fitting_more_with_noise(tier, claims, decide):
    """C2c, Fig. 2 left: epochs to fit grow as width shrinks, and faster the more inputs are noise."""
    check_panel("width", -1, tier, claims, decide)
