"""A stack of M independent ReLU MLPs evaluated as one batched model.

Model m has its own weights W_l[m]; a forward pass is one `baddbmm` per layer over all M models,
so seeds and conditions of one shape train together instead of in a Python loop. The model
equals M separate `nn.Sequential(Linear, ReLU, ..., Linear)` nets (tests/test_train.py checks
this against `torch.nn` one model at a time).
"""

from __future__ import annotations

import math

import torch


class BatchedMLP(torch.nn.Module):
    def __init__(self, n_models: int, sizes: list[int]):
        """sizes = [d_in, hidden, ..., hidden, n_classes]; initialise with `glorot_`."""
        super().__init__()
        self.sizes = list(sizes)
        self.weights = torch.nn.ParameterList(
            torch.nn.Parameter(torch.empty(n_models, a, b)) for a, b in zip(sizes[:-1], sizes[1:])
        )  # (M, in, out)
        self.biases = torch.nn.ParameterList(
            torch.nn.Parameter(torch.zeros(n_models, 1, b)) for b in sizes[1:]
        )  # (M, 1, out)

    def glorot_(self, generators: list[torch.Generator]) -> "BatchedMLP":
        """Keras' default Dense init (the paper's framework): W ~ U(+-sqrt(6/(fan_in+fan_out))), b = 0.

        Model m draws from generators[m], layer by layer, so its init depends on its seed alone."""
        with torch.no_grad():
            for m, g in enumerate(generators):
                for w in self.weights:
                    limit = math.sqrt(6.0 / (w.shape[1] + w.shape[2]))
                    w[m] = (torch.rand(w.shape[1:], generator=g) * 2 - 1) * limit
            for b in self.biases:
                b.zero_()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (M, B, d_in) -> logits (M, B, n_classes)."""
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = torch.relu(x)
        return x
