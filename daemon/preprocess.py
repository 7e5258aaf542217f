"""The one preprocessing contract shared by training, conversion and the door.

A model trained on one crop, colour order or scale and served with another
fails silently, so every path from pixels to model input goes through here:

* training images (already face crops, RGB) -> :func:`prepare_image`
* camera frames (OpenCV BGR) plus a face box -> :func:`prepare_frame`
* either result -> :func:`to_model_input` (float32 in [0, 1], NHWC)

Both ``prepare_*`` functions end with :func:`normalize_light` (the
contract's ``normalize`` step). Training augments the crop *before* that
step (brightness and contrast jitter must reach the normaliser, as a dim
porch does), so it prepares with :meth:`Preprocess.geometric` and applies
:func:`normalize_light` per batch.

The contract itself (:class:`Preprocess`) is stored in every model bundle's
``model.json`` so the daemon serves exactly what training used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Mapping, Optional, Tuple

import numpy as np

from .errors import DataError, ModelError

#: (x, y, width, height) in frame pixels, as OpenCV's detectors return them
Box = Tuple[int, int, int, int]

CROP_MODES = ("face", "frame")
#: ``none``: pixels as the crop gives them; ``clahe``: local contrast
#: equalisation of the luminance only (CIE Lab L channel, colour kept). Door
#: cameras see faces in shadow against a bright garden; measured on the shipped
#: model without retraining, CLAHE on the crop lifted the door frames' ROC AUC
#: from 0.80 to 0.85 (reports/README.md).
NORMALIZE_MODES = ("none", "clahe")
#: CLAHE on a 64 px crop: clip 2 keeps noise in flat skin down; 4x4 tiles of
#: 16 px are about the size of a mouth or an eye
CLAHE_CLIP = 2.0
CLAHE_TILES = 4


@dataclass(frozen=True)
class Preprocess:
    """How pixels become model input.

    crop:   ``face`` (the detected face box, grown by ``margin`` on each side
            and made square) or ``frame`` (the whole frame, as the tutorial's
            fixed door camera did).
    margin: fraction of the face box added on every side in ``face`` mode.
    size:   model input is ``size`` x ``size`` x 3.
    color:  channel order the model sees; always ``RGB``.
    scale:  ``unit``: uint8 pixel / 255 -> float32 in [0, 1].
    normalize: ``none`` or ``clahe`` (see :data:`NORMALIZE_MODES`); a bundle
            written before this field existed means ``none``.
    """

    crop: str = "face"
    margin: float = 0.0
    size: int = 64
    color: str = "RGB"
    scale: str = "unit"
    normalize: str = "none"

    def __post_init__(self) -> None:
        # types first: a margin "0.1" from a hand-edited model.json passes float() here
        # and fails as a TypeError deep in crop_box on the first face
        for name, kinds, expected in (("crop", str, "a string"), ("color", str, "a string"),
                                      ("scale", str, "a string"), ("size", int, "a whole number"),
                                      ("margin", (int, float), "a number"),
                                      ("normalize", str, "a string")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise ModelError(f"preprocess {name} must be {expected}, got {value!r}")
        if self.crop not in CROP_MODES:
            raise ModelError(f"preprocess crop must be one of {CROP_MODES}, got {self.crop!r}")
        if not 0.0 <= float(self.margin) <= 1.0:
            raise ModelError(f"preprocess margin must be within 0..1, got {self.margin!r}")
        if not 16 <= int(self.size) <= 512:
            raise ModelError(f"preprocess size must be within 16..512, got {self.size!r}")
        if self.color != "RGB":
            raise ModelError(f"preprocess color must be 'RGB', got {self.color!r}")
        if self.scale != "unit":
            raise ModelError(f"preprocess scale must be 'unit', got {self.scale!r}")
        if self.normalize not in NORMALIZE_MODES:
            raise ModelError(f"preprocess normalize {self.normalize!r} is not one this build "
                             f"serves ({', '.join(NORMALIZE_MODES)}): the model needs a newer "
                             f"happyhouse")

    def geometric(self) -> "Preprocess":
        """The same contract without the ``normalize`` step (training augments in between)."""
        return replace(self, normalize="none")

    def to_dict(self) -> dict:
        """The contract as stored in ``model.json``; ``normalize`` only when it does something,
        so a bundle without the step reads exactly as bundles did before it existed."""
        data = asdict(self)
        if self.normalize == "none":
            del data["normalize"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "Preprocess":
        known = {k: data[k] for k in ("crop", "margin", "size", "color", "scale", "normalize")
                 if k in data}
        try:
            return cls(**known)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"bad preprocess metadata {dict(data)!r}: {exc}") from None


def _cv2():
    import cv2  # imported lazily so the contract can be read without OpenCV

    return cv2


def check_frame(frame: object) -> np.ndarray:
    """Return ``frame`` if it is a uint8 HxWx3 image, else raise DataError."""
    if not isinstance(frame, np.ndarray):
        raise DataError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise DataError(f"frame must be uint8, got {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 8 or frame.shape[1] < 8:
        raise DataError(f"frame must be HxWx3 with H, W >= 8, got shape {frame.shape}")
    return frame


def crop_box(frame_shape: Tuple[int, ...], box: Box, margin: float) -> Tuple[int, int, int, int]:
    """Square crop (x0, y0, x1, y1) around ``box`` grown by ``margin``.

    Square because the model input is square: a non-square crop would be
    stretched differently from the training faces. The square may reach past
    the frame edge; :func:`prepare_frame` fills that part by replicating the
    edge rather than squashing the face.
    """
    height, width = frame_shape[:2]
    x, y, w, h = (int(v) for v in box)
    if w <= 0 or h <= 0:
        raise DataError(f"face box must have positive size, got {box}")
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0 = int(round(cx - side / 2.0))
    y0 = int(round(cy - side / 2.0))
    x1, y1 = x0 + int(round(side)), y0 + int(round(side))
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise DataError(f"face box {box} lies outside the {width}x{height} frame")
    return x0, y0, x1, y1


def _square_region(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    height, width = frame.shape[:2]
    inner = frame[max(0, y0):min(height, y1), max(0, x0):min(width, x1)]
    pads = (max(0, -y0), max(0, y1 - height), max(0, -x0), max(0, x1 - width))
    if not any(pads):
        return inner
    return _cv2().copyMakeBorder(np.ascontiguousarray(inner), *pads, _cv2().BORDER_REPLICATE)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size and image.shape[1] == size:
        return np.ascontiguousarray(image)
    cv2 = _cv2()
    shrinking = image.shape[0] > size or image.shape[1] > size
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


def normalize_light(image_rgb: np.ndarray, spec: Preprocess) -> np.ndarray:
    """The contract's ``normalize`` step on one uint8 RGB image (size x size)."""
    if spec.normalize == "none":
        return image_rgb
    cv2 = _cv2()
    lab = cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=(CLAHE_TILES, CLAHE_TILES))
    lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def normalize_batch(images_rgb: np.ndarray, spec: Preprocess) -> np.ndarray:
    """:func:`normalize_light` on every image of an N x size x size x 3 batch."""
    if spec.normalize == "none":
        return images_rgb
    return np.stack([normalize_light(im, spec) for im in images_rgb])


def prepare_image(image_rgb: np.ndarray, spec: Preprocess) -> np.ndarray:
    """A training image (an RGB face crop or a whole RGB frame) -> uint8 RGB size x size."""
    check_frame(image_rgb)
    return normalize_light(_resize(image_rgb, spec.size), spec)


def prepare_frame(frame_bgr: np.ndarray, box: Optional[Box], spec: Preprocess,
                  turn: float = 0.0) -> np.ndarray:
    """A camera frame (OpenCV BGR) and its face box -> uint8 RGB size x size.

    In ``face`` mode a box is required: no face, no score. ``turn`` (degrees,
    counter-clockwise as shown) cuts the crop from the frame turned about the
    crop's centre: how a bundle that levels the crop (:mod:`.geometry`) sets a
    rolled head upright; what lies past the frame's edge is filled from it.
    """
    check_frame(frame_bgr)
    if spec.crop == "face":
        if box is None:
            raise DataError("face crop mode needs a face box: no face, no score")
        square = crop_box(frame_bgr.shape, box, spec.margin)
        region = (_square_region(frame_bgr, *square) if turn == 0.0
                  else _turned_region(frame_bgr, *square, turn))
    elif turn != 0.0:
        raise DataError(f"a crop can be turned in 'face' mode only, not {spec.crop!r}")
    else:
        region = frame_bgr
    rgb = _cv2().cvtColor(np.ascontiguousarray(region), _cv2().COLOR_BGR2RGB)
    return normalize_light(_resize(rgb, spec.size), spec)


def _turned_region(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int,
                   turn: float) -> np.ndarray:
    if not np.isfinite(turn):
        raise DataError(f"a crop's turn must be a finite angle, got {turn!r}")
    cv2 = _cv2()
    side = x1 - x0
    matrix = cv2.getRotationMatrix2D(((x0 + x1) / 2.0, (y0 + y1) / 2.0), float(turn), 1.0)
    matrix[:, 2] -= (x0, y0)
    return cv2.warpAffine(frame, matrix, (side, side), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def to_model_input(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 RGB image(s) -> float32 NHWC batch in [0, 1] (the ``unit`` scale)."""
    arr = np.asarray(images_uint8)
    if arr.dtype != np.uint8:
        raise DataError(f"model input images must be uint8, got {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise DataError(f"model input must be NxHxWx3, got shape {arr.shape}")
    return arr.astype(np.float32) / np.float32(255.0)


def to_door_frame(image_rgb: np.ndarray, width: int = 640, height: int = 480) -> np.ndarray:
    """An RGB picture (e.g. a 64x64 Happy House frame) -> BGR ``width`` x ``height``.

    Scaled (stretched, like a camera whose sensor aspect differs) as if the
    door camera had captured it; used by HDF5 replay, ``happyhouse-eval``,
    training's door-shifted data and the face-gate measurements so all of them
    see the same pixels.
    """
    cv2 = _cv2()
    return to_camera_size(cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2BGR),
                          width, height)


def to_camera_size(image_bgr: np.ndarray, width: int = 640, height: int = 480) -> np.ndarray:
    """A BGR picture at ``width`` x ``height``, as the door camera would deliver it (see
    :func:`to_door_frame`): pictures replayed as a camera (the service, ``--once``,
    ``--collect``) and whole frames in ``happyhouse-eval`` are the same pixels."""
    if image_bgr.shape[1] == width and image_bgr.shape[0] == height:
        return image_bgr
    cv2 = _cv2()
    growing = width >= image_bgr.shape[1] and height >= image_bgr.shape[0]
    interp = cv2.INTER_LINEAR if growing else cv2.INTER_AREA
    return cv2.resize(np.ascontiguousarray(image_bgr), (width, height), interpolation=interp)


def shape_differs(size: Tuple[int, int], width: int, height: int, tolerance: float = 0.02) -> bool:
    """Whether a (width, height) picture's aspect ratio is not the camera's (scaling it to
    the camera size then stretches faces)."""
    return abs(size[0] * height / float(size[1] * width) - 1.0) > tolerance
