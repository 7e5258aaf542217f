"""YuNet (``face.detector = yunet`` with ``face.yunet_model``).

OpenCV's small CNN face detector (``cv2.FaceDetectorYN``, OpenCV >= 4.5.4),
more robust to pose and light but ~10x the cost of the Haar passes on a Pi.
It searches the same downscaled frame as the Haar passes, in colour.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..blazeface import eye_roll
from ..errors import ConfigError, FaceGateError
from ..keys import Key
from ..preprocess import Box
from .base import FaceDetector, visible_side
from .downscale import DETECT_WIDTH, EQUALIZE, Downscale, to_full

YUNET_MODEL = Key("face", "yunet_model", "path", "",
                  "path to a YuNet .onnx model (detector = yunet)")


class YuNet(FaceDetector):
    """``cv2.FaceDetectorYN`` over the downscaled frame (equalised in LAB when asked)."""

    type_key = "yunet"
    keys = (YUNET_MODEL, DETECT_WIDTH, EQUALIZE)

    def __init__(self, net, name: str = "yunet", detect_width: int = 320, min_face: int = 48,
                 equalize: bool = False) -> None:
        super().__init__(min_face)
        self.net = net
        self.name = name
        self.downscale = Downscale(detect_width, equalize)

    @classmethod
    def load(cls, model: str, detect_width: int = 320, min_face: int = 48,
             equalize: bool = False, score_threshold: float = 0.8) -> "YuNet":
        import cv2

        path = Path(model).expanduser()
        if not path.is_file():
            raise FaceGateError(f"YuNet model {path} does not exist: download "
                                f"face_detection_yunet_2023mar.onnx from the OpenCV model zoo and "
                                f"set [face] yunet_model, or use detector = haar")
        if not hasattr(cv2, "FaceDetectorYN"):
            raise FaceGateError(f"this OpenCV ({cv2.__version__}) has no FaceDetectorYN (needs "
                                f">= 4.5.4): upgrade OpenCV or use detector = haar")
        try:
            net = cv2.FaceDetectorYN.create(str(path), "", (320, 240), score_threshold, 0.3, 50)
        except cv2.error as exc:
            raise FaceGateError(f"YuNet model {path} cannot be loaded: "
                                f"{str(exc).strip().splitlines()[-1]}") from None
        return cls(net, path.name, detect_width, min_face, equalize)

    @classmethod
    def from_config(cls, cfg) -> "YuNet":
        return cls.load(cfg.face_yunet_model, cfg.face_detect_width, cfg.face_min_face,
                        cfg.face_equalize)

    @classmethod
    def check_config(cls, values: Mapping[str, Any], origin: str) -> None:
        if not values["face.yunet_model"]:
            raise ConfigError(f"{origin}: [face] detector = yunet needs "
                              f"yunet_model = /path/to/yunet.onnx")

    @property
    def description(self) -> str:
        return f"yunet {self.name}"

    @property
    def view(self) -> str:
        return f"detect width {self.downscale.detect_width}"

    smaller_faces_hint = "raise [face] detect_width"

    def smallest_face(self, shape) -> int:
        return max(self.min_face, self.downscale.smallest_face(shape))

    def search(self, frame_bgr: np.ndarray, min_face: int) -> Optional[Box]:
        small, scale = self.downscale.small(frame_bgr)
        if self.downscale.equalize:
            import cv2

            lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB)
            lab[..., 0] = self.downscale.clahe.apply(lab[..., 0])
            small = cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)
        self.net.setInputSize((small.shape[1], small.shape[0]))
        _, faces = self.net.detect(small)
        if faces is None or len(faces) == 0:
            self.faces_seen = 0
            return None
        side = min_face * scale
        found = [(tuple(int(round(v)) for v in f[:4]), f) for f in faces]
        found = [(b, f) for b, f in found if visible_side(b, small.shape) >= side]
        self.faces_seen = len(found)
        if not found:
            return None
        box, row = max(found, key=lambda bf: bf[0][2] * bf[0][3])
        self.eye_roll = yunet_eye_roll(row)
        return to_full(box, scale)


def yunet_eye_roll(row: Sequence[float]) -> Optional[float]:
    """The eye line's roll (degrees, y down, 0 upright) from one ``FaceDetectorYN`` row
    (x, y, w, h, then the right eye's x, y and the left eye's, ...), as BlazeFace's.

    The eye further left in the picture is taken as the subject's right eye (the first
    point of :func:`..blazeface.eye_roll`), whichever YuNet names first: the same for any
    roll within +-90 degrees, and the door's levelling acts on rolls of 10 to about 50.
    """
    if len(row) < 8:
        return None
    first, second = (float(row[4]), float(row[5])), (float(row[6]), float(row[7]))
    right, left = (first, second) if first[0] <= second[0] else (second, first)
    return eye_roll((*right, *left))
