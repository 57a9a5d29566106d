"""What the full tier's futility look costs in power, and how often it stops.

The full tier trains 8 seeds in two waves of 4; after the first, a claim whose one-sided p-value on
its 4 seeds exceeds harness.decision.FUTILITY_P stops (inconclusive). For Page's L with k noise
levels (C1: 3, C3 and C8: 4), this simulates the stats module's own power model (per-seed rows, a
linear trend in Gaussian noise whose expected Spearman rho is the minimum effect) and prints, at
alpha 0.05: the power without the look (stats.page_power), with it, and the chance of stopping at
the first wave, at the minimum effect and where there is no trend. For an exact sign test on 8
seeds the look costs nothing: it stops at 2 or fewer successes of 4, from which the 7 of 8 that the
test needs cannot be reached.

    python docs/pilots/futility_power.py
"""

from __future__ import annotations

import numpy as np

from harness import numpy_generator
from harness.decision import FUTILITY_P
from harness.stats import _page_critical, _page_null, _ranks, _trend_slope, page_power

SIMULATIONS = 20_000


def page_p(L: np.ndarray, n: int, k: int) -> np.ndarray:
    """Exact upper-tail p-values of Page's L values `L` on n seeds and k levels."""
    values, probs = _page_null(n, k)
    tail = np.cumsum(probs[::-1])[::-1]
    return tail[np.round(L).astype(int)]


def with_look(min_rho: float, k: int, alpha: float = 0.05, n: int = 8, first: int = 4) -> tuple[float, float, float]:
    """(power without the look, power with it, P(stop at the first wave)) at an expected rho of min_rho."""
    rng = numpy_generator("futility look", min_rho, k, n)
    b = _trend_slope(min_rho, k, numpy_generator("page power slope", min_rho, k)) if min_rho > 0 else 0.0
    rows = b * np.arange(k) + rng.standard_normal((SIMULATIONS, n, k))
    per_seed = _ranks(rows) @ np.arange(1, k + 1)
    stop = page_p(per_seed[:, :first].sum(-1), first, k) > FUTILITY_P
    holds = per_seed.sum(-1) >= _page_critical(n, k, alpha)
    return float(holds.mean()), float((holds & ~stop).mean()), float(stop.mean())


def main() -> None:
    print(f"Page's L, 8 seeds in two waves of 4, alpha 0.05, stop where p > {FUTILITY_P} on the first 4")
    print(
        "| levels | minimum rho | power (stats.page_power) | power, simulated without the look | with it "
        "| P(stop) | P(stop), no trend |"
    )
    print("|---|---|---|---|---|---|---|")
    for k in (3, 4):
        model = page_power(0.5, k, 0.05, (8,))[8]
        without, with_, stop = with_look(0.5, k)
        null_stop = with_look(0.0, k)[2]
        print(f"| {k} | 0.5 | {model:.2f} | {without:.2f} | {with_:.2f} | {stop:.2f} | {null_stop:.2f} |")


if __name__ == "__main__":
    main()
