"""How a claim test ends, given its verdicts: the one rule every claim module shares.

    rows = decision_rows("C2a", verdict, control, parts=(), gates=(), test=..., module=..., ...)  # report rows
    outcome = claim_outcome(verdict, parts, gates)
    conclude("C2a", verdict, control, parts=(), gates=(), expected=None, dataset="mnist", note="...")

A claim's outcome is that of the claim and its parts as one conjunction (harness.stats.all_of),
unless a gate of its design failed (`Gate`: a precondition such as "95% of the runs converged"): then
it is "inconclusive", whatever the statistics say. `conclude` fails the test (pytest.fail) when the
negative control held; otherwise, where no outcome is recorded for the claim's tier and dataset
(`expected` None), the claim must hold (AssertionError if not); where outcomes are recorded, the
outcome must be one of them (a failure ends as pytest.xfail, a recorded "holds" passes) and anything
else, an unrecorded "holds" included, fails the test.

Waves (a tier that trains its seeds in several, harness.session): after each wave but the last, a
claim whose seeds so far lean away from it (`futile`) stops there, with the failed gate `stopped`;
otherwise the next wave trains more seeds and the claim is decided again on all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .rows import Row
from .stats import Verdict, all_of


@dataclass(frozen=True)
class Gate:
    """A precondition of a claim's design: `value` must be at least (or at most) `bound`."""

    name: str
    value: float
    bound: float
    at_most: bool = False

    @property
    def passed(self) -> bool:
        return self.value <= self.bound if self.at_most else self.value >= self.bound

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "value": float(self.value),
            "bound": self.bound,
            "at_most": self.at_most,
            "passed": self.passed,
        }


FUTILITY_P = 0.5  # after a wave but the last: a claim or part with a larger one-sided p-value stops


def futile(verdict: Verdict, parts=()) -> bool:
    """Whether a claim stops for futility after a wave that is not its last: the one-sided p-value of
    the claim, or of one of its parts, exceeds FUTILITY_P on the seeds so far (its statistic is on the
    null's side of the null's median: the seeds do not lean toward the claim). Such a stop can only
    make "holds" rarer, so it keeps every test's alpha whatever the data (non-binding futility); it
    costs power only where a claim that leans away at half its seeds would have held at all of them
    (for an exact sign test at 4 of 8 seeds, none: 2 of 4 cannot become the 7 of 8 it needs)."""
    return any(v.p_value > FUTILITY_P for v in (verdict, *(v for _, v in parts)))


def stopped(trained: int, planned: int) -> Gate:
    """The gate of a claim that stopped for futility with `trained` of its `planned` seeds: it fails,
    so the claim is inconclusive (contradicted and absent are decided on all the waves only)."""
    return Gate(f"seeds trained (stopped for futility, p > {FUTILITY_P} on the first {trained})", trained, planned)


def claim_outcome(verdict: Verdict, parts=(), gates=()) -> str:
    """inconclusive if a gate failed; else the outcome of the claim and its parts as a conjunction
    (holds if all hold; contradicted or absent if a part is, Bonferroni over the parts)."""
    if any(not g.passed for g in gates):
        return "inconclusive"
    return all_of([verdict, *(v for _, v in parts)], "claim and its parts").outcome


def decision_rows(
    claim: str,
    verdict: Verdict,
    control: Verdict,
    *,
    parts=(),
    gates=(),
    test: str,
    module: str,
    tier: str,
    dataset: str,
    note: str,
    control_note: str,
    compute_s: float,
    first_seed: int,
    provenance: dict,
    expected: tuple[str, ...] | None = None,
) -> list[Row]:
    """The report rows of one claim test: the claim (with the outcome of it, its parts and gates),
    each further part, and the negative control."""
    common = dict(
        claim=claim, test=test, module=module, tier=tier, dataset=dataset, first_seed=first_seed, provenance=provenance
    )
    return [
        Row.of(
            verdict,
            role="claim",
            note=note,
            compute_s=compute_s,
            claim_outcome=claim_outcome(verdict, parts, gates),
            gates=tuple(g.as_dict() for g in gates),
            expected=None if expected is None else {"dataset": dataset, "outcomes": list(expected)},
            **common,
        ),
        *(Row.of(part, role=role, **common) for role, part in parts),
        Row.of(control, role="negative control", note=control_note, **common),
    ]


def conclude(
    claim: str,
    verdict: Verdict,
    control: Verdict,
    *,
    parts=(),
    gates=(),
    expected: tuple[str, ...] | None,
    dataset: str = "",
    note: str = "",
    control_note: str = "",
) -> None:
    """End a claim test: see the module docstring. `parts` are (role, verdict) pairs; `expected` the
    failed outcomes recorded for this tier and dataset (None: the claim is expected to hold)."""
    if control.passed:
        pytest.fail(
            f"{claim}: the negative control held ({control_note}): "
            f"p={control.p_value:.3g}, effect {control.effect:.3g}",
            pytrace=False,
        )
    overall = claim_outcome(verdict, parts, gates)
    failed = [g.name for g in gates if not g.passed]
    summary = (
        f"{claim} {overall}"
        + (f" (gate failed: {', '.join(failed)})" if failed else "")
        + f": {verdict.test}, p={verdict.p_value:.3g}, reverse p={verdict.p_reverse:.3g}, absent p="
        f"{verdict.p_absent:.3g}, {verdict.effect_name} {verdict.effect:.3g} (minimum {verdict.min_effect})"
        + "".join(f"; {role}: {part.outcome}" for role, part in parts)
        + f"; {note}"
    )
    if expected is None:
        assert overall == "holds", summary
        return
    if overall == "holds" and "holds" in expected:  # recorded as changing with the seed set
        return
    if overall == "holds":
        pytest.fail(
            f"{summary}. It holds, but {' or '.join(expected)} is recorded for {dataset}: record the new "
            "outcome (tier_params in the claim module) once it is confirmed",
            pytrace=False,
        )
    if overall not in expected:
        pytest.fail(f"{summary}. The outcome recorded for {dataset} is {' or '.join(expected)}", pytrace=False)
    pytest.xfail(f"{overall}, as recorded for {dataset}: {summary}")
