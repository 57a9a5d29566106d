"""Carry the smoke tier's recorded hashes over a change that leaves the smoke tier's verdicts as they
were, after checking that it does.

A verdict's hash (harness.provenance) covers all the code that computes it, so a change made for the
full tier alone (seeds in waves, C1's online convergence rule: both off in the smoke tier) still
changes every smoke hash, and without this every committed smoke row would be marked as made by
other code, the confirmatory ones included. This script

1. reads the smoke rows at one base seed that OLD's code made (OLD_REPORTS: a report folder written
   by a run of the smoke tier at commit OLD, e.g. CI's) and that this checkout made (NEW_REPORTS);
2. checks that both hold the same rows, equal in every field but the provenance, the wall and
   compute times and the pytest outcome's timing, and that each side's rows carry its code's hashes;
3. only then maps, per claim module, OLD's smoke verdict and design hashes to this checkout's in
   claims/frozen_designs.json ("earlier_scheme", which harness.provenance.renamed reads; a hash that
   an earlier entry mapped to OLD's now maps on to this checkout's), and carries a frozen smoke design
   over where OLD had frozen exactly that design;
4. counts the committed rows whose recorded hashes now map to this checkout's.

    python docs/pilots/smoke_unchanged.py OLD OLD_REPORTS NEW_REPORTS [--base-seed 0]

What it cannot check: the other base seeds (the rows compared are one seed set's; the change must
not depend on the seeds, which a review of the diff has to confirm).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HASHES = """
import json
from harness import provenance as p
modules = sorted(x.relative_to(p.ROOT).as_posix() for x in (p.ROOT / "claims").glob("test_*.py"))
print(json.dumps({m: [p.verdict_fingerprint(m, "smoke"), p.design_fingerprint(m, "smoke")] for m in modules}))
"""
VOLATILE = {"provenance", "wall_s", "compute_s"}


def hashes(tree: Path) -> dict[str, list[str]]:
    out = subprocess.run([sys.executable, "-c", HASHES], cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def rows(reports: Path, base_seed: int) -> dict[tuple, dict]:
    found = json.loads((reports / "smoke" / "fashion-mnist" / "claims.json").read_text())
    return {
        (r["module"], r["test"], r["role"]): r
        for r in found
        if r["provenance"]["base_seed"] == base_seed and r["provenance"]["device"] == "cpu"
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("old_reports", type=Path)
    ap.add_argument("new_reports", type=Path)
    ap.add_argument("--base-seed", type=int, default=0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), a.old], check=True)
        try:
            then = hashes(tree)
            old_frozen = json.loads((tree / "claims" / "frozen_designs.json").read_text())["designs"]
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)
    now = hashes(ROOT)

    old, new = rows(a.old_reports, a.base_seed), rows(a.new_reports, a.base_seed)
    problems = [f"rows only in one run: {sorted(set(old) ^ set(new))}"] if set(old) != set(new) else []
    for key in sorted(set(old) & set(new)):
        o, n = old[key], new[key]
        if [o["provenance"][h] for h in ("code", "design")] != then[key[0]]:
            problems.append(f"{key}: OLD's row does not carry OLD's hashes")
        if [n["provenance"][h] for h in ("code", "design")] != now[key[0]]:
            problems.append(f"{key}: the new row does not carry this checkout's hashes")
        differ = sorted(k for k in set(o) | set(n) if k not in VOLATILE and o.get(k) != n.get(k))
        if differ:
            problems.append(f"{key}: differs in {differ}")
    if problems or not old:
        sys.exit("not mapped:\n" + "\n".join(problems or ["no rows at that base seed"]))
    print(f"{len(old)} rows at base seed {a.base_seed}: equal in every field but {sorted(VOLATILE)}")

    frozen_path = ROOT / "claims" / "frozen_designs.json"
    held = json.loads(frozen_path.read_text())
    mapping = held.setdefault("earlier_scheme", {}).setdefault("smoke", {})
    for module in sorted(then):
        (code_then, design_then), (code_now, design_now) = then[module], now[module]
        for earlier, target in list(mapping.items()):  # hashes mapped to OLD's map on to this checkout's
            mapping[earlier] = {code_then: code_now, design_then: design_now}.get(target, target)
        mapping[code_then], mapping[design_then] = code_now, design_now
        if old_frozen.get(module, {}).get("smoke") == design_then:
            held["designs"][module]["smoke"] = design_now
        print(f"{module}: code {code_then} -> {code_now}, design {design_then} -> {design_now}")
    held["earlier_scheme"]["smoke"] = dict(sorted(mapping.items()))
    frozen_path.write_text(json.dumps(held, indent=1) + "\n")

    committed = [r for f in sorted((ROOT / "reports").glob("smoke/*/claims.json")) for r in json.loads(f.read_text())]
    current = {h for pair in now.values() for h in pair}
    mapped = sum(
        mapping.get(r["provenance"]["code"], r["provenance"]["code"]) in current
        and mapping.get(r["provenance"]["design"], r["provenance"]["design"]) in current
        for r in committed
    )
    print(f"{mapped} of {len(committed)} committed smoke rows carry hashes that map to this checkout's")


if __name__ == "__main__":
    main()
