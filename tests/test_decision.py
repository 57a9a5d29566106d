"""How a claim test ends: a negative control that holds, or an outcome other than the one recorded
for the dataset, fails it outright (pytest.fail); a recorded outcome ends it as an xfail; without a
record the claim must hold (AssertionError otherwise). A failed gate makes the claim inconclusive.
Cannot check: pytest's own xfail machinery (tested by pytest)."""

from __future__ import annotations

import pytest

from harness import stats
from harness.decision import FUTILITY_P, Gate, claim_outcome, conclude, futile, stopped
from harness.tiers import tier_params

HOLDS = stats.share_test([True] * 8, alpha=0.05, min_share=0.8)
INCONCLUSIVE = stats.share_test([True] * 5 + [False] * 3, alpha=0.05, min_share=0.8)
ABSENT = stats.share_test([True] * 3 + [False] * 5, alpha=0.05, min_share=0.8)
CONTRADICTED = stats.share_test([False] * 8, alpha=0.05, min_share=0.8)
OK_GATE, FAILED_GATE = Gate("converged", 0.97, 0.95), Gate("converged", 0.9, 0.95)


def test_outcomes_of_the_fixture_verdicts():
    assert [v.outcome for v in (HOLDS, CONTRADICTED, ABSENT, INCONCLUSIVE)] == list(stats.OUTCOMES)


@pytest.mark.parametrize("expected", [None, ("inconclusive",), ("inconclusive", "contradicted")])
def test_a_negative_control_that_holds_fails_the_test_whatever_was_expected(expected):
    """A control that holds is a failure (pytest's Failed, not AssertionError), also where a failing
    outcome is recorded."""
    with pytest.raises(pytest.fail.Exception, match="negative control held"):
        conclude("C0", INCONCLUSIVE, HOLDS, expected=expected)


def test_a_claim_that_holds_ends_quietly_and_one_that_does_not_raises_assertion_error():
    conclude("C0", HOLDS, CONTRADICTED, expected=None)
    for verdict, word in ((INCONCLUSIVE, "inconclusive"), (ABSENT, "absent"), (CONTRADICTED, "contradicted")):
        with pytest.raises(AssertionError, match=f"C0 {word}"):
            conclude("C0", verdict, INCONCLUSIVE, expected=None)


def test_a_recorded_outcome_is_an_xfail_and_any_other_fails_outright():
    """Where 'contradicted' is recorded, 'contradicted' is an xfail; 'inconclusive' fails; 'holds'
    fails too (the record must change once the new outcome is confirmed)."""
    with pytest.raises(pytest.xfail.Exception, match="as recorded for fashion-mnist"):
        conclude("C5", CONTRADICTED, INCONCLUSIVE, expected=("contradicted",), dataset="fashion-mnist")
    with pytest.raises(pytest.fail.Exception, match="recorded for fashion-mnist is contradicted"):
        conclude("C5", INCONCLUSIVE, INCONCLUSIVE, expected=("contradicted",), dataset="fashion-mnist")
    with pytest.raises(pytest.fail.Exception, match="It holds, but contradicted is recorded"):
        conclude("C5", HOLDS, INCONCLUSIVE, expected=("contradicted",), dataset="fashion-mnist")
    conclude("C1", HOLDS, INCONCLUSIVE, expected=("holds", "inconclusive"), dataset="fashion-mnist")  # passes
    with pytest.raises(pytest.xfail.Exception):
        conclude("C1", INCONCLUSIVE, INCONCLUSIVE, expected=("holds", "inconclusive"), dataset="fashion-mnist")


def test_a_part_that_fails_makes_the_claim_fail_and_shapes_its_outcome():
    """The claim's outcome covers its parts: a part inconclusive makes it inconclusive, a part absent
    or contradicted (Bonferroni over two parts) makes it so; conclude raises naming the outcome."""
    assert claim_outcome(HOLDS, [("plateau", INCONCLUSIVE)]) == "inconclusive"
    assert claim_outcome(HOLDS, [("plateau", CONTRADICTED)]) == "contradicted"
    assert claim_outcome(HOLDS, [("plateau", ABSENT)]) == "absent"
    with pytest.raises(AssertionError, match="plateau: inconclusive"):
        conclude("C1", HOLDS, INCONCLUSIVE, parts=[("plateau", INCONCLUSIVE)], expected=None)


def test_a_failed_gate_makes_the_claim_inconclusive_whatever_its_statistics():
    assert claim_outcome(HOLDS, gates=[OK_GATE]) == "holds"
    assert claim_outcome(HOLDS, gates=[FAILED_GATE]) == "inconclusive"
    assert claim_outcome(CONTRADICTED, gates=[FAILED_GATE]) == "inconclusive"
    assert Gate("lr x eig / 2", 0.1, 0.15, at_most=True).passed and not Gate("x", 0.2, 0.15, at_most=True).passed
    with pytest.raises(AssertionError, match=r"inconclusive \(gate failed: converged\)"):
        conclude("C1", HOLDS, INCONCLUSIVE, gates=[FAILED_GATE], expected=None)


def test_a_claim_stops_for_futility_where_its_first_seeds_lean_away_from_it():
    """After a wave, a claim (or a part) with p > FUTILITY_P stops: for a sign test on 4 of 8 seeds,
    2 of 4 stops (the 7 of 8 it needs is out of reach) and 3 of 4 goes on; the stop is a failed gate,
    so the claim is inconclusive whatever its statistics."""
    two, three = (stats.share_test([True] * k + [False] * (4 - k), alpha=0.05, min_share=0.8) for k in (2, 3))
    assert two.p_value > FUTILITY_P >= three.p_value
    assert futile(two) and not futile(three)
    assert futile(three, parts=[("plateau", two)]) and not futile(three, parts=[("plateau", three)])
    assert stats._sign_p(6, 8) > 0.05 > stats._sign_p(7, 8)  # 2 of 4 could not have held at 8 seeds
    gate = stopped(4, 8)
    assert not gate.passed and "stopped for futility" in gate.name
    assert claim_outcome(HOLDS, gates=[gate]) == "inconclusive"


def test_tier_params_records_outcomes_per_dataset_on_the_smoke_variant_only():
    """The smoke variant carries an expect_outcome marker with the outcomes per dataset; the full
    variant only its tier marker; a record of 'holds' (or of nothing) is refused."""
    smoke, full = tier_params(expect={"fashion-mnist": ("contradicted",)}, because="numbers")
    marks = {m.name: m for m in smoke.marks}
    assert marks["expect_outcome"].args == ({"fashion-mnist": ("contradicted",)},)
    assert marks["expect_outcome"].kwargs["because"] == "numbers"
    assert [m.name for m in full.marks] == ["full"]
    with pytest.raises(ValueError, match="choose from"):
        tier_params(expect={"mnist": ("holds",)})
    assert tier_params(expect={"mnist": ("holds", "inconclusive")})  # a verdict that changes with the seed set
    with pytest.raises(ValueError, match="choose from"):
        tier_params(expect={"mnist": ()})


def test_provenance_names_what_made_a_verdict():
    """Every report row carries its base seed, device, precision, threads, torch and Python versions,
    the git commit of the code (None outside git) and hashes of the training code (the verdict
    code's and the design's are per claim module: tests/test_report.py).

    Cannot check: a GPU's name and TF32 setting (no GPU in CI)."""
    from harness.provenance import session_provenance

    prov = session_provenance("cpu", 3)
    assert prov["base_seed"] == 3 and prov["device"] == "cpu" and prov["precision"] == "float32"
    assert prov["threads"] >= 1 and prov["torch"] and prov["python"].count(".") == 2
    assert set(prov["training_code"]) == {"mlp", "cnn"}
    assert prov["git"] is None or len(prov["git"].removesuffix("+dirty")) == 12
