"""The audit trail: every unlock logged with its scores, plus optional snapshots.

Each opening is logged at INFO with journal fields (reason, the scores and
frame numbers that carried the vote, face box, frame age, model sha256).
With ``[service] snapshot_on_unlock`` a JPEG of the deciding frame is kept in
``[service] state_dir`` (annotated when the vision code's ``annotate`` module
is available), and the oldest snapshots are deleted so the folder stays within
``snapshot_max_count`` files and ``snapshot_max_mb`` megabytes.

Auditing never blocks or breaks the door: a failed write is a warning.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence

log = logging.getLogger("happyhouse.daemon.audit")

PREFIX = "unlock-"
SUFFIX = ".jpg"


def _annotator() -> Optional[Callable[[Any, Any], Any]]:
    """``annotate(image_bgr, observation) -> image_bgr`` from the vision code, if present."""
    try:
        from . import annotate
    except ImportError:
        return None
    return getattr(annotate, "annotate", None)


class Audit:
    def __init__(self, state_dir: str, snapshots: bool = False, max_count: int = 200,
                 max_mb: float = 50.0, wall_clock: Callable[[], float] = time.time) -> None:
        self.state_dir = Path(state_dir)
        self.snapshots = bool(snapshots)
        self.max_count = int(max_count)
        self.max_bytes = int(float(max_mb) * 1_000_000)
        self._wall = wall_clock
        self.unlocks = 0

    @classmethod
    def from_config(cls, cfg) -> "Audit":
        return cls(cfg.service_state_dir, cfg.service_snapshot_on_unlock,
                   cfg.service_snapshot_max_count, cfg.service_snapshot_max_mb)

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
        if frame_age is not None:
            fields["frame_age_ms"] = f"{frame_age * 1000:.0f}"
        if model_sha256:
            fields["model_sha256"] = model_sha256
        snapshot = None
        if self.snapshots and frame is not None:
            snapshot = self._snapshot(frame, observation)
            if snapshot is not None:
                fields["snapshot"] = str(snapshot)
        log.info("unlock #%d (%s) for %.1fs; scores %s", self.unlocks, reason, granted,
                 fields["scores"] or "-", extra={"journal": fields})
        return snapshot

    # -- snapshots -----------------------------------------------------------
    def _snapshot(self, frame: Any, observation: Any) -> Optional[Path]:
        try:
            import cv2

            image = frame.image
            annotate = _annotator()
            if annotate is not None and observation is not None:
                image = annotate(image, observation, when=self._wall())
            ok, jpeg = cv2.imencode(SUFFIX, image, [cv2.IMWRITE_JPEG_QUALITY, 85])
            if not ok:
                raise ValueError("JPEG encoding failed")
            self.state_dir.mkdir(parents=True, exist_ok=True)
            path = self.state_dir / self._name(getattr(frame, "seq", 0))
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(jpeg.tobytes())
            os.replace(tmp, path)  # never leave a half-written JPEG behind
        except Exception as exc:
            log.warning("unlock snapshot not saved in %s: %s", self.state_dir, exc)
            return None
        self.prune()
        return path if path.exists() else None

    def _name(self, seq: int) -> str:
        stamp = datetime.fromtimestamp(self._wall(), tz=timezone.utc)
        # sortable by name = sortable by time (mtime can be reset by a copy)
        return f"{PREFIX}{stamp:%Y%m%dT%H%M%S.%f}Z-{int(seq):08d}{SUFFIX}"

    def snapshot_files(self) -> List[Path]:
        """Snapshots oldest first."""
        if not self.state_dir.is_dir():
            return []
        return sorted(p for p in self.state_dir.iterdir()
                      if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX) and p.is_file())

    def prune(self) -> int:
        """Delete the oldest snapshots beyond the count and byte caps; returns how many."""
        files = self.snapshot_files()
        sizes = []
        for p in files:
            try:
                sizes.append(p.stat().st_size)
            except OSError:
                sizes.append(0)
        total = sum(sizes)
        removed = 0
        for path, size in zip(files, sizes):
            if len(files) - removed <= self.max_count and total <= self.max_bytes:
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


def box_text(box: Any) -> str:
    """A face box as x,y,w,h whatever its type (tuple or a Box with attributes)."""
    if all(hasattr(box, a) for a in ("x", "y", "w", "h")):
        return f"{box.x},{box.y},{box.w},{box.h}"
    try:
        return ",".join(str(int(v)) for v in box)
    except TypeError:
        return str(box)
