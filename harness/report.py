"""Claim reports: the terminal table, `claims.json` / `claims.md` per tier and dataset, and figures.

    report.write(rows, Path("reports"))       # merge harness.rows.Row records into the report files
    print(report.table(rows))

A row is one verdict (harness.rows.Row): a claim's decision, a further part of it, or its negative
control, with its three-way outcome (holds, contradicted, not shown) and the provenance of the
session that made it. Rows are kept per run (base seed and device): a test that ran replaces only
its own old rows of the same run, so `pytest -k capacity` keeps the other claims' rows and
`--base-seed 3` or a GPU session never overwrites the rows of base seed 0 on the CPU.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import numpy as np

from .rows import Row


def read(path: Path) -> list[Row]:
    """The rows of a claims.json (each checks itself as it is read)."""
    return [Row.from_dict(d) for d in json.loads(Path(path).read_text())]


def _test(row: Row):
    return row.claim, row.test, *row.run


def write(rows: list[Row], report_dir: Path) -> list[Path]:
    """Merge `rows` into reports/<tier>/<dataset>/claims.{json,md}; the paths written."""
    written = []
    for tier, dataset in sorted({(r.tier, r.dataset) for r in rows}):
        folder = Path(report_dir) / tier / dataset
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "claims.json"
        # Sessions of other base seeds may finish at the same time: merge under an exclusive lock.
        with open(folder / ".claims.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if the process dies
            old = read(path) if path.exists() else []
            new = [r for r in rows if r.tier == tier and r.dataset == dataset]
            fresh = {_test(r) for r in new}
            merged = sorted([r for r in old if _test(r) not in fresh] + new,
                            key=lambda r: (*r.run, r.claim, r.test, r.role))
            atomic_text(path, json.dumps([r.as_dict() for r in merged], indent=1) + "\n")
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


def verdict_word(row: Row) -> str:
    """A row's outcome in words: the control's state, a part's own outcome, or the claim's outcome
    with how pytest took it (an expected strict xfail, or a failure)."""
    if row.role == "negative control":
        return "CONTROL PASSED" if row.passed else "control ok"
    if row.role != "claim":
        return row.verdict
    outcome = row.outcome
    return {"passed": outcome, "xfailed": f"{outcome} (expected: strict xfail)",
            "xpassed": f"{outcome} (XPASS: the xfail expected otherwise)"}.get(row.pytest, f"{outcome} (FAILED)")


def table(rows: list[Row]) -> str:
    """The terminal table: one line per verdict."""
    head = ("claim", "test", "tier", "dataset", "base", "role", "effect", "95% interval", "p", "rev. p", "n",
            "outcome")
    lines = [head]
    for r in sorted(rows, key=lambda r: (r.tier, *r.run, r.claim, r.test, r.role != "claim")):
        lo, hi = r.interval
        lines.append((r.claim, r.test.removeprefix("test_"), r.tier, r.dataset, str(r.base_seed),
                      r.role, f"{_fmt(r.effect)} ({r.effect_name})", f"[{_fmt(lo)}, {_fmt(hi)}]",
                      _fmt(r.p_value), _fmt(r.p_reverse), str(r.n_seeds), verdict_word(r)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def describe_run(rows: list[Row]) -> str:
    """One line of provenance: which session made the rows of one run (their training setups joined)."""
    prov = rows[0].provenance
    trained = sorted({t for r in rows for t in r.provenance.get("runs_trained_with", [])})
    git = prov.get("git") or "not a git checkout"
    codes = {Path(r.module).stem.removeprefix("test_"): r.provenance.get("code", "?") for r in rows}
    return (f"base seed {prov.get('base_seed', 0)}, device {prov.get('device', 'cpu')}, "
            f"{prov.get('precision', 'float32')}, {prov.get('threads', '?')} CPU threads, "
            f"torch {prov.get('torch', '?')}, python {prov.get('python', '?')}, "
            f"commit {git}, verdict code {', '.join(f'{m} {c}' for m, c in sorted(codes.items()))}, training code "
            f"{'/'.join(prov.get('training_code', {}).values()) or '?'}, result store {prov.get('store', '?')}; runs "
            f"trained with {'; '.join(trained) or '?'}")


def _seeds(row: Row) -> str:
    """'8 (0..7)': how many seeds and which."""
    first, last = row.seeds
    return f"{row.n_seeds} ({first}..{last})"


def markdown(rows: list[Row], tier: str, dataset: str) -> str:
    out = [f"# Claims report: tier `{tier}`, dataset `{dataset}`", "",
           "Generated by `pytest claims`; one row per verdict, one section per run (base seed and device). "
           "A claim **holds** when p < alpha and the effect reaches its minimum; it is **contradicted** when the "
           "same test in the opposite direction has p < alpha (rev. p); otherwise it is **not shown**. A negative "
           "control must not hold.", ""]
    for run in sorted({r.run for r in rows}):
        mine = [r for r in rows if r.run == run]
        out += [f"## Base seed {run[0]}, {run[1]}", "", f"Made by: {describe_run(mine)}.", "",
                "| claim | test | role | statistical test | statistic | effect | 95% interval | min effect | p "
                "| rev. p | alpha | seeds | outcome | wall s |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in mine:
            lo, hi = r.interval
            out.append(f"| {r.claim} | `{r.test}` | {r.role} | {r.method} | {_fmt(r.statistic)} | "
                       f"{_fmt(r.effect)} ({r.effect_name}) | [{_fmt(lo)}, {_fmt(hi)}] | {_fmt(r.min_effect)} | "
                       f"{_fmt(r.p_value)} | {_fmt(r.p_reverse)} | {_fmt(r.alpha)} | {_seeds(r)} | "
                       f"{verdict_word(r)} | {_fmt(r.wall_s, 4)} |")
        notes = [f"- **{r.claim}** `{r.test}`: {r.note}" for r in mine if r.note]
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
