"""The batched trainer against an independent reference: plain torch.nn, one model at a time."""

from __future__ import annotations

import dataclasses
import platform
import resource
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.core import keep_freed_memory
from harness.inputs import mlp_training_set as prepare
from harness.inputs import mlp_validation_set as validation_set
from harness.train import RunConfig, epoch_order, train_group
from tests.helpers import Interrupted, interrupt_at, tiny_dataset, tiny_run


def reference_run(run: RunConfig, ds, init_weights, dtype=torch.float64):
    """The idiomatic loop: nn.Sequential, torch.optim.SGD, one model; same init, data and order."""
    x, y, is_noise, _ = prepare(run, ds)
    x = x.to(dtype)
    layers = []
    for i, (w, b) in enumerate(init_weights):
        lin = torch.nn.Linear(w.shape[0], w.shape[1]).to(dtype)
        with torch.no_grad():
            lin.weight.copy_(w.T)
            lin.bias.copy_(b.flatten())
        layers += [lin, torch.nn.ReLU()] if i < len(init_weights) - 1 else [lin]
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=run.lr)
    xv, yv = validation_set(ds, run.n_val)
    acc, val = [], []
    for epoch in range(run.max_epochs):
        order = epoch_order(run.seed, epoch, run.n_train)
        for s in range(0, run.n_train, run.batch_size):
            idx = order[s : s + run.batch_size]
            opt.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
        with torch.no_grad():
            acc.append((net(x).argmax(1) == y).double().mean().item())
            val.append((net(xv.to(dtype)).argmax(1) == yv).double().mean().item())
    return net, np.array(acc), np.array(val)


def initial_weights(runs, ds):
    """The batched model's initial weights of each run, taken from a zero-epoch-like setup."""
    from harness import torch_generator
    from harness.models import BatchedMLP

    c = runs[0]
    model = BatchedMLP(len(runs), [ds.input_dim] + [c.width] * c.depth + [ds.num_classes])
    model.glorot_([torch_generator(r.seed, "init", r.width, r.depth) for r in runs])
    return [[(w[m].double(), b[m].double()) for w, b in zip(model.weights, model.biases)] for m in range(len(runs))]


@pytest.mark.parametrize("fused", [False, True], ids=["autograd", "fused"])
def test_batched_trainer_matches_one_model_at_a_time(fused):
    """Each model of a batch of 4 (2 seeds x real/randY) follows the same trajectory as nn.Sequential
    trained alone in float64, with the autograd step (benchmarks' reference) and the fused step
    (`sgd_step_`, the trainer's). Cannot check: speed, or GPU kernels (test_fused_steps_on_cuda_...)."""
    ds = tiny_dataset()
    runs = [
        tiny_run(seed=s, noise=k, noise_fraction=f, stop_when_fitted=False)
        for s in (3, 4)
        for k, f in (("none", 0.0), ("randY", 1.0))
    ]
    batched = train_group(runs, ds, dtype=torch.float64, fused=fused)
    for run, res, init in zip(runs, batched, initial_weights(runs, ds)):
        _, acc, val = reference_run(run, ds, init)
        np.testing.assert_allclose(res.history["train_acc"], acc, atol=1e-12)
        np.testing.assert_allclose(res.history["val_acc"], val, atol=1e-12)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_fused_step_equals_autograd_and_sgd(depth):
    """One `sgd_step_` equals autograd of the per-model mean cross-entropy plus torch.optim.SGD, in
    float64 to 1e-12, for any depth and a batch that is not a multiple of anything."""
    from harness.models import BatchedMLP
    from harness.train import sgd_step_

    g = torch.Generator().manual_seed(depth)
    sizes = [12] + [9] * depth + [5]
    fused = BatchedMLP(3, sizes).double().glorot_([torch.Generator().manual_seed(m) for m in range(3)])
    with torch.no_grad():
        for b in fused.biases:
            b.uniform_(-0.5, 0.5, generator=g)
    auto = BatchedMLP(3, sizes).double()
    auto.load_state_dict(fused.state_dict())
    x, y = torch.randn(3, 7, 12, generator=g, dtype=torch.float64), torch.randint(0, 5, (3, 7), generator=g)
    loss = F.cross_entropy(auto(x).flatten(0, 1), y.flatten(), reduction="none").view(3, -1).mean(1).sum()
    loss.backward()
    torch.optim.SGD(auto.parameters(), lr=0.3).step()
    sgd_step_(fused, x, y, 0.3)
    for p, q in zip(fused.parameters(), auto.parameters()):
        torch.testing.assert_close(p, q, atol=1e-12, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run by .ci/gpu-check)")
def test_fused_steps_on_cuda_replayed_as_graphs_match_the_reference():
    """On a GPU, in float64: the fused steps replayed as CUDA graphs (chunks of 2 batches, with eager
    steps for the third and for a last partial batch; recaptured as runs leave the batch) give each
    model the trajectory of nn.Sequential trained alone, and the same numbers as the eager steps."""
    from harness.train import Group

    ds = tiny_dataset()
    runs = [
        tiny_run(seed=s, noise=k, noise_fraction=f, n_train=30, width=32, lr=0.3, batch_size=8, max_epochs=70)
        for s in (3, 4)
        for k, f in (("none", 0.0), ("randY", 1.0))
    ]
    before = Group.graph_steps
    try:
        Group.graph_steps = 2
        graphed = train_group(runs, ds, device="cuda", dtype=torch.float64)
        Group.graph_steps = 0
        eager = train_group(runs, ds, device="cuda", dtype=torch.float64)
    finally:
        Group.graph_steps = before
    assert len({r.epochs_run for r in graphed}) == 4 and all(r.fitted for r in graphed)  # 4 captures
    for run, a, b, init in zip(runs, graphed, eager, initial_weights(runs, ds)):
        np.testing.assert_allclose(a.history["train_loss"], b.history["train_loss"], rtol=1e-12)
        assert a.weight_norm == pytest.approx(b.weight_norm, rel=1e-12)
        _, acc, _ = reference_run(dataclasses.replace(run, max_epochs=a.epochs_run), ds, init)
        np.testing.assert_allclose(a.history["train_acc"], acc, atol=1e-12)


def test_batched_forward_matches_nn_sequential_in_float32():
    """The float32 forward pass of model m equals nn.Sequential with the same weights (to 1e-5)."""
    ds = tiny_dataset()
    runs = [tiny_run(seed=s) for s in (0, 1, 2)]
    from harness import torch_generator
    from harness.models import BatchedMLP

    model = BatchedMLP(3, [ds.input_dim, 16, 16, ds.num_classes])
    model.glorot_([torch_generator(r.seed, "init", r.width, r.depth) for r in runs])
    x = torch.randn(3, 10, ds.input_dim)
    out = model(x)
    for m, init in enumerate(initial_weights(runs, ds)):
        layers = []
        for w, b in init:
            lin = torch.nn.Linear(*w.shape)
            with torch.no_grad():
                lin.weight.copy_(w.T.float())
                lin.bias.copy_(b.flatten().float())
            layers += [lin, torch.nn.ReLU()]
        torch.testing.assert_close(out[m], torch.nn.Sequential(*layers[:-1])(x[m]), atol=1e-5, rtol=1e-5)


def test_results_do_not_depend_on_batch_companions():
    """A run gives the same numbers alone as inside a larger batch (pairing and caching rely on it)."""
    ds = tiny_dataset()
    run = tiny_run(seed=1, noise="randX", noise_fraction=0.5)
    alone = train_group([run], ds, dtype=torch.float64)[0]
    others = [tiny_run(seed=s, noise="randY", noise_fraction=1.0) for s in (5, 6)]
    together = train_group(others + [run], ds, dtype=torch.float64)[-1]
    for k in alone.history:
        np.testing.assert_allclose(alone.history[k], together.history[k], atol=1e-12, equal_nan=True)


def test_a_run_ends_where_it_fits_even_when_its_batch_trains_on():
    """A run that fits before its companions keeps the weights (norm, sharpness) of its own fit epoch,
    the same as when it trains alone."""
    ds = tiny_dataset()
    fast = tiny_run(seed=0, n_train=30, width=64, lr=0.5, max_epochs=300, sharpness="power", val_every=1000)
    slow = tiny_run(
        seed=1,
        n_train=30,
        width=64,
        lr=0.5,
        max_epochs=300,
        sharpness="power",
        val_every=1000,
        noise="randY",
        noise_fraction=1.0,
    )
    alone = train_group([fast], ds, dtype=torch.float64)[0]
    together = train_group([fast, slow], ds, dtype=torch.float64)
    assert alone.fitted and together[1].epochs_run > alone.epochs_to_fit  # the batch did train on
    assert together[0].weight_norm == pytest.approx(alone.weight_norm, rel=1e-12)
    # Validated where each run ends, even between val_every epochs; a companion's end adds nothing.
    for res in (alone, *together):
        assert np.isfinite(res.history["val_acc"]).sum() == 1 and np.isfinite(res.history["val_acc"][-1])
    np.testing.assert_array_equal(alone.history["val_acc"], together[0].history["val_acc"])
    # Power iteration runs until every model of the batch meets its tolerance (1e-4), so a batched
    # model may take a few more, equally valid, iterations.
    assert together[0].measures["sharpness"] == pytest.approx(alone.measures["sharpness"], rel=1e-3)


def test_same_config_gives_identical_numbers():
    """Two trainings of the same runs agree bit for bit (float32, CPU)."""
    ds = tiny_dataset()
    runs = [tiny_run(seed=s) for s in (0, 1)]
    a, b = train_group(runs, ds), train_group(runs, ds)
    for x, y in zip(a, b):
        for k in x.history:
            np.testing.assert_array_equal(x.history[k], y.history[k])


def test_seeds_pair_subset_init_and_order_across_conditions():
    """Seed s sees the same training subset in every condition; randX/randY/sham pick the same noise examples."""
    ds = tiny_dataset()
    real, rx, ry, sham = (
        prepare(tiny_run(seed=2, noise=k, noise_fraction=f), ds)
        for k, f in (("none", 0.0), ("randX", 0.5), ("randY", 0.5), ("sham", 0.5))
    )
    torch.testing.assert_close(rx[2], ry[2])
    torch.testing.assert_close(sham[2], ry[2])
    torch.testing.assert_close(sham[0], real[0])
    torch.testing.assert_close(sham[1], real[1])
    torch.testing.assert_close(real[0][~rx[2]], rx[0][~rx[2]])
    torch.testing.assert_close(real[1], rx[1])
    assert not torch.equal(prepare(tiny_run(seed=3), ds)[0], real[0])


def test_unfitted_runs_are_right_censored_not_dropped():
    """A run that never reaches 100% within the budget comes back with fitted=False and the budget."""
    ds = tiny_dataset()
    run = tiny_run(noise="randY", noise_fraction=1.0, max_epochs=2, lr=1e-4)
    res = train_group([run], ds)[0]
    assert (res.fitted, res.epochs_to_fit, res.epochs_run) == (False, 2, 2)


def test_fitted_runs_stop_at_their_first_perfect_epoch():
    """epochs_to_fit is the first epoch with train accuracy 1.0, and the history ends there."""
    ds = tiny_dataset()
    runs = [tiny_run(seed=s, n_train=30, width=64, lr=0.5, max_epochs=200) for s in range(3)]
    for res in train_group(runs, ds):
        assert res.fitted
        acc = res.history["train_acc"]
        assert acc[-1] == 1.0 and (acc[:-1] < 1.0).all() and len(acc) == res.epochs_to_fit


def test_interrupted_group_resumes_to_the_same_numbers(tmp_path):
    """A group killed during epoch 4 resumes from its epoch-3 checkpoint and ends as an uninterrupted run."""
    ds = tiny_dataset()
    runs = [tiny_run(seed=s, stop_when_fitted=False, max_epochs=6) for s in (0, 1)]
    straight = train_group(runs, ds)
    ckpt = tmp_path / "group.ckpt.npz"
    with pytest.raises(Interrupted):  # the file holds epoch 3
        train_group(runs, ds, checkpoint=ckpt, checkpoint_every_s=0.0, progress=interrupt_at(4))
    assert ckpt.exists()
    seen = []
    resumed = train_group(runs, ds, checkpoint=ckpt, progress=lambda epoch, *_: seen.append(epoch))
    assert seen[0] == 4, "training restarted instead of resuming"
    assert not ckpt.exists(), "a finished group must remove its checkpoint"
    for a, b in zip(straight, resumed):
        for k in a.history:
            np.testing.assert_array_equal(a.history[k], b.history[k])


def test_a_group_resumes_after_some_runs_have_left_the_batch(tmp_path):
    """Resuming after a fitted run has stopped gives the numbers, and end weights, of an uninterrupted group."""
    ds = tiny_dataset()
    runs = [
        tiny_run(seed=0, n_train=30, width=64, lr=0.5, max_epochs=60),
        tiny_run(seed=1, n_train=30, width=64, lr=0.5, max_epochs=60, noise="randY", noise_fraction=1.0),
    ]
    straight = train_group(runs, ds)
    kill_at = straight[0].epochs_to_fit + 2
    assert straight[0].fitted and straight[1].epochs_run > kill_at  # the first run leaves the batch early
    ckpt = tmp_path / "group.ckpt.npz"
    with pytest.raises(Interrupted):
        train_group(runs, ds, checkpoint=ckpt, checkpoint_every_s=0.0, progress=interrupt_at(kill_at))
    resumed = train_group(runs, ds, checkpoint=ckpt)
    for a, b in zip(straight, resumed):
        assert (a.fitted, a.epochs_to_fit, a.weight_norm) == (b.fitted, b.epochs_to_fit, b.weight_norm)
        for k in a.history:
            np.testing.assert_array_equal(a.history[k], b.history[k])


def test_mixed_shapes_are_rejected():
    """Runs of different widths cannot share a batch."""
    with pytest.raises(ValueError, match="share everything"):
        train_group([tiny_run(width=8), tiny_run(width=16)], tiny_dataset())


@pytest.mark.parametrize(
    "bad",
    [
        dict(noise="rand"),
        dict(noise="none", noise_fraction=0.5),
        dict(noise_fraction=1.5, noise="randY"),
        dict(width=0),
        dict(lr=0.0),
        dict(pool=0),
        dict(target_loss=-0.1),
    ],
)
def test_impossible_configs_are_refused(bad):
    """An impossible option fails loudly at construction."""
    with pytest.raises(ValueError):
        tiny_run(**bad)


def test_a_run_with_a_target_loss_ends_at_its_first_epoch_at_or_below_it():
    """target_loss replaces 100% accuracy as the end: each run ends at the first epoch whose training
    loss is at most the target, and its history equals the same run trained on without a target."""
    ds = tiny_dataset()
    free = train_group([tiny_run(seed=s, stop_when_fitted=False, max_epochs=12) for s in (0, 1)], ds)
    target = float(np.median([r.history["train_loss"][5] for r in free]))
    stopped = train_group([tiny_run(seed=s, max_epochs=12, target_loss=target) for s in (0, 1)], ds)
    for f, r in zip(free, stopped):
        hit = np.flatnonzero(f.history["train_loss"] <= target)
        assert r.fitted == bool(len(hit))
        end = hit[0] + 1 if len(hit) else 12
        assert r.epochs_to_fit == end and r.epochs_run == end
        np.testing.assert_allclose(r.history["train_loss"], f.history["train_loss"][:end])


def test_nested_runs_share_their_first_examples_and_pooling_shrinks_the_input():
    """With nested=True the training set of a smaller run is the start of a larger one's, noise
    included; pool=2 halves each side of the image (tiny images: 4x4 -> 2x2)."""
    ds = tiny_dataset()
    small = prepare(tiny_run(n_train=40, nested=True, noise="randX", noise_fraction=0.5, pool=2), ds)
    large = prepare(tiny_run(n_train=90, nested=True, noise="randX", noise_fraction=0.5, pool=2), ds)
    assert small[0].shape == (40, 4) and large[0].shape == (90, 4)
    for a, b in zip(small[:3], large[:3]):
        assert torch.equal(a, b[:40])
    result = train_group([tiny_run(pool=2, max_epochs=2)], ds)[0]
    assert result.epochs_run == 2


def test_a_pool_that_does_not_divide_the_images_is_refused_with_a_message():
    with pytest.raises(ValueError, match="does not divide"):
        prepare(tiny_run(pool=3), tiny_dataset())


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="keep_freed_memory changes glibc's malloc only",
)
def test_freed_memory_is_reused_without_page_faults():
    """After keep_freed_memory, 64 MB buffers allocated and freed in turn soon come from freed
    memory (a few at first extend the heap: torch asks for aligned blocks a little larger than the
    freed ones); glibc's default maps and faults in all 16,384 of their 4 KiB pages every time."""
    assert keep_freed_memory()
    faults = []
    for _ in range(16):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        torch.ones(2**24)  # 64 MB, allocated and freed
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    assert max(faults[-4:]) < 1000, faults
