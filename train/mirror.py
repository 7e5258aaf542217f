"""Mirror averaging: score a face and its left-right mirror image, average the two.

A smile is left-right symmetric in meaning but not in pixels (a lopsided
smile, light from one side, a head turned a little), so a small model's two
readings of the same face disagree near the threshold. Averaging them is the
usual test-time flip, built into the model graph so that every consumer (the
converter and its int8 parity check, ``happyhouse-eval``, the door) gets it
with nothing to configure: the TFLite graph holds the mirror (REVERSE_V2,
int8-capable) and the average. Twice the classifier's MACs, which is a few
tenths of a millisecond per face against a camera frame every 30-100 ms.

This module imports Keras at import time: it is desktop-only (train, convert).
"""

from __future__ import annotations

import keras

WRAPPED_SUFFIX = "_mirror_avg"


@keras.saving.register_keras_serializable(package="happyhouse")
class MirrorImage(keras.layers.Layer):
    """Flip an NHWC batch left-right (the width axis)."""

    def call(self, images):
        return keras.ops.flip(images, axis=2)

    def compute_output_shape(self, input_shape):
        return input_shape


def is_mirror_averaged(model) -> bool:
    return any(isinstance(layer, MirrorImage) for layer in model.layers)


def mirror_average(model):
    """``model`` wrapped to output mean(model(x), model(mirror(x))); weights are shared.

    Wrapping an already wrapped model returns it unchanged, so fine-tuning a
    mirror-averaged general model keeps exactly one mirror.
    """
    if is_mirror_averaged(model):
        return model
    L = keras.layers
    image = L.Input(model.input_shape[1:], name="image")
    plain = model(image)
    mirrored = model(MirrorImage(name="mirror")(image))
    score = L.Average(name="mirror_average")([plain, mirrored])
    return keras.Model(image, score, name=model.name + WRAPPED_SUFFIX)


def all_layers(model):
    """Every layer, including those inside nested models (the wrapped classifier)."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)
