"""Harness for the claims suite of "Deep Nets Don't Learn via Memorization".

The data path runs one way, a module each:
    data (datasets as whole tensors, subsets, noise) -> inputs (a run's subset, noise and model
    input) -> core (the training-group protocol and its loop, results, checkpoints) with train (the
    batched MLP trainer; models: the batched MLP) and cnn (the batched CNN of claim C4), told apart
    by kinds -> measures (end-of-run and per-history measures; sharpness: top Hessian eigenvalue)
    -> store (finished runs on disk) -> stats (statistics) and decision (a test's outcome) -> rows
    (the typed report row) -> report (tables, figures) and robustness (verdicts over seed sets).
Around it: tiers (smoke and full settings), session (what a claim test asks for: datasets, seeds,
sweeps), plugin (the pytest plugin: options, markers, fixtures), provenance (what made a verdict),
plan (cost of a tier, dry runs), cluster (training groups as scheduler jobs), bench (speed against
the idiomatic loop: `python -m harness.bench`).
"""

import ast
import hashlib
from pathlib import Path

# Part of every result-store key: bump it whenever a change alters what a stored run contains.
HARNESS_VERSION = "2"  # 2: MLP runs with sharpness also store their inputs' top eigenvalue


MLP_CODE = ("__init__.py", "core.py", "data.py", "inputs.py", "measures.py", "models.py", "train.py", "sharpness.py")
# Not train.py, models.py or sharpness.py: an MLP edit keeps stored CNN runs.
CNN_CODE = ("__init__.py", "core.py", "data.py", "inputs.py", "measures.py", "cnn.py")


def code_fingerprint(files: tuple[str, ...] = MLP_CODE) -> str:
    """Hash of the modules that decide what a training run computes (MLP runs by default, CNN runs
    with CNN_CODE), also part of every store key, so an edit to them can never be answered from
    stale stored runs (a forgotten version bump). It hashes the code's syntax tree without
    docstrings, so editing a comment, a docstring or the layout keeps the stored runs."""
    here = Path(__file__).parent
    return hashlib.sha256("".join(_code_only((here / f).read_text()) for f in files).encode()).hexdigest()[:16]


def _code_only(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def derive_seed(*parts) -> int:
    """A 63-bit seed from any tuple of names and numbers, e.g. (base_seed, "init", seed, width).

    Every random stream of the harness comes from a generator seeded this way, so a stream
    depends only on what it is for, never on call order or a global RNG."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def torch_generator(*parts):
    import torch

    return torch.Generator().manual_seed(derive_seed(*parts))


def numpy_generator(*parts):
    """A numpy Generator for `parts` (bootstrap resampling in the claims), seeded like torch_generator."""
    import numpy as np

    return np.random.default_rng(derive_seed(*parts))
