"""The claims report: merging runs, the verdict words, and the table."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from harness import report
from harness.rows import Row


def row(
    claim="C2a",
    test="test_x[smoke]",
    role="claim",
    passed=True,
    pytest="passed",
    base_seed=0,
    device="cpu",
    verdict=None,
    **kw,
) -> Row:
    """A consistent row: holds (p 0.0039), inconclusive (p 0.36), absent (absent p 0.01) or
    contradicted (reverse p 0.0039, effect 0.7)."""
    verdict = verdict or ("holds" if passed else "inconclusive")
    p, p_reverse, p_absent, effect = {
        "holds": (0.0039, 1.0, 1.0, 1.4),
        "inconclusive": (0.36, 0.5, 0.2, 1.4),
        "absent": (0.36, 0.5, 0.01, 1.1),
        "contradicted": (1.0, 0.0039, 0.001, 0.7),
    }[verdict]
    base = dict(
        claim=claim,
        test=test,
        module="claims/test_time_to_fit.py",
        role=role,
        tier="smoke",
        dataset="fashion-mnist",
        method="sign test",
        statistic=8.0,
        p_value=p,
        p_reverse=p_reverse,
        alpha=0.05,
        p_absent=p_absent,
        reverse_min=1 / 1.2,
        effect=effect,
        effect_name="ratio",
        interval=[1.3, 1.5],
        min_effect=1.2,
        n_seeds=8,
        passed=passed,
        verdict=verdict,
        claim_outcome=verdict if role == "claim" else None,
        pytest=pytest,
        wall_s=1.0,
        compute_s=2.0,
        note="",
        seeds=[base_seed * 10_000, base_seed * 10_000 + 7],
        provenance={
            "base_seed": base_seed,
            "device": device,
            "git": "abc123",
            "torch": "2.14",
            "runs_trained_with": [f"{device}, 2 threads, torch 2.14"],
        },
        details={},
    )
    return Row.from_dict({**base, **kw})


def test_a_partial_run_keeps_the_other_claims_rows(tmp_path):
    """Writing C5's rows keeps C2a's rows from an earlier run and replaces C5's old ones."""
    report.write([row(), row(claim="C5", test="test_y[smoke]", passed=False)], tmp_path)
    report.write([row(claim="C5", test="test_y[smoke]", p_value=0.01)], tmp_path)
    rows = json.loads((tmp_path / "smoke" / "fashion-mnist" / "claims.json").read_text())
    assert [(r["claim"], r["p_value"]) for r in rows] == [("C2a", 0.0039), ("C5", 0.01)]
    md = (tmp_path / "smoke" / "fashion-mnist" / "claims.md").read_text()
    assert "| C5 |" in md and "| C2a |" in md


def test_rows_go_to_their_tier_and_dataset(tmp_path):
    """Rows of different tiers and datasets land in their own folders."""
    paths = report.write([row(), row(tier="full", dataset="mnist")], tmp_path)
    assert {p.parent.relative_to(tmp_path).as_posix() for p in paths} == {"smoke/fashion-mnist", "full/mnist"}


def test_runs_of_other_base_seeds_or_devices_never_overwrite_each_other(tmp_path):
    """Rows of base seed 3, or of a GPU session, sit beside base seed 0's CPU rows; only a rerun of
    the same test in the same run (base seed and device) replaces its rows. The markdown has one
    section per run with its provenance."""
    report.write([row(), row(claim="C5", test="test_y[smoke]")], tmp_path)
    report.write(
        [row(base_seed=3, p_value=0.2, passed=False), row(device="cuda (NVIDIA H100)", p_value=0.01)], tmp_path
    )
    report.write([row(p_value=0.002)], tmp_path)
    rows = json.loads((tmp_path / "smoke" / "fashion-mnist" / "claims.json").read_text())
    got = sorted((r.claim, *r.run, r.p_value) for r in map(Row.from_dict, rows))
    assert got == [
        ("C2a", 0, "cpu", 0.002),
        ("C2a", 0, "cuda (NVIDIA H100)", 0.01),
        ("C2a", 3, "cpu", 0.2),
        ("C5", 0, "cpu", 0.0039),
    ]
    md = (tmp_path / "smoke" / "fashion-mnist" / "claims.md").read_text()
    assert md.count("## Base seed") == 3 and "## Base seed 3, cpu" in md and "commit abc123" in md
    assert "runs trained with cpu, 2 threads, torch 2.14" in md
    assert "| 8 (30000..30007) |" in md


def test_verdict_words_follow_each_rows_own_decision():
    """A claim row shows its outcome and how pytest took it (an expected strict xfail, a
    failure, an XPASS); a part shows its own outcome; a negative control that passed is flagged."""
    assert report.verdict_word(row()) == "holds"
    recorded = {"dataset": "fashion-mnist", "outcomes": ["contradicted"]}
    assert report.verdict_word(row(passed=False, pytest="failed")) == "inconclusive (FAILED)"
    assert (
        report.verdict_word(row(passed=False, pytest="xfailed", verdict="contradicted", expected=recorded))
        == "contradicted (as recorded for fashion-mnist)"
    )
    assert report.verdict_word(row(role="part", passed=False, verdict="absent")) == "absent"
    assert report.verdict_word(row(role="negative control", passed=False)) == "control ok"
    assert report.verdict_word(row(role="negative control", passed=True)) == "CONTROL HELD"


def test_table_has_one_line_per_verdict_and_aligned_columns():
    """The terminal table: a header and one line per row, columns aligned."""
    lines = report.table([row(), row(role="negative control", passed=False)]).splitlines()
    assert len(lines) == 3 and lines[0].startswith("claim")
    assert lines[1].index("smoke") == lines[2].index("smoke")


def test_padded_carries_each_history_forward():
    """Ragged histories become a (runs, epochs) array, each run held at its last value."""
    out = report.padded([np.array([0.5, 1.0]), np.array([0.2, 0.4, 0.6])])
    np.testing.assert_array_equal(out, [[0.5, 1.0, 1.0], [0.2, 0.4, 0.6]])


def test_robustness_table_counts_outcomes_over_base_seeds():
    """One line per claim test: its outcome at each base seed, 'holds k of K', whether the outcome is
    the same everywhere, and how many of its controls passed; '-' where a base seed did not run."""
    from harness.robustness import parse_seeds, table

    rows = [row(base_seed=k, passed=k != 2, pytest="passed" if k != 2 else "failed") for k in range(4)]
    rows += [row(role="negative control", passed=False, base_seed=k) for k in range(4)]
    rows += [
        row(claim="C5", test="test_y[smoke]", base_seed=k, passed=False, pytest="xfailed", verdict="contradicted")
        for k in range(5)
    ]
    lines = table(rows, parse_seeds("0-4")).splitlines()
    c2a = next(line for line in lines if "| C2a |" in line)
    assert "| ratio | " in c2a
    assert "inconclusive, 1.4, p 0.36 *" in c2a and c2a.count("holds, 1.4, p 0.0039") == 3 and "| - |" in c2a
    assert c2a.endswith("| 3 of 4 | no | 0 |")
    c5 = next(line for line in lines if "| C5 |" in line)
    assert c5.endswith("| 0 of 5 | yes | 0 |") and c5.count("contradicted") == 5
    assert parse_seeds("0,2,5") == [0, 2, 5]


def test_robustness_marks_rows_made_by_other_code():
    """A cell whose row other code made (its claim module's verdict fingerprint differs from the
    checkout's, or it has none) carries a dagger; a row the checkout's code made does not.

    Cannot check: that every file a verdict depends on is in the fingerprint (provenance.VERDICT_CODE
    and the module; the next test makes every harness module take a side)."""
    from harness.provenance import verdict_fingerprint
    from harness.robustness import table

    module = "claims/test_time_to_fit.py"
    now = verdict_fingerprint(module, "smoke")
    mine = row(base_seed=0, module=module, provenance={"base_seed": 0, "device": "cpu", "code": now})
    older = row(base_seed=1, module=module, provenance={"base_seed": 1, "device": "cpu", "code": "0" * 16})
    line = next(x for x in table([mine, older, row(base_seed=2)], [0, 1, 2]).splitlines() if "| C2a |" in x)
    cells = line.split(" | ")[3:6]
    assert cells == ["holds, 1.4, p 0.0039", "holds, 1.4, p 0.0039 †", "holds, 1.4, p 0.0039 †"]
    assert len(now) == 16 and now != verdict_fingerprint("claims/test_capacity.py", "smoke")


def test_every_harness_module_is_classified_for_the_verdict_fingerprint():
    """A harness module is part of every verdict fingerprint (it decides numbers or verdicts), of the
    fingerprints of the claims that import it (CLAIM_CODE), or listed as one that only stores,
    schedules, times or presents results: a new module must be placed, in one place only.

    Cannot check: that a module in OTHER_CODE really leaves every verdict alone."""
    from pathlib import Path

    from harness.provenance import CLAIM_CODE, OTHER_CODE, TIER_CODE, VERDICT_CODE

    claim = {f for files in CLAIM_CODE.values() for f in files}
    modules = {p.name for p in (Path(report.__file__).parent).glob("*.py")}
    sides = [set(VERDICT_CODE), set(OTHER_CODE), claim, {TIER_CODE}]
    assert modules == set().union(*sides) and sum(map(len, sides)) == len(modules)


def test_claim_code_counts_only_for_the_claims_that_import_it():
    """The extended paper's modules are part of the fingerprints of the claims that use them, and the
    fingerprints of the others stay those their frozen designs recorded."""
    from harness import provenance

    assert provenance.claim_code("claims/test_capacity.py") == ()
    assert provenance.claim_code("claims/test_example_difficulty.py") == ("examples.py", "adversarial.py")
    frozen = provenance.frozen_designs()
    assert frozen["claims/test_capacity.py"]["smoke"] == provenance.design_fingerprint(
        "claims/test_capacity.py", "smoke"
    )


def _write_rows(args):
    report_dir, base_seed = args
    for i in range(20):
        report.write([row(claim=f"C{i}", test=f"test_{i}[smoke]", base_seed=base_seed)], report_dir)


def test_sessions_writing_at_once_lose_no_rows(tmp_path):
    """Four processes (four base seeds) merging rows into one report at once keep every row.

    Cannot check: a file system without flock (some network mounts)."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(4) as pool:
        pool.map(_write_rows, [(tmp_path, k) for k in range(4)])
    rows = json.loads((tmp_path / "smoke" / "fashion-mnist" / "claims.json").read_text())
    assert len(rows) == 80 and len({(r.claim, r.run) for r in map(Row.from_dict, rows)}) == 80


def test_a_row_confirms_only_a_frozen_design_at_a_confirmatory_base_seed(tmp_path, monkeypatch):
    """Rows at base seeds 5-9 made under the frozen design hash are confirmatory; at base seeds 0-4,
    or under another hash, or before any freeze, they are exploratory; freeze() records the hash.

    Cannot check: that base seeds 5-9 were run once only (a matter of practice, stated in the docs)."""
    from harness import provenance

    monkeypatch.setattr(provenance, "FROZEN", tmp_path / "frozen.json")
    module = "claims/test_time_to_fit.py"
    design = provenance.design_fingerprint(module, "smoke")
    at = lambda base, code: row(base_seed=base, provenance={"base_seed": base, "device": "cpu", "design": code})
    assert provenance.phase(at(5, design)) == "exploratory"  # nothing frozen yet
    full = provenance.design_fingerprint(module, "full")
    assert provenance.freeze([module]) == {module: {"smoke": design, "full": full}} and full != design
    assert provenance.phase(at(5, design)) == "confirmatory" and provenance.phase(at(9, design)) == "confirmatory"
    assert provenance.phase(at(4, design)) == "exploratory" and provenance.phase(at(5, "0" * 16)) == "exploratory"


def test_a_tiers_fingerprints_ignore_the_other_tiers_settings(monkeypatch):
    """Changing the full tier's settings changes its verdict and design fingerprints and leaves the
    smoke tier's as they were (so the full tier can be redesigned without unfreezing smoke designs);
    changing the smoke tier's changes the smoke fingerprints.

    Cannot check: that a tier's settings reach its verdicts only through TIERS[tier] (a claim module
    could read the other tier's settings; none does)."""
    from harness import provenance, tiers

    module = "claims/test_sharpness.py"

    def fingerprints():
        provenance.verdict_fingerprint.cache_clear()
        provenance.design_fingerprint.cache_clear()
        return {
            t: (provenance.verdict_fingerprint(module, t), provenance.design_fingerprint(module, t))
            for t in tiers.TIERS
        }

    before = fingerprints()
    monkeypatch.setitem(tiers.TIERS, "full", dataclasses.replace(tiers.TIERS["full"], seeds=9))
    after_full = fingerprints()
    monkeypatch.setitem(tiers.TIERS, "smoke", dataclasses.replace(tiers.TIERS["smoke"], seeds=9))
    after_smoke = fingerprints()
    monkeypatch.undo()
    fingerprints()
    assert after_full["smoke"] == before["smoke"] and after_full["full"] != before["full"]
    assert after_smoke["smoke"] != before["smoke"]
    with pytest.raises(ValueError, match="unknown tier 'tiny'"):
        provenance.tier_settings("tiny")


def test_hashes_of_the_earlier_scheme_count_as_the_code_they_named(tmp_path, monkeypatch):
    """A row recorded under the earlier scheme's hashes is current and confirms its frozen design
    through FROZEN's "earlier_scheme" map; an unmapped hash does neither.

    Cannot check: that the map is right (docs/pilots/fingerprint_scheme.py checks that at the commit
    that made the rows; the committed rows' robustness table stays without daggers)."""
    from harness import provenance, robustness

    module = "claims/test_time_to_fit.py"
    code, design = provenance.verdict_fingerprint(module, "smoke"), provenance.design_fingerprint(module, "smoke")
    frozen = tmp_path / "frozen.json"
    frozen.write_text(
        json.dumps(
            {"designs": {module: {"smoke": design}}, "earlier_scheme": {"smoke": {"a" * 16: code, "b" * 16: design}}}
        )
    )
    monkeypatch.setattr(provenance, "FROZEN", frozen)
    old = row(
        base_seed=5, module=module, provenance={"base_seed": 5, "device": "cpu", "code": "a" * 16, "design": "b" * 16}
    )
    other = row(
        base_seed=5, module=module, provenance={"base_seed": 5, "device": "cpu", "code": "c" * 16, "design": "d" * 16}
    )
    assert robustness.current(old) and provenance.phase(old) == "confirmatory"
    assert not robustness.current(other) and provenance.phase(other) == "exploratory"
    full = dataclasses.replace(old, tier="full", test="test_x[full]")  # the map is the smoke tier's
    assert not robustness.current(full) and provenance.phase(full) == "exploratory"
    frozen.write_text(json.dumps({module: design}))  # the earlier format
    with pytest.raises(ValueError, match="fingerprint_scheme.py"):
        provenance.phase(old)
