"""The face gate: no face, no score.

The classifier only ever sees a face the gate found, so a door camera
pointed at a poster, a cat or an empty porch never gets to vote.

BlazeFace (default, ``face.detector = blazeface``): MediaPipe's short-range
face detector (``blazeface.py``, model shipped in ``models/blazeface/``), run
with the same TFLite runtime as the classifier. Measured at 640x480
(``scripts/facegate_report.py --detector blazeface``): a face in 147/150
Happy House frames at ``face.min_score`` 0.7, where the tuned Haar gate
finds 109, and 0 of 84 person-free scenes. It sees turned heads and faces
in shadow that the Haar cascades miss; it gets the frame as it is (no
equalisation: CLAHE lowered its scores on the door frames and raised them
on the scenes). Its box is reframed to match the Haar box and the training
crops (:data:`blazeface.CROP_GROW`), so the classifier sees the same crop
whichever detector found the face.

The Haar and YuNet gates work on a downscaled grey copy of the frame (``face.detect_width``; the
cascades need ~24 px faces, a doorway face is 100+ px at 640x480, and a
smaller image is quicker) with local contrast equalisation (CLAHE; a
backlit doorway puts the face in deep shadow against a bright garden, and
a global histogram stretch does not lift it).

Haar (the fallback, ``face.detector = haar``): several passes over the same
grey image, in order, stopping at the first that finds a face; within a pass
the largest face wins. The passes and their settings were tuned on the Happy House door frames and on
scenes with nobody in them (``scripts/facegate_report.py`` measures them;
``tests/daemon/test_facegate.py`` keeps them honest). See :data:`HAAR_PASSES`.

YuNet (``face.detector = yunet`` with ``face.yunet_model``): OpenCV's small
CNN face detector (``cv2.FaceDetectorYN``, OpenCV >= 4.5.4), more robust to
pose and light but ~10x the cost of the Haar passes on a Pi.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .blazeface import INPUT_SIZE, BlazeFace, to_face_box
from .errors import FaceGateError
from .preprocess import Box, check_frame

log = logging.getLogger(__name__)

DEFAULT_CASCADE = "haarcascade_frontalface_alt2.xml"
DEBIAN_CASCADE_DIRS = ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades")


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
#: CLAHE clip limit and tile grid (tiles x tiles over the small image): a strong
#: clip lifts faces in deep shadow against a bright garden (clip 2 -> 12 took
#: the alt2 pass from ~60% to ~75% of Happy House frames)
CLAHE_CLIP = 12.0
CLAHE_TILES = 8


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


def _load_cascade(path: Path):
    import cv2

    try:
        cascade = cv2.CascadeClassifier(str(path))
    except (cv2.error, SystemError) as exc:  # OpenCV raises on some malformed XML
        raise FaceGateError(f"face cascade {path} cannot be loaded (corrupt or not a cascade "
                            f"XML): {str(exc).strip().splitlines()[-1][:120]}") from None
    if cascade.empty():
        raise FaceGateError(f"face cascade {path} cannot be loaded (corrupt or not a cascade XML)")
    return cascade


class FaceGate:
    """Finds the largest face in a BGR frame, or None."""

    def __init__(self, passes: Sequence[Tuple[object, HaarPass]] = (), detect_width: int = 320,
                 min_face: int = 48, equalize: bool = True, yunet=None,
                 clahe_clip: float = CLAHE_CLIP, clahe_tiles: int = CLAHE_TILES,
                 description: str = "haar", blazeface: Optional[BlazeFace] = None,
                 min_score: float = 0.7) -> None:
        import cv2

        if not passes and yunet is None and blazeface is None:
            raise FaceGateError("face gate has no detector")
        self._passes = list(passes)
        self._yunet = yunet
        self._blazeface = blazeface
        self.min_score = float(min_score)
        self.detect_width = int(detect_width)
        self.min_face = int(min_face)
        self.equalize = bool(equalize)
        self._clahe = cv2.createCLAHE(clipLimit=clahe_clip, tileGridSize=(clahe_tiles, clahe_tiles))
        self.description = description
        self.last_pass: Optional[int] = None  # which pass found the last face (diagnostics)

    # ------------------------------------------------------------- building
    @classmethod
    def haar(cls, cascade: str = "", detect_width: int = 320, min_face: int = 48,
             equalize: bool = True, passes: Sequence[HaarPass] = HAAR_PASSES) -> "FaceGate":
        """The tuned passes; ``cascade`` (a path) replaces the first pass's cascade."""
        chosen = list(passes)
        if cascade:
            first = chosen[0]
            chosen[0] = HaarPass(cascade, first.min_neighbors, first.scale_factor, first.mirror)
        loaded = [(_load_cascade(find_cascade(p.cascade)), p) for p in chosen]
        names = "+".join(Path(p.cascade).stem.replace("haarcascade_", "") for p in chosen)
        return cls(loaded, detect_width, min_face, equalize, description=f"haar {names}")

    @classmethod
    def yunet(cls, model: str, detect_width: int = 320, min_face: int = 48,
              equalize: bool = False, score_threshold: float = 0.8) -> "FaceGate":
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
            detector = cv2.FaceDetectorYN.create(str(path), "", (320, 240), score_threshold, 0.3, 50)
        except cv2.error as exc:
            raise FaceGateError(f"YuNet model {path} cannot be loaded: "
                                f"{str(exc).strip().splitlines()[-1]}") from None
        return cls(detect_width=detect_width, min_face=min_face, equalize=equalize,
                   yunet=detector, description=f"yunet {path.name}")

    @classmethod
    def blazeface(cls, model: str = "", min_face: int = 48, min_score: float = 0.7,
                  threads: int = 1) -> "FaceGate":
        """MediaPipe's short-range BlazeFace; ``model`` empty = the shipped file."""
        detector = BlazeFace(model or None, threads=threads)
        # detect_width: what the network sees (the frame letterboxed into 128x128)
        return cls(detect_width=INPUT_SIZE, min_face=min_face, equalize=False,
                   blazeface=detector, min_score=min_score,
                   description=f"blazeface {detector.path.stem} (min score {min_score:g}, "
                               f"{detector.runtime})")

    @classmethod
    def from_config(cls, cfg) -> "FaceGate":
        if cfg.face_detector == "blazeface":
            return cls.blazeface(min_face=cfg.face_min_face, min_score=cfg.face_min_score,
                                 threads=cfg.model_threads)
        if cfg.face_detector == "yunet":
            return cls.yunet(cfg.face_yunet_model, cfg.face_detect_width, cfg.face_min_face,
                             cfg.face_equalize)
        return cls.haar(cfg.face_cascade, cfg.face_detect_width, cfg.face_min_face,
                        cfg.face_equalize)

    @property
    def view(self) -> str:
        """What the detector looks at, in words (``--check``).

        BlazeFace always sees the frame letterboxed into its fixed input;
        ``face.detect_width`` only applies to the Haar and YuNet gates.
        """
        if self._blazeface is not None:
            return f"sees the frame letterboxed into {INPUT_SIZE}x{INPUT_SIZE}"
        return f"detect width {self.detect_width}"

    # ------------------------------------------------------------- detecting
    def _small(self, frame_bgr: np.ndarray) -> Tuple[np.ndarray, float]:
        import cv2

        height, width = frame_bgr.shape[:2]
        scale = min(1.0, self.detect_width / float(width))
        if scale < 1.0:
            size = (self.detect_width, max(1, int(round(height * scale))))
            small = cv2.resize(frame_bgr, size, interpolation=cv2.INTER_AREA)
        else:
            small = frame_bgr
        return small, scale

    def grey(self, frame_bgr: np.ndarray) -> Tuple[np.ndarray, float]:
        """The detector's view of a frame: downscaled, grey, equalised; and the scale."""
        import cv2

        small, scale = self._small(frame_bgr)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        if self.equalize:
            grey = self._clahe.apply(grey)
        return grey, scale

    def find(self, frame_bgr: np.ndarray) -> Optional[Box]:
        """The largest face as (x, y, w, h) in full-frame pixels, or None."""
        return self._find(check_frame(frame_bgr), self.min_face)

    def why_no_face(self, frame_bgr: np.ndarray) -> str:
        """Why :meth:`find` returned None for this frame, in words (for the technician).

        Looks again without ``min_face``: a face that is there but too small
        is a camera-placement problem, no face at all is a different one.
        """
        frame_bgr = check_frame(frame_bgr)
        small = self._find(frame_bgr, 1)
        if small is not None and min(small[2], small[3]) < self.min_face:
            return (f"the largest face found is {small[2]}x{small[3]} px, smaller than [face] "
                    f"min_face ({self.min_face} px): move the camera closer or lower min_face")
        return f"the face detector ({self.description}) found no face in the frame"

    def _find(self, frame_bgr: np.ndarray, min_face: int) -> Optional[Box]:
        if self._blazeface is not None:
            return self._find_blazeface(frame_bgr, min_face)
        if self._yunet is not None:
            return self._find_yunet(frame_bgr, min_face)
        grey, scale = self.grey(frame_bgr)
        side = max(8, int(round(min_face * scale)))
        self.last_pass = None
        for number, (cascade, spec) in enumerate(self._passes):
            image = grey[:, ::-1] if spec.mirror else grey
            found = cascade.detectMultiScale(np.ascontiguousarray(image),
                                             scaleFactor=spec.scale_factor,
                                             minNeighbors=spec.min_neighbors, minSize=(side, side))
            if len(found):
                x, y, w, h = max((tuple(int(v) for v in b) for b in found), key=lambda b: b[2] * b[3])
                if spec.mirror:
                    x = grey.shape[1] - x - w
                self.last_pass = number
                return _to_full((x, y, w, h), scale, frame_bgr.shape)
        return None

    def _find_yunet(self, frame_bgr: np.ndarray, min_face: int) -> Optional[Box]:
        small, scale = self._small(frame_bgr)
        if self.equalize:
            import cv2

            lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB)
            lab[..., 0] = self._clahe.apply(lab[..., 0])
            small = cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)
        self._yunet.setInputSize((small.shape[1], small.shape[0]))
        _, faces = self._yunet.detect(small)
        if faces is None or len(faces) == 0:
            return None
        boxes = [tuple(int(round(v)) for v in f[:4]) for f in faces]
        side = min_face * scale
        boxes = [b for b in boxes if min(b[2], b[3]) >= side]
        if not boxes:
            return None
        return _to_full(max(boxes, key=lambda b: b[2] * b[3]), scale, frame_bgr.shape)


    def _find_blazeface(self, frame_bgr: np.ndarray, min_face: int) -> Optional[Box]:
        height, width = frame_bgr.shape[:2]
        boxes = []
        for found, _ in self._blazeface.detect(frame_bgr, self.min_score):
            x0, y0, x1, y1 = to_face_box(found)  # framed like the classifier's training crops
            x0, y0 = max(0, int(round(x0))), max(0, int(round(y0)))
            x1, y1 = min(width, int(round(x1))), min(height, int(round(y1)))
            # min_face on the box as seen inside the frame: a face mostly
            # outside the picture is not one to score
            if min(x1 - x0, y1 - y0) >= min_face:
                boxes.append((x0, y0, x1 - x0, y1 - y0))
        return max(boxes, key=lambda b: b[2] * b[3]) if boxes else None


def _to_full(box: Tuple[int, int, int, int], scale: float, shape) -> Box:
    """A small-image box back in full-frame pixels, clipped to the frame."""
    x, y, w, h = (v / scale for v in box)
    height, width = shape[:2]
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
    return (x0, y0, max(1, x1 - x0), max(1, y1 - y0))
