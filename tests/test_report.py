"""The claims report: merging runs, the verdict words, and the table."""
from __future__ import annotations

import json

import numpy as np

from harness import report


def row(claim="C2a", test="test_x[smoke]", role="claim", passed=True, outcome="passed", **kw):
    base = dict(claim=claim, test=test, role=role, tier="smoke", dataset="fashion-mnist", method="sign test",
                statistic=8.0, p_value=0.0039, alpha=0.05, effect=1.4, effect_name="ratio", interval=[1.3, 1.5],
                min_effect=1.2, n_seeds=8, passed=passed, outcome=outcome, wall_s=1.0, compute_s=2.0, note="",
                details={})
    return {**base, **kw}


def test_a_partial_run_keeps_the_other_claims_rows(tmp_path):
    """Writing C5's rows keeps C2a's rows from an earlier run and replaces C5's old ones."""
    report.write([row(), row(claim="C5", test="test_y[smoke]", p_value=0.5)], tmp_path)
    report.write([row(claim="C5", test="test_y[smoke]", p_value=0.01)], tmp_path)
    rows = json.loads((tmp_path / "smoke" / "fashion-mnist" / "claims.json").read_text())
    assert [(r["claim"], r["p_value"]) for r in rows] == [("C2a", 0.0039), ("C5", 0.01)]
    md = (tmp_path / "smoke" / "fashion-mnist" / "claims.md").read_text()
    assert "| C5 |" in md and "| C2a |" in md


def test_rows_go_to_their_tier_and_dataset(tmp_path):
    """Rows of different tiers and datasets land in their own folders."""
    paths = report.write([row(), row(tier="full", dataset="mnist")], tmp_path)
    assert {p.parent.relative_to(tmp_path).as_posix() for p in paths} == {"smoke/fashion-mnist", "full/mnist"}


def test_verdict_words_follow_each_rows_own_decision():
    """A claim row says holds/FAILS by its own decision, xfail rows say they do not reproduce, and a
    negative control that passed is flagged."""
    assert report.verdict_word(row()) == "holds"
    assert report.verdict_word(row(passed=False, outcome="failed")) == "FAILS"
    assert report.verdict_word(row(passed=False, outcome="xfailed")) == "does not reproduce (xfail)"
    assert report.verdict_word(row(role="negative control", passed=False)) == "control ok"
    assert report.verdict_word(row(role="negative control", passed=True)) == "CONTROL PASSED"


def test_table_has_one_line_per_verdict_and_aligned_columns():
    """The terminal table: a header and one line per row, columns aligned."""
    lines = report.table([row(), row(role="negative control", passed=False)]).splitlines()
    assert len(lines) == 3 and lines[0].startswith("claim")
    assert lines[1].index("smoke") == lines[2].index("smoke")


def test_padded_carries_each_history_forward():
    """Ragged histories become a (runs, epochs) array, each run held at its last value."""
    out = report.padded([np.array([0.5, 1.0]), np.array([0.2, 0.4, 0.6])])
    np.testing.assert_array_equal(out, [[0.5, 1.0, 1.0], [0.2, 0.4, 0.6]])
