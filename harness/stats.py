"""The statistical decisions every claim uses, as plain functions returning a `Verdict`.

    v = censored_sign_test(slow, fast, slow_censored, fast_censored, alpha=0.05, min_ratio=1.2)
    v = share_test(successes, alpha=0.05, min_share=0.8)
    v = page_trend(values, alpha=0.05, min_effect=0.5)                      # (seeds, settings)
    v = all_of([v1, v2], "both parts")                                      # a conjunction

Inputs are arrays over seeds (blocks) or (seeds x settings); seeds are paired blocks wherever the
design allows. Every verdict has one of four outcomes (`Verdict.outcome`), decided in this order:
- "holds": the one-sided test in the claimed direction gives p < alpha and the effect reaches the
  minimum effect stated before the run;
- "contradicted": the same test the other way gives p < alpha (`p_reverse`) and the effect reaches
  the mirrored minimum (`reverse_min`: a ratio of 1/minimum, a share of 1 - minimum, a rho of -minimum);
- "absent": evidence that the effect is smaller than its minimum: the one-sided test of "effect >=
  minimum" rejects at alpha (`p_absent`; an exact sign or binomial test, so an equivalence-style
  decision with an exact error rate);
- "inconclusive": none of these.
Effects are medians over seeds of a per-seed effect (or a share of seeds), with the exact
distribution-free interval of the median from order statistics (inverting the sign test) or the
Clopper-Pearson interval of a share; `interval_level` is the interval's exact confidence, 95% or
above where the seeds allow it (with 5 seeds no order-statistic interval reaches 95%: [min, max] has
93.75%). `power` is the probability that the test is significant at alpha if the true effect were
exactly its minimum, under the observed per-seed dispersion (the method in each test's docstring);
`seeds_needed` is the fewest seeds at which that power reaches TARGET_POWER (None: more than
MAX_SEEDS, or never). A verdict that holds needs, in addition, its estimate to reach the minimum.
A p-value outside [0, 1] or NaN raises: a broken statistic never decides silently.

Few seeds bound the p-values: an exact one-sided sign test over 5 blocks cannot go below 1/32 =
0.031, over 8 blocks 1/256 (7 of 8: 0.035), Page's L with 5 blocks and 3 settings not below 1.3e-4.
Within one claim a conjunction is an intersection-union test (p = max of the parts, no correction
needed), contradicted or absent when any part is (Bonferroni over the parts).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

OUTCOMES = ("holds", "contradicted", "absent", "inconclusive")
FAILURES = OUTCOMES[1:]
TARGET_POWER = 0.8
MAX_SEEDS = 128
POWER_SIMULATIONS = 2000  # simulated data sets per seed count where power is simulated (Page's L)


@dataclass(frozen=True)
class Verdict:
    test: str  # the statistical test, in words
    statistic: float
    p_value: float
    alpha: float
    effect: float  # point estimate of `effect_name`
    effect_name: str
    interval: tuple[float, float]  # interval of the effect at `interval_level`
    interval_level: float  # the interval's exact (or, where stated, nominal) confidence
    min_effect: float  # the effect must reach this to hold (stated before the run)
    reverse_min: float  # the effect must be at or below this to be contradicted
    n: int  # blocks (seeds)
    p_reverse: float  # p of the same test in the opposite direction
    p_absent: float  # p of the one-sided test that the effect is at least its minimum
    power: float  # P(p < alpha) if the true effect were its minimum
    seeds_needed: int | None  # fewest seeds for power >= TARGET_POWER
    outcome: str
    details: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        expected = outcome(
            self.p_value, self.effect, self.min_effect, self.p_reverse, self.reverse_min, self.p_absent, self.alpha
        )
        if self.outcome != expected:
            raise ValueError(f"inconsistent verdict: outcome {self.outcome!r}, its numbers give {expected!r}")

    @property
    def passed(self) -> bool:
        return self.outcome == "holds"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def outcome(
    p: float, effect: float, min_effect: float, p_reverse: float, reverse_min: float, p_absent: float, alpha: float
) -> str:
    """The four-way rule of the module docstring."""
    if p < alpha and effect >= min_effect:
        return "holds"
    if p_reverse < alpha and effect <= reverse_min:
        return "contradicted"
    if p_absent < alpha:
        return "absent"
    return "inconclusive"


def checked_p(p) -> float:
    """`p` as a float, or ValueError when it is NaN or outside [0, 1] (beyond float rounding)."""
    p = float(p)
    if not -1e-12 <= p <= 1 + 1e-9:  # also false for NaN
        raise ValueError(f"p-value {p!r} is not a probability: the statistic behind it is broken")
    return min(max(p, 0.0), 1.0)


def _verdict(
    test,
    statistic,
    *,
    p,
    alpha,
    effect,
    effect_name,
    interval,
    interval_level,
    min_effect,
    reverse_min,
    n,
    p_reverse,
    p_absent,
    power_curve,
    details,
) -> Verdict:
    p, p_reverse, p_absent = checked_p(p), checked_p(p_reverse), checked_p(p_absent)
    power, needed = power_at(power_curve, n)
    return Verdict(
        test,
        float(statistic),
        p,
        alpha,
        float(effect),
        effect_name,
        (float(interval[0]), float(interval[1])),
        float(interval_level),
        min_effect,
        reverse_min,
        int(n),
        p_reverse,
        p_absent,
        power,
        needed,
        outcome(p, effect, min_effect, p_reverse, reverse_min, p_absent, alpha),
        {**details, "power_curve": {str(k): round(v, 4) for k, v in power_curve.items()}},
    )


def power_at(curve: dict[int, float], n: int) -> tuple[float, int | None]:
    """(power at n seeds, the fewest seeds in the curve with power >= TARGET_POWER or None)."""
    needed = next((k for k in sorted(curve) if curve[k] >= TARGET_POWER), None)
    return float(curve[n]), needed


def median_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(low, high, exact confidence) of the distribution-free interval of the median of `values`:
    order statistics (k, n + 1 - k) with the largest k whose confidence 1 - 2 P(Bin(n, 1/2) < k)
    is at least `level`, or the range (k = 1) where none is (fewer than 6 values at 95%)."""
    x = np.sort(np.asarray(values, float))
    n = len(x)
    if n == 0:
        raise ValueError("median_interval needs at least one value")
    conf = [1 - 2 * stats.binom.cdf(k - 1, n, 0.5) for k in range(1, n // 2 + 1)] or [0.0]
    k = max([i + 1 for i, c in enumerate(conf) if c >= level] or [1])
    return float(x[k - 1]), float(x[n - k]), float(1 - 2 * stats.binom.cdf(k - 1, n, 0.5)) if n > 1 else 0.0


def _sign_p(k: int, n: int) -> float:
    """P(Bin(n, 1/2) >= k): the exact one-sided sign test of k successes in n."""
    return float(stats.binom.sf(k - 1, n, 0.5))


@functools.cache
def _critical(n: int, alpha: float, null: float = 0.5) -> int:
    """The fewest successes in n whose one-sided binomial p (against `null`) is below alpha (n + 1: none)."""
    return next((k for k in range(n + 1) if stats.binom.sf(k - 1, n, null) < alpha), n + 1)


def binomial_power(q: float, alpha: float, null: float = 0.5) -> dict[int, float]:
    """Power of the exact one-sided binomial test against `null` when each seed succeeds with
    probability q, at every seed count 1..MAX_SEEDS (computed exactly, no simulation)."""
    return {n: float(stats.binom.sf(_critical(n, alpha, null) - 1, n, q)) for n in range(1, MAX_SEEDS + 1)}


def censored_sign_test(slow, fast, slow_censored, fast_censored, *, alpha: float, min_ratio: float) -> Verdict:
    """H1: in each seed, `slow` takes longer than `fast` (e.g. epochs to 100% train accuracy).

    Right-censored values (not reached within the budget; pass the budget as the value) count by
    what is known: a censored run took longer than any uncensored one of the same budget; two
    censored runs are undetermined. Statistic: the seeds where slow > fast is known; ties and
    undetermined seeds count against H1. p: exact one-sided binomial tail over all seeds. Effect:
    the median over seeds of slow/fast (censored values enter at the budget: a censored slow run
    makes its ratio a lower bound), with its order-statistic interval. Reverse: the same count for
    fast > slow, and a median ratio of at most 1/min_ratio. Absent: the seeds whose ratio is known
    to be below min_ratio (an uncensored slow run), exact sign test. Power: each seed's log ratio
    Gaussian with the observed standard deviation around log(min_ratio), so a seed supports H1 with
    probability Phi(log(min_ratio) / sd): the exact binomial power of that probability."""
    slow, fast = np.asarray(slow, float), np.asarray(fast, float)
    sc, fc = np.asarray(slow_censored, bool), np.asarray(fast_censored, bool)
    n = len(slow)
    if not (len(fast) == len(sc) == len(fc) == n) or n == 0:
        raise ValueError("slow, fast and their censoring flags must be non-empty and of one length")
    support = np.where(sc & fc, False, np.where(sc, True, np.where(fc, False, slow > fast)))
    against = np.where(sc & fc, False, np.where(fc, True, np.where(sc, False, fast > slow)))
    ratios = slow / fast
    below = ~sc & (ratios < min_ratio)  # fast censored: the ratio is an upper bound, so it is below too
    k, k_against, k_below = int(support.sum()), int(against.sum()), int(below.sum())
    lo, hi, level = median_interval(ratios)
    sd = float(np.std(np.log(ratios), ddof=1)) if n > 1 else 0.0
    q = 1.0 if sd == 0 else float(stats.norm.cdf(math.log(min_ratio) / sd))
    return _verdict(
        "exact one-sided sign test, censoring-aware",
        k,
        p=_sign_p(k, n),
        alpha=alpha,
        effect=float(np.median(ratios)),
        effect_name="median ratio slow/fast",
        interval=(lo, hi),
        interval_level=level,
        min_effect=min_ratio,
        reverse_min=1 / min_ratio,
        n=n,
        p_reverse=_sign_p(k_against, n),
        p_absent=_sign_p(k_below, n),
        power_curve=binomial_power(q, alpha),
        details={
            "supporting_seeds": k,
            "opposing_seeds": k_against,
            "seeds_below_minimum": k_below,
            "slow": slow.tolist(),
            "fast": fast.tolist(),
            "slow_censored": sc.tolist(),
            "fast_censored": fc.tolist(),
            "log_ratio_sd": sd,
        },
    )


def share_test(successes, *, alpha: float, min_share: float, null_share: float = 0.5) -> Verdict:
    """H1: the probability that a seed succeeds exceeds `null_share` (exact one-sided binomial test).

    Effect: the observed share of successful seeds, with its exact (Clopper-Pearson) 95% interval.
    Reverse: the share is below `null_share`, and at most 1 - min_share. Absent: the share is below
    min_share (exact binomial test of H0: share >= min_share). Power: the exact binomial power when
    each seed succeeds with probability min_share."""
    successes = np.asarray(successes, bool)
    n, k = len(successes), int(successes.sum())
    if n == 0:
        raise ValueError("share_test needs at least one seed")
    res = stats.binomtest(k, n, null_share, alternative="greater")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")  # two-sided
    return _verdict(
        f"exact one-sided binomial test (H0: share <= {null_share})",
        k,
        p=res.pvalue,
        alpha=alpha,
        effect=k / n,
        effect_name="share of seeds",
        interval=(ci.low, ci.high),
        interval_level=0.95,
        min_effect=min_share,
        reverse_min=1 - min_share,
        n=n,
        p_reverse=stats.binomtest(k, n, null_share, alternative="less").pvalue,
        p_absent=stats.binomtest(k, n, min_share, alternative="less").pvalue,
        power_curve=binomial_power(min_share, alpha, null_share),
        details={"successes": successes.tolist()},
    )


def _ranks(data: np.ndarray) -> np.ndarray:
    """Ranks 1..k along the last axis of continuous data (no ties)."""
    return data.argsort(-1).argsort(-1) + 1.0


@functools.cache
def _page_null(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(values of Page's L, their probabilities) without ties under H0, exactly: the sum over n
    seeds of sum_j j * R_j for independent uniform rank permutations (a convolution of n rows)."""
    row = np.bincount([sum((j + 1) * (r + 1) for j, r in enumerate(p)) for p in itertools.permutations(range(k))])
    dist = np.array([1.0])
    for _ in range(n):
        dist = np.convolve(dist, row / row.sum())
    return np.arange(len(dist)), dist


def _page_critical(n: int, k: int, alpha: float) -> float:
    """The smallest L whose exact upper-tail probability under H0 is below alpha."""
    values, probs = _page_null(n, k)
    tail = np.cumsum(probs[::-1])[::-1]  # P(L >= value)
    return float(values[np.argmax(tail < alpha)])


def _trend_slope(min_rho: float, k: int, rng: np.random.Generator) -> float:
    """The slope b of rows b * (0..k-1) + N(0, 1) whose expected per-seed Spearman rho is min_rho."""
    noise = rng.standard_normal((4000, k))
    order = np.arange(k)

    def mean_rho(b):
        r = _ranks(b * order + noise) - (k + 1) / 2
        return float((r @ (order - (k - 1) / 2)).mean() / ((k**3 - k) / 12))

    lo, hi = 0.0, 50.0
    if min_rho <= 0:
        return 0.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mean_rho(mid) < min_rho else (lo, mid)
    return (lo + hi) / 2


@functools.cache
def page_power(min_rho: float, k: int, alpha: float, seeds: tuple[int, ...]) -> dict[int, float]:
    """Power of Page's L when each seed's row is a linear trend in Gaussian noise whose expected
    Spearman rho is min_rho, simulated with a generator of its own (POWER_SIMULATIONS data sets per
    seed count: Monte Carlo standard error at most 0.011), at the seed counts `seeds`; the test's
    critical value is exact. It depends on the design (minimum, settings, seeds), not on the data."""
    if k > 7:  # the exact null distribution would enumerate k! permutations: no power reported
        return dict.fromkeys(seeds, float("nan"))
    from . import numpy_generator

    b = _trend_slope(min_rho, k, numpy_generator("page power slope", min_rho, k))
    weights = np.arange(1, k + 1)
    out = {}
    for n in seeds:  # each seed count draws from its own generator: its power does not depend on the others
        rows = b * np.arange(k) + numpy_generator("page power", min_rho, k, alpha, n).standard_normal(
            (POWER_SIMULATIONS, n, k)
        )
        L = (_ranks(rows) @ weights).sum(-1)
        out[n] = float((L >= _page_critical(n, k, alpha)).mean())
    return out


def page_trend(data, *, alpha: float, min_effect: float) -> Verdict:
    """H1: values increase along the settings (columns), seeds (rows) being blocks: Page's L test.

    data: (seeds, settings), settings ordered by the predicted increase. Effect: median over seeds
    of Spearman's rho between setting order and value (1 = perfectly increasing), with its
    order-statistic interval. Reverse: Page's L on the settings in the opposite order, and a median
    rho of at most -min_effect. Absent: the seeds with rho below min_effect, exact sign test.
    Power: `page_power` at the design's seeds; `seeds_needed` is the fewest of its simulated seed
    counts (2-6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128) that reaches TARGET_POWER."""
    data = np.asarray(data, float)
    if data.ndim != 2:
        raise ValueError(f"Page's L needs a (seeds, settings) table, got shape {data.shape}")
    n, k = data.shape
    if k < 3 or n < 2:
        raise ValueError(f"Page's L needs at least 3 settings and 2 seeds, got {k} and {n}")
    res = stats.page_trend_test(data, method="auto")  # exact only for few settings: it enumerates k!
    order = np.arange(k)
    rhos = np.array([stats.spearmanr(order, row).statistic if np.ptp(row) > 0 else 0.0 for row in data])
    lo, hi, level = median_interval(rhos)
    below = int((rhos < min_effect).sum())
    curve = page_power(min_effect, k, alpha, tuple(sorted({*_PAGE_SEEDS, n})))
    return _verdict(
        "Page's L trend test, seeds as blocks",
        res.statistic,
        p=res.pvalue,
        alpha=alpha,
        effect=float(np.median(rhos)),
        effect_name="median Spearman rho",
        interval=(lo, hi),
        interval_level=level,
        min_effect=min_effect,
        reverse_min=-min_effect,
        n=n,
        p_reverse=stats.page_trend_test(data[:, ::-1], method="auto").pvalue,
        p_absent=_sign_p(below, n),
        power_curve=curve,
        details={"rho_per_seed": rhos.tolist(), "seeds_below_minimum": below},
    )


_PAGE_SEEDS = (2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128)


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
    every part must reject); the reported effect and interval are those of the part that contradicts
    the conjunction, else of the part furthest below its minimum. Contradicted when a part is
    contradicted at alpha / parts (Bonferroni: p_reverse = parts x the smallest reverse p among the
    parts whose effect reaches their reverse minimum), and absent when a part is absent (p_absent =
    parts x the smallest). Power: the product of the parts'
    powers at each seed count (exact for independent parts, a lower bound for positively dependent
    ones). All parts must share one alpha and one seed count."""
    if not verdicts:
        raise ValueError("all_of needs at least one verdict")
    if len({v.alpha for v in verdicts}) > 1:
        raise ValueError("all_of: the parts use different alphas; decide them at one alpha")
    m = len(verdicts)
    reversed_parts = [v for v in verdicts if v.effect <= v.reverse_min]
    p_reverse = min(1.0, m * min(v.p_reverse for v in (reversed_parts or verdicts)))
    p_absent = min(1.0, m * min(v.p_absent for v in verdicts))
    # The part shown: the one that contradicts the conjunction, else the one furthest below its minimum.
    shown = (
        min(reversed_parts, key=lambda v: v.p_reverse)
        if reversed_parts and p_reverse < verdicts[0].alpha
        else min(verdicts, key=lambda v: v.effect - v.min_effect)
    )
    curves = [{int(n): p for n, p in v.details["power_curve"].items()} for v in verdicts]
    common = sorted(set.intersection(*(set(c) for c in curves)))
    return _verdict(
        f"intersection-union of {m}: {test}",
        max(verdicts, key=lambda v: v.p_value).statistic,
        p=max(v.p_value for v in verdicts),
        alpha=shown.alpha,
        effect=shown.effect,
        effect_name=shown.effect_name,
        interval=shown.interval,
        interval_level=shown.interval_level,
        min_effect=shown.min_effect,
        reverse_min=shown.reverse_min,
        n=shown.n,
        p_reverse=p_reverse,
        p_absent=p_absent,
        power_curve={n: float(np.prod([c[n] for c in curves])) for n in common},
        details={"parts": [v.as_dict() for v in verdicts]},
    )


def geomean(x, axis=-1):
    """Geometric mean along `axis` (of positive values)."""
    return np.exp(np.mean(np.log(x), axis=axis))
