"""pytest interface of the claims suite: markers, options, the shared `claims` fixture, the report.

    pytest claims -m smoke --dataset fashion-mnist     # minutes on a laptop CPU
    pytest claims -m full -n 4                         # the paper's scale, on GPUs

Full-tier tests run only when `full` is named in the `-m` expression (they cost GPU-hours); any other
selection, or none, deselects them. Claim tests decide with the `decide` fixture, which records each
verdict (three outcomes: holds, contradicted, not shown) with its provenance; the controlling
process (also under pytest-xdist) prints them as a table and merges them into
reports/<tier>/<dataset>/, keyed by base seed and device so runs never overwrite each other.
"""
from __future__ import annotations

import functools
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import settings

from harness import CNN_CODE, MLP_CODE, cluster, code_fingerprint, data, decision, report
from harness.cnn import CNNConfig
from harness.core import CheckpointSpaceError
from harness.store import MemoryBudgetError, Store
from harness.tiers import TIERS

ROOT = Path(__file__).parent
SEED_STRIDE = 10_000  # --base-seed K selects seeds K*SEED_STRIDE + 0..N-1: disjoint sets per K
# Per harness test (tests/), where pytest-timeout is installed; the slowest took 170 s on a busy 2-core machine.
HARNESS_TEST_TIMEOUT_S = 600
_ROWS: list[dict] = []  # verdict rows gathered by this (controlling) process
_PLAN: list[dict] = []  # dry-run groups gathered by this (controlling) process
_PLAN_PENDING: list[dict] = []  # dry-run groups of the running test, attached to its report
DRY_STEPS = 20  # a dry run times a call of this many SGD steps of each group and a longer one (harness.core.epoch_seconds)

# Hypothesis profiles, chosen by HYPOTHESIS_PROFILE: "ci" (the default where CI is set) replays
# the same examples every run, so CI cannot fail by chance; "dev" explores new ones each run.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser):
    g = parser.getgroup("claims", "claims suite (Deep Nets Don't Learn via Memorization)")
    g.addoption("--dataset", default=os.environ.get("CLAIMS_DATASET"),
                help=f"dataset for every claim, one of {', '.join(data.SPECS)} (env CLAIMS_DATASET); "
                     "default: each claim's dataset in the paper (MNIST, CIFAR-10 for C4)")
    g.addoption("--data-root", default=os.environ.get("CLAIMS_DATA_ROOT"),
                help=f"folder with dataset files (env CLAIMS_DATA_ROOT); also searched: {data.DEFAULT_DATA_ROOT} "
                     f"and, for Fashion-MNIST, {data.DEBIAN_FASHION_MNIST}")
    g.addoption("--device", default="auto", help="torch device to train on: auto (CUDA if present), cpu, cuda, cuda:1")
    g.addoption("--seeds", type=int, default=None, help="seeds per condition (default: the tier's, 8 smoke / 5 full)")
    g.addoption("--base-seed", type=int, default=0,
                help="use the K-th disjoint set of seeds (K*10000 + 0..N-1), to check that verdicts are robust")
    g.addoption("--report-dir", default=str(ROOT / "reports"), help="where claims.json/.md and figures go")
    g.addoption("--store", default=os.environ.get("CLAIMS_STORE", str(ROOT / ".claims-store")),
                help="result store of finished runs (env CLAIMS_STORE)")
    g.addoption("--no-cache", action="store_true",
                help="ignore the result store: train everything again (workers still share within the run)")
    g.addoption("--dry-run", action="store_true",
                help=f"time a call of {DRY_STEPS} SGD steps, a longer one and one evaluation of each selected group on "
                     "the device (outside the store), end every test as skipped (no verdict) and print a plan: "
                     "device-hours for the whole epoch budget, per sweep and in total")
    g.addoption("--plan", action="store_true",
                help="train nothing: estimate each selected group's time on one H200 from a cost model "
                     "(harness/plan.py), end every test as skipped (no verdict) and print the plan of "
                     "device-hours, labelled an estimate")
    g.addoption("--memory-budget", type=float, default=None, metavar="GiB",
                help="device memory a training group may take; a larger group trains in sub-batches of runs (same "
                     "numbers). Default: 90%% of the GPU's free memory, no limit on the CPU")
    g.addoption("--executor", default=os.environ.get("CLAIMS_EXECUTOR", "inline"),
                choices=("inline", *cluster.BACKENDS),
                help="who trains each group the store lacks: inline (this process, the default), or a job of the "
                     "scheduler: slurm, local (processes on this machine), auto (Slurm where present); the result "
                     "store must be on a filesystem the jobs share (env CLAIMS_EXECUTOR)")
    g.addoption("--executor-config", default=os.environ.get("CLAIMS_EXECUTOR_CONFIG"), metavar="TOML",
                help="scheduler settings (partition, gpus_per_job, cpus_per_job, mem_gb, timeout_min, poll_s, folder, "
                     "slurm_extra) from a TOML file (env CLAIMS_EXECUTOR_CONFIG)")
    g.addoption("--executor-option", action="append", default=[], metavar="KEY=VALUE",
                help="one scheduler setting, overriding the file's, e.g. partition=gpu or timeout_min=720 (repeatable)")


def pytest_configure(config):
    # Tiers, registered here only; --strict-markers (pyproject.toml) makes any other marker an error.
    config.addinivalue_line("markers", "smoke: small claim variant, minutes on 2 CPU cores (CI regression check)")
    config.addinivalue_line("markers", "full: claim at the paper's scale; GPU-hours, selected only by -m full")
    config.addinivalue_line("markers", "slow: harness test that takes more than a few seconds")
    config.addinivalue_line("markers", "expect_outcome(*outcomes): the failed outcomes ('not shown', 'contradicted') "
                                       "a claim's strict xfail accepts; any other outcome fails the test")
    name = config.getoption("--dataset")
    if name is not None and name not in data.SPECS:
        raise pytest.UsageError(f"--dataset {name!r} is unknown; choose one of {', '.join(data.SPECS)}")
    if not 2 <= (config.getoption("--seeds") or 2) < SEED_STRIDE:
        raise pytest.UsageError(f"--seeds must be in 2..{SEED_STRIDE - 1} (paired tests need several seeds; "
                                "the paper used 5)")
    if not 0 <= config.getoption("--base-seed") < 100_000:
        raise pytest.UsageError("--base-seed must be in 0..99999")
    if config.getoption("--executor") in ("inline", "local"):
        resolve_device(config.getoption("--device"))  # Slurm jobs resolve it where they run
    if config.getoption("--executor") != "inline":
        scheduler_settings(config)
    workers = getattr(config, "workerinput", {}).get("workercount")
    if workers:  # xdist workers share the cores instead of each taking all of them
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(workers)))


def scheduler_settings(config) -> "cluster.Scheduler":
    """--executor's settings, or a usage error that says what is wrong."""
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise pytest.UsageError(f"--executor {config.getoption('--executor')} needs submitit: "
                                f"{sys.executable} -m pip install submitit") from None
    try:
        return cluster.settings(config.getoption("--executor"), config.getoption("--executor-config"),
                                config.getoption("--executor-option"))
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None


def torch_device_type(name: str) -> str:
    import torch

    return torch.device(name).type


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise pytest.UsageError(f"--device {name!r}: {e}") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError(f"--device {name}: torch sees no CUDA device here; use --device cpu or auto")
    return name


def _remote(config) -> bool:
    """Whether runs train in jobs on other machines (Slurm), whose device this process cannot see."""
    return config.getoption("--executor") in ("slurm", "auto")


def _device(config) -> str:
    """The device this process trains on (also its dry runs); with Slurm jobs, the --device they get."""
    return config.getoption("--device") if _remote(config) else session_device(config.getoption("--device"))


def _device_label(config) -> str:
    executor = config.getoption("--executor")
    return _device(config) + ("" if executor == "inline" else f" in {executor} jobs")


def session_device(name: str) -> str:
    """The device this pytest process trains on: `--device` resolved, and under xdist one GPU per
    worker (worker_device)."""
    import torch

    device = resolve_device(name)
    count = torch.cuda.device_count() if device == "cuda" else 0
    return worker_device(device, os.environ.get("PYTEST_XDIST_WORKER"), count)


def worker_device(device: str, worker: str | None, count: int) -> str:
    """Under xdist, worker gwK trains on cuda:(K mod count) when the device is plain "cuda", so
    `-n 4` on a machine with 4 GPUs puts one worker on each; `count` is what torch sees, which
    honours CUDA_VISIBLE_DEVICES. An explicit index (cuda:1), the CPU and a session without workers
    keep their device."""
    if device != "cuda" or not worker or count < 1:
        return device
    return f"cuda:{int(worker.removeprefix('gw')) % count}"


def pytest_collection_modifyitems(config, items):
    if config.pluginmanager.hasplugin("timeout"):  # a hung loop (a broken estimator) fails instead of hanging CI
        for item in items:
            if item.path.is_relative_to(ROOT / "tests") and not item.get_closest_marker("timeout"):
                item.add_marker(pytest.mark.timeout(HARNESS_TEST_TIMEOUT_S))
    if "full" in re.findall(r"\w+", config.getoption("markexpr") or ""):
        return  # -m full, -m "smoke or full", ...: the markers decide
    full = [i for i in items if i.get_closest_marker("full")]
    if full:  # the paper-scale tier runs only when asked for
        config.hook.pytest_deselected(items=full)
        items[:] = [i for i in items if not i.get_closest_marker("full")]


def pytest_report_header(config):
    expr = config.getoption("markexpr") or "all but full (default)"
    return [f"claims: -m {expr!r}; dataset {config.getoption('--dataset') or 'paper default per claim'}; "
            f"device {_device_label(config)}; "
            f"{config.getoption('--seeds') or 'tier default (8 smoke, 5 full)'} seeds per condition, base seed "
            f"{config.getoption('--base-seed')}",
            f"claims: store {'off (--no-cache)' if config.getoption('--no-cache') else config.getoption('--store')}; "
            f"reports {config.getoption('--report-dir')}"]


@dataclass
class Trained:
    """A sweep's results: `results` has the shape of its design, a RunResult for each run config."""
    dataset: str  # the dataset's name
    ds: data.Dataset
    results: dict
    compute_s: float  # training seconds of its distinct runs


def _configs(design):
    """The run configs of a design (a config, or a dict or list of designs, nested), in order."""
    if isinstance(design, dict | list):
        for part in design.values() if isinstance(design, dict) else design:
            yield from _configs(part)
    else:
        yield design


def _results(design, done: dict):
    """The design with each run config replaced by its result in `done`."""
    if isinstance(design, dict):
        return {k: _results(v, done) for k, v in design.items()}
    if isinstance(design, list):
        return [_results(v, done) for v in design]
    return done[design]


class Claims:
    """What a claim test needs: its dataset, seeds and tier, the result store, progress output."""

    def __init__(self, session, store_root: Path):
        self.session, self.config = session, session.config
        self.device = _device(self.config)
        budget = self.config.getoption("--memory-budget")
        self.store = Store(store_root, memory_budget=None if budget is None else int(budget * 2**30))
        self.report_dir = Path(self.config.getoption("--report-dir"))
        executor = self.config.getoption("--executor")
        self.cluster = None if executor == "inline" else cluster.Cluster(scheduler_settings(self.config), self.store)
        self._data_errors: dict[str, str] = {}
        self._memo: dict = {}
        self.trained_with: set[str] = set()  # how the runs read or trained so far were trained

    def dataset_name(self, paper_default: str) -> str:
        return self.config.getoption("--dataset") or paper_default

    def dataset(self, name: str) -> data.Dataset:
        """The dataset, or a test failure with the DataError's instructions. A dataset chosen with
        --dataset applies to every claim, so its absence also stops the session; a claim's own paper
        default (CIFAR-10 for C4) fails only the tests that need it."""
        if name not in self._data_errors:
            try:
                return data.load(name, self.config.getoption("--data-root"))
            except data.DataError as e:
                self._data_errors[name] = str(e)
        if self.config.getoption("--dataset") == name:
            self.session.shouldstop = f"dataset {name} unavailable (see the first failure)"
        pytest.fail(self._data_errors[name], pytrace=False)

    def tier(self, name: str):
        return TIERS[name]

    def seeds(self, tier: str, default: int | None = None) -> list[int]:
        """--seeds (or `default`, or the tier's number) seeds of the --base-seed set."""
        n = self.config.getoption("--seeds") or default or TIERS[tier].seeds
        base = self.config.getoption("--base-seed") * SEED_STRIDE
        return list(range(base, base + n))

    def sweep(self, label: str, tier: str, paper_dataset: str, design: Callable[[str], dict]) -> Trained:
        """A claim's sweep, trained (or read from the store) once per process for (label, tier).

        `design(dataset name)` gives the sweep's run configs as a dict whose values are configs or
        dicts or lists of them, nested; a config that appears more than once trains once. The
        dataset is --dataset, else the claim's `paper_dataset`."""
        def compute():
            name = self.dataset_name(paper_dataset)
            ds = self.dataset(name)
            runs = design(name)
            unique = list(dict.fromkeys(_configs(runs)))
            noun = "CNNs" if isinstance(unique[0], CNNConfig) else "models"
            done = dict(zip(unique, self.train(unique, ds, f"{label}, {tier}, {name}, {len(unique)} {noun}")))
            return Trained(name, ds, _results(runs, done), sum(r.wall_s for r in done.values()))
        return self.memo((label, tier), compute)

    def draw(self, tier: str, dataset: str, figures: dict[str, Callable[[Path], None]]) -> None:
        """plot(path) for each figure {file name: plot}, once per process (tests that share a sweep
        share its figures)."""
        for name, plot in figures.items():
            path = self.figure(tier, dataset, name)
            self.memo(("figure", path), lambda: plot(path))

    def memo(self, key, compute):
        """compute() once per process for `key` (sweeps shared by several tests of a module)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def train(self, runs, ds, label: str):
        if self.config.getoption("--plan"):
            self._estimate(runs, ds, label)
            pytest.skip(f"plan: no verdict ({label}: estimated from the cost model, nothing trained)")
        if self.config.getoption("--dry-run"):
            self._rehearse(runs, ds, label)
            pytest.skip(f"dry run: no verdict ({label}: each group timed from a call of {DRY_STEPS} steps "
                        "and a longer one)")
        if self.cluster is not None:
            self._submit(runs, ds, label)
        try:
            results = self.store.get_or_train(runs, ds, self.device, progress=_progress(self.config, label))
        except (MemoryBudgetError, CheckpointSpaceError) as e:  # before any training: say what to change
            pytest.fail(f"{label}: {e}", pytrace=False)
        # A stored run may come from another device, thread count or torch (numbers differ in the last
        # bits, then grow): say so in the report.
        self.trained_with |= {f"{r.info['device']}, {r.info['threads']} threads, torch {r.info['torch']}"
                              for r in results}
        return results

    def _submit(self, runs, ds, label: str) -> None:
        """Have the scheduler train the groups the store lacks (harness/cluster.py), waiting with
        progress; a job that ends without its runs fails the test with its log."""
        local = self.cluster.scheduler.backend == "local"
        load = functools.partial(data.load, ds.name, self.config.getoption("--data-root"))
        job = cluster.TrainGroup(str(self.store.root), load,
                                 ds.fingerprint, device=self.config.getoption("--device"),
                                 threads=torch_threads() if local else 0)
        write = _writer(self.config)

        def say(queued, running, done, elapsed):
            total = queued + running + done
            write(f"[{label}] jobs: {queued} queued, {running} running, {done}/{total} done, {elapsed:.0f}s",
                  force=done == total)
        try:
            self.cluster.train(runs, ds, job, say=say if write else None)
        except cluster.JobFailed as e:
            pytest.fail(f"{label}: {e}", pytrace=False)

    def _estimate(self, runs, ds, label: str) -> None:
        """Plan `runs` with the epoch times of harness.plan's cost model (nothing trains)."""
        from harness import plan

        self._plan(runs, label, lambda group: (plan.epoch_seconds(group[0], ds, len(group)), plan.DEVICE, ""))

    def _rehearse(self, runs, ds, label: str) -> None:
        """Plan `runs` with epoch times measured on the device (`_time`). A group that does not fit
        the device fails here, before any real training."""
        self._plan(runs, label, lambda group: self._time(group, ds))

    def _time(self, group, ds) -> tuple[float, str, str]:
        """(seconds per epoch, device, note) of `group` from DRY_STEPS steps and one evaluation on the
        device (harness.core.epoch_seconds), outside the store; a group over the memory budget times
        its first sub-batch and scales by runs."""
        import torch

        from harness.cnn import CNNConfig, CNNGroup
        from harness.core import epoch_seconds
        from harness.train import Group

        cnn = isinstance(group[0], CNNConfig)
        parts = self.store.sub_batches(group, ds, self.device)
        per_epoch = epoch_seconds((CNNGroup if cnn else Group)(parts[0], ds, self.device, torch.float32), DRY_STEPS)
        note = f", in {len(parts)} sub-batches (the first timed, scaled by runs)" if len(parts) > 1 else ""
        return per_epoch * len(group) / len(parts[0]), self.device, note

    def _plan(self, runs, label: str, timed) -> None:
        """Record each group of `runs` (one per shape; once per sweep and process) with its seconds
        per epoch from `timed(group) -> (seconds, device, note)` against its epoch budget."""
        if label in self._memo.setdefault("planned", set()):
            return
        self._memo["planned"].add(label)
        from harness.cnn import CNNConfig
        from harness.store import by_shape

        for group in by_shape(runs):
            c = group[0]
            cnn = isinstance(c, CNNConfig)
            per_epoch, device, note = timed(group)
            budget = c.epochs if cnn else c.max_epochs
            shape = (f"CNN {c.channels} filters" if cnn else f"MLP {c.depth}x{c.width}") + f", n {c.n_train}{note}"
            _PLAN_PENDING.append({"sweep": label.split(",")[0], "group": f"{len(group)} models, {shape}",
                                  "device": device, "s_per_epoch": per_epoch, "budget_epochs": budget,
                                  "hours": per_epoch * budget / 3600})

    def figure(self, tier: str, dataset: str, name: str) -> Path:
        """Where a claim draws a figure: beside the report for base seed 0 on the CPU, else in a
        subfolder (base-seed-K, and the device type off the CPU), so runs never overwrite each other."""
        folder = self.report_dir / tier / dataset
        base = self.config.getoption("--base-seed")
        device = self.config.getoption("--executor") if _remote(self.config) else torch_device_type(self.device)
        folder = folder / f"base-seed-{base}" if base else folder
        return (folder / device if device != "cpu" else folder) / name

    @functools.cached_property
    def _session(self) -> dict:
        if _remote(self.config):  # the jobs' devices are in runs_trained_with
            return {**provenance("cpu", self.config.getoption("--base-seed"), self.config.getoption("--no-cache")),
                    "device": _device_label(self.config), "precision": "the jobs' (see runs_trained_with)"}
        return provenance(self.device, self.config.getoption("--base-seed"), self.config.getoption("--no-cache"))

    @property
    def provenance(self) -> dict:
        """What made this session's verdicts, recorded in every report row: the session, and how the
        runs it has read or trained so far were trained."""
        return {**self._session, "runs_trained_with": sorted(self.trained_with)}


def provenance(device: str, base_seed: int, no_cache: bool = False) -> dict:
    import torch

    dev = torch.device(device)
    name = f"cuda ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else dev.type
    return {"base_seed": base_seed, "device": name,
            "precision": "float32, TF32 matmuls and convolutions" if dev.type == "cuda" else "float32",
            "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
            "training_code": {"mlp": code_fingerprint(MLP_CODE), "cnn": code_fingerprint(CNN_CODE)},
            "git": _git_commit(), "store": "off (--no-cache)" if no_cache else "on"}


def _git_commit() -> str | None:
    """HEAD of the checkout, '+dirty' when its code differs from it (reports written by the claims
    themselves do not count); None outside git."""
    code = ["harness", "claims", "conftest.py", "pyproject.toml"]
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", *code],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def _writer(config):
    """write(line, force=False): a progress line on the terminal, past output capture, throttled to
    one every 10 s (60 s under -q) unless forced; None under -qq."""
    verbosity = config.getoption("verbose")
    if verbosity < -1:
        return None
    every = 60.0 if verbosity < 0 else 10.0
    capman = config.pluginmanager.getplugin("capturemanager")
    worker = getattr(config, "workerinput", {}).get("workerid", "")
    last = [time.perf_counter(), "\n"]  # the first line starts below pytest's file name

    def write(line: str, force: bool = False):
        now = time.perf_counter()
        if now - last[0] < every and not force:
            return
        text = f"{last[1]}{'[' + worker + '] ' if worker else ''}{line}\n"
        last[:] = now, ""
        with capman.global_and_fixture_disabled():
            sys.stderr.write(text)
            sys.stderr.flush()
    return write


def _progress(config, label: str):
    """Progress lines (run, epoch, fitted, elapsed) on the terminal, past output capture, throttled:
    every 10 s, every 60 s under -q, never under -qq."""
    write = _writer(config)
    if write is None:
        return None

    def show(epoch, max_epochs, fitted, models, elapsed):
        write(f"[{label}] epoch {epoch}/{max_epochs}, {fitted}/{models} models at 100% train accuracy, {elapsed:.0f}s",
              force=epoch == max_epochs or fitted == models)
    return show


@pytest.fixture(scope="session")
def claims(request, tmp_path_factory) -> Claims:
    config = request.config
    if config.getoption("--no-cache"):
        shared = tmp_path_factory.getbasetemp()
        if hasattr(config, "workerinput"):
            shared = shared.parent  # the folder all xdist workers of this run share
        return Claims(request.session, shared / "claims-store")
    return Claims(request.session, Path(config.getoption("--store")))


@pytest.fixture
def record_verdict(request, claims):
    """record_verdict(claim, verdict, tier=, dataset=, role=, note=, compute_s=, claim_outcome=) adds a
    report row: the verdict, its three-way outcome and the session's provenance (base seed, seeds,
    device, precision, torch, code and git identity)."""
    def record(claim, verdict, *, tier, dataset, role="claim", note="", compute_s=0.0, claim_outcome=None):
        module = request.node.path.relative_to(ROOT).as_posix()
        prov = {**claims.provenance, "code": report.verdict_fingerprint(module)}
        first = prov["base_seed"] * SEED_STRIDE
        row = {"claim": claim, "test": request.node.name, "module": module, "role": role, "tier": tier,
               "dataset": dataset,
               "method": verdict.test, "statistic": verdict.statistic, "p_value": verdict.p_value,
               "p_reverse": verdict.p_reverse, "alpha": verdict.alpha, "effect": verdict.effect,
               "effect_name": verdict.effect_name, "interval": list(verdict.interval),
               "min_effect": verdict.min_effect, "n_seeds": verdict.n, "passed": verdict.passed,
               "verdict": verdict.outcome, "claim_outcome": claim_outcome, "note": note,
               "compute_s": round(compute_s, 2), "seeds": [first, first + verdict.n - 1],
               "provenance": prov, "details": verdict.details}
        request.node.user_properties.append(("claim_row", json.dumps(row)))
    return record


@pytest.fixture
def decide(request, claims, record_verdict):
    """decide(claim, verdict, control, tier=, dataset=, note=, control_note=, compute_s=, parts=(),
    figures={}) records the claim's verdict, any further (role, verdict) parts it needs and its
    negative control, draws its figures ({file name: plot(path)}), then ends the test by
    harness.decision.conclude: a passing control, or an outcome the strict xfail (marker
    `expect_outcome`) does not expect, fails it outright; a claim that does not hold raises
    AssertionError, what a strict xfail expects."""
    def run(claim, verdict, control, *, tier, dataset, note, control_note, compute_s=0.0, parts=(), figures=None):
        record_verdict(claim, verdict, tier=tier, dataset=dataset, note=note, compute_s=compute_s,
                       claim_outcome=decision.claim_outcome(verdict, parts))
        for role, part in parts:
            record_verdict(claim, part, tier=tier, dataset=dataset, role=role)
        record_verdict(claim, control, tier=tier, dataset=dataset, role="negative control", note=control_note)
        claims.draw(tier, dataset, figures or {})
        expected = request.node.get_closest_marker("expect_outcome")
        decision.conclude(claim, verdict, control, parts=parts, expected=expected.args if expected else None,
                          note=note, control_note=control_note)
    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the dry-run groups a test trained to its report, so they reach the controlling process."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and _PLAN_PENDING:
        rep.user_properties += [("dry_run_group", json.dumps(g)) for g in _PLAN_PENDING]
        _PLAN_PENDING.clear()


def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    _PLAN.extend(json.loads(v) for name, v in report.user_properties if name == "dry_run_group")
    wasxfail = hasattr(report, "wasxfail")
    outcome = ("xfailed" if report.skipped else "xpassed") if wasxfail else report.outcome
    for name, value in report.user_properties:
        if name == "claim_row":
            row = json.loads(value)
            row.update(pytest=outcome, wall_s=round(report.duration, 2))
            _ROWS.append(row)


def pytest_terminal_summary(terminalreporter, config):
    if hasattr(config, "workerinput"):
        return
    if _PLAN:
        terminalreporter.section("dry run: plan")
        terminalreporter.write_line(dry_run_plan(_PLAN))
    if not _ROWS:
        return
    terminalreporter.section("claims")
    terminalreporter.write_line(report.table(_ROWS))
    for path in report.write(_ROWS, Path(config.getoption("--report-dir"))):
        terminalreporter.write_line(f"wrote {path}")


def dry_run_plan(groups: list[dict]) -> str:
    """Markdown: each timed group, its device-hours for the whole epoch budget, per sweep and in
    total. An upper bound on training (runs that fit early leave their batch), without sharpness."""
    lines = ["| sweep | group | device | s per epoch | epoch budget | device-hours |", "|---|---|---|---|---|---|"]
    per_sweep: dict[str, float] = {}
    for g in groups:
        lines.append(f"| {g['sweep']} | {g['group']} | {g['device']} | {g['s_per_epoch']:.2f} | {g['budget_epochs']} "
                     f"| {g['hours']:.2f} |")
        per_sweep[g["sweep"]] = per_sweep.get(g["sweep"], 0.0) + g["hours"]
    lines += ["", "| sweep | device-hours |", "|---|---|"]
    lines += [f"| {name} | {hours:.2f} |" for name, hours in per_sweep.items()]
    lines += [f"| **total** | **{sum(per_sweep.values()):.2f}** |", "",
              "An upper bound for training: every run trains to its epoch budget, while runs that fit early "
              "leave their batch; the sharpness measurement (C3) is not included."]
    if any("estimate" in g["device"] for g in groups):
        lines.append("Estimated, not measured: harness/plan.py's cost model of one H200 (calibrated on three measured "
                     "groups, within a quarter of the dry run's groups of width 2,048 and more); measure with "
                     "--dry-run on the GPU.")
    return "\n".join(lines)
