"""Pilot for claim C3 (docs/design.md, "The full tier's designs"): at batch 32, the full tier's
batch, which learning rate keeps lr x top eigenvalue / 2 at most 0.15 (the claim's gate; about 0.1
is the aim), and how many epochs the conditions then take to reach training loss 0.1?

The smoke tier's C3 run (harness/tiers.py, TIERS["smoke"].sharpness.run: n 2,000, 2x128 MLP, images
pooled to 14x14, measured where the training loss first reaches 0.1) with power iteration only and
batch 32, at lr 0.01, 0.005 and 0.0025 (largest first), seeds 1000-1002, conditions real data,
randX 1/3, 2/3, 1 and randY 1/3, 2/3, 1: 21 models, one batched group per lr, on the CPU with one
thread. Per lr: the mean top Hessian eigenvalue per condition over the seeds, the largest
lr x eigenvalue / 2 over all runs, epochs to training loss 0.1 per condition (min-max) and the wall
seconds. Printed as a markdown table in the style of docs/design.md's (and written to --out).

Time box (--budget-min, default 60): at a fixed batch, epochs to a loss grow about as 1/lr, so the
next lr's wall is predicted as the last one's x (last lr / next lr); an lr predicted not to finish in
the time left runs on the first seed only (a third of the models), or is reported as not run; a
group still training at the deadline is stopped and reported as not finished.

Nothing goes to the result store. About 30 minutes on one free core (lr 0.01 about 4, 0.005 about 8,
0.0025 about 16 minutes), longer beside another job.

    python docs/pilots/c3_learning_rate.py [--dataset fashion-mnist] [--data-root DIR]
        [--lrs 0.01 0.005 0.0025 0.00125] [--budget-min 60] [--out /tmp/c3pilot/result.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from harness import data  # noqa: E402
from harness import train as training  # noqa: E402
from harness.tiers import TIERS  # noqa: E402

SEEDS = (1000, 1001, 1002)
BATCH = 32
MAX_EPOCHS = 8000  # the runs stop at training loss 0.1; at lr 0.0025, 100% random labels take ~4,000
CONDITIONS = (("real", "none", 0.0),) + tuple(
    (f"{kind} {name}", kind, f)
    for kind in ("randX", "randY")
    for name, f in (("1/3", 1 / 3), ("2/3", 2 / 3), ("100%", 1.0))
)


class TimeUp(Exception):
    pass


def runs_for(lr: float, dataset: str, seeds) -> list[training.RunConfig]:
    base = dataclasses.replace(
        TIERS["smoke"].sharpness.run, dataset=dataset, sharpness="power", batch_size=BATCH, lr=lr, max_epochs=MAX_EPOCHS
    )
    return [dataclasses.replace(base, noise=kind, noise_fraction=f, seed=s) for _, kind, f in CONDITIONS for s in seeds]


def train(lr: float, ds, dataset: str, seeds, deadline: float) -> dict:
    """One batched group of every condition and seed at `lr`; the row's numbers."""
    runs = runs_for(lr, dataset, seeds)
    t0, last = time.perf_counter(), [0.0]

    def progress(epoch, budget, fitted, models, elapsed):
        if time.perf_counter() > deadline:
            raise TimeUp(f"lr {lr}: deadline reached at epoch {epoch}, {fitted}/{models} runs at the target")
        if elapsed - last[0] >= 60:
            last[0] = elapsed
            print(f"  lr {lr}: epoch {epoch}, {fitted}/{models} at loss 0.1, {elapsed:.0f} s", flush=True)

    res = training.train_group(runs, ds, progress=progress)
    wall = time.perf_counter() - t0
    k = len(seeds)
    eig = np.array([r.measures["sharpness"] for r in res]).reshape(len(CONDITIONS), k)
    epochs = np.array([r.epochs_to_fit for r in res]).reshape(len(CONDITIONS), k)
    unfitted = sum(not r.fitted for r in res)
    unconverged = sum(not r.measures["sharpness_converged"] for r in res)
    loss = np.array([r.history["train_loss"][-1] for r in res])
    return dict(
        lr=lr,
        seeds=tuple(seeds),
        eig=eig,
        epochs=epochs,
        max_gate=lr * float(eig.max()) / 2,
        wall=wall,
        unfitted=unfitted,
        unconverged=unconverged,
        loss=(float(loss.min()), float(loss.max())),
    )


def span(a) -> str:
    return f"{a.min()}" if a.min() == a.max() else f"{a.min()}-{a.max()}"


def table(rows: list[dict], skipped: list[tuple[float, str]]) -> str:
    head = (
        "| lr / batch | real | randX 1/3 | 2/3 | 100% | randY 1/3 | 2/3 | 100% | max lr x eig / 2 "
        "| epochs to loss 0.1, real | 100% randY | wall |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        note = "" if len(r["seeds"]) == len(SEEDS) else f" (seed {r['seeds'][0]} only)"
        means = " | ".join(f"{m:.1f}" for m in r["eig"].mean(1))
        lines.append(
            f"| {r['lr']:g} / {BATCH}{note} | {means} | {r['max_gate']:.2f} | {span(r['epochs'][0])} "
            f"| {span(r['epochs'][-1])} | {r['wall']:.0f} s |"
        )
    for lr, why in skipped:
        lines.append(f"| {lr:g} / {BATCH} | {why} |" + " |" * 10)
    out = ["\n".join(lines), ""]
    for r in rows:
        per = "; ".join(f"{name} {span(e)}" for (name, _, _), e in zip(CONDITIONS, r["epochs"]))
        out.append(
            f"- lr {r['lr']:g}: epochs to loss 0.1 per condition (min-max over seeds {list(r['seeds'])}): {per}. "
            f"Measured at training loss {r['loss'][0]:.4f}-{r['loss'][1]:.4f}; {r['unfitted']} runs never "
            f"reached 0.1 within {MAX_EPOCHS} epochs; {r['unconverged']} power iterations unconverged."
        )
        per_seed = "; ".join(f"{name} {np.round(e, 1).tolist()}" for (name, _, _), e in zip(CONDITIONS, r["eig"]))
        out.append(f"  Top eigenvalue per seed: {per_seed}.")
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-root")
    p.add_argument("--lrs", type=float, nargs="+", default=[0.01, 0.005, 0.0025, 0.00125])
    p.add_argument("--budget-min", type=float, default=60.0)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    torch.set_num_threads(1)  # another job uses the other core
    start = time.perf_counter()
    deadline = start + 60 * args.budget_min
    ds = data.load(args.dataset, args.data_root)
    rows, skipped = [], []
    for lr in sorted(args.lrs, reverse=True):
        left = deadline - time.perf_counter()
        seeds = SEEDS
        if rows:
            last = rows[-1]
            predicted = last["wall"] * (last["lr"] / lr) * len(SEEDS) / len(last["seeds"])
            if predicted > left:
                seeds = SEEDS[:1]
                print(f"lr {lr}: predicted {predicted:.0f} s for 3 seeds, {left:.0f} s left: seed {SEEDS[0]} only")
                if predicted / len(SEEDS) > left:
                    skipped.append(
                        (lr, f"not run: predicted {predicted / len(SEEDS):.0f} s for one seed, {left:.0f} s left")
                    )
                    print(f"lr {lr}: not run")
                    continue
        print(f"lr {lr}, batch {BATCH}, seeds {list(seeds)}: training", flush=True)
        try:
            rows.append(train(lr, ds, args.dataset, seeds, deadline))
        except TimeUp as e:
            skipped.append((lr, f"not finished: {e}"))
            print(e)
            continue
        r = rows[-1]
        print(f"lr {lr}: {r['wall']:.0f} s, max lr x eig / 2 {r['max_gate']:.2f}", flush=True)
    text = table(rows, skipped) + (
        f"\nTotal wall {time.perf_counter() - start:.0f} s ({args.dataset}, {torch.get_num_threads()} thread).\n"
    )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
