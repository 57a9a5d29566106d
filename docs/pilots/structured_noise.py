"""Pilot for claims C3, C2b and C5 (docs/design.md, "Sharpness (C3)": why sharpness falls with the
paper's input noise, and the same two noise models at the time-to-fit setting): do the verdicts
on random inputs depend on the paper's noise model, i.i.d. Gaussian pixels without the correlations
of images?

Every randX condition is trained twice, on seeds 1000-1007: with the paper's noise (i.i.d. Gaussian
pixels with the data's mean and standard deviation, the harness's randX) and with Gaussian inputs
that keep the training split's per-pixel mean and covariance ("covariance-matched"; the same
examples are replaced, with the same standard-normal draws).
- C3, the smoke tier's setting (harness/tiers.py: 2x128 MLP, n 2,000 at 14x14, lr 0.0025 at batch
  4, measured where the training loss first reaches 0.1, power iteration), noise levels 0, 1/3, 2/3
  and 1: the mean top Hessian eigenvalue, the top eigenvalue of the training inputs' E[x x^T], and
  Page's L over the seeds.
- C2b and C5, the smoke tier's time-to-fit setting (2x256, n 2,000 at 14x14, lr 0.1, batch 32):
  epochs to 100% training accuracy with all inputs noise against real data, and with half the
  inputs noise the epochs until the clean and the noise examples each reach 90% training accuracy.
Nothing goes to the result store, whose keys do not know the second noise model. About 5 minutes
on 2 CPU cores.

    python docs/pilots/structured_noise.py [--dataset fashion-mnist] [--data-root DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from harness import data, inputs, numpy_generator, stats  # noqa: E402
from harness import train as training  # noqa: E402
from harness.tiers import TIERS  # noqa: E402

SEEDS = range(1000, 1008)


def covariance_matched(x_split: torch.Tensor):
    """make_noise with randX drawing from N(per-pixel mean, covariance) of `x_split` (n, d)."""
    x = x_split.double()
    mean, (values, vectors) = x.mean(0), torch.linalg.eigh(torch.cov(x.T))
    root = vectors * values.clamp(min=0).sqrt()  # root @ root.T = covariance (pixels of zero variance stay 0)
    paper = data.make_noise

    def make_noise(x, y, kind, fraction, num_classes, generator, stats=None):
        out = paper(x, y, kind, fraction, num_classes, generator, stats)
        if kind == "randX":
            z = torch.randn((int(out.is_noise.sum()), x.shape[1]), generator=generator, dtype=torch.float64)
            out.x[out.is_noise] = (mean + z @ root.T).to(x.dtype)
        return out

    return make_noise


def geometric_ratio(a, b) -> float:
    return float(np.exp(np.mean(np.log(np.asarray(a, float) / np.asarray(b, float)))))


def first_epoch(history: np.ndarray, level: float = 0.9) -> int:
    """The first epoch (1-based) at which `history` reaches `level`; the budget + 1 if never."""
    hits = np.flatnonzero(history >= level)
    return int(hits[0]) + 1 if len(hits) else len(history) + 1


def sharpness(ds, dataset: str, noises) -> None:
    sh = TIERS["smoke"].sharpness
    base = dataclasses.replace(sh.run, dataset=dataset, sharpness="power")
    runs = [
        dataclasses.replace(base, noise="randX" if f else "none", noise_fraction=f, seed=s)
        for f in sh.levels
        for s in SEEDS
    ]
    for name, noise in noises:
        with noise_model(noise):
            eig = np.array([r.measures["sharpness"] for r in training.train_group(runs, ds)])
            xs = [inputs.mlp_training_set(r, ds).x.double() for r in runs[:: len(SEEDS)]]  # first seed per level
        eig = eig.reshape(len(sh.levels), len(SEEDS))
        trend = stats.page_trend(eig.T, alpha=0.05, min_effect=0.5, rng=numpy_generator("pilot", "C3", name))
        print(
            f"C3, {name}: Page's L mean rho {trend.effect:.3f}, p {trend.p_value:.2g}, reverse p {trend.p_reverse:.2g}"
        )
        for f, e, x in zip(sh.levels, eig, xs):
            top = float(torch.linalg.eigvalsh(x.T @ x / len(x))[-1])
            print(
                f"  noise {f:.0%}: top Hessian eigenvalue mean {e.mean():.1f} (per seed {np.round(e, 1).tolist()}), "
                f"inputs' top E[x x^T] eigenvalue {top:.1f} (seed {SEEDS[0]})"
            )


def time_to_fit(ds, dataset: str, noises) -> None:
    base = dataclasses.replace(TIERS["smoke"].time_to_fit, dataset=dataset)
    real = [r.epochs_to_fit for r in training.train_group([dataclasses.replace(base, seed=s) for s in SEEDS], ds)]
    print(f"C2b/C5, real data: epochs to 100% {real}")
    for name, noise in noises:
        runs = [dataclasses.replace(base, noise="randX", noise_fraction=f, seed=s) for f in (1.0, 0.5) for s in SEEDS]
        with noise_model(noise):
            res = training.train_group(runs, ds)
        noisy = [r.epochs_to_fit for r in res[: len(SEEDS)]]
        clean = [first_epoch(r.history["train_acc_clean"]) for r in res[len(SEEDS) :]]
        noise_half = [first_epoch(r.history["train_acc_noise"]) for r in res[len(SEEDS) :]]
        print(
            f"C2b, {name}: all inputs noise, epochs to 100% {noisy}; noise/real geometric-mean ratio "
            f"{geometric_ratio(noisy, real):.2f}, noise faster in {sum(a < b for a, b in zip(noisy, real))} of "
            f"{len(SEEDS)} seeds"
        )
        print(
            f"C5, {name}: half the inputs noise, epochs to 90% clean {clean}, noise {noise_half}; noise/clean "
            f"ratio {geometric_ratio(noise_half, clean):.2f}, clean first in "
            f"{sum(a < b for a, b in zip(clean, noise_half))} of {len(SEEDS)} seeds"
        )


@contextlib.contextmanager
def noise_model(make_noise):
    """Train with `make_noise` in place of the harness's (harness.inputs looks it up in its namespace)."""
    paper, inputs.make_noise = inputs.make_noise, make_noise
    try:
        yield
    finally:
        inputs.make_noise = paper


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-root")
    args = p.parse_args()
    ds = data.load(args.dataset, args.data_root)
    pooled = data.flat_inputs(ds.train_x, TIERS["smoke"].sharpness.run.pool)
    noises = (("paper (i.i.d. pixels)", data.make_noise), ("covariance-matched", covariance_matched(pooled)))
    sharpness(ds, args.dataset, noises)
    time_to_fit(ds, args.dataset, noises)


if __name__ == "__main__":
    main()
