"""Picture files: which files of a folder are pictures, and reading one within bounds.

One rule for every tool that reads picture files: the door replaying them
(``--source`` a picture or a folder: the service, ``--once``, ``--check``,
``--collect``) and the dataset loaders (``happyhouse-eval``, ``-train``, ``-adapt``,
``-convert``). They had three lists of extensions, two ideas of a hidden file and
two size rules, so one folder was 5 frames to ``--check`` and 4 to eval, a TIFF
replayed at the door was dropped by adapt without a word, and a 20000x20000 PNG of
1 MB took eval to 2.4 GB where the door refused it from its header.

* A picture is a file named with one of :data:`PICTURE_EXTS`, or any other
  non-hidden file whose first bytes are one of them (a JPEG saved as ``.HEIC``), unless
  it is named as a video or a RAW file (:data:`NOT_PICTURES`); a real HEIC photo is
  named as one OpenCV cannot read.
* Hidden files (a name starting with ``.``: macOS's ``._x.png`` and ``.DS_Store``,
  an editor's backup) are not the house's frames: ``ls`` does not show them.
* A picture's size comes from its header before anything is decoded: at most
  :data:`MAX_PICTURE_SIDE` on a side, at least :data:`MIN_PICTURE_SIDE`, at most
  :data:`MAX_PICTURE_BYTES` on disk; a header that does not say is refused.
* Only a regular file is read (a FIFO named ``.png`` blocked the read for good).

Nothing here imports OpenCV at import time; :func:`decode` does, when asked.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from .picturesize import READ_KINDS, picture_kind, picture_size

#: the names of picture files (a GIF too: as a video it was not scaled to the camera size)
PICTURE_EXTS = (".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
#: a picture may be at most this wide and high: the largest frame a camera is configured
#: for (camera.width/height allow 4096); anything larger is refused, not decoded
MAX_PICTURE_SIDE = 4096
#: and its file at most this large (a 4096x4096 PNG of noise is about 50 MB)
MAX_PICTURE_BYTES = 64 * 1024 * 1024
#: and at least this wide and high: a smaller one cannot hold a face (OpenCV's reduced
#: decode also asserts on it)
MIN_PICTURE_SIDE = 8
#: what a HEIC photo is told
HEIF_HINT = "a HEIC/HEIF photo, which OpenCV does not read: export it as JPEG"
#: names never read as pictures whatever their first bytes say: a motion-JPEG recording
#: starts as a JPEG does (it was replayed as one still picture), a camera's RAW file as a
#: TIFF does (its thumbnail would have been read as a frame)
NOT_PICTURES = (".mjpeg", ".mjpg", ".avi", ".mp4", ".m4v", ".mkv", ".mov", ".webm", ".h264",
                ".264", ".ts", ".nef", ".nrw", ".dng", ".arw", ".cr2", ".cr3", ".orf", ".rw2",
                ".raf", ".pef", ".srw")


def hidden(path: Path) -> bool:
    """A name ``ls`` does not show: not a frame of the house (``._x.png``, ``.DS_Store``)."""
    return path.name.startswith(".")


@dataclass
class Listing:
    """A folder's pictures, in name order, and what in it looked like one but is not read."""

    folder: Path
    pictures: List[Path] = field(default_factory=list)
    #: (entry, why it is not read): subfolders, links to nothing, HEIC photos
    passed_over: List[Tuple[Path, str]] = field(default_factory=list)

    def passed_over_line(self, shown: int = 3) -> str:
        """The entries not read, in words ("" if none)."""
        if not self.passed_over:
            return ""
        first = "; ".join(f"{p.name} ({why})" for p, why in self.passed_over[:shown])
        more = len(self.passed_over) - shown
        return (f"{len(self.passed_over)} entr{'y' if len(self.passed_over) == 1 else 'ies'} "
                f"of {self.folder} not read: {first}" + (f"; and {more} more" if more > 0 else ""))


def list_pictures(folder: Path) -> Listing:
    """The pictures directly in ``folder`` (OSError if it cannot be listed).

    Other files (the collected frames' JSON sidecars, notes) are left alone without a
    word; a subfolder, a link to nothing and a HEIC photo are named in
    :attr:`Listing.passed_over`, since a technician may have meant them as frames.
    """
    listing = Listing(Path(folder))
    for entry in sorted(Path(folder).iterdir()):
        if hidden(entry):
            continue
        if entry.is_dir():
            listing.passed_over.append((entry, "a folder: pictures in subfolders are not read"))
        elif not entry.exists():
            listing.passed_over.append((entry, "a link to nothing"))
        elif entry.suffix.lower() in PICTURE_EXTS:
            listing.pictures.append(entry)
        else:
            kind = file_kind(entry)
            if kind in READ_KINDS:
                listing.pictures.append(entry)
            elif kind == "heif":
                listing.passed_over.append((entry, HEIF_HINT))
    return listing


def _kind_of(path: Path) -> Optional[str]:
    """:func:`picture_kind` of a regular file's first bytes (None for anything else)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as handle:
            return picture_kind(handle.read(32))
    except OSError:
        return None


def file_kind(path: Path) -> Optional[str]:
    """What a named file holds by its first bytes (:func:`picture_kind`; None if not a
    picture, unreadable, not a regular file, or named as a video or RAW file)."""
    path = Path(path)
    return None if path.suffix.lower() in NOT_PICTURES else _kind_of(path)


def read_bytes(path: Path) -> np.ndarray:
    """A picture file's bytes (ValueError with the reason when it must not be decoded)."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            # a FIFO named .png blocked the read forever, a device never ends
            raise ValueError("not a regular file")
        if info.st_size > MAX_PICTURE_BYTES:
            raise ValueError(f"{info.st_size / 1e6:.0f} MB, more than "
                             f"{MAX_PICTURE_BYTES / 1e6:.0f} MB")
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ValueError(exc.strerror or str(exc)) from None
    if not data.size:
        raise ValueError("empty file")
    check_size(data)
    return data


def size_problem(size: Optional[Tuple[int, int]]) -> str:
    """Why a picture whose header says ``size`` (None: says nothing) must not be decoded."""
    if size is None:
        return "not a decodable image"  # its header does not say its size: cut short?
    if max(size) > MAX_PICTURE_SIDE:
        return (f"{size[0]}x{size[1]} pixels, larger than {MAX_PICTURE_SIDE}x{MAX_PICTURE_SIDE}"
                f": scale it down")
    if min(size) < MIN_PICTURE_SIDE:
        return f"{size[0]}x{size[1]} pixels, under {MIN_PICTURE_SIDE} on a side: too small to hold a face"
    return ""


def check_size(data: np.ndarray) -> Tuple[int, int]:
    """(width, height) from the header of a picture file's bytes, else ValueError."""
    size = picture_size(data)
    why = size_problem(size)
    if why:
        if size is None and picture_kind(data) == "heif":
            why = HEIF_HINT
        raise ValueError(why)
    return size


def decode(data: np.ndarray) -> np.ndarray:
    """The BGR picture of bytes :func:`check_size` passed (ValueError if OpenCV cannot).

    OpenCV turns a photo by its EXIF orientation, as a phone shows it."""
    import cv2

    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as exc:  # a header OpenCV will not trust raises instead of None
        raise ValueError(f"not a decodable image (OpenCV refused it: {exc.err})") from None
    if image is None:
        raise ValueError("not a decodable image")
    if max(image.shape[:2]) > MAX_PICTURE_SIDE:  # an EXIF turn keeps the sides checked
        raise ValueError(f"{image.shape[1]}x{image.shape[0]} pixels, larger than "
                         f"{MAX_PICTURE_SIDE}x{MAX_PICTURE_SIDE}: scale it down")
    return image


def read_picture(path: Path) -> np.ndarray:
    """The BGR picture in ``path``, read within the rules above (ValueError: why not)."""
    return decode(read_bytes(path))
