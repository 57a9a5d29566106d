"""Claim C8, extended paper (Arpit et al., ICML 2017): the critical sample ratio rises with noise.

An example is critical when some input within an L-infinity box of radius 0.02 around it (inputs on
[0, 1]) gets another predicted class; the search is 20 projected sign-gradient steps of 0.005 from
the example (harness.adversarial). The ratio is measured where each run first reaches training loss
0.3 (a matched loss), on 500 validation examples that no noise touches, so the noise itself does not
set the number (the ratio on the run's real training inputs is reported beside).
Decision (alpha 0.05), per noise type (random labels, random inputs): Page's L that the ratio
increases over the noise levels 0, 1/3, 2/3, 1, seeds as blocks; minimum median Spearman rho 0.5.
Gate: 95% of the runs reach the matched loss within the budget.
Control: the same test over four independent real-data replicates (initialisation and data order)
in the places of the levels.
Seeds: 8 smoke, 8 full. Design and reasons: docs/design.md#the-extended-papers-claims.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

from harness import report, stats
from harness.core import RunResult
from harness.decision import Gate
from harness.examples import SETTINGS
from harness.tiers import tier_params

PAPER_DATASET = "mnist"
ALPHA = 0.05
MIN_RHO = 0.5  # median Spearman rho of the critical sample ratio against the noise level
MIN_REACHED = 0.95  # gate: share of the runs that reach the matched training loss
TIERS = tier_params()


@dataclass
class Sweep:
    tier: str
    dataset: str
    levels: tuple[float, ...]
    results: dict[str, list[list[RunResult]]]  # randX/randY/control -> [level][seed]
    compute_s: float

    def table(self, kind: str, key: str = "csr_val") -> np.ndarray:
        """(seeds, levels) of a measure of the runs."""
        return np.array([[r.measures[key] for r in col] for col in self.results[kind]]).T

    def trend(self, kind: str) -> stats.Verdict:
        return stats.page_trend(self.table(kind), alpha=ALPHA, min_effect=MIN_RHO)

    def reached(self, kind: str) -> Gate:
        runs = [r for col in self.results[kind] for r in col]
        return Gate("share of runs at the matched training loss", float(np.mean([r.fitted for r in runs])), MIN_REACHED)

    def describe(self, kind: str) -> str:
        levels = [f"replicate {i}" if kind == "control" else f"{lv:.0%}" for i, lv in enumerate(self.levels)]
        val = self.table(kind).mean(0)
        train = [np.nanmean(t) if np.isfinite(t).any() else np.nan for t in self.table(kind, "csr_train").T]
        epochs = np.array([[r.epochs_run for r in col] for col in self.results[kind]]).mean(1)
        return "means over seeds, " + "; ".join(
            f"{lv}: ratio {v:.3f} (real training inputs {t:.3f}) after {e:.0f} epochs"
            for lv, v, t, e in zip(levels, val, train, epochs)
        )


def sweep(claims, tier: str) -> Sweep:
    cs = SETTINGS[tier].critical
    seeds = claims.seeds(tier, default=cs.seeds)

    def design(dataset):
        base = dataclasses.replace(cs.run, dataset=dataset)
        runs = {
            kind: [
                [dataclasses.replace(base, noise=kind if f else "none", noise_fraction=f, seed=s) for s in seeds]
                for f in cs.levels
            ]
            for kind in ("randX", "randY")
        }
        runs["control"] = [
            [dataclasses.replace(base, seed=s, replicate=j) for s in seeds] for j in range(len(cs.levels))
        ]  # replicate 0: the real-data runs themselves
        return runs

    t = claims.sweep("critical samples", tier, PAPER_DATASET, design)
    return Sweep(tier, t.dataset, cs.levels, t.results, t.compute_s)


def figures(s: Sweep, run) -> dict:
    def plot(path):
        fig, ax = report.new_figure()
        for kind, label in (("randX", "input noise (randX)"), ("randY", "label noise (randY)")):
            t = s.table(kind)
            ax.plot(s.levels, t.mean(0), marker="o", label=f"{label}, n={t.shape[0]}")
            ax.fill_between(s.levels, t.min(0), t.max(0), alpha=0.2)
        ax.set(
            xlabel="fraction of training examples replaced by noise",
            ylabel=f"critical sample ratio (radius {run.csr_radius:g}), validation",
        )
        ax.set_title(
            f"Critical samples at train loss {run.target_loss:g}, {s.dataset}, {run.n_train} examples, 2x{run.width}",
            fontsize=10,
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        report.save_figure(fig, path)

    return {"critical_samples.png": plot}


def check_rise(kind, tier, claims, decide):
    s = sweep(claims, tier)
    decide(
        "C8",
        s.trend(kind),
        s.trend("control"),
        tier=tier,
        dataset=s.dataset,
        note=f"{kind}: {s.describe(kind)}",
        control_note=f"real-data replicates in the places of the levels: {s.describe('control')}",
        compute_s=s.compute_s,
        gates=(s.reached(kind),),
        figures=figures(s, SETTINGS[tier].critical.run),
    )


@pytest.mark.parametrize("tier", TIERS)
def test_critical_sample_ratio_rises_with_label_noise(tier, claims, decide):
    """C8, randY: at a matched training loss, more validation examples are critical the more labels are random."""
    check_rise("randY", tier, claims, decide)


@pytest.mark.parametrize("tier", TIERS)
def test_critical_sample_ratio_rises_with_input_noise(tier, claims, decide):
    """C8, randX: at a matched training loss, more validation examples are critical the more inputs are noise."""
    check_rise("randX", tier, claims, decide)
