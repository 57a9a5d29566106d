"""The pytest interface of the claims, run as a user would (collection only: nothing trains)."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def pytest_run(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_an_unknown_dataset_ends_the_run_with_the_valid_choices():
    """--dataset with a typo is a usage error naming the datasets, before anything runs."""
    out = pytest_run("claims", "--collect-only", "-q", "--dataset", "fashion_mnist")
    assert out.returncode == 4
    assert "mnist, fashion-mnist, cifar10" in out.stderr


def test_full_tier_runs_only_when_asked_for():
    """Without -m the full tier is deselected; -m full selects exactly the full variants, one per smoke one."""
    default = pytest_run("claims", "--collect-only", "-q")
    full = pytest_run("claims", "--collect-only", "-q", "-m", "full")
    smoke = pytest_run("claims", "--collect-only", "-q", "-m", "smoke")
    ids = lambda out: [line for line in out.stdout.splitlines() if "::" in line]  # noqa: E731
    assert ids(default) == ids(smoke) and all(re.search(r"\[smoke[]-]", i) for i in ids(smoke))
    assert [re.sub(r"\[full(?=[]-])", "[smoke", i) for i in ids(full)] == ids(smoke)
    header = pytest_run("claims", "--collect-only", "-m", "full").stdout
    assert "claims: -m 'full'" in header and "store" in header and "device" in header


def test_a_mark_expression_without_full_never_selects_the_full_tier():
    """-m "not slow" (or any expression that does not name full) deselects the full tier, which costs
    GPU-hours; -m "smoke or full" selects both tiers."""
    ids = lambda *m: [
        line
        for line in pytest_run("claims", "--collect-only", "-q", *m).stdout.splitlines()  # noqa: E731
        if "::" in line
    ]
    not_slow, both = ids("-m", "not slow"), ids("-m", "smoke or full")
    assert not_slow and not any("[full" in i for i in not_slow)
    assert any("[full" in i for i in both) and any("[smoke" in i for i in both)


def test_impossible_options_are_refused():
    """Too few seeds or an absent GPU are usage errors with a fix, not a crash later."""
    seeds = pytest_run("claims", "--collect-only", "-q", "--seeds", "1")
    assert seeds.returncode == 4 and "--seeds must be" in seeds.stderr
    import torch

    if not torch.cuda.is_available():
        gpu = pytest_run("claims", "--collect-only", "-q", "--device", "cuda")
        assert gpu.returncode == 4 and "--device cpu" in gpu.stderr


@pytest.mark.parametrize(
    "device, worker, count, expected",
    [
        ("cuda", "gw0", 4, "cuda:0"),
        ("cuda", "gw5", 4, "cuda:1"),
        ("cuda", "gw2", 1, "cuda:0"),
        ("cuda", None, 4, "cuda"),
        ("cuda:1", "gw0", 4, "cuda:1"),
        ("cpu", "gw3", 0, "cpu"),
        ("cuda", "gw1", 0, "cuda"),
    ],
)
def test_each_xdist_worker_gets_its_own_gpu(device, worker, count, expected):
    """Under `-n N` with `--device cuda`, worker gwK trains on GPU K modulo the GPUs torch sees (which
    honours CUDA_VISIBLE_DEVICES); explicit indices, the CPU and sessions without workers are kept."""
    from harness.session import worker_device

    assert worker_device(device, worker, count) == expected


def test_scheduler_options_are_checked_before_anything_runs():
    """A misspelt scheduler setting is a usage error listing the known ones; a Slurm session does not
    need a GPU where pytest runs (its jobs resolve --device), and its header says where runs train."""
    bad = pytest_run("claims", "--collect-only", "-q", "--executor", "slurm", "--executor-option", "partitio=gpu")
    assert bad.returncode == 4 and "unknown scheduler setting(s) partitio; known: folder, partition" in bad.stderr
    ok = pytest_run("claims", "--collect-only", "-m", "smoke", "--executor", "slurm", "--device", "cuda")
    assert ok.returncode == 0 and "device cuda in slurm jobs" in ok.stdout


def test_a_sweep_design_trains_each_config_once_and_keeps_its_shape():
    """`claims.sweep` takes run configs nested in dicts and lists, trains each distinct one once (in
    order of first appearance) and returns the design's shape with each config's result in its place."""
    from harness.session import configs, results

    design = {"a": [[1, 2], [2, 3]], ("b", 0): {"x": 4, "y": [1]}}
    assert list(dict.fromkeys(configs(design))) == [1, 2, 3, 4]
    done = {c: f"result {c}" for c in (1, 2, 3, 4)}
    assert results(design, done) == {
        "a": [["result 1", "result 2"], ["result 2", "result 3"]],
        ("b", 0): {"x": "result 4", "y": ["result 1"]},
    }


def test_each_wave_takes_the_first_seeds_of_its_share_and_a_plan_takes_them_all(tmp_path):
    """Wave w of W takes the first ceil(N w / W) of the N seeds (of --base-seed's set); the last wave,
    a tier of one wave and a plan (wave inf) take all N."""
    import math

    from harness.session import Options, Session

    s = Session(Options(device="cpu", seeds=5, base_seed=1), tmp_path)
    seen = []
    for wave in (1, 2, math.inf):
        s.wave = wave
        seen.append((s.seeds("full"), s.seeds_asked, len(s.seeds("smoke"))))
    assert seen == [
        ([10000, 10001, 10002], (3, 5), 5),
        ([10000 + i for i in range(5)], (5, 5), 5),
        ([10000 + i for i in range(5)], (5, 5), 5),
    ]


WAVES = """
import pytest
from harness import stats
from harness.tiers import tier_params


@pytest.mark.parametrize("tier", tier_params())
def test_claim(tier, claims, decide, request):
    seeds = claims.seeds(tier)
    with open(request.config.getoption("--report-dir") + "/waves.log", "a") as f:
        f.write(f"{tier} {len(seeds)}\\n")
    successes = [s % 8 not in LEANING_AWAY for s in seeds]
    verdict = stats.share_test(successes, alpha=0.05, min_share=0.8)
    control = stats.share_test([False] * len(seeds), alpha=0.05, min_share=0.8)
    decide("CX", verdict, control, tier=tier, dataset="none", note="", control_note="")
"""


@pytest.mark.parametrize(
    "leaning_away, log, outcome", [((), "smoke 8 full 4 full 8", "2 passed"), ((0, 1), "smoke 8 full 4", "2 failed")]
)
def test_a_claim_trains_its_tier_s_seeds_in_waves_and_stops_where_they_lean_away(tmp_path, leaning_away, log, outcome):
    """The smoke tier decides on its 8 seeds at once. The full tier (two waves of 4) decides on its
    first 4 seeds where they lean away from the claim (2 of 4 for it: stopped for futility, so
    inconclusive, and the claim fails), and where they lean toward it (4 of 4) runs the test again
    on all 8. The test module lives under the repository (a verdict's provenance hashes it there)."""
    with tempfile.TemporaryDirectory(dir=ROOT, prefix=".waves-") as folder:
        (Path(folder) / "test_waves.py").write_text(WAVES.replace("LEANING_AWAY", repr(leaning_away)))
        out = pytest_run(
            f"{folder}/test_waves.py",
            "-p",
            "no:cacheprovider",
            f"--report-dir={tmp_path}",
            f"--store={tmp_path / 'store'}",
            "--device=cpu",
            "-m",
            "smoke or full",
        )
    assert (tmp_path / "waves.log").read_text().split() == log.split(), out.stdout
    assert outcome in out.stdout, out.stdout
    if leaning_away:
        assert "stopped for futility" in out.stdout
