"""Claim reports: the terminal table, `claims.json` / `claims.md` per tier and dataset, and figures.

A row is one verdict: a claim's decision, a further part of it, or its negative control, with its
three-way outcome (holds, contradicted, not shown) and the provenance of the session that made it.
Rows are kept per run (base seed and device): a test that ran replaces only its own old rows of
the same run, so `pytest -k capacity` keeps the other claims' rows and `--base-seed 3` or a GPU
session never overwrites the rows of base seed 0 on the CPU.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from . import CNN_CODE, MLP_CODE, _code_only


# The harness modules that decide a verdict: what a run computes (the training code of either
# kind), the settings and the statistics.
VERDICT_CODE = tuple(dict.fromkeys((*MLP_CODE, *CNN_CODE, "tiers.py", "stats.py", "decision.py")))
# The others only store, schedule, time or present results (tests/test_report.py checks that every
# module is in one of the two lists).
OTHER_CODE = ("store.py", "cluster.py", "plan.py", "bench.py", "report.py", "robustness.py")


@functools.cache
def verdict_fingerprint(module: str) -> str:
    """Hash of the code that decides a claim module's verdicts: VERDICT_CODE, conftest.py and the
    module itself (`module`: its path from the repository root, e.g. "claims/test_capacity.py"), like
    `code_fingerprint` without docstrings or comments. Every report row records it, so a row made by
    other code than the checkout's can be told apart (harness.robustness marks it) while a
    documentation edit, or one to how results are stored or shown, leaves the rows current."""
    here = Path(__file__).parent
    files = [*(here / f for f in VERDICT_CODE), here.parent / "conftest.py", here.parent / module]
    return hashlib.sha256("".join(_code_only(f.read_text()) for f in files).encode()).hexdigest()[:16]


def run_of(row) -> tuple[int, str]:
    """(base seed, device) of the session that made a row."""
    prov = row.get("provenance", {})
    return prov.get("base_seed", 0), prov.get("device", "cpu")


def _test(row):
    return row["claim"], row["test"], *run_of(row)


def write(rows: list[dict], report_dir: Path) -> list[Path]:
    """Merge `rows` into reports/<tier>/<dataset>/claims.{json,md}; the paths written."""
    written = []
    for tier, dataset in sorted({(r["tier"], r["dataset"]) for r in rows}):
        folder = Path(report_dir) / tier / dataset
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "claims.json"
        # Sessions of other base seeds may finish at the same time: merge under an exclusive lock.
        with open(folder / ".claims.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if the process dies
            old = json.loads(path.read_text()) if path.exists() else []
            new = [r for r in rows if r["tier"] == tier and r["dataset"] == dataset]
            fresh = {_test(r) for r in new}
            merged = sorted([r for r in old if _test(r) not in fresh] + new,
                            key=lambda r: (*run_of(r), r["claim"], r["test"], r["role"]))
            atomic_text(path, json.dumps(merged, indent=1) + "\n")
            atomic_text(folder / "claims.md", markdown(merged, tier, dataset))
        written += [path, folder / "claims.md"]
    return written


def _fmt(x, digits=3):
    if x is None:
        return "-"
    if isinstance(x, float):
        if np.isnan(x):
            return "nan"
        return f"{x:.2g}" if 0 < abs(x) < 1e-3 else f"{x:.{digits}g}"
    return str(x)


def row_outcome(row) -> str:
    """The three-way outcome of a row's claim (with its parts), or of the row itself."""
    return row.get("claim_outcome") or row["verdict"]


def verdict_word(row) -> str:
    """A row's outcome in words: the control's state, a part's own outcome, or the claim's outcome
    with how pytest took it (an expected strict xfail, or a failure)."""
    if row["role"] == "negative control":
        return "CONTROL PASSED" if row["passed"] else "control ok"
    if row["role"] != "claim":
        return row["verdict"]
    outcome = row_outcome(row)
    return {"passed": outcome, "xfailed": f"{outcome} (expected: strict xfail)",
            "xpassed": f"{outcome} (XPASS: the xfail expected otherwise)"}.get(row["pytest"], f"{outcome} (FAILED)")


def table(rows: list[dict]) -> str:
    """The terminal table: one line per verdict."""
    head = ("claim", "test", "tier", "dataset", "base", "role", "effect", "95% interval", "p", "rev. p", "n",
            "outcome")
    lines = [head]
    for r in sorted(rows, key=lambda r: (r["tier"], *run_of(r), r["claim"], r["test"], r["role"] != "claim")):
        lo, hi = r["interval"]
        lines.append((r["claim"], r["test"].removeprefix("test_"), r["tier"], r["dataset"], str(run_of(r)[0]),
                      r["role"], f"{_fmt(r['effect'])} ({r['effect_name']})", f"[{_fmt(lo)}, {_fmt(hi)}]",
                      _fmt(r["p_value"]), _fmt(r["p_reverse"]), str(r["n_seeds"]), verdict_word(r)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def describe_run(rows: list[dict]) -> str:
    """One line of provenance: which session made the rows of one run (their training setups joined)."""
    prov = rows[0].get("provenance", {})
    trained = sorted({t for r in rows for t in r.get("provenance", {}).get("runs_trained_with", [])})
    git = prov.get("git") or "not a git checkout"
    codes = {Path(r.get("module", "?")).stem.removeprefix("test_"): r.get("provenance", {}).get("code", "?")
             for r in rows}
    return (f"base seed {prov.get('base_seed', 0)}, device {prov.get('device', 'cpu')}, "
            f"{prov.get('precision', 'float32')}, {prov.get('threads', '?')} CPU threads, "
            f"torch {prov.get('torch', '?')}, python {prov.get('python', '?')}, "
            f"commit {git}, verdict code {', '.join(f'{m} {c}' for m, c in sorted(codes.items()))}, training code "
            f"{'/'.join(prov.get('training_code', {}).values()) or '?'}, result store {prov.get('store', '?')}; runs "
            f"trained with {'; '.join(trained) or '?'}")


def _seeds(row) -> str:
    """'8 (0..7)': how many seeds and which."""
    first, last = row.get("seeds") or ("?", "?")
    return f"{row['n_seeds']} ({first}..{last})"


def markdown(rows: list[dict], tier: str, dataset: str) -> str:
    out = [f"# Claims report: tier `{tier}`, dataset `{dataset}`", "",
           "Generated by `pytest claims`; one row per verdict, one section per run (base seed and device). "
           "A claim **holds** when p < alpha and the effect reaches its minimum; it is **contradicted** when the "
           "same test in the opposite direction has p < alpha (rev. p); otherwise it is **not shown**. A negative "
           "control must not hold.", ""]
    for run in sorted({run_of(r) for r in rows}):
        mine = [r for r in rows if run_of(r) == run]
        out += [f"## Base seed {run[0]}, {run[1]}", "", f"Made by: {describe_run(mine)}.", "",
                "| claim | test | role | statistical test | statistic | effect | 95% interval | min effect | p | rev. p "
                "| alpha | seeds | outcome | wall s |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in mine:
            lo, hi = r["interval"]
            out.append(f"| {r['claim']} | `{r['test']}` | {r['role']} | {r['method']} | {_fmt(r['statistic'])} | "
                       f"{_fmt(r['effect'])} ({r['effect_name']}) | [{_fmt(lo)}, {_fmt(hi)}] | {_fmt(r['min_effect'])} | "
                       f"{_fmt(r['p_value'])} | {_fmt(r['p_reverse'])} | {_fmt(r['alpha'])} | {_seeds(r)} | "
                       f"{verdict_word(r)} | {_fmt(r['wall_s'], 4)} |")
        notes = [f"- **{r['claim']}** `{r['test']}`: {r['note']}" for r in mine if r.get("note")]
        if notes:
            out += ["", "### Notes", ""] + notes
        out.append("")
    return "\n".join(out)


def atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def new_figure(ncols: int = 1, figsize=(6.4, 4.0)):
    """(figure, axes) from matplotlib's file-only backend, which works without a display; save it
    with `save_figure`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, ncols, figsize=figsize)


def plot_curves(curves: dict[str, np.ndarray], path: Path, title: str, ylabel: str = "training accuracy") -> Path:
    """One line per condition (mean over seeds) with a min-max band; curves[name] is (seeds, epochs)."""
    fig, ax = new_figure()
    for name, c in curves.items():
        epochs = np.arange(1, c.shape[1] + 1)
        ax.plot(epochs, c.mean(0), label=f"{name} (n={c.shape[0]})")
        ax.fill_between(epochs, c.min(0), c.max(0), alpha=0.25)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    """Write `fig` as a PNG atomically (parallel workers may draw the same figure) and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def padded(histories: list[np.ndarray], length: int | None = None) -> np.ndarray:
    """(runs, epochs) from ragged histories, each carried forward at its last value (a fitted run stops)."""
    length = length or max(len(h) for h in histories)
    out = np.empty((len(histories), length))
    for i, h in enumerate(histories):
        out[i, :len(h)] = h
        out[i, len(h):] = h[-1] if len(h) else np.nan
    return out
