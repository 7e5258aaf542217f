"""Haar cascades (the fallback, ``face.detector = haar``).

Several passes over the same downscaled, equalised grey image, in order,
stopping at the first that finds a face; within a pass the largest face wins.
The passes and their settings were tuned on the Happy House door frames and on
scenes with nobody in them (``scripts/facegate_report.py`` measures them;
``tests/daemon/test_facegate.py`` keeps them honest). See :data:`HAAR_PASSES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..errors import FaceGateError
from ..keys import Key
from ..preprocess import Box
from .base import FaceDetector
from .downscale import CLAHE_CLIP, CLAHE_TILES, DETECT_WIDTH, EQUALIZE, Downscale, to_full

DEFAULT_CASCADE = "haarcascade_frontalface_alt2.xml"
DEBIAN_CASCADE_DIRS = ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades")

CASCADE = Key("face", "cascade", "path", "",
              "path to a Haar cascade XML; empty = OpenCV's haarcascade_frontalface_alt2.xml")


@dataclass(frozen=True)
class HaarPass:
    """One detector run: which cascade, mirrored or not, how strict."""

    cascade: str  # file name in the cascade folder, or a path
    min_neighbors: int
    scale_factor: float = 1.05
    mirror: bool = False  # the profile cascade only knows faces turned one way


#: Tuned on 640x480 frames (scripts/facegate_report.py): at zero false faces on
#: 84 person-free scenes, the alt2 frontal cascade found the most Happy House
#: faces; the default cascade, at any minNeighbors that kept it silent on
#: the scenes (>= 14 at 160 px), found far fewer, so it adds nothing. A
#: profile cascade found < 15% of the turned heads; rotated passes (+-15 deg)
#: brought more false faces than faces.
HAAR_PASSES: Tuple[HaarPass, ...] = (
    HaarPass("haarcascade_frontalface_alt2.xml", min_neighbors=6),
)


def cascade_dirs() -> List[Path]:
    """Where stock cascades live: the pip wheel's cv2.data, then Debian's python3-opencv."""
    dirs = []
    try:
        import cv2

        data = getattr(cv2, "data", None)
        if data is not None and getattr(data, "haarcascades", None):
            dirs.append(Path(data.haarcascades))
    except ImportError:
        pass
    dirs.extend(Path(d) for d in DEBIAN_CASCADE_DIRS)
    return dirs


def find_cascade(name: str) -> Path:
    """A cascade file by path or stock name; FaceGateError says how to get it."""
    candidate = Path(name).expanduser()
    if candidate.is_absolute() or candidate.parent != Path("."):
        if candidate.is_file():
            return candidate
        raise FaceGateError(f"face cascade {candidate} does not exist: fix [face] cascade, or "
                            f"leave it empty for OpenCV's {DEFAULT_CASCADE}")
    for folder in cascade_dirs():
        if (folder / name).is_file():
            return folder / name
    raise FaceGateError(f"Haar cascade {name} not found in "
                        f"{', '.join(str(d) for d in cascade_dirs())}: install opencv-python-headless "
                        f"(<5, OpenCV 5 dropped cascades) or Debian's opencv-data, "
                        f"or set [face] cascade = /path/to/{name}")


def load_cascade(path: Path):
    """An OpenCV CascadeClassifier, or a FaceGateError for a file that is not one."""
    import cv2

    try:
        cascade = cv2.CascadeClassifier(str(path))
    except (cv2.error, SystemError) as exc:  # OpenCV raises on some malformed XML
        raise FaceGateError(f"face cascade {path} cannot be loaded (corrupt or not a cascade "
                            f"XML): {str(exc).strip().splitlines()[-1][:120]}") from None
    if cascade.empty():
        raise FaceGateError(f"face cascade {path} cannot be loaded (corrupt or not a cascade XML)")
    return cascade


class Haar(FaceDetector):
    """The tuned cascade passes over a downscaled grey copy of the frame."""

    type_key = "haar"
    keys = (CASCADE, DETECT_WIDTH, EQUALIZE)

    def __init__(self, passes: Sequence[Tuple[object, HaarPass]], detect_width: int = 320,
                 min_face: int = 48, equalize: bool = True, clahe_clip: float = CLAHE_CLIP,
                 clahe_tiles: int = CLAHE_TILES) -> None:
        """``passes``: (loaded cascade, its HaarPass) pairs, tried in order."""
        super().__init__(min_face)
        if not passes:
            raise FaceGateError("face gate has no detector")
        self.passes = list(passes)
        self.downscale = Downscale(detect_width, equalize, clahe_clip, clahe_tiles)
        self.last_pass: Optional[int] = None  # which pass found the last face (diagnostics)

    @classmethod
    def load(cls, cascade: str = "", detect_width: int = 320, min_face: int = 48,
             equalize: bool = True, passes: Sequence[HaarPass] = HAAR_PASSES) -> "Haar":
        """The tuned passes; ``cascade`` (a path) replaces the first pass's cascade."""
        chosen = list(passes)
        if cascade:
            first = chosen[0]
            chosen[0] = HaarPass(cascade, first.min_neighbors, first.scale_factor, first.mirror)
        return cls([(load_cascade(find_cascade(p.cascade)), p) for p in chosen], detect_width,
                   min_face, equalize)

    @classmethod
    def from_config(cls, cfg) -> "Haar":
        return cls.load(cfg.face_cascade, cfg.face_detect_width, cfg.face_min_face,
                        cfg.face_equalize)

    @property
    def description(self) -> str:
        names = "+".join(Path(p.cascade).stem.replace("haarcascade_", "") for _, p in self.passes)
        return f"haar {names}"

    @property
    def view(self) -> str:
        return f"detect width {self.downscale.detect_width}"

    def grey(self, frame_bgr: np.ndarray) -> Tuple[np.ndarray, float]:
        """What the cascades look at: downscaled, grey, equalised; and the scale."""
        return self.downscale.grey(frame_bgr)

    smaller_faces_hint = "raise [face] detect_width"

    def smallest_face(self, shape) -> int:
        return max(self.min_face, self.downscale.smallest_face(shape))

    def search(self, frame_bgr: np.ndarray, min_face: int) -> Optional[Box]:
        grey, scale = self.grey(frame_bgr)
        side = max(8, int(round(min_face * scale)))
        self.last_pass = None
        self.faces_seen = 0
        for number, (cascade, spec) in enumerate(self.passes):
            image = grey[:, ::-1] if spec.mirror else grey
            found = cascade.detectMultiScale(np.ascontiguousarray(image),
                                             scaleFactor=spec.scale_factor,
                                             minNeighbors=spec.min_neighbors, minSize=(side, side))
            if len(found):
                x, y, w, h = max((tuple(int(v) for v in b) for b in found), key=lambda b: b[2] * b[3])
                if spec.mirror:
                    x = grey.shape[1] - x - w
                self.last_pass = number
                self.faces_seen = len(found)  # the faces of the first pass that found any
                return to_full((x, y, w, h), scale)
        return None
