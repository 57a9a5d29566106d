"""How a claim test ends: a passing negative control or an unexpected outcome fails it outright
(pytest.fail, which no strict xfail excuses); a claim that does not hold raises AssertionError, the
only exception its strict xfail accepts. Cannot check: pytest's own xfail machinery (tested by pytest)."""
from __future__ import annotations

import pytest

from harness import stats
from harness.decision import claim_outcome, conclude
from harness.tiers import tier_params

HOLDS = stats.share_test([True] * 8, alpha=0.05, min_share=0.8)
NOT_SHOWN = stats.share_test([True] * 5 + [False] * 3, alpha=0.05, min_share=0.8)
CONTRADICTED = stats.share_test([False] * 8, alpha=0.05, min_share=0.8)


def test_outcomes_of_the_fixture_verdicts():
    assert (HOLDS.outcome, NOT_SHOWN.outcome, CONTRADICTED.outcome) == ("holds", "not shown", "contradicted")


@pytest.mark.parametrize("expected", [None, ("not shown",), ("not shown", "contradicted")])
def test_a_passing_negative_control_fails_the_test_whatever_was_expected(expected):
    """A control that holds is a failure (pytest's Failed, not AssertionError), also under a strict xfail."""
    with pytest.raises(pytest.fail.Exception, match="negative control passed"):
        conclude("C0", NOT_SHOWN, HOLDS, expected=expected)


def test_a_claim_that_holds_ends_quietly_and_one_that_does_not_raises_assertion_error():
    conclude("C0", HOLDS, CONTRADICTED, expected=None)
    with pytest.raises(AssertionError, match="C0 not shown"):
        conclude("C0", NOT_SHOWN, CONTRADICTED, expected=None)
    with pytest.raises(AssertionError, match="C0 contradicted"):
        conclude("C0", CONTRADICTED, NOT_SHOWN, expected=("contradicted",))


def test_an_outcome_the_strict_xfail_does_not_expect_fails_outright():
    """An xfail that expects 'contradicted' does not excuse 'not shown', and vice versa."""
    with pytest.raises(pytest.fail.Exception, match="expects contradicted"):
        conclude("C5", NOT_SHOWN, NOT_SHOWN, expected=("contradicted",))
    with pytest.raises(pytest.fail.Exception, match="expects not shown"):
        conclude("C5", CONTRADICTED, NOT_SHOWN, expected=("not shown",))


def test_a_part_that_fails_makes_the_claim_fail_and_shapes_its_outcome():
    """The claim's outcome covers its parts: a part not shown makes it not shown, a contradicted part
    contradicted; conclude raises AssertionError naming the part."""
    assert claim_outcome(HOLDS, [("plateau", NOT_SHOWN)]) == "not shown"
    assert claim_outcome(HOLDS, [("plateau", CONTRADICTED)]) == "contradicted"
    with pytest.raises(AssertionError, match=r"\(plateau\)"):
        conclude("C1", HOLDS, NOT_SHOWN, parts=[("plateau", NOT_SHOWN)], expected=("not shown",))


def test_tier_params_marks_a_smoke_failure_with_its_expected_outcomes():
    """smoke_fails gives the smoke variant a strict xfail that accepts AssertionError only, an
    expect_outcome marker, and a reason that starts with what it expects; a wrong outcome is refused."""
    smoke, full = tier_params(smoke_fails="numbers", expect=("contradicted",))
    marks = {m.name: m for m in smoke.marks}
    assert marks["xfail"].kwargs["strict"] and marks["xfail"].kwargs["raises"] is AssertionError
    assert marks["xfail"].kwargs["reason"].startswith("expected: contradicted; numbers")
    assert marks["expect_outcome"].args == ("contradicted",)
    assert [m.name for m in full.marks] == ["full"]
    with pytest.raises(ValueError, match="choose from"):
        tier_params(smoke_fails="x", expect=("holds",))


def test_every_harness_test_runs_under_a_time_limit(request):
    """Where pytest-timeout is installed (CI), each harness test gets a time limit, so a loop that
    never ends (a broken estimator) fails the run instead of hanging it; without the plugin (a GPU
    machine with no registry) no limit is attached and nothing breaks.

    Cannot check: that the limit fits a slower machine than CI's."""
    limit = request.node.get_closest_marker("timeout")
    if request.config.pluginmanager.hasplugin("timeout"):
        assert limit is not None and limit.args[0] > 0
    else:
        assert limit is None


def test_provenance_names_what_made_a_verdict():
    """Every report row carries its base seed, device, precision, threads, torch and Python versions,
    the git commit of the code (None outside git) and hashes of the training code (the verdict
    code's is per claim module: tests/test_report.py).

    Cannot check: a GPU's name and TF32 setting (no GPU in CI)."""
    from harness.provenance import session_provenance

    prov = session_provenance("cpu", 3)
    assert prov["base_seed"] == 3 and prov["device"] == "cpu" and prov["precision"] == "float32"
    assert prov["threads"] >= 1 and prov["torch"] and prov["python"].count(".") == 2
    assert set(prov["training_code"]) == {"mlp", "cnn"}
    assert prov["git"] is None or len(prov["git"].removesuffix("+dirty")) == 12
