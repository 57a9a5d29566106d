"""The result store: round trips, corruption, resumption and concurrent workers."""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import harness.store as store_mod
from harness.store import Store, run_key
from tests.helpers import tiny_dataset, tiny_run

ROOT = Path(__file__).parent.parent


def counting(monkeypatch, log):
    """Patch the store's training loop so each call appends the number of runs it trains to `log`."""
    real = store_mod.train_to_end

    def spy(group, *args, **kwargs):
        log.append(len(group.runs))
        return real(group, *args, **kwargs)

    monkeypatch.setattr(store_mod, "train_to_end", spy)


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

    real = sm.train_to_end

    def spy(group, *args, **kwargs):
        with open(log_path, "a") as f:
            f.write(f"{len(group.runs)}\n")
        return real(group, *args, **kwargs)

    sm.train_to_end = spy
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


def _late_worker(root, log_path, seeds):
    """`_worker`, writing "looked" to `log_path` once it has seen which runs the store lacks."""
    import harness.store as sm

    real = sm.Store._partition

    def partition(self, *args):
        out = real(self, *args)
        with open(log_path, "a") as f:
            f.write("looked\n")
        return out

    sm.Store._partition = partition
    return _worker(root, log_path, seeds)


@pytest.mark.slow
def test_a_worker_that_looks_while_another_saves_waits_and_reads(tmp_path):
    """A worker that finds part of a group saved (another is still saving the rest) waits for those
    runs instead of training them again, although the runs it lacks form a smaller group."""
    root, log, ds = tmp_path / "store", tmp_path / "trainings.log", tiny_dataset()
    runs = [tiny_run(seed=s, max_epochs=20) for s in (0, 1, 2)]
    store = Store(root)
    store.get_or_train(runs, ds)
    aside = tmp_path / "aside"
    aside.mkdir()
    saving = [p for r in runs[1:] for p in root.glob(f"{run_key(r, ds)}.*")]
    with store.holding(runs, ds):  # this process is "saving" the group: run 0 is stored, 1 and 2 not yet
        for p in saving:
            p.rename(aside / p.name)
        worker = mp.get_context("spawn").Pool(1)
        pending = worker.apply_async(_late_worker, (root, log, (0, 1, 2)))
        deadline = time.monotonic() + 120
        while "looked" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # time enough to train the two runs, were it not waiting
        for p in saving:
            (aside / p.name).rename(p)
    pending.get(timeout=120)
    worker.close()
    assert log.read_text().split() == ["looked"], "the worker trained runs another process was saving"


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


@pytest.mark.parametrize(
    "trainer, modules", [("harness.train", "MLP_CODE"), ("harness.sharpness", "MLP_CODE"), ("harness.cnn", "CNN_CODE")]
)
def test_the_code_fingerprint_covers_every_harness_module_a_trainer_imports(trainer, modules):
    """A stored run's key hashes the modules its trainer runs; one it imports but the key misses could
    change the numbers without a retrain. CNN keys leave out train.py (an MLP edit keeps CNN runs)."""
    code = (
        f"import sys, {trainer}, harness; print(sorted(m.split('.')[1] + '.py' for m in sys.modules "
        f"if m.startswith('harness.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    imported = set(eval(out.stdout))  # noqa: S307 - our own printed list
    import harness

    assert imported <= set(getattr(harness, modules))
    assert "train.py" not in harness.CNN_CODE


def test_a_group_over_the_memory_budget_trains_in_sub_batches_with_the_same_numbers(tmp_path, monkeypatch):
    ds, log = tiny_dataset(), []
    counting(monkeypatch, log)
    runs = [tiny_run(seed=s, noise="randY", noise_fraction=0.5) for s in range(5)]
    once, per_run = store_mod.kind_of(runs[0]).memory(runs[0], ds)
    split = Store(tmp_path / "split", memory_budget=once + 2 * per_run).get_or_train(runs, ds)
    assert log == [2, 2, 1]
    whole = Store(tmp_path / "whole").get_or_train(runs, ds)
    for a, b in zip(split, whole):
        assert a.epochs_to_fit == b.epochs_to_fit and a.weight_norm == b.weight_norm
        for k in a.history:
            np.testing.assert_array_equal(a.history[k], b.history[k])
    with pytest.raises(store_mod.MemoryBudgetError, match="one run of this group needs"):
        Store(tmp_path / "tiny", memory_budget=once + per_run - 1).get_or_train([tiny_run(seed=9)], ds)


def test_a_disk_too_small_for_the_checkpoint_stops_the_group_before_training(tmp_path, monkeypatch):
    import shutil

    from harness import core

    monkeypatch.setattr(core.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**6, 10**6 - 100, 100))
    log = []
    with pytest.raises(core.CheckpointSpaceError, match="put the result store on a larger disk"):
        Store(tmp_path).get_or_train([tiny_run()], tiny_dataset(), progress=lambda *a: log.append(a))
    assert log == []  # not one epoch trained


def test_a_checkpoint_of_another_format_is_never_half_loaded(tmp_path):
    """A checkpoint that passes the group check but lacks an array (an older format) is ignored
    whole: the group trains from the start and gives the uninterrupted numbers."""
    from harness import core, train

    ds, run = tiny_dataset(), tiny_run(seed=3)
    clean = train.train_group([run], ds)[0]
    path = tmp_path / "g.ckpt.npz"
    core.save_checkpoint(path, train._fingerprint([run]), 2, 1.0, {"param0": np.zeros((1, 16, 16), np.float32)})
    resumed = train.train_group([run], ds, checkpoint=path)[0]
    for k in clean.history:
        np.testing.assert_array_equal(clean.history[k], resumed.history[k])
