"""How a claim test ends, given its verdicts: the one rule every claim module shares.

    rows = decision_rows("C2a", verdict, control, parts=(), test=..., module=..., ...)   # its report rows
    outcome = claim_outcome(verdict, parts)
    conclude("C2a", verdict, control, parts=(), expected=None, note="...", control_note="...")

`conclude` fails the test with `pytest.fail` (which no xfail excuses) when the negative control
passed or when the claim failed with an outcome its strict xfail does not expect, and raises
AssertionError (the only exception a claim's strict xfail accepts) when the claim or one of its
parts does not hold. It returns only when everything holds.
"""
from __future__ import annotations

import pytest

from .rows import Row
from .stats import Verdict, all_of


def claim_outcome(verdict: Verdict, parts=()) -> str:
    """holds if the claim and every part hold; contradicted if their conjunction is (any part
    significant the other way, Bonferroni over the parts); else not shown."""
    return all_of([verdict, *(v for _, v in parts)], "claim and its parts").outcome


def decision_rows(claim: str, verdict: Verdict, control: Verdict, *, parts=(), test: str, module: str, tier: str,
                  dataset: str, note: str, control_note: str, compute_s: float, first_seed: int,
                  provenance: dict) -> list[Row]:
    """The report rows of one claim test: the claim (with the outcome of it and its parts), each
    further part, and the negative control."""
    common = dict(claim=claim, test=test, module=module, tier=tier, dataset=dataset, first_seed=first_seed,
                  provenance=provenance)
    return [Row.of(verdict, role="claim", note=note, compute_s=compute_s, claim_outcome=claim_outcome(verdict, parts),
                   **common),
            *(Row.of(part, role=role, **common) for role, part in parts),
            Row.of(control, role="negative control", note=control_note, **common)]


def conclude(claim: str, verdict: Verdict, control: Verdict, *, parts=(), expected: tuple[str, ...] | None,
             note: str = "", control_note: str = "") -> None:
    """End a claim test: see the module docstring. `parts` are (role, verdict) pairs; `expected` the
    failed outcomes a strict xfail accepts (None: the test is expected to hold)."""
    if control.passed:
        pytest.fail(f"{claim}: the negative control passed ({control_note}): "
                    f"p={control.p_value:.3g}, effect {control.effect:.3g}", pytrace=False)
    overall = claim_outcome(verdict, parts)
    if overall != "holds" and expected is not None and overall not in expected:
        pytest.fail(f"{claim}: outcome '{overall}', but its strict xfail expects {' or '.join(expected)} "
                    f"(p={verdict.p_value:.3g}, reverse p={verdict.p_reverse:.3g}, {verdict.effect_name} "
                    f"{verdict.effect:.3g}); {note}", pytrace=False)
    for role, part in parts:
        assert part.passed, (f"{claim} {part.outcome} ({role}): p={part.p_value:.3g}, reverse p="
                             f"{part.p_reverse:.3g}, effect {part.effect:.3g}; {note}")
    assert verdict.passed, (f"{claim} {verdict.outcome}: {verdict.test}, p={verdict.p_value:.3g}, reverse p="
                            f"{verdict.p_reverse:.3g}, {verdict.effect_name} {verdict.effect:.3g} "
                            f"(minimum {verdict.min_effect}); {note}")
