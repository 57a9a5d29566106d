"""Result store: finished runs on disk, keyed by their config, the dataset and the harness version.

    store = Store(Path(".claims-store"))
    results = store.get_or_train(runs, ds, device="cpu")   # trains only what is missing

Two kinds of run share the store (harness.kinds): MLP runs (`train.RunConfig`) and CNN runs
(`cnn.CNNConfig`); both come back as `RunResult`. Keys also hash the code of the modules that
decide what a run computes (`code_fingerprint`), each kind over its own modules.
One run is two files, `<key>.npz` (per-epoch history) and `<key>.json` (config, scalars, the
npz's SHA-256); the JSON is written last and is the commit mark, both atomically (temp file +
rename). Training a group holds an exclusive lock on each of its runs (`holding`), so parallel
pytest-xdist workers whose requests share runs train each of them once and the others read it.
An entry that fails to parse or whose npz does not match its hash is reported and retrained.
Interrupted groups resume from `<group>.ckpt.npz`. Never pickle: JSON and npz only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from . import HARNESS_VERSION, code_fingerprint
from .core import Progress, RunResult, atomic_write, train_to_end
from .data import Dataset
from .kinds import KINDS, Config, kind_of

_CODE: dict[str, str] = {}  # kind -> the hash of its training code, filled as kinds are met


def _code(run: Config) -> str:
    """The training-code hash of the run's kind (computed once; a kind may register after import)."""
    if run.kind not in _CODE:
        _CODE[run.kind] = code_fingerprint(KINDS[run.kind].code)
    return _CODE[run.kind]


def run_key(run: Config, ds: Dataset) -> str:
    ident = {
        "config": run.key(),
        "dataset": ds.fingerprint,
        "harness": HARNESS_VERSION,
        "code": _code(run),
        "model": run.kind,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]


class MemoryBudgetError(RuntimeError):
    """Not even one run of a group fits the device's memory budget."""


class Store:
    def __init__(self, root: Path, memory_budget: int | None = None):
        """`memory_budget`: bytes a group may take on the device; None: 90% of a GPU's free memory
        when the group starts, no limit on the CPU. A group that needs more trains in sub-batches."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.memory_budget = memory_budget

    def load(self, run: Config, ds: Dataset) -> RunResult | None:
        """The stored result of `run`, or None when absent or corrupt (a corrupt entry is reported)."""
        key = run_key(run, ds)
        meta_path, npz_path = self.root / f"{key}.json", self.root / f"{key}.npz"
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            blob = npz_path.read_bytes()
            if hashlib.sha256(blob).hexdigest() != meta["npz_sha256"]:
                raise ValueError("history file does not match its recorded hash")
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                history = {m: z[m] for m in kind_of(run).metrics}
            if type(run)(**meta["config"]) != run:
                raise ValueError("stored config differs from the requested one")
            return RunResult(
                run,
                history,
                meta["fitted"],
                meta["epochs_to_fit"],
                meta["label_flip_rate"],
                meta["weight_norm"],
                meta["wall_s"],
                meta["info"],
                meta.get("measures", {}),
            )
        except (OSError, ValueError, KeyError, TypeError) as e:
            warnings.warn(f"result store: entry {key} is corrupt ({e}); it will be retrained", stacklevel=2)
            return None

    def save(self, result: RunResult, ds: Dataset) -> None:
        key = run_key(result.config, ds)
        buf = io.BytesIO()
        np.savez(buf, **result.history)
        blob = buf.getvalue()
        meta = {
            "config": result.config.key(),
            "kind": result.config.kind,
            "dataset": ds.name,
            "dataset_fingerprint": ds.fingerprint,
            "harness": HARNESS_VERSION,
            "code": _code(result.config),
            "fitted": result.fitted,
            "epochs_to_fit": result.epochs_to_fit,
            "label_flip_rate": result.label_flip_rate,
            "weight_norm": result.weight_norm,
            "wall_s": result.wall_s,
            "info": result.info,
            "measures": result.measures,
            "npz_sha256": hashlib.sha256(blob).hexdigest(),
        }
        atomic_write(self.root / f"{key}.npz", blob)
        atomic_write(self.root / f"{key}.json", json.dumps(meta, indent=1).encode())

    def has(self, run: Config, ds: Dataset) -> bool:
        """Whether `run` has a committed entry (its JSON), without reading or checking it."""
        return (self.root / f"{run_key(run, ds)}.json").exists()

    def missing_groups(self, runs: list[Config], ds: Dataset) -> list[tuple[str, list[Config]]]:
        """(group key, runs) of each batched group `get_or_train` would train now: the runs the store
        lacks, one group per shape. The key names the group's checkpoint file and its scheduler job."""
        return self._partition(runs, ds)[1]

    def _partition(self, runs, ds) -> tuple[dict, list[tuple[str, list[Config]]]]:
        """(the stored results among `runs`, the groups of the others)."""
        found = {r: self.load(r, ds) for r in dict.fromkeys(runs)}
        groups = by_shape([r for r, res in found.items() if res is None])
        return {r: res for r, res in found.items() if res is not None}, [(_group_key(g, ds), g) for g in groups]

    def get_or_train(
        self, runs: list[Config], ds: Dataset, device="cpu", *, progress: Progress | None = None
    ) -> list[RunResult]:
        """Results of `runs` in order; missing ones are trained together, one batched group per shape
        (MLP and CNN runs may be mixed: they never share a group)."""
        results, groups = self._partition(runs, ds)
        for _, group in groups:
            with self.holding(group, ds):
                for r in group:  # another worker may have trained them while we waited
                    if (res := self.load(r, ds)) is not None:
                        results[r] = res
                missing = [r for r in group if r not in results]
                for part in self.sub_batches(missing, ds, device) if missing else []:
                    group = kind_of(part[0]).group(part, ds, device)
                    for res in train_to_end(group, progress, self.root / f"{_group_key(part, ds)}.ckpt.npz"):
                        self.save(res, ds)
                        results[res.config] = res
        return [results[r] for r in runs]

    def sub_batches(self, group: list[Config], ds: Dataset, device="cpu") -> list[list[Config]]:
        """`group` cut into consecutive sub-batches that each fit the memory budget (one batch when the
        whole group fits). Runs are independent, so a run's numbers do not depend on its batch."""
        budget = self.memory_budget
        if budget is None and torch.device(device).type == "cuda":
            budget = int(0.9 * torch.cuda.mem_get_info(torch.device(device))[0])
        if budget is None:
            return [group]
        once, per_run = kind_of(group[0]).memory(group[0], ds)
        fits = (budget - once) // per_run
        if fits < 1:
            raise MemoryBudgetError(
                f"one run of this group needs about {(once + per_run) / 2**30:.2f} GiB on {device}, more than its "
                f"budget of {budget / 2**30:.2f} GiB: use a device with more memory, or fewer training examples or "
                "a smaller width for this sweep"
            )
        return [group[i : i + fits] for i in range(0, len(group), fits)]

    @contextlib.contextmanager
    def holding(self, runs: list[Config], ds: Dataset):
        """Held by one process at a time per run: an exclusive POSIX lock on one byte of `runs.lock`
        per run, at an offset its key gives, taken in order of offset (so no two processes wait on
        each other in a cycle). A lock per run, not per group, because two workers may see different
        runs missing (one looks while another is saving its group) and so form different groups."""
        offsets = sorted({int(run_key(r, ds)[:10], 16) for r in runs})
        with open(self.root / "runs.lock", "a") as f:
            for offset in offsets:
                fcntl.lockf(f, fcntl.LOCK_EX, 1, offset)
            yield  # closing the file releases them, also if the process dies

    @contextlib.contextmanager
    def lock(self, name: str):
        """Held by one process at a time: the one submitting group `name` to a scheduler (harness.cluster)."""
        with open(self.root / f"{name}.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes, also if the process dies
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def _group_key(group: list[Config], ds: Dataset) -> str:
    return hashlib.sha256("".join(sorted(run_key(r, ds) for r in group)).encode()).hexdigest()[:24]


def by_shape(runs: list[Config]) -> list[list[Config]]:
    """`runs` (without repeats) in groups that can train as one batch: one per kind and shape, in order."""
    groups: dict[tuple, list[Config]] = {}
    for r in dict.fromkeys(runs):
        groups.setdefault((r.kind, r.shape()), []).append(r)
    return list(groups.values())
