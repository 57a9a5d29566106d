"""The critical-sample search against known answers: linear models whose decision boundary lies at a
known L-infinity distance, a ReLU net whose prediction cannot change, and models kept independent."""

from __future__ import annotations

import pytest
import torch

from harness import torch_generator
from harness.adversarial import critical, critical_sample_ratio
from harness.models import BatchedMLP

RADIUS = 0.1
# Signed distances of x_0 to each model's boundary: |delta| < RADIUS is critical, |delta| > RADIUS is not.
DELTAS = torch.tensor([0.0, 0.02, -0.05, 0.09, -0.099, 0.101, -0.12, 0.3, -1.0])


def linear(scale, boundary):
    """Batched linear models, logits = x @ W + b (d = 5, K = 2): model m has w = scale[m] * (1, -1)
    on the first coordinate only and b = scale[m] * (-c, c), so it predicts class 0 for x_0 > c =
    boundary[m] and class 1 below; the L-infinity distance of x to the boundary is |x_0 - c|."""
    scale, boundary = torch.tensor(scale), torch.tensor(boundary)
    W = torch.zeros(len(scale), 5, 2)
    W[:, 0, 0], W[:, 0, 1] = scale, -scale
    b = torch.stack([-scale * boundary, scale * boundary], 1).unsqueeze(1)  # (M, 1, 2)
    return lambda x: x @ W + b


def points(boundary, deltas, seed=0):
    """(M, len(deltas), 5) float32 inputs: x_0 = boundary[m] + deltas, the other coordinates random."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(boundary), len(deltas), 5, generator=g)
    x[:, :, 0] = torch.tensor(boundary).unsqueeze(1) + deltas
    return x


def test_linear_models_are_critical_exactly_within_the_radius():
    """Points closer to the boundary than the radius are found (the search walks straight to it), points
    farther are not (no adversarial example exists): float32, with and without random restarts."""
    boundary = [0.3, -0.7]
    forward, x = linear([2.0, 5.0], boundary), points(boundary, DELTAS)
    expected = (DELTAS.abs() < RADIUS).expand(2, -1)
    assert torch.equal(critical(forward, x, RADIUS), expected)
    g = torch.Generator().manual_seed(1)
    assert torch.equal(critical(forward, x, RADIUS, restarts=4, generator=g), expected)


def test_default_step_size_is_a_quarter_of_the_radius():
    """With step radius / 4, three steps reach distance 0.075 and four reach 0.1 from the start."""
    boundary = [0.0, 0.0]
    forward, x = linear([1.0, 1.0], boundary), points(boundary, torch.tensor([0.07, 0.09]))
    assert torch.equal(critical(forward, x, RADIUS, steps=3), torch.tensor([[True, False]] * 2))
    assert torch.equal(critical(forward, x, RADIUS, steps=4), torch.tensor([[True, True]] * 2))
    assert torch.equal(critical(forward, x, RADIUS, steps=3, step_size=RADIUS / 3), torch.tensor([[True, True]] * 2))


def test_every_evaluated_point_lies_in_the_box():
    boundary = [0.3, -0.7]
    forward, x = linear([2.0, 5.0], boundary), points(boundary, DELTAS)
    seen = []
    critical(lambda z: seen.append(z.detach()) or forward(z), x, RADIUS, restarts=3, generator=torch_generator("box"))
    assert len(seen) > 3
    assert max(float((z - x).abs().max()) for z in seen) <= RADIUS * (1 + 1e-6)


def relu_net(huge_bias: bool) -> BatchedMLP:
    """Two ReLU nets (5 -> 4 -> 2) that predict class 0 everywhere. With huge_bias: random Glorot
    weights and a class-0 bias of 1000 (the softmax saturates). Without: logit_0 = relu(x_0) + 1 and
    logit_1 = 0, so the loss keeps a gradient (towards x_0 < 0) but class 1 never wins."""
    model = BatchedMLP(2, [5, 4, 2]).glorot_([torch_generator("relu", i) for i in range(2)])
    with torch.no_grad():
        if huge_bias:
            model.biases[1][:, 0, 0] = 1000.0
        else:
            for p in model.parameters():
                p.zero_()
            model.weights[0][:, 0, 0] = 1.0
            model.weights[1][:, 0, 0] = 1.0
            model.biases[1][:, 0, 0] = 1.0
    return model


@pytest.mark.parametrize("huge_bias", [True, False])
def test_a_relu_net_with_a_constant_prediction_has_no_critical_points(huge_bias):
    model = relu_net(huge_bias)
    x = torch.randn(2, 16, 5, generator=torch.Generator().manual_seed(2))
    for radius in (0.1, 2.0):
        found = critical(model, x, radius, restarts=3, generator=torch_generator("relu starts"))
        assert found.shape == (2, 16) and not found.any()
    assert all(p.grad is None for p in model.parameters())  # no gradient reached the parameters


def random_mlp(seeds):
    return BatchedMLP(len(seeds), [5, 8, 3]).double().glorot_([torch_generator("mlp", s) for s in seeds])


def test_models_are_independent():
    """Model 0's result depends on its own weights and inputs alone: not on model 1's weights, nor on
    sharing a batch at all."""
    x = torch.randn(2, 32, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    kw = dict(radius=0.5, restarts=2)
    a = critical(random_mlp([0, 1]), x, generator=torch_generator("starts"), **kw)
    b = critical(random_mlp([0, 7]), x, generator=torch_generator("starts"), **kw)
    assert 0 < int(a[0].sum()) < 32  # a mix, so the comparison means something
    assert torch.equal(a[0], b[0]) and not torch.equal(a[1], b[1])
    alone = critical(random_mlp([0]), x[:1], 0.5)
    assert torch.equal(alone[0], critical(random_mlp([0, 1]), x, 0.5)[0])


def test_critical_sample_ratio_is_the_share_per_model():
    boundary = [0.3, -0.7]
    forward = linear([2.0, 5.0], boundary)
    x = points(boundary, DELTAS)
    x[1, :, 0] = boundary[1] + DELTAS.flip(0) * 3  # model 1: only 0.0 and 0.02 * 3 stay within the radius
    ratio = critical_sample_ratio(forward, x, RADIUS)
    assert ratio.shape == (2,) and ratio.dtype == torch.float64
    assert ratio.tolist() == pytest.approx([5 / 9, 2 / 9])


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(radius=0.0), "radius"),
        (dict(radius=-1.0), "radius"),
        (dict(radius=0.1, steps=0), "steps"),
        (dict(radius=0.1, restarts=2), "generator"),
    ],
)
def test_bad_arguments_say_what_to_pass(kw, match):
    forward, x = linear([1.0, 1.0], [0.0, 0.0]), points([0.0, 0.0], DELTAS)
    with pytest.raises(ValueError, match=match):
        critical(forward, x, **kw)
