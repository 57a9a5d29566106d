"""Fast properties of harness/data.py: IDX parsing, load() errors and sources, subsets, noise.

    pytest tests/test_data.py            # about 10 s on 2 CPU cores

The real-data tests read Fashion-MNIST from Debian (apt-get install dataset-fashion-mnist) and
fail, not skip, without it. load() is lru_cache'd on its arguments only, not on the module paths
monkeypatched here, so every test that calls it clears the cache before and after.
Known bugs, when there are any, stay visible as xfail(strict=True, raises=...) at the end of their section.
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness import data, torch_generator

FAST = settings(max_examples=40, deadline=None)
DEBIAN = Path("/usr/share/datasets/fashion-mnist")  # the real path, not the monkeypatched one
IMAGES, LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"


def idx_bytes(a: np.ndarray) -> bytes:
    """`a` (uint8, 1 or 3 dims) in the IDX format, written independently of parse_idx."""
    magic = {1: 2049, 3: 2051}[a.ndim]
    return struct.pack(f">{1 + a.ndim}i", magic, *a.shape) + a.astype(np.uint8).tobytes()


# --- parse_idx -------------------------------------------------------------------------------

idx_arrays = st.one_of(
    arrays(np.uint8, st.tuples(*[st.integers(0, 6)] * 3)),  # images: (n, h, w), empty ones too
    arrays(np.uint8, st.tuples(st.integers(0, 40))),  # labels: (n,)
)


@FAST
@given(idx_arrays)
def test_parse_idx_round_trips_arrays_written_in_idx_format(a):
    """parse_idx(IDX bytes of a) == a, same shape and dtype uint8, for any small shape."""
    out = data.parse_idx(idx_bytes(a))
    assert out.dtype == np.uint8 and out.shape == a.shape
    np.testing.assert_array_equal(out, a)


@FAST
@given(idx_arrays, st.integers(0, 2**32 - 1).filter(lambda m: m not in (2049, 2051)))
def test_parse_idx_rejects_a_wrong_magic(a, magic):
    """Any magic number other than 2049/2051 is a ValueError, whatever follows it."""
    raw = struct.pack(">I", magic) + idx_bytes(a)[4:]
    with pytest.raises(ValueError, match="magic"):
        data.parse_idx(raw)


@FAST
@given(idx_arrays.filter(lambda a: a.size > 0), st.data())
def test_parse_idx_rejects_a_truncated_or_overlong_body(a, draw):
    """A body shorter (or longer) than the header's sizes promise is a ValueError."""
    raw = idx_bytes(a)
    cut = draw.draw(st.integers(1, a.size), label="bytes cut")
    with pytest.raises(ValueError):
        data.parse_idx(raw[:-cut])
    with pytest.raises(ValueError):
        data.parse_idx(raw + b"\0" * cut)


# --- load(): errors ----------------------------------------------------------------------------


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A data root under tmp_path, with the default cache and Debian folders moved there too (empty)."""
    monkeypatch.setattr(data, "DEFAULT_DATA_ROOT", tmp_path / "default-cache")
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    root = tmp_path / "root"
    root.mkdir()
    data.load.cache_clear()
    yield root
    data.load.cache_clear()


def load_error(name: str, root: Path) -> str:
    with pytest.raises(data.DataError) as e:
        data.load(name, str(root), download=False)
    return str(e.value)


def test_load_rejects_an_unknown_dataset_naming_the_valid_choices(isolated):
    """load('imagenet') is a DataError that lists every valid dataset name."""
    msg = load_error("imagenet", isolated)
    assert "imagenet" in msg and all(name in msg for name in data.SPECS)


@pytest.mark.parametrize("name", list(data.SPECS))
def test_load_without_files_says_what_to_do(isolated, name):
    """Missing files are a DataError naming where it looked and the fix: --data-root (and apt-get for Fashion-MNIST)."""
    msg = load_error(name, isolated)
    assert str(isolated) in msg and "--data-root" in msg, msg
    if name == "fashion-mnist":
        assert "apt-get install dataset-fashion-mnist" in msg, msg


@pytest.mark.parametrize(
    "present",
    [c for r in (1, 2, 3) for c in itertools.combinations(data.IDX_FILES, r)],
    ids=lambda c: "+".join(f.split("-")[0] + "-" + f.split("-")[1] for f in c),
)
def test_load_from_a_partial_folder_names_exactly_the_missing_files(isolated, present):
    """A root with some of the four IDX files is a DataError naming the root and exactly the absent files."""
    for f in present:
        (isolated / (f + ".gz")).write_bytes(b"")
    msg = load_error("fashion-mnist", isolated)
    named = re.search(r"missing ([^)]*)\)", msg)
    assert named and str(isolated) in msg, msg
    assert set(named.group(1).split(", ")) == set(data.IDX_FILES) - set(present), msg


def write_all(root: Path, content: bytes, suffix: str) -> Path:
    for f in data.IDX_FILES:
        (root / (f + suffix)).write_bytes(content)
    return root / (IMAGES + suffix)  # the first file load() reads


@pytest.mark.parametrize(
    "suffix,content",
    [
        ("", idx_bytes(np.zeros((2, 3, 3), np.uint8))),  # a valid IDX file, but not Fashion-MNIST
        (".gz", gzip.compress(b"not an IDX file", mtime=0)),
        (".gz", b"not gzip at all"),
        (".gz", b""),
    ],
    ids=["wrong-idx", "wrong-gz-content", "not-gzip", "empty-gz"],
)
def test_load_of_a_file_with_wrong_bytes_says_it_is_corrupt_and_to_delete_it(isolated, suffix, content):
    """Right name, wrong bytes: a DataError naming the file, calling it corrupt (or unreadable), saying to delete it."""
    path = write_all(isolated, content, suffix)
    msg = load_error("fashion-mnist", isolated)
    assert str(path) in msg and "delete it" in msg, msg
    assert re.search("corrupt|cannot read", msg), msg


def test_load_of_a_truncated_gz_says_to_delete_it(isolated):
    """A .gz cut short (an interrupted download) is a DataError naming the file and saying to delete it."""
    whole = gzip.compress(idx_bytes(np.arange(600, dtype=np.uint8).reshape(6, 10, 10)), mtime=0)
    path = write_all(isolated, whole[: len(whole) // 2], ".gz")
    msg = load_error("fashion-mnist", isolated)
    assert str(path) in msg and "delete it" in msg, msg
    # The message says "cannot read ... (Compressed file ended before the end-of-stream marker ...)",
    # not the word "corrupt"; accepted as saying so.
    assert re.search("corrupt|cannot read", msg), msg


def test_load_of_a_gz_with_a_damaged_deflate_stream_is_a_data_error(isolated):
    """A .gz whose compressed stream is damaged (valid header, invalid block type) is a DataError too."""
    damaged = gzip.compress(b"", mtime=0)[:10] + b"\xff" * 16  # deflate block type 11 is reserved
    path = write_all(isolated, damaged, ".gz")
    msg = load_error("fashion-mnist", isolated)
    assert str(path) in msg and "delete it" in msg, msg


# --- load(): the real Debian Fashion-MNIST ------------------------------------------------------


@pytest.fixture(scope="module")
def official():
    """(images (60000, 28, 28), labels (60000,)) of the official training file, parsed here."""
    missing = [f for f in data.IDX_FILES if not (DEBIAN / (f + ".gz")).is_file()]
    if missing:
        pytest.fail(
            f"Fashion-MNIST not found in {DEBIAN} (missing {', '.join(missing)}): "
            "run `apt-get install dataset-fashion-mnist`",
            pytrace=False,
        )
    images = gzip.decompress((DEBIAN / (IMAGES + ".gz")).read_bytes())
    labels = gzip.decompress((DEBIAN / (LABELS + ".gz")).read_bytes())
    assert struct.unpack(">4i", images[:16]) == (2051, 60000, 28, 28)
    assert struct.unpack(">2i", labels[:8]) == (2049, 60000)
    return (
        np.frombuffer(images, np.uint8, offset=16).reshape(60000, 28, 28),
        np.frombuffer(labels, np.uint8, offset=8).astype(np.int64),
    )


@pytest.fixture(scope="module")
def decompressed(official, tmp_path_factory):
    """A folder with gunzipped copies of the four Debian files."""
    folder = tmp_path_factory.mktemp("fashion-mnist-decompressed")
    for f in data.IDX_FILES:
        with gzip.open(DEBIAN / (f + ".gz")) as src, open(folder / f, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return folder


def check_split(ds: data.Dataset, official) -> None:
    images, labels = official
    assert ds.name == "fashion-mnist" and ds.num_classes == 10 and ds.input_dim == 784
    assert ds.train_x.shape == (50_000, 1, 28, 28) and ds.val_x.shape == (10_000, 1, 28, 28)
    assert ds.train_x.dtype == ds.val_x.dtype == torch.uint8
    assert ds.train_y.shape == (50_000,) and ds.val_y.shape == (10_000,)
    assert ds.train_y.dtype == ds.val_y.dtype == torch.int64
    for y in (ds.train_y, ds.val_y):
        assert set(torch.unique(y).tolist()) == set(range(10))
    np.testing.assert_array_equal(ds.train_x[:, 0].numpy(), images[:50_000])
    np.testing.assert_array_equal(ds.val_x[:, 0].numpy(), images[50_000:])
    np.testing.assert_array_equal(ds.train_y.numpy(), labels[:50_000])
    np.testing.assert_array_equal(ds.val_y.numpy(), labels[50_000:])


@pytest.fixture
def fresh_load(tmp_path, monkeypatch):
    """An empty default cache, so only the Debian folder or the given root can supply the files."""
    monkeypatch.setattr(data, "DEFAULT_DATA_ROOT", tmp_path / "default-cache")
    data.load.cache_clear()
    yield
    data.load.cache_clear()


def test_debian_fashion_mnist_splits_the_official_training_file_50000_10000(official, fresh_load):
    """load('fashion-mnist') reads Debian's files: first 50,000 training examples, last 10,000 validation."""
    ds = data.load("fashion-mnist", download=False)
    assert ds.source == str(DEBIAN)
    check_split(ds, official)


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
@pytest.mark.parametrize("compressed", [True, False], ids=["gz", "decompressed"])
def test_data_root_accepts_gz_or_decompressed_files_flat_or_in_torchvision_layout(
    official, decompressed, fresh_load, tmp_path, monkeypatch, layout, compressed
):
    """A --data-root with the files (.gz or not) directly or in <root>/FashionMNIST/raw/ gives the same dataset."""
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    root = tmp_path / "root"
    folder = root / "FashionMNIST" / "raw" if layout == "torchvision" else root
    folder.mkdir(parents=True)
    for f in data.IDX_FILES:
        src = DEBIAN / (f + ".gz") if compressed else decompressed / f
        os.symlink(src, folder / src.name)
    ds = data.load("fashion-mnist", str(root), download=False)
    assert ds.source == str(folder)
    assert ds.fingerprint == data._fingerprint(data.SPECS["fashion-mnist"].md5)
    check_split(ds, official)


# --- stratified_subset --------------------------------------------------------------------------


@st.composite
def labelled_pools(draw):
    """(labels, n): K classes (any label values) of 1..30 examples each, shuffled; n fits every class."""
    classes = draw(st.lists(st.integers(0, 20), min_size=1, max_size=6, unique=True))
    sizes = draw(st.lists(st.integers(1, 30), min_size=len(classes), max_size=len(classes)))
    labels = np.repeat(classes, sizes)
    np.random.default_rng(draw(st.integers(0, 2**32 - 1))).shuffle(labels)
    n = draw(st.integers(1, len(classes) * min(sizes)))
    return torch.from_numpy(labels).long(), n


@FAST
@given(labelled_pools(), st.integers(0, 2**63 - 1))
def test_stratified_subset_is_balanced_and_deterministic(pool, seed):
    """n sorted unique indices, per-class counts within 1 of each other, the same for the same seed."""
    labels, n = pool
    idx = data.stratified_subset(labels, n, torch.Generator().manual_seed(seed))
    assert idx.dtype == torch.int64 and len(idx) == n
    assert torch.all(idx[1:] > idx[:-1]) and 0 <= int(idx[0]) and int(idx[-1]) < len(labels)
    counts = [int((labels[idx] == c).sum()) for c in torch.unique(labels)]
    assert max(counts) - min(counts) <= 1, counts
    assert torch.equal(idx, data.stratified_subset(labels, n, torch.Generator().manual_seed(seed)))


@FAST
@given(st.integers(0, 10**6), st.integers(1, 10**6))
def test_stratified_subset_differs_between_seeds(seed, offset):
    """Different seeds pick different subsets when n is well below the pool (50 of 1,000)."""
    labels = torch.arange(1000) % 10
    a = data.stratified_subset(labels, 50, torch_generator("subset", seed))
    b = data.stratified_subset(labels, 50, torch_generator("subset", seed + offset))
    assert not torch.equal(a, b)


@pytest.mark.parametrize("n", [0, -1, 101, 1000])
def test_stratified_subset_rejects_sizes_outside_1_to_len(n):
    """n = 0, negative, or above len(labels) is a ValueError."""
    with pytest.raises(ValueError):
        data.stratified_subset(torch.arange(100) % 10, n, torch.Generator().manual_seed(0))


def test_stratified_subset_accepts_every_size_up_to_len_with_unequal_classes():
    """n = len(labels) returns every index even when the classes are not equally large."""
    labels = torch.tensor([0] * 3 + [1] * 7 + [2] * 5)
    idx = data.stratified_subset(labels, len(labels), torch.Generator().manual_seed(0))
    assert torch.equal(idx, torch.arange(len(labels)))


def test_full_tier_subsets_of_fashion_mnist_can_be_drawn(official, fresh_load):
    """stratified_subset of all 50,000 training / 10,000 validation labels returns every index."""
    ds = data.load("fashion-mnist", download=False)
    for labels in (ds.val_y, ds.train_y):
        idx = data.stratified_subset(labels, len(labels), torch_generator("full-tier"))
        assert torch.equal(idx, torch.arange(len(labels)))


# --- make_noise ---------------------------------------------------------------------------------


@st.composite
def noise_cases(draw):
    """(x (n, d) float32, y (n,), kind, fraction, K, seed, stats) for small n."""
    n, d, k = draw(st.integers(1, 200)), draw(st.integers(1, 6)), draw(st.integers(2, 10))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**32 - 1)))
    x = torch.rand((n, d), generator=g)  # (n, d) in [0, 1), like the harness' pixels
    y = torch.randint(k, (n,), generator=g)
    stats = draw(st.sampled_from([None, (0.5, 0.25)])) if n * d >= 2 else (0.5, 0.25)  # x.std() needs 2 values
    kind, fraction = draw(st.sampled_from(data.NOISE_KINDS)), draw(st.floats(0, 1))
    seed = draw(st.integers(0, 2**63 - 1))
    return x, y, kind, fraction, k, seed, stats


@FAST
@given(noise_cases())
def test_make_noise_changes_exactly_the_chosen_rows_in_the_way_of_its_kind(case):
    """round(fraction*n) rows flagged (none for 'none'); others untouched; randY only labels, randX only inputs,
    sham nothing."""
    x, y, kind, fraction, k, seed, stats = case
    x0, y0 = x.clone(), y.clone()
    out = data.make_noise(x, y, kind, fraction, k, torch.Generator().manual_seed(seed), stats)
    assert torch.equal(x, x0) and torch.equal(y, y0)  # the inputs are not modified in place
    assert out.x.shape == x.shape and out.x.dtype == x.dtype and out.y.shape == y.shape and out.y.dtype == y.dtype
    noise = out.is_noise
    assert noise.dtype == torch.bool and int(noise.sum()) == (0 if kind == "none" else round(fraction * len(y)))
    assert torch.equal(out.x[~noise], x[~noise]) and torch.equal(out.y[~noise], y[~noise])
    changed = out.y != y
    if kind == "randY":
        assert torch.equal(out.x, x)
        assert 0 <= int(out.y.min()) and int(out.y.max()) < k
        assert out.label_flip_rate == int(changed.sum()) / len(y)
    else:
        assert torch.equal(out.y, y) and out.label_flip_rate == 0.0
    if kind == "randX":
        assert torch.isfinite(out.x).all() and not (out.x[noise] == x[noise]).all(dim=1).any()
    if kind in ("none", "sham"):  # sham flags examples but leaves them as they are
        assert torch.equal(out.x, x)


@FAST
@given(noise_cases())
def test_make_noise_is_deterministic_given_the_generator_seed(case):
    """The same generator seed gives identical x, y, noise flags and flip rate."""
    x, y, kind, fraction, k, seed, stats = case
    a, b = (data.make_noise(x, y, kind, fraction, k, torch_generator("noise", seed), stats) for _ in range(2))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.is_noise, b.is_noise)
    assert a.label_flip_rate == b.label_flip_rate


@pytest.mark.parametrize("k", [2, 10])
def test_make_noise_randY_flips_about_k_minus_1_over_k_of_the_chosen_labels(k):
    """With n = 20,000 and fraction 0.6, label_flip_rate is within 5 SD of (K-1)/K * 0.6."""
    n, fraction = 20_000, 0.6
    g = torch_generator("test", "flip", k)
    y = torch.randint(k, (n,), generator=g)
    out = data.make_noise(torch.zeros(n, 1), y, "randY", fraction, k, g)
    m = round(fraction * n)
    sd = np.sqrt(m * (1 / k) * (1 - 1 / k)) / n  # flips ~ Binomial(m, (K-1)/K), as a share of n
    assert abs(out.label_flip_rate - (k - 1) / k * fraction) < 5 * sd, (out.label_flip_rate, sd)


@pytest.mark.parametrize("stats", [(0.3, 0.7), None], ids=["given", "of-x"])
def test_make_noise_randX_rows_have_the_requested_mean_and_std(stats):
    """Noise rows' mean and std match `stats` (default: x's own) within 5 SD; non-noise rows and labels stay."""
    n, d, fraction = 20_000, 10, 0.5
    g = torch_generator("test", "randX")
    x = torch.rand((n, d), generator=g) ** 2  # mean 1/3, std ~0.30, clearly not Gaussian
    y = torch.randint(10, (n,), generator=g)
    mean, std = stats if stats else (float(x.mean()), float(x.std()))
    out = data.make_noise(x, y, "randX", fraction, 10, g, stats)
    noise = out.x[out.is_noise]  # (10000, 10)
    m = noise.numel()
    assert abs(float(noise.mean()) - mean) < 5 * std / np.sqrt(m)
    assert abs(float(noise.std()) - std) < 5 * std / np.sqrt(2 * m)
    assert torch.equal(out.y, y) and torch.equal(out.x[~out.is_noise], x[~out.is_noise])


@pytest.mark.parametrize(
    "kind,fraction",
    [("randZ", 0.5), ("", 0.5), ("randY", -0.01), ("randY", 1.01), ("randX", float("nan")), ("none", 2.0)],
)
def test_make_noise_rejects_unknown_kinds_and_fractions_outside_0_1(kind, fraction):
    """An unknown noise kind or a fraction outside [0, 1] (or NaN) is a ValueError."""
    with pytest.raises(ValueError):
        data.make_noise(
            torch.zeros(10, 2), torch.zeros(10, dtype=torch.long), kind, fraction, 10, torch.Generator().manual_seed(0)
        )


def test_nested_order_prefixes_are_stratified_and_cover_every_index():
    """Every prefix of a nested order has class counts within one of each other (classes of equal
    size), and the order is a permutation; another generator gives another order."""
    labels = torch.arange(10).repeat_interleave(30)[torch.randperm(300, generator=torch.Generator().manual_seed(0))]
    order = data.nested_order(labels, torch.Generator().manual_seed(1))
    assert sorted(order.tolist()) == list(range(300))
    for n in (7, 10, 55, 123, 300):
        counts = torch.bincount(labels[order[:n]], minlength=10)
        assert counts.max() - counts.min() <= 1
    assert not torch.equal(order, data.nested_order(labels, torch.Generator().manual_seed(2)))


@pytest.mark.parametrize("kind", ["randX", "randY", "sham"])
def test_nested_noise_of_a_smaller_set_is_the_start_of_a_larger_one(kind):
    """Noise examples and their noise values are nested over n: the first n rows of the noisy set of
    size N equal the noisy set of size n, across block boundaries."""
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(700, 5, generator=g), torch.randint(10, (700,), generator=g)
    big = data.nested_noise(x, y, kind, 0.4, 10, 7, (0.5, 0.2))
    for n in (1, 255, 256, 300, 699):
        small = data.nested_noise(x[:n], y[:n], kind, 0.4, 10, 7, (0.5, 0.2))
        assert torch.equal(small.x, big.x[:n]) and torch.equal(small.y, big.y[:n])
        assert torch.equal(small.is_noise, big.is_noise[:n])
    assert 0.3 < big.is_noise.float().mean() < 0.5
    changed_x, changed_y = (big.x != x).any(1), big.y != y
    assert not (changed_x | changed_y)[~big.is_noise].any()  # only noise examples change
    if kind == "sham":
        assert not (changed_x | changed_y).any()
    everything = data.nested_noise(x, y, kind, 1.0, 10, 7, (0.5, 0.2)).is_noise
    assert torch.equal(everything, torch.ones(700, dtype=torch.bool))


def test_pooled_inputs_average_blocks_and_refuse_a_pool_that_does_not_divide():
    images = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
    pooled = data.flat_inputs(images, 2)
    assert torch.allclose(pooled * 255, torch.tensor([[2.5, 4.5, 10.5, 12.5]]))
    assert torch.equal(data.flat_inputs(images), images.flatten(1).float() / 255)
    with pytest.raises(ValueError, match="does not divide"):
        data.flat_inputs(images, 3)
