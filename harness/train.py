"""Batched SGD training of many MLP runs (seeds x conditions) as one model, data on the device.

    runs = [RunConfig(dataset="fashion-mnist", n_train=500, width=256, lr=0.1, batch_size=50,
                      max_epochs=400, noise=kind, noise_fraction=1.0, seed=s)
            for kind in ("none", "randY") for s in range(5)]
    results = train_group(runs, data.load("fashion-mnist"), device="cpu")

Pairing: seed s gets the same training subset, initialisation and data order in every condition;
the noise examples of a (seed, fraction) are the same for randX and randY. Every random stream is
derived from (seed, purpose), so results do not depend on which other runs share the batch.
`Group` is the MLP's training group (harness.core.TrainingGroup: step, evaluate, state, resume,
finish, results); `train_group` drives one to its end. Its inputs come from harness.inputs, its
end-of-run measures (sharpness) from harness.measures. Each epoch ends with a full pass over the
training set, and over the validation set every
`val_every` epochs and at the epoch where a run ends; a run is fitted at the first epoch with 100%
training accuracy (or, with `target_loss`, with training loss at most that), and a run never fitted
within `max_epochs` is right-censored (`fitted=False`, `epochs_to_fit=max_epochs`), never dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from . import measures, torch_generator
from .core import (
    Progress,
    RunResult,
    checkpoint_complete,
    epoch_order,
    keep_freed_memory,
    run_info,
    tf32_matmuls,
    train_to_end,
)
from .data import NOISE_KINDS, Dataset, flat_inputs
from .inputs import mlp_training_set, mlp_validation_set
from .models import BatchedMLP

METRICS = ("train_acc", "train_acc_clean", "train_acc_noise", "train_loss", "val_acc")


@dataclass(frozen=True)
class RunConfig:
    """One model: one seed, one condition. Defaults are the paper's MLP setup (docs/design.md)."""

    kind: ClassVar[str] = "mlp"  # harness.kinds: its trainer, metrics and store-key code
    dataset: str = "mnist"
    n_train: int = 50_000  # examples, class-stratified subset of the 50,000 training split
    n_val: int = 10_000  # clean validation examples, stratified subset of the 10,000 split
    width: int = 4096  # hidden units in each of the 2 ReLU layers
    depth: int = 2  # hidden layers
    lr: float = 0.01  # plain SGD, constant: no momentum, weight decay or schedule (paper)
    batch_size: int = 32  # not stated in the paper; Keras' default (the authors used Keras)
    max_epochs: int = 1000  # budget; a run not fitted by then is right-censored
    noise: str = "none"  # none | randX (Gaussian inputs) | randY (random labels) | sham (chosen, unchanged)
    noise_fraction: float = 0.0  # share of the training examples replaced by noise
    seed: int = 0  # already shifted by --base-seed
    val_every: int = 1  # epochs between validation passes (NaN in between), also run where a run ends
    stop_when_fitted: bool = True  # end the run at its first epoch with 100% train accuracy
    sharpness: str = "none"  # top Hessian eigenvalue where the run ends: none | power | both (+ LeCun's)
    pool: int = 1  # average-pool images by this factor before flattening: 2 makes 28x28 14x14, d = 196
    nested: bool = False  # subset and noise nested over n_train: a larger set contains a smaller one
    target_loss: float = 0.0  # > 0: a run ends at its first epoch with training loss <= this, not at 100%

    def __post_init__(self):
        if self.noise not in NOISE_KINDS:
            raise ValueError(f"noise={self.noise!r}: choose one of {NOISE_KINDS}")
        if self.noise == "none" and self.noise_fraction != 0:
            raise ValueError("noise='none' needs noise_fraction=0")
        if not 0 <= self.noise_fraction <= 1:
            raise ValueError(f"noise_fraction={self.noise_fraction} must be in [0, 1]")
        for name in ("n_train", "n_val", "width", "depth", "batch_size", "max_epochs", "val_every", "pool"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if self.lr <= 0:
            raise ValueError(f"lr={self.lr} must be positive")
        if self.sharpness not in ("none", "power", "both"):
            raise ValueError(f"sharpness={self.sharpness!r}: choose none, power or both")
        if self.target_loss < 0:
            raise ValueError(f"target_loss={self.target_loss} must be 0 (stop at 100% accuracy) or positive")

    def key(self) -> dict:
        return dataclasses.asdict(self)

    def shape(self) -> tuple:
        """What runs must share to train in one batch: everything but condition and seed."""
        return tuple(v for k, v in self.key().items() if k not in ("noise", "noise_fraction", "seed"))

    @property
    def budget(self) -> int:
        """The epoch budget."""
        return self.max_epochs

    @property
    def label(self) -> str:
        """The group's model in words, e.g. 'MLP 2x256, n 2000'."""
        return f"MLP {self.depth}x{self.width}, n {self.n_train}"


def forward_flops(run: RunConfig, ds: Dataset) -> float:
    """Multiply-adds x 2 of one example through the MLP (harness.plan's cost model)."""
    d = flat_inputs(ds.train_x[:1], run.pool).shape[1]
    sizes = [d] + [run.width] * run.depth + [ds.num_classes]
    return 2 * sum(a * b for a, b in zip(sizes, sizes[1:]))


def memory(run: RunConfig, ds: Dataset) -> tuple[int, int]:
    """(bytes a group of `run`'s shape needs once, bytes per run) on the device, an upper estimate
    (float32): per run its inputs, labels and noise flags, parameters with their gradients, end-state
    snapshot and the copy made when runs leave the batch, a step's activations forward and backward,
    an evaluation chunk's, and with sharpness the power iteration's vectors and the double-backward
    graph of a chunk; once, the validation inputs."""
    d = flat_inputs(ds.train_x[:1], run.pool).shape[1]
    sizes = [d] + [run.width] * run.depth + [ds.num_classes]
    params = sum(a * b + b for a, b in zip(sizes, sizes[1:]))
    hidden = sum(sizes[1:])
    floats = run.n_train * d + 4 * params + 3 * run.batch_size * hidden + min(8192, run.n_train) * hidden
    if run.sharpness != "none":
        floats += 6 * params + 4 * min(4096, run.n_train) * hidden
    return 4 * run.n_val * d, 4 * floats + 9 * run.n_train


def train_group(
    runs: list[RunConfig],
    ds: Dataset,
    device: str | torch.device = "cpu",
    *,
    progress: Progress | None = None,
    checkpoint: Path | None = None,
    checkpoint_every_s: float = 300.0,
    dtype: torch.dtype = torch.float32,
    fused: bool = True,
) -> list[RunResult]:
    """Train `runs` (all of one `shape()`) as one batched model; one result per run, in order.

    With `checkpoint`, the state is saved there every `checkpoint_every_s` seconds and a compatible
    checkpoint is resumed from, so an interrupted group continues where it stopped. `fused`
    (default): the step of `sgd_step_`, replayed as CUDA graphs on a GPU; False: autograd and
    torch.optim.SGD, the same arithmetic (for benchmarks and tests)."""
    if not runs:
        return []
    return train_to_end(Group(runs, ds, device, dtype, fused), progress, checkpoint, checkpoint_every_s)


class Group:
    """The state of one batched group while it trains: `step` (one SGD epoch of the runs still
    training), `evaluate` (the epoch's measurements; runs that reached their target leave the
    batch), `state`/`resume` (a checkpoint's arrays), `finish` and `results`.

    The batch holds only the runs still training: a run that stops leaves it, so stragglers do not
    drag the finished runs along. Runs are independent (per-model losses, plain SGD without state),
    so dropping one changes nothing for the others."""

    graph_steps = 10  # fused steps on CUDA run as CUDA graphs of this many steps (0: never graphed)

    def __init__(self, runs: list[RunConfig], ds: Dataset, device="cpu", dtype=torch.float32, fused: bool = True):
        c = self.c = runs[0]
        if any(r.shape() != c.shape() for r in runs):
            raise ValueError("runs of one group must share everything but noise, noise_fraction and seed")
        if c.dataset != ds.name:
            raise ValueError(f"runs of dataset {c.dataset!r} cannot train on dataset {ds.name!r}")
        keep_freed_memory()  # building and training copy large tensors: reuse memory, do not fault it in afresh
        self.runs, self.device, self.dtype = runs, torch.device(device), dtype
        device, M = self.device, len(runs)
        # Each run's inputs go to the device as soon as they are made, never stacked on the host: a
        # group of 65 runs at n = 50,000 would otherwise hold its 10 GB of inputs twice there.
        self.X, labels, noise, self.flip_rate, clean = None, [], [], [], {}
        for m, r in enumerate(runs):
            x, y, is_noise, flip = mlp_training_set(r, ds, clean)
            if self.X is None:
                self.X = torch.empty((M, *x.shape), device=device, dtype=dtype)  # (M, n, d)
            self.X[m] = x
            labels.append(y)
            noise.append(is_noise)
            self.flip_rate.append(flip)
        self.Y = torch.stack(labels).to(device)  # (M, n)
        self.noise = torch.stack(noise).to(device)  # (M, n) bool
        Xv, self.Yv = (t.to(device) for t in mlp_validation_set(ds, c.n_val, c.pool))
        self.Xv = Xv.to(dtype)  # (n_val, d)
        self.sizes = [self.X.shape[-1]] + [c.width] * c.depth + [ds.num_classes]
        self.model = BatchedMLP(M, self.sizes).to(device, dtype)
        self.model.glorot_([torch_generator(r.seed, "init", r.width, r.depth) for r in runs])
        self.hist = {m: np.full((M, c.max_epochs), np.nan) for m in METRICS}
        self.fit_epoch = np.zeros(M, dtype=np.int64)  # 0 = not yet fitted
        # Each run's parameters where it ends: frozen at its fit epoch if it stops there.
        self.snapshot = [p.detach().clone() for p in self.model.parameters()]
        self.epoch = 0
        self.fingerprint = _fingerprint(runs)
        self.seeds = sorted({r.seed for r in runs})
        self.seed_row = torch.tensor([self.seeds.index(r.seed) for r in runs], device=device)  # run -> its seed
        self.active = np.arange(M)
        self.fused = fused
        self._graphs = None  # _GraphedSteps of the current batch (CUDA, fused)

    @property
    def done(self) -> bool:
        return self.epoch >= self.c.max_epochs or not len(self.active)

    def precision(self):
        return tf32_matmuls()

    @property
    def fitted(self) -> int:
        return int((self.fit_epoch > 0).sum())

    evaluation_share = 1.0  # every epoch measures the training set (validation, every val_every: counted too)

    def checkpoint_bytes(self) -> int:
        """Size of the group's checkpoint: every run's current parameters and its history."""
        return sum(p.numel() * p.element_size() for p in self.model.parameters()) + sum(
            v.nbytes for v in self.hist.values()
        )

    def state(self) -> dict[str, np.ndarray]:
        """A checkpoint's arrays: each run's parameters (its end state if it stopped), history, fit epoch."""
        current = [s.clone() for s in self.snapshot]
        _store_rows(current, self.model, self.active, np.ones(len(self.active), bool))
        return {
            **{f"param{i}": p.cpu().numpy() for i, p in enumerate(current)},
            **{f"hist_{k}": v[:, : self.epoch] for k, v in self.hist.items()},
            "fit_epoch": self.fit_epoch,
        }

    def resume(self, state: dict | None) -> float:
        """Continue from a checkpoint's state (None, or one of another shape: start over); returns
        the training seconds it had taken."""
        shapes = {f"param{i}": p.shape for i, p in enumerate(self.model.parameters())}
        if (
            state is not None
            and int(state["epoch"]) <= self.c.max_epochs
            and "fit_epoch" in state
            and checkpoint_complete(state, shapes, self.hist)
        ):
            self.epoch = int(state["epoch"])
            with torch.no_grad():
                for i, (p, snap) in enumerate(zip(self.model.parameters(), self.snapshot)):
                    p.copy_(torch.from_numpy(state[f"param{i}"]))
                    snap.copy_(p)
            for k in self.hist:
                self.hist[k][:, : self.epoch] = state[f"hist_{k}"]
            self.fit_epoch[:] = state["fit_epoch"]
        if self.c.stop_when_fitted:
            self.active = np.flatnonzero(self.fit_epoch == 0)
            self.model = _subset(self.model, self.active, self.sizes)
        return float(state["elapsed"]) if self.epoch else 0.0

    def step(self, steps: int | None = None) -> None:
        """One epoch of SGD for the runs still training, each in its seed's data order (its first
        `steps` batches only, when given: for timing)."""
        c, model, n = self.c, self.model, self.c.n_train
        rows = torch.from_numpy(self.active).to(self.device)
        order = torch.stack([epoch_order(s, self.epoch, n) for s in self.seeds]).to(self.device)[self.seed_row[rows]]
        if self.fused:
            return self._fused_steps(rows, order, steps)
        opt = torch.optim.SGD(model.parameters(), lr=c.lr)  # stateless, so rebuilding it is free
        model.train()
        for start in range(0, n, c.batch_size)[:steps]:
            idx = order[:, start : start + c.batch_size]  # (A, b)
            logits = model(self.X[rows[:, None], idx])  # (A, b, K)
            loss = F.cross_entropy(logits.flatten(0, 1), self.Y[rows[:, None], idx].flatten(), reduction="none")
            opt.zero_grad(set_to_none=True)
            loss.view(len(self.active), -1).mean(1).sum().backward()  # sum of per-model means: independent grads
            opt.step()

    def _fused_steps(self, rows: torch.Tensor, order: torch.Tensor, steps: int | None) -> None:
        """The epoch's steps with `sgd_step_`; on CUDA, runs of `graph_steps` full batches replay one
        CUDA graph (captured once per batch of runs), the rest run eagerly: the same kernels either way."""
        b, G = self.c.batch_size, self.graph_steps
        batches = range(0, self.c.n_train, b)[:steps]
        # Batches run as graphs: whole chunks of full batches.
        graphed = min(len(batches), self.c.n_train // b) // G * G if self.device.type == "cuda" and G else 0
        if graphed:
            if self._graphs is None or self._graphs.model is not self.model:
                self._graphs = None  # free the last batch's graph before capturing this one's
                self._graphs = _GraphedSteps(self.model, self.X, self.Y, rows, b, self.c.lr, G)
            for start in range(0, graphed * b, G * b):
                self._graphs.replay(order[:, start : start + G * b])
        for start in batches[graphed:]:
            idx = order[:, start : start + b]
            sgd_step_(self.model, self.X[rows[:, None], idx], self.Y[rows[:, None], idx], self.c.lr)

    def evaluate(self, force: bool = False) -> None:
        """The epoch's training metrics, fit epochs and validation accuracy (when due, or `force`d);
        runs that reached their target leave the batch (with `stop_when_fitted`)."""
        c, active = self.c, self.active
        _evaluate(
            self.model, self.X, self.Y, self.noise, torch.from_numpy(active).to(self.device), self.hist, self.epoch
        )
        self.epoch += 1
        epoch = self.epoch
        reached = (
            self.hist["train_loss"][active, epoch - 1] <= c.target_loss
            if c.target_loss
            else self.hist["train_acc"][active, epoch - 1] == 1.0
        )
        newly = (self.fit_epoch[active] == 0) & reached  # over the batch
        self.fit_epoch[active[newly]] = epoch
        ends = newly & c.stop_when_fitted
        # Validate every val_every epochs and where a run ends, recorded only for the runs due, so a
        # run's history does not depend on the others in its batch.
        due = np.full(len(active), force or epoch % c.val_every == 0 or epoch == c.max_epochs) | ends
        if due.any():
            self.hist["val_acc"][active[due], epoch - 1] = _val_acc(self.model, self.Xv, self.Yv)[due]
        if ends.any():
            _store_rows(self.snapshot, self.model, active, ends)
            self.active = active[~ends]
            self.model = _subset(self.model, np.flatnonzero(~ends), self.sizes)

    def finish(self) -> None:
        """Freeze the runs that trained to the end, then take the end-of-run measures their configs
        ask for (harness.measures.MLP_HOOKS: sharpness and the inputs' spectrum)."""
        self._graphs = None  # the steps' CUDA graph and its memory are done with
        _store_rows(self.snapshot, self.model, self.active, np.ones(len(self.active), bool))
        self.measures = measures.end_of_run(self, measures.MLP_HOOKS)

    def results(self, wall: float) -> list[RunResult]:
        """One result per run, after `finish`; `wall`: the group's training seconds in all."""
        norms = sum(s.double().pow(2).flatten(1).sum(1) for s in self.snapshot).sqrt().cpu().numpy()
        info = run_info(self.device, len(self.runs), self.epoch)
        results = []
        for m, r in enumerate(self.runs):
            fit = self.fit_epoch[m]
            end = fit if (r.stop_when_fitted and fit) else self.epoch
            results.append(
                RunResult(
                    r,
                    {k: v[m, :end].copy() for k, v in self.hist.items()},
                    bool(fit),
                    int(fit) if fit else r.max_epochs,
                    self.flip_rate[m],
                    float(norms[m]),
                    wall / len(self.runs),
                    info,
                    self.measures[m],
                )
            )
        return results


@torch.no_grad()
def sgd_step_(model: BatchedMLP, x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
    """One plain SGD step of every model on its batch (x (M, b, d), y (M, b)), in place: the same
    arithmetic as autograd of the per-model mean cross-entropy and torch.optim.SGD, written out.

    Each layer's weight update is fused into its weight-gradient product (`baddbmm_`: W += -lr a^T g),
    so no gradient tensor is written and read back; a layer's input gradient is taken before its
    update. Against autograd it agrees to rounding (tests/test_train.py, float64); in float32 the
    last bits differ. The trainer's step on every device (its speed: docs/design.md, "Harness")."""
    weights, biases = list(model.weights), list(model.biases)
    inputs, h = [x], x
    for i, (w, b) in enumerate(zip(weights, biases)):
        h = torch.baddbmm(b, h, w)
        if i < len(weights) - 1:
            h = torch.relu(h)
            inputs.append(h)
    g = torch.softmax(h, -1)  # d(mean cross-entropy)/d logits = (softmax - onehot) / b
    g.scatter_add_(-1, y[..., None], torch.full_like(g[..., :1], -1.0)).div_(x.shape[1])
    for i in reversed(range(len(weights))):
        a = inputs[i]
        below = torch.bmm(g, weights[i].transpose(1, 2)).mul_(a > 0) if i else None  # ReLU' from its output
        weights[i].baddbmm_(a.transpose(1, 2), g, alpha=-lr)
        biases[i].sub_(g.sum(1, keepdim=True), alpha=lr)
        g = below


class _GraphedSteps:
    """`steps` consecutive fused SGD steps of one batch of runs captured as one CUDA graph: a replay
    copies the chunk's example indices (A, steps * b) into a static buffer and launches the whole
    chunk at once, so Python and kernel launches no longer set the pace of small groups. Captured
    for one model (a batch of runs): when runs leave the batch the trainer captures anew."""

    def __init__(self, model: BatchedMLP, X, Y, rows: torch.Tensor, b: int, lr: float, steps: int):
        self.model, self.X, self.Y, self.rows, self.b, self.steps = model, X, Y, rows.clone(), b, steps
        self.idx = torch.zeros(len(rows), steps * b, dtype=torch.long, device=X.device)
        # Warm up (cuBLAS handles and workspaces) on a side stream, then restore the weights it moved.
        before = [p.detach().clone() for p in model.parameters()]
        side = torch.cuda.Stream(X.device)
        side.wait_stream(torch.cuda.current_stream(X.device))
        with torch.cuda.stream(side):
            self._chunk(lr)
        torch.cuda.current_stream(X.device).wait_stream(side)
        with torch.no_grad():
            for p, q in zip(model.parameters(), before):
                p.copy_(q)
        del before
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._chunk(lr)

    def _chunk(self, lr: float) -> None:
        rows = self.rows[:, None]
        for k in range(self.steps):
            idx = self.idx[:, k * self.b : (k + 1) * self.b]
            sgd_step_(self.model, self.X[rows, idx], self.Y[rows, idx], lr)

    def replay(self, idx: torch.Tensor) -> None:
        self.idx.copy_(idx)
        self.graph.replay()


def _subset(model: BatchedMLP, keep: np.ndarray, sizes: list[int]) -> BatchedMLP:
    """The models `keep` (positions in `model`'s batch) as a batch of their own."""
    if len(keep) == model.weights[0].shape[0]:
        return model
    small = BatchedMLP(len(keep), sizes).to(model.weights[0])
    rows = torch.from_numpy(keep).to(model.weights[0].device)
    with torch.no_grad():
        for q, p in zip(small.parameters(), model.parameters()):
            q.copy_(p[rows])
    return small


@torch.no_grad()
def _store_rows(full: list[torch.Tensor], model: BatchedMLP, active: np.ndarray, which: np.ndarray) -> None:
    """full[r][active[i]] = the batch's parameters of model i, for the positions i in `which`."""
    rows = torch.from_numpy(active[which]).to(full[0].device)
    pick = torch.from_numpy(np.flatnonzero(which)).to(full[0].device)
    for f, p in zip(full, model.parameters()):
        f[rows] = p[pick]


@torch.no_grad()
def _evaluate(model, X, Y, noise, rows, hist, epoch, chunk=8192):
    """Training accuracy (all, clean, noise examples) and loss of the runs `rows` at `epoch`."""
    model.eval()
    A, at = len(rows), rows.cpu().numpy()
    every = A == X.shape[0]  # every run still trains: slices of X are views, no copy of the training sets
    correct, losses = [], []
    for s in range(0, X.shape[1], chunk):
        logits = model(X[:, s : s + chunk] if every else X[rows, s : s + chunk])  # (A, c, K)
        y = Y[rows, s : s + chunk]
        correct.append(logits.argmax(-1) == y)
        losses.append(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(A, -1))
    correct = torch.cat(correct, 1).double()  # (A, n)
    clean = (~noise[rows]).double()
    hist["train_acc"][at, epoch] = correct.mean(1).cpu().numpy()
    hist["train_loss"][at, epoch] = torch.cat(losses, 1).double().mean(1).cpu().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):  # NaN where a run has no clean/noise examples
        hist["train_acc_clean"][at, epoch] = ((correct * clean).sum(1) / clean.sum(1)).cpu().numpy()
        hist["train_acc_noise"][at, epoch] = ((correct * (1 - clean)).sum(1) / (1 - clean).sum(1)).cpu().numpy()


@torch.no_grad()
def _val_acc(model, Xv, Yv, chunk=8192) -> np.ndarray:
    model.eval()
    M = model.weights[0].shape[0]
    hits = torch.zeros(M, device=Xv.device, dtype=torch.float64)
    for s in range(0, Xv.shape[0], chunk):
        xv = Xv[s : s + chunk].expand(M, -1, -1)  # (M, c, d), shared examples
        hits += (model(xv).argmax(-1) == Yv[s : s + chunk]).sum(1)
    return (hits / Xv.shape[0]).cpu().numpy()


def _fingerprint(runs: list[RunConfig]) -> str:
    """Identity of a group for resuming: everything but the epoch budget, which may grow."""
    keys = [{k: v for k, v in r.key().items() if k != "max_epochs"} for r in runs]
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()
