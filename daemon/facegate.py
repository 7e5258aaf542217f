"""The face gate: no face, no score.

The classifier only ever sees a face the gate found, so a door camera
pointed at a poster, a cat or an empty porch never gets to vote. The gate
looks the configured detector up by name (``face.detector``) in
:mod:`.detectors`, one small class per detector behind one interface, and
adds what is the same for all of them: the frame check and the
technician's "why no face" answer.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from . import detectors
from .detectors.base import FaceDetector
from .preprocess import Box, check_frame


class FaceGate:
    """Finds the largest face in a BGR frame, or None, with one :class:`FaceDetector`."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector

    @classmethod
    def from_config(cls, cfg) -> "FaceGate":
        return cls(detectors.build(cfg))

    @property
    def description(self) -> str:
        return self.detector.description

    @property
    def view(self) -> str:
        """What the detector looks at, in words (``--check``)."""
        return self.detector.view

    @property
    def min_face(self) -> int:
        return self.detector.min_face

    def find(self, frame_bgr: np.ndarray) -> Optional[Box]:
        """The largest face as (x, y, w, h) in full-frame pixels, or None."""
        return self.detector.find(frame_bgr)

    def why_no_face(self, frame_bgr: np.ndarray) -> str:
        """Why :meth:`find` returned None for this frame, in words (for the technician).

        Looks again without ``min_face``: a face that is there but too small
        is a camera-placement problem, no face at all is a different one.
        """
        frame_bgr = check_frame(frame_bgr)
        small = self.detector.search(frame_bgr, 1)
        if small is not None and min(small[2], small[3]) < self.min_face:
            return (f"the largest face found is {small[2]}x{small[3]} px, smaller than [face] "
                    f"min_face ({self.min_face} px): move the camera closer or lower min_face")
        return f"the face detector ({self.description}) found no face in the frame"
