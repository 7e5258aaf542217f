"""Training data: the shared loaders plus a stratified, seeded split by file.

Loading itself lives in ``happyhouse.daemon.datasets`` (one reader for
training, conversion checks and evaluation); this module only decides which
files train and which validate.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from happyhouse.daemon.datasets import Dataset, load_many
from happyhouse.daemon.errors import DataError
from happyhouse.daemon.preprocess import Preprocess, prepare_image


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): each class split separately so both keep its ratio.

    Every index is one file, so no image can land on both sides. The same
    labels and seed always give the same split.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"validation fraction must be between 0 and 1, got {val_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in (0, 1):
        idx = np.flatnonzero(labels == cls)
        if len(idx) < 2:
            raise DataError(f"class {cls} has {len(idx)} image(s): a validation split needs "
                            f"at least 2 per class")
        idx = rng.permutation(idx)
        n_val = min(len(idx) - 1, max(1, int(round(len(idx) * val_fraction))))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number (0..k-1) for every index, each class dealt round-robin after a shuffle."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        if len(idx) < k:
            raise DataError(f"class {cls} has {len(idx)} images, fewer than {k} folds")
        fold[idx] = (np.arange(len(idx)) + offset) % k
        offset += len(idx)
    return fold


def load_training_data(paths: Sequence[str], spec: Preprocess, limit: Optional[int] = None) -> Dataset:
    """All sources combined, each image passed through the preprocessing contract."""
    data = load_many(list(paths), size=spec.size, limit=limit)
    data.images = np.stack([prepare_image(im, spec) for im in data.images])
    return data
