"""BlazeFace: MediaPipe's short-range face detector, run with the TFLite runtime.

A 128x128 SSD (Apache-2.0, shipped in ``models/blazeface/``): it sees faces
turned well past the point where a frontal Haar cascade gives up, and faces
in deep shadow, at ~1-2 ms per frame on one core. Everything MediaPipe's
graph does around the network is done here in numpy/OpenCV, so the Pi needs
nothing beyond the classifier's own runtime:

* letterbox: the frame is shrunk to fit 128x128 keeping its aspect, padded
  with black (a stretched face is not a face the network was trained on);
* input: RGB float32 scaled to [-1, 1];
* anchors: MediaPipe's SSD anchors for this model (strides 8, 16, 16, 16;
  layers with the same stride share a grid, 2 anchors per layer per cell,
  fixed size 1 so the regressors are plain offsets): 16x16x2 + 8x8x6 = 896;
* decode: centre = regressor / 128 + anchor centre, size = regressor / 128,
  in letterboxed [0, 1] coordinates; score = sigmoid(clipped logit);
* weighted NMS (MediaPipe's choice): overlapping detections of one face are
  averaged by score, which steadies the box from frame to frame.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .errors import FaceGateError

log = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parent / "models" / "blazeface"
MODEL_NAME = "face_detection_short_range.tflite"
#: the shipped file (MediaPipe 0.10.14); a different file still loads, with a warning
MODEL_SHA256 = "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"

INPUT_SIZE = 128
STRIDES = (8, 16, 16, 16)
ANCHORS_PER_LAYER = 2
LOGIT_CLIP = 100.0  # MediaPipe's score_clipping_thresh
NMS_IOU = 0.3  # MediaPipe's min_suppression_threshold for this model
#: BlazeFace boxes brow to chin; the classifier was trained on face crops
#: framed like the Haar box (forehead included). Measured on GENKI-4K training
#: crops (every 10th, scaled to 256 px in a 640x480 frame): the median
#: BlazeFace box is 0.869 of the crop side with its centre 0.094 crop sides
#: low; the Haar box is 1.016 and -0.008. So a BlazeFace box is grown by
#: 1/0.869 and raised by 0.094/0.869 of its height to become the face box.
#: Without this the classifier's AUC on the Happy House frames both gates
#: find fell from 0.83 (Haar crops) to 0.78.
CROP_GROW = 1.15
CROP_RAISE = 0.108


def default_model_path() -> Path:
    return MODEL_DIR / MODEL_NAME


def ssd_anchors(input_size: int = INPUT_SIZE, strides: Sequence[int] = STRIDES,
                per_layer: int = ANCHORS_PER_LAYER) -> np.ndarray:
    """Anchor centres (N, 2) as (x, y) in [0, 1], in the network's output order.

    Consecutive layers with the same stride share one grid, so their anchors
    sit together per cell (MediaPipe's SsdAnchorsCalculator); with fixed
    anchor size every anchor is 1x1 and only its centre matters.
    """
    centres: List[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        stride, repeats = strides[layer], 0
        while layer < len(strides) and strides[layer] == stride:
            repeats, layer = repeats + 1, layer + 1
        grid = int(np.ceil(input_size / stride))
        ys, xs = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid,
                             indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)  # row-major: y outer, x inner
        centres.append(np.repeat(cells, repeats * per_layer, axis=0))
    return np.concatenate(centres).astype(np.float32)


def decode(regressors: np.ndarray, logits: np.ndarray, anchors: np.ndarray,
           input_size: int = INPUT_SIZE) -> Tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) as (x0, y0, x1, y1) in [0, 1] letterbox coordinates, and scores (N,)."""
    reg = np.asarray(regressors, np.float32).reshape(len(anchors), -1)
    cx = reg[:, 0] / input_size + anchors[:, 0]
    cy = reg[:, 1] / input_size + anchors[:, 1]
    w = reg[:, 2] / input_size
    h = reg[:, 3] / input_size
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    # float64: exp(100) overflows float32
    logit = np.clip(np.asarray(logits, np.float64).reshape(-1), -LOGIT_CLIP, LOGIT_CLIP)
    return boxes, 1.0 / (1.0 + np.exp(-logit))


def _area(boxes: np.ndarray) -> np.ndarray:
    return (np.clip(boxes[..., 2] - boxes[..., 0], 0, None)
            * np.clip(boxes[..., 3] - boxes[..., 1], 0, None))


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = _area(box) + _area(others) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, min_score: float,
                 iou: float = NMS_IOU, carry: Optional[np.ndarray] = None) -> List[tuple]:
    """Detections above ``min_score``: each cluster of overlapping boxes -> one
    score-weighted mean box carrying the cluster's best score (and, with ``carry``, the
    same weighted mean of each member's ``carry`` row: the keypoints)."""
    # a box with no area (or NaN corners) overlaps nothing, not even itself: its cluster
    # would be empty; a model's degenerate output is no face, never a crash of the door
    whole = (np.all(np.isfinite(boxes), axis=1) & (boxes[:, 2] > boxes[:, 0])
             & (boxes[:, 3] > boxes[:, 1]))
    keep = np.flatnonzero((scores >= min_score) & whole)
    keep = keep[np.argsort(-scores[keep], kind="stable")]
    out: List[tuple] = []
    while keep.size:
        overlaps = _iou(boxes[keep[0]], boxes[keep])
        cluster, keep = keep[overlaps > iou], keep[overlaps <= iou]
        weights = scores[cluster][:, None]
        found = ((boxes[cluster] * weights).sum(0) / weights.sum(), float(scores[cluster[0]]))
        if carry is not None:
            found += ((carry[cluster] * weights).sum(0) / weights.sum(),)
        out.append(found)
    return out


def decode_eyes(regressors: np.ndarray, anchors: np.ndarray,
                input_size: int = INPUT_SIZE) -> np.ndarray:
    """The eye keypoints (N, 4): the subject's right eye (x, y) then left eye, in [0, 1]
    letterbox coordinates (the regressors' keypoints 0 and 1, after the box's 4 numbers)."""
    reg = np.asarray(regressors, np.float32).reshape(len(anchors), -1)
    eyes = reg[:, 4:8] / input_size
    return eyes + np.tile(anchors[:, :2], 2)


def eye_roll(eyes: Sequence[float]) -> Optional[float]:
    """The eye line's angle in degrees (y down; 0 upright), as
    :func:`happyhouse.daemon.geometry.roll_degrees` measures it on the mesh; None when
    the two eyes are one point or not numbers."""
    rx, ry, lx, ly = (float(v) for v in eyes)
    if not all(np.isfinite((rx, ry, lx, ly))) or (rx, ry) == (lx, ly):
        return None
    return float(np.degrees(np.arctan2(ly - ry, lx - rx)))


def to_face_box(box: Sequence[float]) -> np.ndarray:
    """A BlazeFace (x0, y0, x1, y1) -> the same face framed like the training crops."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - CROP_RAISE * (y1 - y0)
    half_w, half_h = CROP_GROW * (x1 - x0) / 2, CROP_GROW * (y1 - y0) / 2
    return np.array([cx - half_w, cy - half_h, cx + half_w, cy + half_h])


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the square input: scale and padding (input pixels)."""

    scale: float
    pad_x: float
    pad_y: float

    def to_frame(self, box01: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
        """A [0, 1] letterbox box -> (x0, y0, x1, y1) in frame pixels."""
        b = np.asarray(box01, np.float64) * size
        return (b - [self.pad_x, self.pad_y, self.pad_x, self.pad_y]) / self.scale


def letterbox(frame_bgr: np.ndarray, size: int = INPUT_SIZE) -> Tuple[np.ndarray, Letterbox]:
    """The frame shrunk to fit size x size (aspect kept, centred, black padding), RGB uint8."""
    import cv2

    height, width = frame_bgr.shape[:2]
    scale = min(size / width, size / height)
    new_w, new_h = max(1, int(round(width * scale))), max(1, int(round(height * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(frame_bgr, (new_w, new_h), interpolation=interp)
    pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
    square = np.zeros((size, size, 3), np.uint8)
    square[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return square, Letterbox(new_w / width, pad_x, pad_y)


class BlazeFace:
    """The network plus its decoding: ``detect(frame) -> [(x0, y0, x1, y1), score]``."""

    def __init__(self, model_path: Optional[str] = None, threads: int = 1) -> None:
        from .runtime import open_interpreter, pick_runtime

        path = Path(model_path).expanduser() if model_path else default_model_path()
        self.path = path
        fix = ("reinstall happyhouse (the package ships it in happyhouse/daemon/models/blazeface/) "
               "or set [face] detector = haar")
        if not path.is_file():
            raise FaceGateError(f"BlazeFace model {path} does not exist: {fix}")
        data = path.read_bytes()
        self.sha256 = hashlib.sha256(data).hexdigest()
        if self.sha256 != MODEL_SHA256:
            log.warning("BlazeFace model %s is not the shipped file (sha256 %s...)", path,
                        self.sha256[:12])
        try:
            self.runtime, interpreter_cls = pick_runtime()
            # from the file (mapped, shared) rather than the bytes just hashed: less private memory
            self._interp = open_interpreter(interpreter_cls, model_path=str(path), num_threads=threads)
        except Exception as exc:  # the runtimes raise ValueError/RuntimeError on bad files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FaceGateError(f"BlazeFace model {path} cannot be loaded ({first[:120]}): "
                                f"{fix}") from None
        self._check_signature(path, fix)

    def _check_signature(self, path: Path, fix: str) -> None:
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        shape = tuple(int(d) for d in inputs[0]["shape"]) if len(inputs) == 1 else ()
        by_size = {int(np.prod(o["shape"][2:])): o for o in outputs}
        self.anchors = ssd_anchors()
        expected = (1, INPUT_SIZE, INPUT_SIZE, 3)
        if (shape != expected or inputs[0]["dtype"] != np.float32 or len(outputs) != 2
                or set(by_size) != {16, 1}
                or any(int(o["shape"][1]) != len(self.anchors) for o in outputs)):
            raise FaceGateError(f"BlazeFace model {path} is not the short-range face detector "
                                f"(input {shape}, outputs "
                                f"{[tuple(int(d) for d in o['shape']) for o in outputs]}): {fix}")
        self._input = inputs[0]["index"]
        self._regressors, self._logits = by_size[16]["index"], by_size[1]["index"]

    def raw(self, square_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The network's regressors (896, 16) and logits (896,) for a 128x128 RGB image."""
        tensor = (square_rgb.astype(np.float32) / 127.5 - 1.0)[None]
        self._interp.set_tensor(self._input, tensor)
        self._interp.invoke()
        return (self._interp.get_tensor(self._regressors)[0],
                self._interp.get_tensor(self._logits)[0, :, 0])

    def detect(self, frame_bgr: np.ndarray, min_score: float) -> List[Tuple[np.ndarray, float]]:
        """Faces in a BGR frame as ((x0, y0, x1, y1) frame pixels, score), best first."""
        return [(box, score) for box, score, _ in self.detect_with_eyes(frame_bgr, min_score)]

    def detect_with_eyes(self, frame_bgr: np.ndarray, min_score: float) -> List[tuple]:
        """The same with each face's eye keypoints: (box, score, (rx, ry, lx, ly) frame pixels)."""
        square, fit = letterbox(frame_bgr)
        regressors, logits = self.raw(square)
        boxes, scores = decode(regressors, logits, self.anchors)
        eyes = decode_eyes(regressors, self.anchors)
        return [(fit.to_frame(box), score, fit.to_frame(pair))
                for box, score, pair in weighted_nms(boxes, scores, min_score, carry=eyes)]
