"""The pytest plugin of the claims suite: its options, markers and fixtures, and thin hooks that hand
the work to the modules that own it (session, decision, report, plan).

    pytest claims -m smoke --dataset fashion-mnist     # minutes on a laptop CPU
    pytest claims -m full -n 4                         # the paper's scale, on GPUs

Loaded by `-p harness.plugin` (pyproject.toml's addopts, so a source tree needs no install) and, once
installed, by its `pytest11` entry point of the same name. Full-tier tests run only when `full` is
named in the `-m` expression (they cost GPU-hours); any other selection, or none, deselects them.
Claim tests decide with the `decide` fixture, which records each verdict's report rows and ends the
test (harness.decision); the controlling process (also under pytest-xdist) prints the rows as a
table and merges them into reports/<tier>/<dataset>/, keyed by base seed and device.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import pytest

from . import cluster, data, decision, plan, report
from .provenance import ROOT, design_fingerprint, verdict_fingerprint
from .rows import Row
from .session import SEED_STRIDE, Options, Session

SESSION = pytest.StashKey[Session]()
CPU_GUARD = pytest.StashKey[bool]()  # the full tier was asked for on a CPU without --device cpu: priced, not trained
ROW, PLAN_GROUP = "claim_row", "plan_group"  # user_properties that carry rows and plan groups to the controller


def pytest_addoption(parser):
    g = parser.getgroup("claims", "claims suite (Deep Nets Don't Learn via Memorization)")
    g.addoption(
        "--dataset",
        default=os.environ.get("CLAIMS_DATASET"),
        help=f"dataset for every claim, one of {', '.join(data.SPECS)} (env CLAIMS_DATASET); "
        "default: each claim's dataset in the paper (MNIST, CIFAR-10 for C4)",
    )
    g.addoption(
        "--data-root",
        default=os.environ.get("CLAIMS_DATA_ROOT"),
        help=f"folder with dataset files (env CLAIMS_DATA_ROOT); also searched: {data.DEFAULT_DATA_ROOT} "
        f"and, for Fashion-MNIST, {data.DEBIAN_FASHION_MNIST}",
    )
    g.addoption("--device", default="auto", help="torch device to train on: auto (CUDA if present), cpu, cuda, cuda:1")
    g.addoption("--seeds", type=int, default=None, help="seeds per condition (default: the tier's, 8; C1's smoke 5)")
    g.addoption(
        "--base-seed",
        type=int,
        default=0,
        help=f"use the K-th disjoint set of seeds (K*{SEED_STRIDE} + 0..N-1), to check that verdicts are robust",
    )
    g.addoption("--report-dir", default=str(ROOT / "reports"), help="where claims.json/.md and figures go")
    g.addoption(
        "--store",
        default=os.environ.get("CLAIMS_STORE", str(ROOT / ".claims-store")),
        help="result store of finished runs (env CLAIMS_STORE)",
    )
    g.addoption(
        "--no-cache",
        action="store_true",
        help="ignore the result store: train everything again (workers still share within the run)",
    )
    g.addoption(
        "--dry-run",
        action="store_true",
        help=f"time a call of {plan.DRY_STEPS} SGD steps, a longer one and one evaluation of each selected "
        "group on the device (outside the store), end every test as skipped (no verdict) and print a "
        "plan: device-hours for the whole epoch budget, per sweep and in total",
    )
    g.addoption(
        "--plan",
        action="store_true",
        help="train nothing: estimate each selected group's time on one H200 from a cost model "
        "(harness/plan.py), end every test as skipped (no verdict) and print the plan of "
        "device-hours, labelled an estimate",
    )
    g.addoption(
        "--memory-budget",
        type=float,
        default=None,
        metavar="GiB",
        help="device memory a training group may take; a larger group trains in sub-batches of runs (same "
        "numbers). Default: 90%% of the GPU's free memory, no limit on the CPU",
    )
    g.addoption(
        "--executor",
        default=os.environ.get("CLAIMS_EXECUTOR", "inline"),
        choices=("inline", *cluster.BACKENDS),
        help="who trains each group the store lacks: inline (this process, the default), or a job of the "
        "scheduler: slurm, local (processes on this machine), auto (Slurm where present); the result "
        "store must be on a filesystem the jobs share (env CLAIMS_EXECUTOR)",
    )
    g.addoption(
        "--executor-config",
        default=os.environ.get("CLAIMS_EXECUTOR_CONFIG"),
        metavar="TOML",
        help="scheduler settings (partition, gpus_per_job, cpus_per_job, mem_gb, timeout_min, poll_s, folder, "
        "slurm_extra) from a TOML file (env CLAIMS_EXECUTOR_CONFIG)",
    )
    g.addoption(
        "--executor-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one scheduler setting, overriding the file's, e.g. partition=gpu or timeout_min=720 (repeatable)",
    )


def options(config) -> Options:
    o = config.getoption
    return Options(
        dataset=o("--dataset"),
        data_root=o("--data-root"),
        device=o("--device"),
        seeds=o("--seeds"),
        base_seed=o("--base-seed"),
        report_dir=Path(o("--report-dir")),
        store=Path(o("--store")),
        no_cache=o("--no-cache"),
        dry_run=o("--dry-run"),
        plan=o("--plan"),
        memory_budget=o("--memory-budget"),
        executor=o("--executor"),
        executor_config=o("--executor-config"),
        executor_options=tuple(o("--executor-option")),
    )


def pytest_configure(config):
    # The tiers, registered here only; --strict-markers (pyproject.toml) makes any other marker an error.
    config.addinivalue_line("markers", "smoke: small claim variant, minutes on 2 CPU cores (CI regression check)")
    config.addinivalue_line("markers", "full: claim at the paper's scale; GPU-hours, selected only by -m full")
    config.addinivalue_line("markers", "slow: harness test that takes more than a few seconds")
    config.addinivalue_line(
        "markers",
        "expect_outcome({dataset: outcomes}, because=...): the outcomes (contradicted, "
        "absent, inconclusive) a claim was measured to have at smoke scale per dataset; "
        "there it expects one of them (xfail), any other outcome fails",
    )
    try:
        options(config).check()
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    if not hasattr(config, "workerinput") and full_tier_on_unasked_cpu(options(config), config.getoption("markexpr")):
        config.option.plan = True  # xdist hands the controller's options to its workers
        config.stash[CPU_GUARD] = True
    workers = getattr(config, "workerinput", {}).get("workercount")
    if workers:  # xdist workers share the cores instead of each taking all of them
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(workers)))
    if not hasattr(config, "workerinput"):  # the controlling process gathers the rows
        config.pluginmanager.register(Reporter(config), "claims-reporter")


def names_full(markexpr: str | None) -> bool:
    """Whether a `-m` expression names the full tier (-m full, -m "smoke or full", ...)."""
    return "full" in re.findall(r"\w+", markexpr or "")


def full_tier_on_unasked_cpu(o: Options, markexpr: str | None, cuda: bool | None = None) -> bool:
    """Whether `-m` names the full tier (GPU-hours at the paper's scale) and it would train on the CPU
    only because --device auto found no GPU: then every test is priced as under --plan and the session
    ends with a usage error that gives the estimate for this CPU (`Reporter`). `--device cpu` trains
    it on the CPU anyway; --plan, --dry-run and scheduler jobs (which find their own devices) never stop."""
    if not names_full(markexpr) or o.plan or o.dry_run or o.device != "auto" or o.remote:
        return False
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
    return not cuda


def cpu_flops(seconds: float = 0.3) -> float:
    """Float32 matrix-product FLOP/s of this process's CPU threads, measured for about `seconds`."""
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b  # warm up
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        done += 1
    return 2 * 1024**3 * done / (time.perf_counter() - t0)


def pytest_collection_modifyitems(config, items):
    if names_full(config.getoption("markexpr")):
        return  # -m full, -m "smoke or full", ...: the markers decide
    full = [i for i in items if i.get_closest_marker("full")]
    if full:  # the paper-scale tier runs only when asked for
        config.hook.pytest_deselected(items=full)
        items[:] = [i for i in items if not i.get_closest_marker("full")]


def pytest_report_header(config):
    o = options(config)
    expr = config.getoption("markexpr") or "all but full (default)"
    guard = ["claims: no GPU found (--device auto): the full tier is priced, not trained (--device cpu trains it here)"]
    return (guard if config.stash.get(CPU_GUARD, False) else []) + [
        f"claims: -m {expr!r}; dataset {o.dataset or 'paper default per claim'}; device {o.device_label()}; "
        f"{o.seeds or 'the tier default'} seeds per condition, base seed {o.base_seed}",
        f"claims: store {'off (--no-cache)' if o.no_cache else o.store}; reports {o.report_dir}",
    ]


@pytest.fixture(scope="session")
def claims(request, tmp_path_factory) -> Session:
    """The session object of the claims (harness.session.Session)."""
    config = request.config
    o = options(config)
    store = o.store
    if o.no_cache:
        store = tmp_path_factory.getbasetemp()
        if hasattr(config, "workerinput"):
            store = store.parent  # the folder all xdist workers of this run share
        store = store / "claims-store"

    def stop(reason):
        request.session.shouldstop = reason

    session = Session(o, store, write=writer(config), stop=stop)
    config.stash[SESSION] = session
    return session


@pytest.fixture
def decide(request, claims):
    """decide(claim, verdict, control, tier=, dataset=, note=, control_note=, compute_s=, parts=(),
    gates=(), figures={}) records the claim's verdict, any further (role, verdict) parts it needs,
    the gates of its design and its negative control as report rows, draws its figures ({file name:
    plot(path)}), then ends the test by harness.decision.conclude, with the outcomes recorded for
    its dataset (marker `expect_outcome`)."""

    def run(
        claim, verdict, control, *, tier, dataset, note, control_note, compute_s=0.0, parts=(), gates=(), figures=None
    ):
        trained, planned = claims.seeds_asked
        if trained < planned:  # a wave before the last (pytest_pyfunc_call)
            if not decision.futile(verdict, parts):
                raise NextWave
            gates = (*gates, decision.stopped(trained, planned))
        module = request.node.path.relative_to(ROOT).as_posix()
        marker = request.node.get_closest_marker("expect_outcome")
        expected = marker.args[0].get(dataset) if marker else None
        rows = decision.decision_rows(
            claim,
            verdict,
            control,
            parts=parts,
            gates=gates,
            test=request.node.name,
            module=module,
            tier=tier,
            dataset=dataset,
            note=note,
            control_note=control_note,
            compute_s=compute_s,
            first_seed=claims.first_seed,
            expected=expected,
            provenance={
                **claims.provenance,
                "code": verdict_fingerprint(module, tier),
                "design": design_fingerprint(module, tier),
            },
        )
        request.node.user_properties.extend((ROW, r.to_json()) for r in rows)
        claims.draw(tier, dataset, figures or {})
        decision.conclude(
            claim,
            verdict,
            control,
            parts=parts,
            gates=gates,
            expected=expected,
            dataset=dataset,
            note=note,
            control_note=control_note,
        )

    return run


class NextWave(Exception):
    """Raised by `decide` after a wave whose seeds lean toward the claim: train the next wave."""


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run a claim test (one that uses `decide`) once per wave of its tier's seeds, until `decide`
    ends it (harness.session, Waves); a plan or dry run prices every wave at once."""
    session = pyfuncitem.config.stash.get(SESSION, None)
    if "decide" not in pyfuncitem.fixturenames or session is None:
        return None
    args = {name: pyfuncitem.funcargs[name] for name in inspect.signature(pyfuncitem.obj).parameters}
    session.wave = math.inf if session.pricing else 1
    try:
        while True:
            session.seeds_asked = (0, 0)
            try:
                pyfuncitem.obj(**args)
                return True
            except NextWave:
                session.wave += 1
    finally:
        session.wave = 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach the plan groups a test priced to its report, so they reach the controlling process."""
    outcome = yield
    rep = outcome.get_result()
    session = item.config.stash.get(SESSION, None)
    if rep.when == "call" and session is not None and session.planned:
        rep.user_properties += [(PLAN_GROUP, json.dumps(g.as_dict())) for g in session.planned]
        session.planned.clear()


class Reporter:
    """The controlling process's collector: the rows and plan groups of every test (from xdist
    workers too), printed and written at the end."""

    def __init__(self, config):
        self.config, self.rows, self.plan = config, [], []

    def pytest_runtest_logreport(self, report):
        if report.when != "call":
            return
        wasxfail = hasattr(report, "wasxfail")
        outcome = ("xfailed" if report.skipped else "xpassed") if wasxfail else report.outcome
        for name, value in report.user_properties:
            if name == PLAN_GROUP:
                self.plan.append(plan.PlanGroup(**json.loads(value)))
            elif name == ROW:
                row = Row.from_dict({**json.loads(value), "pytest": outcome, "wall_s": round(report.duration, 2)})
                self.rows.append(row)

    def pytest_terminal_summary(self, terminalreporter):
        if self.plan:
            terminalreporter.section("dry run: plan")
            terminalreporter.write_line(plan.table(self.plan))
        if self.config.stash.get(CPU_GUARD, False):
            terminalreporter.section("the full tier needs a GPU", red=True)
            terminalreporter.write_line(self.cpu_estimate())
        if not self.rows:
            return
        terminalreporter.section("claims")
        terminalreporter.write_line(report.table(self.rows))
        walls = {r.test: r.wall_s or 0 for r in self.rows}  # a test's rows share its wall time
        terminalreporter.write_line(
            f"{len(walls)} claim tests in {sum(walls.values()):.0f} s; made by: {report.describe_run(self.rows)}"
        )
        for path in report.write(self.rows, Path(self.config.getoption("--report-dir"))):
            terminalreporter.write_line(f"wrote {path}")

    def cpu_estimate(self) -> str:
        """What the full tier would cost on this CPU: the plan's H200-hours scaled by the cost model's
        MLP rate over this CPU's measured matrix-product rate (the CNN runs slower still on a CPU)."""
        h200 = sum(g.hours for g in self.plan)
        rate = cpu_flops()
        cpu = h200 * plan.FLOPS["mlp"] / rate
        return (
            f"-m full selects the paper-scale tier, and --device auto found no GPU, so it would train on this "
            f"CPU: {h200:.1f} H200-hours by the plan above, and at the {rate / 1e9:.0f} GFLOP/s of float32 "
            f"matrix products measured here about {cpu:,.0f} hours ({cpu / 24:,.0f} days) on this machine. "
            "Nothing was trained. Run it on GPUs (docs/full-tier.md), or pass --device cpu to train it here "
            "anyway; --plan prices it without this stop."
        )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """End a full tier that was priced instead of trained on an unasked CPU with a usage error."""
    if session.config.stash.get(CPU_GUARD, False) and not session.config.option.collectonly:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR


def writer(config):
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
