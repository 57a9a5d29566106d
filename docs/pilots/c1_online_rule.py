"""Pilot for an online form of C1's convergence rule in the full tier: what would ending an unfitted
run where its validation accuracy has settled change, and what would it save? (Its outcome: the
rule is not used; docs/design.md, "The full tier's designs".)

C1 measures each run's validation accuracy at the end of training (measures.final_val) and gates on
95% of the runs having converged (measures.converged: fitted, or the median of the checks in the
last quarter of its epochs within the tolerance of the median in the third). The online form ends
an unfitted run at its first validation check from half its budget on where that rule holds on the
epochs so far, as if its budget ended there. Runs are independent in their batched group, so a run
ended that way would have the start of the history it has when trained to the budget: this pilot
trains the smoke tier's C1 design once to its budget (result store OUT/store) and cuts each run's
history where the online rule would have ended it (never after a fit). It prints, per noise type:
the cost-weighted share of the budget the runs use without and with the rule (as
docs/pilots/expected_cost.py weighs it: each run's epochs times its per-run epoch price in
harness.plan's cost model, at its width's group size), how many runs end earlier, how many
(condition, seed) cells change their capacity needed, and the trend (Page's L) and the convergence
gate with and without the rule.

    python docs/pilots/c1_online_rule.py [--base-seed 0] [--seeds 5] [--out /tmp/c1settle] [--dataset fashion-mnist]

Base seed 0 is exploratory (docs/design.md: designs are explored on base seeds 0-4). Measured
2026-12-06 with OMP_NUM_THREADS=1 (about 20 minutes on a shared 2-core machine; one thread sums in
another order than the smoke tier's two, so its runs differ from the committed rows' in the last
bits and then more), Fashion-MNIST, seeds 0-4, at commit a7dd987, where the rule lived in
harness.measures (the same computation):

| noise | budget share used | with the rule | runs ended earlier | cells changed | converged | with the rule |
|---|---|---|---|---|---|---|
| randX | 0.154 | 0.140 | 7 of 125 | 0 of 25 | 1.000 | 1.000 |
| randY | 0.348 | 0.258 | 31 of 125 | 0 of 25 | 0.928 | 1.000 |

The trend verdicts were the same with and without it (randX p 0.0057, median rho 0.87, holds; randY
p 0.033, rho 0.45, inconclusive). Requiring the rule at 2 or 3 consecutive checks, or at half the
tolerance, still ended 29-30 randY runs early and left 98-99% converged.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from claims.test_capacity import ALPHA, MIN_CONVERGED, MIN_RHO, Curves  # noqa: E402
from harness import data, plan, stats  # noqa: E402
from harness.measures import converged, final_val  # noqa: E402
from harness.session import SEED_STRIDE  # noqa: E402
from harness.store import Store  # noqa: E402
from harness.tiers import TIERS  # noqa: E402


def checks(val: np.ndarray, q: int) -> np.ndarray:
    """The validation checks in the q-th quarter (0-3) of the epochs `val` covers (as measures.quarter)."""
    epochs = np.arange(1, len(val) + 1)
    return val[(epochs > q * len(val) / 4) & (epochs <= (q + 1) * len(val) / 4) & ~np.isnan(val)]


def settled(val: np.ndarray, tolerance: float) -> bool:
    """measures.converged's rule for an unfitted run on the epochs `val` covers (one entry per epoch,
    NaN between checks); False while the third or the last quarter has no check."""
    third, last = checks(val, 2), checks(val, 3)
    return bool(len(third) and len(last) and abs(np.median(last) - np.median(third)) < tolerance)


def settling(r, tolerance: float):
    """The run as the online rule would have ended it."""
    val, budget = r.history["val_acc"], r.config.max_epochs
    last = r.epochs_to_fit - 1 if r.fitted else len(val)  # it may settle before it fits, never after
    for e in range(-(-budget // 2), last + 1):
        if not np.isnan(val[e - 1]) and settled(val[:e], tolerance):
            history = {k: v[:e] for k, v in r.history.items()}
            return dataclasses.replace(r, history=history, fitted=False, epochs_to_fit=budget)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("/tmp/c1settle"))
    ap.add_argument("--dataset", default="fashion-mnist")
    a = ap.parse_args()
    cap = TIERS["smoke"].capacity
    ds = data.load(a.dataset)
    seeds = [a.base_seed * SEED_STRIDE + i for i in range(a.seeds)]
    base = dataclasses.replace(cap.run, dataset=a.dataset)
    kinds = ("randX", "randY")
    conditions = {k: [("none", 0.0)] + [(k, f) for f in cap.levels[1:]] for k in kinds}
    grid = {
        k: [
            [[dataclasses.replace(base, width=w, noise=n, noise_fraction=f, seed=s) for w in cap.widths] for s in seeds]
            for n, f in conditions[k]
        ]
        for k in kinds
    }
    runs = list(dict.fromkeys(r for k in kinds for c in grid[k] for s in c for r in s))
    done = dict(zip(runs, Store(a.out / "store").get_or_train(runs, ds, "cpu")))
    per_width = {w: sum(r.width == w for r in runs) for w in cap.widths}
    cost = {w: plan.epoch_seconds(dataclasses.replace(base, width=w), ds, m) / m for w, m in per_width.items()}
    print(
        f"C1 smoke design, {a.dataset}, seeds {seeds[0]}-{seeds[-1]}, tolerance {cap.tolerance}, "
        f"budget {base.max_epochs} epochs, checks every {base.val_every}"
    )
    print(
        "| noise | share of the budget used: to the budget | with the rule | runs ended earlier "
        "| capacity needed changed | trend p, median rho: budget | with the rule | converged: budget | with the rule |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for k in kinds:
        shape = (len(conditions[k]), len(seeds), len(cap.widths))
        res = [done[r] for c in grid[k] for s in c for r in s]
        early = [settling(r, cap.tolerance) for r in res]
        whole = sum(r.config.max_epochs * cost[r.config.width] for r in res)
        used = [sum(r.epochs_run * cost[r.config.width] for r in rs) / whole for rs in (res, early)]
        ended = sum(e.epochs_run < r.epochs_run for e, r in zip(early, res))
        out = []
        for rs in (res, early):
            c = Curves(
                k,
                cap.widths,
                cap.levels,
                np.array([final_val(r) for r in rs]).reshape(shape),
                np.array([converged(r, cap.tolerance) for r in rs]).reshape(shape),
            )
            need = c.capacity_needed(cap.tolerance)
            trend = stats.page_trend(need.T, alpha=ALPHA, min_effect=MIN_RHO)
            out.append((need, trend, float(c.converged.mean())))
        changed = int((out[0][0] != out[1][0]).sum())
        print(
            f"| {k} | {used[0]:.3f} | {used[1]:.3f} | {ended} of {len(res)} | {changed} of {out[0][0].size} "
            f"| {out[0][1].p_value:.3g}, {out[0][1].effect:.2f} ({out[0][1].outcome}) "
            f"| {out[1][1].p_value:.3g}, {out[1][1].effect:.2f} ({out[1][1].outcome}) "
            f"| {out[0][2]:.3f} | {out[1][2]:.3f} (gate {MIN_CONVERGED}) |"
        )


if __name__ == "__main__":
    main()
