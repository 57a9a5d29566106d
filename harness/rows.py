"""The report row: one verdict (a claim's decision, a part of it, or its negative control) with its
outcome and the provenance of the session that made it, as one typed record that owns its schema.

    row = Row.of(verdict, claim="C2a", test="test_x[smoke]", module="claims/test_x.py", role="claim", ...)
    text = row.to_json()                       # how it travels from an xdist worker and is stored
    row = Row.from_dict(json.loads(text))

A row checks itself when it is made: its outcome must follow from its own p-values, alpha, effect
and minimum effect by the rule of harness.stats (holds: p < alpha and effect >= minimum;
contradicted: otherwise, reverse p < alpha; not shown: neither), so a row that misreports its
verdict cannot be written or read back.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

from .stats import OUTCOMES, Verdict

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
    interval: tuple[float, float]  # 95% interval of the effect
    min_effect: float
    n_seeds: int
    passed: bool  # the row's own verdict holds
    verdict: str  # the row's own outcome
    claim_outcome: str | None  # claim rows: the outcome of the claim with its parts; None for other rows
    note: str
    compute_s: float  # training seconds of the runs behind it
    seeds: tuple[int, int]  # first and last seed
    provenance: dict  # harness.provenance.session_provenance, runs_trained_with and the verdict code hash
    details: dict  # the statistic's per-seed data
    pytest: str | None = None  # how pytest took the test, filled in by the controlling process
    wall_s: float | None = None  # the test's wall time, likewise

    def __post_init__(self):
        object.__setattr__(self, "interval", tuple(self.interval))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        problems = self.problems()
        if problems:
            raise ValueError(f"report row {self.claim} {self.test} ({self.role}) is inconsistent: "
                             f"{'; '.join(problems)}")

    def problems(self) -> list[str]:
        """What contradicts the row's own numbers (empty for a consistent row)."""
        out = []
        for name in ("p_value", "p_reverse"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                out.append(f"{name} {p} is not a probability")
        if self.verdict not in OUTCOMES:
            out.append(f"verdict {self.verdict!r} is not one of {OUTCOMES}")
        holds = self.p_value < self.alpha and self.effect >= self.min_effect
        if self.passed != holds:
            out.append(f"passed is {self.passed}, but p {self.p_value:.3g} against alpha {self.alpha} and effect "
                       f"{self.effect:.3g} against minimum {self.min_effect} say {holds}")
        expected = "holds" if holds else "contradicted" if self.p_reverse < self.alpha else "not shown"
        if self.verdict != expected:
            out.append(f"verdict {self.verdict!r}, but its p-values, effect and minimum give {expected!r}")
        if (self.role == "claim") != (self.claim_outcome is not None):
            out.append("a claim row (and only a claim row) has the outcome of the claim with its parts")
        elif self.claim_outcome is not None and (self.claim_outcome not in OUTCOMES
                                                 or (self.claim_outcome == "holds") > self.passed):
            out.append(f"claim outcome {self.claim_outcome!r} does not fit its own verdict {self.verdict!r}")
        lo, hi = self.interval
        if not (math.isnan(lo) or math.isnan(hi)) and lo > hi:
            out.append(f"interval [{lo}, {hi}] is reversed")
        if self.pytest not in PYTEST_OUTCOMES:
            out.append(f"pytest outcome {self.pytest!r} is not one of {PYTEST_OUTCOMES[1:]}")
        return out

    @classmethod
    def of(cls, verdict: Verdict, *, claim: str, test: str, module: str, role: str, tier: str, dataset: str,
           note: str = "", compute_s: float = 0.0, claim_outcome: str | None = None, first_seed: int = 0,
           provenance: dict) -> "Row":
        """The row of `verdict`, its seeds first_seed .. first_seed + n - 1."""
        return cls(claim, test, module, role, tier, dataset, verdict.test, verdict.statistic, verdict.p_value,
                   verdict.p_reverse, verdict.alpha, verdict.effect, verdict.effect_name, verdict.interval,
                   verdict.min_effect, verdict.n, verdict.passed, verdict.outcome, claim_outcome, note,
                   round(compute_s, 2), (first_seed, first_seed + verdict.n - 1), provenance, verdict.details)

    @classmethod
    def from_dict(cls, d: dict) -> "Row":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"report row has unknown fields {sorted(unknown)}")
        return cls(**d)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["interval"], d["seeds"] = list(self.interval), list(self.seeds)
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
