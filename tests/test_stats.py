"""Unit and property tests of harness/stats.py, the statistics behind every claim's verdict.

    /tmp/venvtest/bin/python -m pytest tests/test_stats.py -q      # about 20 s on 2 CPU cores

Three kinds of check. (1) Error rates on simulated data: under each test's null the rejection rate
(p < alpha) over 2000 seeded replications is at most alpha + 3 binomial standard errors, and a clear
alternative is rejected. (2) Hypothesis properties: exact p-values, how ties and censoring count,
rank invariance, brute-force references (Holm as closed Bonferroni testing, the binomial tail by
counting). (3) Bad input raises ValueError. Known defects, when there are any, are xfail(strict=True), never deleted.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats as sps

from harness import stats as S

ALPHA = 0.05
REPLICATIONS = 2000  # null replications per error-rate check: 3 standard errors = 0.015 at alpha 0.05
PROPERTY = settings(max_examples=50, deadline=None)  # Page's power simulation makes first examples slow

# Simulated "epochs to fit": lognormal with median 30 epochs and a x1.65 spread per standard deviation.
LOG_MEDIAN, LOG_SD = math.log(30.0), 0.5
BUDGET_30PCT = math.exp(LOG_MEDIAN + LOG_SD * sps.norm.ppf(0.7))  # P(run > budget) = 0.3


def _assert_rate_at_most_alpha(rejected, alpha: float = ALPHA) -> float:
    rejected = np.asarray(rejected, bool)
    rate = float(rejected.mean())
    bound = alpha + 3 * math.sqrt(alpha * (1 - alpha) / rejected.size)
    assert rate <= bound, f"false-positive rate {rate:.4f} over {rejected.size} null replications > {bound:.4f}"
    return rate


def _binomial_tail_by_counting(k: int, n: int) -> Fraction:
    """P(X >= k) for X ~ Binomial(n, 1/2), as an exact fraction (independent of scipy)."""
    return Fraction(sum(math.comb(n, j) for j in range(k, n + 1)), 2**n)


def _censor(values, budget):
    return np.minimum(values, budget), values > budget  # a censored run enters at the budget


# ---------------------------------------------------------------------------------------------------
# (1) Error rates on simulated data


def null_sign_test_rejections(n_seeds: int, budget: float, seed: int = 0):
    """Rejections (p < ALPHA) of censored_sign_test on paired null data; also the censored share."""
    rng = np.random.default_rng(seed)
    rejected, censored = [], []
    for _ in range(REPLICATIONS):
        slow, fast = rng.lognormal(LOG_MEDIAN, LOG_SD, size=(2, n_seeds))  # same distribution
        (slow, sc), (fast, fc) = _censor(slow, budget), _censor(fast, budget)
        v = S.censored_sign_test(slow, fast, sc, fc, alpha=ALPHA, min_ratio=1.0)
        rejected.append(v.p_value < ALPHA)
        censored.append(np.concatenate([sc, fc]))
    return np.array(rejected), float(np.mean(censored))


@pytest.mark.parametrize(
    "n_seeds, budget",
    [(5, math.inf), (10, math.inf), (5, BUDGET_30PCT), (10, BUDGET_30PCT)],
    ids=["5-seeds", "10-seeds", "5-seeds-30pct-censored", "10-seeds-30pct-censored"],
)
def test_sign_test_false_positive_rate_is_at_most_alpha(n_seeds, budget):
    """Paired slow/fast from one distribution (optionally ~30% right-censored) reject at most alpha of the time.

    Cannot check: dependence between the two runs of a seed, or other censoring schemes."""
    rejected, censored_share = null_sign_test_rejections(n_seeds, budget)
    if math.isfinite(budget):
        assert 0.27 <= censored_share <= 0.33, f"simulation censored {censored_share:.3f}, meant ~0.30"
    _assert_rate_at_most_alpha(rejected)


def null_share_test_rejections(n_seeds: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    successes = rng.random((REPLICATIONS, n_seeds)) < 0.5  # exactly on the null share
    return np.array([S.share_test(s, alpha=ALPHA, min_share=0.5).p_value < ALPHA for s in successes])


@pytest.mark.parametrize("n_seeds", [5, 20], ids=lambda n: f"{n}-seeds")
def test_share_test_false_positive_rate_is_at_most_alpha(n_seeds):
    """Seeds succeeding with probability exactly 0.5 reject at most alpha of the time.

    Cannot check: null shares other than 0.5 (the test is exact, so they should behave the same)."""
    _assert_rate_at_most_alpha(null_share_test_rejections(n_seeds))


def null_page_trend_rejections(n_seeds: int, n_settings: int, ties: bool = False, seed: int = 0):
    rng = np.random.default_rng(seed)
    rejected = []
    for _ in range(REPLICATIONS):
        # iid rows: no trend; integer draws make many ties, as epoch counts do
        data = rng.integers(0, 3, (n_seeds, n_settings)) if ties else rng.normal(size=(n_seeds, n_settings))
        rejected.append(S.page_trend(data, alpha=ALPHA, min_effect=0.0).p_value < ALPHA)
    return np.array(rejected)


@pytest.mark.parametrize(
    "n_seeds, n_settings, ties", [(5, 3, False), (5, 4, False), (5, 4, True)], ids=["5x3", "5x4", "5x4-tied-integers"]
)
def test_page_trend_false_positive_rate_is_at_most_alpha(n_seeds, n_settings, ties):
    """iid rows (no trend along the settings) reject at most alpha of the time, with and without ties.

    Cannot check: sizes where page_trend leaves the exact distribution (n * k > 60)."""
    _assert_rate_at_most_alpha(null_page_trend_rejections(n_seeds, n_settings, ties))


@pytest.mark.parametrize("n_seeds", [5, 10], ids=lambda n: f"{n}-seeds")
def test_sign_test_rejects_when_slow_is_1_5x_fast_in_every_seed(n_seeds):
    """slow = 1.5 * fast in every seed always passes (p = 0.5**n < alpha, ratio 1.5 >= 1.2); noisy 1.5x mostly.

    Cannot check: power at the paper's (unknown) true effect sizes."""
    rng = np.random.default_rng(1)
    none = np.zeros(n_seeds, bool)
    for _ in range(100):
        fast = rng.lognormal(LOG_MEDIAN, LOG_SD, n_seeds)
        v = S.censored_sign_test(1.5 * fast, fast, none, none, alpha=ALPHA, min_ratio=1.2)
        assert v.passed and v.p_value == 0.5**n_seeds and v.effect == pytest.approx(1.5)
    if n_seeds == 10:  # per-seed noise: a seed supports H1 with probability ~0.91, so k >= 9 of 10 ~ 0.77
        fast = rng.lognormal(LOG_MEDIAN, LOG_SD, (500, n_seeds))
        slow = 1.5 * fast * rng.lognormal(0.0, 0.3, fast.shape)
        rate = np.mean(
            [
                S.censored_sign_test(s, f, none, none, alpha=ALPHA, min_ratio=1.2).p_value < ALPHA
                for s, f in zip(slow, fast)
            ]
        )
        assert rate >= 0.6, f"power {rate:.3f} under a clear 1.5x slowdown"


def test_share_test_rejects_when_seeds_succeed_with_probability_0_95():
    """With 10 seeds succeeding with probability 0.95, the test rejects most of the time (expected 0.91).

    Cannot check: power for shares close to the null."""
    rng = np.random.default_rng(2)
    rate = np.mean([S.share_test(s, alpha=ALPHA, min_share=0.5).p_value < ALPHA for s in rng.random((500, 10)) < 0.95])
    assert rate >= 0.8, f"power {rate:.3f}"


@pytest.mark.parametrize("n_settings", [3, 4])
def test_page_trend_rejects_a_clear_increasing_trend(n_settings):
    """Rows rising by 1 per setting with noise sd 0.5 reject (and reach mean rho >= 0.5) almost always.

    Cannot check: power for weak or non-monotone trends."""
    rng = np.random.default_rng(3)
    verdicts = [
        S.page_trend(np.arange(n_settings) + rng.normal(0, 0.5, (5, n_settings)), alpha=ALPHA, min_effect=0.5)
        for _ in range(200)
    ]
    rate = np.mean([v.passed for v in verdicts])
    assert rate >= 0.9, f"power {rate:.3f}"


# ---------------------------------------------------------------------------------------------------
# (2) Properties

EPOCHS = st.integers(1, 50)
BUDGET = 60.0  # above every EPOCHS value, so an uncensored run is always within the budget


@st.composite
def sign_test_inputs(draw, max_seeds: int = 12):
    """Arbitrary (slow, fast, slow_censored, fast_censored) with integer values, so ties are common."""
    n = draw(st.integers(1, max_seeds))
    slow, fast = (draw(hnp.arrays(np.int64, n, elements=EPOCHS)).astype(float) for _ in range(2))
    return slow, fast, draw(hnp.arrays(bool, n)), draw(hnp.arrays(bool, n))


# One seed of each kind: (slow, fast, slow_censored, fast_censored) given an uncensored value e and d >= 1.
SEED_KINDS = {
    "slower": (lambda e, d: (e + d, e, False, False), True),
    "slow-censored": (lambda e, d: (BUDGET, e, True, False), True),
    "tie": (lambda e, d: (e, e, False, False), False),
    "both-censored": (lambda e, d: (BUDGET, BUDGET, True, True), False),
    "faster": (lambda e, d: (e, e + d, False, False), False),
    "fast-censored": (lambda e, d: (e, BUDGET, False, True), False),
}


@st.composite
def seeds_of_kinds(draw, kinds):
    """A sign-test input built seed by seed from `kinds`; returns it with the number of supporting seeds."""
    names = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=15))
    rows = [SEED_KINDS[k][0](draw(EPOCHS), draw(st.integers(1, 9))) for k in names]
    slow, fast, sc, fc = (np.array(column) for column in zip(*rows))
    return (slow.astype(float), fast.astype(float), sc.astype(bool), fc.astype(bool)), sum(
        SEED_KINDS[k][1] for k in names
    )


@PROPERTY
@given(sign_test_inputs(), st.integers(0, 2**32 - 1))
def test_sign_test_p_value_lies_in_unit_interval(inputs, seed):
    """For any values and censoring flags the p-value is in [0, 1] and the statistic counts seeds.

    Cannot check: that arbitrary flag combinations are meaningful (a censored value should be the budget)."""
    v = S.censored_sign_test(*inputs, alpha=ALPHA, min_ratio=1.0)
    assert 0.0 <= v.p_value <= 1.0 and 0 <= v.statistic <= v.n == len(inputs[0])


@PROPERTY
@given(hnp.arrays(bool, st.integers(1, 40)), st.floats(0.05, 0.95))
def test_share_test_p_value_lies_in_unit_interval(successes, null_share):
    """For any successes and null share the p-value is in [0, 1] and the share's interval contains the share.

    Cannot check: null shares at 0 or 1 (degenerate tests)."""
    v = S.share_test(successes, alpha=ALPHA, min_share=0.5, null_share=null_share)
    assert 0.0 <= v.p_value <= 1.0
    assert v.interval[0] <= v.effect <= v.interval[1]


SMALL_INTEGERS = st.integers(-20, 20)


def matrices(elements=SMALL_INTEGERS):
    """(seeds, settings) integer matrices, 2..6 x 3..5 (ties included)."""
    shapes = st.tuples(st.integers(2, 6), st.integers(3, 5))
    return shapes.flatmap(lambda shape: hnp.arrays(np.int64, shape, elements=elements))


@PROPERTY
@given(matrices(), st.integers(0, 2**32 - 1))
def test_page_trend_p_value_lies_in_unit_interval(data, seed):
    """For any (seeds x settings) data the p-value is in [0, 1] and the mean Spearman rho in [-1, 1].

    Cannot check: large tables (the exact distribution is expensive; see the test of many settings below)."""
    v = S.page_trend(data, alpha=ALPHA, min_effect=0.0)
    assert 0.0 <= v.p_value <= 1.0 and -1.0 <= v.effect <= 1.0


@PROPERTY
@given(seeds_of_kinds(["slower", "slow-censored"]))
def test_sign_test_with_every_seed_supporting_h1_gives_exactly_half_to_the_n(inputs_and_k):
    """When every seed is slower (or slow-censored against an uncensored fast run), p == 0.5**n exactly.

    Cannot check: anything about the effect, which depends on the values."""
    inputs, k = inputs_and_k
    v = S.censored_sign_test(*inputs, alpha=ALPHA, min_ratio=1.0)
    assert v.statistic == k == v.n and v.p_value == 0.5**v.n


@PROPERTY
@given(seeds_of_kinds(list(SEED_KINDS)))
def test_ties_and_double_censored_seeds_count_against_h1(inputs_and_k):
    """Only slower and slow-censored seeds count for H1; p equals the binomial tail over all n seeds.

    The tail is computed by exact counting (independent of scipy). Cannot check: whether a less
    conservative treatment of ties (e.g. dropping them) would be preferable."""
    inputs, k = inputs_and_k
    v = S.censored_sign_test(*inputs, alpha=ALPHA, min_ratio=1.0)
    assert v.statistic == k
    assert v.p_value == pytest.approx(float(_binomial_tail_by_counting(k, v.n)), rel=1e-9)


@PROPERTY
@given(hnp.arrays(np.int64, st.integers(1, 12), elements=st.integers(1, int(BUDGET))))
def test_censored_slow_against_uncensored_fast_supports_h1_and_reverse_does_not(uncensored):
    """A slow run censored at the budget beats any uncensored fast run (even one at the budget); reversed, never.

    Cannot check: runs with different budgets (the test assumes one budget per seed)."""
    n, budget = len(uncensored), np.full(len(uncensored), BUDGET)
    yes, no = np.ones(n, bool), np.zeros(n, bool)
    assert S.censored_sign_test(budget, uncensored, yes, no, alpha=ALPHA, min_ratio=1.0).statistic == n
    assert S.censored_sign_test(uncensored, budget, no, yes, alpha=ALPHA, min_ratio=1.0).statistic == 0


INCREASING = [
    lambda x: 3 * x - 7,
    lambda x: np.exp(x / 4),
    lambda x: x**3,
    np.arctan,
    lambda x: np.where(x > 0, 1000.0 * x, x),
]  # strictly increasing and exact enough on -20..20


@PROPERTY
@given(matrices(), st.sampled_from(INCREASING))
def test_page_trend_is_invariant_to_strictly_increasing_transforms(data, transform):
    """Page's L, its p-value, the mean Spearman rho and its interval depend on the data only through ranks.

    Cannot check: transforms that create or break ties in floating point."""
    a = S.page_trend(data, alpha=ALPHA, min_effect=0.0)
    b = S.page_trend(transform(data.astype(float)), alpha=ALPHA, min_effect=0.0)
    assert (a.statistic, a.p_value, a.effect, a.interval) == (b.statistic, b.p_value, b.effect, b.interval)


P_VALUES = st.lists(
    st.one_of(st.sampled_from([0.0, 0.001, 0.01, 0.05, 0.2, 1.0]), st.floats(0.0, 1.0)), min_size=1, max_size=8
)  # the fixed values make ties common


def holm_by_closed_bonferroni(p) -> np.ndarray:
    """Reference: Holm is closed testing with Bonferroni local tests, so the adjusted p_i is the
    largest Bonferroni p-value min(1, |S| * min_S p) over all index sets S containing i (2**(m-1) each)."""
    m = len(p)
    return np.array(
        [
            max(
                min(1.0, (1 + r) * min([p[i], *(p[j] for j in rest)]))
                for r in range(m)
                for rest in itertools.combinations([j for j in range(m) if j != i], r)
            )
            for i in range(m)
        ]
    )


@PROPERTY
@given(P_VALUES)
def test_holm_adjusted_p_values_are_at_least_raw_at_most_one_and_order_preserving(p):
    """raw <= adjusted <= 1, and p_i < p_j implies adjusted_i <= adjusted_j (equal p, equal adjusted).

    Cannot check: that the family-wise error is controlled (see the reference comparison)."""
    p = np.array(p)
    adjusted = S.holm(p)
    assert np.all(p <= adjusted) and np.all(adjusted <= 1.0)
    for i, j in itertools.permutations(range(len(p)), 2):
        if p[i] < p[j]:
            assert adjusted[i] <= adjusted[j]
        elif p[i] == p[j]:
            assert adjusted[i] == adjusted[j]


@PROPERTY
@given(P_VALUES)
def test_holm_matches_closed_bonferroni_reference(p):
    """holm() equals the brute-force closed-testing reference on families of up to 8 p-values.

    Cannot check: larger families (the reference is exponential) or NaN p-values."""
    np.testing.assert_allclose(S.holm(p), holm_by_closed_bonferroni(p), rtol=1e-12, atol=0)


def _part(
    p: float, effect: float, min_effect: float, alpha: float = ALPHA, p_reverse: float = 1.0, p_absent: float = 1.0
) -> S.Verdict:
    """A verdict with these numbers; contradicted needs the effect at or below half the minimum."""
    return S._verdict(
        "part",
        0.0,
        p=p,
        alpha=alpha,
        effect=effect,
        effect_name="effect",
        interval=(effect, effect),
        interval_level=0.95,
        min_effect=min_effect,
        reverse_min=min_effect / 2,
        n=5,
        p_reverse=p_reverse,
        p_absent=p_absent,
        power_curve={5: 0.5, 8: 0.9},
        details={},
    )


PARTS = st.lists(
    st.tuples(
        st.one_of(st.sampled_from([0.0, 0.01, ALPHA, 0.1, 1.0]), st.floats(0.0, 1.0)),
        st.floats(-2.0, 2.0),
        st.sampled_from([0.0, 0.5, 1.0]),
    ),
    min_size=1,
    max_size=5,
)


@PROPERTY
@given(PARTS)
def test_all_of_passes_only_if_every_part_passes_and_p_is_max_of_parts(parts):
    """all_of passes iff every part passes; its p is the parts' maximum; the result obeys the Verdict rule.

    Parts share one alpha here; mixed alphas are refused (test below). Cannot check: the
    intersection-union test's validity itself (that is theory, not code)."""
    verdicts = [_part(*part) for part in parts]
    v = S.all_of(verdicts, "conjunction")
    assert v.passed == all(part.passed for part in verdicts)
    assert v.p_value == max(part.p_value for part in verdicts)
    assert not v.passed or (v.p_value < v.alpha and v.effect >= v.min_effect)
    assert len(v.details["parts"]) == len(verdicts)


def test_all_of_refuses_parts_at_different_alphas():
    """A conjunction of parts tested at different alphas is refused rather than decided at a mixed level.

    Cannot check: which alpha a caller meant."""
    with pytest.raises(ValueError, match="different alphas"):
        S.all_of([_part(0.08, 2.0, 1.0, alpha=0.10), _part(0.01, 1.1, 1.0, alpha=0.05)], "mixed alphas")


@PROPERTY
@given(hnp.arrays(bool, st.integers(1, 30)), st.floats(0.001, 0.5), st.floats(0.0, 1.0))
def test_verdict_passes_only_if_p_below_alpha_and_effect_reaches_min_effect(successes, alpha, min_share):
    """A share_test verdict passes exactly when p < alpha and effect >= min_effect.

    Cannot check: that min_effect was stated before the run (a matter of the claim modules)."""
    v = S.share_test(successes, alpha=alpha, min_share=min_share)
    assert v.passed == (v.p_value < v.alpha and v.effect >= v.min_effect)


@pytest.mark.parametrize(
    "p, effect, passed",
    [(ALPHA, 1.0, False), (0.049, 1.0, True), (0.049, 0.999, False)],
    ids=["p-equal-alpha-fails", "effect-equal-min-passes", "effect-below-min-fails"],
)
def test_verdict_rule_is_strict_in_p_and_inclusive_in_effect(p, effect, passed):
    """At the boundaries: p == alpha fails, effect == min_effect passes.

    Cannot check: that the boundaries were stated before the run."""
    v = _part(p, effect, min_effect=1.0)
    assert v.passed is passed and v.outcome == ("holds" if passed else "inconclusive")


@pytest.mark.parametrize(
    "p", [-0.5, 1.5, float("nan"), -1e-6], ids=["negative", "above-one", "nan", "slightly-negative"]
)
@pytest.mark.parametrize("which", ["p", "p_reverse"])
def test_a_p_value_outside_zero_one_raises(p, which):
    """A p-value (forward or reverse) that is NaN or outside [0, 1] is a broken statistic and raises,
    instead of being clipped into a verdict; float rounding just above 1 is accepted as 1.

    Cannot check: a wrong p-value that still lies in [0, 1] (the reference tests above do)."""
    with pytest.raises(ValueError, match="not a probability"):
        _part(p, 1.0, 1.0) if which == "p" else _part(0.01, 1.0, 1.0, p_reverse=p)
    assert _part(1 + 1e-12, 1.0, 1.0).p_value == 1.0


def test_four_outcomes_holds_contradicted_absent_inconclusive():
    """holds needs p < alpha and the minimum effect; contradicted needs the reverse test significant
    and the effect at its mirrored minimum; absent needs the test of "effect >= minimum" to reject;
    anything else is inconclusive. A significant forward test below the minimum effect is not
    'holds'; a significant reverse test with a small reverse effect is not 'contradicted'.

    Cannot check: which direction a claim calls forward (the claim modules state it)."""
    assert _part(0.01, 2.0, 1.0, p_reverse=0.9).outcome == "holds"
    assert _part(0.01, 0.8, 1.0, p_reverse=0.9).outcome == "inconclusive"
    assert _part(0.01, 0.8, 1.0, p_reverse=0.9, p_absent=0.01).outcome == "absent"
    assert _part(0.9, 0.5, 1.0, p_reverse=0.01).outcome == "contradicted"
    assert _part(0.9, 0.5, 1.0, p_reverse=0.01, p_absent=0.001).outcome == "contradicted"  # it takes precedence
    assert _part(0.9, 0.6, 1.0, p_reverse=0.01).outcome == "inconclusive"  # reverse effect below its minimum
    assert _part(0.3, 0.5, 1.0, p_reverse=0.3).outcome == "inconclusive"
    with pytest.raises(ValueError, match="inconsistent"):
        dataclasses.replace(_part(0.01, 2.0, 1.0), outcome="inconclusive")


def test_each_test_reports_the_opposite_direction():
    """Every statistic's reverse p-value is its test run the other way: a sign test where the fast
    condition is slower in every seed, a share test with no successes, a decreasing Page trend
    are contradicted; reversed data turns each into holds.

    Cannot check: reverse tests of statistics added later (each must set p_reverse)."""
    rng = np.random.default_rng(0)
    slow, fast, no = np.full(8, 10.0), np.full(8, 20.0), np.zeros(8, bool)
    v = S.censored_sign_test(slow, fast, no, no, alpha=ALPHA, min_ratio=1.2)
    assert v.outcome == "contradicted" and v.p_reverse == 0.5**8
    assert S.censored_sign_test(fast, slow, no, no, alpha=ALPHA, min_ratio=1.2).outcome == "holds"
    censored_fast = S.censored_sign_test(slow, slow, no, ~no, alpha=ALPHA, min_ratio=1.2)
    # The "fast" runs never finished: they are the slow ones (reverse p 1/256), but by how much is unknown
    # (their ratio is at most 1, not known to be at most 1/1.2): absent, not contradicted.
    assert censored_fast.p_reverse == 0.5**8 and censored_fast.outcome == "absent"
    assert S.share_test(np.zeros(8, bool), alpha=ALPHA, min_share=0.8).outcome == "contradicted"
    assert S.share_test(np.ones(8, bool), alpha=ALPHA, min_share=0.8).outcome == "holds"
    falling = np.tile([3.0, 2.0, 1.0, 0.0], (6, 1)) + rng.normal(0, 0.01, (6, 4))
    assert S.page_trend(falling, alpha=ALPHA, min_effect=0.5).outcome == "contradicted"
    assert S.page_trend(falling[:, ::-1], alpha=ALPHA, min_effect=0.5).outcome == "holds"


def test_a_conjunction_is_contradicted_when_one_part_is():
    """all_of: one part contradicted contradicts the conjunction, one part absent makes it absent
    (Bonferroni over the parts), one part merely inconclusive leaves it inconclusive.

    Cannot check: the error rate of the union over dependent parts beyond Bonferroni's bound."""
    good = _part(0.01, 2.0, 1.0, p_reverse=0.99)
    assert S.all_of([good, _part(0.9, 0.5, 1.0, p_reverse=0.004)], "x").outcome == "contradicted"
    assert S.all_of([good, _part(0.9, 0.5, 1.0, p_reverse=0.04)], "x").outcome == "inconclusive"  # 2 x 0.04 > alpha
    assert S.all_of([good, _part(0.9, 0.8, 1.0, p_absent=0.004)], "x").outcome == "absent"
    assert S.all_of([good, _part(0.9, 0.8, 1.0, p_absent=0.04)], "x").outcome == "inconclusive"
    assert S.all_of([good, good], "x").outcome == "holds"
    assert S.all_of([good, good], "x").power == pytest.approx(0.25)  # the product of the parts' powers


VALUES = hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-100, 100))


@PROPERTY
@given(VALUES)
def test_median_interval_contains_the_median_and_states_its_exact_level(values):
    """The order-statistic interval contains the sample median; its level is 1 - 2 P(Bin(n, 1/2) < k)
    for the order statistics (k, n + 1 - k) it uses, at least 0.95 from 6 values on, and the range
    (k = 1) below that.

    Cannot check: coverage of the true median (the simulation test below does)."""
    lo, hi, level = S.median_interval(values)
    assert lo <= np.median(values) <= hi
    n = len(values)
    if n >= 6:
        assert level >= 0.95
    elif n > 1:
        assert (lo, hi) == (values.min(), values.max()) and level == pytest.approx(1 - 2 * 0.5**n)


@pytest.mark.parametrize("n", [5, 8])
@pytest.mark.parametrize("kind", ["lognormal", "discrete rho", "skewed"])
def test_median_intervals_cover_the_true_median_at_their_stated_level(n, kind):
    """Over 4000 simulated seed sets of n values, the interval contains the distribution's median at
    least as often as its stated level, less 3 Monte Carlo standard errors: for lognormal ratios, for
    Spearman rhos over 4 levels (discrete, bounded, many ties) and for a skewed mixture.

    Cannot check: distributions whose median is not unique (the interval then covers a median)."""
    rng = np.random.default_rng(7)
    if kind == "lognormal":
        draws, median = rng.lognormal(0.2, 0.4, (4000, n)), math.exp(0.2)
    elif kind == "discrete rho":
        rows = 0.7 * np.arange(4) + rng.standard_normal((4000, n, 4))
        ranks = rows.argsort(-1).argsort(-1) - 1.5
        draws = (ranks @ (np.arange(4) - 1.5)) / 5.0
        big = 0.7 * np.arange(4) + rng.standard_normal((200_000, 4))
        median = float(np.median((big.argsort(-1).argsort(-1) - 1.5) @ (np.arange(4) - 1.5) / 5.0))
    else:
        draws = np.where(rng.random((4000, n)) < 0.8, rng.exponential(1.0, (4000, n)), 10 + rng.random((4000, n)))
        big = np.where(rng.random(400_000) < 0.8, rng.exponential(1.0, 400_000), 10.0)
        median = float(np.median(big))
    intervals = [S.median_interval(d) for d in draws]
    level = intervals[0][2]
    covered = np.mean([lo <= median <= hi for lo, hi, _ in intervals])
    assert covered >= level - 3 * math.sqrt(level * (1 - level) / len(draws)), f"coverage {covered:.3f} < {level:.3f}"


@PROPERTY
@given(hnp.arrays(bool, st.integers(1, 40)))
def test_the_share_interval_is_clopper_pearson_and_covers(successes):
    """The share test's interval is the exact two-sided 95% Clopper-Pearson interval of the share.

    Cannot check: anything beyond scipy's implementation of it."""
    v = S.share_test(successes, alpha=ALPHA, min_share=0.8)
    k, n = int(successes.sum()), len(successes)
    ci = sps.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert v.interval == (pytest.approx(ci.low), pytest.approx(ci.high)) and v.interval_level == 0.95


def test_power_of_the_sign_test_is_the_binomial_power_at_the_minimum():
    """With no spread between seeds every seed supports the claim at the minimum, so power is 1 from
    the fewest seeds whose unanimity is significant (5 at alpha 0.05); with spread it is the exact
    binomial power of Phi(log(minimum) / sd) per seed, and more seeds are needed.

    Cannot check: that a Gaussian on the log ratio describes the seeds' real spread."""
    none = np.zeros(8, bool)
    flat = S.censored_sign_test(np.full(8, 15.0), np.full(8, 10.0), none, none, alpha=ALPHA, min_ratio=1.2)
    assert flat.power == 1.0 and flat.seeds_needed == 5
    ratios = np.exp(np.linspace(-0.2, 0.2, 8))
    noisy = S.censored_sign_test(15.0 * ratios, np.full(8, 10.0), none, none, alpha=ALPHA, min_ratio=1.2)
    q = sps.norm.cdf(math.log(1.2) / np.std(np.log(ratios), ddof=1))
    assert noisy.power == pytest.approx(sps.binom.sf(6, 8, q)) and noisy.seeds_needed > 5


def test_power_of_page_trend_rises_with_seeds_and_is_reproducible():
    """Page's L power at the minimum rho rises with the seeds, reaches 0.8 somewhere, and is the same
    on every call (its own generator).

    Cannot check: the accuracy of the linear-trend model for real data."""
    curve = S.page_power(0.5, 4, ALPHA, S._PAGE_SEEDS)
    values = [curve[n] for n in sorted(curve)]
    assert values[0] < 0.3 and values[-1] > 0.99 and all(b >= a - 0.03 for a, b in zip(values, values[1:]))
    assert S.page_power.__wrapped__(0.5, 4, ALPHA, (5, 8)) == {5: curve[5], 8: curve[8]}


def _guard_exact_page(monkeypatch, limit_bytes: int = 2**30):
    """Replace scipy's page_trend_test by one that records, instead of running, exact requests whose
    null distribution scipy would build by enumerating all k! rank permutations (k! * k int64s)."""
    real, too_big = sps.page_trend_test, []

    def guarded(data, *args, method="auto", **kwargs):
        k = np.shape(data)[1]
        if method == "exact" and math.factorial(k) * k * 8 > limit_bytes:
            too_big.append(np.shape(data))
            method = "asymptotic"
        return real(data, *args, method=method, **kwargs)

    monkeypatch.setattr(S.stats, "page_trend_test", guarded)
    return too_big


def test_page_trend_with_many_settings_does_not_enumerate_every_permutation(monkeypatch):
    """page_trend on 5 seeds x 12 settings does not request an exact distribution needing > 1 GiB.

    Scipy is guarded so the test stays fast. Cannot check: the accuracy of the asymptotic p-value."""
    too_big = _guard_exact_page(monkeypatch)
    rng = np.random.default_rng(0)
    S.page_trend(rng.normal(size=(5, 12)), alpha=ALPHA, min_effect=0.0)
    assert not too_big, f"exact Page's L requested for tables {too_big}"


# ---------------------------------------------------------------------------------------------------
# (3) Bad input

_RNG = np.random.default_rng(0)
_F3, _F2 = [False] * 3, [False] * 2
BAD_INPUT = [
    pytest.param(
        lambda: S.censored_sign_test([1, 2, 3], [1, 2], _F3, _F3, alpha=ALPHA, min_ratio=1), id="sign-test-fast-shorter"
    ),
    pytest.param(
        lambda: S.censored_sign_test([1, 2, 3], [1, 2, 3], _F2, _F3, alpha=ALPHA, min_ratio=1),
        id="sign-test-flags-shorter",
    ),
    pytest.param(lambda: S.censored_sign_test([], [], [], [], alpha=ALPHA, min_ratio=1), id="sign-test-empty"),
    pytest.param(lambda: S.share_test([], alpha=ALPHA, min_share=0.5), id="share-test-empty"),
    pytest.param(lambda: S.page_trend(np.zeros((5, 2)), alpha=ALPHA, min_effect=0), id="page-2-settings"),
    pytest.param(lambda: S.page_trend(np.zeros((5, 1)), alpha=ALPHA, min_effect=0), id="page-1-setting"),
    pytest.param(lambda: S.page_trend(np.zeros((1, 4)), alpha=ALPHA, min_effect=0), id="page-1-seed"),
    pytest.param(lambda: S.page_trend(np.zeros((0, 4)), alpha=ALPHA, min_effect=0), id="page-empty"),
    pytest.param(lambda: S.page_trend(np.zeros(5), alpha=ALPHA, min_effect=0), id="page-1d"),
    pytest.param(lambda: S.all_of([], "nothing"), id="all-of-no-parts"),
    pytest.param(lambda: S.share_test([], alpha=ALPHA, min_share=0.8), id="share-empty"),
    pytest.param(lambda: S.median_interval([]), id="median-interval-empty"),
]


@pytest.mark.parametrize("call", BAD_INPUT)
def test_bad_input_raises_value_error(call):
    """Mismatched lengths, empty arrays, too few settings or seeds, and empty conjunctions raise ValueError.

    Cannot check: NaN or negative values in the data (p-values outside [0, 1] raise: test above)."""
    with pytest.raises(ValueError):
        call()
