"""Settings of the harness tests (tests/): Hypothesis profiles and a time limit per test.

Hypothesis profiles, chosen by HYPOTHESIS_PROFILE: "ci" (the default where CI is set) replays the
same examples every run, so CI cannot fail by chance; "dev" explores new ones each run. Where
pytest-timeout is installed, each harness test runs under HARNESS_TEST_TIMEOUT_S, so a loop that
never ends (a broken estimator) fails instead of hanging CI; the slowest test took 170 s on a busy
2-core machine.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

HARNESS_TEST_TIMEOUT_S = 600
HERE = Path(__file__).parent

settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_collection_modifyitems(config, items):
    if config.pluginmanager.hasplugin("timeout"):
        for item in items:
            if item.path.is_relative_to(HERE) and not item.get_closest_marker("timeout"):
                item.add_marker(pytest.mark.timeout(HARNESS_TEST_TIMEOUT_S))
