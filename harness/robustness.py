"""How each claim's verdict fares over several seed sets: run the claims once per base seed, then
tabulate every claim's outcome per base seed and how often it holds.

    python -m harness.robustness --base-seeds 0-4 --dataset fashion-mnist             # run, then tabulate
    python -m harness.robustness --base-seeds 0-4 --dataset fashion-mnist --no-run    # tabulate stored rows
    python -m harness.robustness --base-seeds 0-4 -- -k time_to_fit --device cuda      # pytest options after --
    python -m harness.robustness --freeze            # record the designs, then run base seeds 5-9 once

Each base seed is one `pytest claims -m <tier> --base-seed K` session writing its rows into the
report folder, where rows are kept per base seed and device, so sessions never overwrite each
other; finished runs come from the result store, so a rerun only decides again. The table (one per
dataset and device) is printed and written to reports/<tier>/<dataset>/robustness.md. A verdict
that CI checks should come out the same at every base seed: the table says which do not.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from .provenance import CONFIRMATORY_BASE_SEEDS, ROOT, freeze, phase, renamed, verdict_fingerprint
from .report import atomic_text, claim_label, read
from .rows import Row
from .tiers import TIERS


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '0,2,5' -> [0, 2, 5]."""
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-"))
            seeds = list(range(lo, hi + 1))
        else:
            seeds = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--base-seeds {text!r}: give a range like 0-4 or a list like 0,2,5") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"--base-seeds {text!r}: give at least one base seed >= 0")
    return seeds


def run(seeds: list[int], tier: str, report_dir: Path, pytest_args: list[str]) -> None:
    """One pytest session per base seed; a failing claim is a result here, not an error."""
    for k in seeds:
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "claims",
            "-m",
            tier,
            f"--base-seed={k}",
            f"--report-dir={report_dir}",
            "-p",
            "no:cacheprovider",
            *pytest_args,
        ]
        print(f"[robustness] base seed {k}: {' '.join(cmd[2:])}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        code = subprocess.run(cmd, cwd=ROOT).returncode
        if code not in (0, 1):  # 1: some test failed, which the table shows; anything else is broken
            raise SystemExit(
                f"[robustness] pytest ended with exit code {code} at base seed {k} (usage error, "
                "interrupted or internal error): fix that first"
            )
        print(f"[robustness] base seed {k}: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)


def table(rows: list[Row], seeds: list[int]) -> str:
    """Markdown: per claim test, the effect it measures, its outcome, effect and p at each base seed,
    'holds k of K', whether it is stable, and whether its negative control held anywhere. Rows of
    one dataset and device."""
    tests = sorted({(r.claim, r.test) for r in rows if r.role == "claim"})
    head = [
        "claim",
        "test",
        "effect",
        *(f"base seed {k}" for k in seeds),
        "holds",
        "same at every base seed",
        "controls held",
    ]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for claim, test in tests:
        mine = {r.base_seed: r for r in rows if (r.claim, r.test, r.role) == (claim, test, "claim")}
        cells = [_cell(mine[k]) if k in mine else "-" for k in seeds]
        outcomes = {mine[k].outcome for k in seeds if k in mine}
        ran = sum(k in mine for k in seeds)
        holds = sum(mine[k].outcome == "holds" for k in seeds if k in mine)
        controls = sum(
            r.passed
            for r in rows
            if r.base_seed in seeds and (r.claim, r.test, r.role) == (claim, test, "negative control")
        )
        stable = "yes" if len(outcomes) == 1 and ran == len(seeds) else "no" if len(outcomes) > 1 else "incomplete"
        names = " / ".join(dict.fromkeys(r.effect_name for r in mine.values()))
        out.append(
            f"| {claim_label(claim)} | `{test}` | {names} | "
            + " | ".join(cells)
            + f" | {holds} of {ran} | {stable} | {controls} |"
        )
    return "\n".join(out)


def _cell(row: Row) -> str:
    """'holds, 1.44, p 0.0039' (the claim's outcome, effect and main p; '*' where pytest did not
    accept it, '†' where other code than the checkout's made it, '‡' at a confirmatory base seed
    where the row does not confirm a frozen design)."""
    mark = "" if row.pytest in ("passed", "xfailed") else " *"
    mark += "" if current(row) else " †"
    mark += " ‡" if row.base_seed in CONFIRMATORY_BASE_SEEDS and phase(row) != "confirmatory" else ""
    return f"{row.outcome}, {row.effect:.3g}, p {row.p_value:.2g}{mark}"


def current(row: Row) -> bool:
    """Whether the checkout's code would decide `row` as the code that made it did: its claim module,
    the harness modules of provenance.VERDICT_CODE and its tier's settings hash the same (docstrings
    and comments aside). A row without that record, or of a module the checkout lacks, is not current."""
    code = renamed(row.provenance.get("code"), row.tier)
    if not code or row.tier not in TIERS or not (ROOT / row.module).is_file():
        return False
    return verdict_fingerprint(row.module, row.tier) == code


def report(report_dir: Path, tier: str, seeds: list[int]) -> list[Path]:
    """Write and print robustness.md for each dataset of the tier; the paths written."""
    written = []
    for path in sorted((report_dir / tier).glob("*/claims.json")):
        rows = read(path)
        parts = [
            f"# Robustness over base seeds {', '.join(map(str, seeds))}: tier `{tier}`, dataset `{path.parent.name}`",
            "",
            "Made by `python -m harness.robustness`. Each cell: the claim's outcome (holds, contradicted, "
            "absent, inconclusive), its effect (named in the effect column) and its p-value at that base seed "
            "(seeds K*10000 + 0..N-1); `*` marks a test pytest did not accept there (a failure, or an outcome "
            "other than the one recorded for the dataset), `†` one that other code than this checkout's made "
            "(its claim module or a harness module that computes runs, settings or statistics differ beyond "
            "docstrings and comments: run that base seed again) and `‡` a row at a confirmatory base seed that "
            "does not confirm a frozen design (claims/frozen_designs.json). 'controls held' counts base seeds "
            "where the negative control held (it must be 0). Base seeds 0-4 are exploratory: the designs were "
            "chosen on them; 5-9 are run once per frozen design.",
            "",
        ]
        groups = [
            ("Exploratory", [k for k in seeds if k not in CONFIRMATORY_BASE_SEEDS]),
            ("Confirmatory", [k for k in seeds if k in CONFIRMATORY_BASE_SEEDS]),
        ]
        for device in sorted({r.device for r in rows}):
            mine = [r for r in rows if r.device == device]
            for name, ks in groups:
                if ks:
                    parts += [f"## {name}, {device}", "", table(mine, ks), ""]
        text = "\n".join(parts)
        print(text)
        atomic_text(path.parent / "robustness.md", text)
        written.append(path.parent / "robustness.md")
    if not written:
        raise SystemExit(f"[robustness] no claims.json under {report_dir / tier}: run without --no-run first")
    return written


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    pytest_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(
        prog="python -m harness.robustness",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--base-seeds", type=parse_seeds, default=parse_seeds("0-4"), help="e.g. 0-4 (default) or 0,2,5")
    p.add_argument("--tier", choices=("smoke", "full"), default="smoke")
    p.add_argument("--dataset", help="passed to pytest as --dataset (default: each claim's paper dataset)")
    p.add_argument("--report-dir", type=Path, default=ROOT / "reports")
    p.add_argument("--no-run", action="store_true", help="only tabulate the rows already in the report folder")
    p.add_argument(
        "--freeze",
        action="store_true",
        help="record every claim module's current design hash in --tier in claims/frozen_designs.json (do it before "
        "running that tier's confirmatory base seeds 5-9, once per design), then exit",
    )
    args = p.parse_args(argv)
    if args.freeze:
        for module, designs in freeze(tiers=(args.tier,)).items():
            print(f"[robustness] frozen: {module} {designs}", file=sys.stderr)
        return
    if args.dataset:
        pytest_args = [f"--dataset={args.dataset}", *pytest_args]
    if not args.no_run:
        run(args.base_seeds, args.tier, args.report_dir.resolve(), pytest_args)
    for path in report(args.report_dir, args.tier, args.base_seeds):
        print(f"[robustness] wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
