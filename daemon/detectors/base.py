"""The one interface every face detector implements (see the package's docstring)."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Optional, Tuple

import numpy as np

from ..keys import Key
from ..preprocess import Box, check_frame


class FaceDetector:
    """A face detector: the largest face in a BGR frame, or None.

    To add one, put a module in ``daemon/detectors/`` with a subclass that sets
    :attr:`type_key` (its ``[face] detector`` name) and :attr:`keys` (the
    ``[face]`` settings it reads besides ``min_face``) and implements
    :meth:`from_config`, :meth:`search` and :attr:`description`. The package
    finds it by its ``type_key``; nothing else changes.
    """

    #: the ``[face] detector`` value that picks this detector
    type_key: ClassVar[str] = ""
    #: how many faces the last search found (0 here too: a subclass that skips
    #: ``__init__`` must not fail the door's every frame on a missing attribute)
    faces_seen: int = 0
    #: the config keys this detector reads (shared keys may be listed by several)
    keys: ClassVar[Tuple[Key, ...]] = ()
    #: the eye line's roll (degrees, y down, 0 upright) of the face the last search
    #: returned, for a detector that finds eyes (BlazeFace, YuNet); None otherwise. A
    #: bundle that levels the crop starts from it: the mesh, run on the upright box, sees
    #: only part of a large roll (reports/tilt/)
    eye_roll: Optional[float] = None

    def __init__(self, min_face: int = 48) -> None:
        #: smallest face side in full-frame pixels
        self.min_face = int(min_face)
        #: how many faces the last :meth:`search` found (of at least its ``min_face``): the
        #: door scores the largest and says when it had to choose
        self.faces_seen = 0

    @classmethod
    def from_config(cls, cfg) -> "FaceDetector":
        raise NotImplementedError

    @classmethod
    def check_config(cls, values: Mapping[str, Any], origin: str) -> None:
        """Refuse settings that only make sense together (ConfigError); none by default."""

    @property
    def description(self) -> str:
        """Which detector and model, in words (start-up log, ``--check``, eval reports)."""
        raise NotImplementedError

    @property
    def view(self) -> str:
        """What the detector looks at, in words (``--check``)."""
        raise NotImplementedError

    def smallest_face(self, shape) -> int:
        """About the smallest face side (px) this detector finds in a frame of ``shape``,
        whatever ``min_face`` says (a detector that shrinks the frame cannot see less)."""
        return self.min_face

    #: what lets the detector see smaller faces, said after "move the camera closer"
    smaller_faces_hint: ClassVar[str] = ""

    def find(self, frame_bgr: np.ndarray) -> Optional[Box]:
        """The largest face as (x, y, w, h) in full-frame pixels, or None."""
        self.eye_roll = None  # a detector without eyes never hands on an old face's
        return self.search(check_frame(frame_bgr), self.min_face)

    def search(self, frame_bgr: np.ndarray, min_face: int) -> Optional[Box]:
        """The largest face at least ``min_face`` px on its shorter side in a checked frame.

        The box is the whole face's, also where it reaches past the frame's edge (the crop
        then keeps the face centred and fills the outside from the edge, as the contract
        says); ``min_face`` is judged on the part inside the frame, "largest" on the whole
        box. Sets :attr:`faces_seen`.
        """
        raise NotImplementedError


def visible_side(box: Box, shape) -> int:
    """The shorter side of the part of ``box`` (x, y, w, h) inside a frame of ``shape``."""
    height, width = shape[:2]
    x, y, w, h = box
    return min(min(width, x + w) - max(0, x), min(height, y + h) - max(0, y))
