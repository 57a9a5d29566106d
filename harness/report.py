"""Claim reports: the terminal table, `claims.json` / `claims.md` per tier and dataset, and figures.

    report.write(rows, Path("reports"))       # merge harness.rows.Row records into the report files
    print(report.table(rows))

A row is one verdict (harness.rows.Row): a claim's decision, a further part of it, or its negative
control, with its outcome (holds, contradicted, absent, inconclusive) and the provenance of the
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

from .provenance import phase
from .rows import Row
from .stats import OUTCOMES, holm


def read(path: Path) -> list[Row]:
    """The rows of a claims.json (each checks itself as it is read); ValueError naming the file for
    rows that are inconsistent or of an older format."""
    try:
        return [Row.from_dict(d) for d in json.loads(Path(path).read_text())]
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"{path}: {e}. Rows of an older format (three outcomes) cannot be merged: move the "
            "file aside and run the claims again"
        ) from None


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
            merged = sorted(
                [r for r in old if _test(r) not in fresh] + new, key=lambda r: (*r.run, r.claim, r.test, r.role)
            )
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
    with how pytest took it (the outcome recorded for its dataset, or a failure)."""
    if row.role == "negative control":
        return "CONTROL HELD" if row.passed else "control ok"
    if row.role != "claim":
        return row.verdict
    outcome = row.outcome
    expected = f"{outcome} (as recorded for {row.expected['dataset']})" if row.expected else outcome
    return {"passed": expected, "xfailed": expected}.get(row.pytest, f"{outcome} (FAILED)")


def table(rows: list[Row]) -> str:
    """The terminal table: one line per verdict."""
    head = (
        "claim",
        "test",
        "tier",
        "dataset",
        "base",
        "role",
        "effect",
        "interval",
        "p",
        "rev. p",
        "absent p",
        "n",
        "power",
        "outcome",
    )
    lines = [head]
    for r in sorted(rows, key=lambda r: (r.tier, *r.run, r.claim, r.test, r.role != "claim")):
        lo, hi = r.interval
        lines.append(
            (
                r.claim,
                r.test.removeprefix("test_"),
                r.tier,
                r.dataset,
                str(r.base_seed),
                r.role,
                f"{_fmt(r.effect)} ({r.effect_name})",
                f"[{_fmt(lo)}, {_fmt(hi)}]",
                _fmt(r.p_value),
                _fmt(r.p_reverse),
                _fmt(r.p_absent),
                str(r.n_seeds),
                _fmt(r.power, 2),
                verdict_word(r),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)


def describe_run(rows: list[Row]) -> str:
    """One line of provenance: which session made the rows of one run (their training setups joined)."""
    prov = rows[0].provenance
    trained = sorted({t for r in rows for t in r.provenance.get("runs_trained_with", [])})
    git = prov.get("git") or "not a git checkout"
    codes = {Path(r.module).stem.removeprefix("test_"): r.provenance.get("code", "?") for r in rows}
    designs = {Path(r.module).stem.removeprefix("test_"): r.provenance.get("design", "?") for r in rows}
    cpu = f" ({prov['cpu']})" if "cpu" in prov else ""  # rows made before the CPU's model was recorded lack it
    return (
        f"base seed {prov.get('base_seed', 0)}, device {prov.get('device', 'cpu')}, "
        f"{prov.get('precision', 'float32')}, {prov.get('threads', '?')} CPU threads{cpu}, "
        f"torch {prov.get('torch', '?')}, python {prov.get('python', '?')}, "
        f"commit {git}, verdict code {', '.join(f'{m} {c}' for m, c in sorted(codes.items()))}, design "
        f"{', '.join(f'{m} {c}' for m, c in sorted(designs.items()))}, training code "
        f"{'/'.join(prov.get('training_code', {}).values()) or '?'}, result store {prov.get('store', '?')}; runs "
        f"trained with {'; '.join(trained) or '?'}"
    )


def _seeds(row: Row) -> str:
    """'8 (0..7)': how many seeds and which."""
    first, last = row.seeds
    return f"{row.n_seeds} ({first}..{last})"


def suite_summary(rows: list[Row]) -> str:
    """What one surprising verdict is worth: the claim tests decided, the false 'holds' and false
    'contradicted' expected at most if no claim were true (each at most alpha per test), and how
    many claims still hold with Holm's adjustment over the suite's claim tests."""
    claims = [r for r in rows if r.role == "claim"]
    if not claims:
        return ""
    m, alpha = len(claims), max(r.alpha for r in claims)
    adjusted = holm([r.p_value for r in claims])
    held = [r for r, p in zip(claims, adjusted) if r.outcome == "holds" and p < alpha]
    counts = {o: sum(r.outcome == o for r in claims) for o in OUTCOMES}
    return (
        f"{m} claim tests: " + ", ".join(f"{counts[o]} {o}" for o in OUTCOMES) + f". With no true claim each "
        f"test holds with probability at most alpha = {alpha}, so at most {m * alpha:.2f} false 'holds' (and as "
        f"many false 'contradicted') are expected in the suite; with Holm's adjustment over the {m} claim "
        f"tests (family-wise error {alpha}), {len(held)} of the {counts['holds']} that hold still do."
    )


# Claims from the extended paper (Arpit et al., ICML 2017, "A Closer Look at Memorization in Deep
# Networks"), labelled as such wherever a claim is named; the others are the workshop paper's (C0: Zhang
# et al. 2017, its starting point).
EXTENDED_PAPER = ("C6", "C7", "C8", "C9")


def claim_label(claim: str) -> str:
    """'C6 (extended paper)' for a claim of the extended paper, else the id."""
    return f"{claim} (extended paper)" if claim in EXTENDED_PAPER else claim


def markdown(rows: list[Row], tier: str, dataset: str) -> str:
    out = [
        f"# Claims report: tier `{tier}`, dataset `{dataset}`",
        "",
        "Generated by `pytest claims`; one row per verdict, one section per run (base seed and device). A claim "
        "**holds** when p < alpha and the effect reaches its minimum; it is **contradicted** when the same test "
        "in the opposite direction has p < alpha (rev. p) and the effect reaches the mirrored minimum; it is "
        "**absent** when the test that the effect reaches its minimum rejects (absent p < alpha); otherwise "
        "**inconclusive**. A failed gate of the design makes a claim inconclusive. Intervals are exact at the "
        "stated level; power is the probability that the test is significant if the effect were its minimum, "
        "and 'seeds for 0.8' the fewest seeds at which it reaches 0.8 (harness/stats.py). Base seeds 0-4 are "
        "exploratory (the designs were chosen on them); 5-9 confirm frozen designs. A negative control must "
        "not hold. C0-C5 are the workshop paper's claims (C0 its starting point, Zhang et al. 2017); claims marked "
        "'extended paper' are from Arpit et al., ICML 2017, 'A Closer Look at Memorization in Deep Networks'.",
        "",
    ]
    for run in sorted({r.run for r in rows}):
        mine = [r for r in rows if r.run == run]
        phases = sorted({phase(r) for r in mine})
        out += [
            f"## Base seed {run[0]}, {run[1]} ({' and '.join(phases)})",
            "",
            f"Made by: {describe_run(mine)}.",
            "",
            suite_summary(mine),
            "",
            "| claim | test | role | statistical test | statistic | effect | interval (level) | min effect | p "
            "| rev. p | absent p | alpha | seeds | power | seeds for 0.8 | outcome | wall s |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in mine:
            lo, hi = r.interval
            out.append(
                f"| {claim_label(r.claim)} | `{r.test}` | {r.role} | {r.method} | {_fmt(r.statistic)} | "
                f"{_fmt(r.effect)} ({r.effect_name}) | [{_fmt(lo)}, {_fmt(hi)}] ({r.interval_level:.1%}) | "
                f"{_fmt(r.min_effect)} | {_fmt(r.p_value)} | {_fmt(r.p_reverse)} | {_fmt(r.p_absent)} | "
                f"{_fmt(r.alpha)} | {_seeds(r)} | {_fmt(r.power, 2)} | {r.seeds_needed or '> 128'} | "
                f"{verdict_word(r)} | {_fmt(r.wall_s, 4)} |"
            )
        gates = [
            f"- **{r.claim}** `{r.test}`: {g['name']} {_fmt(g['value'])}, must be "
            f"{'at most' if g['at_most'] else 'at least'} {g['bound']}: {'ok' if g['passed'] else 'FAILED'}"
            for r in mine
            for g in r.gates
        ]
        if gates:
            out += ["", "### Gates", ""] + gates
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
        out[i, : len(h)] = h
        out[i, len(h) :] = h[-1] if len(h) else np.nan
    return out
