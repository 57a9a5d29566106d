"""Groups trained as scheduler jobs (harness/cluster.py), with submitit's local executor on the CPU:
the same results as training in-process, one job per group however many processes wait on it,
nothing submitted for a stored group, and a crashed job reported with its log."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from harness import cluster
from harness.store import Store
from tests.helpers import tiny_dataset, tiny_run

pytest.importorskip("submitit", reason="the cluster option needs submitit (a dependency of the package)")

RUNS = [
    tiny_run(seed=s, noise=kind, noise_fraction=0.5 if kind != "none" else 0.0)
    for kind in ("none", "randY")
    for s in (0, 1)
]


def local(store: Store, **overrides) -> cluster.Cluster:
    return cluster.Cluster(cluster.Scheduler(backend="local", gpus_per_job=0, poll_s=0.2, **overrides), store)


def job(store: Store, **overrides) -> cluster.TrainGroup:
    ds = tiny_dataset()
    args = dict(
        load=functools.partial(tiny_dataset), fingerprint=ds.fingerprint, device="cpu", threads=torch.get_num_threads()
    )
    return cluster.TrainGroup(str(store.root), **{**args, **overrides})


@pytest.mark.slow
def test_a_job_stores_the_same_runs_as_training_in_process(tmp_path):
    ds = tiny_dataset()
    jobs_store, inline_store = Store(tmp_path / "jobs"), Store(tmp_path / "inline")
    seen = []
    groups = local(jobs_store).train(RUNS, ds, job(jobs_store), say=lambda *a: seen.append(a[:3]))
    assert groups == 1 and seen[-1] == (0, 0, 1)
    for a, b in zip(jobs_store.get_or_train(RUNS, ds), inline_store.get_or_train(RUNS, ds)):
        assert (a.fitted, a.epochs_to_fit, a.weight_norm) == (b.fitted, b.epochs_to_fit, b.weight_norm)
        for k in a.history:
            np.testing.assert_array_equal(a.history[k], b.history[k])
    # A rerun finds every run stored: nothing is submitted, and no progress line claims jobs.
    again = []
    assert local(jobs_store).train(RUNS, ds, job(jobs_store), say=lambda *a: again.append(a)) == 0 and again == []
    assert len(list((tmp_path / "jobs" / "jobs").glob("*_submitted.pkl"))) == 1


WAIT = textwrap.dedent("""
    import functools, sys, torch
    from pathlib import Path
    from harness import cluster
    from harness.store import Store
    from tests.helpers import tiny_dataset
    from tests.test_cluster import RUNS, job, local
    store = Store(Path(sys.argv[1]))
    local(store).train(RUNS, tiny_dataset(), job(store))
    print("done")
""")


@pytest.mark.slow
def test_two_processes_waiting_on_one_group_share_one_job(tmp_path):
    """Two pytest processes that need the same group: the second joins the job the first submitted."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WAIT, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert len(list((tmp_path / "jobs").glob("*_submitted.pkl"))) == 1
    assert all(Store(tmp_path).has(r, tiny_dataset()) for r in RUNS)


@pytest.mark.slow
def test_a_crashed_job_fails_with_its_log_and_a_rerun_submits_it_again(tmp_path):
    store = Store(tmp_path)
    with pytest.raises(cluster.JobFailed) as failed:
        local(store).train(RUNS, tiny_dataset(), job(store, fingerprint="not-this-dataset"))
    message = str(failed.value)
    assert "lacks 4 of its group's 4 runs" in message and "not-this-dataset" in message
    marker = json.loads(next((tmp_path / "jobs").glob("*.json")).read_text())
    log = tmp_path / "jobs" / f"{marker['job_id']}_0_log.err"
    assert log.exists() and str(log) in message
    # The next run submits the group again (its job ended), and this time it trains.
    assert local(store).train(RUNS, tiny_dataset(), job(store)) == 1
    assert len(list((tmp_path / "jobs").glob("*_submitted.pkl"))) == 2


def test_a_foreign_job_that_ended_is_not_waited_for(tmp_path):
    """A marker whose local process is gone counts as ended, so the group is submitted again."""
    marker = {
        "backend": "local",
        "job_id": "999999999",
        "host": cluster.socket.gethostname(),
        "folder": str(tmp_path),
        "submitted": time.time(),
    }
    assert cluster._foreign_state(marker) == "ended"
    assert cluster._foreign_state({**marker, "job_id": str(cluster.os.getpid())}) == "running"
    assert cluster._foreign_state({**marker, "host": "another-machine"}) == "ended"


@pytest.mark.parametrize(
    "state, age_s, expected",
    [
        ("RUNNING", 0, "running"),
        ("PENDING", 0, "queued"),
        ("REQUEUED", 0, "queued"),
        ("UNKNOWN", 5, "queued"),
        ("UNKNOWN", 3600, "ended"),
        ("CANCELLED by 1234", 0, "ended"),
        ("TIMEOUT", 0, "ended"),
        ("FAILED", 0, "ended"),
        ("COMPLETED", 0, "ended"),
        ("FINISHED", 0, "ended"),
        ("NO PROCESS AND NO RESULT", 0, "ended"),
    ],
)
def test_scheduler_states_are_classified(state, age_s, expected):
    assert cluster._classify(state, {"submitted": time.time() - age_s}) == expected


def test_settings_come_from_a_file_and_options(tmp_path):
    path = tmp_path / "cluster.toml"
    path.write_text('[scheduler]\npartition = "gpu"\ntimeout_min = 600\nslurm_extra = \'{"account": "lab"}\'\n')
    s = cluster.settings("slurm", str(path), ["timeout_min=720", "poll_s=2.5"])
    assert (s.backend, s.partition, s.timeout_min, s.poll_s, s.gpus_per_job) == ("slurm", "gpu", 720, 2.5, 1)
    for bad, words in [
        (["partitio=gpu"], "unknown scheduler setting"),
        (["mem_gb=lots"], "must be a number"),
        (["gpus"], "key=value"),
        (["slurm_extra=[1]"], "JSON object"),
        (["mem_gb=0"], "at least 1"),
    ]:
        with pytest.raises(ValueError, match=words):
            cluster.settings("slurm", None, bad)
    with pytest.raises(ValueError, match="choose one of"):
        cluster.settings("kubernetes")
