"""Annotated snapshots: the frame with its face box, score, verdict and time.

Used by ``--once --snapshot`` and by the audit trail's unlock snapshots, so a
technician can see what the door saw and why it decided as it did.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .errors import DataError
from .filesafety import write_file_whole
from .logtext import decimal
from .preprocess import check_frame

GREEN, RED, AMBER = (40, 200, 40), (40, 40, 230), (0, 170, 255)  # BGR


def score_text(score: Optional[float], threshold: Optional[float]) -> str:
    """"  score 0.859 (>= 0.858)": the threshold to as many places as the score, or a
    score of 0.8586 against 0.8584 read "0.859 (>= 0.86)", a contradiction on the picture."""
    if score is None:
        return ""
    if threshold is None:
        return f"  score {decimal(score)}"
    return f"  score {decimal(score)} ({'>=' if score >= threshold else '<'} {decimal(threshold)})"


def stamp_text(when: Optional[float] = None) -> str:
    """The local time burned into a picture, with its zone: without it, the hour the
    clocks go back twice read the same, and the text disagreed with the file's UTC name."""
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(time.time() if when is None
                                                                else when))


def annotate(image_bgr: np.ndarray, observation, threshold: Optional[float] = None,
             when: Optional[float] = None) -> np.ndarray:
    """A copy of the frame with the face box, the score and verdict, and the wall-clock time."""
    import cv2

    out = check_frame(image_bgr).copy()
    face, score = observation.face, observation.score
    if face is None:
        verdict, colour = "NO FACE", AMBER
    elif observation.happy:
        verdict, colour = "HAPPY", GREEN
    else:
        verdict, colour = "NOT HAPPY", RED
    thick = max(1, out.shape[1] // 320)
    if face is not None:
        x, y, w, h = (int(v) for v in face)
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thick + 1)
    line = verdict + score_text(score, threshold)
    stamp = stamp_text(when)
    scale = max(0.4, out.shape[1] / 1100.0)
    for row, (text, col) in enumerate(((line, colour), (stamp, (255, 255, 255)))):
        origin = (8, int(22 * scale / 0.6) * (row + 1))
        cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2,
                    cv2.LINE_AA)  # dark outline: readable on a bright sky or a dark hall
        cv2.putText(out, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, col, thick, cv2.LINE_AA)
    return out


#: what ``--snapshot`` writes, by the file's suffix (none: JPEG)
SNAPSHOT_FORMATS = {"": ".jpg", ".jpg": ".jpg", ".jpeg": ".jpg", ".png": ".png"}


def write_snapshot(path: Union[str, Path], image_bgr: np.ndarray, quality: int = 90) -> Path:
    """Write a snapshot atomically (a half-written one is never left behind), as a JPEG,
    or a PNG when ``path`` ends in .png; only over a regular file."""
    import cv2

    path = Path(path).expanduser()
    encoding = SNAPSHOT_FORMATS.get(path.suffix.lower())
    if encoding is None:
        raise DataError(f"cannot write snapshot {path}: name it .jpg or .png (it was "
                        f"{path.suffix!r})")
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = None  # nothing there yet (or a dangling link: replaced, as a new file)
    if mode is not None and not stat.S_ISREG(mode):
        # os.replace would put the picture in the place of a device or FIFO
        # (--snapshot /dev/null as root replaced the system's /dev/null)
        raise DataError(f"cannot write snapshot {path}: it is not a regular file "
                        f"(a folder, device or FIFO); name a new .jpg file")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if encoding == ".jpg" else []
    ok, data = cv2.imencode(encoding, image_bgr, params)
    if not ok:
        raise DataError(f"cannot encode snapshot for {path}")
    if not path.parent.is_dir():
        raise DataError(f"cannot write snapshot {path}: folder {path.parent} does not exist")
    return write_file_whole(path, data.tobytes(), "snapshot")
