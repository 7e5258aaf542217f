"""The audit trail: every unlock logged with its scores, plus optional snapshots.

Each opening is logged at INFO with journal fields (reason, the scores and
frame numbers that carried the vote, face box, frame age, model sha256).
With ``[service] snapshot_on_unlock`` a JPEG of the deciding frame is kept in
``[service] state_dir`` (annotated when the vision code's ``annotate`` module
is available), and the oldest snapshots are deleted so the folder stays within
``snapshot_max_count`` files and ``snapshot_max_mb`` megabytes. Snapshots are
ordered by a serial in their names, never by the wall clock (which can step
back); room is made before a write, a failed write leaves nothing behind, and
files and the folder this process creates are private (0600/0700).

Auditing never blocks or breaks the door: a failed write is a warning, and the
unlock's log line is written whatever happened to the image.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

log = logging.getLogger("happyhouse.daemon.audit")

PREFIX = "unlock-"
SUFFIX = ".jpg"
#: snapshot names carry a serial that only counts up:
#: unlock-<UTC time>Z-n<serial>-<frame>.jpg (before it: unlock-<UTC time>Z-<frame>.jpg)
SERIAL_MARK, SERIAL_DIGITS = "n", 8


def _annotator() -> Optional[Callable[[Any, Any], Any]]:
    """``annotate(image_bgr, observation) -> image_bgr`` from the vision code, if present."""
    try:
        from . import annotate
    except ImportError:
        return None
    return getattr(annotate, "annotate", None)


class Audit:
    def __init__(self, state_dir: str, snapshots: bool = False, max_count: int = 200,
                 max_mb: float = 50.0, wall_clock: Callable[[], float] = time.time,
                 numbered_from: int = 0) -> None:
        self.state_dir = Path(state_dir)
        self.snapshots = bool(snapshots)
        self.max_count = int(max_count)
        self.max_bytes = int(float(max_mb) * 1_000_000)
        self._wall = wall_clock
        self._room_refused = False  # a retry after deleting old snapshots failed: no more
        # openings are numbered per process: a reload's new Audit goes on from the last one
        self.unlocks = int(numbered_from)

    @classmethod
    def from_config(cls, cfg, numbered_from: int = 0) -> "Audit":
        return cls(cfg.service_state_dir, cfg.service_snapshot_on_unlock,
                   cfg.service_snapshot_max_count, cfg.service_snapshot_max_mb,
                   numbered_from=numbered_from)

    def record_unlock(self, reason: str, granted: float, ballots: Sequence[Any] = (),
                      frame: Any = None, observation: Any = None, frame_age: Optional[float] = None,
                      model_sha256: Optional[str] = None) -> Optional[Path]:
        """Log one opening; returns the snapshot path when one was written."""
        self.unlocks += 1
        scores = [b.score for b in ballots]
        fields = {
            "event": "unlock",
            "reason": reason,
            "unlock_seconds": f"{granted:.2f}",
            "scores": ",".join("-" if s is None else f"{s:.3f}" for s in scores),
            "seqs": ",".join(str(b.seq) for b in ballots),
            "happy_votes": sum(bool(b.happy) for b in ballots),
        }
        face = getattr(observation, "face", None)
        if face is not None:
            fields["face"] = box_text(face)
        faces = int(getattr(observation, "faces", 0) or 0)
        if faces > 1:  # who opened it: the largest of several faces in view
            fields["faces_in_view"] = faces
        if frame_age is not None:
            fields["frame_age_ms"] = f"{frame_age * 1000:.0f}"
        if model_sha256:
            fields["model_sha256"] = model_sha256
        snapshot = None
        try:
            if self.snapshots and frame is not None:
                snapshot = self._snapshot(frame, observation)
                fields["snapshot"] = str(snapshot) if snapshot is not None else "not saved"
        finally:  # the audit line is written whatever happened to the image
            log.info("unlock #%d (%s) for %.1fs; scores %s", self.unlocks, reason, granted,
                     fields["scores"] or "-", extra={"journal": fields})
        return snapshot

    # -- snapshots -----------------------------------------------------------
    def _snapshot(self, frame: Any, observation: Any) -> Optional[Path]:
        """Write one snapshot; never raises (a failed write is a warning, nothing left behind)."""
        tmp: Optional[Path] = None
        try:
            import cv2

            image = frame.image
            annotate = _annotator()
            if annotate is not None and observation is not None:
                image = annotate(image, observation, when=self._wall())
            ok, jpeg = cv2.imencode(SUFFIX, image, [cv2.IMWRITE_JPEG_QUALITY, 85])
            if not ok:
                raise ValueError("JPEG encoding failed")
            data = jpeg.tobytes()
            self._make_state_dir()
            serial = self._next_serial()
            path = self.state_dir / self._name(serial, getattr(frame, "seq", 0))
            # room first: on a full disk the oldest snapshot goes, not the newest
            self.prune(reserve=len(data))
            tmp = path.with_suffix(".tmp")
            try:
                _write_private(tmp, data)
            except OSError as exc:
                # the caps cannot see the disk fill up (the journal, the page's frames): the
                # oldest snapshots go to make room for this one, never the newest
                _unlink_quietly(tmp)
                gone = (self._make_room(len(data)) if exc.errno in (errno.ENOSPC, errno.EDQUOT)
                        else None)
                if not gone:
                    raise
                try:
                    _write_private(tmp, data)
                except OSError:
                    # others keep the disk full: no more old snapshots go for nothing until
                    # a new one is kept again
                    self._room_refused = True
                    raise
                log.warning("the state disk is full: deleted the oldest unlock snapshot(s) %s "
                            "to keep this one", ", ".join(gone))
            os.replace(tmp, path)  # never leave a half-written JPEG behind
            tmp = None
            self._room_refused = False
        except Exception as exc:
            log.warning("unlock snapshot not saved in %s: %s", self.state_dir, exc)
            return None
        finally:
            if tmp is not None:
                _unlink_quietly(tmp)
        if len(data) > self.max_bytes:
            log.warning("unlock snapshot %s (%d bytes) alone exceeds snapshot_max_mb; kept "
                        "anyway, raise [service] snapshot_max_mb", path.name, len(data))
        return path if path.exists() else None

    def _make_room(self, needed: int) -> List[str]:
        """The names of the oldest snapshots deleted so that ``needed`` bytes are free; none
        ([]) when the disk is not short of them (the write failed for another reason), when
        a retry after deleting failed since the last kept snapshot, or when there are not
        enough to delete: a disk others keep full would otherwise eat them all."""
        try:
            free = shutil.disk_usage(self.state_dir).free
        except OSError:
            return []
        if self._room_refused or free >= needed:
            return []
        files = self.snapshot_files()
        sizes = _sizes(files)
        if free + sum(sizes) < needed:
            return []
        gone = []
        for oldest, size in zip(files, sizes):
            if free >= needed:
                break
            try:
                oldest.unlink()
            except OSError:
                continue
            free += size
            gone.append(oldest.name)
        return gone

    def _make_state_dir(self) -> None:
        """The folder, private (0700) when this process creates it, whatever the umask."""
        if self.state_dir.is_dir():
            return
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)

    def _name(self, serial: int, seq: int) -> str:
        stamp = datetime.fromtimestamp(self._wall(), tz=timezone.utc)
        # the serial orders snapshots (and pruning); the wall time is for people only: a
        # clock stepped back, or a file left from a machine whose clock ran ahead, must
        # never make a new snapshot look older than an old one
        return (f"{PREFIX}{stamp:%Y%m%dT%H%M%S.%f}Z-{SERIAL_MARK}{serial:0{SERIAL_DIGITS}d}-"
                f"{int(seq):08d}{SUFFIX}")

    def _next_serial(self) -> int:
        serials = [_serial(p) for p in self.snapshot_files()]
        return max([s for s in serials if s is not None] + [0]) + 1

    def snapshot_files(self) -> List[Path]:
        """Snapshots oldest first: by serial; unnumbered (older-format) names before all."""
        if not self.state_dir.is_dir():
            return []
        files = [p for p in self.state_dir.iterdir()
                 if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX) and p.is_file()]
        return sorted(files, key=lambda p: (_serial(p) or 0, p.name))

    def prune(self, reserve: int = 0) -> int:
        """Delete the oldest snapshots beyond the caps; ``reserve``: bytes of one snapshot
        about to be written, which then needs a place too. Returns how many went."""
        for stale in self.state_dir.glob(f"{PREFIX}*.tmp") if self.state_dir.is_dir() else ():
            _unlink_quietly(stale)  # a write cut short (crash, full disk) by an earlier run
        files = self.snapshot_files()
        sizes = _sizes(files)
        extra = 1 if reserve else 0
        total = sum(sizes) + reserve
        removed = 0
        for path, size in zip(files, sizes):
            if len(files) + extra - removed <= self.max_count and total <= self.max_bytes:
                break
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot delete old snapshot %s: %s", path, exc)
                continue
            removed += 1
            total -= size
        return removed


def _sizes(files: Sequence[Path]) -> List[int]:
    """Each file's size in bytes (0 for one that went meanwhile)."""
    sizes = []
    for path in files:
        try:
            sizes.append(path.stat().st_size)
        except OSError:
            sizes.append(0)
    return sizes


def _serial(path: Path) -> Optional[int]:
    """The serial of a snapshot's name; None for a name from before serials."""
    parts = path.name[len(PREFIX):-len(SUFFIX)].split("-")
    mark = parts[1] if len(parts) == 3 else ""
    digits = mark[len(SERIAL_MARK):]
    plain = digits.isascii() and digits.isdigit()  # '²' passes isdigit(), not int()
    return int(digits) if mark.startswith(SERIAL_MARK) and plain else None


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by this user only (0600 whatever the umask) and write ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


def box_text(box: Any) -> str:
    """A face box as x,y,w,h whatever its type (tuple or a Box with attributes)."""
    if all(hasattr(box, a) for a in ("x", "y", "w", "h")):
        return f"{box.x},{box.y},{box.w},{box.h}"
    try:
        return ",".join(str(int(v)) for v in box)
    except TypeError:
        return str(box)
