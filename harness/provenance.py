"""What made a verdict, recorded in every report row: the session (device, precision, torch, Python,
git commit, training-code hashes) and a hash of the code that decides the row's claim module.

    prov = session_provenance("cpu", base_seed=0)     # the session's part of every row
    code = verdict_fingerprint("claims/test_capacity.py")

The verdict fingerprint hashes the code that computes runs, settings and statistics (VERDICT_CODE)
and the claim module, without docstrings and comments (harness.code_fingerprint), so a row made by
other code than the checkout's can be told apart (harness.robustness marks it with a dagger), while
an edit to documentation, or to how results are stored, scheduled or shown (OTHER_CODE), leaves
every row current. tests/test_report.py makes every harness module take one side.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
from pathlib import Path

from . import CNN_CODE, MLP_CODE, _code_only, code_fingerprint

ROOT = Path(__file__).resolve().parent.parent
# The harness modules that decide a verdict: what a run computes (the training code of either kind),
# which runs a sweep trains and with which seeds, the settings, the statistics and the row's check.
VERDICT_CODE = tuple(
    dict.fromkeys((*MLP_CODE, *CNN_CODE, "kinds.py", "session.py", "tiers.py", "stats.py", "decision.py", "rows.py"))
)
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


@functools.cache
def verdict_fingerprint(module: str) -> str:
    """Hash of the code that decides a claim module's verdicts: VERDICT_CODE and the module itself
    (`module`: its path from the repository root, e.g. "claims/test_capacity.py"), and the CLAIM_CODE
    modules it imports."""
    here = Path(__file__).parent
    files = [*(here / f for f in (*VERDICT_CODE, *claim_code(module))), ROOT / module]
    return hashlib.sha256("".join(_code_only(f.read_text()) for f in files).encode()).hexdigest()[:16]


DESIGN_CODE = ("tiers.py", "stats.py", "decision.py", "measures.py")  # settings and decision rules
FROZEN = ROOT / "claims" / "frozen_designs.json"  # claim module -> its design hash when it was frozen
CONFIRMATORY_BASE_SEEDS = range(5, 10)  # run once per frozen design; base seeds 0-4 are exploratory


@functools.cache
def design_fingerprint(module: str) -> str:
    """Hash of a claim's design: its module (run configs, statistic, thresholds, recorded outcomes)
    with the tier settings and the decision rules of DESIGN_CODE, without docstrings and comments.
    A design is frozen when its hash is written to FROZEN; rows at CONFIRMATORY_BASE_SEEDS confirm it
    only while their recorded hash equals the frozen one. With the CLAIM_CODE modules it imports."""
    here = Path(__file__).parent
    files = [*(here / f for f in (*DESIGN_CODE, *claim_code(module))), ROOT / module]
    return hashlib.sha256("".join(_code_only(f.read_text()) for f in files).encode()).hexdigest()[:16]


def frozen_designs() -> dict[str, str]:
    """{claim module: frozen design hash} (empty before any design is frozen)."""
    import json

    return json.loads(FROZEN.read_text()) if FROZEN.is_file() else {}


def freeze(modules: list[str] | None = None) -> dict[str, str]:
    """Write the current design hash of each claim module (default: every claims/test_*.py) to
    FROZEN, keeping the others' entries; returns what FROZEN now holds."""
    import json

    modules = modules or sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "claims").glob("test_*.py"))
    frozen = {**frozen_designs(), **{m: design_fingerprint(m) for m in modules}}
    FROZEN.write_text(json.dumps(dict(sorted(frozen.items())), indent=1) + "\n")
    return frozen


def phase(row) -> str:
    """'confirmatory' for a row of a frozen design at a confirmatory base seed, made while its design
    hash equals the frozen one; 'exploratory' for every other row."""
    frozen = frozen_designs().get(row.module)
    return (
        "confirmatory"
        if row.base_seed in CONFIRMATORY_BASE_SEEDS and frozen is not None and row.provenance.get("design") == frozen
        else "exploratory"
    )


def session_provenance(device: str, base_seed: int, no_cache: bool = False) -> dict:
    """The session's part of every row: base seed, device and precision, torch, threads, Python,
    training-code hashes, git commit and whether the result store was used."""
    import torch

    dev = torch.device(device)
    name = f"cuda ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else dev.type
    return {
        "base_seed": base_seed,
        "device": name,
        "precision": "float32, TF32 matmuls and convolutions" if dev.type == "cuda" else "float32",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "training_code": {"mlp": code_fingerprint(MLP_CODE), "cnn": code_fingerprint(CNN_CODE)},
        "git": git_commit(),
        "store": "off (--no-cache)" if no_cache else "on",
    }


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
