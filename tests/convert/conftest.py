"""A tiny real model and a small real data set for the converter tests.

The model is trained for one epoch on ~100 GENKI-4K faces: enough for real
weights and activation ranges, fast enough for CI on two cores.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

PER_CLASS = 60  # 120 images: calibration pool and hold-out


def _link_subset(src: Path, dst: Path, per_class: int) -> Path:
    for name in ("happy", "not_happy"):
        (dst / name).mkdir(parents=True)
        files = sorted((src / name).glob("*.jpg"))[:per_class]
        for f in files:
            os.symlink(f, dst / name / f.name)
    return dst


@pytest.fixture(scope="session")
def small_faces(genki_root, tmp_path_factory) -> Path:
    """120 real 64x64 faces (60 per class) as a class-folder data set."""
    return _link_subset(genki_root, tmp_path_factory.mktemp("faces") / "small", PER_CLASS)


@pytest.fixture(scope="session")
def tiny_model(small_faces, tmp_path_factory) -> Path:
    """A small CNN trained for one epoch; returns the .keras path (metadata beside it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras import layers

    from happyhouse.daemon.datasets import load_dataset
    from happyhouse.daemon.preprocess import to_model_input

    data = load_dataset(small_faces)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64, 64, 3)),
        layers.Conv2D(8, 3, strides=2, activation="relu"),
        layers.Conv2D(8, 3, strides=2, activation="relu"),
        layers.Flatten(),  # as the tutorial model: exercises the Flatten/RESHAPE path
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    model.fit(to_model_input(data.images), data.labels, epochs=1, batch_size=16, verbose=0)
    folder = tmp_path_factory.mktemp("tiny")
    path = folder / "model.keras"
    model.save(path)
    (folder / "model.json").write_text(json.dumps({
        "preprocess": {"crop": "face", "margin": 0.0, "size": 64, "color": "RGB", "scale": "unit"},
        "threshold": 0.5,
        "labels": ["not_happy", "happy"],
        "metrics": {"val_accuracy": 0.5},
        "data": {"sources": [str(small_faces)], "n": int(len(data))},
    }))
    return path


@pytest.fixture(scope="session")
def converted(tiny_model, small_faces, tmp_path_factory):
    """The tiny model converted through the CLI once: (bundle path, CLI JSON result)."""
    from happyhouse.convert.cli import main

    out = tmp_path_factory.mktemp("bundles") / "tiny"
    import contextlib
    import io

    buf = io.StringIO()
    # a 24-image hold-out moves 4 pp per flipped image: parity is asserted separately
    with contextlib.redirect_stdout(buf):
        rc = main([str(tiny_model), "--calibration", str(small_faces), "--out", str(out),
                   "--max-drop", "50", "--json"])
    assert rc == 0
    return out, json.loads(buf.getvalue().strip().splitlines()[-1])


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
