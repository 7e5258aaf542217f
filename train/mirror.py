"""Mirror averaging: score a face and its left-right mirror image, average the two.

A smile is left-right symmetric in meaning but not in pixels (a lopsided
smile, light from one side, a head turned a little), so a small model's two
readings of the same face disagree near the threshold. Averaging them is the
usual test-time flip, built into the model graph so that every consumer (the
converter and its int8 parity check, ``happyhouse-eval``, the door) gets it
with nothing to configure: the TFLite graph holds the mirror (REVERSE_V2 and
CONCATENATION, int8-capable), one batch-of-2 pass and the average. Twice the
classifier's MACs: a few tenths of a millisecond per face, against a camera
frame every 30-100 ms.

This module imports Keras at import time: it is desktop-only (train, convert).
"""

from __future__ import annotations

import keras

WRAPPED_SUFFIX = "_mirror_avg"


@keras.saving.register_keras_serializable(package="happyhouse")
class MirrorPair(keras.layers.Layer):
    """A batch of N images -> 2N: the images, then their left-right mirror images."""

    def call(self, images):
        return keras.ops.concatenate([images, keras.ops.flip(images, axis=2)], axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="happyhouse")
class PairMean(keras.layers.Layer):
    """2N scores (``MirrorPair``'s order) -> N: each image's score averaged with its mirror's."""

    def call(self, scores):
        n = keras.ops.shape(scores)[0] // 2
        return (scores[:n] + scores[n:]) * 0.5

    def compute_output_shape(self, input_shape):
        return input_shape


def is_mirror_averaged(model) -> bool:
    return any(isinstance(layer, MirrorPair) for layer in model.layers)


def mirror_average(model):
    """``model`` wrapped to output mean(model(x), model(mirror(x))); weights are shared.

    The mirror images travel as a second half of the batch through one call
    of the classifier, not as a second call: the converter then writes each
    weight tensor (and its per-channel quantization) once: the int8 file is
    3-5 KB larger than the plain model's instead of 11 KB. Wrapping an already wrapped
    model returns it unchanged, so fine-tuning a mirror-averaged general
    model keeps exactly one mirror.
    """
    if is_mirror_averaged(model):
        return model
    image = keras.layers.Input(model.input_shape[1:], name="image")
    pair = MirrorPair(name="mirror_pair")(image)
    score = PairMean(name="mirror_average")(model(pair))
    return keras.Model(image, score, name=model.name + WRAPPED_SUFFIX)


def all_layers(model):
    """Every layer, including those inside nested models (the wrapped classifier)."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)
