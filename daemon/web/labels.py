"""The collect folder as the page sees it: list frames, serve them, label or discard.

The layout is what ``happyhouse-adapt`` reads (``happy/``, ``not_happy/``) plus
``unsorted/`` for frames the page collected and nobody labelled yet (adapt
ignores it). Every frame is ``<stem>.png`` with its ``<stem>.json`` sidecar
(:mod:`..collect`).

No path from a request reaches the file system: a request names a folder from
:data:`FOLDERS` and a file name matching :data:`NAME_RE` (no separators, no
leading dot), and every open is relative to a folder descriptor opened once
with ``O_NOFOLLOW``, itself with ``O_NOFOLLOW``: a symbolic link (planted in
the folder, or the folder itself) is refused, never followed. Moves are renames
inside that one folder tree; a label and its sidecar change together.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import threading
from pathlib import Path
from typing import Dict, List, Optional

from ..collect import FRAME_EXT, UNSORTED, frame_order
from ..datasets import CLASSES
from ..errors import DataError
from ..filesafety import make_folder

FOLDERS = (UNSORTED,) + tuple(reversed(CLASSES))  # unsorted, happy, not_happy
ACTIONS = tuple(reversed(CLASSES)) + ("discard",)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,100}\.png$")
MAX_FRAME_BYTES = 16 * 1024 * 1024
MAX_SIDECAR_BYTES = 64 * 1024
LISTED = 300


class LabelError(DataError):
    """A label request that cannot be done (unknown frame, bad name); the page shows it."""


class CollectFolder:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()
        self._lock = threading.Lock()  # one move at a time: a double click moves once
        make_folder(self.root, "[web] collect_dir", mode=0o700)
        if self.root.is_symlink() or not self.root.is_dir():
            raise DataError(f"[web] collect_dir {self.root} is not a folder")
        for name in FOLDERS:  # made now; the descriptor is not kept (3 leaked per page start)
            try:
                os.close(self._open_dir(name, create=True))
            except OSError as exc:  # a full or read-only disk: the page is off, not the door
                raise DataError(f"[web] collect_dir {self.root / name} cannot be made: "
                                f"{exc.strerror or exc}") from None

    # -- folders -------------------------------------------------------------
    def _open_dir(self, name: str, create: bool = False) -> int:
        if name not in FOLDERS:
            raise LabelError(f"unknown folder {name!r}")
        root = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o700, dir_fd=root)
            try:
                return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                               dir_fd=root)
            except OSError as exc:
                raise LabelError(f"{self.root / name} is not a plain folder "
                                 f"({exc.strerror or exc})") from None
        finally:
            os.close(root)

    def path(self, folder: str) -> Path:
        if folder not in FOLDERS:
            raise LabelError(f"unknown folder {folder!r}")
        return self.root / folder

    # -- reading -------------------------------------------------------------
    def listing(self, limit: Optional[int] = None) -> Dict[str, object]:
        """The frames of each folder, newest first (at most ``limit``, :data:`LISTED`),
        with their sidecar's facts; ``counts`` says how many each folder holds."""
        limit = LISTED if limit is None else limit
        frames: List[Dict[str, object]] = []
        counts: Dict[str, int] = {}
        for folder in FOLDERS:
            fd = self._open_dir(folder)
            try:
                # by serial, not by the time in the name: a clock stepped back at boot
                # sorted new frames under old ones, past the listing's limit
                names = sorted((n for n in os.listdir(fd) if NAME_RE.match(n)),
                               key=frame_order, reverse=True)
                counts[folder] = len(names)
                for name in names[:limit]:
                    side = self._sidecar(fd, name) or {}
                    frames.append({"folder": folder, "name": name, "time": side.get("time"),
                                   "score": side.get("score"), "face": side.get("face"),
                                   "damaged": not whole_png(fd, name)})
            finally:
                os.close(fd)
        return {"root": str(self.root), "counts": counts, "frames": frames}

    def frame_bytes(self, folder: str, name: str) -> bytes:
        """The PNG of one frame (a regular file in that folder, never through a link)."""
        self._check_name(name)
        fd = self._open_dir(folder)
        try:
            return read_regular(fd, name, MAX_FRAME_BYTES)
        finally:
            os.close(fd)

    # -- labelling -----------------------------------------------------------
    def label(self, folder: str, name: str, action: str) -> Optional[str]:
        """Move a frame (and its sidecar) to ``happy``/``not_happy``, or delete both
        (``discard``). Returns the folder it is now in (None: discarded)."""
        if action not in ACTIONS:
            raise LabelError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
        self._check_name(name)
        stem = name[:-len(FRAME_EXT)]
        with self._lock:
            src = self._open_dir(folder)
            try:
                _regular(src, name)  # the frame exists and is a plain file
                if action == "discard":
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(stem + ".json", dir_fd=src)
                    os.unlink(name, dir_fd=src)
                    return None
                if action == folder:
                    return folder
                if not whole_png(src, name):
                    # a frame a power cut left empty or cut short: counted as a face to
                    # learn from, it is nothing adapt can read
                    raise LabelError(f"{folder}/{name} is damaged (empty or cut short, a power "
                                     f"cut?): discard it")
                dst = self._open_dir(action)
                try:
                    if _exists(dst, name):
                        raise LabelError(f"{action}/{name} exists already")
                    side = self._sidecar(src, name)
                    if side is not None:  # the sidecar says the new label, then moves first
                        side["label"] = action
                        # whole or not at all, over any sidecar a failed move left without
                        # its frame (a full disk left an empty one: "File exists" forever)
                        _write_whole(dst, stem + ".json",
                                     (json.dumps(side, indent=1) + "\n").encode())
                        os.unlink(stem + ".json", dir_fd=src)
                    elif _exists(src, stem + ".json"):
                        # a sidecar that does not read (cut short) goes with its frame as it
                        # is: left behind, it stayed in unsorted/ without one
                        os.rename(stem + ".json", stem + ".json", src_dir_fd=src, dst_dir_fd=dst)
                    os.rename(name, name, src_dir_fd=src, dst_dir_fd=dst)
                finally:
                    os.close(dst)
                return action
            except FileNotFoundError:
                raise LabelError(f"{folder}/{name} is gone (labelled in another window?)") from None
            except OSError as exc:
                raise LabelError(f"cannot move {folder}/{name}: {exc.strerror or exc}") from None
            finally:
                os.close(src)

    # -- helpers -------------------------------------------------------------
    @staticmethod
    def _check_name(name: str) -> None:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise LabelError("not a frame name")

    @staticmethod
    def _sidecar(fd: int, name: str) -> Optional[dict]:
        try:
            data = read_regular(fd, name[:-len(FRAME_EXT)] + ".json", MAX_SIDECAR_BYTES)
            value = json.loads(data)
        except (OSError, LabelError, ValueError):
            return None
        return value if isinstance(value, dict) else None


def _regular(dir_fd: int, name: str) -> os.stat_result:
    info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISREG(info.st_mode):
        raise LabelError(f"{name} is not a plain file")
    return info


#: a PNG's first 8 bytes, and its last chunk's type (IEND, 12 bytes from the end)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def whole_png(dir_fd: int, name: str) -> bool:
    """Whether ``name`` starts as a PNG and ends with its IEND chunk (a frame a power cut
    left empty or cut short does not); reads 20 bytes, never the whole file."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        if size < len(PNG_SIGNATURE) + 12:
            return False
        return (os.pread(fd, len(PNG_SIGNATURE), 0) == PNG_SIGNATURE
                and os.pread(fd, 12, size - 12)[4:8] == b"IEND")
    except OSError:
        return False
    finally:
        os.close(fd)


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def read_regular(dir_fd: int, name: str, limit: int) -> bytes:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dir_fd)
    except FileNotFoundError:
        raise LabelError(f"no frame {name}") from None
    except OSError as exc:
        raise LabelError(f"{name} cannot be read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LabelError(f"{name} is not a plain file")
        if info.st_size > limit:
            raise LabelError(f"{name} is larger than {limit} bytes")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_file(path: Path, limit: int) -> bytes:
    """A regular file at ``path`` (the last part never followed as a link), at most ``limit``."""
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return read_regular(fd, path.name, limit)
    finally:
        os.close(fd)


def _write_whole(dir_fd: int, name: str, data: bytes) -> None:
    """``name`` in ``dir_fd`` holding ``data``, or unchanged: a private file beside it
    (``.<name>.tmp``, which a collection session clears) renamed into place."""
    tmp = f".{name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=dir_fd)
    try:
        try:
            view = memoryview(data)
            while view:  # one write may take only part of it
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
