"""The statistical decisions every claim uses, as plain functions returning a `Verdict`.

Inputs are arrays over seeds (blocks) or (seeds x settings); seeds are paired blocks wherever the
design allows. Intervals come from a percentile bootstrap over seeds with an explicit
`numpy.random.Generator`, so a verdict is reproducible.

Every verdict has one of three outcomes (`Verdict.outcome`):
- "holds": the one-sided test in the claimed direction gives p < alpha *and* the effect reaches the
  minimum effect stated before the run (`Verdict.passed`);
- "contradicted": the same test in the opposite direction gives p < alpha (`Verdict.p_reverse`),
  e.g. noise fitted significantly *before* real data;
- "not shown": neither (underpowered, or an effect smaller than the minimum).
A p-value outside [0, 1] or NaN raises: a broken statistic never decides silently.

Few seeds bound the p-values: an exact one-sided sign test over 5 blocks cannot go below
1/32 = 0.031, Page's L with 5 blocks and 3 settings not below 1.3e-4 (docs/design.md). Within one claim,
a conjunction ("faster than A and than B") is an intersection-union test (p = max of the parts, no
correction needed), which is contradicted when any part is (Bonferroni over the parts' reverse
p-values); a family of alternatives ("any of") uses Holm.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import stats

OUTCOMES = ("holds", "contradicted", "not shown")

@dataclass(frozen=True)
class Verdict:
    test: str  # the statistical test, in words
    statistic: float
    p_value: float
    alpha: float
    effect: float  # point estimate of `effect_name`
    effect_name: str
    interval: tuple[float, float]  # 95% interval of the effect
    min_effect: float  # the effect must reach this (stated before the run)
    n: int  # blocks (seeds)
    passed: bool  # outcome == "holds"
    p_reverse: float  # p of the same test in the opposite direction
    outcome: str  # holds | contradicted | not shown (module docstring)
    details: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.outcome not in OUTCOMES or self.passed != (self.outcome == "holds"):
            raise ValueError(f"inconsistent verdict: outcome {self.outcome!r}, passed {self.passed}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def checked_p(p) -> float:
    """`p` as a float, or ValueError when it is NaN or outside [0, 1] (beyond float rounding)."""
    p = float(p)
    if not -1e-12 <= p <= 1 + 1e-9:  # also false for NaN
        raise ValueError(f"p-value {p!r} is not a probability: the statistic behind it is broken")
    return min(max(p, 0.0), 1.0)


def outcome(passed: bool, p_reverse: float, alpha: float) -> str:
    return "holds" if passed else "contradicted" if p_reverse < alpha else "not shown"


def _verdict(test, statistic, p, alpha, effect, effect_name, interval, min_effect, n, details, *,
             p_reverse: float) -> Verdict:
    p, p_reverse = checked_p(p), checked_p(p_reverse)
    passed = bool(p < alpha and effect >= min_effect)
    return Verdict(test, float(statistic), p, alpha, float(effect), effect_name,
                   (float(interval[0]), float(interval[1])), min_effect, int(n), passed, p_reverse,
                   outcome(passed, p_reverse, alpha), details)


def bootstrap_interval(values, statistic, rng: np.random.Generator, level: float = 0.95,
                       n_resamples: int = 4000) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic(values, axis=-1)` over the seeds in `values` (n,).

    Degenerate data (all seeds equal) gives a zero-width interval instead of scipy's NaN."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        raise ValueError("bootstrap_interval needs at least one value")
    if len(values) < 2 or np.all(values == values[0]):
        point = float(statistic(values, axis=-1))
        return point, point
    res = stats.bootstrap((values,), statistic, rng=rng, method="percentile", confidence_level=level,
                          n_resamples=n_resamples, vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def geomean(x, axis=-1):
    """Geometric mean along `axis` (of positive values)."""
    return np.exp(np.mean(np.log(x), axis=axis))


def censored_sign_test(slow, fast, slow_censored, fast_censored, *, alpha: float, min_ratio: float,
                       rng: np.random.Generator) -> Verdict:
    """H1: in each seed, `slow` takes longer than `fast` (e.g. epochs to 100% train accuracy).

    Right-censored values (not reached within the budget; pass the budget as the value) are
    handled by what is known: a censored run took longer than any uncensored one of the same
    budget; two censored runs are undetermined. Statistic: the number of seeds where slow > fast
    is known; ties and undetermined seeds count against H1 (conservative). p: exact one-sided
    binomial tail with probability 1/2 over all seeds. Effect: geometric mean of slow/fast over
    seeds (censored values enter at the budget, so a censored slow run makes it a lower bound).
    Reverse: the same count for seeds where fast > slow is known."""
    slow, fast = np.asarray(slow, float), np.asarray(fast, float)
    sc, fc = np.asarray(slow_censored, bool), np.asarray(fast_censored, bool)
    n = len(slow)
    if not (len(fast) == len(sc) == len(fc) == n) or n == 0:
        raise ValueError("slow, fast and their censoring flags must be non-empty and of one length")
    support = np.where(sc & fc, False, np.where(sc, True, np.where(fc, False, slow > fast)))
    against = np.where(sc & fc, False, np.where(fc, True, np.where(sc, False, fast > slow)))
    k, k_against = int(support.sum()), int(against.sum())
    p = stats.binomtest(k, n, 0.5, alternative="greater").pvalue
    ratios = slow / fast
    return _verdict("exact one-sided sign test, censoring-aware", k, p, alpha, geomean(ratios),
                    "geometric-mean ratio slow/fast", bootstrap_interval(ratios, geomean, rng), min_ratio, n,
                    {"supporting_seeds": k, "opposing_seeds": k_against, "slow": slow.tolist(),
                     "fast": fast.tolist(), "slow_censored": sc.tolist(), "fast_censored": fc.tolist()},
                    p_reverse=stats.binomtest(k_against, n, 0.5, alternative="greater").pvalue)


def share_test(successes, *, alpha: float, min_share: float, null_share: float = 0.5) -> Verdict:
    """H1: the probability that a seed succeeds exceeds `null_share` (exact one-sided binomial test).

    Effect: the observed share of successful seeds, with its exact (Clopper-Pearson) 95% interval.
    Reverse: the share is below `null_share` (e.g. random labels are fitted in fewer seeds than not)."""
    successes = np.asarray(successes, bool)
    n, k = len(successes), int(successes.sum())
    res = stats.binomtest(k, n, null_share, alternative="greater")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")  # two-sided
    return _verdict(f"exact one-sided binomial test (H0: share <= {null_share})", k, res.pvalue, alpha,
                    k / n, "share of seeds", (ci.low, ci.high), min_share, n, {"successes": successes.tolist()},
                    p_reverse=stats.binomtest(k, n, null_share, alternative="less").pvalue)


def page_trend(data, *, alpha: float, min_effect: float, rng: np.random.Generator) -> Verdict:
    """H1: values increase along the settings (columns), seeds (rows) being blocks: Page's L test.

    data: (seeds, settings), settings ordered by the predicted increase. Effect: mean over seeds of
    Spearman's rho between setting order and value (1 = perfectly increasing in every seed).
    Reverse: Page's L on the settings in the opposite order (values decrease)."""
    data = np.asarray(data, float)
    n, k = data.shape
    if k < 3 or n < 2:
        raise ValueError(f"Page's L needs at least 3 settings and 2 seeds, got {k} and {n}")
    res = stats.page_trend_test(data, method="auto")  # exact only for few settings: it enumerates k!
    order = np.arange(k)
    rhos = np.array([stats.spearmanr(order, row).statistic if np.ptp(row) > 0 else 0.0 for row in data])
    return _verdict("Page's L trend test, seeds as blocks", res.statistic, res.pvalue, alpha, rhos.mean(),
                    "mean Spearman rho", bootstrap_interval(rhos, np.mean, rng), min_effect, n,
                    {"rho_per_seed": rhos.tolist()},
                    p_reverse=stats.page_trend_test(data[:, ::-1], method="auto").pvalue)


def holm(p_values) -> np.ndarray:
    """Holm-adjusted p-values (reject H_i when adjusted p_i < alpha); controls the family-wise error."""
    p = np.asarray(p_values, float)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def all_of(verdicts: list[Verdict], test: str) -> Verdict:
    """Intersection-union test of a conjunction: it holds only if every part holds.

    p = max of the parts' p-values (valid at level alpha with no multiplicity correction, because
    every part must reject); the reported effect and interval are those of the weakest part.
    It is contradicted when any part is: p_reverse = Bonferroni over the parts' reverse p-values.
    All parts must share one alpha."""
    if not verdicts:
        raise ValueError("all_of needs at least one verdict")
    if len({v.alpha for v in verdicts}) > 1:
        raise ValueError("all_of: the parts use different alphas; decide them at one alpha")
    weakest = max(verdicts, key=lambda v: (v.p_value, -v.effect))
    worst_effect = min(verdicts, key=lambda v: v.effect - v.min_effect)
    passed = all(v.passed for v in verdicts)
    p_reverse = min(1.0, len(verdicts) * min(v.p_reverse for v in verdicts))
    return dataclasses.replace(
        worst_effect, test=f"intersection-union of {len(verdicts)}: {test}", statistic=weakest.statistic,
        p_value=max(v.p_value for v in verdicts), passed=passed, p_reverse=p_reverse,
        outcome=outcome(passed, p_reverse, worst_effect.alpha), details={"parts": [v.as_dict() for v in verdicts]})
