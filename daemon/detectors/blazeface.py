"""BlazeFace (the default, ``face.detector = blazeface``).

MediaPipe's short-range face detector (the network: :mod:`..blazeface`, model
shipped in ``models/blazeface/``), run with the same TFLite runtime as the
classifier. Measured at 640x480 (``scripts/facegate_report.py --detector
blazeface``): a face in 147/150 Happy House frames at ``face.min_score`` 0.7,
where the tuned Haar gate finds 109, and 0 of 84 person-free scenes. It sees
turned heads and faces in shadow that the Haar cascades miss; it gets the frame
as it is (no downscaling of its own beyond its fixed input, no equalisation:
CLAHE lowered its scores on the door frames and raised them on the scenes).
Its box is reframed to match the Haar box and the training crops
(:data:`..blazeface.CROP_GROW`), so the classifier sees the same crop
whichever detector found the face.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..blazeface import INPUT_SIZE, BlazeFace, to_face_box
from ..keys import Key
from ..preprocess import Box
from .base import FaceDetector

MIN_SCORE = Key("face", "min_score", "float", 0.7,
                "BlazeFace score a face needs (0.7: a face in 147 of 150 Happy House door frames, "
                "none in 84 scenes with nobody in them)", 0.05, 0.99)


class BlazeFaceDetector(FaceDetector):
    """The BlazeFace network's faces, reframed as face boxes, largest first."""

    type_key = "blazeface"
    keys = (MIN_SCORE,)

    def __init__(self, net, min_face: int = 48, min_score: float = 0.7) -> None:
        """``net``: a :class:`..blazeface.BlazeFace` (or anything with its ``detect``)."""
        super().__init__(min_face)
        self.net = net
        self.min_score = float(min_score)

    @classmethod
    def load(cls, model: str = "", min_face: int = 48, min_score: float = 0.7,
             threads: int = 1) -> "BlazeFaceDetector":
        """``model`` empty = the shipped file."""
        return cls(BlazeFace(model or None, threads=threads), min_face, min_score)

    @classmethod
    def from_config(cls, cfg) -> "BlazeFaceDetector":
        return cls.load(min_face=cfg.face_min_face, min_score=cfg.face_min_score,
                        threads=cfg.model_threads)

    @property
    def description(self) -> str:
        return (f"blazeface {self.net.path.stem} (min score {self.min_score:g}, "
                f"{self.net.runtime})")

    @property
    def view(self) -> str:
        # face.detect_width does not apply: the network has one fixed input
        return f"sees the frame letterboxed into {INPUT_SIZE}x{INPUT_SIZE}"

    def search(self, frame_bgr: np.ndarray, min_face: int) -> Optional[Box]:
        height, width = frame_bgr.shape[:2]
        boxes = []
        for found, _ in self.net.detect(frame_bgr, self.min_score):
            x0, y0, x1, y1 = to_face_box(found)  # framed like the classifier's training crops
            x0, y0 = max(0, int(round(x0))), max(0, int(round(y0)))
            x1, y1 = min(width, int(round(x1))), min(height, int(round(y1)))
            # min_face on the box as seen inside the frame: a face mostly
            # outside the picture is not one to score
            if min(x1 - x0, y1 - y0) >= min_face:
                boxes.append((x0, y0, x1 - x0, y1 - y0))
        return max(boxes, key=lambda b: b[2] * b[3]) if boxes else None
