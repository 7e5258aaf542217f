"""The door's recent decisions, kept in memory for the door's page.

The journal keeps the full record (:mod:`.audit`, :mod:`.door`); this is the
short, bounded list a technician looks at: each sighting (a face arrives,
starts or stops smiling, leaves) and each opening, newest last, with the
wall-clock time, the verdict, the scores and the unlock snapshot if one was
saved. The door appends from its loop thread (a deque append under a lock
held for microseconds); readers copy it (:meth:`DecisionTrail.recent`).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Optional

#: entries kept: a few hours of a busy door's sightings
TRAIL_KEPT = 200


class DecisionTrail:
    def __init__(self, kept: int = TRAIL_KEPT, wall_clock: Callable[[], float] = time.time) -> None:
        self._entries: Deque[Dict[str, Any]] = deque(maxlen=kept)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._wall = wall_clock

    def add(self, verdict: str, *, score: Optional[float] = None,
            scores: Optional[List[Optional[float]]] = None, face: Any = None,
            reason: Optional[str] = None, snapshot: Optional[Path] = None) -> int:
        """Record one decision; returns its id (ids only count up)."""
        entry: Dict[str, Any] = {
            "time": self._wall(), "verdict": verdict,
            "score": None if score is None else round(float(score), 4),
            "scores": [None if s is None else round(float(s), 4) for s in (scores or [])],
            "face": None if face is None else [int(v) for v in face],
            "reason": reason, "snapshot": snapshot,
        }
        with self._lock:
            entry["id"] = next(self._ids)
            self._entries.append(entry)
        return entry["id"]

    def recent(self, limit: int = TRAIL_KEPT) -> List[Dict[str, Any]]:
        """Copies of the newest ``limit`` entries, newest first."""
        with self._lock:
            entries = list(self._entries)[-limit:] if limit > 0 else []
        return [dict(e) for e in reversed(entries)]

    def snapshot_of(self, entry_id: int) -> Optional[Path]:
        """The snapshot file an entry recorded (the only way the page reaches one)."""
        with self._lock:
            for entry in self._entries:
                if entry["id"] == entry_id:
                    return entry["snapshot"]
        return None
