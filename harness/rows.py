"""The report row: one verdict (a claim's decision, a part of it, or its negative control) with its
outcome and the provenance of the session that made it, as one typed record that owns its schema.

    row = Row.of(verdict, claim="C2a", test="test_x[smoke]", module="claims/test_x.py", role="claim", ...)
    text = row.to_json()                       # how it travels from an xdist worker and is stored
    row = Row.from_dict(json.loads(text))

A row checks itself when it is made: its outcome must follow from its own p-values, alpha, effect
and minimum effects by the four-way rule of harness.stats (holds, contradicted, absent,
inconclusive), a claim's outcome from its own, its parts' and its gates' (a gate, a precondition of
the design such as "95% of the runs converged", that fails makes the claim inconclusive), so a row
that misreports its verdict cannot be written or read back.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from .stats import OUTCOMES, Verdict, outcome

PYTEST_OUTCOMES = (None, "passed", "failed", "skipped", "xfailed", "xpassed")


@dataclass(frozen=True)
class Row:
    claim: str  # C0 ... C5
    test: str  # the pytest test name with its parameters
    module: str  # the claim module's path from the repository root
    role: str  # "claim", "negative control", or the name of a further part of the claim
    tier: str
    dataset: str
    method: str  # the statistical test, in words
    statistic: float
    p_value: float
    p_reverse: float  # the same test in the opposite direction
    alpha: float
    effect: float
    effect_name: str
    interval: tuple[float, float]  # interval of the effect at interval_level
    min_effect: float
    n_seeds: int
    passed: bool  # the row's own verdict holds
    verdict: str  # the row's own outcome
    claim_outcome: str | None  # claim rows: the outcome of the claim with its parts; None for other rows
    note: str
    compute_s: float  # training seconds of the runs behind it
    seeds: tuple[int, int]  # first and last seed
    provenance: dict  # harness.provenance.session_provenance, runs_trained_with, verdict and design hashes
    details: dict  # the statistic's per-seed data
    pytest: str | None = None  # how pytest took the test, filled in by the controlling process
    wall_s: float | None = None  # the test's wall time, likewise
    interval_level: float = 0.95  # the interval's exact confidence
    reverse_min: float = float("nan")  # contradicted needs the effect at or below this
    p_absent: float = 1.0  # p of the test that the effect is at least its minimum
    power: float = float("nan")  # P(p < alpha) if the effect were its minimum
    seeds_needed: int | None = None  # fewest seeds at which that power reaches 0.8
    gates: tuple[dict, ...] = ()  # claim rows: the design's preconditions {name, value, bound, at_most, passed}
    expected: dict | None = None  # claim rows: {"dataset", "outcomes"} recorded for this tier and dataset

    def __post_init__(self):
        object.__setattr__(self, "interval", tuple(self.interval))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        object.__setattr__(self, "gates", tuple(self.gates))
        problems = self.problems()
        if problems:
            raise ValueError(
                f"report row {self.claim} {self.test} ({self.role}) is inconsistent: {'; '.join(problems)}"
            )

    def problems(self) -> list[str]:
        """What contradicts the row's own numbers (empty for a consistent row)."""
        out = []
        if self.verdict not in OUTCOMES:
            out.append(f"verdict {self.verdict!r} is not one of {OUTCOMES}")
        if not self.problems_of_numbers():
            rule = outcome(
                self.p_value, self.effect, self.min_effect, self.p_reverse, self.reverse_min, self.p_absent, self.alpha
            )
            if self.verdict != rule:
                out.append(f"verdict {self.verdict!r}, but its p-values, effect and minima give {rule!r}")
        if self.passed != (self.verdict == "holds"):
            out.append(f"passed is {self.passed} for the verdict {self.verdict!r}")
        if (self.role == "claim") != (self.claim_outcome is not None):
            out.append("a claim row (and only a claim row) has the outcome of the claim with its parts")
        elif self.claim_outcome is not None:
            failed_gate = any(not g["passed"] for g in self.gates)
            if self.claim_outcome not in OUTCOMES or (self.claim_outcome == "holds") > self.passed:
                out.append(f"claim outcome {self.claim_outcome!r} does not fit its own verdict {self.verdict!r}")
            if failed_gate and self.claim_outcome != "inconclusive":
                out.append(f"claim outcome {self.claim_outcome!r} although a gate of its design failed")
        for g in self.gates:
            if g["passed"] != (g["value"] <= g["bound"] if g["at_most"] else g["value"] >= g["bound"]):
                out.append(
                    f"gate {g['name']!r}: passed {g['passed']} does not follow from {g['value']} against {g['bound']}"
                )
        lo, hi = self.interval
        if not (math.isnan(lo) or math.isnan(hi)) and lo > hi:
            out.append(f"interval [{lo}, {hi}] is reversed")
        if self.pytest not in PYTEST_OUTCOMES:
            out.append(f"pytest outcome {self.pytest!r} is not one of {PYTEST_OUTCOMES[1:]}")
        if self.expected is not None and (
            not set(self.expected["outcomes"]) <= set(OUTCOMES) or self.expected["outcomes"] == ["holds"]
        ):
            out.append(f"expected outcomes {self.expected['outcomes']} must include a failure of {OUTCOMES[1:]}")
        return out + self.problems_of_numbers()

    def problems_of_numbers(self) -> list[str]:
        return [
            f"{name} {getattr(self, name)} is not a probability"
            for name in ("p_value", "p_reverse", "p_absent")
            if not 0.0 <= getattr(self, name) <= 1.0
        ]

    @classmethod
    def of(
        cls,
        verdict: Verdict,
        *,
        claim: str,
        test: str,
        module: str,
        role: str,
        tier: str,
        dataset: str,
        note: str = "",
        compute_s: float = 0.0,
        claim_outcome: str | None = None,
        first_seed: int = 0,
        provenance: dict,
        gates: tuple[dict, ...] = (),
        expected: dict | None = None,
    ) -> "Row":
        """The row of `verdict`, its seeds first_seed .. first_seed + n - 1."""
        return cls(
            claim,
            test,
            module,
            role,
            tier,
            dataset,
            verdict.test,
            verdict.statistic,
            verdict.p_value,
            verdict.p_reverse,
            verdict.alpha,
            verdict.effect,
            verdict.effect_name,
            verdict.interval,
            verdict.min_effect,
            verdict.n,
            verdict.passed,
            verdict.outcome,
            claim_outcome,
            note,
            round(compute_s, 2),
            (first_seed, first_seed + verdict.n - 1),
            provenance,
            verdict.details,
            interval_level=verdict.interval_level,
            reverse_min=verdict.reverse_min,
            p_absent=verdict.p_absent,
            power=verdict.power,
            seeds_needed=verdict.seeds_needed,
            gates=tuple(gates),
            expected=expected,
        )

    @classmethod
    def from_dict(cls, d: dict) -> "Row":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"report row has unknown fields {sorted(unknown)}")
        return cls(**d)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["interval"], d["seeds"], d["gates"] = list(self.interval), list(self.seeds), list(self.gates)
        return d

    def to_json(self) -> str:
        return json.dumps(self.as_dict())

    @property
    def base_seed(self) -> int:
        return self.provenance.get("base_seed", 0)

    @property
    def device(self) -> str:
        return self.provenance.get("device", "cpu")

    @property
    def run(self) -> tuple[int, str]:
        """(base seed, device) of the session that made the row."""
        return self.base_seed, self.device

    @property
    def outcome(self) -> str:
        """The outcome of the row's claim (with its parts), or of the row itself."""
        return self.claim_outcome or self.verdict
