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

import math
from typing import Optional

import numpy as np

from ..blazeface import INPUT_SIZE, BlazeFace, eye_roll, to_face_box
from ..keys import Key
from ..preprocess import Box
from .base import FaceDetector, visible_side

MIN_SCORE = Key("face", "min_score", "float", 0.7,
                "BlazeFace score a face needs (0.7: a face in 147 of 150 Happy House door frames, "
                "none in 84 scenes with nobody in them)", 0.05, 0.99)


#: the smallest face BlazeFace finds, as a fraction of the frame's longer side: the frame is
#: shrunk into its 128x128 input, so this does not depend on the resolution (measured with
#: GENKI-4K faces on a gray 640x480 frame: none under ~0.15, i.e. 96 px; 1280x720 ~200 px)
SMALLEST_FRACTION = 0.15


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

    def smallest_face(self, shape) -> int:
        return max(self.min_face, int(math.ceil(SMALLEST_FRACTION * max(shape[:2]))))

    def search(self, frame_bgr: np.ndarray, min_face: int) -> Optional[Box]:
        boxes, rolls = [], {}
        for found, _, eyes in self.net.detect_with_eyes(frame_bgr, self.min_score):
            x0, y0, x1, y1 = (int(round(v)) for v in to_face_box(found))  # framed like the training crops
            box = (x0, y0, x1 - x0, y1 - y0)
            rolls[box] = eye_roll(eyes)
            # min_face on the part inside the frame: a face mostly outside the picture is
            # not one to score. The box itself is not cut at the edge: a cut box centred the
            # crop on the visible part, off the face (a smile 30% below the frame scored 0.47
            # instead of 0.92), and made a nearer face cut by the edge lose to a smaller one
            if visible_side(box, frame_bgr.shape) >= min_face:
                boxes.append(box)
        self.faces_seen = len(boxes)
        if not boxes:
            return None
        largest = max(boxes, key=lambda b: b[2] * b[3])
        self.eye_roll = rolls[largest]
        return largest
