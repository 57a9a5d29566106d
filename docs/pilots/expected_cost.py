"""Where the smoke tier's runs stopped, as a share of their epoch budget, per sweep: the numbers behind
the expected cost that `--plan` prints beside the upper bound (harness.plan.EXPECTED_SHARE).

A run leaves its batched group when it has fitted (or reached its target loss), so a wide group
costs its per-epoch price per run times the epochs each run spent in it (a narrow group, priced by
the step floor, costs its price until its last run leaves: more than this counts, but such groups
are cheap). Per sweep this prints the cost-weighted share of the budget the stored smoke runs used:
sum of each run's epochs x its per-run, per-epoch cost over sum of budget x the same (harness.plan's
cost model at the run's group size), and the share of runs that trained to their budget. It reads finished runs from
a result store (the smoke tier at any base seeds, Fashion-MNIST), trains nothing.

    python docs/pilots/expected_cost.py --store .claims-store
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from harness import data, examples, plan  # noqa: E402, F401 (examples registers its kind)
from harness.kinds import KINDS  # noqa: E402
from harness.tiers import TIERS  # noqa: E402

SMOKE = TIERS["smoke"]


def sweep_of(kind: str, c: dict) -> str | None:
    """The smoke sweep a stored run belongs to, from its settings (None: not a smoke run)."""
    if kind == "cnn":
        return "regularization" if c["n_train"] == SMOKE.regularization.run.n_train else None
    if kind == "mlp-examples":  # C8's runs stop at training loss 0.3; C6/C9's at 1.0 or after one epoch
        return "critical samples" if c["target_loss"] == 0.3 and c["max_epochs"] > 1 else "example difficulty"
    if c["nested"]:
        return "scaling"
    if c["target_loss"] == SMOKE.sharpness.run.target_loss and c["batch_size"] == SMOKE.sharpness.run.batch_size:
        return "sharpness"
    if c["max_epochs"] == SMOKE.capacity.run.max_epochs and c["n_val"] == SMOKE.capacity.run.n_val:
        return "capacity"
    if c["max_epochs"] == SMOKE.time_to_fit.max_epochs:
        return "learning order" if c["noise_fraction"] == 0.5 else "time to fit"
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--data-root", type=Path)
    args = p.parse_args()
    ds = data.load("fashion-mnist", args.data_root)
    used, budget, runs, to_budget = (defaultdict(float) for _ in range(4))
    for f in sorted(args.store.glob("*.json")):
        record = json.loads(f.read_text())
        if record.get("dataset") != "fashion-mnist" or "config" not in record:
            continue
        kind, c = record["kind"], record["config"]
        sweep = sweep_of(kind, c)
        if sweep is None:
            continue
        config = KINDS[kind].config(**{k: tuple(v) if isinstance(v, list) else v for k, v in c.items()})
        models = record["info"].get("group_size", 1)
        per_epoch = plan.epoch_seconds(config, ds, models) / models
        # A run's own last epoch: where it fitted or reached its target loss (epochs_to_fit, the budget
        # if never), for runs that stop there; info's epochs_run is its group's, the slowest run's.
        epochs = record["epochs_to_fit"] if getattr(config, "stop_when_fitted", False) else record["info"]["epochs_run"]
        used[sweep] += epochs * per_epoch
        budget[sweep] += config.budget * per_epoch
        runs[sweep] += 1
        to_budget[sweep] += epochs >= config.budget
    print("| sweep (smoke) | runs | cost-weighted share of the budget used | runs to their budget |")
    print("|---|---|---|---|")
    for sweep in sorted(used):
        share, full = used[sweep] / budget[sweep], to_budget[sweep] / runs[sweep]
        print(f"| {sweep} | {runs[sweep]:.0f} | {share:.3f} | {full:.0%} |")


if __name__ == "__main__":
    main()
