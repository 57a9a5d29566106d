"""What is measured of a run, in one place: end-of-run measures of the trained models, and the
measures the claims read off a run's per-epoch history.

    values = end_of_run(group, MLP_HOOKS)    # a dict per run, stored as RunResult.measures
    final_val(result), converged(result, 0.01), first_epoch(result.history["train_acc_noise"], 0.9)

End-of-run measures are hooks (`Hook`): each names the runs it applies to by their config and
measures them on the group's own tensors once training has ended (for a run that stopped at its
target, its parameters there), so no claim makes a run's inputs again after training. Registered
for MLP runs (`MLP_HOOKS`): the top Hessian eigenvalue of the training loss (harness.sharpness) and
the top eigenvalue of the training inputs' second-moment matrix E[x x^T], for runs that ask for
sharpness. The per-epoch history itself (training and validation accuracy, loss) is recorded by the
trainers while they train.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from . import torch_generator


@dataclass(frozen=True)
class Hook:
    name: str
    applies: Callable[[object], bool]  # run config -> whether this run is measured
    measure: Callable[[object, list[int]], list[dict]]  # (group, its runs' positions) -> a dict per run


def end_of_run(group, hooks: tuple[Hook, ...]) -> list[dict]:
    """Every hook on the runs of `group` it applies to: one dict of measures per run, in order."""
    out = [{} for _ in group.runs]
    for hook in hooks:
        rows = [m for m, r in enumerate(group.runs) if hook.applies(r)]
        if rows:
            for m, values in zip(rows, hook.measure(group, rows)):
                out[m].update(values)
    return out


def _sharpness(group, rows: list[int]) -> list[dict]:
    """Power iteration (and LeCun's estimator where the config says "both") on each run's full
    training loss at its end state (harness.sharpness.measure)."""
    from .models import BatchedMLP
    from .sharpness import measure

    idx = torch.tensor(rows, device=group.device)
    model = BatchedMLP(len(rows), group.sizes).to(group.device, group.dtype)
    return measure(
        model,
        [s[idx] for s in group.snapshot],
        group.X[idx],
        group.Y[idx],
        [torch_generator(group.runs[m].seed, "sharpness") for m in rows],
        lecun=group.c.sharpness == "both",
    )


def _input_spectrum(group, rows: list[int]) -> list[dict]:
    """Top eigenvalue of E[x x^T] over each run's training inputs, noise included (float64). The loss
    Hessian's first-layer block is a sum of x x^T terms weighted by the layers above, so this sets
    part of the sharpness scale."""
    out = []
    for m in rows:
        x = group.X[m].double()  # (n, d)
        out.append({"inputs_top_eigenvalue": float(torch.linalg.eigvalsh((x.T @ x / len(x)).cpu())[-1])})
    return out


def _wants_sharpness(run) -> bool:
    return run.sharpness != "none"


MLP_HOOKS = (Hook("sharpness", _wants_sharpness, _sharpness), Hook("input spectrum", _wants_sharpness, _input_spectrum))


def final_accuracies(history: dict[str, np.ndarray]) -> dict:
    """A CNN run's accuracies at its last epoch and its best validation accuracy."""
    return {
        "final_train_acc": float(history["train_acc"][-1]),
        "best_val_acc": float(np.nanmax(history["val_acc"])),
        "final_val_acc": float(history["val_acc"][-1]),
    }


def first_epoch(history: np.ndarray, level: float) -> tuple[int, bool]:
    """(the first epoch, 1-based, at which `history` reaches `level`, censored): a history that never
    reaches it is right-censored at its length."""
    hit = np.flatnonzero(history >= level)
    return (int(hit[0]) + 1, False) if len(hit) else (len(history), True)


def best_val(r) -> float:
    """The best validation accuracy over a run's checks."""
    return float(np.nanmax(r.history["val_acc"]))


def quarter(r, q: int) -> np.ndarray:
    """The validation checks of run `r` in the q-th quarter (0-3) of the epochs it trained."""
    v = r.history["val_acc"]
    epochs = np.arange(1, len(v) + 1)
    checks = v[(epochs > q * len(v) / 4) & (epochs <= (q + 1) * len(v) / 4) & ~np.isnan(v)]
    if not len(checks):
        raise ValueError(
            f"run {r.config} has no validation check in quarter {q + 1} of its {len(v)} epochs: "
            "set val_every to at most a quarter of max_epochs"
        )
    return checks


def final_val(r) -> float:
    """Validation accuracy at the end of training: where a fitted run stopped, or for a run that
    trained to its budget the median of its checks in the last quarter of its epochs (at a constant
    learning rate an unfitted network hovers, with single checks up to 15 points below its level)."""
    if r.fitted:
        v = r.history["val_acc"][-1]
        if np.isnan(v):
            raise ValueError(f"run {r.config} has no validation check at its last epoch")
        return float(v)
    return float(np.median(quarter(r, 3)))


def converged(r, tolerance: float) -> bool:
    """Fitted, or the median of its checks in the last quarter of its epochs is within `tolerance`
    of the median in the third quarter (it has stopped moving, up or down)."""
    if r.fitted:
        return True
    return bool(abs(np.median(quarter(r, 3)) - np.median(quarter(r, 2))) < tolerance)
