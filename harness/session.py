"""What a claim test asks for, in one object per pytest process: its dataset, seeds and tier
settings, its sweeps trained once (or read from the result store, or priced by a plan), its figures,
and the provenance of its verdicts. The pytest plugin (harness.plugin) makes it from the options.

    trained = session.sweep("capacity", "smoke", "mnist", design)   # design(dataset) -> configs, nested
    trained.results                                                 # the same shape, a RunResult per config
    session.seeds("smoke")                                          # the --base-seed set of seeds

Seeds: `--base-seed K` selects seeds K * SEED_STRIDE + 0..N-1, disjoint sets per K, so that a
verdict can be checked on other seed sets. Waves: a tier with `waves` W > 1 trains a claim's seeds in
W pre-registered waves, the first ceil(N w / W) seeds in wave w; the plugin runs a claim test once
per wave (`wave`), and its `decide` stops after any but the last wave where the claim's seeds so far
lean away from it (harness.decision.futile). A plan prices every wave.
Devices: `--device auto` takes CUDA where present, and under pytest-xdist worker gwK trains on GPU K
modulo the GPUs torch sees.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from . import cluster, data, plan
from .core import CheckpointSpaceError
from .kinds import kind_of
from .provenance import session_provenance
from .store import MemoryBudgetError, Store
from .tiers import TIERS

SEED_STRIDE = 10_000  # --base-seed K selects seeds K*SEED_STRIDE + 0..N-1: disjoint sets per K
Write = Callable[..., None]  # write(line, force=False): a progress line on the terminal


@dataclass(frozen=True)
class Options:
    """The claims suite's options (harness.plugin registers them; README, Options)."""

    dataset: str | None = None  # every claim's dataset; None: each claim's dataset in the paper
    data_root: str | None = None
    device: str = "auto"
    seeds: int | None = None  # seeds per condition; None: the tier's
    base_seed: int = 0
    report_dir: Path = Path("reports")
    store: Path = Path(".claims-store")
    no_cache: bool = False
    dry_run: bool = False
    plan: bool = False
    memory_budget: float | None = None  # GiB
    executor: str = "inline"
    executor_config: str | None = None
    executor_options: tuple[str, ...] = ()

    def check(self) -> None:
        """ValueError with the fix for an impossible option."""
        if self.dataset is not None and self.dataset not in data.SPECS:
            raise ValueError(f"--dataset {self.dataset!r} is unknown; choose one of {', '.join(data.SPECS)}")
        if not 2 <= (self.seeds or 2) < SEED_STRIDE:
            raise ValueError(
                f"--seeds must be in 2..{SEED_STRIDE - 1} (paired tests need several seeds; the paper used 5)"
            )
        if not 0 <= self.base_seed < 100_000:
            raise ValueError("--base-seed must be in 0..99999")
        if self.executor in ("inline", "local"):
            resolve_device(self.device)  # Slurm jobs resolve it where they run
        if self.executor != "inline":
            self.scheduler()

    @property
    def remote(self) -> bool:
        """Whether runs train in jobs on other machines (Slurm), whose device this process cannot see."""
        return self.executor in ("slurm", "auto")

    def scheduler(self) -> "cluster.Scheduler":
        """--executor's settings, or ValueError that says what is wrong."""
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise ValueError(
                f"--executor {self.executor} needs submitit: {sys.executable} -m pip install submitit"
            ) from None
        return cluster.settings(self.executor, self.executor_config, list(self.executor_options))

    def train_device(self) -> str:
        """The device this process trains on (also its dry runs); with Slurm jobs, the --device they get."""
        return self.device if self.remote else session_device(self.device)

    def device_label(self) -> str:
        return self.train_device() + ("" if self.executor == "inline" else f" in {self.executor} jobs")


def resolve_device(name: str) -> str:
    """`--device` as torch will use it: 'auto' is CUDA where present; ValueError for a device torch lacks."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"--device {name!r}: {e}") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: torch sees no CUDA device here; use --device cpu or auto")
    return name


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


@dataclass
class Trained:
    """A sweep's results: `results` has the shape of its design, a RunResult for each run config."""

    dataset: str  # the dataset's name
    ds: data.Dataset
    results: dict
    compute_s: float  # training seconds of its distinct runs


def configs(design):
    """The run configs of a design (a config, or a dict or list of designs, nested), in order."""
    if isinstance(design, dict | list):
        for part in design.values() if isinstance(design, dict) else design:
            yield from configs(part)
    else:
        yield design


def results(design, done: dict):
    """The design with each run config replaced by its result in `done`."""
    if isinstance(design, dict):
        return {k: results(v, done) for k, v in design.items()}
    if isinstance(design, list):
        return [results(v, done) for v in design]
    return done[design]


class Session:
    """What a claim test needs: its dataset, seeds and tier, the result store, progress output."""

    def __init__(
        self,
        options: Options,
        store_root: Path,
        write: Write | None = None,
        stop: Callable[[str], None] = lambda reason: None,
    ):
        """`write`: where progress lines go (None: nowhere); `stop(reason)`: end the pytest session
        after the current test (a dataset chosen for every claim is missing)."""
        self.options, self.write, self.stop = options, write, stop
        self.device = options.train_device()
        budget = options.memory_budget
        self.store = Store(store_root, memory_budget=None if budget is None else int(budget * 2**30))
        self.report_dir = Path(options.report_dir)
        self.cluster = None if options.executor == "inline" else cluster.Cluster(options.scheduler(), self.store)
        self.planned: list[plan.PlanGroup] = []  # plan groups of the running test, for the report
        self._data_errors: dict[str, str] = {}
        self._memo: dict = {}
        self.wave: float = 1  # the wave a claim test is in (harness.plugin); inf: the last, whatever the tier's
        self.seeds_asked = (0, 0)  # (seeds of this wave, seeds of all waves) at the last call of seeds()
        self.trained_with: set[str] = set()  # how the runs read or trained so far were trained

    def dataset_name(self, paper_default: str) -> str:
        return self.options.dataset or paper_default

    def dataset(self, name: str) -> data.Dataset:
        """The dataset, or a test failure with the DataError's instructions. A dataset chosen with
        --dataset applies to every claim, so its absence also stops the session; a claim's own paper
        default (CIFAR-10 for C4) fails only the tests that need it."""
        if name not in self._data_errors:
            try:
                return data.load(name, self.options.data_root)
            except data.DataError as e:
                self._data_errors[name] = str(e)
        if self.options.dataset == name:
            self.stop(f"dataset {name} unavailable (see the first failure)")
        pytest.fail(self._data_errors[name], pytrace=False)

    def tier(self, name: str):
        return TIERS[name]

    @property
    def first_seed(self) -> int:
        return self.options.base_seed * SEED_STRIDE

    def seeds(self, tier: str, default: int | None = None) -> list[int]:
        """The seeds of the --base-seed set that the current wave trains: of N = --seeds (or `default`,
        or the tier's number), the first ceil(N w / W) in wave w of the tier's W; all N in the last."""
        n = self.options.seeds or default or TIERS[tier].seeds
        waves = TIERS[tier].waves
        k = math.ceil(n * min(self.wave, waves) / waves)
        self.seeds_asked = (k, n)
        return list(range(self.first_seed, self.first_seed + k))

    @property
    def pricing(self) -> bool:
        """Whether sweeps are priced (--plan, --dry-run), not trained."""
        return self.options.plan or self.options.dry_run

    def sweep(self, label: str, tier: str, paper_dataset: str, design: Callable[[str], dict]) -> Trained:
        """A claim's sweep, trained (or read from the store) once per process for (label, tier).

        `design(dataset name)` gives the sweep's run configs as a dict whose values are configs or
        dicts or lists of them, nested; a config that appears more than once trains once. The
        dataset is --dataset, else the claim's `paper_dataset`."""

        def compute():
            name = self.dataset_name(paper_dataset)
            ds = self.dataset(name)
            runs = design(name)
            unique = list(dict.fromkeys(configs(runs)))
            noun = kind_of(unique[0]).noun
            k, n = self.seeds_asked
            wave = f", seeds 1-{k} of {n}" if k < n else ""
            done = dict(zip(unique, self.train(unique, ds, f"{label}, {tier}, {name}, {len(unique)} {noun}{wave}")))
            return Trained(name, ds, results(runs, done), sum(r.wall_s for r in done.values()))

        return self.memo((label, tier), compute)

    def memo(self, key, compute):
        """compute() once per process and wave for `key` (sweeps shared by several tests of a module)."""
        key = (key, self.wave)
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def train(self, runs, ds, label: str):
        """The results of `runs`: from the store, trained here or by the scheduler's jobs. Under --plan
        or --dry-run, the sweep's groups priced instead, and the test skipped (no verdict)."""
        if self.pricing:
            timed = (
                (lambda group: plan.estimated(group, ds))
                if self.options.plan
                else (lambda group: plan.measured(group, ds, self.device, self.store))
            )
            sweep = label.split(",")[0]
            self.memo(("planned", label), lambda: self.planned.extend(plan.plan_groups(runs, sweep, timed)))
            pytest.skip(
                f"plan: no verdict ({label}: estimated from the cost model, nothing trained)"
                if self.options.plan
                else f"dry run: no verdict ({label}: each group timed from a call of "
                f"{plan.DRY_STEPS} steps and a longer one)"
            )
        if self.cluster is not None:
            self._submit(runs, ds, label)
        try:
            done = self.store.get_or_train(runs, ds, self.device, progress=self._progress(label))
        except (MemoryBudgetError, CheckpointSpaceError) as e:  # before any training: say what to change
            pytest.fail(f"{label}: {e}", pytrace=False)
        # A stored run may come from another device, thread count or torch (numbers differ in the last
        # bits, then grow): say so in the report.
        self.trained_with |= {f"{r.info['device']}, {r.info['threads']} threads, torch {r.info['torch']}" for r in done}
        return done

    def _submit(self, runs, ds, label: str) -> None:
        """Have the scheduler train the groups the store lacks (harness/cluster.py), waiting with
        progress; a job that ends without its runs fails the test with its log."""
        import torch

        local = self.cluster.scheduler.backend == "local"
        load = functools.partial(data.load, ds.name, self.options.data_root)
        job = cluster.TrainGroup(
            str(self.store.root),
            load,
            ds.fingerprint,
            device=self.options.device,
            threads=torch.get_num_threads() if local else 0,
        )
        write = self.write

        def say(queued, running, done, elapsed):
            total = queued + running + done
            write(
                f"[{label}] jobs: {queued} queued, {running} running, {done}/{total} done, {elapsed:.0f}s",
                force=done == total,
            )

        try:
            self.cluster.train(runs, ds, job, say=say if write else None)
        except cluster.JobFailed as e:
            pytest.fail(f"{label}: {e}", pytrace=False)

    def _progress(self, label: str):
        """Progress lines (epoch, fitted, elapsed) through `write`, which throttles them."""
        write = self.write
        if write is None:
            return None

        def show(epoch, max_epochs, fitted, models, elapsed):
            write(
                f"[{label}] epoch {epoch}/{max_epochs}, {fitted}/{models} models at 100% train accuracy, "
                f"{elapsed:.0f}s",
                force=epoch == max_epochs or fitted == models,
            )

        return show

    def figure(self, tier: str, dataset: str, name: str) -> Path:
        """Where a claim draws a figure: beside the report for base seed 0 on the CPU, else in a
        subfolder (base-seed-K, and the device type off the CPU), so runs never overwrite each other."""
        import torch

        folder = self.report_dir / tier / dataset
        base = self.options.base_seed
        device = self.options.executor if self.options.remote else torch.device(self.device).type
        folder = folder / f"base-seed-{base}" if base else folder
        return (folder / device if device != "cpu" else folder) / name

    def draw(self, tier: str, dataset: str, figures: dict[str, Callable[[Path], None]]) -> None:
        """plot(path) for each figure {file name: plot}, once per process (tests that share a sweep
        share its figures)."""
        for name, plot in figures.items():
            path = self.figure(tier, dataset, name)
            self.memo(("figure", path), functools.partial(plot, path))

    @functools.cached_property
    def _session(self) -> dict:
        o = self.options
        if o.remote:  # the jobs' devices are in runs_trained_with
            return {
                **session_provenance("cpu", o.base_seed, o.no_cache),
                "device": o.device_label(),
                "precision": "the jobs' (see runs_trained_with)",
            }
        return session_provenance(self.device, o.base_seed, o.no_cache)

    @property
    def provenance(self) -> dict:
        """What made this session's verdicts, recorded in every report row: the session, and how the
        runs it has read or trained so far were trained."""
        return {**self._session, "runs_trained_with": sorted(self.trained_with)}
