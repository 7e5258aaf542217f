"""Capture devices: the layer :mod:`.sources` reads frames from.

A device is one opened connection to a camera, a stream, a GStreamer
pipeline, a video file, or pictures already in memory (image files, a
folder, a course HDF5 file); ``read()`` blocks until its next BGR image.
Devices know nothing of threads, freshness or reopening: the threaded source
in :mod:`.sources` drives one from a worker thread, keeps only the newest
frame and replaces a device that stalls. The two live apart so that each
module stays small and keeps to one concern; tests drive the threaded source
with their own :class:`Device` subclass instead of a camera.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np

from .errors import SourceError
from .pictures import PICTURE_EXTS, list_pictures, read_bytes, read_picture
from .preprocess import to_door_frame

# the name these warnings had before the devices moved out of sources.py: journal
# filters (LOGGER=) keep working
log = logging.getLogger("happyhouse.daemon.sources")



def _cv2():
    import cv2

    return cv2


class Device:
    """One opened connection to something that delivers images: the base of every device.

    Subclass it to give :class:`.sources.ThreadedSource` a new kind of camera
    (or, in tests, a scripted one): implement :meth:`open`, :meth:`read` and,
    when there is something to free, :meth:`release`. ``read`` may block until
    the next image; the threaded source calls it from its worker thread only,
    and replaces the device (``release`` then a fresh one) when it fails or
    stalls, so a device never needs to recover by itself.
    """

    #: what the device is, in words (logs, ``--check``)
    description = "device"
    #: a live camera: bit-identical consecutive images mean a frozen driver, not a scene
    live = False

    def open(self) -> None:
        """Connect; raise :class:`.errors.SourceError` with a fixable message when it cannot."""
        raise NotImplementedError

    def read(self) -> Optional[np.ndarray]:
        """The next BGR image, or None when the device failed."""
        raise NotImplementedError

    def release(self) -> None:
        """Free the connection (idempotent); nothing by default."""


class _Pacer:
    """Sleeps so replayed frames arrive at ``fps`` (a file is not a camera)."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / max(float(fps), 0.1)
        self._due: Optional[float] = None

    def wait(self) -> None:
        now = time.monotonic()
        if self._due is not None and self._due > now:
            time.sleep(self._due - now)
            now = self._due
        self._due = now + self.period


class CaptureDevice(Device):
    """OpenCV ``VideoCapture`` for cameras, streams, GStreamer pipelines and video files."""

    def __init__(self, target, api: int, kind: str, description: str,
                 width: int = 640, height: int = 480, fps: float = 15.0) -> None:
        self.target, self.api, self.kind, self.description = target, api, kind, description
        self.width, self.height, self.fps = width, height, fps
        self.live = kind in ("camera", "v4l2", "stream", "gstreamer")
        self._cap = None
        self._pacer: Optional[_Pacer] = None

    def open(self) -> None:
        cv2 = _cv2()
        _quiet_opencv()
        cap = cv2.VideoCapture(self.target, self.api)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.description}: {_open_hint(self.kind)}")
        if self.kind in ("camera", "v4l2"):
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        # a one-frame driver buffer where supported; the reader drains it anyway
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if self.kind == "video":
            native = cap.get(cv2.CAP_PROP_FPS)
            self._pacer = _Pacer(native if 1 <= native <= 120 else self.fps)
        self._cap = cap

    @property
    def nominal_fps(self) -> Optional[float]:
        if self._cap is None:
            return None
        value = self._cap.get(_cv2().CAP_PROP_FPS)
        return float(value) if value and value > 0 else None

    def read(self) -> Optional[np.ndarray]:
        if self._cap is None:
            return None
        if self._pacer is not None:
            self._pacer.wait()
        ok, image = self._cap.read()
        if not ok and self.kind == "video":  # end of file: loop for demos
            self._cap.set(_cv2().CAP_PROP_POS_FRAMES, 0)
            ok, image = self._cap.read()
            if not ok:
                # the seek did nothing (a one-frame video): from the start by a new
                # capture, not a "lost camera" reopened every half second
                self._cap.release()
                self._cap = _cv2().VideoCapture(self.target, self.api)
                ok, image = self._cap.read()
        if not ok or image is None:
            return None
        return as_bgr(image)

    def release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def as_bgr(image: np.ndarray) -> np.ndarray:
    """The BGR uint8 frame of what a driver handed out in another common layout: grey
    (H x W or H x W x 1), BGRA or BGRx (4 channels), 16-bit (a GStreamer GRAY16 or a
    raw sensor format, its top 8 bits). Anything else is left as it is, for the door's
    frame check to refuse with its shape and type."""
    cv2 = _cv2()
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.dtype != np.uint8:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


class ReplayDevice(Device):
    """Pictures (image files, a folder, an HDF5 file) handed out by ``get``, looped at ``fps``."""

    def __init__(self, count: int, get: Callable[[int], Optional[np.ndarray]], fps: float,
                 description: str) -> None:
        if count < 1:  # a modulo by zero on every read, reported as a lost camera
            raise SourceError(f"{description} holds no frames: nothing to replay")
        self.count, self._get, self.description = count, get, description
        self.nominal_fps = float(fps)
        self._pacer = _Pacer(fps)
        self._index = 0

    def open(self) -> None:
        self._index = 0

    def read(self) -> Optional[np.ndarray]:
        self._pacer.wait()
        image = self._get(self._index % self.count)
        self._index += 1
        return image

    @property
    def scaled_from(self):
        """The last picture's own (width, height) if it was scaled to the camera's size."""
        return getattr(self._get, "last_scaled_from", None)


def _quiet_opencv() -> None:
    """OpenCV's own stderr warnings on a failed open would garble the one-line error."""
    try:
        from cv2.utils import logging as cv_logging

        cv_logging.setLogLevel(cv_logging.LOG_LEVEL_ERROR)
    except (ImportError, AttributeError):
        pass


def _open_hint(kind: str) -> str:
    return {
        "camera": "no such camera, or it is busy (another process holds it?); "
                  "list cameras with `v4l2-ctl --list-devices`",
        "v4l2": "the device is missing, busy, or not readable by this user "
                "(add the user to the 'video' group)",
        "stream": "the URL is unreachable, wrong, or needs credentials",
        "gstreamer": "the pipeline failed; test it with `gst-launch-1.0` and make sure it ends "
                     "in `appsink`",
        "video": "not a video OpenCV can decode",
    }.get(kind, "unknown reason")


# --------------------------------------------------------------------------
# Pictures to replay: image files, a folder, a course HDF5 file.


def _probe_picture(path: Path) -> str:
    """Why ``path`` cannot be replayed ("" if it can), decoding at most 1/8 of it."""
    try:
        data = read_bytes(path)  # its size from its header: a reduced PNG decode is a whole one
    except ValueError as exc:
        return str(exc)
    cv2 = _cv2()
    try:  # at 1/8 scale (cheap for JPEG: the DCT is scaled), before any full decode
        small = cv2.imdecode(data, cv2.IMREAD_REDUCED_COLOR_8)
    except cv2.error:
        return "not a decodable image"
    return "" if small is not None else "not a decodable image"


def _read_picture(path: Path) -> Optional[np.ndarray]:
    """The whole picture (after a probe said it is sane), or None if it is gone, broken
    or, swapped since the probe, too large: its header is read again before decoding."""
    try:
        return read_picture(path)
    except ValueError:
        return None


def read_pictures(path: Path) -> Tuple[int, Callable[[int], Optional[np.ndarray]], List[str]]:
    """(count, get, left out) for an image file or folder; ``get(i)`` decodes picture i when
    asked; "left out" names each entry of a folder that is not replayed, and why.

    Nothing is kept decoded: a folder of huge photos costs one picture's memory at a time,
    not all of them (issue 16 item 7). Each file is probed once here so that unreadable
    and absurdly large ones are skipped with a warning (a single file: refused). A folder's
    pictures are those every tool reads (:mod:`.pictures`): hidden files are not frames.
    """
    if not path.is_dir():
        why = _probe_picture(path)
        if why:
            raise SourceError(f"image {path} cannot be read or decoded ({why})")
        return 1, lambda _i: _read_picture(path), []
    try:
        listing = list_pictures(path)
    except OSError as exc:
        raise SourceError(f"image folder {path} cannot be listed ({exc.strerror or exc})") from None
    if listing.passed_over:
        log.warning("%s", listing.passed_over_line())
    files = listing.pictures
    if not files:
        raise SourceError(f"image folder {path} holds no images ({', '.join(PICTURE_EXTS)})")
    usable, bad = [], []
    for file in files:
        why = _probe_picture(file)
        (bad.append(f"{file.name} ({why})") if why else usable.append(file))
    if bad:
        log.warning("skipped %d image(s) in %s: %s", len(bad), path, ", ".join(bad[:5]))
    if not usable:
        raise SourceError(f"image folder {path}: none of its {len(files)} images can be decoded "
                          f"at a usable size (first: {bad[0]})")
    passed_over = [f"{entry.name} ({why})" for entry, why in listing.passed_over]
    return len(usable), lambda i: _read_picture(usable[i]), bad + passed_over


def h5_frames(path: Path, width: int, height: int) -> Tuple[int, Callable[[int], np.ndarray]]:
    from .datasets import load_hdf5
    from .errors import DataError

    try:
        data = load_hdf5(path)
    except DataError as exc:
        raise SourceError(str(exc)) from None
    images = data.images  # small thumbnails; scaled per frame to save memory
    if len(images) == 0:
        raise SourceError(f"{path} holds no frames: nothing to replay")
    return len(images), lambda i: to_door_frame(images[i], width, height)


def gstreamer_available() -> bool:
    info = _cv2().getBuildInformation()
    for line in info.splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False
