"""Training groups as jobs of a scheduler: submitit (Slurm on a cluster, local processes elsewhere).

    pytest claims -m full --executor slurm --executor-option partition=gpu --executor-option timeout_min=720

Without `--executor` (or with `--executor inline`) the pytest process trains every group itself.
With it, each group the result store lacks (the runs of one shape, `Store.missing_groups`) becomes
one job that trains the group and writes its runs into the store; the test waits, printing how many
of its jobs are queued, running and done, then reads the runs and decides as it would without a
scheduler. The store, on a filesystem the jobs and the pytest process share, is the only channel.

Each submitted group leaves a marker, `<store>/jobs/<group key>.json` (scheduler, job id, logs),
written under the group's submit lock. A second pytest process (or a rerun) that needs a group whose
job is still queued or running waits for that job instead of submitting another; a group whose runs
are stored is never submitted. A job that ends without its runs in the store (a crash, a cancel, a
time limit it could not requeue from) fails the test with its log's path and last lines; the next
run submits it again, and the group resumes from its checkpoint (written every 5 minutes). On Slurm,
a job that reaches its time limit requeues itself (submitit's checkpoint protocol) and resumes the same way.

Settings (`Scheduler`, defaults for one GPU per group) come from a TOML file (`--executor-config`)
and `--executor-option key=value`, which wins.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .core import atomic_write
from .store import Config, Store

BACKENDS = ("local", "slurm", "auto")  # auto: Slurm where sbatch exists, else local processes
QUEUED = {"PENDING", "REQUEUED", "CONFIGURING", "SUSPENDED", "RESIZING", "READY"}  # Slurm states
RUNNING = {"RUNNING", "COMPLETING"}  # Slurm's, and submitit's for a local process
UNKNOWN_GRACE_S = 600  # Slurm's accounting may not know a job this soon after its submission


class JobFailed(RuntimeError):
    """A job ended without writing its group's runs into the store."""


@dataclass(frozen=True)
class Scheduler:
    """Where and how groups run. Sizes are per job, i.e. per group."""

    backend: str = "local"
    folder: str = ""  # submitit's files and the job logs; default <store>/jobs
    partition: str = ""  # Slurm partition; empty: the cluster's default
    gpus_per_job: int = 1
    cpus_per_job: int = 8
    mem_gb: int = 64
    timeout_min: int = 24 * 60  # a job cut at this limit requeues on Slurm and resumes from its checkpoint
    poll_s: float = 10.0  # seconds between looks at the store and the scheduler
    slurm_extra: str = ""  # more sbatch settings, JSON, e.g. '{"account": "lab", "qos": "high"}'

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"backend={self.backend!r}: choose one of {', '.join(BACKENDS)}")
        for name in ("cpus_per_job", "mem_gb", "timeout_min"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be at least 1")
        if self.gpus_per_job < 0 or self.poll_s <= 0:
            raise ValueError("gpus_per_job must be >= 0 and poll_s > 0")
        try:
            if not isinstance(json.loads(self.slurm_extra or "{}"), dict):
                raise ValueError
        except ValueError:
            raise ValueError(
                f'slurm_extra={self.slurm_extra!r} must be a JSON object, e.g. \'{{"account": "lab"}}\''
            ) from None


def settings(backend: str, config_file: str | None = None, options: list[str] = ()) -> Scheduler:
    """The Scheduler for `backend` from a TOML file (top level or a [scheduler] table) and
    'key=value' options, which override it. Unknown keys and bad values raise ValueError."""
    values: dict = {}
    if config_file:
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            raise ValueError(
                "--executor-config needs Python 3.11 or later (tomllib); give the settings as "
                "--executor-option key=value instead"
            ) from None

        try:
            table = tomllib.loads(Path(config_file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ValueError(f"--executor-config {config_file}: {e}") from None
        values.update(table.get("scheduler", table))
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            raise ValueError(f"--executor-option {option!r}: write key=value, e.g. partition=gpu")
        values[key.strip()] = value.strip()
    fields = {f.name: f for f in dataclasses.fields(Scheduler)}
    unknown = sorted(set(values) - set(fields) - {"backend"})
    if unknown:
        known = ", ".join(f for f in fields if f != "backend")
        raise ValueError(f"unknown scheduler setting(s) {', '.join(unknown)}; known: {known}")
    typed = {}
    for key, value in values.items():
        kind = {"int": int, "float": float}.get(fields[key].type, str) if key in fields else str
        try:
            typed[key] = kind(value)
        except ValueError:
            raise ValueError(f"scheduler setting {key}={value!r} must be a number") from None
    return Scheduler(**{**typed, "backend": backend})


@dataclass(frozen=True)
class TrainGroup:
    """What a job runs: load the dataset, train the group's runs into the store (`get_or_train`,
    so a group already trained by someone else is only read), on `device` ('auto': CUDA if the job
    has a GPU). Pickled by submitit; holds only names and paths."""

    store: str
    load: Callable  # () -> Dataset, e.g. functools.partial(data.load, "mnist", None)
    fingerprint: str  # the dataset the submitting process has: a job that sees other files stops
    device: str = "auto"
    threads: int = 0  # torch threads in the job; 0: torch's default

    def __call__(self, runs: list[Config]) -> int:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        ds = self.load()
        if ds.fingerprint != self.fingerprint:
            raise RuntimeError(
                f"the job sees dataset {ds.name} from {ds.source} with fingerprint {ds.fingerprint}, "
                f"the submitting process {self.fingerprint}: give both the same data files "
                "(--data-root on a shared filesystem)"
            )
        device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device
        print(f"training {len(runs)} runs of one shape on {device} into {self.store}", flush=True)
        Store(Path(self.store)).get_or_train(runs, ds, device, progress=_log_progress())
        return len(runs)

    def checkpoint(self, runs: list[Config]):
        """Called by submitit when the job reaches its time limit or is preempted: run the same group
        again, which resumes from the group's checkpoint."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, runs)


def _log_progress(every_s: float = 60.0):
    last = [0.0]

    def show(epoch, max_epochs, fitted, models, elapsed):
        if elapsed - last[0] >= every_s or epoch == max_epochs:
            last[0] = elapsed
            print(f"epoch {epoch}/{max_epochs}, {fitted}/{models} models fitted, {elapsed:.0f}s", flush=True)

    return show


@dataclass
class _Job:
    key: str
    runs: list
    marker: dict  # backend, job_id, folder, host, submitted
    handle: object = None  # the submitit Job, when this process submitted it


class Cluster:
    """Sends a sweep's missing groups to the scheduler and waits until the store has them."""

    def __init__(self, scheduler: Scheduler, store: Store):
        import submitit  # noqa: F401  (fail here, with the usage error conftest makes of it)

        self.scheduler, self.store = scheduler, store
        self.folder = Path(scheduler.folder) if scheduler.folder else store.root / "jobs"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._mine: dict[str, object] = {}  # group key -> submitit Job submitted by this process

    def executor(self):
        import submitit

        s = self.scheduler
        ex = submitit.AutoExecutor(folder=self.folder, cluster={"auto": None}.get(s.backend, s.backend))
        params = dict(
            name="claims-group",
            timeout_min=s.timeout_min,
            gpus_per_node=s.gpus_per_job,
            cpus_per_task=s.cpus_per_job,
            mem_gb=s.mem_gb,
        )
        if s.partition:
            params["slurm_partition"] = s.partition
        if s.slurm_extra:
            params["slurm_additional_parameters"] = json.loads(s.slurm_extra)
        ex.update_parameters(**params)
        return ex

    def train(
        self, runs: list[Config], ds, job: TrainGroup, say: Callable[[int, int, int, float], None] | None = None
    ) -> int:
        """Make sure the store holds every run of `runs`: submit each missing group (or join the job
        another process submitted for it), wait, raise JobFailed if a job ends without its runs.
        `say(queued, running, done, elapsed_s)` reports progress. Returns the number of groups."""
        jobs = [self._submit_or_join(key, group, ds, job) for key, group in self.store.missing_groups(runs, ds)]
        if not jobs:
            return 0  # every run is stored: nothing to wait for (and nothing to report)
        t0 = time.perf_counter()
        while True:
            states = [self._state(j, ds) for j in jobs]
            if say is not None:
                say(states.count("queued"), states.count("running"), states.count("done"), time.perf_counter() - t0)
            if all(s == "done" for s in states):
                return len(jobs)
            time.sleep(self.scheduler.poll_s)

    def _submit_or_join(self, key: str, group: list, ds, job: TrainGroup) -> _Job:
        marker_path = self.folder / f"{key}.json"
        with self.store.lock(f"{key}.submit"):
            if key in self._mine:
                return _Job(key, group, json.loads(marker_path.read_text()), self._mine[key])
            if marker_path.exists():
                marker = json.loads(marker_path.read_text())
                if _foreign_state(marker) in ("queued", "running"):
                    return _Job(key, group, marker)  # queued or running for another process: wait for it
            ex = self.executor()
            handle = ex.submit(job, group)
            marker = {
                "backend": ex.cluster,
                "job_id": str(handle.job_id),
                "folder": str(self.folder),
                "host": socket.gethostname(),
                "submitted": time.time(),
                "runs": len(group),
            }
            atomic_write(marker_path, json.dumps(marker, indent=1).encode())
            self._mine[key] = handle
            return _Job(key, group, marker, handle)

    def _state(self, j: _Job, ds) -> str:
        """done (every run stored), queued or running; raises JobFailed when the job has ended
        without them."""
        if all(self.store.has(r, ds) for r in j.runs):
            return "done"
        state = _classify(j.handle.state, j.marker) if j.handle is not None else _foreign_state(j.marker)
        if state != "ended":
            return state
        if all(self.store.has(r, ds) for r in j.runs):  # it wrote them just now
            return "done"
        missing = sum(not self.store.has(r, ds) for r in j.runs)
        raise JobFailed(_failure(j.marker, missing, len(j.runs)))


def _classify(state: str, marker: dict) -> str:
    """queued, running or ended, from a scheduler's state name ('RUNNING', 'PENDING', 'FAILED',
    'CANCELLED by 123', ...); UNKNOWN counts as queued only shortly after the submission."""
    raw = str(state).split()[0].upper() if str(state).strip() else "UNKNOWN"
    if raw in RUNNING:
        return "running"
    if raw in QUEUED or (raw == "UNKNOWN" and time.time() - marker["submitted"] < UNKNOWN_GRACE_S):
        return "queued"
    return "ended"


def _foreign_state(marker: dict) -> str:
    """queued, running or ended: the state of a job another process submitted."""
    if marker["backend"] == "local":  # the job id is the pid of the job's process on the submitting host
        if marker["host"] != socket.gethostname():
            return "ended"  # a local job of another machine cannot be watched from here
        return "running" if _pid_alive(int(marker["job_id"])) else "ended"
    import submitit

    return _classify(submitit.SlurmJob(marker["folder"], marker["job_id"]).state, marker)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _failure(marker: dict, missing: int, total: int, lines: int = 15) -> str:
    """The message of a job that ended without its runs: log paths and the end of its error log."""
    folder, job_id = Path(marker["folder"]), marker["job_id"]
    err, out = folder / f"{job_id}_0_log.err", folder / f"{job_id}_0_log.out"
    tail = ""
    if err.exists():
        text = err.read_text(errors="replace").strip().splitlines()
        tail = "\n".join(text[-lines:])
    return (
        f"{marker['backend']} job {job_id} ended, but the result store lacks {missing} of its group's "
        f"{total} runs. Logs: {err} and {out}. Rerunning submits the group again (it resumes from its checkpoint)."
        + (f"\nLast lines of its error log:\n{tail}" if tail else "\nIts error log is empty or missing.")
    )
