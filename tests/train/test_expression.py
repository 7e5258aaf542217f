"""The FER2013-pretrained expression architecture (train/expression.py) on real faces."""

import cv2
import numpy as np
import pytest

from happyhouse.daemon.datasets import load_dataset
from happyhouse.daemon.errors import ConfigError, ModelError
from happyhouse.daemon.roc import roc_auc
from happyhouse.train import expression, models


@pytest.fixture(scope="module")
def faces(genki_root):
    """40 real GENKI faces per class, RGB uint8."""
    data = load_dataset(genki_root)
    rng = np.random.default_rng(7)
    pick = np.concatenate([rng.choice(np.flatnonzero(data.labels == c), 40, replace=False)
                           for c in (0, 1)])
    return data.images[pick], data.labels[pick]


def test_the_pretrained_network_already_tells_smiles_apart(faces):
    # the head starts as "happy minus the other expressions": before any training
    # on our data, FER2013's weights alone must rank real smiles above non-smiles
    images, labels = faces
    model = models.build("expression")
    scores = model.predict(images.astype(np.float32) / 255.0, verbose=0)[:, 0]
    assert roc_auc(labels, scores) > 0.85
    import keras

    keras.utils.set_random_seed(0)  # measured: unseeded, random weights ranked 0.32-0.57
    blank = expression.build(pretrained=False)
    blank_scores = blank.predict(images.astype(np.float32) / 255.0, verbose=0)[:, 0]
    assert roc_auc(labels, blank_scores) < roc_auc(labels, scores) - 0.2


def test_gray_layer_is_opencvs_luma_in_minus_one_to_one(faces):
    import keras

    images, _ = faces
    model = expression.build(pretrained=False)
    gray = keras.Model(model.input, model.get_layer("gray").output)
    got = gray.predict(images[:4].astype(np.float32) / 255.0, verbose=0)[..., 0]
    want = np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in images[:4]]) / 255.0 * 2 - 1
    assert np.abs(got - want).max() < 0.01  # OpenCV rounds gray to uint8
    assert not model.get_layer("gray").trainable


def test_every_pretrained_layer_gets_its_weights():
    model = expression.build()
    arrays = np.load(expression.WEIGHTS)
    first = model.get_layer("separable_conv2d_1").get_weights()[0]
    assert np.array_equal(first, arrays["separable_conv2d_1/depthwise_kernel"])
    bn = model.get_layer("batch_normalization_14").get_weights()[3]
    assert np.array_equal(bn, arrays["batch_normalization_14/moving_variance"])


def test_unreadable_weights_are_a_model_error_naming_the_fix(tmp_path):
    broken = tmp_path / "weights.npz"
    broken.write_bytes(b"not an npz")
    model = expression.build(pretrained=False)
    with pytest.raises(ModelError, match="import_fer_weights"):
        expression.load_pretrained(model, broken)
    partial = tmp_path / "partial.npz"
    arrays = dict(np.load(expression.WEIGHTS))
    arrays.pop("conv2d_7/bias")
    np.savez(partial, **arrays)
    with pytest.raises(ModelError, match="conv2d_7"):
        expression.load_pretrained(model, partial)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(expression.WEIGHTS.read_bytes()[:5000])
    with pytest.raises(ModelError, match="import_fer_weights"):
        expression.load_pretrained(model, truncated)
    arrays["conv2d_1/kernel"] = np.zeros((5, 5, 1, 8), np.float32)
    np.savez(partial, **arrays)
    with pytest.raises(ModelError, match="conv2d_1"):
        expression.load_pretrained(model, partial)


def test_other_input_sizes_are_refused():
    with pytest.raises(ConfigError, match="--size 64"):
        models.build("expression", (96, 96, 3))
