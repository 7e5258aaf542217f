"""What the page says about the door: the status (as JSON) and the last error.

The same facts as systemd's STATUS line and ``--check``: state, frame rate, frame
age, model sha256 and threshold, uptime, openings, the last error. Read from the
running :class:`~..service.Service` without taking anything from the loop: each
attribute read is one reference, and a door being rebuilt (a reload) reads as
``reloading``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, Optional

from .. import __version__
from ..logtext import clean


#: the page's own logger: its lines (a wrong token, a dropped viewer) are not the door's errors
PAGE_LOGGER = "happyhouse.daemon.web"


class LastError(logging.Handler):
    """Keeps the newest WARNING-or-worse line of the door's loggers (for the page).

    The page's own lines are left out: anyone who can reach the page can send it a
    wrong token, and that must not push a real fault ("camera lost") off it.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._lock_last = threading.Lock()
        self.last: Optional[Dict[str, Any]] = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == PAGE_LOGGER or record.name.startswith(PAGE_LOGGER + "."):
            return False
        return bool(super().filter(record))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = clean(record.getMessage())
        except Exception:  # a bad format string must not break logging
            text = clean(str(record.msg))
        with self._lock_last:
            self.last = {"time": record.created, "level": record.levelname, "message": text[:500]}

    def attach(self, logger_name: str = "happyhouse") -> "LastError":
        logging.getLogger(logger_name).addHandler(self)
        return self

    def detach(self, logger_name: str = "happyhouse") -> None:
        logging.getLogger(logger_name).removeHandler(self)


def status(service, last_error: Optional[LastError] = None,
           wall_clock=time.time) -> Dict[str, Any]:
    """The door's status as plain JSON-able values (see docs/operations.md, "The door's page")."""
    door = service.door
    pipeline = service.parts.pipeline
    now = service.clock()
    started = service.started_at
    facts: Dict[str, Any] = {
        "state": door.state.value if door is not None else "reloading",
        "fps": round(door.fps, 2) if door is not None else 0.0,
        "frame_age_s": None,
        "last_decision": door.last_decision if door is not None else "reloading",
        "votes": door.vote_text if door is not None else "",
        "status": door.status_text() if door is not None else "reloading (latch locked)",
        "unlocks": service.unlocks,
        "frames": service.frames,
        "uptime_s": None if started is None else round(now - started, 1),
        "model_sha256": getattr(pipeline, "model_sha256", None),
        "threshold": getattr(pipeline, "threshold", None),
        "face_gate": getattr(getattr(pipeline, "gate", None), "description", None),
        "camera": clean(getattr(service.parts.source, "description", "") or ""),
        "last_error": last_error.last if last_error is not None else None,
        "version": __version__,
        "time": wall_clock(),
    }
    if door is not None:
        age = door.frame_age(now)
        facts["frame_age_s"] = None if age is None else round(age, 3)
    return facts
