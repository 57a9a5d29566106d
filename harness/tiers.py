"""Tier settings, in one place: what `-m smoke` and `-m full` train for each claim.

full  = the paper's setup (docs/design.md): 2x4096 ReLU MLP, 50,000 training / 10,000 validation
        examples, plain SGD lr 0.01, batch 32, up to 1,000 epochs. Meant for GPUs. 8 seeds (the paper
        used 5), so that sign and binomial tests can decide with one seed against (7/8: p = 0.035),
        in two waves of 4: a claim whose first 4 seeds lean away from it stops there (inconclusive).
        Deviations, each for a verdict that can decide within a cost-model upper bound of about 11
        H200-hours (docs/design.md, "The full tier's designs"): C1 and C2c on three noise levels, C2c's
        sizes up to 25,000; C3 at lr 0.0025 and batch 4 on a 2x1024 MLP and 10,000 examples, up to
        2,000 epochs; C2c and C3 validate on 1,000 examples; C4 on 10,000 examples for 100 epochs, lr
        halved every 25.
smoke = the same designs shrunk to minutes on 2 CPU cores, with deliberate deviations: images
        average-pooled to 14x14 (d = 196) wherever inputs can be noise, so that random inputs have
        n/d of 8 or more (below n = 2d Gaussian points are separable under any labelling); 2x256
        units; lr 0.1; validation every 5 epochs; 8 seeds, so that one seed may disagree in an exact
        sign test (7/8: p = 0.035; with 5 every seed must agree). The reasons and pilots behind each
        setting: docs/design.md, "The claims' designs" and "Smoke designs".
Batch size 32 is not stated in the paper (Keras' default; the authors used Keras).
`--seeds` and `--base-seed` override the seeds of every tier; `--dataset` the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .cnn import CNNConfig
from .stats import FAILURES
from .train import RunConfig


def tier_params(*values, expect: dict[str, tuple[str, ...]] | None = None, because: str = "") -> list:
    """A claim test's `tier` parametrization: its smoke and its full variant, each with its marker,
    and `values` after the tier (e.g. a noise kind). `expect` records, per dataset, the outcomes a
    claim that does not hold at smoke scale at every seed set was measured to have there
    ({"fashion-mnist": ("absent",)}), with `because`, what was found (its numbers live in the report,
    not here): on that dataset the test then expects one of them (a failure outcome ends as an xfail)
    and fails on any other, "holds" included unless recorded; "holds" may be recorded only beside a
    failure, for a verdict that changes with the seed set; on a dataset without a record the test
    asserts the claim (harness.decision.conclude)."""
    for dataset, outcomes in (expect or {}).items():
        if not set(outcomes) & set(FAILURES) or set(outcomes) - {"holds", *FAILURES}:
            raise ValueError(
                f"expect[{dataset!r}]={outcomes!r}: choose from {FAILURES}, with 'holds' beside one "
                "for a verdict that changes with the seed set"
            )
    smoke = [pytest.mark.smoke]
    if expect:
        smoke.append(pytest.mark.expect_outcome(expect, because=because))
    return [pytest.param("smoke", *values, marks=smoke), pytest.param("full", *values, marks=pytest.mark.full)]


@dataclass(frozen=True)
class Scaling:
    """C2c (Fig. 2): time to fit over dataset sizes (at run.width) and widths (at run.n_train), with
    training sets nested over sizes (run.nested: the larger set holds the smaller, noise included)."""

    run: RunConfig  # the point both panels share; noise, seed, n_train or width filled in per run
    sizes: tuple[int, ...]  # training examples, increasing, each >= 8 d where inputs are noise
    widths: tuple[int, ...]  # hidden units per layer, increasing
    levels: tuple[float, ...]  # share of inputs replaced by Gaussian noise (randX), ordered; 0 = real
    seeds: int


@dataclass(frozen=True)
class Capacity:
    """C1 (Fig. 1): validation accuracy at the end of training over widths, per noise type and level,
    on all validation examples (run.n_val)."""

    run: RunConfig  # width, noise and seed filled in per run
    widths: tuple[int, ...]  # hidden units per layer, increasing; the last two give the plateau check
    levels: tuple[float, ...]  # noise fractions, for randX and randY each; 0 = real data
    tolerance: float  # validation accuracy within this of a seed's best over widths counts as maximal
    seeds: int


@dataclass(frozen=True)
class Sharpness:
    """C3 (Fig. 3 left): sharpness where each run first reaches run.target_loss (a matched training
    loss), with run.lr small enough that the top eigenvalue stays far below 2/lr."""

    run: RunConfig  # noise and seed filled in per run
    levels: tuple[float, ...]  # noise fractions, for randX and randY each; 0 = real data
    seeds: int


@dataclass(frozen=True)
class Regularization:
    """C4 (Fig. 3 right): a small AlexNet-style CNN on real and on random labels, per regularizer and
    strength (strength 0, the unregularized model, is shared by every curve)."""

    run: CNNConfig  # labels, regularizer, strength and seed filled in per run
    strengths: tuple[tuple[str, tuple[float, ...]], ...]  # (regularizer, increasing strengths > 0)
    seeds: int


@dataclass(frozen=True)
class Tier:
    name: str
    seeds: int  # seeds per condition; seed s is a paired block across conditions
    time_to_fit: RunConfig  # C2b, C5 (and C1's base): noise and seed are filled in per run
    labels: RunConfig  # C0, C2a: real against random labels, no random inputs
    scaling: Scaling  # C2c
    capacity: Capacity  # C1
    sharpness: Sharpness  # C3
    regularization: Regularization  # C4
    waves: int = 1  # seeds train in this many equal waves; each but the last may stop a claim (Session.seeds)


TIERS = {
    "smoke": Tier(
        "smoke",
        seeds=8,
        time_to_fit=RunConfig(
            n_train=2000, n_val=1000, width=256, lr=0.1, batch_size=32, max_epochs=400, val_every=5, pool=2
        ),
        # No random inputs, so no pooling: 14x14 images merge near-duplicates with different labels.
        labels=RunConfig(n_train=1000, n_val=1000, width=256, lr=0.1, batch_size=32, max_epochs=400, val_every=5),
        # Nested sizes 1,600-4,525 (n/d 8.2-23) at 2x128; widths 16-128 at n = 1,600, the narrowest binding.
        scaling=Scaling(
            RunConfig(
                n_train=1600,
                n_val=500,
                width=128,
                lr=0.1,
                batch_size=32,
                max_epochs=600,
                val_every=50,
                pool=2,
                nested=True,
            ),
            sizes=(1600, 2263, 3200, 4525),
            widths=(16, 32, 64, 128),
            levels=(0.0, 0.4, 0.8),
            seeds=8,
        ),
        # All 10,000 validation examples (1 point is about 3 standard errors); 1,600 epochs, the shortest
        # budget at which a pilot had 95% of each noise type's runs converged; 5 seeds for CI's budget.
        capacity=Capacity(
            RunConfig(
                n_train=2000, n_val=10_000, width=256, lr=0.1, batch_size=32, max_epochs=1600, val_every=25, pool=2
            ),
            widths=(16, 32, 64, 128, 256),
            levels=(0.0, 0.2, 0.4, 0.6, 0.8),
            tolerance=0.01,
            seeds=5,
        ),
        # At a matched training loss of 0.1; lr 0.0025 at batch 4, the first setting from which halving
        # both moves no condition's mean eigenvalue by more than 10%; both estimators on every model.
        sharpness=Sharpness(
            RunConfig(
                n_train=2000,
                n_val=500,
                width=128,
                lr=0.0025,
                batch_size=4,
                max_epochs=2000,
                val_every=100,
                sharpness="both",
                pool=2,
                target_loss=0.1,
            ),
            levels=(0.0, 1 / 3, 2 / 3, 1.0),
            seeds=8,
        ),
        # 256 examples, 8 filters on 14x14 inputs; lr 0.05 halved every 20 epochs, so that without
        # regularization random labels are memorized (98-100%) within 50 epochs; 432 CNNs in one batch.
        regularization=Regularization(
            CNNConfig(
                n_train=256,
                n_val=5000,
                channels=8,
                dense=(384, 192),
                downsample=2,
                lr=0.05,
                halve_every=20,
                batch_size=32,
                epochs=50,
                val_every=50,
            ),
            strengths=(
                ("dropout", (0.1, 0.3, 0.5, 0.7, 0.9)),
                ("input_dropout", (0.1, 0.3, 0.5, 0.7, 0.9)),
                ("gaussian", (0.25, 0.5, 1.0, 2.5, 5.0)),
                ("weight_decay", (1e-4, 1e-3, 1e-2, 1e-1, 1.0)),
            ),
            seeds=8,
        ),
    ),
    "full": Tier(
        "full",
        seeds=8,
        waves=2,
        time_to_fit=RunConfig(
            n_train=50_000, n_val=10_000, width=4096, lr=0.01, batch_size=32, max_epochs=1000, val_every=1
        ),
        labels=RunConfig(
            n_train=50_000, n_val=10_000, width=4096, lr=0.01, batch_size=32, max_epochs=1000, val_every=1
        ),
        # Nested sizes 6,250-25,000 at 2x4096 (n/d 8-32: the paper's 50,000 halved three times) and widths
        # 512-4096 at n = 25,000, sharing the 25,000 x 4096 point; the smoke tier's levels. 50,000 examples
        # would double the sweep's cost for a third doubling of n (docs/design.md, "The full tier").
        scaling=Scaling(
            RunConfig(
                n_train=25_000,
                n_val=1000,
                width=4096,
                lr=0.01,
                batch_size=32,
                max_epochs=1000,
                val_every=10,
                nested=True,
            ),
            sizes=(6250, 12_500, 25_000),
            widths=(512, 1024, 2048, 4096),
            levels=(0.0, 0.4, 0.8),
            seeds=8,
        ),
        # The paper's widths up to its 4096 (0.25-64 first-layer weights per example), where its sentence
        # puts real data's plateau; a noisy curve still rising there needs 4096 (a tie at the top), so
        # a wider point would not change the trend test. Three levels, as in C2c.
        capacity=Capacity(
            RunConfig(n_train=50_000, n_val=10_000, width=4096, lr=0.01, batch_size=32, max_epochs=1000, val_every=10),
            widths=(16, 64, 256, 1024, 4096),
            levels=(0.0, 0.4, 0.8),
            tolerance=0.01,
            seeds=8,
        ),
        # The smoke tier's lr 0.0025 at batch 4: at batch 32 lr x eigenvalue / 2 stayed near 0.4 from lr
        # 0.01 down to 0.0025 (the eigenvalue rises as lr falls). 2x1024 on 10,000 unpooled examples keeps
        # the paper's 64-80 first-layer weights per example (n/d 12.8) at a batch-4 step a GPU can afford
        # (2x4096 would cost 11 times as much: weight traffic); the smoke tier's four levels. Power
        # iteration only (LeCun's estimator would cost hundreds of gradient passes per model).
        sharpness=Sharpness(
            RunConfig(
                n_train=10_000,
                n_val=1000,
                width=1024,
                lr=0.0025,
                batch_size=4,
                max_epochs=2000,
                val_every=100,
                sharpness="power",
                target_loss=0.1,
            ),
            levels=(0.0, 1 / 3, 2 / 3, 1.0),
            seeds=8,
        ),
        # The paper's CNN (CIFAR-10 cropped to 28x28, Zhang et al.'s 64 filters, momentum 0.9, batch 128,
        # the paper's strength ranges) on 10,000 examples, lr 0.01 halved every 25 epochs for 100: under
        # the paper's halving every 10 a CPU pilot's unregularized CNN fitted half of 2,000 random labels
        # in 50 epochs; halving every 25, it memorized them (docs/design.md, "The full tier").
        regularization=Regularization(
            CNNConfig(
                n_train=10_000,
                n_val=10_000,
                crop=28,
                channels=64,
                dense=(384, 192),
                lr=0.01,
                halve_every=25,
                batch_size=128,
                epochs=100,
                val_every=10,
            ),
            strengths=(
                ("dropout", (0.1, 0.3, 0.5, 0.7, 0.9)),
                ("input_dropout", (0.1, 0.3, 0.5, 0.7, 0.9)),
                ("gaussian", (0.25, 0.5, 1.0, 2.5, 5.0)),
                ("weight_decay", (1e-4, 1e-3, 1e-2, 1e-1, 1.0)),
            ),
            seeds=8,
        ),
    ),
}
