"""Datasets as whole uint8 tensors, class-stratified subsets, and the paper's noise.

    from harness import data
    ds = data.load("fashion-mnist")            # Debian files, a --data-root, or a download
    idx = data.stratified_subset(ds.train_y, 500, generator)
    noisy = data.make_noise(x, y, "randY", 1.0, ds.num_classes, generator)

Splits follow the paper: MNIST and Fashion-MNIST use the first 50,000 examples of the official
training split for training and the last 10,000 for validation (the official test split is never
touched); CIFAR-10 uses its official 50,000/10,000 split. Every file is verified against the MD5 of
its decompressed content, so Debian's re-compressed `.gz` files are accepted as they are.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import socket
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import torch_generator

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DATA_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "memorization-claims" / "data"
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class DataError(RuntimeError):
    """A dataset that cannot be used as asked; the message says what to do about it."""


@dataclass(frozen=True)
class Spec:
    name: str
    torchvision_class: str  # also the folder torchvision downloads into: <root>/<class>/raw
    num_classes: int
    md5: dict[str, str]  # decompressed content
    fix: str  # what a user without the files can do


SPECS = {
    "mnist": Spec(
        "mnist",
        "MNIST",
        10,
        dict(
            zip(
                IDX_FILES,
                (
                    "6bbc9ace898e44ae57da46a324031adb",
                    "a25bea736e30d166cdddb491f175f624",
                    "2646ac647ad5339dbf082846283269ea",
                    "27ae3e4e09519cfbb04c329615203637",
                ),
            )
        ),
        "put the four MNIST IDX files (.gz or decompressed) in --data-root / CLAIMS_DATA_ROOT, run once "
        "with a network so torchvision can download them, or use --dataset fashion-mnist "
        "(apt-get install dataset-fashion-mnist) offline",
    ),
    "fashion-mnist": Spec(
        "fashion-mnist",
        "FashionMNIST",
        10,
        dict(
            zip(
                IDX_FILES,
                (
                    "f4a8712d7a061bf5bd6d2ca38dc4d50a",
                    "9018921c3c673c538a1fc5bad174d6f9",
                    "8181f5470baa50b63fa0f6fddb340f0a",
                    "15d484375f8d13e6eb1aabb0c3f46965",
                ),
            )
        ),
        "apt-get install dataset-fashion-mnist (puts the files in /usr/share/datasets/fashion-mnist), "
        "put the four IDX files in --data-root / CLAIMS_DATA_ROOT, or run once with a network",
    ),
    "cifar10": Spec(
        "cifar10",
        "CIFAR10",
        10,
        {},
        "put torchvision's cifar-10-batches-py folder (or cifar-10-python.tar.gz) in --data-root / "
        "CLAIMS_DATA_ROOT, or run once with a network so torchvision can download it",
    ),
}


@dataclass(frozen=True)
class Dataset:
    name: str
    train_x: torch.Tensor  # (N, C, H, W) uint8, N = 50,000
    train_y: torch.Tensor  # (N,) int64
    val_x: torch.Tensor  # (10000, C, H, W) uint8
    val_y: torch.Tensor  # (10000,) int64
    num_classes: int
    source: str  # where the files were read from
    fingerprint: str  # hash of the checksums, part of every result-store key

    @property
    def input_dim(self) -> int:
        return int(np.prod(self.train_x.shape[1:]))


def spec(name: str) -> Spec:
    if name not in SPECS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(SPECS)}")
    return SPECS[name]


@functools.lru_cache(maxsize=4)
def load(name: str, data_root: str | None = None, download: bool = True) -> Dataset:
    """The dataset `name`, from `data_root`, the default locations, or a torchvision download."""
    s = spec(name)
    roots = [Path(data_root)] if data_root else []
    roots.append(DEFAULT_DATA_ROOT)
    if name == "cifar10":
        return _load_cifar10(s, roots, download)
    if name == "fashion-mnist":
        roots.append(DEBIAN_FASHION_MNIST)
    files = _find_idx(s, roots)
    if files is None and download:
        _download(s, roots[0])
        files = _find_idx(s, roots)
    if files is None:
        where = ", ".join(str(r) for r in roots)
        raise DataError(f"{name}: IDX files not found (looked in {where}). To fix: {s.fix}.")
    arrays = {f: _read_idx(path, s.md5[f], s) for f, path in files.items()}
    images, labels = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    images = torch.from_numpy(images).unsqueeze(1)  # (60000, 1, 28, 28)
    labels = torch.from_numpy(labels.astype(np.int64))
    return Dataset(
        name,
        images[:50_000],
        labels[:50_000],
        images[50_000:],
        labels[50_000:],
        s.num_classes,
        source=str(files["train-images-idx3-ubyte"].parent),
        fingerprint=_fingerprint(s.md5),
    )


def _candidates(s: Spec, root: Path, filename: str):
    for folder in (root, root / s.torchvision_class / "raw", root / s.name):
        yield folder / filename
        yield folder / (filename + ".gz")


def _find_idx(s: Spec, roots: list[Path]) -> dict[str, Path] | None:
    for root in roots:
        found = {f: next((p for p in _candidates(s, root, f) if p.is_file()), None) for f in IDX_FILES}
        if all(found.values()):
            return found
        if any(found.values()):
            missing = [f for f, p in found.items() if p is None]
            raise DataError(
                f"{s.name}: {root} holds only part of the dataset (missing {', '.join(missing)}). "
                f"To fix: add the missing files or remove the partial copy; {s.fix}."
            )
    return None


def _read_idx(path: Path, md5: str, s: Spec) -> np.ndarray:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{s.name}: cannot read {path} ({e}). To fix: delete it and {s.fix}.") from e
    digest = hashlib.md5(raw).hexdigest()
    if digest != md5:
        raise DataError(
            f"{s.name}: {path} is corrupt or not the expected file (MD5 of its content {digest}, "
            f"expected {md5}). To fix: delete it and {s.fix}."
        )
    return parse_idx(raw)


def parse_idx(raw: bytes) -> np.ndarray:
    """IDX format: magic 2051 (images, 3 dims) or 2049 (labels, 1 dim), big-endian int32 sizes, uint8 data."""
    magic = int.from_bytes(raw[:4], "big")
    ndim = {2049: 1, 2051: 3}.get(magic)
    if ndim is None:
        raise ValueError(f"not an IDX uint8 file (magic {magic})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"IDX header promises {shape} but the file holds {data.size} bytes")
    return data.reshape(shape).copy()


def _download(s: Spec, root: Path) -> None:
    import torchvision

    cls = getattr(torchvision.datasets, s.torchvision_class)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)  # an offline machine should fail fast, not hang
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as e:  # torchvision raises many kinds; all mean "not downloaded"
        raise DataError(f"{s.name}: files not found and the download into {root} failed ({e}). To fix: {s.fix}.") from e
    finally:
        socket.setdefaulttimeout(old)


def _load_cifar10(s: Spec, roots: list[Path], download: bool) -> Dataset:
    import torchvision

    for root in roots:
        if (root / "cifar-10-batches-py").is_dir() or (root / "cifar-10-python.tar.gz").is_file():
            break
    else:
        root = roots[0]
        if not download:
            raise DataError(f"cifar10: not found in {', '.join(map(str, roots))}. To fix: {s.fix}.")
    try:
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(30)
        try:  # torchvision checks the MD5 of every batch file and unpickles them (its format, not ours)
            parts = [torchvision.datasets.CIFAR10(str(root), train=t, download=download) for t in (True, False)]
        finally:
            socket.setdefaulttimeout(old)
    except Exception as e:
        raise DataError(f"cifar10: cannot load from {root} ({e}). To fix: {s.fix}.") from e
    (tx, ty), (vx, vy) = [
        (torch.from_numpy(p.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(p.targets, dtype=torch.int64))
        for p in parts
    ]
    return Dataset(
        "cifar10", tx, ty, vx, vy, 10, source=str(root), fingerprint=_fingerprint({"cifar10": "torchvision-md5"})
    )


def _fingerprint(md5: dict[str, str]) -> str:
    return hashlib.sha256(repr(sorted(md5.items())).encode()).hexdigest()[:16]


def stratified_subset(labels: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """`n` indices into `labels`, per-class counts as equal as the class sizes allow, sorted.

    Counts are water-filled: every class gets the same share until a class runs out, whose
    leftover goes to the others; the last few units go to randomly chosen classes. Within a class
    the examples are a uniform random sample. Deterministic given the generator; n = len(labels)
    gives every index."""
    if not 0 < n <= len(labels):
        raise ValueError(f"subset size {n} must be in 1..{len(labels)}")
    classes, sizes = torch.unique(labels, return_counts=True)
    counts = torch.zeros_like(sizes)
    remaining = n
    while remaining > 0:
        open_ = torch.nonzero(counts < sizes).flatten()
        share = remaining // len(open_)
        if share == 0:  # fewer units than open classes: one each to a random few
            counts[open_[torch.randperm(len(open_), generator=generator)[:remaining]]] += 1
            break
        add = torch.minimum(sizes[open_] - counts[open_], torch.tensor(share))
        counts[open_] += add
        remaining -= int(add.sum())
    picked = []
    for c, m in zip(classes, counts.tolist()):
        pool = torch.nonzero(labels == c).flatten()
        picked.append(pool[torch.randperm(len(pool), generator=generator)[:m]])
    return torch.sort(torch.cat(picked)).values


def flat_inputs(images: torch.Tensor, pool: int = 1) -> torch.Tensor:
    """(n, C, H, W) uint8 images -> (n, d) float32 in [0, 1], average-pooled by `pool` first (28x28
    by 2: 14x14, d = 196; the MLP claims pool so that random-input conditions have n >= 8d)."""
    if images.shape[-1] % pool or images.shape[-2] % pool:
        raise ValueError(f"pool={pool} does not divide the {images.shape[-2]}x{images.shape[-1]} images")
    x = images.float() / 255
    return (F.avg_pool2d(x, pool) if pool > 1 else x).flatten(1)


_INPUT_STATS: dict = {}


def input_stats(ds: "Dataset", pool: int = 1) -> tuple[float, float]:
    """(mean, std) of every input value of the training split after pooling: the Gaussian of nested
    randX noise, the same for every subset size."""
    key = (ds.name, ds.fingerprint, pool)
    if key not in _INPUT_STATS:
        total, squares, count = 0.0, 0.0, 0
        for s in range(0, len(ds.train_x), 5000):
            x = flat_inputs(ds.train_x[s : s + 5000], pool).double()
            total, squares, count = total + float(x.sum()), squares + float((x * x).sum()), count + x.numel()
        mean = total / count
        _INPUT_STATS[key] = (mean, max(squares / count - mean * mean, 0.0) ** 0.5)
    return _INPUT_STATS[key]


def nested_order(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Every index of `labels` once, ordered so that each prefix is a class-stratified sample: class
    counts in a prefix differ by at most one until a class runs out. Within a class the order is
    uniformly random; classes interleave with a random per-class phase."""
    perm = torch.randperm(len(labels), generator=generator)
    _, cls = torch.unique(labels[perm], return_inverse=True)
    rank = torch.zeros(len(perm))
    for c in range(int(cls.max()) + 1):
        at = cls == c
        rank[at] = torch.arange(int(at.sum()), dtype=rank.dtype)
    phase = torch.rand(int(cls.max()) + 1, generator=generator)
    return perm[torch.sort(rank + phase[cls], stable=True).indices]


NESTED_BLOCK = 256  # positions per block of nested noise draws


def nested_noise(
    x: torch.Tensor, y: torch.Tensor, kind: str, fraction: float, num_classes: int, seed, stats: tuple[float, float]
) -> "Noisy":
    """The paper's noise for the first n examples of a nested order, nested over n: position j is
    noise when u_j < fraction (so about fraction * n of them, and the noise examples of a smaller
    set are those of a larger one), and gets the same random label or Gaussian input at every n.
    u, labels and inputs are drawn per block of NESTED_BLOCK positions, block b from its own
    generator (seed, b), so a position's draws never depend on n. randX uses `stats`, the mean and
    std of the whole training split (input_stats), not of the subset."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose one of {NOISE_KINDS}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"noise fraction {fraction} must be in [0, 1]")
    n, d = x.shape
    blocks = [torch_generator(seed, "nested noise", b) for b in range(-(-n // NESTED_BLOCK))]
    u = torch.cat([torch.rand(NESTED_BLOCK, generator=g) for g in blocks])[:n]
    labels = torch.cat([torch.randint(num_classes, (NESTED_BLOCK,), generator=g) for g in blocks])[:n]
    is_noise = u < fraction if kind != "none" else torch.zeros(n, dtype=torch.bool)
    x, y, flip = x.clone(), y.clone(), 0.0
    if kind == "randY":
        flip = float((labels[is_noise] != y[is_noise]).sum()) / n
        y[is_noise] = labels[is_noise]
    elif kind == "randX":
        gauss = torch.cat([torch.randn((NESTED_BLOCK, d), generator=g, dtype=x.dtype) for g in blocks])[:n]
        x[is_noise] = stats[0] + stats[1] * gauss[is_noise]
    return Noisy(x, y, is_noise, flip)


NOISE_KINDS = ("none", "randX", "randY", "sham")


@dataclass(frozen=True)
class Noisy:
    x: torch.Tensor  # (n, d) float32, noise rows replaced for randX
    y: torch.Tensor  # (n,) int64, noise labels replaced for randY
    is_noise: torch.Tensor  # (n,) bool, the examples chosen to be noise
    label_flip_rate: float  # share of all n labels that actually changed (randY), else 0


def make_noise(
    x: torch.Tensor,
    y: torch.Tensor,
    kind: str,
    fraction: float,
    num_classes: int,
    generator: torch.Generator,
    stats: tuple[float, float] | None = None,
) -> Noisy:
    """Replace a share `fraction` of the examples by noise, as in the paper.

    randY: the chosen labels become uniform random classes (about 1/K of them keep their old
    label by chance; `label_flip_rate` reports the share that changed). randX: the chosen inputs
    become i.i.d. Gaussian noise with the mean and standard deviation of `stats` (default: of `x`
    itself); their labels are kept and so carry no information. sham: the same examples are
    chosen but left unchanged (a negative control for claims about noise examples). Exactly
    round(fraction * n) examples are chosen, uniformly at random."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; choose one of {NOISE_KINDS}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"noise fraction {fraction} must be in [0, 1]")
    n = len(y)
    k = round(fraction * n) if kind != "none" else 0
    chosen = torch.randperm(n, generator=generator)[:k]
    is_noise = torch.zeros(n, dtype=torch.bool)
    is_noise[chosen] = True
    x, y = x.clone(), y.clone()
    flip = 0.0
    if kind == "randY":
        new = torch.randint(num_classes, (k,), generator=generator)
        flip = float((new != y[chosen]).sum()) / n
        y[chosen] = new
    elif kind == "randX":
        mean, std = stats if stats is not None else (float(x.mean()), float(x.std()))
        x[chosen] = mean + std * torch.randn((k, *x.shape[1:]), generator=generator, dtype=x.dtype)
    return Noisy(x, y, is_noise, flip)
