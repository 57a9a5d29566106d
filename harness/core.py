"""What the MLP trainer (train.py) and the CNN trainer (cnn.py) share: the protocol of a training
group, the loop that drives one to its end, a run's result, its data order, progress reports,
atomic writes and the group checkpoint with its disk-space check.

    results = train_to_end(group, progress, checkpoint, checkpoint_every_s)   # any TrainingGroup

    path = store / f"{group}.ckpt.npz"
    reserve_checkpoint(path, nbytes)                       # before training: a clear error if the disk is short
    save_checkpoint(path, fingerprint, epoch, elapsed, arrays)
    state = load_checkpoint(path, fingerprint)             # None: absent, torn or another group's

A group has at most one checkpoint on disk, replaced atomically (written beside it, then renamed
over it), so while a new one is being written the disk holds two; `reserve_checkpoint` asks for
room for both before the first epoch. Neither trainer's code is part of the other's store keys: an
edit to train.py leaves stored CNN runs valid and vice versa (harness/__init__.py, MLP_CODE/CNN_CODE).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Protocol

import numpy as np
import torch

from . import torch_generator

Progress = Callable[[int, int, int, int, float], None]  # (epoch, max_epochs, n_fitted, n_models, elapsed_s)


class TrainingGroup(Protocol):
    """Runs of one shape training as one batched model: what `train_to_end` and `epoch_seconds`
    drive. Implemented by train.Group (MLPs) and cnn.CNNGroup (CNNs)."""

    runs: list  # run configs, one per model
    c: object  # the first run's config: the group's shared settings
    device: torch.device
    fingerprint: str  # the group's identity for resuming from a checkpoint
    epoch: int  # epochs trained so far
    evaluation_share: float  # share of the epochs that run an evaluation pass

    @property
    def done(self) -> bool: ...  # the budget is spent (or every run has stopped)

    @property
    def fitted(self) -> int: ...  # runs at their target so far (for progress)

    def precision(self) -> ContextManager: ...  # the numeric settings the loop runs under
    def checkpoint_bytes(self) -> int: ...
    def state(self) -> dict[str, np.ndarray]: ...  # a checkpoint's arrays
    def resume(self, state: dict | None) -> float: ...  # continue from a checkpoint; its training seconds
    def step(self, steps: int | None = None) -> None: ...  # one epoch of SGD (its first `steps` batches)
    def evaluate(self, force: bool = False) -> None: ...  # the epoch's measurements; ends the epoch
    def finish(self) -> None: ...  # end-of-run measures, after the last epoch
    def results(self, wall: float) -> list: ...  # a RunResult per run


@dataclass
class RunResult:
    config: object  # a run config: train.RunConfig or cnn.CNNConfig
    history: dict[str, np.ndarray]  # metric -> (epochs_run,) float64
    fitted: bool
    epochs_to_fit: int  # first epoch (1-based) at 100% train accuracy (target_loss); the budget if censored
    label_flip_rate: float  # share of training labels that randY (random labels) actually changed
    weight_norm: float  # Euclidean norm of all parameters where the run ends (its fit epoch if it stops)
    wall_s: float  # this run's share of its group's training time
    info: dict = dataclasses.field(default_factory=dict)  # device, torch version, group size
    measures: dict = dataclasses.field(default_factory=dict)  # e.g. sharpness, final accuracies

    @property
    def epochs_run(self) -> int:
        return len(self.history["train_acc"])


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The data order of one seed in one epoch: a pure function, so a resumed run sees the same."""
    return torch.randperm(n, generator=torch_generator(seed, "order", epoch))


def atomic_write(path: Path, data: bytes | Callable) -> None:
    """Write `path` so that a reader sees the old or the new content, never a torn one. `data`: the
    bytes, or a function that writes them to the open file (a checkpoint, never held in memory)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        if callable(data):
            data(f)
        else:
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class CheckpointSpaceError(OSError):
    """The disk cannot hold a group's checkpoint."""


def reserve_checkpoint(path: Path, nbytes: int) -> None:
    """Raise CheckpointSpaceError, before any training, when the disk of `path` lacks room for a
    checkpoint of `nbytes` written beside the one it replaces (an existing one counts as room)."""
    free = shutil.disk_usage(path.parent).free + (path.stat().st_size if path.exists() else 0)
    if free < 2 * nbytes:
        raise CheckpointSpaceError(
            f"the checkpoint of this group needs {nbytes / 2**30:.2f} GiB, twice that while a new one replaces "
            f"the old, but {path.parent} has {free / 2**30:.2f} GiB free: free some space or put the result store "
            "on a larger disk (--store)"
        )


def save_checkpoint(path: Path, fingerprint: str, epoch: int, elapsed: float, arrays: dict[str, np.ndarray]) -> None:
    atomic_write(
        path,
        lambda f: np.savez(
            f, fingerprint=np.array(fingerprint), epoch=np.array(epoch), elapsed=np.array(elapsed), **arrays
        ),
    )


def load_checkpoint(path: Path, fingerprint: str) -> dict[str, np.ndarray] | None:
    """The arrays of the checkpoint at `path` (with 'epoch' and 'elapsed'), or None when it is
    absent, torn or of another group (then training starts over)."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != fingerprint:
                return None
            return {k: z[k] for k in z.files}
    except (OSError, KeyError, ValueError):
        return None


def checkpoint_complete(state: dict, shapes: dict[str, tuple], hist: dict[str, np.ndarray]) -> bool:
    """Whether a checkpoint's state has every array a trainer restores, in its shape, so a foreign or
    older file is never half loaded (the trainer then starts over instead)."""
    epoch = int(state["epoch"])
    return all(k in state and tuple(state[k].shape) == tuple(shape) for k, shape in shapes.items()) and all(
        f"hist_{k}" in state and state[f"hist_{k}"].shape == (v.shape[0], epoch) for k, v in hist.items()
    )


@contextlib.contextmanager
def tf32_matmuls():
    """TF32 matrix products on Ampere and later GPUs while the MLP trains (no effect on the CPU)."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


@functools.cache
def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse instead of handing it back to the kernel;
    returns whether it could (False where the C library is not glibc: nothing changes).

    glibc serves each allocation above its mmap threshold (at most 32 MB) with a fresh mapping and
    unmaps it on free, so every training step's large activations and gradients page-fault in
    again, zero-filled by the kernel. With mmap off and the trim threshold at 2 GiB the heap reuses
    freed blocks and keeps up to 2 GiB of free memory at its top; the arithmetic, and so every
    number, is unchanged (what it saves: docs/design.md, "Harness"). Called where a group is built
    (train.Group, cnn.CNNGroup), so for all its training, and by harness.bench."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def train_to_end(
    group: TrainingGroup, progress: Progress | None, checkpoint: Path | None, checkpoint_every_s: float = 300.0
) -> list[RunResult]:
    """Train a group to the end of its budget and return its results.
    With `checkpoint`: resume from a compatible one, save one every `checkpoint_every_s` seconds (at
    an epoch's end, while epochs remain) and delete it at the end. The loop runs under the group's
    `precision()`; `finish()` (e.g. sharpness) runs after it and counts in the training seconds."""
    prior_s = 0.0
    if checkpoint is not None:
        reserve_checkpoint(checkpoint, group.checkpoint_bytes())
        prior_s = group.resume(load_checkpoint(checkpoint, group.fingerprint))
    t0 = last_save = time.perf_counter()
    with group.precision():
        while not group.done:
            group.step()
            group.evaluate()
            elapsed = prior_s + time.perf_counter() - t0
            if progress is not None:
                progress(group.epoch, group.c.budget, group.fitted, len(group.runs), elapsed)
            if checkpoint is not None and not group.done and time.perf_counter() - last_save >= checkpoint_every_s:
                save_checkpoint(checkpoint, group.fingerprint, group.epoch, elapsed, group.state())
                last_save = time.perf_counter()
    group.finish()
    results = group.results(prior_s + time.perf_counter() - t0)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    return results


def epoch_seconds(group: TrainingGroup, steps: int) -> float:
    """Seconds one epoch of a training group takes on its device, from a
    call of `steps` SGD steps and a longer one (the faster of two of each under half a second),
    timed after an untimed call (CUDA, cuBLAS and the MLP trainer's CUDA graphs warm up). Their
    difference is the extra steps' own cost, the rest what a call costs once (the epoch's data
    order), so a small group whose step takes 0.1 ms is not charged a call's milliseconds per step;
    the longer call adds at least `steps` steps and about 50 ms of them, so timing noise cannot hide
    them. Where it still does (the longer call no slower), the longer call's time per step: an upper
    bound. Plus one evaluation pass times the share of epochs that evaluate
    (`group.evaluation_share`). Trains the group a little: use a throwaway one."""
    sync = torch.cuda.synchronize if group.device.type == "cuda" else (lambda: None)
    batches = math.ceil(group.c.n_train / group.c.batch_size)
    k = max(1, min(steps, batches // 2))

    def took(n: int) -> float:  # a call's seconds; under half a second, the faster of two
        times = []
        while not times or (len(times) < 2 and times[0] < 0.5):
            sync()
            t = time.perf_counter()
            group.step(steps=n)
            sync()
            times.append(time.perf_counter() - t)
        return min(times)

    with group.precision():
        group.step(steps=min(2 * k, batches))
        short = took(k)
        extra = min(batches - k, max(k, math.ceil(0.05 * k / max(short, 1e-9))))
        long = took(k + extra) if extra > 0 else short
        if long > short:
            per_step, per_call = (long - short) / extra, max(short - k * (long - short) / extra, 0.0)
        else:
            per_step, per_call = long / (k + extra), 0.0
        t = time.perf_counter()
        group.evaluate(force=True)
        sync()
    return per_call + per_step * batches + (time.perf_counter() - t) * group.evaluation_share


def run_info(device: torch.device, models: int, epochs: int) -> dict:
    """How a group was trained, stored with each of its runs."""
    return {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "group_size": models,
        "epochs_run": epochs,
    }
