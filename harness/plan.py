"""What a tier costs: each training group's seconds per epoch, from a cost model of one H200
(`pytest claims -m full --plan`, labelled as an estimate wherever it is shown) or timed on the
device (`--dry-run`), scaled to its epoch budget and tabulated per sweep.

    seconds = epoch_seconds(run, ds, models=25)      # the cost model: one epoch of a group of `run`'s shape
    groups = plan_groups(runs, "capacity", timed)    # a PlanGroup per shape, timed by `estimated` or `measured`
    print(table(groups))                             # device-hours per group, per sweep and in total

The model: an epoch is its SGD steps plus its evaluation passes (evaluated_examples). A step costs
at least STEP_FLOOR_S (a CUDA-graph replay of tiny kernels, whatever the width) and, for an MLP, at
least its weight traffic (harness.bench.weight_bytes_per_step) at the H200's measured copy rate
(BANDWIDTH; it binds small batches of wide MLPs), else its arithmetic at the throughput (FLOPS) the
trainer reached on a large group of its kind, calibrated on one H200 (the calibration and how close
the model comes to dry runs: docs/design.md, "Harness"; tests/test_plan.py checks both). The table
gives per sweep an upper bound (every run to its epoch budget; several measured groups were up to a
fifth slower per epoch than the model) and an expected cost (runs leaving their batch where the
smoke tier's did, EXPECTED_SHARE). Neither counts C3's sharpness measurement. Measure with
`--dry-run` on the GPU.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import torch

from .bench import weight_bytes_per_step
from .core import epoch_seconds as timed_epoch_seconds
from .data import Dataset
from .kinds import kind_of
from .train import flat_inputs

STEP_FLOOR_S = 1.09e-4  # s per SGD step of a small group (20 MLPs 2x64: 0.17 s for 1,563 steps)
FLOPS = {
    "mlp": 51.6e12,  # FLOP/s, training and evaluation arithmetic of the 25-model 2x4096 group
    "cnn": 20.8e12,  # FLOP/s, convolutions and dense layers of the 270-CNN full C4 group
    # The MLP's rate over 1.4: on 2 CPU cores an epoch of harness.examples' autograd step with its extra
    # evaluation pass took 1.41-1.43 times the fused MLP's (8 runs, n 2,000, widths 256 and 1,024).
    # Unmeasured on a GPU, where the fused step also replays CUDA graphs.
    "mlp-examples": 51.6e12 / 1.4,
}
# Bytes/s the H200 copied at (reports/gpu-check.md). The floor assumes a step moves its weights at that
# rate: a lower bound, uncalibrated where it decides (C3's batch-4 group; at 75% of it, a quarter more).
BANDWIDTH = 3.951e12
DEVICE = "H200 (estimate, cost model)"
# Share of its upper bound a sweep is expected to spend: a run leaves its batch once it fits (or
# reaches its target loss), so a group costs its epochs' price times the epochs its runs stayed.
# Measured on the smoke tier (Fashion-MNIST, base seed 0, 2026-12-06, `python docs/pilots/expected_cost.py`):
# the cost-weighted share of the epoch budget its runs used, each to its own last epoch. CNNs train
# every epoch (1). An extrapolation to the full tier's settings, which have never run; a --dry-run
# times epochs, not shares.
EXPECTED_SHARE = {
    "capacity": 0.22,  # 9% of the smoke runs trained to their budget (the narrowest widths)
    "critical samples": 0.10,
    "example difficulty": 0.07,
    "learning order": 0.34,
    "regularization": 1.0,
    "scaling": 0.28,
    "sharpness": 0.14,
    "time to fit": 0.44,
}
DRY_STEPS = 20  # a dry run times a call of this many SGD steps of each group and a longer one


def epoch_seconds(run, ds: Dataset, models: int) -> float:
    """Estimated seconds per epoch of a group of `models` runs of `run`'s shape on one H200."""
    steps = math.ceil(run.n_train / run.batch_size)
    forward, rate = kind_of(run).forward_flops(run, ds), FLOPS[run.kind]
    traffic = 0.0 if run.kind == "cnn" else weight_bytes(run, ds, models) / BANDWIDTH
    step = max(STEP_FLOOR_S, traffic, 3 * forward * run.batch_size * models / rate)  # forward + backward = 3 forwards
    return steps * step + forward * evaluated_examples(run) * models / rate


def evaluated_examples(run) -> float:
    """Examples an epoch evaluates on average: an MLP measures its training set every epoch and the
    validation set every val_every epochs; a CNN both, every val_every epochs and at the last. Not
    counted: an MLP group also validates at every epoch where one of its runs stops (a few percent)."""
    if run.kind == "cnn":
        measured = run.epochs // run.val_every + (run.epochs % run.val_every != 0)
        return (run.n_train + run.n_val) * measured / run.epochs
    return run.n_train + run.n_val / run.val_every


def weight_bytes(run, ds: Dataset, models: int) -> int:
    """Bytes a step of `models` MLPs of `run`'s shape moves at least (harness.bench)."""
    return weight_bytes_per_step(run, flat_inputs(ds.train_x[:1], run.pool).shape[1], ds.num_classes, models)


@dataclass(frozen=True)
class PlanGroup:
    """One training group of a plan: its seconds per epoch on `device` and its whole epoch budget."""

    sweep: str
    group: str  # e.g. "65 models, MLP 2x256, n 2000"
    device: str
    s_per_epoch: float
    budget_epochs: int
    hours: float

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


Timed = Callable[[list], tuple[float, str, str]]  # group -> (seconds per epoch, device, note)


def plan_groups(runs: list, sweep: str, timed: Timed) -> list[PlanGroup]:
    """A PlanGroup for each group of `runs` (one per shape), its seconds per epoch from `timed`."""
    from .store import by_shape

    out = []
    for group in by_shape(runs):
        c = group[0]
        per_epoch, device, note = timed(group)
        out.append(
            PlanGroup(
                sweep,
                f"{len(group)} {kind_of(c).noun}, {c.label}{note}",
                device,
                per_epoch,
                c.budget,
                per_epoch * c.budget / 3600,
            )
        )
    return out


def estimated(group: list, ds: Dataset) -> tuple[float, str, str]:
    """`Timed` by the cost model (nothing trains)."""
    return epoch_seconds(group[0], ds, len(group)), DEVICE, ""


def measured(group: list, ds: Dataset, device: str, store) -> tuple[float, str, str]:
    """`Timed` on the device: DRY_STEPS steps, a longer call and one evaluation of a throwaway copy
    of the group (harness.core.epoch_seconds), outside the store; a group over the memory budget
    times its first sub-batch and scales by runs. A group that does not fit fails here, before any
    real training."""
    parts = store.sub_batches(group, ds, device)
    per_epoch = timed_epoch_seconds(kind_of(group[0]).group(parts[0], ds, device, torch.float32), DRY_STEPS)
    note = f", in {len(parts)} sub-batches (the first timed, scaled by runs)" if len(parts) > 1 else ""
    return per_epoch * len(group) / len(parts[0]), device, note


def table(groups: list[PlanGroup]) -> str:
    """Markdown: each group, its device-hours for the whole epoch budget; per sweep and in total that
    upper bound and the expected cost (EXPECTED_SHARE of it), both without C3's sharpness measurement."""
    lines = ["| sweep | group | device | s per epoch | epoch budget | device-hours |", "|---|---|---|---|---|---|"]
    per_sweep: dict[str, float] = {}
    for g in groups:
        lines.append(
            f"| {g.sweep} | {g.group} | {g.device} | {g.s_per_epoch:.2f} | {g.budget_epochs} | {g.hours:.2f} |"
        )
        per_sweep[g.sweep] = per_sweep.get(g.sweep, 0.0) + g.hours
    share = {name: EXPECTED_SHARE.get(name, 1.0) for name in per_sweep}
    expected = {name: hours * share[name] for name, hours in per_sweep.items()}
    lines += ["", "| sweep | upper bound, device-hours | expected share | expected device-hours |", "|---|---|---|---|"]
    lines += [
        f"| {name} | {hours:.2f} | {share[name]:.2f} | {expected[name]:.2f} |" for name, hours in per_sweep.items()
    ]
    lines += [
        f"| **total** | **{sum(per_sweep.values()):.2f}** | | **{sum(expected.values()):.2f}** |",
        "",
        "Upper bound: every run trains to its epoch budget. Expected: runs leave their batch where the "
        "smoke tier's runs did, as a share of the budget (EXPECTED_SHARE, measured on the smoke tier, "
        "not on this tier: an extrapolation). Neither includes C3's sharpness measurement. Both count "
        "every wave of seeds: where a tier trains seeds in waves, a claim whose first wave leans away "
        "from it stops there, and a sweep whose every claim stops costs about half (not counted).",
    ]
    if any("estimate" in g.device for g in groups):
        lines.append(
            "Estimated, not measured: harness/plan.py's cost model of one H200 (calibrated on three measured "
            "groups, within a quarter of the dry run's groups of width 2,048 and more); measure with "
            "--dry-run on the GPU."
        )
    return "\n".join(lines)
