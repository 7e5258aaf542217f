"""Collecting frames from the page: the door's own frames, kept for labelling.

While the door service runs it holds the camera, so ``--collect`` cannot run
beside it; the page collects instead, from the frames the door already
decided on (:attr:`~..door.Door.latest`: no second camera open, nothing asked of
the loop). Its own thread keeps a frame only when the gate found a face, at
most one per ``every`` seconds and never one too like the last kept, and writes
it to ``unsorted/`` with the same clean PNG and sidecar as ``--collect``
(:func:`..collect.frame_record`), within a disk budget. The technician then
labels each one on the page.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, Optional

from ..collect import Folder, UNSORTED, camera_settings, frame_record, near_duplicate, thumbnail
from ..errors import HappyHouseError

MAX_COUNT = 200
EVERY = 0.5
BUDGET_MB = 500.0
#: a session that finds no face frame for this long stops and says so
GIVE_UP = 120.0


class Capture:
    def __init__(self, service, root, every: float = EVERY, budget_mb: float = BUDGET_MB) -> None:
        self.service = service
        self.root = root
        self.every = every
        self.budget_mb = budget_mb
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.state: Dict[str, Any] = {"active": False, "kept": 0, "count": 0, "message": ""}

    def start(self, count: int) -> Dict[str, Any]:
        """Begin keeping ``count`` face frames (one session at a time)."""
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
            raise ValueError(f"count must be a whole number from 1 to {MAX_COUNT}")
        with self._lock:
            if self.state["active"]:
                raise ValueError("a collection is already running")
            self._stop.clear()
            self.state = {"active": True, "kept": 0, "count": count,
                          "message": f"collecting {count} frames: look at the camera"}
            self._thread = threading.Thread(target=self._run, args=(count,), daemon=True,
                                            name="happyhouse-page-collect")
            self._thread.start()
        return self.snapshot()

    def cancel(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def snapshot(self) -> Dict[str, Any]:
        with self._lock:
            return dict(self.state)

    def _set(self, **values: Any) -> None:
        with self._lock:
            self.state.update(values)

    def _run(self, count: int) -> None:
        kept, last_thumb, last_seen, last_kept = 0, None, None, None
        waiting_since = time.monotonic()
        try:
            folder = Folder(self.root, UNSORTED, self.budget_mb)
            while kept < count and not self._stop.wait(0.05):
                door = self.service.door
                latest = door.latest if door is not None else None
                if latest is None or latest[1] is None or latest[0] is last_seen:
                    if time.monotonic() - waiting_since > GIVE_UP:
                        self._set(message=f"stopped after {kept}/{count}: no face for "
                                          f"{GIVE_UP:.0f} s")
                        return
                    continue
                frame, obs = latest
                last_seen = frame
                now = time.monotonic()
                if obs.face is None or (last_kept is not None and now - last_kept < self.every):
                    continue
                thumb = thumbnail(frame.image)
                if near_duplicate(last_thumb, thumb):
                    continue
                # the pipeline that scored this frame (the door's own), not the one a reload
                # put in place since: a sidecar named the new model beside the old score
                pipeline = door.pipeline
                stamp, encoded, sidecar = frame_record(
                    frame, obs, pipeline, camera_settings(self.service.cfg, self.service.parts.source),
                    UNSORTED)
                why = folder.room_for(len(encoded) + 4096)
                if why is not None:
                    self._set(message=f"stopped after {kept}/{count}: {why}")
                    return
                folder.write(stamp, encoded, sidecar)
                kept, last_thumb, last_kept, waiting_since = kept + 1, thumb, now, now
                self._set(kept=kept, message=f"{kept}/{count} frames kept")
            self._set(message=(f"done: {kept} frames in unsorted/, label them below"
                               if kept >= count else f"stopped after {kept}/{count}"))
        except HappyHouseError as exc:
            self._set(message=f"stopped after {kept}/{count}: {exc}")
        except Exception as exc:  # never take the door down
            import logging

            logging.getLogger(__name__).exception("page collection failed")
            self._set(message=f"stopped after {kept}/{count}: internal error ({type(exc).__name__})")
        finally:
            self._set(active=False)
