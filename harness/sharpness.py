"""Sharpness: the top eigenvalue of the training-loss Hessian of every model of a batch.

    of = lambda rows: mlp_losses(model, X, Y, rows)             # the full training loss, in chunks
    est = top_eigenvalue(of, params, generators=gs)             # power iteration on exact HVPs
    est = lecun_eigenvalue(of, params, generators=gs)           # the paper's estimator (LeCun et al. 1993)

`params` are tensors with the model index first, (M, ...). `Losses` is a list of callables, each
mapping the parameters of some models to their losses, whose sum over the list is the full training
loss (chunks of the training set, so the double-backward graph of 50,000 examples never sits in
memory at once); the estimators take a `LossesOf`, which gives the `Losses` of the models `rows`.
Models are independent, so one batched Hessian-vector product gives every model its own. A model
leaves the batch when its own stopping rule holds, with the estimate of that iteration: its result
does not depend on the other models of its batch (nor on a split of the batch to fit memory), and
the batch shrinks as the models stop.

Both return the eigenvalue of largest magnitude (the paper's "norm of the largest eigenvalue"),
its relative residual ||Hv - lambda v|| / |lambda| and the iterations used. Checked against exact
Hessians (torch.autograd.functional.hessian + eigvalsh, float64) in tests/test_sharpness.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

Losses = list[Callable[[list[torch.Tensor]], torch.Tensor]]
LossesOf = Callable[[torch.Tensor], Losses]  # rows (model indices, increasing) -> the Losses of those models


@dataclass
class Eigen:
    value: np.ndarray  # (M,) top eigenvalue (largest magnitude) per model
    residual: np.ndarray  # (M,) ||H v - value v|| / |value| at the returned v
    iterations: np.ndarray  # (M,) iterations until the stopping rule held (max_iters if never)
    converged: np.ndarray  # (M,) bool


def _dot(a, b) -> torch.Tensor:
    """(M,) per-model inner product of two parameter lists."""
    return sum((x * y).flatten(1).sum(1) for x, y in zip(a, b))


def _norm(vs) -> torch.Tensor:
    return _dot(vs, vs).sqrt()


def _scale(vs, s: torch.Tensor):
    """Multiply model m's part of every tensor by s[m]."""
    return [v * s.view(-1, *[1] * (v.dim() - 1)) for v in vs]


def _normalized(vs):
    return _scale(vs, _dot(vs, vs).rsqrt())


def _random_direction(params, generators: list[torch.Generator]):
    """A unit start vector per model, model m drawn from generators[m] alone (batch-independent)."""
    vs = [
        torch.stack([torch.randn(p.shape[1:], generator=g, dtype=p.dtype) for g in generators]).to(p.device)
        for p in params
    ]
    return _normalized(vs)


def gradient(losses: Losses, params) -> list[torch.Tensor]:
    """Gradient of the full loss of every model, accumulated over the chunks."""
    params = [p.detach().requires_grad_(True) for p in params]
    total = [torch.zeros_like(p) for p in params]
    for loss in losses:
        for t, g in zip(total, torch.autograd.grad(loss(params).sum(), params)):
            t += g
    return total


def hvp(losses: Losses, params, vs) -> list[torch.Tensor]:
    """Exact Hessian-vector products H_m v_m of every model (double backward, chunk by chunk)."""
    params = [p.detach().requires_grad_(True) for p in params]
    total = [torch.zeros_like(p) for p in params]
    for loss in losses:
        grads = torch.autograd.grad(loss(params).sum(), params, create_graph=True)
        for t, h in zip(total, torch.autograd.grad(_dot(grads, vs).sum(), params)):
            t += h
    return total


def top_eigenvalue(
    losses_of: LossesOf,
    params,
    *,
    generators: list[torch.Generator],
    tol: float = 1e-4,
    residual_tol: float = 1e-2,
    max_iters: int = 500,
) -> Eigen:
    """Power iteration on exact HVPs. A model stops once its Rayleigh quotient changes by less than
    `tol` (relative) and its residual is below `residual_tol`, and leaves the batch with that
    iteration's estimate; a model that never stops ends at `max_iters`, unconverged."""
    out = _Estimates(params[0].shape[0], params[0].device, max_iters)
    batch = _Batch(losses_of, params, out.active)
    v, last = _random_direction(params, generators), None
    for it in range(1, max_iters + 1):
        hv = hvp(batch.losses, batch.params, v)
        lam = _dot(v, hv)  # (A,) Rayleigh quotient, |v| = 1
        res = _norm([h - lv for h, lv in zip(hv, _scale(v, lam))]) / lam.abs()
        ok = (
            torch.zeros_like(lam, dtype=torch.bool)
            if last is None
            else ((lam - last).abs() <= tol * lam.abs()) & (res <= residual_tol)
        )
        keep = out.stop(it, ok, lam, res)
        if not keep.any():
            break
        batch.keep(keep, out.active)
        v, last = _normalized([h[keep] for h in hv]), lam[keep]
    return out.eigen()


def lecun_eigenvalue(
    losses_of: LossesOf,
    params,
    *,
    generators: list[torch.Generator],
    a: float = 0.01,
    gamma: float = 0.02,
    tol: float = 1e-3,
    max_iters: int = 2000,
) -> Eigen:
    """The paper's estimator (LeCun, Simard & Pearlmutter 1993), finite differences of gradients:

        psi <- (1 - gamma) psi + (gamma / a) [grad E(w + a psi/|psi|) - grad E(w)]

    |psi| converges to the top eigenvalue (the printed formula drops the (1 - gamma) factor's
    gamma; without it |psi| settles at lambda/gamma). A model stops once |psi| changes by less than
    `tol` (relative) over 1/gamma iterations, and leaves the batch with that |psi|. The residual is
    that of psi/|psi| under exact HVPs."""
    params = [p.detach() for p in params]
    out = _Estimates(params[0].shape[0], params[0].device, max_iters)
    batch = _Batch(losses_of, params, out.active)
    g0 = gradient(batch.losses, params)
    psi = _random_direction(params, generators)
    window = max(1, round(1 / gamma))
    history = []  # |psi| of the models still in the batch, the last window + 1 iterations
    stopped = [torch.empty_like(p) for p in params]  # each model's psi where it stopped
    for it in range(1, max_iters + 1):
        u = _normalized(psi)
        g1 = gradient(batch.losses, [p + a * d for p, d in zip(batch.params, u)])
        psi = [(1 - gamma) * s + (gamma / a) * (x - y) for s, x, y in zip(psi, g1, g0)]
        norm = _norm(psi)
        history = history[-window:] + [norm]
        ok = (norm - history[0]).abs() <= tol * norm if it > window else torch.zeros_like(norm, dtype=torch.bool)
        rows = out.active
        keep = out.stop(it, ok, norm)
        for f, s in zip(stopped, psi):
            f[rows[~keep]] = s[~keep]
        if not keep.any():
            break
        batch.keep(keep, out.active)
        psi, g0, history = ([t[keep] for t in ts] for ts in (psi, g0, history))
    u = _normalized(stopped)
    hv = hvp(losses_of(out.rows), params, u)
    lam = _dot(u, hv)
    out.residual[:] = (_norm([h - lv for h, lv in zip(hv, _scale(u, lam))]) / lam.abs()).double()
    return out.eigen()


class _Estimates:
    """Each model's estimate, residual and iterations, recorded as it stops; `active`: the models
    still iterating (indices into the whole batch, increasing)."""

    def __init__(self, M: int, device, max_iters: int):
        self.rows = self.active = torch.arange(M, device=device)
        self.value = torch.zeros(M, device=device, dtype=torch.float64)
        self.residual = torch.zeros(M, device=device, dtype=torch.float64)
        self.iterations = np.full(M, max_iters)
        self.converged = np.zeros(M, dtype=bool)
        self.max_iters = max_iters

    def stop(self, it: int, ok: torch.Tensor, value: torch.Tensor, residual: torch.Tensor | None = None):
        """Record the active models that stop at iteration `it` (`ok`; every one at the last
        iteration, unconverged unless `ok`); returns which stay, over the active models."""
        ends = ok | (it == self.max_iters)
        gone = self.active[ends]
        self.value[gone] = value[ends].double()
        if residual is not None:
            self.residual[gone] = residual[ends].double()
        at = self.active[ok].cpu().numpy()
        self.iterations[at], self.converged[at] = it, True
        self.active = self.active[~ends]
        return ~ends

    def eigen(self) -> Eigen:
        return Eigen(self.value.cpu().numpy(), self.residual.cpu().numpy(), self.iterations, self.converged)


class _Batch:
    """The parameters and losses of the models still iterating (built again only when one leaves)."""

    def __init__(self, losses_of: LossesOf, params, rows: torch.Tensor):
        self.losses_of, self.all = losses_of, params
        self.params, self.losses = params, losses_of(rows)

    def keep(self, keep: torch.Tensor, rows: torch.Tensor) -> None:
        if not keep.all():
            self.params, self.losses = [p[rows] for p in self.all], self.losses_of(rows)


def mlp_losses(
    model: torch.nn.Module, X: torch.Tensor, Y: torch.Tensor, rows: torch.Tensor | None = None, chunk: int = 4096
) -> Losses:
    """The mean cross-entropy over each model's whole training set, (M, n, d) and (M, n), in chunks,
    for the models `rows` (default: all).

    Returns callables over those models' parameters (in `model.parameters()` order)."""
    names = [name for name, _ in model.named_parameters()]
    if rows is not None and len(rows) < X.shape[0]:
        X, Y = X[rows], Y[rows]
    n = X.shape[1]

    def chunk_loss(s: slice):
        def loss(params):
            out = functional_call(model, dict(zip(names, params)), (X[:, s],))  # (A, c, K)
            per_example = F.cross_entropy(out.flatten(0, 1), Y[:, s].flatten(), reduction="none")
            return per_example.view(X.shape[0], -1).sum(1) / n  # (A,) this chunk's share of the mean

        return loss

    return [chunk_loss(slice(s, s + chunk)) for s in range(0, n, chunk)]


def measure(model: torch.nn.Module, params, X, Y, generators, lecun: bool) -> list[dict]:
    """Power iteration (and, with `lecun`, the paper's estimator) for every model: the JSON-ready
    `measures` of a training run."""
    losses_of = partial(mlp_losses, model, X, Y)
    exact = top_eigenvalue(losses_of, params, generators=generators)
    out = [
        {
            "sharpness": float(exact.value[m]),
            "sharpness_residual": float(exact.residual[m]),
            "sharpness_iterations": int(exact.iterations[m]),
            "sharpness_converged": bool(exact.converged[m]),
        }
        for m in range(len(generators))
    ]
    if lecun:  # gamma 0.1: 5x fewer gradient passes than 0.02, same estimates on our models
        est = lecun_eigenvalue(losses_of, params, generators=generators, gamma=0.1)
        for m, d in enumerate(out):
            d.update(
                sharpness_lecun=float(est.value[m]),
                sharpness_lecun_residual=float(est.residual[m]),
                sharpness_lecun_iterations=int(est.iterations[m]),
            )
    return out
