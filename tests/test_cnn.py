"""The batched CNN of claim C4 (harness/cnn.py): against plain per-model torch ops, batch independence,
the regularizers, determinism, resumption, the result store, and config validation. Seconds in all."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import harness.store as store_mod
from harness import torch_generator
from harness.cnn import BatchedCNN, local_response_norm, train_cnn_group
from harness.store import Store, run_key
from tests.helpers import Interrupted, interrupt_at, tiny_cnn, tiny_dataset, tiny_run


def tiny_images(**kw):
    return tiny_dataset(n_train=80, n_val=40, side=8, **kw)


def model(M=3, in_channels=1, side=8, channels=4, dense=(16, 8), classes=3) -> BatchedCNN:
    return BatchedCNN(M, in_channels, side, channels, dense, classes).glorot_(
        [torch_generator("test", m) for m in range(M)]
    )


def reference_forward(net: BatchedCNN, m: int, x: torch.Tensor) -> torch.Tensor:
    """Model m alone with plain torch ops (ungrouped convs, torch's own LRN): x (B, C, H, W) -> logits."""
    C, h = net.channels, x
    for k, b in zip(net.kernels, net.conv_biases):
        h = F.max_pool2d(
            F.relu(F.conv2d(h, k[m * C : (m + 1) * C], b[m * C : (m + 1) * C], padding=2)), 3, 2, padding=1
        )
        h = F.local_response_norm(h, 9, alpha=0.001, beta=0.75, k=1.0)
    h = h.flatten(1)
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        h = h @ w[m] + b[m]
        h = torch.relu(h) if i < len(net.weights) - 1 else h
    return h


@pytest.mark.parametrize("in_channels,side", [(1, 8), (3, 28), (1, 14)])
def test_each_model_of_the_batch_equals_the_same_net_alone(in_channels, side):
    """Logits (M, B, K) of the batched model equal model m run alone with ungrouped torch ops (1e-5)."""
    net = model(in_channels=in_channels, side=side)
    x = torch.randn(3, 5, in_channels, side, side, generator=torch_generator("x"))
    out = net(x)
    assert out.shape == (3, 5, 3)
    for m in range(3):
        torch.testing.assert_close(out[m], reference_forward(net, m, x[m]), atol=1e-5, rtol=1e-5)


def test_lrn_matches_torch_and_does_not_mix_models():
    """The LRN equals torch's (TF constants), and changing one model's input leaves the others' output alone."""
    h = torch.randn(6, 8, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(local_response_norm(h), F.local_response_norm(h, 9, 0.001, 0.75, 1.0))
    net = model()
    x = torch.randn(3, 4, 1, 8, 8)
    y = x.clone()
    y[1] *= 50  # large activations in model 1 would change a shared LRN window a lot
    a, b = net(x), net(y)
    torch.testing.assert_close(a[[0, 2]], b[[0, 2]], atol=0, rtol=0)
    assert not torch.allclose(a[1], b[1])


def test_a_run_gives_the_same_numbers_alone_and_in_a_mixed_batch():
    """Regularizer noise, init and order depend on the run alone, not on its batch companions."""
    ds = tiny_images()
    run = tiny_cnn(seed=1, labels="random", regularizer="dropout", strength=0.5)
    others = [
        tiny_cnn(seed=2, regularizer="gaussian", strength=1.0),
        tiny_cnn(seed=1, regularizer="weight_decay", strength=0.1),
        tiny_cnn(seed=3, labels="random", regularizer="input_dropout", strength=0.3),
    ]
    alone = train_cnn_group([run], ds, dtype=torch.float64)[0]
    together = train_cnn_group(others + [run], ds, dtype=torch.float64)[-1]
    for k in alone.history:
        np.testing.assert_allclose(alone.history[k], together.history[k], atol=1e-10)


@pytest.mark.parametrize("regularizer", ["dropout", "input_dropout", "gaussian", "weight_decay"])
def test_each_regularizer_at_strength_zero_is_no_regularizer_and_acts_above(regularizer):
    """Strength 0 reproduces the unregularized run bit for bit; a positive strength changes it."""
    ds = tiny_images()
    none, zero, some = train_cnn_group(
        [tiny_cnn(), tiny_cnn(regularizer=regularizer), tiny_cnn(regularizer=regularizer, strength=0.5)], ds
    )
    for k in none.history:
        np.testing.assert_array_equal(none.history[k], zero.history[k])
    assert not np.array_equal(none.history["train_loss"], some.history["train_loss"])


def test_same_config_gives_identical_numbers_and_reports_its_measures():
    """Two trainings agree bit for bit; final training, final and best validation accuracy come with each run."""
    ds = tiny_images()
    runs = [tiny_cnn(seed=s, labels=lab, val_every=2) for s in (0, 1) for lab in ("real", "random")]
    a, b = train_cnn_group(runs, ds), train_cnn_group(runs, ds)
    for x, y in zip(a, b):
        for k in x.history:
            np.testing.assert_array_equal(x.history[k], y.history[k])
        assert np.isnan(x.history["val_acc"][0]) and not np.isnan(x.history["val_acc"][-1])  # val_every=2, last
        assert x.measures == {
            "final_train_acc": x.history["train_acc"][-1],
            "best_val_acc": np.nanmax(x.history["val_acc"]),
            "final_val_acc": x.history["val_acc"][-1],
        }
    assert a[0].label_flip_rate == 0 and a[1].label_flip_rate > 0.3


def test_interrupted_group_resumes_to_the_same_numbers(tmp_path):
    """A group killed after epoch 2 resumes from its checkpoint (weights and momentum) and ends as an
    uninterrupted one."""
    ds = tiny_images()
    runs = [tiny_cnn(seed=s, regularizer="dropout", strength=0.3, epochs=4) for s in (0, 1)]
    straight = train_cnn_group(runs, ds)
    ckpt = tmp_path / "group.ckpt.npz"
    with pytest.raises(Interrupted):  # the file holds epoch 2
        train_cnn_group(runs, ds, checkpoint=ckpt, checkpoint_every_s=0.0, progress=interrupt_at(3))
    seen = []
    resumed = train_cnn_group(runs, ds, checkpoint=ckpt, progress=lambda epoch, *_: seen.append(epoch))
    assert seen[0] == 3 and not ckpt.exists()
    for a, b in zip(straight, resumed):
        for k in a.history:
            np.testing.assert_array_equal(a.history[k], b.history[k])


def test_store_round_trips_cnn_runs_beside_mlp_runs(tmp_path, monkeypatch):
    """CNN and MLP runs asked for together train in separate groups, come back identical without
    training, and never share a key."""
    ds, log = tiny_images(), []
    real = store_mod.train_to_end
    monkeypatch.setattr(
        store_mod,
        "train_to_end",
        lambda group, *a, **k: log.append((type(group).__name__, len(group.runs))) or real(group, *a, **k),
    )
    runs = [tiny_cnn(seed=s, labels="random", regularizer="dropout", strength=0.2) for s in (0, 1)] + [tiny_run()]
    first = Store(tmp_path).get_or_train(runs, ds)
    second = Store(tmp_path).get_or_train(runs, ds)
    assert sorted(log) == [("CNNGroup", 2), ("Group", 1)]
    for a, b in zip(first, second):
        assert type(a.config) is type(b.config) and a.measures == b.measures
        for k in a.history:
            np.testing.assert_array_equal(a.history[k], b.history[k])
    assert run_key(runs[0], ds) != run_key(runs[1], ds) != run_key(runs[2], ds)


@pytest.mark.parametrize(
    "bad,message",
    [
        (dict(labels="noisy"), "real or random"),
        (dict(regularizer="mixup"), "choose one of"),
        (dict(strength=0.5), "regularizer='none' needs strength=0"),
        (dict(regularizer="dropout", strength=1.0), "drop probability"),
        (dict(regularizer="gaussian", strength=-1.0), "must not be negative"),
        (dict(channels=0), "channels=0 must be at least 1"),
        (dict(dense=()), "at least one layer"),
        (dict(momentum=1.0), "momentum"),
    ],
)
def test_impossible_configs_are_refused(bad, message):
    """An impossible option fails at construction with a message naming it."""
    with pytest.raises(ValueError, match=message):
        tiny_cnn(**bad)


def test_mixed_shapes_are_rejected():
    with pytest.raises(ValueError, match="share everything"):
        train_cnn_group([tiny_cnn(channels=4), tiny_cnn(channels=8)], tiny_images())


def test_evaluation_in_small_chunks_gives_the_same_accuracies(monkeypatch):
    """Chunking the evaluation (sized so the full tier fits a GPU) does not change what it measures."""
    import harness.cnn as cnn_mod

    ds, runs = tiny_images(), [tiny_cnn(seed=s, labels=lab) for s in (0, 1) for lab in ("real", "random")]
    whole = train_cnn_group(runs, ds, dtype=torch.float64)
    real = cnn_mod._evaluate
    monkeypatch.setattr(cnn_mod, "_evaluate", lambda *a: real(*a, max_floats=1))  # one example per chunk
    for a, b in zip(whole, train_cnn_group(runs, ds, dtype=torch.float64)):
        for k in a.history:
            np.testing.assert_allclose(a.history[k], b.history[k], atol=1e-12)
