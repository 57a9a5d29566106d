"""Claim C3 (paper Fig. 3 left): sharpness at convergence rises with input noise and label noise.

"As we increase the amount of noise in the training data, we observe an increase in this sharpness
around the local minima of the learned function", sharpness being the norm of the largest
eigenvalue of the loss Hessian, estimated with the method of LeCun, Simard & Pearlmutter (1993).

Design (settings in harness/tiers.py, `Sharpness`): every run trains with plain SGD until its first
epoch with training loss (mean cross-entropy over its whole training set, noise included) at most
the tier's target (0.1), so that every noise level is measured at the same loss: sharpness under
cross-entropy falls as the loss falls, and a first design that measured at the first 100% epoch
compared losses that differed by condition. The learning rate must keep the top eigenvalue far
below 2/lr, where gradient descent would cap it ("edge of stability", Cohen et al. 2021); the report
gives lr x eigenvalue / 2 (1 at the cap). Under SGD the eigenvalue rises as lr falls, so a smaller
lr alone does not do it: at batch 32, lr 0.02 gave lr x eigenvalue / 2 up to 0.47, with every
condition near 40. The smoke tier halves lr and batch together, which keeps lr/batch (the scale of
SGD's noise) and the epochs to the target while the cap recedes, down to the first setting from
which a further halving moves no condition's mean eigenvalue by more than 10% on pilot seeds: lr
0.0025 at batch 4 (lr x eigenvalue / 2 at most 0.11 there; the pilot's table is in docs/design.md).
The full tier keeps the paper's lr 0.01 at batch 32 (batch 4 would take 8 times the steps); its
report's lr x eigenvalue / 2 says whether the learning rate decided it.
A run that never reaches the target is measured at the budget and counted. The top eigenvalue of
that training loss is measured by power iteration on exact Hessian-vector products
(harness/sharpness.py, checked against exact Hessians in tests/test_sharpness.py); the smoke tier
also runs the paper's estimator on every model and reports the agreement. Images are pooled to 14x14
in the smoke tier (d = 196, n/d = 10.2, so random inputs are not trivially separable). Four noise
levels for randX and randY separately, level 0 being the shared real-data runs; seeds are paired
blocks. For the negative control, "sham" levels choose the same examples as each noise level but
leave them unchanged (real data at every level, the same pipeline). Weight norms are reported beside
sharpness, which is not scale-invariant (Dinh et al. 2017), and so is the top eigenvalue of the
training inputs' second-moment matrix E[x x^T] per level: the loss Hessian's first-layer block is a
sum of x x^T terms weighted by the layers above, and the paper's Gaussian inputs (i.i.d. pixels with
the data's mean and standard deviation) lack the pixel correlations of images, so that eigenvalue
falls as they replace real inputs (27.3, 22.3, 18.3, 16.2 at 0, 1/3, 2/3, 100% in the smoke tier).
A pilot (seeds 1000-1007, docs/design.md; docs/pilots/structured_noise.py) drew the noise inputs
instead from a Gaussian with the training split's per-pixel mean and covariance, which keeps that
eigenvalue near the real data's (26.6-28.1): sharpness then rose with the noise share (54.8, 63.3,
69.0, 75.2; Page's L mean rho 0.95, p 2.6e-9), while with the paper's noise it fell (54.8, 46.7,
38.4, 20.9; rho -0.975). So under this design the sign of the randX effect follows the noise
model's input spectrum. The test keeps the paper's noise and reports its contradiction as the finding.

Decision rule, fixed before running (alpha = 0.05), per noise type: Page's L test that the top
eigenvalue increases with the noise level, seeds as blocks; minimum effect: mean Spearman rho
>= 0.5. Negative control: the same test over the sham levels (real data at level 0) must not pass;
it would if an artifact of the pipeline grew with the noise fraction.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

from harness import numpy_generator, report, stats
from harness.core import RunResult
from harness.tiers import tier_params

PAPER_DATASET = "mnist"
ALPHA = 0.05
MIN_RHO = 0.5  # mean Spearman rho of sharpness against noise level


@dataclass
class Sweep:
    tier: str
    dataset: str
    levels: tuple[float, ...]
    lr: float
    target_loss: float
    results: dict[str, list[list[RunResult]]]  # randX/randY/control (sham) -> [level][seed]
    compute_s: float
    # randX/randY/control -> (seeds, levels) top eigenvalue of the training inputs' E[x x^T]
    input_eig: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def table(self, kind: str, key: str = "sharpness") -> np.ndarray:
        """(seeds, levels) of a measure ("weight_norm" for the norms)."""
        get = (lambda r: r.weight_norm) if key == "weight_norm" else (lambda r: r.measures[key])
        return np.array([[get(r) for r in col] for col in self.results[kind]]).T

    def trend(self, kind: str) -> stats.Verdict:
        rng = numpy_generator("bootstrap", "C3", kind, self.tier, self.dataset)
        return stats.page_trend(self.table(kind), alpha=ALPHA, min_effect=MIN_RHO, rng=rng)

    def describe(self, kind: str) -> str:
        levels = [f"{'sham ' if kind == 'control' and lv else ''}{lv:.0%}" for lv in self.levels]
        eig, norm = self.table(kind).mean(0), self.table(kind, "weight_norm").mean(0)
        loss = np.array([[r.history["train_loss"][-1] for r in col] for col in self.results[kind]])  # (levels, seeds)
        unfitted = sum(not r.fitted for col in self.results[kind] for r in col)
        text = "; ".join(f"{lv}: top eigenvalue {e:.3g}, weight norm {w:.3g}" for lv, e, w in zip(levels, eig, norm))
        inputs = ("" if kind not in self.input_eig else "; top eigenvalue of the training inputs' E[x x^T] per "
                  "level " + "/".join(f"{e:.3g}" for e in self.input_eig[kind].mean(0)))
        return (f"means over seeds, {text}; measured at training loss {loss.min():.3f}-{loss.max():.3f} (target "
                f"{self.target_loss:g}); {unfitted} runs never reached it (measured at the budget); "
                f"lr x eigenvalue / 2 at most {self.lr * self.table(kind).max() / 2:.2f} (1 = the 2/lr cap){inputs}")


def sweep(claims, tier: str) -> Sweep:
    sh = claims.tier(tier).sharpness
    seeds = claims.seeds(tier, default=sh.seeds)

    def design(dataset):
        base = dataclasses.replace(sh.run, dataset=dataset)
        return {col: [[dataclasses.replace(base, noise=kind if f else "none", noise_fraction=f, seed=s) for s in seeds]
                      for f in sh.levels]
                for col, kind in (("randX", "randX"), ("randY", "randY"), ("control", "sham"))}
    t = claims.sweep("sharpness", tier, PAPER_DATASET, design)
    inputs = {kind: np.array([[r.measures["inputs_top_eigenvalue"] for r in col] for col in cols]).T
              for kind, cols in t.results.items()}
    return Sweep(tier, t.dataset, sh.levels, sh.run.lr, sh.run.target_loss, t.results, t.compute_s, inputs)


def plot(s: Sweep, path, run):
    fig, ax = report.new_figure()
    for kind, label in (("randX", "input noise (randX)"), ("randY", "label noise (randY)")):
        t = s.table(kind)  # (seeds, levels)
        ax.plot(s.levels, t.mean(0), marker="o", label=f"{label}, n={t.shape[0]}")
        ax.fill_between(s.levels, t.min(0), t.max(0), alpha=0.2)
    ax.set(xlabel="fraction of training examples replaced by noise",
           ylabel=f"top Hessian eigenvalue at train loss {s.target_loss:g}",
           yscale="log")
    ax.set_title(f"Sharpness, {s.dataset}, {run.n_train} examples, 2x{run.width} MLP, lr {run.lr}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    report.save_figure(fig, path)


def agreement(s: Sweep) -> str:
    runs = list({id(r): r for k in ("randX", "randY", "control") for col in s.results[k] for r in col}.values())
    rel = [abs(r.measures["sharpness_lecun"] / r.measures["sharpness"] - 1) for r in runs
           if "sharpness_lecun" in r.measures]
    if not rel:
        return "the paper's estimator was not run in this tier"
    return (f"the paper's estimator vs power iteration: median relative difference {np.median(rel):.1%}, "
            f"90th percentile {np.percentile(rel, 90):.1%} over {len(rel)} models")


def check_trend(kind: str, tier, claims, decide):
    s = sweep(claims, tier)
    v, control = s.trend(kind), s.trend("control")
    note = f"{s.describe(kind)}; {agreement(s)}"
    decide("C3", v, control, tier=tier, dataset=s.dataset, note=note, compute_s=s.compute_s,
           control_note=f"sham levels (the examples of each level chosen but left unchanged); {s.describe('control')}",
           figures={"fig3_sharpness.png": lambda path: plot(s, path, claims.tier(tier).sharpness.run)})


RANDX_TIERS = tier_params(expect=("contradicted",), smoke_fails=(
    "at a matched training loss of 0.1 (Fashion-MNIST at 14x14, n 2,000, 2x128, lr 0.0025 at batch 4, 8 seeds; base "
    "seed 0, CPU) the top eigenvalue falls as Gaussian inputs replace real ones: 57.5 (real), 47.4, 36.3, 20.5 "
    "(100%), mean rho -1, reverse p 9.1e-12, with lr x eigenvalue / 2 at most 0.08, far below the 2/lr cap; "
    "contradicted at each of --base-seed 1..4 too, and at lr 0.02 and batch 32 before (rho -0.84 to -1). The inputs' "
    "top second-moment eigenvalue falls with it (27.3 to 16.2); with Gaussian inputs that keep the data's covariance "
    "a pilot saw sharpness rise instead (module docstring)"))
RANDY_TIERS = tier_params()


@pytest.mark.parametrize("tier", RANDX_TIERS)
def test_sharpness_rises_with_input_noise(tier, claims, decide):
    """C3, randX: the top Hessian eigenvalue at a matched training loss grows with the share of Gaussian inputs."""
    check_trend("randX", tier, claims, decide)


@pytest.mark.parametrize("tier", RANDY_TIERS)
def test_sharpness_rises_with_label_noise(tier, claims, decide):
    """C3, randY: the top Hessian eigenvalue at a matched training loss grows with the share of random labels."""
    check_trend("randY", tier, claims, decide)
