"""Critical samples (Arpit et al. 2017): examples whose predicted class changes somewhere within a
small L-infinity box around them, searched for every model of a batch at once.

    found = critical(model, X, radius=0.05)                     # (M, m) bool, model(X): (M, m, K) logits
    found = critical(model, X, 0.05, restarts=3, generator=g)   # two more searches from random points
    csr = critical_sample_ratio(model, X, 0.05)                 # (M,) float64 share of critical examples

The rule: example x of model m is critical when some x' with ||x' - x||_inf <= radius gets another
predicted class (argmax of the logits) than x itself. The search is projected gradient ascent on
the cross-entropy of the model's own prediction at x: `steps` sign-of-gradient steps of
`step_size` (default radius / 4, so four steps cross from the centre to a face of the box), each
projected back into the box (clamped coordinate-wise to [x - radius, x + radius]). Every iterate,
the start included, is checked, and an example counts as critical as soon as one of them predicts
another class. The first restart starts at x, each further one at a point drawn uniformly from
the box by `generator` (required when restarts > 1). Budget per example: restarts * (steps + 1)
forward passes and restarts * steps input gradients. Arpit et al. search with noisy sign-gradient
steps; random restarts take the place of the noise here.

A search finds a lower bound on the critical examples: a reported one is certain (its iterate lies
in the box and changes the prediction), an unreported one may still be critical where the search
missed (a saturated softmax gives no gradient, for instance). Gradients are taken with
torch.autograd.grad of the summed per-example losses with respect to the perturbed inputs only, so
each example gets its own exact gradient, models stay independent (model m's result depends on
its own weights and inputs alone), and no gradient reaches the model's parameters. Works in the
inputs' dtype (float32 or float64) and on their device.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Forward = Callable[[torch.Tensor], torch.Tensor]  # inputs (M, m, d) -> logits (M, m, K)


def critical(
    forward: Forward,
    x: torch.Tensor,
    radius: float,
    steps: int = 20,
    step_size: float | None = None,
    restarts: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(M, m) bool: True where the search found a point within the L-infinity box of `radius`
    around x[m, i] whose predicted class differs from the prediction at x[m, i]. `forward` maps
    inputs (M, m, d) to logits (M, m, K) for M models at once (e.g. BatchedMLP.forward); each
    model sees its own examples x[m]. Default step_size: radius / 4."""
    if not radius > 0:
        raise ValueError(f"radius={radius!r}: pass the L-infinity radius of the box, a number > 0")
    if steps < 1:
        raise ValueError(f"steps={steps!r}: pass the number of gradient steps per restart, an integer >= 1")
    if restarts < 1:
        raise ValueError(f"restarts={restarts!r}: pass the number of searches per example, an integer >= 1")
    if restarts > 1 and generator is None:
        raise ValueError(
            f"restarts={restarts}: pass generator= (a torch.Generator) to draw the random starts, or restarts=1"
        )
    step_size = radius / 4 if step_size is None else step_size
    if not step_size > 0:
        raise ValueError(f"step_size={step_size!r}: pass a step size > 0, or None for radius / 4")

    x = x.detach()
    with torch.no_grad():
        logits = forward(x)
    if logits.dim() != 3 or logits.shape[:2] != x.shape[:2]:
        shapes = f"inputs {tuple(x.shape)} gave logits {tuple(logits.shape)}"
        raise ValueError(f"forward must map inputs (M, m, d) to logits (M, m, K): {shapes}")
    pred = logits.argmax(-1)  # (M, m)
    found = torch.zeros_like(pred, dtype=torch.bool)
    lo, hi = x - radius, x + radius

    for r in range(restarts):
        if r == 0:
            xa = x.clone()
        else:
            u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=generator.device).to(x.device)
            xa = torch.min(torch.max(x + (2 * u - 1) * radius, lo), hi)
        for t in range(steps + 1):
            xa = xa.detach().requires_grad_(True)
            with torch.enable_grad():
                logits = forward(xa)
                found |= logits.detach().argmax(-1) != pred
                if t == steps or bool(found.all()):
                    break
                loss = F.cross_entropy(logits.flatten(0, 1), pred.flatten(), reduction="sum")
                (grad,) = torch.autograd.grad(loss, inputs=[xa])
            xa = torch.min(torch.max(xa.detach() + step_size * grad.sign(), lo), hi)
    return found


def critical_sample_ratio(forward: Forward, x: torch.Tensor, radius: float, **kw) -> torch.Tensor:
    """(M,) float64: the share of each model's examples that `critical` reports (same keywords)."""
    return critical(forward, x, radius, **kw).double().mean(1)
