"""Pilot for claim C4 (docs/design.md, Fig. 3 right): which learning-rate schedule lets the full
tier's unregularized CNN memorize random labels (>= 95% training accuracy) within its epoch budget?

C4 compares regularizers by how far each keeps the CNN from fitting random labels; that comparison
is empty unless the unregularized CNN fits them. The full tier (harness/tiers.py, TIERS["full"].
regularization.run) used the paper's schedule until this pilot, lr 0.01 halved every 10 epochs for 50 epochs
(momentum 0.9, batch 128, 64 filters, dense (384, 192), crop 28), under which an earlier run reached
only 16% random-label training accuracy (Fashion-MNIST, 5,000 examples, 30 epochs).

A CPU analogue at small n: the full tier's CNN config on Fashion-MNIST (28x28, so the crop leaves
the images as they are), random labels, no regularizer, seeds 1000 and 1001, per schedule
(lr, halve_every, epochs):
- A "paper":        0.01, 10,  50
- B "constant":     0.01, never halved (halve_every = epochs), 100
- C "late halving": 0.01, 25, 100
- D "higher lr":    0.02, 25, 100
at n_train 1,000 and 2,000 (class-stratified subsets, as CNNConfig's), and real labels under A at
n 2,000 for reference. Each (schedule, n) is one batched group (harness.cnn.CNNGroup, trained by
harness.core.train_to_end's loop, no result store); training accuracy is measured every 5 epochs
(val_every 5, 1,000 validation examples), so the first epoch at >= 95% is known to 5 epochs. Each
group's record goes to OUT/<group>.json after every measured epoch (a rerun skips complete ones),
the table to stdout and OUT/result.md.
`--time` only times one epoch of each group shape (harness.core.epoch_seconds) and exits.

    python docs/pilots/c4_schedule.py [--out /tmp/c4pilot] [--groups A:1000,A:2000,...] [--deadline-min M]
                                      [--dataset fashion-mnist] [--data-root DIR] [--time]

`--groups` lists (schedule:n) groups in training order (default: all eight, A first, D last);
`--deadline-min` stops training after M minutes, keeping the group in training as a partial record
(its epochs so far) and leaving out the rest. Runs on one thread (torch.set_num_threads(1)). Wall
time measured on a 2-core CPU shared with other jobs (seconds per epoch, evaluation included): n 1,000
with 2 models 2.7-4.5, n 2,000 with 2 models 5.3-5.9, n 2,000 with 4 models (A) 14.6; A-C and D at
n 1,000 took 55 minutes, all eight groups about 63. `--time` prints an estimate for this machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from harness import cnn, data  # noqa: E402
from harness.core import epoch_seconds  # noqa: E402
from harness.tiers import TIERS  # noqa: E402

SEEDS = (1000, 1001)
SIZES = (1000, 2000)
SCHEDULES = {  # name -> (words, lr, halve_every (None: never), epochs)
    "A": ("paper", 0.01, 10, 50),
    "B": ("constant", 0.01, None, 100),
    "C": ("late halving", 0.01, 25, 100),
    "D": ("higher lr", 0.02, 25, 100),
}
REPORT_EPOCHS = (10, 20, 30, 50, 75, 100)
TARGET = 0.95


def group_runs(schedule: str, n: int, dataset: str) -> list[cnn.CNNConfig]:
    """The runs of one (schedule, n) group: random labels per seed, and real labels too under A at
    the largest n."""
    _, lr, halve, epochs = SCHEDULES[schedule]
    base = dataclasses.replace(
        TIERS["full"].regularization.run,
        dataset=dataset,
        n_train=n,
        n_val=1000,
        labels="random",
        regularizer="none",
        strength=0.0,
        val_every=5,
        lr=lr,
        halve_every=halve or epochs,
        epochs=epochs,
    )
    labels = ("random", "real") if schedule == "A" and n == max(SIZES) else ("random",)
    return [dataclasses.replace(base, labels=lab, seed=s) for lab in labels for s in SEEDS]


def first_at(acc: list[float], level: float = TARGET) -> int | None:
    """The first measured epoch (1-based) with training accuracy >= level; None if never."""
    hits = [e + 1 for e, a in enumerate(acc) if a is not None and a == a and a >= level]
    return hits[0] if hits else None


def train(schedule: str, n: int, ds, out: Path, deadline: float | None) -> dict:
    """Train one (schedule, n) group, writing its record to OUT/<group>.json after every measured
    epoch; at `deadline` (time.time()) it stops after the current epoch and keeps the record
    partial ("complete": false). The loop is harness.core.train_to_end's without a checkpoint."""
    path = out / f"{schedule}_n{n}.json"
    if path.exists():
        record = json.loads(path.read_text())
        if record["complete"]:
            return record
    runs = group_runs(schedule, n, ds.name)
    group = cnn.CNNGroup(runs, ds, "cpu")
    t0 = time.perf_counter()

    def record(complete: bool) -> dict:
        wall = time.perf_counter() - t0
        rec = {
            "schedule": schedule,
            "n": n,
            "epochs": runs[0].epochs,
            "epochs_run": group.epoch,
            "complete": complete,
            "models": len(runs),
            "wall_s": wall,
            "s_per_epoch": wall / max(group.epoch, 1),
            "runs": [
                {
                    "labels": r.labels,
                    "seed": r.seed,
                    "train_acc": [None if a != a else float(a) for a in group.hist["train_acc"][m, : group.epoch]],
                    "val_acc": [None if a != a else float(a) for a in group.hist["val_acc"][m, : group.epoch]],
                    "label_flip_rate": group.prepared[m].label_flip_rate,
                }
                for m, r in enumerate(runs)
            ],
        }
        path.write_text(json.dumps(rec))
        return rec

    with group.precision():
        while not group.done:
            group.step()
            stop = deadline is not None and time.time() > deadline and group.epoch + 1 < runs[0].epochs
            group.evaluate(force=stop)  # where it stops early, measure that epoch too
            if group.epoch % runs[0].val_every == 0 or stop:
                record(False)
                print(
                    f"  {schedule} n {n} epoch {group.epoch}: {time.perf_counter() - t0:.0f} s, train acc "
                    f"{np.round(group.hist['train_acc'][:, group.epoch - 1], 3).tolist()}",
                    flush=True,
                )
            if stop:
                print(f"group {schedule} n {n}: deadline, stopped after epoch {group.epoch}", flush=True)
                return record(False)
    return record(True)


def fmt(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def table(records: list[dict]) -> str:
    head = ["schedule", "n", "labels", "seed"] + [f"ep {e}" for e in REPORT_EPOCHS] + ["first >=95%", "final", "val"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rec in records:
        words = SCHEDULES[rec["schedule"]][0]
        if not rec["complete"]:
            words += f" (stopped at epoch {rec['epochs_run']} of {rec['epochs']})"
        for labels in ("random", "real"):
            runs = [r for r in rec["runs"] if r["labels"] == labels]
            if not runs:
                continue
            accs = np.array([[np.nan if a is None else a for a in r["train_acc"]] for r in runs])
            rows = [("mean", accs.mean(0), [first_at(r["train_acc"]) for r in runs], runs)] + [
                (str(r["seed"]), a, [first_at(r["train_acc"])], [r]) for r, a in zip(runs, accs)
            ]
            for seed, acc, firsts, rr in rows:
                at = [fmt(acc[e - 1]) if e <= len(acc) else "" for e in REPORT_EPOCHS]
                words_first = ["not reached" if f is None else str(f) for f in firsts]
                first = words_first[0] if len(set(words_first)) == 1 else ", ".join(words_first)  # per seed
                val = np.mean([r["val_acc"][-1] for r in rr])
                lines.append(
                    "| "
                    + " | ".join(
                        [f"{rec['schedule']} {words}", str(rec["n"]), labels, seed, *at, first, fmt(acc[-1]), fmt(val)]
                    )
                    + " |"
                )
    lines.append("")
    lines.append("| group | models | epochs run | wall s | s/epoch |")
    lines.append("|---|---|---|---|---|")
    for rec in records:
        lines.append(
            f"| {rec['schedule']} n {rec['n']} | {rec['models']} | {rec['epochs_run']}/{rec['epochs']} | "
            f"{rec['wall_s']:.0f} | {rec['s_per_epoch']:.2f} |"
        )
    lines.append(f"\ntotal training wall time: {sum(r['wall_s'] for r in records):.0f} s")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="/tmp/c4pilot")
    p.add_argument(
        "--groups",
        default="A:1000,A:2000,B:1000,C:1000,B:2000,C:2000,D:1000,D:2000",
        help="(schedule:n) groups in the order to train them",
    )
    p.add_argument("--deadline-min", type=float, help="stop training (keeping partial groups) after this many minutes")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-root")
    p.add_argument("--time", action="store_true", help="time one epoch of each group shape and exit")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = data.load(args.dataset, args.data_root)
    groups = [(s, int(n)) for s, n in (g.split(":") for g in args.groups.split(",") if g)]
    if args.time:
        total, shapes = 0.0, {}
        for s, n in groups:
            runs = group_runs(s, n, ds.name)
            key = (n, len(runs))
            if key not in shapes:
                shapes[key] = epoch_seconds(cnn.CNNGroup(runs, ds, "cpu"), steps=4)
                print(f"n {n}, {len(runs)} models: {shapes[key]:.2f} s per epoch", flush=True)
            total += shapes[key] * runs[0].epochs
        print(f"estimate for {len(groups)} groups {groups}: {total / 60:.1f} min")
        return
    deadline = time.time() + 60 * args.deadline_min if args.deadline_min else None
    records = []
    for s, n in groups:
        if deadline is not None and time.time() > deadline:
            print(f"group {s} n {n}: left out (deadline)", flush=True)
            continue
        t = time.perf_counter()
        records.append(train(s, n, ds, out, deadline))
        print(f"group {s} n {n} ended in {time.perf_counter() - t:.0f} s", flush=True)
        (out / "result.md").write_text(table(records) + "\n")
    text = table(records)
    (out / "result.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
