"""Model architectures: the tutorial's HappyModel and the Pi/int8 default.

Every model takes float32 NHWC in [0, 1] (``Preprocess.scale == "unit"``) and
ends in one sigmoid unit, P(happy). Only conv/depthwise/BN/ReLU/pooling/dense
layers are used so that full-int8 TFLite conversion maps every op to a fast
built-in kernel (see ``train/ARCHITECTURE.md`` for the measurements behind
the default).
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple

DEFAULT_ARCH = "default"


def keras():
    """Keras, imported lazily: the daemon package must never pull TensorFlow in."""
    import keras as _keras

    return _keras


def happymodel(input_shape: Tuple[int, int, int] = (64, 64, 3)):
    """Exactly the deeplearning.ai tutorial's HappyModel (37,633 params at 64x64x3)."""
    k = keras()
    L = k.layers
    return k.Sequential([
        L.Input(input_shape),
        L.ZeroPadding2D(padding=(3, 3)),
        L.Conv2D(32, (7, 7), strides=(1, 1), name="conv0"),
        L.BatchNormalization(axis=3, name="bn0"),
        L.ReLU(),
        L.MaxPooling2D((2, 2), name="max_pool"),
        L.Flatten(),
        L.Dense(1, activation="sigmoid", name="fc"),
    ], name="happymodel")


def _separable_bn_relu(L, x, filters: int, strides: int, name: str):
    # MobileNet-style: 3x3 depthwise then 1x1 pointwise, each with BN+ReLU.
    # Used only on the small last map, where a plain 3x3 conv would hold most
    # of the model's parameters (and bytes) for a few thousand MACs.
    x = L.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = L.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = L.ReLU(name=f"{name}_dw_relu")(x)
    return _conv_bn_relu(L, x, filters, 1, 1, f"{name}_pw")


def _conv_bn_relu(L, x, filters: int, kernel: int, strides: int, name: str):
    # bias is redundant before BatchNorm; BN folds into the conv at conversion
    x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                 name=f"{name}_conv")(x)
    x = L.BatchNormalization(name=f"{name}_bn")(x)
    return L.ReLU(name=f"{name}_relu")(x)


#: (filters, stride[, "separable"]) per 3x3 conv: 64 -> 32 -> 16 (x2) -> 8 -> 4.
#: The last stage is depthwise-separable: as a plain 3x3 conv it held 74k of
#: the 138k parameters for 1.2M of the 12.6M MACs; separable, the model has
#: 73.5k parameters (~90 KB as int8) and the bundle fits the 150 KB goal.
SMILENET_LAYERS = ((32, 2), (48, 2), (48, 1), (64, 2), (128, 2, "separable"))
#: the first default (138k parameters, all plain 3x3 convs), kept for comparison
SMILENET_PLAIN_LAYERS = ((32, 2), (48, 2), (48, 1), (64, 2), (128, 2))
#: a wider default for a GPU-trained model: the same shape with more filters in every
#: stage after the stem (~110k parameters, ~15.5M MACs against 73.5k and 11.6M); its
#: int8 file stays under the 150 KB goal with mirror averaging
SMILENET_WIDE_LAYERS = ((32, 2), (56, 2), (56, 1), (96, 2), (144, 2, "separable"))


def smilenet(input_shape: Tuple[int, int, int] = (64, 64, 3), layers=SMILENET_LAYERS,
             dropout: float = 0.3):
    """The default: a stride-2 stem, plain 3x3 conv stages, average-pool head.

    Plain (not depthwise) 3x3 convs where the maps are large, because int8
    only beats float32 when the graph is dominated by dense convolution MACs:
    depthwise layers are memory-bound and the fixed per-op cost of a quantized
    graph then wins. Only the last 8x8 -> 4x4 stage is separable, where it
    costs little time and saves most of the bytes.
    AveragePooling2D over the whole map (not GlobalAveragePooling2D, which
    becomes MEAN) + Flatten + Dense keeps every op on an optimized kernel.
    """
    k = keras()
    L = k.layers
    inp = L.Input(input_shape, name="image")
    x = inp
    for i, (filters, stride, *kind) in enumerate(layers):
        if kind == ["separable"]:
            x = _separable_bn_relu(L, x, filters, stride, f"c{i}")
        else:
            x = _conv_bn_relu(L, x, filters, 3, stride, f"c{i}")
    x = L.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])), name="pool")(x)
    x = L.Flatten(name="flatten")(x)
    if dropout:
        x = L.Dropout(dropout, name="dropout")(x)
    out = L.Dense(1, activation="sigmoid", name="happy")(x)
    return k.Model(inp, out, name="smilenet")


ARCHS: Dict[str, Callable] = {
    "happymodel": happymodel,
    "default": smilenet,
    "smilenet": smilenet,
    "smilenet-plain": lambda input_shape=(64, 64, 3): smilenet(input_shape, SMILENET_PLAIN_LAYERS),
    "smilenet-wide": lambda input_shape=(64, 64, 3): smilenet(input_shape, SMILENET_WIDE_LAYERS),
    # the FER2013-pretrained mini-Xception with a P(happy) head (train/expression.py)
    "expression": lambda input_shape=(64, 64, 3): _expression(input_shape),
}


def _expression(input_shape):
    from . import expression

    return expression.build(input_shape)


def build(name: str, input_shape: Tuple[int, int, int] = (64, 64, 3)):
    """Build an architecture by name (``happymodel`` or ``default``/``smilenet``)."""
    from happyhouse.daemon.errors import ConfigError

    if name not in ARCHS:
        raise ConfigError(f"unknown architecture {name!r}; choose one of {sorted(ARCHS)}")
    return ARCHS[name](input_shape)
