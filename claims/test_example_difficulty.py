"""Claims C6 and C9, extended paper (Arpit et al., ICML 2017): which examples are hard is a property of
real data, not of the run (C6), and the loss is sensitive to few real examples but to all random ones
(C9).

Runs: per seed one training set (500 examples), 8 replicates (initialisations and data orders) with
real labels, 8 with random labels, and 8 more with real labels for the controls; once trained for one
epoch (the paper's protocol), once until training loss 1.0 (a matched stage of fitting, 59-82%
training accuracy for both kinds of label: 3-6 epochs on real labels, 61-85 on random ones).
C6, "easy examples": per example its training loss at the stage, centred within its training label
(random labels are not balanced: with 500 examples a label's count varies by about 7 around 50, and
after one epoch every replicate favours the frequent labels alike, an agreement that says nothing
about the examples). Statistic: per seed, the agreement of the replicates (split-half reliability,
harness.examples.agreement), real labels minus random labels; tested after the first epoch and at the
matched stage.
C9, "loss sensitivity": per run, the Gini coefficient over examples of |d loss_i / d x_i| averaged
over the run's updates up to the matched stage; per seed the mean over replicates, real minus random.
Decision (alpha 0.05), each: exact one-sided sign test over seeds (paired blocks); minimum median
difference 0.1 (C6, agreement) and 0.02 (C9, Gini). Gate at the matched stage: 95% of the
random-label runs reach it within the budget.
Controls: the same tests with the further real-label replicates in the place of random labels (no
effect by construction, real variation).
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
from harness.examples import SETTINGS, agreement, gini, paired_difference_test
from harness.tiers import tier_params

PAPER_DATASET = "mnist"
ALPHA = 0.05
MIN_AGREEMENT = 0.1  # C6: real labels' split-half reliability exceeds random labels' by this (median over seeds)
MIN_GINI = 0.02  # C9: real labels' Gini coefficient of loss sensitivity exceeds random labels' by this
MIN_REACHED = 0.95  # gate: share of random-label runs that reach the matched training loss
CONDITIONS = {"real": ("none", 0.0, 0), "random labels": ("randY", 1.0, 0), "real, replicates": ("none", 0.0, 1)}
C6_TIERS = tier_params()
C6_MATCHED_TIERS = tier_params(
    expect={"fashion-mnist": ("absent",)},
    because=(
        "at a matched stage of fitting, replicates agree on which random-label examples are easy about as much as on "
        "which real ones are: the gap after one epoch is one of how far learning has come (docs/design.md)"
    ),
)
C9_TIERS = tier_params()


@dataclass
class Sweep:
    tier: str
    dataset: str
    stage: str  # "matched" (training loss target_loss) or "first epoch" (the paper's protocol)
    results: dict[str, list[list[RunResult]]]  # condition -> [seed][replicate]
    compute_s: float

    def agreement(self, condition: str) -> np.ndarray:
        """Per seed, the split-half reliability of the examples' training loss at the sweep's stage,
        centred within each training label (the seed's labels are those of every replicate)."""
        return np.array(
            [
                agreement([-r.history["example_loss"] for r in runs], runs[0].history["example_label"])
                for runs in self.results[condition]
            ]
        )

    def gini(self, condition: str) -> np.ndarray:
        """Per seed, the mean over replicates of the Gini coefficient of the examples' loss sensitivity."""
        return np.array(
            [np.mean([gini(r.history["example_input_grad"]) for r in runs]) for runs in self.results[condition]]
        )

    def easy_examples(self, other: str) -> stats.Verdict:
        return paired_difference_test(
            self.agreement("real"), self.agreement(other), alpha=ALPHA, min_difference=MIN_AGREEMENT
        )

    def concentration(self, other: str) -> stats.Verdict:
        return paired_difference_test(self.gini("real"), self.gini(other), alpha=ALPHA, min_difference=MIN_GINI)

    def reached(self) -> Gate:
        runs = [r for runs in self.results["random labels"] for r in runs]
        return Gate(
            "share of random-label runs at the matched training loss",
            float(np.mean([r.fitted for r in runs])),
            MIN_REACHED,
        )

    def describe(self, condition: str) -> str:
        runs = [r for runs in self.results[condition] for r in runs]
        epochs = [r.epochs_run for r in runs]
        acc = [r.history["train_acc"][-1] for r in runs]
        correct = np.array(
            [
                agreement([(r.history["example_learned_epoch"] <= r.epochs_run) for r in runs])
                for runs in self.results[condition]
            ]
        )
        return (
            f"{condition}: agreement {_fmt(self.agreement(condition))}, of correctness {_fmt(correct)}; Gini "
            f"{_fmt(self.gini(condition))}; {self.stage} stage after {min(epochs)}-{max(epochs)} epochs at "
            f"{min(acc):.0%}-{max(acc):.0%} training accuracy"
        )


def _fmt(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def sweeps(claims, tier: str) -> dict[str, Sweep]:
    """The runs at the matched stage and, for C6, after their first epoch (the paper's protocol)."""
    ex = SETTINGS[tier].examples
    seeds = claims.seeds(tier, default=ex.seeds)
    stages = {"matched": {}, "first epoch": {"max_epochs": 1, "target_loss": 0.0, "stop_when_fitted": False}}

    def design(dataset):
        R = ex.replicates
        return {
            stage: {
                name: [
                    [
                        dataclasses.replace(
                            ex.run,
                            dataset=dataset,
                            noise=noise,
                            noise_fraction=f,
                            seed=s,
                            replicate=b * R + j,
                            **change,
                        )
                        for j in range(R)
                    ]
                    for s in seeds
                ]
                for name, (noise, f, b) in CONDITIONS.items()
            }
            for stage, change in stages.items()
        }

    t = claims.sweep("example difficulty", tier, PAPER_DATASET, design)
    return {stage: Sweep(tier, t.dataset, stage, t.results[stage], t.compute_s) for stage in stages}


def figures(s: Sweep, run) -> dict:
    """Per-example loss at the matched stage, one replicate half against the other (first seed), and
    the Gini coefficients per seed."""

    def plot(path):
        fig, (left, right) = report.new_figure(ncols=2, figsize=(10, 4))
        for condition in ("real", "random labels"):
            runs = s.results[condition][0]
            half = len(runs) // 2
            a = np.mean([r.history["example_loss"] for r in runs[:half]], 0)
            b = np.mean([r.history["example_loss"] for r in runs[half:]], 0)
            left.scatter(a, b, s=4, alpha=0.4, label=f"{condition} (agreement {s.agreement(condition)[0]:.2f})")
            right.plot(s.gini(condition), marker="o", label=condition)
        left.set(xlabel="example loss, replicates 1-4 (mean)", ylabel="example loss, replicates 5-8 (mean)")
        stage = f"training loss {run.target_loss:g}" if s.stage == "matched" else "epoch 1"
        left.set_title(f"Easy examples at {stage}, first seed", fontsize=10)
        right.set(xlabel="seed", ylabel="Gini of loss sensitivity (mean over replicates)")
        right.set_title(f"Loss sensitivity, {s.dataset}, {run.n_train} examples, 2x{run.width}", fontsize=10)
        for ax in (left, right):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        report.save_figure(fig, path)

    return {"example_difficulty.png" if s.stage == "matched" else "example_difficulty_first_epoch.png": plot}


@pytest.mark.parametrize("tier", C6_TIERS)
def test_easy_examples_after_the_first_epoch_are_shared_by_real_data_not_by_random_labels(tier, claims, decide):
    """C6, the paper's protocol: after one epoch, replicates agree on which real examples are easy, more
    than on which random-label examples are."""
    s = sweeps(claims, tier)["first epoch"]
    decide(
        "C6",
        s.easy_examples("random labels"),
        s.easy_examples("real, replicates"),
        tier=tier,
        dataset=s.dataset,
        note=f"{s.describe('real')}; {s.describe('random labels')}",
        control_note=f"real-label replicates in the place of random labels: {s.describe('real, replicates')}",
        compute_s=s.compute_s,
        figures=figures(s, SETTINGS[tier].examples.run),
    )


@pytest.mark.parametrize("tier", C6_MATCHED_TIERS)
def test_easy_examples_at_a_matched_stage_are_shared_by_real_data_not_by_random_labels(tier, claims, decide):
    """C6 at a matched stage: where both have reached training loss 1.0, replicates agree on which real
    examples are easy, more than on which random-label examples are."""
    s = sweeps(claims, tier)["matched"]
    decide(
        "C6",
        s.easy_examples("random labels"),
        s.easy_examples("real, replicates"),
        tier=tier,
        dataset=s.dataset,
        note=f"{s.describe('real')}; {s.describe('random labels')}",
        control_note=f"real-label replicates in the place of random labels: {s.describe('real, replicates')}",
        compute_s=s.compute_s,
        gates=(s.reached(),),
        figures=figures(s, SETTINGS[tier].examples.run),
    )


@pytest.mark.parametrize("tier", C9_TIERS)
def test_loss_sensitivity_is_concentrated_on_real_data(tier, claims, decide):
    """C9: the Gini coefficient of per-example loss sensitivity is higher with real labels than random ones."""
    s = sweeps(claims, tier)["matched"]
    decide(
        "C9",
        s.concentration("random labels"),
        s.concentration("real, replicates"),
        tier=tier,
        dataset=s.dataset,
        note=f"{s.describe('real')}; {s.describe('random labels')}",
        control_note=f"real-label replicates in the place of random labels: {s.describe('real, replicates')}",
        compute_s=s.compute_s,
        gates=(s.reached(),),
        figures=figures(s, SETTINGS[tier].examples.run),
    )
