"""Converter test helpers (the tiny model and its bundle are shared: tests/conftest.py)."""

from pathlib import Path

import numpy as np
import pytest


def write_images(root: Path, size: int, per_class: int = 3) -> Path:
    import cv2

    rng = np.random.default_rng(1)
    for name in ("happy", "not_happy"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            cv2.imwrite(str(root / name / f"{i}.png"),
                        rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return root


@pytest.fixture
def image_writer():
    return write_images
