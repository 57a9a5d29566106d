"""The extended paper's per-example measures (harness.examples): replicates, the records kept while
training, their statistics, and the kind's place in the store."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness import examples, kinds, train
from harness.core import train_to_end
from harness.examples import ExampleConfig, ExampleGroup, agreement, gini, paired_difference_test
from harness.store import Store
from tests.helpers import Interrupted, interrupt_at, tiny_dataset


def tiny(**overrides) -> ExampleConfig:
    base = dict(dataset="tiny", n_train=60, n_val=30, width=16, lr=0.2, batch_size=16, max_epochs=6)
    return ExampleConfig(**{**base, "stop_when_fitted": False, **overrides})


def plain(run: ExampleConfig) -> train.RunConfig:
    """The plain MLP run with `run`'s shared fields."""
    return train.RunConfig(**{k: v for k, v in run.key().items() if k in train.RunConfig().key()})


def test_replicates_share_the_training_set_and_replicate_0_starts_where_the_plain_run_does():
    """Replicate j of seed s trains on seed s's examples and labels; replicate 0's initialisation and
    data order are those of the plain MLP run of seed s, any other replicate's are its own."""
    ds = tiny_dataset()
    runs = [tiny(noise="randY", noise_fraction=1.0, seed=3, replicate=j) for j in (0, 1)]
    group = ExampleGroup(runs, ds)
    reference = train.Group([plain(runs[0])], ds)
    assert torch.equal(group.X[0], group.X[1]) and torch.equal(group.Y[0], group.Y[1])
    assert torch.equal(group.model.weights[0][0], reference.model.weights[0][0])
    assert not torch.equal(group.model.weights[0][0], group.model.weights[0][1])
    assert not torch.equal(examples._order(runs[0].stream(), 0, 60), examples._order(runs[1].stream(), 0, 60))


def test_the_input_gradient_of_each_example_is_that_of_its_own_loss():
    """One step: each example's recorded sensitivity is |d loss_i / d x_i| computed on its own at the
    step's starting weights (the batch's mean loss scales it by 1/b, which the record undoes)."""
    ds = tiny_dataset()
    run = tiny(n_train=16, batch_size=16, max_epochs=1)
    group = ExampleGroup([run], ds)
    w = [p.detach().clone() for p in group.model.parameters()]
    group.step()
    x, y = group.X[0].clone().requires_grad_(), group.Y[0]
    h = x
    for i in range(len(w) // 2):
        h = h @ w[i][0] + w[len(w) // 2 + i][0]
        h = torch.relu(h) if i < len(w) // 2 - 1 else h
    losses = F.cross_entropy(h, y, reduction="none")
    own = torch.stack([torch.autograd.grad(losses[i], x, retain_graph=True)[0][i].norm() for i in range(16)])
    torch.testing.assert_close(group.grad_sum[0], own, rtol=1e-4, atol=1e-6)


def test_records_are_consistent_with_the_history_and_stored_compactly():
    """An example correct at every epoch was learned at epoch 1; the count of correct epochs sums to the
    history's training accuracy; the records are int16/float32 on the device, 12 bytes per example."""
    ds = tiny_dataset()
    (r,) = train_to_end(ExampleGroup([tiny(seed=1)], ds), None, None)
    correct, learned = r.history["example_correct_epochs"], r.history["example_learned_epoch"]
    assert correct.shape == learned.shape == r.history["example_input_grad"].shape == (60,)
    np.testing.assert_allclose(correct.sum(), r.history["train_acc"].sum() * 60)
    assert np.all(learned[correct == r.epochs_run] == 1) and np.all(learned <= r.epochs_run + 1)
    assert np.all(r.history["example_input_grad"] > 0)
    group = ExampleGroup([tiny(seed=1)], ds)
    assert group.correct_epochs.dtype == group.last_wrong.dtype == torch.int16
    assert group.grad_sum.dtype == group.loss.dtype == torch.float32


def test_an_interrupted_group_resumes_to_the_same_records(tmp_path):
    ds = tiny_dataset()
    runs = [tiny(seed=0, replicate=j) for j in (0, 1)]
    straight = train_to_end(ExampleGroup(runs, ds), None, None)
    ckpt = tmp_path / "g.ckpt.npz"
    with pytest.raises(Interrupted):
        train_to_end(ExampleGroup(runs, ds), interrupt_at(4), ckpt, 0.0)
    resumed = train_to_end(ExampleGroup(runs, ds), None, ckpt)
    for a, b in zip(straight, resumed):
        for k in a.history:
            np.testing.assert_array_equal(a.history[k], b.history[k])


def test_the_kind_is_registered_and_its_runs_round_trip_through_the_store(tmp_path):
    """kinds knows "mlp-examples"; a stored run reads back with its per-example records, and its store
    key differs from the plain MLP run's."""
    ds = tiny_dataset()
    run = tiny(max_epochs=2)
    assert kinds.kind_of(run).group is ExampleGroup
    store = Store(tmp_path)
    (first,) = store.get_or_train([run], ds)
    (again,) = store.get_or_train([run], ds)
    for k in examples.EXAMPLE_METRICS:
        np.testing.assert_array_equal(first.history[k], again.history[k])
    from harness.store import run_key

    assert run_key(run, ds) != run_key(plain(run), ds)


def test_the_critical_sample_ratio_is_measured_where_asked():
    ds = tiny_dataset()
    runs = [tiny(max_epochs=2, csr_radius=0.05, csr_examples=10), tiny(max_epochs=2, noise="randX", noise_fraction=1.0)]
    with pytest.raises(ValueError, match="must share"):
        ExampleGroup(runs, ds)
    (r,) = train_to_end(ExampleGroup(runs[:1], ds), None, None)
    assert 0 <= r.measures["csr_val"] <= 1 and 0 <= r.measures["csr_train"] <= 1
    x = dataclasses.replace(runs[0], noise="randX", noise_fraction=1.0)
    (r,) = train_to_end(ExampleGroup([x], ds), None, None)
    assert np.isnan(r.measures["csr_train"]), "no real training inputs: no ratio on them"


def test_agreement_is_one_for_identical_replicates_and_near_zero_for_independent_ones():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=500)
    assert agreement(np.tile(shared, (4, 1))) == pytest.approx(1.0)
    assert abs(agreement(rng.normal(size=(8, 500)))) < 0.15
    assert 0.3 < agreement(shared + rng.normal(size=(8, 500))) < 0.95
    assert agreement(np.zeros((4, 10))) == 0.0
    with pytest.raises(ValueError):
        agreement(np.zeros((1, 10)))


def test_gini_is_zero_for_equal_values_and_near_one_when_one_holds_all():
    assert gini(np.ones(10)) == 0.0
    assert gini(np.r_[np.zeros(99), 1.0]) == pytest.approx(0.99)
    assert gini([1, 2, 3, 4]) == pytest.approx(gini([10, 20, 30, 40]))
    with pytest.raises(ValueError):
        gini([-1.0, 1.0])


def test_paired_difference_test_outcomes():
    a = np.linspace(0.5, 0.6, 8)
    assert paired_difference_test(a, a - 0.2, alpha=0.05, min_difference=0.1).outcome == "holds"
    assert paired_difference_test(a - 0.2, a, alpha=0.05, min_difference=0.1).outcome == "contradicted"
    assert paired_difference_test(a, a - 0.01, alpha=0.05, min_difference=0.1).outcome == "absent"
    v = paired_difference_test(a, a - np.r_[0.2, -0.2].repeat(4), alpha=0.05, min_difference=0.1)
    assert v.outcome == "inconclusive" and 0 <= v.power <= 1


def test_agreement_within_groups_ignores_what_the_groups_share():
    """Replicates that agree only on which group (label) is easy agree within groups no more than chance."""
    rng = np.random.default_rng(1)
    groups = np.arange(600) % 10
    scores = 3 * rng.normal(size=10)[groups] + rng.normal(size=(8, 600))
    assert agreement(scores) > 0.7
    assert abs(agreement(scores, groups)) < 0.15
