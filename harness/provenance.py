"""What made a verdict, recorded in every report row: the session (device, precision, torch, Python,
git commit, training-code hashes) and hashes of the code that decides the row's claim module in its tier.

    prov = session_provenance("cpu", base_seed=0)     # the session's part of every row
    code = verdict_fingerprint("claims/test_capacity.py", "smoke")

The verdict fingerprint hashes the code that computes runs, settings and statistics (VERDICT_CODE),
the tier's own settings (tier_settings) and the claim module, without docstrings and comments
(harness.code_fingerprint), so a row made by other code than the checkout's can be told apart
(harness.robustness marks it with a dagger), while an edit to documentation, to how results are
stored, scheduled or shown (OTHER_CODE), or to another tier's settings in harness/tiers.py leaves
every row current (the extended paper's settings live in harness/examples.py, hashed whole into C6,
C8 and C9: a change there touches both tiers of those claims).
tests/test_report.py makes every harness module take one side.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from pathlib import Path

from . import CNN_CODE, MLP_CODE, _code_only, code_fingerprint

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
# The harness modules that decide a verdict: what a run computes (the training code of either kind),
# which runs a sweep trains and with which seeds, the statistics and the row's check.
VERDICT_CODE = tuple(
    dict.fromkeys((*MLP_CODE, *CNN_CODE, "kinds.py", "session.py", "stats.py", "decision.py", "rows.py"))
)
# The settings of both tiers: a verdict depends on its own tier's part only (tier_settings).
TIER_CODE = "tiers.py"
# The others only store, schedule, time, record or present results.
OTHER_CODE = (
    "store.py",
    "cluster.py",
    "plan.py",
    "bench.py",
    "report.py",
    "robustness.py",
    "plugin.py",
    "provenance.py",
)
# Harness modules of some claims only (the extended paper's per-example measures): part of the verdict
# and design fingerprints of the claim modules that import them (with the modules they import), so
# adding or editing them leaves every other claim's fingerprints, and its frozen design, as they were.
CLAIM_CODE = {"examples.py": ("examples.py", "adversarial.py")}


def claim_code(module: str) -> tuple[str, ...]:
    """The CLAIM_CODE modules that the claim module `module` imports (from harness), with theirs."""
    import ast

    tree = ast.parse((ROOT / module).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "harness":
            names |= {node.module.split(".", 1)[1]} if "." in node.module else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".", 1)[1] for a in node.names if a.name.startswith("harness.")}
    return tuple(dict.fromkeys(f for name in sorted(names) for f in CLAIM_CODE.get(f"{name}.py", ())))


def tier_settings(tier: str) -> str:
    """What a tier's verdicts take from harness/tiers.py: that tier's settings (their repr, which
    names every field with its value, defaults included) and the code of tier_params."""
    import inspect

    from . import tiers

    if tier not in tiers.TIERS:
        raise ValueError(f"unknown tier {tier!r}: choose from {sorted(tiers.TIERS)}")
    return repr(tiers.TIERS[tier]) + _code_only(inspect.getsource(tiers.tier_params))


def _fingerprint(harness_files: tuple[str, ...], module: str, tier: str) -> str:
    files = [*(HERE / f for f in (*harness_files, *claim_code(module))), ROOT / module]
    code = "".join(_code_only(f.read_text()) for f in files) + tier_settings(tier)
    return hashlib.sha256(code.encode()).hexdigest()[:16]


@functools.cache
def verdict_fingerprint(module: str, tier: str) -> str:
    """Hash of the code that decides a claim module's verdicts in `tier`: VERDICT_CODE, the CLAIM_CODE
    modules it imports, the module itself (`module`: its path from the repository root, e.g.
    "claims/test_capacity.py") and the tier's settings."""
    return _fingerprint(VERDICT_CODE, module, tier)


DESIGN_CODE = ("stats.py", "decision.py", "measures.py")  # decision rules; the settings are tier_settings
FROZEN = ROOT / "claims" / "frozen_designs.json"  # {"designs": {module: {tier: hash}}, "earlier_scheme": ...}
CONFIRMATORY_BASE_SEEDS = range(5, 10)  # run once per frozen design; base seeds 0-4 are exploratory


@functools.cache
def design_fingerprint(module: str, tier: str) -> str:
    """Hash of a claim's design in `tier`: its module (run configs, statistic, thresholds, recorded
    outcomes), the decision rules of DESIGN_CODE, the CLAIM_CODE modules it imports and the tier's
    settings, without docstrings and comments. A design is frozen when its hash is written to FROZEN;
    rows at CONFIRMATORY_BASE_SEEDS confirm it only while their recorded hash equals the frozen one.
    Another tier's settings in harness/tiers.py are not part of it: the full tier can be redesigned
    there while the smoke tier's frozen designs and their confirmations stand."""
    return _fingerprint(DESIGN_CODE, module, tier)


def _frozen() -> dict:
    held = json.loads(FROZEN.read_text()) if FROZEN.is_file() else {}
    if any(isinstance(v, str) for v in held.values()):
        raise ValueError(
            f"{FROZEN} holds design hashes of the earlier scheme ({{module: hash}}): run "
            "`python docs/pilots/fingerprint_scheme.py <the commit that made them>` to carry them over"
        )
    return held


def frozen_designs() -> dict[str, dict[str, str]]:
    """{claim module: {tier: frozen design hash}} (empty before any design is frozen)."""
    return _frozen().get("designs", {})


def renamed(fingerprint: str | None, tier: str) -> str | None:
    """A verdict or design hash recorded for `tier`, as the current code's. FROZEN's "earlier_scheme"
    maps, per tier, hashes of earlier code that makes the same rows to the current hashes: those of
    the earlier scheme (which hashed the whole of harness/tiers.py, both tiers at once; written by
    docs/pilots/fingerprint_scheme.py after it checked, at the commit that made the rows, that the
    current scheme gives that hash there too), and those of code before a change that leaves the
    tier's rows as they were (written by docs/pilots/smoke_unchanged.py after it compared the rows
    both codes made at one base seed)."""
    return _frozen().get("earlier_scheme", {}).get(tier, {}).get(fingerprint, fingerprint)


def freeze(modules: list[str] | None = None, tiers: tuple[str, ...] | None = None) -> dict[str, dict[str, str]]:
    """Write the current design hash of each claim module (default: every claims/test_*.py) in each
    of `tiers` (default: every tier of harness.tiers) to FROZEN, keeping the other entries; returns
    the designs FROZEN now holds."""
    from .tiers import TIERS

    tiers = tiers or tuple(TIERS)
    modules = modules or sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "claims").glob("test_*.py"))
    held = _frozen()
    designs = held.get("designs", {})
    for m in modules:
        designs[m] = {**designs.get(m, {}), **{t: design_fingerprint(m, t) for t in tiers}}
    held["designs"] = dict(sorted(designs.items()))
    FROZEN.write_text(json.dumps(held, indent=1) + "\n")
    return held["designs"]


def phase(row) -> str:
    """'confirmatory' for a row of a frozen design at a confirmatory base seed, made while its
    tier's design hash equals the frozen one; 'exploratory' for every other row."""
    frozen = frozen_designs().get(row.module, {}).get(row.tier)
    return (
        "confirmatory"
        if row.base_seed in CONFIRMATORY_BASE_SEEDS
        and frozen is not None
        and renamed(row.provenance.get("design"), row.tier) == frozen
        else "exploratory"
    )


def session_provenance(device: str, base_seed: int, no_cache: bool = False) -> dict:
    """The session's part of every row: base seed, device and precision, this machine's CPU model (CPU
    rows of one code differ in their last digits between CPU models, their BLAS kernels summing in other
    orders; runs read from the store were trained where runs_trained_with says, on a CPU not recorded),
    torch, threads, Python, training-code hashes, git commit and whether the result store was used."""
    import torch

    dev = torch.device(device)
    name = f"cuda ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else dev.type
    return {
        "base_seed": base_seed,
        "device": name,
        "precision": "float32, TF32 matmuls and convolutions" if dev.type == "cuda" else "float32",
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "training_code": {"mlp": code_fingerprint(MLP_CODE), "cnn": code_fingerprint(CNN_CODE)},
        "git": git_commit(),
        "store": "off (--no-cache)" if no_cache else "on",
    }


def cpu_model() -> str:
    """The CPU's model name as the operating system gives it ("AMD EPYC", ...), else its architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def git_commit() -> str | None:
    """HEAD of the checkout, '+dirty' when its code differs from it (reports written by the claims
    themselves do not count); None outside git."""
    code = ["harness", "claims", "pyproject.toml"]
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", *code],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")
