"""Pilot for claim C3 (docs/design.md, "Sharpness (C3)"): does sharpness fall under the paper's input
noise because i.i.d. Gaussian pixels lack the correlations of images?

Trains the smoke tier's C3 setting (harness/tiers.py: 2x128 MLP, n 2,000 at 14x14, lr 0.0025 at
batch 4, measured where the training loss first reaches 0.1, power iteration) on seeds 1000-1007 at
input-noise levels 0, 1/3, 2/3 and 1, twice: with the paper's noise (i.i.d. Gaussian pixels with the
data's mean and standard deviation, the harness's randX) and with Gaussian inputs that keep the
training split's per-pixel mean and covariance ("covariance-matched"; the same examples are
replaced). Prints per level the mean top Hessian eigenvalue, the top eigenvalue of the training
inputs' E[x x^T], and Page's L over the seeds. Nothing goes to the result store, whose keys do not
know the second noise model. About 4 minutes on 2 CPU cores.

    python docs/pilots/c3_structured_noise.py [--dataset fashion-mnist] [--data-root DIR]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from harness import data, numpy_generator, stats  # noqa: E402
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-root")
    args = p.parse_args()
    ds = data.load(args.dataset, args.data_root)
    sh = TIERS["smoke"].sharpness
    base = dataclasses.replace(sh.run, dataset=args.dataset, sharpness="power")
    runs = [dataclasses.replace(base, noise="randX" if f else "none", noise_fraction=f, seed=s)
            for f in sh.levels for s in SEEDS]
    paper_noise = training.make_noise
    for name, noise in (("paper (i.i.d. pixels)", paper_noise),
                        ("covariance-matched", covariance_matched(data.flat_inputs(ds.train_x, base.pool)))):
        training.make_noise = noise
        try:
            eig = np.array([r.measures["sharpness"] for r in training.train_group(runs, ds)])
            inputs = [training.prepare(r, ds)[0].double() for r in runs[::len(SEEDS)]]  # first seed per level
        finally:
            training.make_noise = paper_noise
        eig = eig.reshape(len(sh.levels), len(SEEDS))
        trend = stats.page_trend(eig.T, alpha=0.05, min_effect=0.5, rng=numpy_generator("pilot", "C3", name))
        print(f"{name}: Page's L mean rho {trend.effect:.3f}, p {trend.p_value:.2g}, reverse p {trend.p_reverse:.2g}")
        for f, e, x in zip(sh.levels, eig, inputs):
            top = float(torch.linalg.eigvalsh(x.T @ x / len(x))[-1])
            print(f"  noise {f:.0%}: top Hessian eigenvalue mean {e.mean():.1f} (per seed {np.round(e, 1).tolist()}), "
                  f"inputs' top E[x x^T] eigenvalue {top:.1f} (seed {SEEDS[0]})")


if __name__ == "__main__":
    main()
