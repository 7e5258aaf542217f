"""``happyhouse-daemon --collect DIR --label happy|not_happy``: a house's own frames.

What ``happyhouse-adapt`` learns from: clean whole frames of this door's
camera, in the class-folder layout it reads (``DIR/happy/``,
``DIR/not_happy/``), each with a JSON sidecar (face box, score of the model
the door runs now, capture time, camera settings). Only frames where the
door's face gate finds a face are kept, a frame too like the last kept one is
skipped (a person standing still gives one example, not forty), and at most
one frame is kept per ``--every`` seconds.

Safety: no pin factory is opened at all (the latch is never touched), and the
tool refuses to run while the door service holds the camera and the pin: the
CLI holds the state folder's lock (:mod:`.statelock`) around it, as the
service does. Disk: every frame is written to a temporary name and
renamed into place with its sidecar, so a full disk or a stop leaves no half
frame; the session stops, with one line saying why, when it would use more than
``--budget-mb`` or leave less than :data:`RESERVE_MB` free.

Exit codes: 0 all frames collected, 1 stopped early (the disk budget used up, a
recording read to its end), 2 a fixable error (camera, model, folder, disk), 130 or
128 + N interrupted by Ctrl-C or signal N (every frame kept so far is whole).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import sys
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np

from .datasets import CLASSES
from .endsignals import signal_name
from .errors import DataError, Interrupted
from .filesafety import make_folder
from .pictures import list_pictures

log = logging.getLogger(__name__)

EXIT_DONE, EXIT_STOPPED = 0, 1
#: what a house is asked to do for each label (the enrolment script)
PROMPTS = {"happy": "keep smiling",
           "not_happy": "neutral face, talk, look away: anything but a smile"}
#: a kept frame must differ from the last kept one by this mean absolute grey level
#: (0-255) on a 32x24 thumbnail: sensor noise alone stays well below it
DUPLICATE_LEVEL = 3.0
#: free space the session always leaves on the disk (the journal and the service need it)
RESERVE_MB = 100
FRAME_EXT = ".png"
#: frames the door's page collected, waiting for the technician's label (adapt ignores them)
UNSORTED = "unsorted"
#: a kept frame is named ``<serial>-<UTC time>``: the serial counts up across the three
#: folders, so the order frames were kept in (the page lists newest first) and a name's
#: uniqueness never rest on a wall clock that a Pi without a clock steps at boot
SERIAL_RE = re.compile(r"^(\d+)-\d{8}T")


def thumbnail(image_bgr: np.ndarray) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (32, 24), interpolation=cv2.INTER_AREA).astype(np.float32)


def near_duplicate(a: Optional[np.ndarray], b: np.ndarray, level: float = DUPLICATE_LEVEL) -> bool:
    return a is not None and float(np.mean(np.abs(a - b))) < level


#: the largest --budget-mb accepted (1 TB): more is a typo, not a plan
MAX_BUDGET_MB = 1_000_000


def frame_order(name: str) -> Tuple[int, str]:
    """Sort key of a frame's file name, oldest first: its serial (names from before
    serials, ``<time>-<ms>-<seq>``, count as 0), then the name."""
    found = SERIAL_RE.match(name)
    return (int(found.group(1)) if found else 0, name)


def last_serial(root: Path) -> int:
    """The highest serial among the frames under ``root``'s class and unsorted folders."""
    highest = 0
    for label in (UNSORTED,) + CLASSES:
        with contextlib.suppress(OSError):  # a folder not made yet holds no frame
            with os.scandir(root / label) as entries:
                for entry in entries:
                    if entry.name.endswith(FRAME_EXT):
                        highest = max(highest, frame_order(entry.name)[0])
    return highest


#: the hidden file in a collection folder that writers of frames take turns on
SERIAL_LOCK = ".serial.lock"


@contextlib.contextmanager
def _taking_turns(root: Path):
    """An exclusive flock on ``root``'s :data:`SERIAL_LOCK` (waited for: a frame's write
    is short); without one where it cannot be made (the write then says why it fails)."""
    try:
        fd = os.open(root / SERIAL_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                     0o600)
    except OSError:
        fd = None
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_only_mount(path: Path) -> bool:
    """Whether ``path`` lies on a file system mounted read-only."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


class Folder:
    """Where frames go, atomically, within a disk budget."""

    def __init__(self, root: Path, label: str, budget_mb: float,
                 disk_free: Callable[[Path], int] = lambda p: shutil.disk_usage(p).free) -> None:
        if label not in CLASSES + (UNSORTED,):
            raise DataError(f"--label must be one of {', '.join(CLASSES)}, got {label!r}")
        self.root, self.label = Path(root).expanduser(), label
        self.folder = self.root / label
        # NaN fails both comparisons, so it is refused here too (not a traceback at int())
        if not 0 < budget_mb <= MAX_BUDGET_MB:
            raise DataError(f"--budget-mb must be more than 0 and at most {MAX_BUDGET_MB} MB, "
                            f"got {budget_mb:g}")
        self.budget = int(budget_mb * 1024 * 1024)
        self.used = 0
        self.disk_free = disk_free
        make_folder(self.folder, "--collect folder")
        # checked before the camera and the model load: a folder this user cannot write
        # is one line at the start, not after the first face
        if not os.access(self.folder, os.R_OK | os.W_OK | os.X_OK):
            if read_only_mount(self.folder):  # "run as its owner" misled: no user can write it
                raise DataError(f"--collect folder {self.folder} is on a read-only file system "
                                f"(mounted so, or turned read-only after a disk error: check "
                                f"the card): give a DIR on a writable disk")
            raise DataError(f"--collect folder {self.folder} is not readable and writable by "
                            f"this user: run as its owner (sudo -u happyhouse) or give another DIR")
        try:
            for stray in self.folder.glob(".*.tmp"):  # a session killed mid-write
                if stray.is_file() or stray.is_symlink():
                    stray.unlink()
            # what adapt will read of it (pictures.py): macOS's ._x.png copies were counted,
            # a phone's .jpg was not
            self.existing = len(list_pictures(self.folder).pictures)
            self.serial = last_serial(self.root)
        except OSError as exc:
            raise DataError(f"--collect folder {self.folder} cannot be read: "
                            f"{exc.strerror or exc}") from None

    def room_for(self, size: int) -> Optional[str]:
        """None, or why ``size`` more bytes must not be written."""
        if self.used + size > self.budget:
            return (f"the disk budget of {self.budget / 2**20:.0f} MB for this session is used "
                    f"up (--budget-mb)")
        free = self.disk_free(self.folder)
        if free - size < RESERVE_MB * 2**20:
            return (f"the disk holding {self.folder} has {free / 2**20:.0f} MB free; collecting "
                    f"stops {RESERVE_MB} MB before it is full")
        return None

    def write(self, stamp: str, encoded: bytes, sidecar: dict) -> Path:
        """Frame and sidecar appear together or not at all (DataError on a full disk),
        named by the next serial and ``stamp``; never over a frame already there. Two
        programs writing into one folder (two sessions, the door's page) take turns: each
        serial is given once (both gave 000004 to 000011)."""
        with _taking_turns(self.root):
            self.serial = max(self.serial, last_serial(self.root))
            return self._write(stamp, encoded, sidecar)

    def _write(self, stamp: str, encoded: bytes, sidecar: dict) -> Path:
        while True:
            self.serial += 1
            stem = f"{self.serial:06d}-{stamp}"
            image = self.folder / f"{stem}{FRAME_EXT}"
            side = self.folder / f"{stem}.json"
            if not (os.path.lexists(image) or os.path.lexists(side)):
                break
        tmp_image = self.folder / f".{stem}{FRAME_EXT}.tmp"
        tmp_side = self.folder / f".{stem}.json.tmp"
        text = (json.dumps(sidecar, indent=1) + "\n").encode()
        try:
            for path, data in ((tmp_image, encoded), (tmp_side, text)):
                with open(path, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp_side, side)
            os.replace(tmp_image, image)  # the frame last: a frame never lacks its sidecar
        except OSError as exc:
            for path in (tmp_image, tmp_side, side):
                with contextlib.suppress(OSError):
                    path.unlink()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DataError(f"the disk holding {self.folder} is full: frame {stem} was not "
                                f"written (nothing half-written is left)") from None
            raise DataError(f"cannot write {image}: {exc.strerror or exc}") from None
        self.used += len(encoded) + len(text)
        return image


def camera_settings(cfg, source) -> dict:
    return {"source": getattr(source, "description", str(cfg.camera_source)),
            "width": cfg.camera_width, "height": cfg.camera_height, "fps": cfg.camera_fps}


def collect(cfg, folder: Folder, count: int, every: float, *, source, pipeline,
            out=None, clock: Callable[[], float] = time.monotonic) -> int:
    """Keep ``count`` face frames in ``folder``; returns how many were kept."""
    from .sources import RECORDINGS

    out = out if out is not None else sys.stdout
    kept, last_thumb, last_time = 0, None, None
    skipped = {"no face": 0, "too like the last": 0, "still": 0, "copies": 0}
    # a recording (pictures, an HDF5 file, a video) is replayed in a loop: it is read once,
    # every frame of it offered (a single picture waited for good after "1/3", and a folder
    # of 6 pictures gave "done: 10 frames", 4 of them copies). --every is a live camera's:
    # a replay paced at the camera's rate lined up with it and offered one picture a pass
    recording = getattr(source, "kind", None) in RECORDINGS
    one_pass = getattr(source, "replay_frames", None) if recording else None
    offered = set()
    settings = camera_settings(cfg, source)
    prompt = PROMPTS[folder.label]
    out.write(f"collecting {count} {folder.label} frames into {folder.folder} "
              f"({folder.existing} there already): {prompt}\n")
    out.flush()
    while kept < count:
        frame = source.latest(cfg.camera_stall_timeout)
        if frame is None:
            from .errors import SourceError

            raise SourceError(f"no frame from {settings['source']} within "
                              f"{cfg.camera_stall_timeout:g} s (camera.stall_timeout)")
        if one_pass is not None and frame.seq > one_pass:
            out.write(f"stopped after {kept}/{count} {folder.label} frames: every frame of "
                      f"{settings['source']} was read once ({skipped['no face']} without a face, "
                      f"{skipped['too like the last']} too like the last kept, "
                      f"{skipped['copies']} copies of a frame read before)\n")
            return kept
        now = clock()
        if not recording and last_time is not None and now - last_time < every:
            continue
        if getattr(frame, "still", False):  # a covered or dark camera repeating itself
            skipped["still"] += 1
            continue
        if recording:  # the same picture twice in a folder (IMG_1.jpg, "IMG_1 (1).jpg")
            picture = (frame.image.shape, zlib.crc32(frame.image.tobytes()))
            if picture in offered:
                skipped["copies"] += 1
                continue
            offered.add(picture)
        obs = pipeline.observe(frame)
        if obs.face is None:
            skipped["no face"] += 1
            continue
        thumb = thumbnail(frame.image)
        if near_duplicate(last_thumb, thumb):
            skipped["too like the last"] += 1
            continue
        stamp, encoded, sidecar = frame_record(frame, obs, pipeline, settings, folder.label)
        why = folder.room_for(len(encoded) + 4096)
        if why is not None:
            out.write(f"stopped after {kept}/{count} {folder.label} frames: {why}\n")
            return kept
        folder.write(stamp, encoded, sidecar)
        kept += 1
        last_thumb, last_time = thumb, now
        out.write(f"{kept}/{count} {folder.label} frames, {prompt}\n")
        out.flush()
    still = (f", {skipped['still']} still pictures (a dark or covered camera)"
             if skipped["still"] else "")
    still += f", {skipped['copies']} copies of a frame read before" if skipped["copies"] else ""
    out.write(f"done: {kept} {folder.label} frames in {folder.folder} (skipped "
              f"{skipped['no face']} without a face, {skipped['too like the last']} too like "
              f"the last kept{still})\n")
    return kept


def holds_collected_frames(root) -> bool:
    """Does the class-folder dataset ``root`` hold frames ``--collect`` or the door's page
    wrote (whole camera frames, each ``<stem>.png`` beside its ``<stem>.json``), not face
    crops? One such frame in ``happy/`` or ``not_happy/`` is enough."""
    for label in CLASSES:
        try:
            with os.scandir(Path(root).expanduser() / label) as entries:
                names = {e.name for e in entries}
        except OSError:
            continue
        if any(n.endswith(FRAME_EXT) and n[:-len(FRAME_EXT)] + ".json" in names for n in names):
            return True
    return False


def frame_record(frame, obs, pipeline, settings: dict, label: str):
    """``(stamp, PNG bytes, sidecar)`` of one kept frame: the frame as captured (no
    drawing), its capture time for its name (:meth:`Folder.write` puts the serial before
    it), with what the door made of it."""
    import cv2

    ok, encoded = cv2.imencode(FRAME_EXT, frame.image)
    if not ok:
        raise DataError("OpenCV could not encode the frame as PNG")
    wall = time.time() - (time.monotonic() - frame.timestamp)
    stamp = datetime.fromtimestamp(wall, timezone.utc)
    name_time = stamp.strftime("%Y%m%dT%H%M%S") + f"-{int(stamp.microsecond / 1000):03d}"
    sidecar = {
        "label": label, "face": [int(v) for v in obs.face],
        "score": None if obs.score is None else round(float(obs.score), 6),
        "parts": {k: round(float(v), 6) for k, v in obs.parts.items()},
        "threshold": pipeline.threshold, "model_sha256": pipeline.model_sha256,
        "time": stamp.isoformat(timespec="milliseconds"), "camera": settings,
        "face_gate": pipeline.gate.description}
    return name_time, encoded.tobytes(), sidecar


def run_collect(cfg, args, *, source=None, pipeline=None, out=None,
                disk_free: Optional[Callable[[Path], int]] = None) -> int:
    """``--collect``: parts can be injected (tests); otherwise built from ``cfg``.

    Never builds a latch or a pin factory: collecting frames cannot open the door.
    """
    from .pipeline import Pipeline
    from .sources import open_source

    count = 40 if args.count is None else args.count
    every = 0.5 if args.every is None else args.every
    if not 1 <= count <= 10000:
        raise DataError(f"--count must be 1 to 10000, got {count}")
    if not 0 <= every <= 3600:
        raise DataError(f"--every must be 0 to 3600 seconds, got {every:g}")
    if args.label is None:
        raise DataError("--collect needs --label happy or --label not_happy")
    kwargs = {} if disk_free is None else {"disk_free": disk_free}
    folder = Folder(Path(args.collect), args.label,
                    500 if args.budget_mb is None else args.budget_mb, **kwargs)
    source = source if source is not None else open_source(cfg.camera_source, cfg)
    source.open()
    try:
        # door=False: collecting never drives the latch, and gathering the frames to
        # rebuild a bundle too poor to arm must work with that very bundle
        pipeline = pipeline if pipeline is not None else Pipeline.from_config(cfg, door=False)
        try:
            kept = collect(cfg, folder, count, every, source=source, pipeline=pipeline, out=out)
        except (KeyboardInterrupt, Interrupted) as exc:  # Ctrl-C, kill, an SSH session lost
            ctrl_c = not isinstance(exc, Interrupted) or exc.signum == signal.SIGINT
            why = "Ctrl-C" if ctrl_c else signal_name(exc.signum)
            (out or sys.stdout).write(f"stopped ({why}); every frame kept so far is whole\n")
            # as every tool ends when interrupted: a script tells it from a budget used up
            return 128 + (signal.SIGINT if ctrl_c else exc.signum)
    finally:
        source.close()
    return EXIT_DONE if kept >= count else EXIT_STOPPED
