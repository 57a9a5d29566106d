"""Per-example measures of the extended paper (Arpit et al., ICML 2017, "A Closer Look at Memorization
in Deep Networks"): how early each example is learned, and how sensitive the loss is to each
example's input, recorded while an MLP trains; the statistics its claims use; their settings.

    runs = [ExampleConfig(dataset="fashion-mnist", n_train=1000, noise="randY", noise_fraction=1.0,
                          seed=s, replicate=j, max_epochs=30, stop_when_fitted=False) for ...]
    r = store.get_or_train(runs, ds)[0]             # a RunResult of kind "mlp-examples"
    r.history["example_correct_epochs"]             # (n,) epochs at which each example was classified correctly
    r.history["example_learned_epoch"]              # (n,) first epoch from which it stayed correct (budget + 1: never)
    r.history["example_input_grad"]                 # (n,) mean over its updates of |d loss_i / d x_i|
    r.history["example_loss"], ["example_label"]    # (n,) its loss where the run ends; its training label (int16)
    agreement(scores, labels)                       # split-half reliability of per-example scores over replicates
    gini(values)                                    # concentration of a per-example measure

The rule: an `ExampleConfig` run is the MLP run of harness.train with the same fields (subset, noise,
model, SGD), plus `replicate`: replicate j > 0 of seed s keeps seed s's training set and its noise and
draws its own initialisation and data order, so the replicates of a seed differ only in where training
starts and in which order it sees the examples (replicate 0 starts where the plain run of seed s does).
Its group (`ExampleGroup`, harness.core.TrainingGroup) steps with autograd and takes every batch
example's input gradient from the same backward pass as the weights' (one more product, the first
layer's backward to its input), so the loss sensitivity costs no second pass: for example i of a
batch of b, |d loss_i / d x_i| = b |d (mean batch loss) / d x_i|, summed over the updates that use it
and divided by their number where the run ends. After each epoch's SGD steps one extra forward pass
over the training set records, per example, whether it is classified correctly (the count of such
epochs and the last epoch it was wrong, int16 each) and its loss (float32, kept for the last epoch
only), on the device: with the gradient sum 12 bytes per example and run, so even 50,000 examples x
100 runs take 60 MB beside the models. With `csr_radius` > 0 a run's critical sample ratio
(harness.adversarial) is measured where it ends (`critical_ratios`).

The kind registers itself in harness.kinds on import ("mlp-examples"; store keys hash this module
with the MLP's training code), so the claims of the workshop paper and their frozen designs are
untouched by it. Its settings live here (`SETTINGS`), for the same reason, not in harness.tiers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats as scipy_stats

from . import MLP_CODE, kinds, stats, torch_generator
from .adversarial import critical_sample_ratio
from .data import Dataset
from .models import BatchedMLP
from .train import METRICS, Group, RunConfig, forward_flops, memory

EXAMPLE_METRICS = (
    "example_correct_epochs",
    "example_learned_epoch",
    "example_loss",
    "example_input_grad",
    "example_label",
)


@dataclass(frozen=True)
class ExampleConfig(RunConfig):
    """An MLP run (harness.train.RunConfig) whose per-example measures are recorded; `replicate`:
    its initialisation and data order (0: those of the plain run of its seed)."""

    kind: ClassVar[str] = "mlp-examples"
    replicate: int = 0
    csr_radius: float = 0.0  # > 0: the critical sample ratio where the run ends, at this L-infinity radius
    csr_examples: int = 500  # validation examples (and real training inputs) the ratio is measured on

    def __post_init__(self):
        super().__post_init__()
        if self.replicate < 0:
            raise ValueError(f"replicate={self.replicate} must be 0 or more")
        if self.csr_radius < 0 or self.csr_examples < 1:
            raise ValueError(f"csr_radius={self.csr_radius} must be >= 0 and csr_examples={self.csr_examples} >= 1")

    def shape(self) -> tuple:
        """Everything but condition, seed and replicate: what runs must share to train in one batch."""
        return tuple(v for k, v in self.key().items() if k not in ("noise", "noise_fraction", "seed", "replicate"))

    def stream(self):
        """The seed of its initialisation and data order: its seed, or (seed, replicate)."""
        return self.seed if self.replicate == 0 else (self.seed, "replicate", self.replicate)


class ExampleGroup(Group):
    """harness.train.Group with each run's stream (`ExampleConfig.stream`) for initialisation and data
    order, an autograd step that also takes the input gradient, and the per-example records."""

    def __init__(self, runs: list[ExampleConfig], ds: Dataset, device="cpu", dtype=torch.float32, fused: bool = False):
        super().__init__(runs, ds, device, dtype, fused=False)
        c = self.c
        self.model.glorot_([torch_generator(r.stream(), "init", r.width, r.depth) for r in runs])
        self.snapshot = [p.detach().clone() for p in self.model.parameters()]
        streams = list(dict.fromkeys(r.stream() for r in runs))
        self.seeds = streams  # Group.step draws each stream's order: epoch_order(stream, epoch, n)
        self.seed_row = torch.tensor([streams.index(r.stream()) for r in runs], device=self.device)
        M, n = len(runs), c.n_train
        self.correct_epochs = torch.zeros(M, n, dtype=torch.int16, device=self.device)
        self.last_wrong = torch.zeros(M, n, dtype=torch.int16, device=self.device)
        self.grad_sum = torch.zeros(M, n, dtype=torch.float32, device=self.device)
        self.loss = torch.zeros(M, n, dtype=torch.float32, device=self.device)
        if c.max_epochs >= 2**15:
            raise ValueError(f"max_epochs={c.max_epochs}: per-example epochs are int16, so at most 32767")

    def checkpoint_bytes(self) -> int:
        return super().checkpoint_bytes() + 12 * self.grad_sum.numel()

    def state(self) -> dict[str, np.ndarray]:
        return {
            **super().state(),
            "ex_correct": self.correct_epochs.cpu().numpy(),
            "ex_last_wrong": self.last_wrong.cpu().numpy(),
            "ex_grad": self.grad_sum.cpu().numpy(),
            "ex_loss": self.loss.cpu().numpy(),
        }

    def resume(self, state: dict | None) -> float:
        """Continue from a checkpoint that holds the per-example records too (else start over)."""
        mine = ("ex_correct", "ex_last_wrong", "ex_grad", "ex_loss")
        if state is not None and not all(k in state and state[k].shape == self.grad_sum.shape for k in mine):
            state = None
        elapsed = super().resume(state)
        if self.epoch:
            self.correct_epochs.copy_(torch.from_numpy(state["ex_correct"]))
            self.last_wrong.copy_(torch.from_numpy(state["ex_last_wrong"]))
            self.grad_sum.copy_(torch.from_numpy(state["ex_grad"]))
            self.loss.copy_(torch.from_numpy(state["ex_loss"]))
        return elapsed

    def step(self, steps: int | None = None) -> None:
        """One epoch of plain SGD (autograd, torch.optim.SGD) of the runs still training, each in its
        stream's order; every example's input-gradient norm is added to its sum."""
        c, model, n = self.c, self.model, self.c.n_train
        rows = torch.from_numpy(self.active).to(self.device)
        order = torch.stack([_order(s, self.epoch, n) for s in self.seeds]).to(self.device)[self.seed_row[rows]]
        opt = torch.optim.SGD(model.parameters(), lr=c.lr)  # stateless, so rebuilding it is free
        model.train()
        for start in range(0, n, c.batch_size)[:steps]:
            idx = order[:, start : start + c.batch_size]  # (A, b)
            x = self.X[rows[:, None], idx].requires_grad_()
            logits = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1), self.Y[rows[:, None], idx].flatten(), reduction="none")
            opt.zero_grad(set_to_none=True)
            loss.view(len(rows), -1).mean(1).sum().backward()  # sum of per-model means: independent grads
            opt.step()
            self.grad_sum[rows[:, None], idx] += x.grad.flatten(2).norm(dim=-1) * idx.shape[1]

    @torch.no_grad()
    def evaluate(self, force: bool = False) -> None:
        """Each example's correctness and loss at the epoch's end, then Group.evaluate's measurements."""
        rows, epoch = torch.from_numpy(self.active).to(self.device), self.epoch + 1
        self.model.eval()
        for s in range(0, self.c.n_train, 8192):
            logits, y = self.model(self.X[rows, s : s + 8192]), self.Y[rows, s : s + 8192]
            right = logits.argmax(-1) == y
            self.loss[rows, s : s + 8192] = F.cross_entropy(logits.transpose(1, 2), y, reduction="none")
            self.correct_epochs[rows, s : s + 8192] += right.to(torch.int16)
            wrong = self.last_wrong[rows, s : s + 8192]
            self.last_wrong[rows, s : s + 8192] = torch.where(right, wrong, torch.full_like(wrong, epoch))
        super().evaluate(force)

    def finish(self) -> None:
        """Group.finish, then the critical sample ratio of the runs that ask for it (`critical_ratios`)."""
        super().finish()
        rows = [m for m, r in enumerate(self.runs) if r.csr_radius > 0]
        if rows:
            for m, values in zip(rows, critical_ratios(self, rows)):
                self.measures[m].update(values)

    def results(self, wall: float) -> list:
        """Group.results with the per-example records in each run's history (EXAMPLE_METRICS)."""
        out = super().results(wall)
        for m, r in enumerate(out):
            trained = r.epochs_run
            r.history["example_correct_epochs"] = self.correct_epochs[m].double().cpu().numpy()
            r.history["example_learned_epoch"] = self.last_wrong[m].double().cpu().numpy() + 1
            r.history["example_loss"] = self.loss[m].double().cpu().numpy()
            r.history["example_input_grad"] = self.grad_sum[m].double().cpu().numpy() / trained
            r.history["example_label"] = self.Y[m].cpu().numpy().astype(np.int16)
        return out


def critical_ratios(group: ExampleGroup, rows: list[int]) -> list[dict]:
    """Each run's critical sample ratio (harness.adversarial, the run's csr_radius, the search's
    defaults) at its end state on the first csr_examples validation examples ("csr_val", the same
    examples for every run, untouched by noise) and on its first csr_examples training examples whose
    inputs are real ("csr_train": all of them under random labels, the ones not replaced under random
    inputs; NaN when it has fewer)."""
    c = group.c
    m = min(c.csr_examples, len(group.Xv))

    def ratios(at: list[int], x: torch.Tensor) -> list[float]:  # the runs `at`, each on its x[i] (m, d)
        model = BatchedMLP(len(at), group.sizes).to(group.device, group.dtype)
        idx = torch.tensor(at, device=group.device)
        with torch.no_grad():
            for p, s in zip(model.parameters(), group.snapshot):
                p.copy_(s[idx])
        return critical_sample_ratio(model, x, c.csr_radius).tolist()

    out = [{"csr_val": v, "csr_train": float("nan")} for v in ratios(rows, group.Xv[:m].expand(len(rows), -1, -1))]
    real = {k: torch.nonzero(~group.noise[k] | (group.runs[k].noise == "randY"))[:m, 0] for k in rows}
    enough = [i for i, k in enumerate(rows) if len(real[k]) == m]
    if enough:
        x = torch.stack([group.X[rows[i], real[rows[i]]] for i in enough])
        for i, v in zip(enough, ratios([rows[i] for i in enough], x)):
            out[i]["csr_train"] = v
    return out


def _order(stream, epoch: int, n: int) -> torch.Tensor:
    """A stream's data order in one epoch (harness.core.epoch_order for a seed or (seed, replicate))."""
    return torch.randperm(n, generator=torch_generator(stream, "order", epoch))


def _memory(run: ExampleConfig, ds: Dataset) -> tuple[int, int]:
    """harness.train.memory plus the per-example records (12 bytes per example) and the autograd
    step's stored activations."""
    once, per_run = memory(run, ds)
    return once, per_run + 12 * run.n_train + 4 * 2 * run.batch_size * run.width * run.depth


kinds.KINDS[ExampleConfig.kind] = kinds.Kind(
    ExampleConfig.kind,
    ExampleConfig,
    ExampleGroup,
    METRICS + EXAMPLE_METRICS,
    _memory,
    forward_flops,
    (*MLP_CODE, "examples.py", "adversarial.py"),
    "models",
)


# Statistics of per-example measures.


def agreement(scores: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Split-half reliability of per-example scores over replicates: `scores` (R, n), R >= 2 runs
    that share their examples. For every split of the R runs into two halves of R // 2 (the rest
    left out when R is odd), Spearman's rho over the n examples between the halves' mean scores;
    the mean over all splits. 1: the runs rank the examples alike; 0: no agreement beyond chance.
    With `groups` (n,), e.g. the training labels, each run's scores are first centred within each
    group, so only differences between examples of one group count, not between groups. A half
    whose scores are all equal gives rho 0."""
    scores = np.array(scores, float)
    R = len(scores)
    if R < 2:
        raise ValueError("agreement needs at least 2 replicates")
    if groups is not None:
        for g in np.unique(groups):
            of = np.asarray(groups) == g
            scores[:, of] -= scores[:, of].mean(1, keepdims=True)
    half = R // 2
    rhos = []
    for first in itertools.combinations(range(R), half):
        if 0 not in first:  # each split once: the half holding run 0
            continue
        second = [j for j in range(R) if j not in first][:half]
        a, b = scores[list(first)].mean(0), scores[second].mean(0)
        rhos.append(0.0 if np.ptp(a) == 0 or np.ptp(b) == 0 else float(scipy_stats.spearmanr(a, b).statistic))
    return float(np.mean(rhos))


def gini(values) -> float:
    """The Gini coefficient of non-negative values: 0 when all are equal, near 1 when one holds all
    (mean absolute difference over all pairs / twice the mean)."""
    x = np.sort(np.asarray(values, float))
    n = len(x)
    if n == 0 or np.any(x < 0):
        raise ValueError("gini needs non-negative values")
    if x.sum() == 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def paired_difference_test(a, b, *, alpha: float, min_difference: float) -> stats.Verdict:
    """H1: in each seed (block), a exceeds b. The exact one-sided sign test of a - b > 0 (ties count
    against H1); effect: the median difference with its order-statistic interval, which must reach
    `min_difference`. Reverse: the sign test of b - a > 0 and a median at most -min_difference.
    Absent: the seeds whose difference is below the minimum, exact sign test. Power: each seed's
    difference Gaussian with the observed standard deviation around the minimum, so a seed supports
    H1 with probability Phi(min_difference / sd): the exact binomial power of that probability
    (harness.stats.censored_sign_test's rule, on differences instead of ratios)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    n = len(d)
    if n == 0 or len(np.asarray(b)) != n:
        raise ValueError("a and b must be non-empty and of one length")
    k, k_against, k_below = int((d > 0).sum()), int((d < 0).sum()), int((d < min_difference).sum())
    lo, hi, level = stats.median_interval(d)
    sd = float(np.std(d, ddof=1)) if n > 1 else 0.0
    q = 1.0 if sd == 0 else float(scipy_stats.norm.cdf(min_difference / sd))
    return stats._verdict(
        "exact one-sided sign test of paired differences",
        k,
        p=stats._sign_p(k, n),
        alpha=alpha,
        effect=float(np.median(d)),
        effect_name="median difference",
        interval=(lo, hi),
        interval_level=level,
        min_effect=min_difference,
        reverse_min=-min_difference,
        n=n,
        p_reverse=stats._sign_p(k_against, n),
        p_absent=stats._sign_p(k_below, n),
        power_curve=stats.binomial_power(q, alpha),
        details={"a": np.asarray(a, float).tolist(), "b": np.asarray(b, float).tolist(), "difference_sd": sd},
    )


# Settings of the extended paper's sweeps, per tier (the reasons: docs/design.md#the-extended-papers-claims).


@dataclass(frozen=True)
class Examples:
    """C6 (easy examples) and C9 (loss sensitivity): per seed one training set, `replicates` runs
    (initialisations and data orders) with real labels, as many with random labels and as many more
    with real labels for the negative controls; every run ends at training loss run.target_loss."""

    run: ExampleConfig  # noise, seed and replicate filled in per run
    replicates: int
    seeds: int


@dataclass(frozen=True)
class Critical:
    """C8 (critical sample ratio): over noise levels of random labels and of random inputs, at the
    matched training loss run.target_loss, the ratio at radius run.csr_radius."""

    run: ExampleConfig  # noise and seed (and replicate, for the control's levels) filled in per run
    levels: tuple[float, ...]  # noise fractions, increasing; 0 = real data
    seeds: int


@dataclass(frozen=True)
class Settings:
    examples: Examples
    critical: Critical


SETTINGS = {
    # 500 examples (labels only are noise: no input-dimension bound), 8 replicates a seed; the matched
    # stage, training loss 1.0, comes after 3-6 epochs on real labels and 61-85 on random ones.
    "smoke": Settings(
        Examples(
            ExampleConfig(
                n_train=500,
                n_val=500,
                width=256,
                lr=0.1,
                batch_size=32,
                max_epochs=400,
                val_every=50,
                pool=2,
                target_loss=1.0,
            ),
            replicates=8,
            seeds=8,
        ),
        # n = 1,600 at d = 196 (n/d 8.2, so random inputs are not separable for free); training loss 0.3.
        Critical(
            ExampleConfig(
                n_train=1600,
                n_val=500,
                width=128,
                lr=0.1,
                batch_size=32,
                max_epochs=600,
                val_every=50,
                pool=2,
                target_loss=0.3,
                csr_radius=0.02,
                csr_examples=500,
            ),
            levels=(0.0, 1 / 3, 2 / 3, 1.0),
            seeds=8,
        ),
    ),
    # The paper's MLP and learning rate on 10,000 examples (n/d 12.8 for random inputs).
    "full": Settings(
        Examples(
            ExampleConfig(
                n_train=10_000,
                n_val=10_000,
                width=4096,
                lr=0.01,
                batch_size=32,
                max_epochs=500,
                val_every=50,
                target_loss=1.0,
            ),
            replicates=4,
            seeds=8,
        ),
        Critical(
            ExampleConfig(
                n_train=10_000,
                n_val=10_000,
                width=4096,
                lr=0.01,
                batch_size=32,
                max_epochs=1000,
                val_every=50,
                target_loss=0.3,
                csr_radius=0.02,
                csr_examples=1000,
            ),
            levels=(0.0, 1 / 3, 2 / 3, 1.0),
            seeds=8,
        ),
    ),
}
