"""Guards for the harness behaviour that verdicts rest on, written against surviving mutants.

    CI=1 python -m pytest tests/test_guards.py -q        # a few seconds per test on a CPU

Each test pins one sentence a claim's verdict depends on: what "fitted" means (exactly 100%
training accuracy, first such epoch, censored at the budget), which examples validation accuracy is
measured on (the clean validation split, never training examples or noisy labels), which config
fields and which dataset identity the result-store key covers, and the p-values, effects and
pass/fail decisions of the statistics on constructed data. Expected values are computed here,
independently of the code under test (by hand, by counting, or from the data's construction).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import harness.store as store_mod
import harness.train as train_mod
from harness import cnn
from harness import stats as S
from harness.cnn import CNNConfig
from harness.core import RunResult
from harness.data import Dataset
from harness.inputs import mlp_training_set as prepare
from harness.inputs import mlp_validation_set as validation_set
from harness.store import Store, run_key
from harness.train import METRICS, train_group
from tests.helpers import tiny_dataset, tiny_run

ALPHA = 0.05


# ---------------------------------------------------------------------------------------------------
# What "fitted" means


def scripted_train_accuracy(monkeypatch, scripts: dict[int, list[float]]):
    """Let training run as usual but overwrite the recorded training accuracy of run m at epoch e
    (0-based) with scripts[m][e], so the fit rule sees exactly the values we choose."""
    real = train_mod._evaluate

    def evaluate(model, X, Y, noise, rows, hist, epoch, *args, **kwargs):
        real(model, X, Y, noise, rows, hist, epoch, *args, **kwargs)
        for m in rows.cpu().numpy():
            hist["train_acc"][m, epoch] = scripts[int(m)][epoch]

    monkeypatch.setattr(train_mod, "_evaluate", evaluate)


ALMOST = 1.0 - 1e-12  # one wrong example in a trillion: not fitted


def test_a_run_is_fitted_only_at_exactly_100_percent(monkeypatch):
    """A run is fitted at its first epoch with training accuracy exactly 1.0 and stops there; accuracies
    just below 1.0 never count; a run that never reaches 1.0 is right-censored at max_epochs (fitted=False,
    epochs_to_fit=max_epochs, every epoch of the budget in its history)."""
    scripts = {
        0: [0.5, 0.99, ALMOST, 1.0, 1.0, 1.0],  # fits at epoch 4
        1: [0.9, ALMOST, ALMOST, ALMOST, ALMOST, ALMOST],  # never fits
        2: [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    }  # fits at epoch 1
    scripted_train_accuracy(monkeypatch, scripts)
    runs = [tiny_run(seed=s, max_epochs=6) for s in range(3)]
    fits, censored, first = train_group(runs, tiny_dataset())
    assert (fits.fitted, fits.epochs_to_fit, fits.epochs_run) == (True, 4, 4)
    assert (censored.fitted, censored.epochs_to_fit, censored.epochs_run) == (False, 6, 6)
    assert (first.fitted, first.epochs_to_fit, first.epochs_run) == (True, 1, 1)
    np.testing.assert_array_equal(fits.history["train_acc"], scripts[0][:4])
    np.testing.assert_array_equal(censored.history["train_acc"], scripts[1])


def test_the_fit_epoch_is_the_first_perfect_epoch_also_when_training_goes_on(monkeypatch):
    """With stop_when_fitted=False every run trains the whole budget, and epochs_to_fit is still the
    first epoch at 1.0 (not a later one, not the last), while a run never at 1.0 is censored at the budget."""
    scripted_train_accuracy(monkeypatch, {0: [0.5, 1.0, 0.9, 1.0, 1.0], 1: [0.2, ALMOST, 0.3, ALMOST, 0.99]})
    fits, censored = train_group(
        [tiny_run(seed=s, max_epochs=5, stop_when_fitted=False) for s in (0, 1)], tiny_dataset()
    )
    assert (fits.fitted, fits.epochs_to_fit, fits.epochs_run) == (True, 2, 5)
    assert (censored.fitted, censored.epochs_to_fit, censored.epochs_run) == (False, 5, 5)


def test_a_run_whose_budget_ends_before_it_fits_is_censored_at_that_budget(monkeypatch):
    """The same run with a shorter budget than its fit epoch is censored at the shorter budget."""
    scripted_train_accuracy(monkeypatch, {0: [0.5, 0.7, 0.9, 1.0]})
    res = train_group([tiny_run(max_epochs=3)], tiny_dataset())[0]
    assert (res.fitted, res.epochs_to_fit, res.epochs_run) == (False, 3, 3)


def test_a_resumed_group_that_trains_on_after_a_fit_matches_an_uninterrupted_one(monkeypatch, tmp_path):
    """With stop_when_fitted=False, a run that fitted before an interruption keeps training after the
    resume: the resumed group's histories and fit epochs equal those of an uninterrupted group."""
    from tests.helpers import Interrupted, interrupt_at

    scripted_train_accuracy(monkeypatch, {0: [1.0] * 6, 1: [0.5] * 6})
    runs = [tiny_run(seed=s, max_epochs=6, stop_when_fitted=False) for s in (0, 1)]
    straight = train_group(runs, tiny_dataset())
    ckpt = tmp_path / "group.ckpt.npz"
    with pytest.raises(Interrupted):
        train_group(runs, tiny_dataset(), checkpoint=ckpt, checkpoint_every_s=0.0, progress=interrupt_at(4))
    resumed = train_group(runs, tiny_dataset(), checkpoint=ckpt)
    for a, b in zip(straight, resumed):
        assert (a.fitted, a.epochs_to_fit, a.epochs_run, a.weight_norm) == (
            b.fitted,
            b.epochs_to_fit,
            b.epochs_run,
            b.weight_norm,
        )
        for k in a.history:
            np.testing.assert_array_equal(a.history[k], b.history[k])


# ---------------------------------------------------------------------------------------------------
# Which examples validation accuracy is measured on


def twin_dataset(val_labels: str) -> Dataset:
    """30 training images; the validation split holds the same 30 images, labelled like the training
    split ("same") or each shifted to the next class ("shifted"). A run over all 30 training examples
    that reaches 100% training accuracy predicts every validation image's training label, so its
    validation accuracy at the fit epoch is known exactly."""
    base = tiny_dataset(n_train=30, n_val=30)
    val_y = base.train_y.clone() if val_labels == "same" else (base.train_y + 1) % base.num_classes
    return Dataset(
        "tiny",
        base.train_x,
        base.train_y,
        base.train_x.clone(),
        val_y,
        base.num_classes,
        "memory",
        f"twin-{val_labels}",
    )


FAST_FIT = dict(n_train=30, n_val=30, width=64, lr=0.5, max_epochs=300, val_every=1000)


def test_validation_accuracy_uses_the_validation_labels_not_the_training_labels():
    """With validation labels that contradict the training labels on the same images, a fitted run has
    validation accuracy exactly 0 at its fit epoch (1.0 would mean it was measured on training examples)."""
    res = train_group([tiny_run(**FAST_FIT)], twin_dataset("shifted"), dtype=torch.float64)[0]
    assert res.fitted
    assert res.history["val_acc"][-1] == 0.0


def test_validation_accuracy_of_a_random_label_run_is_measured_against_clean_labels():
    """A run fitted to random labels (randY, fraction 1) on images that are also the validation images has
    validation accuracy equal to the share of random labels that happen to equal the clean ones: the
    validation labels are the clean ones, never the run's noisy training labels."""
    ds = twin_dataset("same")
    run = tiny_run(**FAST_FIT, noise="randY", noise_fraction=1.0)
    res = train_group([run], ds, dtype=torch.float64)[0]
    _, noisy_y, _, _ = prepare(run, ds)
    expected = float((noisy_y == ds.val_y).double().mean())
    assert res.fitted and 0.0 < expected < 1.0
    assert res.history["val_acc"][-1] == pytest.approx(expected, abs=1e-12)
    assert res.label_flip_rate == pytest.approx(float((noisy_y != ds.train_y).double().mean()))


def disjoint_dataset() -> Dataset:
    """Training pixels in 0..127, validation pixels in 128..255: every example says which split it is from."""
    g = torch.Generator().manual_seed(11)
    return Dataset(
        "split",
        torch.randint(0, 128, (60, 1, 3, 3), generator=g, dtype=torch.uint8),
        torch.arange(60) % 3,
        torch.randint(128, 256, (45, 1, 3, 3), generator=g, dtype=torch.uint8),
        torch.arange(45) % 3,
        3,
        "memory",
        "split",
    )


def test_the_validation_set_is_a_balanced_subset_of_the_validation_split_scaled_to_unit_range():
    """validation_set returns n_val distinct validation-split examples (never training ones), scaled
    by 1/255 with their own labels, balanced over classes, and the same for every run."""
    ds = disjoint_dataset()
    xv, yv = validation_set(ds, 30)
    assert xv.shape == (30, 9) and xv.dtype == torch.float32 and len(yv) == 30
    pool = ds.val_x.flatten(1).float() / 255
    match = (xv[:, None, :] == pool[None, :, :]).all(-1)  # (30, 45): which validation example each row is
    assert (match.sum(1) == 1).all(), "every row must be exactly one validation-split example"
    which = match.int().argmax(1)
    assert len(set(which.tolist())) == 30
    assert torch.equal(yv, ds.val_y[which])
    assert torch.bincount(yv).tolist() == [10, 10, 10]
    again = validation_set(ds, 30)
    assert torch.equal(again[0], xv) and torch.equal(again[1], yv)


def test_prepare_gives_a_balanced_training_subset_scaled_to_unit_range():
    """A clean run's data are n_train distinct training-split examples scaled by 1/255 with their labels,
    balanced over classes, no noise flags; randY keeps the images and changes only labels."""
    ds = disjoint_dataset()
    x, y, is_noise, flip = prepare(tiny_run(dataset="split", n_train=30), ds)
    pool = ds.train_x.flatten(1).float() / 255
    match = (x[:, None, :] == pool[None, :, :]).all(-1)
    assert x.shape == (30, 9) and (match.sum(1) == 1).all()
    which = match.int().argmax(1)
    assert len(set(which.tolist())) == 30 and torch.equal(y, ds.train_y[which])
    assert torch.bincount(y).tolist() == [10, 10, 10] and not is_noise.any() and flip == 0.0
    xr, yr, noise_r, flip_r = prepare(tiny_run(dataset="split", n_train=30, noise="randY", noise_fraction=1.0), ds)
    assert torch.equal(xr, x) and noise_r.all()
    assert flip_r == pytest.approx(float((yr != y).double().mean()))


def test_seeds_draw_their_own_noise_examples_and_random_labels():
    """Different seeds choose different noise examples and draw different random labels (seeds are
    independent replicates of the noise, not copies of one draw)."""
    ds = tiny_dataset()
    draws = [prepare(tiny_run(seed=s, noise="randY", noise_fraction=0.5), ds) for s in range(4)]
    masks = {tuple(d[2].tolist()) for d in draws}
    assert len(masks) == 4


# ---------------------------------------------------------------------------------------------------
# What the result-store key covers

MLP_ALTERNATIVES = dict(
    dataset="other",
    n_train=61,
    n_val=31,
    width=17,
    depth=3,
    lr=0.21,
    batch_size=17,
    max_epochs=7,
    noise="randX",
    noise_fraction=0.25,
    seed=1,
    val_every=2,
    stop_when_fitted=False,
    sharpness="power",
    pool=2,
    nested=True,
    target_loss=0.5,
)
CNN_ALTERNATIVES = dict(
    dataset="other",
    n_train=61,
    n_val=31,
    crop=24,
    downsample=2,
    channels=32,
    dense=(100,),
    lr=0.02,
    halve_every=5,
    momentum=0.5,
    batch_size=64,
    epochs=10,
    labels="random",
    regularizer="dropout",
    strength=0.2,
    seed=1,
    val_every=2,
)


@pytest.mark.parametrize(
    "base, alternatives",
    [
        (tiny_run(noise="randY", noise_fraction=0.5), MLP_ALTERNATIVES),
        (CNNConfig(dataset="tiny", n_train=60, n_val=30, regularizer="gaussian", strength=0.1), CNN_ALTERNATIVES),
    ],
    ids=["mlp", "cnn"],
)
def test_every_config_field_changes_the_store_key(base, alternatives):
    """Changing any single field of a run's config gives a new store key (a stored run is never
    answered for a config that differs in any field); equal configs share a key."""
    ds = tiny_dataset()
    fields = {f.name for f in dataclasses.fields(base)}
    assert set(alternatives) == fields, "give every config field an alternative value here"
    keys = {"base": run_key(base, ds)}
    for name, value in alternatives.items():
        keys[name] = run_key(dataclasses.replace(base, **{name: value}), ds)
    assert len(set(keys.values())) == len(keys), f"fields sharing a key: {keys}"
    assert run_key(dataclasses.replace(base), ds) == keys["base"]


def test_the_store_key_covers_the_dataset_fingerprint_harness_version_and_code(monkeypatch):
    """The key changes with the dataset's fingerprint (not with which tensor object holds it), with
    HARNESS_VERSION, and with the code fingerprint of the run's own kind (MLP or CNN modules)."""
    ds, mlp, cnn_run = tiny_dataset(), tiny_run(), CNNConfig(dataset="tiny", n_train=60, n_val=30)
    same = dataclasses.replace(ds, train_x=ds.train_x.clone())
    other = dataclasses.replace(ds, fingerprint="another")
    before = run_key(mlp, ds), run_key(cnn_run, ds)
    assert run_key(mlp, same) == before[0] and run_key(mlp, other) != before[0]
    assert run_key(cnn_run, other) != before[1]
    with monkeypatch.context() as m:
        m.setattr(store_mod, "HARNESS_VERSION", "another")
        assert run_key(mlp, ds) != before[0] and run_key(cnn_run, ds) != before[1]
    with monkeypatch.context() as m:
        m.setitem(store_mod._CODE, "mlp", "another")
        assert run_key(mlp, ds) != before[0] and run_key(cnn_run, ds) == before[1]
    with monkeypatch.context() as m:
        m.setitem(store_mod._CODE, "cnn", "another")
        assert run_key(cnn_run, ds) != before[1] and run_key(mlp, ds) == before[0]


def synthetic_result(config, metrics, fitted=False, epochs_to_fit=7) -> RunResult:
    history = {k: np.linspace(0.1, 0.9, 3) + i for i, k in enumerate(metrics)}
    return RunResult(config, history, fitted, epochs_to_fit, 0.25, 3.5, 1.25, {"device": "cpu"}, {"sharpness": 2.0})


@pytest.mark.parametrize(
    "config, metrics",
    [
        (tiny_run(noise="randY", noise_fraction=0.5), METRICS),
        (CNNConfig(dataset="tiny", n_train=60, n_val=30, dense=(8, 4)), cnn.METRICS),
    ],
    ids=["mlp", "cnn"],
)
def test_a_stored_result_loads_back_field_for_field(tmp_path, config, metrics):
    """Store.load returns exactly what was saved: config, history, fitted, epochs_to_fit, flip rate,
    weight norm, wall time, info and measures; for another dataset fingerprint it returns nothing."""
    ds = tiny_dataset()
    saved = synthetic_result(config, metrics)
    Store(tmp_path).save(saved, ds)
    loaded = Store(tmp_path).load(config, ds)
    assert loaded is not None and loaded.config == config
    for field in ("fitted", "epochs_to_fit", "label_flip_rate", "weight_norm", "wall_s", "info", "measures"):
        assert getattr(loaded, field) == getattr(saved, field), field
    assert set(loaded.history) == set(metrics)
    for k in metrics:
        np.testing.assert_array_equal(loaded.history[k], saved.history[k])
    assert Store(tmp_path).load(config, dataclasses.replace(ds, fingerprint="another")) is None
    fitted = synthetic_result(dataclasses.replace(config, seed=5), metrics, fitted=True, epochs_to_fit=2)
    Store(tmp_path).save(fitted, ds)
    again = Store(tmp_path).load(fitted.config, ds)
    assert (again.fitted, again.epochs_to_fit) == (True, 2)


def test_an_entry_whose_recorded_config_differs_is_not_returned(tmp_path):
    """An entry found under a run's key but recording another config (a key collision, a hand-copied
    file) is reported as corrupt and not returned."""
    ds, asked, other = tiny_dataset(), tiny_run(seed=0), tiny_run(seed=1)
    store = Store(tmp_path)
    store.save(synthetic_result(other, METRICS), ds)
    for suffix in ("json", "npz"):
        (tmp_path / f"{run_key(other, ds)}.{suffix}").rename(tmp_path / f"{run_key(asked, ds)}.{suffix}")
    with pytest.warns(UserWarning, match="config"):
        assert store.load(asked, ds) is None


# ---------------------------------------------------------------------------------------------------
# Statistics: p-values, effects and decisions on constructed data


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), by summing the probability mass (independent of scipy)."""
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))


@pytest.mark.parametrize("k, n, null_share", [(9, 10, 0.9), (9, 10, 0.8), (10, 10, 0.5), (3, 10, 0.5), (7, 8, 0.6)])
def test_share_test_p_value_is_the_one_sided_tail_under_the_stated_null_share(k, n, null_share):
    """share_test's p is P(X >= k) under Binomial(n, null_share): one-sided, and at the null share
    asked for (not 0.5); its effect is k/n with the exact two-sided 95% Clopper-Pearson interval."""
    successes = np.arange(n) < k
    v = S.share_test(successes, alpha=ALPHA, min_share=0.5, null_share=null_share)
    assert v.p_value == pytest.approx(binomial_tail(k, n, null_share), rel=1e-9)
    assert (v.statistic, v.n, v.effect) == (k, n, k / n)
    from scipy.stats import beta

    low = beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
    high = beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
    assert v.interval == pytest.approx((low, high), rel=1e-6)


def test_share_test_does_not_pass_a_share_that_does_not_beat_a_high_null_share():
    """9 of 10 seeds succeeding does not beat a null share of 0.8 (p = 0.376), although 9/10 would beat 0.5."""
    v = S.share_test(np.arange(10) < 9, alpha=ALPHA, min_share=0.5, null_share=0.8)
    assert not v.passed and v.p_value > 0.3
    assert S.share_test(np.arange(10) < 9, alpha=ALPHA, min_share=0.5).passed


def share_verdict(k: int, n: int, min_share: float) -> S.Verdict:
    """A real share_test verdict: k of n seeds succeed (p = P(X >= k), X ~ Binomial(n, 1/2)), effect k/n."""
    return S.share_test(np.arange(n) < k, alpha=ALPHA, min_share=min_share)


def test_a_conjunction_fails_when_any_part_fails_even_when_the_weakest_effect_part_passes():
    """all_of fails when one part fails on its p-value (4 of 5 seeds: p = 6/32) although its effect is far
    above its minimum, while the part closest to its minimum (5 of 5 seeds: p = 1/32) passes."""
    fails_on_p, passes_close = share_verdict(4, 5, min_share=0.0), share_verdict(5, 5, min_share=0.95)
    assert passes_close.passed and not fails_on_p.passed
    for order in ([fails_on_p, passes_close], [passes_close, fails_on_p]):
        v = S.all_of(order, "both")
        assert not v.passed and v.p_value == pytest.approx(6 / 32)


def test_a_conjunction_reports_the_effect_of_the_part_closest_to_its_minimum():
    """all_of reports the effect, interval and minimum of the part with the smallest effect - min_effect
    (margin 0.1 for 5/5 against 0.9, not 0.8 for 8/10 against 0.0), in whatever order the parts come."""
    close, far = share_verdict(5, 5, min_share=0.9), share_verdict(8, 10, min_share=0.0)
    for order in ([close, far], [far, close]):
        v = S.all_of(order, "both")
        assert (v.effect, v.min_effect, v.interval) == (1.0, 0.9, close.interval)
        assert v.passed == (close.passed and far.passed)


def test_page_trend_effect_counts_a_flat_seed_as_no_trend():
    """A seed whose values are all equal (e.g. every setting censored at the budget) adds rho 0 to the
    mean Spearman rho, not 1: rows increasing, flat and decreasing give (1 + 0 - 1) / 3 = 0."""
    v = S.page_trend([[1, 2, 3], [5, 5, 5], [9, 8, 7]], alpha=ALPHA, min_effect=0.5)
    assert v.effect == pytest.approx(0.0, abs=1e-12) and not v.passed
    flat = S.page_trend([[1, 2, 3], [4, 4, 4]], alpha=ALPHA, min_effect=0.6)
    assert flat.effect == pytest.approx(0.5) and not flat.passed


def test_page_trend_p_value_of_two_perfectly_increasing_seeds_is_one_in_36():
    """Two seeds, three settings, both strictly increasing: L is at its maximum (28), which under the null
    (each row's ranks uniform over the 3! orders) has probability exactly (1/6)**2 = 1/36."""
    v = S.page_trend([[1, 2, 3], [10, 20, 30]], alpha=ALPHA, min_effect=1.0)
    assert v.statistic == 28 and v.p_value == pytest.approx(1 / 36, rel=1e-9)
    assert v.effect == pytest.approx(1.0) and v.passed


@pytest.mark.parametrize("values", [[1.0, 3.0], [2.0, 2.0, 5.0], [1.0, 2.0, 4.0, 8.0, 16.0]], ids=["2", "3", "5"])
def test_median_interval_of_few_unequal_seeds_is_their_range_never_a_point(values):
    """Below 6 seeds no order-statistic interval reaches 95%, so the interval is the seeds' range (exact
    level 1 - 2 / 2^n): wider than a point, never a zero-width 'certain' report."""
    low, high, level = S.median_interval(values)
    assert (low, high) == (min(values), max(values)) and low < high
    assert level == pytest.approx(1 - 2 * 0.5 ** len(values))
