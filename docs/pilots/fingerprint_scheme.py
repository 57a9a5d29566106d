"""Carry the hashes recorded under the earlier fingerprint scheme over to the current one, after
checking that both name the same code.

Up to commit f22e2f6 every verdict and design fingerprint hashed the whole of harness/tiers.py, so
any change to the full tier's settings changed the smoke tier's hashes too and took the confirmatory
status from every committed smoke row. The current scheme hashes the row's own tier's settings
(harness.provenance.tier_settings). This script

1. checks out OLD in a temporary git worktree and computes there, per claim module, the earlier
   scheme's verdict and design hashes (OLD's own provenance.py) and the current scheme's smoke
   hashes (this checkout's provenance.py copied in);
2. computes the current scheme's smoke hashes in this checkout;
3. for every module whose smoke hashes agree (the same code in OLD and here, so the same verdicts),
   maps its earlier hashes to the current ones in claims/frozen_designs.json ("earlier_scheme") and
   carries its frozen smoke design over if OLD had frozen exactly that design; a module whose
   hashes differ is reported and not mapped;
4. counts the committed rows whose recorded hashes it maps.

    python docs/pilots/fingerprint_scheme.py f22e2f6
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HASHES = """
import json, sys
from pathlib import Path
from harness import provenance as p
modules = sorted(x.relative_to(p.ROOT).as_posix() for x in (p.ROOT / "claims").glob("test_*.py"))
args = () if sys.argv[1] == "earlier" else ("smoke",)
print(json.dumps({m: [p.verdict_fingerprint(m, *args), p.design_fingerprint(m, *args)] for m in modules}))
"""


def hashes(tree: Path, scheme: str) -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", HASHES, scheme], cwd=tree, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def main(old: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), old], check=True)
        try:
            earlier = hashes(tree, "earlier")
            old_frozen = json.loads((tree / "claims" / "frozen_designs.json").read_text())
            shutil.copy(ROOT / "harness" / "provenance.py", tree / "harness" / "provenance.py")
            then = hashes(tree, "current")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=True)
    now = hashes(ROOT, "current")

    frozen_path = ROOT / "claims" / "frozen_designs.json"
    held = json.loads(frozen_path.read_text())
    if "designs" not in held:  # the earlier format, {module: design hash}: OLD's frozen designs, read above
        held = {"designs": {}}
    mapping = held.setdefault("earlier_scheme", {}).setdefault("smoke", {})  # every row then was smoke
    for module in sorted(earlier):
        if module not in now or then[module] != now[module]:
            print(f"{module}: its smoke code differs between {old} and this checkout; not mapped")
            continue
        (code_then, design_then), (code_now, design_now) = earlier[module], now[module]
        mapping[code_then], mapping[design_then] = code_now, design_now
        if old_frozen.get(module) == design_then:
            held["designs"].setdefault(module, {})["smoke"] = design_now
            print(f"{module}: code {code_then} -> {code_now}, design {design_then} -> {design_now} (frozen)")
        else:
            print(f"{module}: code {code_then} -> {code_now}, design {design_then} -> {design_now}")
    held["designs"] = dict(sorted(held["designs"].items()))
    held["earlier_scheme"]["smoke"] = dict(sorted(mapping.items()))
    frozen_path.write_text(json.dumps(held, indent=1) + "\n")

    rows = [r for f in sorted((ROOT / "reports").glob("*/*/claims.json")) for r in json.loads(f.read_text())]
    mapped = sum(r["provenance"].get("code") in mapping and r["provenance"].get("design") in mapping for r in rows)
    print(f"{mapped} of {len(rows)} committed rows carry mapped hashes; wrote {frozen_path.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "f22e2f6")
