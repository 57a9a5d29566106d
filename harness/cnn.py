"""The small AlexNet-style CNN of Zhang et al. (2017), batched across runs, with the four explicit
regularizers of the paper's Fig. 3 right (claim C4).

    runs = [CNNConfig(dataset="fashion-mnist", n_train=500, channels=16, labels=labels,
                      regularizer="dropout", strength=p, seed=s)
            for labels in ("real", "random") for p in (0.0, 0.5) for s in range(5)]
    results = train_cnn_group(runs, data.load("fashion-mnist"), device="cpu")

Model (Zhang et al.'s, docs/design.md): two blocks [conv 5x5 SAME, ReLU, max-pool 3x3 stride 2 SAME, local
response norm], dense 384, dense 192 (ReLU), linear output; Keras' Glorot-uniform init, zero biases.
LRN uses the constants of the TensorFlow CIFAR-10 model Zhang et al. started from (depth radius 4,
alpha 0.001/9 per channel, beta 0.75, bias 1). M runs of one `shape()` are one model: the
convolutions are grouped (groups=M) over a (B, M*C, H, W) tensor, LRN runs on a (B*M, C, H, W)
view so it never mixes two models' channels, and the dense layers are batched matmuls.

Regularizers, each model with its own kind and strength (so one batch holds every curve point):
- dropout: drop probability p on both dense hidden layers (inverted dropout, as Keras);
- input_dropout: drop probability p on the standardized input pixels;
- gaussian: additive N(0, std^2) on the standardized inputs (inputs have unit variance per channel);
- weight_decay: coupled L2, grad += lambda * w on every kernel (not biases) before the momentum
  update, as torch.optim.SGD's weight_decay.
Strength 0 is exactly the unregularized model (tests/test_cnn.py).

Training: SGD with momentum 0.9 (extended paper), lr halved every `halve_every` epochs (paper: 10),
a fixed number of epochs (paper: 50), no augmentation. Inputs are centre-cropped to `crop` (Zhang et
al. crop CIFAR-10 to 28x28), optionally average-pooled by `downsample` (a smoke-tier saving), and
standardized with the per-channel mean and std of the training split. Training and validation
accuracy are measured in eval mode (no dropout, clean inputs).
Pairing: seed s has the same subset, initialisation, data order and regularizer noise stream in
every condition; every random stream comes from (seed, purpose), so a run's numbers do not depend
on which runs share its batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from . import derive_seed, measures, torch_generator
from .core import Progress, RunResult, checkpoint_complete, epoch_order, keep_freed_memory, run_info, train_to_end
from .data import Dataset
from .inputs import channel_stats, cnn_training_set, cnn_validation_set

METRICS = ("train_acc", "train_loss", "val_acc")
REGULARIZERS = ("none", "dropout", "input_dropout", "gaussian", "weight_decay")
LRN_RADIUS, LRN_ALPHA, LRN_BETA, LRN_BIAS = 4, 0.001 / 9, 0.75, 1.0  # TF's tf.nn.lrn(pool, 4, 1.0, 0.001/9, 0.75)


@dataclass(frozen=True)
class CNNConfig:
    """One CNN run: one seed, one label condition, one regularizer strength. Defaults: the paper's
    Fig. 3 right setup (docs/design.md); the batch size is not stated there (128 is Zhang et al.'s)."""

    kind: ClassVar[str] = "cnn"  # harness.kinds: its trainer, metrics and store-key code
    dataset: str = "cifar10"
    n_train: int = 50_000  # class-stratified subset of the training split
    n_val: int = 10_000  # clean validation examples
    crop: int = 28  # centre crop side (Zhang et al.); images no larger are left as they are
    downsample: int = 1  # average-pool the cropped images by this factor (1: the paper's resolution)
    channels: int = 64  # filters of each conv layer (Zhang et al.)
    dense: tuple[int, ...] = (384, 192)  # hidden units of the dense layers
    lr: float = 0.01
    halve_every: int = 10  # epochs between halvings of the learning rate (paper: 10)
    momentum: float = 0.9  # extended paper
    batch_size: int = 128
    epochs: int = 50
    labels: str = "real"  # real | random (every training label uniform random; validation stays clean)
    regularizer: str = "none"  # none | dropout | input_dropout | gaussian | weight_decay
    strength: float = 0.0  # dropout probability, Gaussian std, or L2 coefficient
    seed: int = 0  # already shifted by --base-seed
    val_every: int = 1  # epochs between accuracy measurements (the last epoch is always measured)

    def __post_init__(self):
        object.__setattr__(self, "dense", tuple(self.dense))  # JSON gives lists back
        if self.labels not in ("real", "random"):
            raise ValueError(f"labels={self.labels!r}: choose real or random")
        if self.regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer={self.regularizer!r}: choose one of {REGULARIZERS}")
        if self.regularizer == "none" and self.strength != 0:
            raise ValueError("regularizer='none' needs strength=0")
        if self.regularizer in ("dropout", "input_dropout") and not 0 <= self.strength < 1:
            raise ValueError(f"{self.regularizer} strength={self.strength} is a drop probability: it must be in [0, 1)")
        if self.strength < 0:
            raise ValueError(f"{self.regularizer} strength={self.strength} must not be negative")
        for name in (
            "n_train",
            "n_val",
            "crop",
            "downsample",
            "channels",
            "halve_every",
            "batch_size",
            "epochs",
            "val_every",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if not self.dense or min(self.dense) < 1:
            raise ValueError(f"dense={self.dense} needs at least one layer of at least 1 unit")
        if self.lr <= 0 or not 0 <= self.momentum < 1:
            raise ValueError(f"lr={self.lr} must be positive and momentum={self.momentum} in [0, 1)")

    def key(self) -> dict:
        return dataclasses.asdict(self)

    def shape(self) -> tuple:
        """What runs must share to train in one batch: everything but labels, regularizer and seed."""
        return tuple(v for k, v in self.key().items() if k not in ("labels", "regularizer", "strength", "seed"))

    @property
    def budget(self) -> int:
        """The epoch budget."""
        return self.epochs

    @property
    def label(self) -> str:
        """The group's model in words, e.g. 'CNN 8 filters, n 256'."""
        return f"CNN {self.channels} filters, n {self.n_train}"


class BatchedCNN(torch.nn.Module):
    def __init__(self, n_models: int, in_channels: int, side: int, channels: int, dense: tuple[int, ...], classes: int):
        """M independent CNNs for (in_channels, side, side) inputs; initialise with `glorot_`."""
        super().__init__()
        M, C = n_models, channels
        self.n_models, self.channels = M, C
        self.kernels = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.empty(M * C, in_channels, 5, 5)), torch.nn.Parameter(torch.empty(M * C, C, 5, 5))]
        )  # (M*out, in, 5, 5)
        self.conv_biases = torch.nn.ParameterList(torch.nn.Parameter(torch.zeros(M * C)) for _ in range(2))
        pooled = math.ceil(math.ceil(side / 2) / 2)  # two SAME pools of stride 2
        sizes = [C * pooled * pooled, *dense, classes]
        self.weights = torch.nn.ParameterList(
            torch.nn.Parameter(torch.empty(M, a, b)) for a, b in zip(sizes[:-1], sizes[1:])
        )  # (M, in, out)
        self.biases = torch.nn.ParameterList(torch.nn.Parameter(torch.zeros(M, 1, b)) for b in sizes[1:])

    def decayed(self) -> list[torch.nn.Parameter]:
        """The parameters weight decay acts on: every kernel, no bias."""
        return [*self.kernels, *self.weights]

    def glorot_(self, generators: list[torch.Generator]) -> "BatchedCNN":
        """Keras' Glorot-uniform init (fan = channels x receptive field for a conv), zero biases.
        Model m draws from generators[m], layer by layer, so its init depends on its seed alone."""
        C = self.channels
        with torch.no_grad():
            for m, g in enumerate(generators):
                for k in self.kernels:
                    out, fan_in = C, k.shape[1] * 25
                    limit = math.sqrt(6.0 / (fan_in + out * 25))
                    k[m * C : (m + 1) * C] = (torch.rand(out, *k.shape[1:], generator=g) * 2 - 1) * limit
                for w in self.weights:
                    limit = math.sqrt(6.0 / (w.shape[1] + w.shape[2]))
                    w[m] = (torch.rand(w.shape[1:], generator=g) * 2 - 1) * limit
            for b in [*self.conv_biases, *self.biases]:
                b.zero_()
        return self

    def forward(self, x: torch.Tensor, masks: list[torch.Tensor] | None = None) -> torch.Tensor:
        """x: (M, B, C_in, H, W) -> logits (M, B, classes); masks[i] (M, B, dense[i]) multiplies the
        i-th dense hidden layer's output (dropout), None for none."""
        M, B = x.shape[:2]
        h = x.transpose(0, 1).reshape(B, M * x.shape[2], *x.shape[3:])  # (B, M*C_in, H, W)
        for k, b in zip(self.kernels, self.conv_biases):
            h = F.max_pool2d(torch.relu(F.conv2d(h, k, b, padding=2, groups=M)), 3, 2, padding=1)
            side = h.shape[-2:]
            h = local_response_norm(h.reshape(B * M, self.channels, *side)).reshape(B, -1, *side)
        h = h.reshape(B, M, -1).transpose(0, 1)  # (M, B, C*h*w)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = torch.relu(h)
                if masks is not None:
                    h = h * masks[i]
        return h


def local_response_norm(h: torch.Tensor) -> torch.Tensor:
    """TF's LRN over the channels of (N, C, H, W): h / (bias + alpha * window sum of h^2)^beta, the
    window being the channels within LRN_RADIUS. N = B*M, so a window never reaches another model.
    The window sums are one product with a banded 0/1 (C, C) matrix: forward and backward are
    matrix products, faster on the CPU than summed shifted slices or torch's F.local_response_norm
    (a 3-D average pool), and equal to them to float rounding."""
    C = h.shape[1]
    i = torch.arange(C, device=h.device)
    band = ((i[:, None] - i[None, :]).abs() <= LRN_RADIUS).to(h.dtype)  # (C, C): channels within the radius
    window = torch.matmul(band, (h * h).flatten(2)).view_as(h)
    return h / (LRN_BIAS + LRN_ALPHA * window).pow(LRN_BETA)


def _generator(device, *parts) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(derive_seed(*parts))


class Regularizers:
    """Per-model regularization of one batch: input perturbation, dropout masks, weight decay.

    Each perturbed model draws from its own generator, re-seeded from (seed, epoch) every epoch, so
    its noise depends on its own config alone and a resumed run sees the same."""

    def __init__(self, runs: list[CNNConfig], device):
        self.runs, self.device = runs, device
        self.decay = torch.tensor(
            [r.strength if r.regularizer == "weight_decay" else 0.0 for r in runs], device=device
        )  # (M,)
        self.noisy = [
            m
            for m, r in enumerate(runs)
            if r.regularizer in ("dropout", "input_dropout", "gaussian") and r.strength > 0
        ]
        self.generators: dict[int, torch.Generator] = {}

    def start_epoch(self, epoch: int):
        self.generators = {m: _generator(self.device, self.runs[m].seed, "regularizer", epoch) for m in self.noisy}

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        """x: (M, b, C, H, W) -> the inputs each model trains on (a copy only where one changes)."""
        changed = [m for m in self.noisy if self.runs[m].regularizer in ("input_dropout", "gaussian")]
        if not changed:
            return x
        x = x.clone()
        for m in changed:
            r, g = self.runs[m], self.generators[m]
            if r.regularizer == "input_dropout":
                keep = torch.rand(x.shape[1:], generator=g, device=x.device) >= r.strength
                x[m] = x[m] * keep / (1 - r.strength)
            else:
                x[m] = x[m] + r.strength * torch.randn(x.shape[1:], generator=g, device=x.device)
        return x

    def masks(self, batch: int, dense: tuple[int, ...], dtype) -> list[torch.Tensor] | None:
        """Dropout masks (M, b, units) for each dense hidden layer; ones for models without dropout."""
        dropping = [m for m in self.noisy if self.runs[m].regularizer == "dropout"]
        if not dropping:
            return None
        out = []
        for units in dense:
            mask = torch.ones(len(self.runs), batch, units, device=self.device, dtype=dtype)
            for m in dropping:
                p = self.runs[m].strength
                mask[m] = (torch.rand(batch, units, generator=self.generators[m], device=self.device) >= p) / (1 - p)
            out.append(mask)
        return out

    def decay_grads(self, model: BatchedCNN):
        """grad += lambda_m * w_m for every kernel of every model (lambda 0 adds exactly 0)."""
        if not bool((self.decay > 0).any()):
            return
        M = len(self.runs)
        for p in model.decayed():
            lam = self.decay.to(p.dtype).repeat_interleave(p.shape[0] // M)  # (rows,) rows of model m together
            p.grad.add_(p.detach() * lam.view(-1, *[1] * (p.dim() - 1)))


def forward_flops(run: CNNConfig, ds: Dataset) -> float:
    """Multiply-adds x 2 of one example through the two 5x5 convolutions and the dense layers
    (harness.plan's cost model)."""
    c_in = ds.train_x.shape[1]
    side = min(run.crop, ds.train_x.shape[-1]) // run.downsample
    half, quarter = math.ceil(side / 2), math.ceil(math.ceil(side / 2) / 2)
    convs = side * side * run.channels * c_in * 25 + half * half * run.channels * run.channels * 25
    sizes = [run.channels * quarter * quarter, *run.dense, ds.num_classes]
    return 2 * (convs + sum(a * b for a, b in zip(sizes, sizes[1:])))


def memory(run: CNNConfig, ds: Dataset) -> tuple[int, int]:
    """(bytes a group of `run`'s shape needs once, bytes per run) on the device, an upper estimate
    (float32): per run its seed's inputs (shared by the seed's runs), parameters with gradients,
    momentum and a copy, and a step's activations (5 maps of the first conv's size per example,
    forward and backward); once, the validation inputs and the evaluation chunks (at most 2^28
    floats, `_evaluate`)."""
    c_in, side = ds.train_x.shape[1], min(run.crop, ds.train_x.shape[-1])
    side = math.ceil(side / run.downsample)
    pooled = math.ceil(math.ceil(side / 2) / 2)
    sizes = [run.channels * pooled * pooled, *run.dense, ds.num_classes]
    params = (
        25 * run.channels * (c_in + run.channels) + 2 * run.channels + sum(a * b + b for a, b in zip(sizes, sizes[1:]))
    )
    per_example = c_in * side * side
    floats = run.n_train * per_example + 4 * params + 10 * run.batch_size * run.channels * side * side
    return 4 * (run.n_val * per_example + 2**28), 4 * floats + 8 * run.n_train


def train_cnn_group(
    runs: list[CNNConfig],
    ds: Dataset,
    device: str | torch.device = "cpu",
    *,
    progress: Progress | None = None,
    checkpoint: Path | None = None,
    checkpoint_every_s: float = 300.0,
    dtype: torch.dtype = torch.float32,
) -> list[RunResult]:
    """Train `runs` (all of one `shape()`) as one batched CNN; one result per run, in order.

    Each result's `measures` holds `final_train_acc` and `final_val_acc` (last epoch) and
    `best_val_acc` (best measured epoch). With `checkpoint`, the state is saved there every
    `checkpoint_every_s` seconds (at an epoch's end) and a compatible checkpoint is resumed from."""
    if not runs:
        return []
    return train_to_end(CNNGroup(runs, ds, device, dtype), progress, checkpoint, checkpoint_every_s)


class CNNGroup:
    """The state of one batched CNN group while it trains (harness.core.TrainingGroup): `step` (one
    epoch of SGD with momentum, or its first `steps` batches), `evaluate` (the epoch's accuracies when
    due; ends the epoch), `state`/`resume` (a checkpoint's arrays) and `results`."""

    def __init__(self, runs: list[CNNConfig], ds: Dataset, device="cpu", dtype=torch.float32):
        c = self.c = runs[0]
        if any(r.shape() != c.shape() for r in runs):
            raise ValueError("CNN runs of one group must share everything but labels, regularizer, strength and seed")
        if c.dataset != ds.name:
            raise ValueError(f"runs of dataset {c.dataset!r} cannot train on dataset {ds.name!r}")
        keep_freed_memory()  # building and training copy large tensors: reuse memory, do not fault it in afresh
        self.runs, self.device, self.dtype = runs, torch.device(device), dtype
        device, M = self.device, len(runs)
        stats = channel_stats(ds.train_x)
        self.seeds = sorted({r.seed for r in runs})
        self.prepared = [cnn_training_set(r, ds, stats) for r in runs]
        first = {r.seed: m for m, r in reversed(list(enumerate(runs)))}
        self.X = torch.stack([self.prepared[first[s]][0] for s in self.seeds]).to(device, dtype)  # (S, n, C, H, W)
        self.Y = torch.stack([p[1] for p in self.prepared]).to(device)  # (M, n)
        Xv, Yv = cnn_validation_set(c, ds, stats)
        self.Xv, self.Yv = Xv.to(device, dtype), Yv.to(device)
        self.row = torch.tensor([self.seeds.index(r.seed) for r in runs], device=device)  # model -> its seed
        self.model = BatchedCNN(M, self.X.shape[2], self.X.shape[-1], c.channels, c.dense, ds.num_classes).to(
            device, dtype
        )
        self.model.glorot_([torch_generator(r.seed, "init", "cnn", r.channels, r.dense) for r in runs])
        self.opt = torch.optim.SGD(self.model.parameters(), lr=c.lr, momentum=c.momentum)
        self.reg = Regularizers(runs, device)
        self.hist = {k: np.full((M, c.epochs), np.nan) for k in METRICS}
        self.fingerprint = hashlib.sha256(json.dumps([r.key() for r in runs], sort_keys=True).encode()).hexdigest()
        self.models = torch.arange(M, device=device)[:, None]
        self.epoch = 0

    @property
    def done(self) -> bool:
        return self.epoch >= self.c.epochs

    def precision(self):
        return contextlib.nullcontext()  # the CNN trains at torch's default precision

    def finish(self) -> None:
        """Nothing to measure after training."""

    @property
    def fitted(self) -> int:
        """Runs at 100% training accuracy at some measured epoch so far."""
        return int((self.hist["train_acc"][:, : self.epoch] == 1.0).any(1).sum())

    @property
    def evaluation_share(self) -> float:
        """Share of the epochs that measure accuracies (every val_every-th and the last)."""
        c = self.c
        return (c.epochs // c.val_every + (c.epochs % c.val_every != 0)) / c.epochs

    def checkpoint_bytes(self) -> int:
        """Size of the group's checkpoint: parameters, momentum and history."""
        return 2 * sum(p.numel() * p.element_size() for p in self.model.parameters()) + sum(
            v.nbytes for v in self.hist.values()
        )

    def state(self) -> dict[str, np.ndarray]:
        params = list(self.model.parameters())
        state = {f"param{i}": p.detach().cpu().numpy() for i, p in enumerate(params)}
        state.update(
            {
                f"momentum{i}": self.opt.state[p]["momentum_buffer"].cpu().numpy()
                for i, p in enumerate(params)
                if self.opt.state[p].get("momentum_buffer") is not None
            }
        )
        state.update({f"hist_{k}": v[:, : self.epoch] for k, v in self.hist.items()})
        return state

    def resume(self, state: dict | None) -> float:
        """Continue from a checkpoint's state (None, or one of another shape: start over); returns
        the training seconds it had taken."""
        shapes = {f"param{i}": p.shape for i, p in enumerate(self.model.parameters())}
        if state is None or not checkpoint_complete(state, shapes, self.hist):
            return 0.0
        self.epoch = int(state["epoch"])
        with torch.no_grad():
            for i, p in enumerate(self.model.parameters()):
                p.copy_(torch.from_numpy(state[f"param{i}"]))
                if f"momentum{i}" in state:
                    self.opt.state[p]["momentum_buffer"] = torch.from_numpy(state[f"momentum{i}"]).to(p)
        for k in self.hist:
            self.hist[k][:, : self.epoch] = state[f"hist_{k}"]
        return float(state["elapsed"])

    def step(self, steps: int | None = None) -> None:
        """The current epoch's SGD steps (its first `steps` batches only, when given: for timing)."""
        c, model, reg, n, epoch = self.c, self.model, self.reg, self.c.n_train, self.epoch
        for group in self.opt.param_groups:
            group["lr"] = c.lr * 0.5 ** (epoch // c.halve_every)
        reg.start_epoch(epoch)
        order = torch.stack([epoch_order(s, epoch, n) for s in self.seeds]).to(self.device)[self.row]  # (M, n)
        model.train()
        for start in range(0, n, c.batch_size)[:steps]:
            idx = order[:, start : start + c.batch_size]  # (M, b)
            x = reg.perturb(self.X[self.row[:, None], idx])  # (M, b, C, H, W)
            logits = model(x, reg.masks(idx.shape[1], c.dense, self.dtype))  # (M, b, K)
            loss = F.cross_entropy(logits.flatten(0, 1), self.Y[self.models, idx].flatten(), reduction="none")
            self.opt.zero_grad(set_to_none=True)
            loss.view(len(self.runs), -1).mean(1).sum().backward()  # sum of per-model means: independent grads
            reg.decay_grads(model)
            self.opt.step()

    def evaluate(self, force: bool = False) -> None:
        """Accuracies at the end of the epoch when due (every val_every epochs and the last, or
        `force`d); ends the epoch."""
        if force or (self.epoch + 1) % self.c.val_every == 0 or self.epoch + 1 == self.c.epochs:
            _evaluate(self.model, self.X, self.row, self.Y, self.Xv, self.Yv, self.hist, self.epoch)
        self.epoch += 1

    def results(self, wall: float) -> list[RunResult]:
        """One result per run; `wall`: the group's training seconds in all."""
        M = len(self.runs)
        norms = (
            sum(p.detach().double().reshape(M, -1).pow(2).sum(1) for p in self.model.parameters()).sqrt().cpu().numpy()
        )
        info = run_info(self.device, M, self.c.epochs)
        results = []
        for m, r in enumerate(self.runs):
            history = {k: v[m].copy() for k, v in self.hist.items()}
            perfect = np.flatnonzero(history["train_acc"] == 1.0)
            results.append(
                RunResult(
                    r,
                    history,
                    bool(len(perfect)),
                    int(perfect[0]) + 1 if len(perfect) else r.epochs,
                    self.prepared[m].label_flip_rate,
                    float(norms[m]),
                    wall / M,
                    info,
                    measures.final_accuracies(history),
                )
            )
        return results


@torch.no_grad()
def _evaluate(model, X, row, Y, Xv, Yv, hist, epoch, max_floats=None):
    """Training accuracy and loss on each model's own clean training set, and validation accuracy,
    in chunks of examples whose first activation (M models x channels x H x W) stays under
    `max_floats`: by default 2^28 on a GPU (1 GiB in float32; the full tier's 432 CNNs at 28x28
    would need 40 GiB for 500 examples) and 2^22 on the CPU, where chunks that stay in the caches
    evaluate the smoke tier's 432 CNNs about twice as fast as 1 GiB ones."""
    model.eval()
    M = Y.shape[0]
    max_floats = max_floats or (2**28 if X.is_cuda else 2**22)
    chunk = max(1, max_floats // (M * model.channels * X.shape[-2] * X.shape[-1]))
    correct, losses = [], []
    for s in range(0, Y.shape[1], chunk):
        logits = model(X[row, s : s + chunk])  # (M, c, K)
        y = Y[:, s : s + chunk]
        correct.append(logits.argmax(-1) == y)
        losses.append(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(M, -1))
    hist["train_acc"][:, epoch] = torch.cat(correct, 1).double().mean(1).cpu().numpy()
    hist["train_loss"][:, epoch] = torch.cat(losses, 1).double().mean(1).cpu().numpy()
    hits = torch.zeros(M, device=X.device, dtype=torch.float64)
    for s in range(0, len(Yv), chunk):
        xv = Xv[s : s + chunk].expand(M, *Xv[s : s + chunk].shape)  # (M, c, C, H, W), shared examples
        hits += (model(xv).argmax(-1) == Yv[s : s + chunk]).sum(1)
    hist["val_acc"][:, epoch] = (hits / len(Yv)).cpu().numpy()
