"""Architectures: the tutorial's exact HappyModel and the int8-friendly default."""

import numpy as np
import pytest

from happyhouse.daemon.errors import ConfigError
from happyhouse.train import models

ALLOWED = {"InputLayer", "ZeroPadding2D", "Conv2D", "DepthwiseConv2D", "BatchNormalization",
           "ReLU", "MaxPooling2D", "AveragePooling2D", "Flatten", "Dropout", "Dense",
           # the expression net's: SeparableConv2D becomes DEPTHWISE_CONV_2D + CONV_2D, Add ADD
           "SeparableConv2D", "Add"}


def test_happymodel_matches_the_tutorial():
    model = models.build("happymodel")
    assert model.count_params() == 37633
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["ZeroPadding2D", "Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D",
                     "Flatten", "Dense"]
    assert model.layers[1].kernel_size == (7, 7) and model.layers[1].filters == 32


@pytest.mark.parametrize("name", sorted(models.ARCHS))
def test_every_arch_maps_unit_images_to_one_probability(name):
    model = models.build(name)
    assert tuple(model.input_shape) == (None, 64, 64, 3)
    out = model.predict(np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32), verbose=0)
    assert out.shape == (2, 1) and np.all((out >= 0) & (out <= 1))
    assert {type(layer).__name__ for layer in model.layers} <= ALLOWED
    assert model.layers[-1].get_config()["activation"] == "sigmoid"


def test_default_is_small_enough_for_an_int8_bundle():
    # int8 weights: one byte per parameter; the bundle goal is <= 150 KB, and the
    # golden vectors, metadata and model card take about 40 KB of it
    model = models.build("default")
    assert model.count_params() < 100_000
    kinds = [type(layer).__name__ for layer in model.layers]
    # depthwise only in the last stage: int8 depthwise is memory-bound on big maps
    assert kinds.count("DepthwiseConv2D") == 1
    assert kinds[kinds.index("DepthwiseConv2D"):].count("Conv2D") == 1  # then its pointwise
    assert models.build("smilenet-plain").count_params() == 138_209


def test_unknown_arch_is_a_config_error():
    with pytest.raises(ConfigError, match="resnet"):
        models.build("resnet")


def test_wide_stays_inside_the_int8_budget():
    # ~1 byte per weight as int8 plus the graph: under the 150 KB classifier goal
    model = models.build("smilenet-wide")
    assert 100_000 < model.count_params() < 125_000
    assert [type(layer).__name__ for layer in model.layers].count("DepthwiseConv2D") == 1
