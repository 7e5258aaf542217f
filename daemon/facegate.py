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
from .detectors.base import FaceDetector, visible_side
from .preprocess import Box, check_frame


#: mean grey level (0-255) under which a frame is too dark, over which too bright, to find
#: a face in (``--check`` warns at the same levels)
DARK, BRIGHT = 40.0, 220.0


def exposure_problem(frame_bgr: np.ndarray) -> Optional[str]:
    """Why the picture itself hides faces (far too dark or bright), in words; None if not."""
    import cv2

    mean = float(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY).mean())
    if mean < DARK:
        return (f"the picture is very dark (mean grey {mean:.0f} of 255): light the doorway, or "
                f"check the lens is not covered and the camera's exposure")
    if mean > BRIGHT:
        return (f"the picture is very bright (mean grey {mean:.0f} of 255): a backlit door or "
                f"the sun in the lens; shade or turn the camera, or lower its exposure")
    return None


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

    @property
    def faces_seen(self) -> int:
        """How many faces the last :meth:`find` saw (it returns the largest)."""
        return self.detector.faces_seen

    @property
    def eye_roll(self):
        """The roll of the last face found, where the detector finds eyes (else None)."""
        return self.detector.eye_roll

    def smallest_face(self, shape) -> int:
        """About the smallest face side (px) the gate finds in a frame of ``shape``: ``min_face``
        or the detector's own limit, whichever is larger."""
        return max(self.min_face, self.detector.smallest_face(shape))

    def find(self, frame_bgr: np.ndarray) -> Optional[Box]:
        """The largest face as (x, y, w, h) in full-frame pixels, or None (the box may reach
        past the frame's edge: :meth:`.detectors.base.FaceDetector.search`)."""
        return self.detector.find(frame_bgr)

    def why_no_face(self, frame_bgr: np.ndarray) -> str:
        """Why :meth:`find` returned None for this frame, in words (for the technician).

        Looks again without ``min_face``: a face that is there but too small
        is a camera-placement problem, no face at all is a different one.
        """
        frame_bgr = check_frame(frame_bgr)
        small = self.detector.search(frame_bgr, 1)
        seen = None if small is None else visible_side(small, frame_bgr.shape)
        if seen is not None and seen < self.min_face:
            if seen < min(small[2], small[3]) and min(small[2], small[3]) >= self.min_face:
                # not a small face: a face that would be big enough, mostly out of view
                return (f"the largest face found is mostly outside the frame (only {seen} px of "
                        f"its {small[2]}x{small[3]} px in view, under [face] min_face "
                        f"{self.min_face} px): the visitor should step into view, or aim the "
                        f"camera where faces are")
            return (f"the largest face found is {small[2]}x{small[3]} px, smaller than [face] "
                    f"min_face ({self.min_face} px): move the camera closer or lower min_face")
        words = f"the face detector ({self.description}) found no face in the frame"
        exposure = exposure_problem(frame_bgr)
        if exposure:  # "move the camera closer" misled for a black or blown-out picture
            return f"{words}: {exposure}"
        floor = self.detector.smallest_face(frame_bgr.shape)
        if floor > self.min_face:
            # lowering min_face cannot help here: the detector itself sees no smaller face
            hint = self.detector.smaller_faces_hint
            # "closer" alone misled for a face that fills the frame (a face photo replayed)
            words += (f" (in a {frame_bgr.shape[1]}x{frame_bgr.shape[0]} frame it sees faces from "
                      f"about {floor} px: for a face smaller than that move the camera closer"
                      f"{' or ' + hint if hint else ''}; a face that fills the frame is too close, "
                      f"the whole head needs room around it)")
        return words
