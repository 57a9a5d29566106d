"""Sharpness: the top eigenvalue of the training-loss Hessian of every model of a batch.

    est = top_eigenvalue(losses, params, generators=gs)         # power iteration on exact HVPs
    est = lecun_eigenvalue(losses, params, generators=gs)       # the paper's estimator (LeCun et al. 1993)
    losses = mlp_losses(model, X, Y)                            # the full training loss, in chunks

`params` are tensors with the model index first, (M, ...); `losses` is a list of callables, each
mapping params to per-model losses (M,) whose sum over the list is the full training loss (chunks of
the training set, so the double-backward graph of 50,000 examples never sits in memory at once).
Models are independent, so one batched Hessian-vector product gives every model its own.

Both return the eigenvalue of largest magnitude (the paper's "norm of the largest eigenvalue"),
its relative residual ||Hv - lambda v|| / |lambda| and the iterations used. Checked against exact
Hessians (torch.autograd.functional.hessian + eigvalsh, float64) in tests/test_sharpness.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

Losses = list[Callable[[list[torch.Tensor]], torch.Tensor]]


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
    vs = [torch.stack([torch.randn(p.shape[1:], generator=g, dtype=p.dtype) for g in generators]).to(p.device)
          for p in params]
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


def top_eigenvalue(losses: Losses, params, *, generators: list[torch.Generator], tol: float = 1e-4,
                   residual_tol: float = 1e-2, max_iters: int = 500) -> Eigen:
    """Power iteration on exact HVPs. A model stops counting once the Rayleigh quotient changes by
    less than `tol` (relative) and the residual is below `residual_tol`; all models iterate until
    every one has stopped or `max_iters`, and the last (best) estimates are returned."""
    v = _random_direction(params, generators)
    M = params[0].shape[0]
    done_at = np.full(M, max_iters)
    last = None
    for it in range(1, max_iters + 1):
        hv = hvp(losses, params, v)
        lam = _dot(v, hv)  # (M,) Rayleigh quotient, |v| = 1
        res = _norm([h - lv for h, lv in zip(hv, _scale(v, lam))]) / lam.abs()
        if last is not None:
            ok = ((lam - last).abs() <= tol * lam.abs()) & (res <= residual_tol)
            newly = ok.cpu().numpy() & (done_at == max_iters)
            done_at[newly] = it
        last = lam
        if (done_at < max_iters).all():
            break
        v = _normalized(hv)
    return Eigen(lam.detach().cpu().double().numpy(), res.detach().cpu().double().numpy(), done_at,
                 done_at < max_iters)


def lecun_eigenvalue(losses: Losses, params, *, generators: list[torch.Generator], a: float = 0.01,
                     gamma: float = 0.02, tol: float = 1e-3, max_iters: int = 2000) -> Eigen:
    """The paper's estimator (LeCun, Simard & Pearlmutter 1993), finite differences of gradients:

        psi <- (1 - gamma) psi + (gamma / a) [grad E(w + a psi/|psi|) - grad E(w)]

    |psi| converges to the top eigenvalue (the printed formula drops the (1 - gamma) factor's
    gamma; without it |psi| settles at lambda/gamma). Stops once |psi| changes by less than `tol`
    (relative) over 1/gamma iterations. The residual is that of psi/|psi| under exact HVPs."""
    params = [p.detach() for p in params]
    g0 = gradient(losses, params)
    psi = _random_direction(params, generators)
    M = params[0].shape[0]
    window = max(1, round(1 / gamma))
    history = []
    done_at = np.full(M, max_iters)
    for it in range(1, max_iters + 1):
        u = _normalized(psi)
        g1 = gradient(losses, [p + a * d for p, d in zip(params, u)])
        psi = [(1 - gamma) * s + (gamma / a) * (x - y) for s, x, y in zip(psi, g1, g0)]
        norm = _norm(psi)
        history.append(norm)
        if it > window:
            old = history[-1 - window]
            newly = (((norm - old).abs() <= tol * norm).cpu().numpy()) & (done_at == max_iters)
            done_at[newly] = it
            if (done_at < max_iters).all():
                break
    u = _normalized(psi)
    hv = hvp(losses, params, u)
    lam = _dot(u, hv)
    res = _norm([h - lv for h, lv in zip(hv, _scale(u, lam))]) / lam.abs()
    return Eigen(norm.detach().cpu().double().numpy(), res.detach().cpu().double().numpy(), done_at,
                 done_at < max_iters)


def mlp_losses(model: torch.nn.Module, X: torch.Tensor, Y: torch.Tensor, chunk: int = 4096) -> Losses:
    """The mean cross-entropy over each model's whole training set, (M, n, d) and (M, n), in chunks.

    Returns callables over the model's parameter list (in `model.parameters()` order)."""
    names = [name for name, _ in model.named_parameters()]
    n = X.shape[1]

    def chunk_loss(s: slice):
        def loss(params):
            out = functional_call(model, dict(zip(names, params)), (X[:, s],))  # (M, c, K)
            per_example = F.cross_entropy(out.flatten(0, 1), Y[:, s].flatten(), reduction="none")
            return per_example.view(X.shape[0], -1).sum(1) / n  # (M,) this chunk's share of the mean
        return loss
    return [chunk_loss(slice(s, s + chunk)) for s in range(0, n, chunk)]


def measure(model: torch.nn.Module, params, X, Y, generators, lecun: bool) -> list[dict]:
    """Power iteration (and, with `lecun`, the paper's estimator) for every model: the JSON-ready
    `measures` of a training run."""
    losses = mlp_losses(model, X, Y)
    exact = top_eigenvalue(losses, params, generators=generators)
    out = [{"sharpness": float(exact.value[m]), "sharpness_residual": float(exact.residual[m]),
            "sharpness_iterations": int(exact.iterations[m]), "sharpness_converged": bool(exact.converged[m])}
           for m in range(len(generators))]
    if lecun:  # gamma 0.1: 5x fewer gradient passes than 0.02, same estimates on our models
        est = lecun_eigenvalue(losses, params, generators=generators, gamma=0.1)
        for m, d in enumerate(out):
            d.update(sharpness_lecun=float(est.value[m]), sharpness_lecun_residual=float(est.residual[m]),
                     sharpness_lecun_iterations=int(est.iterations[m]))
    return out
