"""A run's training and validation inputs: the subset of the training split, its noise, and the form
its model reads (flat and pooled for the MLP, cropped and standardized images for the CNN).

    ts = mlp_training_set(run, ds)            # TrainingSet(x (n, d), y (n,), is_noise (n,), label_flip_rate)
    xv, yv = mlp_validation_set(ds, run.n_val, run.pool)
    ts = cnn_training_set(run, ds, stats)     # x (n, C, H, W); stats = channel_stats(ds.train_x)

Made once per run, where its group is built (harness.train, harness.cnn), and never again: what a
claim reports about a run's inputs is measured on the group's own tensors (harness.measures). Seed s
has the same subset in every condition, and an MLP and a CNN run of one seed and size draw the same
examples; every random stream comes from (seed, purpose) (harness.derive_seed).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from . import torch_generator
from .data import Dataset, flat_inputs, input_stats, make_noise, nested_noise, nested_order, stratified_subset


class TrainingSet(NamedTuple):
    x: torch.Tensor  # (n, d) for the MLP, (n, C, H, W) for the CNN; float32
    y: torch.Tensor  # (n,) int64, noisy labels where randY
    is_noise: torch.Tensor  # (n,) bool, the examples chosen to be noise
    label_flip_rate: float  # share of the n labels that random labels actually changed


def mlp_training_set(run, ds: Dataset, clean: dict | None = None) -> TrainingSet:
    """The training set of an MLP run (a train.RunConfig): inputs in [0, 1], pooled by run.pool and
    flattened. `clean`: a dict that keeps each subset's clean inputs for the next run of the same seed
    (a group's conditions share them; the noise never writes into them)."""
    clean = {} if clean is None else clean
    key = (run.seed, run.nested, run.n_train, run.pool)
    if key not in clean:
        if run.nested:
            if run.n_train > len(ds.train_y):
                raise ValueError(f"n_train={run.n_train} exceeds the {len(ds.train_y)} training examples")
            idx = nested_order(ds.train_y, torch_generator(run.seed, "nested subset"))[: run.n_train]
        else:
            idx = stratified_subset(ds.train_y, run.n_train, torch_generator(run.seed, "subset", run.n_train))
        clean[key] = idx, flat_inputs(ds.train_x[idx], run.pool)
    idx, x = clean[key]
    y = ds.train_y[idx]
    if run.nested:
        noisy = nested_noise(x, y, run.noise, run.noise_fraction, ds.num_classes, run.seed, input_stats(ds, run.pool))
    else:
        g = torch_generator(run.seed, "noise", run.n_train, run.noise_fraction)
        noisy = make_noise(x, y, run.noise, run.noise_fraction, ds.num_classes, g)
    return TrainingSet(noisy.x, noisy.y, noisy.is_noise, noisy.label_flip_rate)


def mlp_validation_set(ds: Dataset, n_val: int, pool: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (n_val, d), y (n_val,)): the same clean validation examples for every run of a dataset and size."""
    idx = stratified_subset(ds.val_y, n_val, torch_generator("validation", n_val))
    return flat_inputs(ds.val_x[idx], pool), ds.val_y[idx]


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images (N, C, H, W) on [0, 1], summed in float64 chunks."""
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for s in range(0, len(x), 5000):
        chunk = x[s : s + 5000].double() / 255
        total += chunk.sum((0, 2, 3))
        squares += chunk.pow(2).sum((0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    return mean.float(), (squares / count - mean**2).sqrt().float()


def _centre_crop(x: torch.Tensor, side: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return x[..., top : top + min(side, h), left : left + min(side, w)]


def _standardize(x: torch.Tensor, run, stats) -> torch.Tensor:
    """Centre-crop to run.crop, scale to [0, 1], standardize per channel, average-pool by run.downsample."""
    mean, std = stats
    x = _centre_crop(x, run.crop).float() / 255
    x = (x - mean[:, None, None]) / std[:, None, None]
    return F.avg_pool2d(x, run.downsample) if run.downsample > 1 else x


def cnn_training_set(run, ds: Dataset, stats=None) -> TrainingSet:
    """The training set of a CNN run (a cnn.CNNConfig): standardized images, and with random labels
    every label uniform random; the same subset as an MLP run of that seed and size."""
    stats = stats or channel_stats(ds.train_x)
    idx = stratified_subset(ds.train_y, run.n_train, torch_generator(run.seed, "subset", run.n_train))
    x, y = _standardize(ds.train_x[idx], run, stats), ds.train_y[idx]
    if run.labels == "real":
        return TrainingSet(x, y, torch.zeros(len(y), dtype=torch.bool), 0.0)
    # Labels only: an empty view of x spares make_noise a copy of the images.
    noisy = make_noise(x[:, :0], y, "randY", 1.0, ds.num_classes, torch_generator(run.seed, "noise", run.n_train, 1.0))
    return TrainingSet(x, noisy.y, noisy.is_noise, noisy.label_flip_rate)


def cnn_validation_set(run, ds: Dataset, stats=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The same clean validation examples for every run of a dataset and size (as the MLP's)."""
    stats = stats or channel_stats(ds.train_x)
    idx = stratified_subset(ds.val_y, run.n_val, torch_generator("validation", run.n_val))
    return _standardize(ds.val_x[idx], run, stats), ds.val_y[idx]
