"""How long a training group takes on one H200, from a cost model: a plan for the full tier before
any GPU is at hand (`pytest claims -m full --plan`), labelled as an estimate wherever it is shown.

    seconds = epoch_seconds(run, ds, models=25)   # one epoch of a batched group of `run`'s shape

The model: an epoch is its SGD steps plus one evaluation pass over the training and validation
examples. A step costs at least STEP_FLOOR_S (a CUDA-graph replay of tiny kernels, whatever the
width), else its arithmetic at the throughput the trainer reached on a large group. Calibrated on
this harness's trainer (the fused step replayed as CUDA graphs; CNNs with autograd) on one H200
(torch 2.11, TF32, batch 32 for the MLP, n = 50,000, Fashion-MNIST shapes), commit f671b1d:

| group                              | measured s/epoch          | this model |
|------------------------------------|---------------------------|------------|
| 25 MLPs 2x4096                     | 4.08 (full epoch)         | 4.08       |
| 20 MLPs 2x64                       | 0.17 (full epoch)         | 0.17       |
| 270 CNNs, full C4 (64 filters)     | 123.4 (dry run, 20 steps) | 123.4      |
| 65 MLPs 2x8192 (2 sub-batches)     | 34.8 (dry run)            | 38.9       |
| 65 / 45 / 20 / 15 MLPs 2x4096      | 10.7 / 7.2 / 4.0 / 2.9    | 10.6 / 7.3 / 3.3 / 2.5 |
| 45 MLPs 2x2048                     | 2.6 (dry run)             | 2.1        |

so groups of width 2,048 and more are within a quarter of their measurement, and several are
under-estimated by up to a fifth: the per-epoch part of the plan is not an upper bound. Narrower
groups are not compared: the dry run timed them in one call of 20 steps, which charged each step a
share of the call's own cost (the epoch's data order), and gave 0.47-1.98 s per epoch for groups
whose whole timed epoch should take about 0.2 s (`harness.core.epoch_seconds` has timed two calls
since; the 2x256 group's 1.98 s is unexplained). On an H100 (about 70% of an H200's memory
bandwidth) expect somewhat longer. An upper bound for the epoch budget (runs that fit
early leave their group, which the model ignores), and without C3's sharpness measurement. Measure
instead with `--dry-run` on the GPU.
"""
from __future__ import annotations

import math

from .cnn import CNNConfig
from .data import Dataset, flat_inputs

STEP_FLOOR_S = 1.09e-4  # s per SGD step of a small group (20 MLPs 2x64: 0.17 s for 1,563 steps)
MLP_FLOPS = 51.6e12  # FLOP/s, training and evaluation arithmetic of the 25-model 2x4096 group
CNN_FLOPS = 20.8e12  # FLOP/s, convolutions and dense layers of the 270-CNN full C4 group
DEVICE = "H200 (estimate, cost model)"


def epoch_seconds(run, ds: Dataset, models: int) -> float:
    """Estimated seconds per epoch of a group of `models` runs of `run`'s shape on one H200."""
    steps = math.ceil(run.n_train / run.batch_size)
    if isinstance(run, CNNConfig):
        forward, rate = _cnn_forward_flops(run, ds), CNN_FLOPS
    else:
        d = flat_inputs(ds.train_x[:1], run.pool).shape[1]
        sizes = [d] + [run.width] * run.depth + [ds.num_classes]
        forward, rate = 2 * sum(a * b for a, b in zip(sizes, sizes[1:])), MLP_FLOPS
    step = max(STEP_FLOOR_S, 3 * forward * run.batch_size * models / rate)  # forward + backward = 3 forwards
    evaluation = forward * (run.n_train + run.n_val) * models / rate
    return steps * step + evaluation


def _cnn_forward_flops(run: CNNConfig, ds: Dataset) -> float:
    """Multiply-adds x 2 of one example through the two 5x5 convolutions and the dense layers."""
    c_in = ds.train_x.shape[1]
    side = min(run.crop, ds.train_x.shape[-1]) // run.downsample
    half, quarter = math.ceil(side / 2), math.ceil(math.ceil(side / 2) / 2)
    convs = side * side * run.channels * c_in * 25 + half * half * run.channels * run.channels * 25
    sizes = [run.channels * quarter * quarter, *run.dense, ds.num_classes]
    return 2 * (convs + sum(a * b for a, b in zip(sizes, sizes[1:])))
