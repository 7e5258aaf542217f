"""The downscaled, contrast-equalised view the Haar and YuNet detectors search.

``face.detect_width``: the cascades need ~24 px faces, a doorway face is 100+
px at 640x480, and a smaller image is quicker. CLAHE (local contrast
equalisation): a backlit doorway puts the face in deep shadow against a
bright garden, and a global histogram stretch does not lift it.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from ..keys import Key
from ..preprocess import Box

#: CLAHE clip limit and tile grid (tiles x tiles over the small image): a strong
#: clip lifts faces in deep shadow against a bright garden (clip 2 -> 12 took
#: the alt2 pass from ~60% to ~75% of Happy House frames)
CLAHE_CLIP = 12.0
CLAHE_TILES = 8

DETECT_WIDTH = Key(
    "face", "detect_width", "int", 160,
    "haar and yunet: frames are downscaled to this width for detection (speed, fewer "
    "false faces; the "
    "smallest face found is about 20 px at this width: 80 px in a 640 px frame)", 80, 4096)
EQUALIZE = Key(
    "face", "equalize", "bool", True,
    "haar and yunet: equalise contrast before detection (backlit doorways); blazeface "
    "always sees the frame as it is")


#: the cascades' and YuNet's smallest face, in pixels of the downscaled frame
SMALLEST_SMALL = 20


class Downscale:
    """A frame shrunk to ``detect_width`` (never enlarged) and, optionally, equalised."""

    def __init__(self, detect_width: int = 320, equalize: bool = True,
                 clahe_clip: float = CLAHE_CLIP, clahe_tiles: int = CLAHE_TILES) -> None:
        import cv2

        self.detect_width = int(detect_width)
        self.equalize = bool(equalize)
        self.clahe = cv2.createCLAHE(clipLimit=clahe_clip, tileGridSize=(clahe_tiles, clahe_tiles))

    def small(self, frame_bgr: np.ndarray) -> Tuple[np.ndarray, float]:
        """The frame at ``detect_width`` (or as it is, when narrower) and the scale."""
        import cv2

        height, width = frame_bgr.shape[:2]
        scale = min(1.0, self.detect_width / float(width))
        if scale < 1.0:
            size = (self.detect_width, max(1, int(round(height * scale))))
            small = cv2.resize(frame_bgr, size, interpolation=cv2.INTER_AREA)
        else:
            small = frame_bgr
        return small, scale

    def smallest_face(self, shape) -> int:
        """The smallest face found (about ``SMALLEST_SMALL`` px at ``detect_width``), in
        full-frame pixels of a frame of ``shape``."""
        width = shape[1]
        return int(math.ceil(SMALLEST_SMALL * max(1.0, width / float(self.detect_width))))

    def grey(self, frame_bgr: np.ndarray) -> Tuple[np.ndarray, float]:
        """Downscaled, grey, equalised; and the scale."""
        import cv2

        small, scale = self.small(frame_bgr)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        if self.equalize:
            grey = self.clahe.apply(grey)
        return grey, scale


def to_full(box: Tuple[int, int, int, int], scale: float) -> Box:
    """A small-image box back in full-frame pixels (not cut at the frame's edge: see
    :meth:`.base.FaceDetector.search`)."""
    x, y, w, h = (v / scale for v in box)
    x0, y0 = int(round(x)), int(round(y))
    return (x0, y0, max(1, int(round(x + w)) - x0), max(1, int(round(y + h)) - y0))
