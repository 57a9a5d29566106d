"""Speed of the batched trainer against the idiomatic one-model-at-a-time loop, on the same work.

    python -m harness.bench                        # smoke-size MLP, 5 seeds, CPU (+ GPU if present)
    python -m harness.bench --width 4096 --n 50000 --seeds 20 --device cuda --epochs 2
    python -m harness.bench --targets --device cuda  # the two full-tier groups with per-epoch targets

It also prints the memory-traffic bound of the batched trainer's epoch (the weights every SGD step
must move, at the copy bandwidth measured on the device) and how close the trainer comes to it,
and what one step of the sharpness measurement (a Hessian-vector product over the whole
training set, batched over the models) costs in full-gradient passes and in training epochs.

Work per model-epoch, identical in both: one SGD pass over n examples in batches, then a full
evaluation of training and validation accuracy. The idiomatic loop is what a user would write:
`nn.Sequential`, a shuffling `DataLoader` over a `TensorDataset`, `torch.optim.SGD`, one seed
after the other. Inputs are random (speed does not depend on pixel values), so no dataset is
needed. One warm-up epoch of each is run first and not timed; CUDA timings synchronise.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from .core import keep_freed_memory
from .data import Dataset
from .tiers import TIERS
from .train import Group, RunConfig, train_group

# Full-tier groups with a per-epoch target on one H100 (models, width; n = 50,000, batch 32), whose
# steps before the fused, graphed step took 12.5 and 7.3 s per epoch there.
TARGETS = ((25, 4096, 6.0), (20, 64, 1.0))


def synthetic(n: int, n_val: int, d: int = 784, classes: int = 10) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n + n_val, 1, d, 1), generator=g, dtype=torch.uint8)
    y = torch.arange(n + n_val) % classes
    return Dataset("synthetic", x[:n], y[:n], x[n:], y[n:], classes, "memory", "synthetic")


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device, repeat: int = 3) -> float:
    """Seconds per call of `fn` after one untimed warm-up call."""
    fn()
    _sync(device)
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    _sync(device)
    return (time.perf_counter() - t) / repeat


def idiomatic(run: RunConfig, ds: Dataset, device, epochs: int) -> float:
    """Seconds for `epochs` epochs of one model trained the usual way (after one warm-up epoch)."""
    x, y = ds.train_x.flatten(1).float() / 255, ds.train_y
    xv, yv = ds.val_x.flatten(1).float() / 255, ds.val_y
    layers = [torch.nn.Linear(x.shape[1], run.width), torch.nn.ReLU()]
    for _ in range(run.depth - 1):
        layers += [torch.nn.Linear(run.width, run.width), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(run.width, ds.num_classes)).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=run.lr)
    train = DataLoader(TensorDataset(x, y), batch_size=run.batch_size, shuffle=True)
    evals = [DataLoader(TensorDataset(a, b), batch_size=1024) for a, b in ((x, y), (xv, yv))]

    def epoch():
        net.train()
        for xb, yb in train:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad()
            F.cross_entropy(net(xb), yb).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            for loader in evals:
                sum(int((net(xb.to(device)).argmax(1) == yb.to(device)).sum()) for xb, yb in loader)

    return _timed(epoch, device, repeat=epochs) * epochs


def batched(runs: list[RunConfig], ds: Dataset, device, epochs: int) -> float:
    """Seconds for `epochs` epochs of all `runs` in one batched model (after one warm-up epoch)."""
    import dataclasses

    train_group([dataclasses.replace(r, max_epochs=1) for r in runs], ds, device)
    _sync(device)
    t = time.perf_counter()
    train_group([dataclasses.replace(r, max_epochs=epochs) for r in runs], ds, device)
    _sync(device)
    return time.perf_counter() - t


def epoch_time(runs: list[RunConfig], ds: Dataset, device, fused: bool) -> float:
    """Seconds of one epoch (SGD steps, then the evaluation pass) of `runs` as one group, with the
    fused step (CUDA graphs on the GPU) or autograd, after one untimed epoch."""
    group = Group(runs, ds, device, torch.float32, fused)
    with group.precision():
        group.step()
        group.evaluate()
        _sync(device)
        t = time.perf_counter()
        group.step()
        group.evaluate()
        _sync(device)
    return time.perf_counter() - t


def targets(device) -> None:
    """Per-epoch seconds of the TARGETS groups, autograd step against fused, and the bound."""
    full = TIERS["full"].time_to_fit
    ds = synthetic(full.n_train, full.n_val)
    bw = copy_bandwidth(device)
    for models, width, target in TARGETS:
        runs = [
            RunConfig(
                dataset="synthetic",
                n_train=full.n_train,
                n_val=full.n_val,
                width=width,
                lr=full.lr,
                batch_size=full.batch_size,
                max_epochs=2,
                seed=s,
                stop_when_fitted=False,
            )
            for s in range(models)
        ]
        t_auto, t_fused = (epoch_time(runs, ds, device, fused) for fused in (False, True))
        steps = -(-full.n_train // full.batch_size)
        bound = steps * weight_bytes_per_step(runs[0], ds.input_dim, ds.num_classes, models) / bw
        print(
            f"{models} MLPs 2x{width}, n {full.n_train}, batch {full.batch_size}: autograd step {t_auto:.2f} "
            "s/epoch, "
            f"fused step {t_fused:.2f} s/epoch ({t_auto / t_fused:.1f}x); target {target:g} s on one H100; bound "
            f"{bound:.2f} s at {bw / 1e9:.0f} GB/s, fused reaches {bound / t_fused:.0%} of it",
            flush=True,
        )


def flop_per_model_epoch(run: RunConfig, d: int, classes: int) -> float:
    """Matmul FLOPs of one model-epoch: forward + weight and input gradients (none for the input
    layer) over the training set, then forward passes over the training and validation sets."""
    sizes = [d] + [run.width] * run.depth + [classes]
    macs = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    train = run.n_train * (2 * sum(macs) + sum(macs[1:]))
    evaluate = (run.n_train + run.n_val) * sum(macs)
    return 2.0 * (train + evaluate)


def weight_bytes_per_step(run: RunConfig, d: int, classes: int, models: int) -> int:
    """Bytes an SGD step must move at least (float32): every weight read by the forward pass, read
    again by the backward pass for the input gradients (all layers but the first), read and written
    by the update. Activations, gradients and data come on top, so this bounds a step from below."""
    sizes = [d] + [run.width] * run.depth + [classes]
    params = [a * b + b for a, b in zip(sizes[:-1], sizes[1:])]
    return 4 * models * (4 * sum(params) - params[0])


def copy_bandwidth(device, nbytes: int = 2**28) -> float:
    """Bytes per second the device copies (read + write) a large float32 tensor at."""
    a = torch.empty(nbytes // 4, device=device)
    b = torch.empty_like(a)
    return 2 * nbytes / _timed(lambda: b.copy_(a), device, repeat=5)


def sharpness_cost(runs: list[RunConfig], ds: Dataset, device, seconds_per_epoch: float) -> str:
    """Seconds of one batched full-gradient pass and one Hessian-vector product over the whole
    training set, against one batched training epoch (what a power-iteration step costs)."""
    from . import torch_generator
    from .inputs import mlp_training_set
    from .models import BatchedMLP
    from .sharpness import gradient, hvp, mlp_losses

    c = runs[0]
    model = BatchedMLP(len(runs), [ds.input_dim] + [c.width] * c.depth + [ds.num_classes]).to(device)
    model.glorot_([torch_generator(r.seed, "init", r.width, r.depth) for r in runs])
    data = [mlp_training_set(r, ds) for r in runs]
    X = torch.stack([d[0] for d in data]).to(device)  # (M, n, d)
    Y = torch.stack([d[1] for d in data]).to(device)  # (M, n)
    losses = mlp_losses(model, X, Y)
    params = [p.detach() for p in model.parameters()]
    vs = [torch.randn_like(p) for p in params]

    t_grad = _timed(lambda: gradient(losses, params), device)
    t_hvp = _timed(lambda: hvp(losses, params, vs), device)
    return (
        f"  sharpness: one full-gradient pass {t_grad:.3f}s, one HVP {t_hvp:.3f}s = {t_hvp / t_grad:.1f} gradient "
        f"passes = {t_hvp / seconds_per_epoch:.2f} training epochs (power iteration takes ~10-70 HVPs)"
    )


def main(argv=None):
    smoke = TIERS["smoke"].time_to_fit
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--width", type=int, default=smoke.width)
    p.add_argument("--n", type=int, default=smoke.n_train, help="training examples per model")
    p.add_argument("--n-val", type=int, default=smoke.n_val)
    p.add_argument("--batch-size", type=int, default=smoke.batch_size)
    p.add_argument("--seeds", type=int, default=5, help="models trained (one per seed)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per model")
    p.add_argument("--device", action="append", help="cpu, cuda, ... (repeatable; default: cpu and cuda if present)")
    p.add_argument(
        "--targets",
        action="store_true",
        help="time only the full-tier groups with per-epoch targets (TARGETS), autograd step against fused",
    )
    a = p.parse_args(argv)
    keep_freed_memory()  # both loops: no page faults on every step's large buffers (harness.core)
    devices = a.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if a.targets:
        for device in devices:
            targets(device)
        return
    ds = synthetic(a.n, a.n_val)
    runs = [
        RunConfig(
            dataset="synthetic",
            n_train=a.n,
            n_val=a.n_val,
            width=a.width,
            lr=smoke.lr,
            batch_size=a.batch_size,
            max_epochs=a.epochs,
            seed=s,
            stop_when_fitted=False,
        )
        for s in range(a.seeds)
    ]
    print(
        f"MLP 2x{a.width}, {a.n} examples, batch {a.batch_size}, {a.seeds} models, {a.epochs} timed epochs "
        f"(+1 warm-up), torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    for device in devices:
        name = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else "CPU"
        t_loop = sum(idiomatic(r, ds, device, a.epochs) for r in runs)
        t_batch = batched(runs, ds, device, a.epochs)
        model_epochs = a.seeds * a.epochs
        tflop = flop_per_model_epoch(runs[0], ds.input_dim, ds.num_classes) * model_epochs / 1e12
        print(
            f"{device} ({name}): idiomatic loop {model_epochs / t_loop:8.2f} model-epochs/s "
            f"({tflop / t_loop:.3f} TFLOP/s) | batched {model_epochs / t_batch:8.2f} model-epochs/s "
            f"({tflop / t_batch:.3f} TFLOP/s) | ratio {t_loop / t_batch:5.1f}x"
        )
        steps = -(-a.n // a.batch_size)
        bw = copy_bandwidth(device)
        bound = steps * weight_bytes_per_step(runs[0], ds.input_dim, ds.num_classes, a.seeds) / bw
        print(
            f"  memory-traffic bound: {bound:.3f}s per epoch (weights read forward and backward, read and written by "
            f"the update, at the {bw / 1e9:.0f} GB/s this device copies at); the batched trainer takes "
            f"{t_batch / a.epochs:.3f}s, {bound / (t_batch / a.epochs):.0%} of the bound's speed"
        )
        print(sharpness_cost(runs, ds, device, t_batch / a.epochs))


if __name__ == "__main__":
    main()
