"""The result store: round trips, corruption, resumption and concurrent workers."""
from __future__ import annotations

import json
import multiprocessing as mp

import numpy as np
import pytest

import harness.store as store_mod
from harness.store import Store, run_key
from tests.helpers import tiny_dataset, tiny_run


def counting(monkeypatch, log):
    """Patch the store's trainer so each call appends the number of runs it trains to `log`."""
    real = store_mod.train_group

    def spy(runs, *args, **kwargs):
        log.append(len(runs))
        return real(runs, *args, **kwargs)
    monkeypatch.setattr(store_mod, "train_group", spy)


def test_stored_runs_come_back_identical_without_training(tmp_path, monkeypatch):
    """A second request for the same runs reads them: same numbers, no training."""
    ds, log = tiny_dataset(), []
    counting(monkeypatch, log)
    runs = [tiny_run(seed=s, noise="randY", noise_fraction=0.5) for s in (0, 1)]
    first = Store(tmp_path).get_or_train(runs, ds)
    second = Store(tmp_path).get_or_train(runs, ds)
    assert log == [2]
    for a, b in zip(first, second):
        assert (a.fitted, a.epochs_to_fit, a.label_flip_rate) == (b.fitted, b.epochs_to_fit, b.label_flip_rate)
        for k in a.history:
            np.testing.assert_array_equal(a.history[k], b.history[k])


def test_only_missing_runs_are_trained(tmp_path, monkeypatch):
    """After an interruption, a sweep trains just the runs the store lacks."""
    ds, log = tiny_dataset(), []
    counting(monkeypatch, log)
    store = Store(tmp_path)
    store.get_or_train([tiny_run(seed=0)], ds)
    store.get_or_train([tiny_run(seed=s) for s in range(3)] + [tiny_run(width=8)], ds)
    assert log == [1, 2, 1]  # one group per shape; seed 0 came from the store


def test_keys_change_with_config_and_dataset():
    """Any config field or the dataset's checksums change the key; equal configs share it."""
    ds = tiny_dataset()
    assert run_key(tiny_run(), ds) == run_key(tiny_run(), ds)
    assert run_key(tiny_run(), ds) != run_key(tiny_run(lr=0.3), ds)
    assert run_key(tiny_run(), ds) != run_key(tiny_run(), tiny_dataset(seed=1))


@pytest.mark.parametrize("damage", ["flip a byte of the history", "truncate the metadata", "delete the history"])
def test_corrupt_entries_are_detected_and_retrained(tmp_path, monkeypatch, damage):
    """A damaged entry is reported, retrained, and replaced by a good one."""
    ds, log = tiny_dataset(), []
    counting(monkeypatch, log)
    run = tiny_run()
    good = Store(tmp_path).get_or_train([run], ds)[0]
    key = run_key(run, ds)
    npz, meta = tmp_path / f"{key}.npz", tmp_path / f"{key}.json"
    if damage == "flip a byte of the history":
        blob = bytearray(npz.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        npz.write_bytes(bytes(blob))
    elif damage == "truncate the metadata":
        meta.write_text(meta.read_text()[:20])
    else:
        npz.unlink()
    with pytest.warns(UserWarning, match="corrupt"):
        again = Store(tmp_path).get_or_train([run], ds)[0]
    assert log == [1, 1]
    np.testing.assert_array_equal(good.history["train_acc"], again.history["train_acc"])
    assert Store(tmp_path).load(run, ds) is not None
    assert json.loads(meta.read_text())["epochs_to_fit"] == good.epochs_to_fit


def _worker(root, log_path, seeds):
    import harness.store as sm

    real = sm.train_group

    def spy(runs, *args, **kwargs):
        with open(log_path, "a") as f:
            f.write(f"{len(runs)}\n")
        return real(runs, *args, **kwargs)
    sm.train_group = spy
    res = Store(root).get_or_train([tiny_run(seed=s, max_epochs=20) for s in seeds], tiny_dataset())
    return [r.history["train_acc"].tolist() for r in res]


@pytest.mark.slow
def test_parallel_workers_train_each_run_once(tmp_path):
    """Four processes asking for the same runs at once: one trains, three read; all get the same numbers."""
    log = tmp_path / "trainings.log"
    with mp.get_context("spawn").Pool(4) as pool:
        out = pool.starmap(_worker, [(tmp_path / "store", log, (0, 1, 2))] * 4)
    assert log.read_text().split() == ["3"]
    assert all(o == out[0] for o in out)
    assert not list((tmp_path / "store").glob("*.tmp"))


def test_the_code_fingerprint_follows_code_not_docstrings_or_comments():
    """Store keys hash the training code's syntax tree: a changed statement changes it, while a
    docstring, a comment or the layout does not (such edits must not retrain every stored run).

    Cannot check: a behaviour change outside the fingerprinted modules (they are listed in harness)."""
    from harness import _code_only

    code = 'def f(x):\n    """Doc."""\n    return x + 1  # one\n'
    assert _code_only(code) == _code_only('def f(x):\n    """Other doc."""\n\n    return (x +\n            1)\n')
    assert _code_only(code) == _code_only("def f(x):\n    return x + 1\n")
    assert _code_only(code) != _code_only('def f(x):\n    """Doc."""\n    return x + 2\n')
    assert _code_only('"""Module."""\nA = 1\n') != _code_only('"""Module."""\nA = 2\n')
