"""``happyhouse-daemon --once``: one capture, gate and score, for a technician.

Opens the source, discards ``camera.settle_frames`` frames so auto-exposure
settles, scores the next fresh frame and prints a summary (or ``--json``).
``--snapshot PATH`` saves the annotated frame. The latch is NOT touched
unless ``--actuate`` is given, and then only to unlock for
``decision.unlock_seconds`` on a happy verdict and relock.

Exit codes: 0 happy (a fresh frame the door would open for), 1 not happy, no face, or a
frame the door would not decide on (stale, or a still picture the camera repeated), 2 a
fixable error.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timezone
from typing import Optional

from .annotate import annotate, write_snapshot
from .errors import SourceError
from .latch import claimed_latch, is_mock_factory, mock_configured
from .logtext import decimal
from .pipeline import Pipeline
from .sources import RECORDINGS, open_source, refuse_recording_on_a_real_latch

log = logging.getLogger(__name__)

EXIT_HAPPY, EXIT_NOT_HAPPY = 0, 1


def capture(source, cfg, settle_frames: Optional[int] = None):
    """Discard the settling frames and return the next fresh one (SourceError if none)."""
    wait = cfg.camera_stall_timeout
    settle = cfg.camera_settle_frames if settle_frames is None else settle_frames
    for _ in range(settle + 1):
        frame = source.latest(wait)
        if frame is None:
            why = getattr(source, "why_silent", lambda: None)()
            raise SourceError(f"no {'new ' if why else ''}frame from {source.description} within "
                              f"{wait:g} s (camera.stall_timeout): " + (why or "is it delivering?"))
    return frame


def _wall_time(frame) -> float:
    """The capture time on the wall clock (frames carry time.monotonic())."""
    return time.time() - (time.monotonic() - frame.timestamp)


def run_once(cfg, *, snapshot: Optional[str] = None, actuate: bool = False,
             as_json: bool = False, source=None, pipeline=None, pin_factory=None,
             out=None, sleep=time.sleep) -> int:
    """One observation: printed (``as_json``), saved annotated to ``snapshot``, and with
    ``actuate`` a happy verdict opens the door once. Parts can be injected (tests);
    otherwise built from ``cfg``."""
    out = out if out is not None else sys.stdout
    # the source first: a wrong --source fails fast, before the model is loaded
    source = source if source is not None else open_source(cfg.camera_source, cfg)
    if actuate:  # said before a picture is scored, whatever its verdict
        refuse_recording_on_a_real_latch(source, is_mock_factory(pin_factory)
                                         if pin_factory is not None else mock_configured(cfg))
    source.open()
    try:
        pipeline = pipeline if pipeline is not None else Pipeline.from_config(cfg)
        frame = capture(source, cfg)
        # as the door judges a frame: its age when it arrived (a fake keeps its own clock)
        age = frame.age(getattr(source, "clock", time.monotonic)())
    finally:
        source.close()
    # a picture replayed (not a camera) is never stale: it is what it is, at any age
    unfit = unfit_for_a_decision(frame, age if getattr(source, "kind", None) not in RECORDINGS
                                 else 0.0, cfg)
    # a picture is replayed at the camera's size (sources.CameraSized), as the service
    # replays it and as happyhouse-eval scores a whole frame: one verdict in all three
    scaled_from = getattr(frame, "scaled_from", None)
    obs = pipeline.observe(frame)
    wall = _wall_time(frame)
    result = _result(cfg, source, pipeline, frame, obs, wall)
    result["scaled_from"] = list(scaled_from) if scaled_from else None
    result["no_face_reason"] = None if obs.face is not None else pipeline.gate.why_no_face(frame.image)
    if snapshot:
        path = write_snapshot(snapshot, annotate(frame.image, obs, pipeline.threshold, wall))
        result["snapshot"] = str(path)
    result["actuated"] = False
    # a happy verdict on a frame the door would not decide on does not open it either
    # (exit 1, and --actuate opens nothing)
    result["unfit"] = unfit
    opens = obs.happy and unfit is None
    if actuate and obs.happy and not opens:
        log.warning("--once --actuate: not opened: the frame is %s", result["unfit"])
    elif actuate and opens:
        result["actuated"] = open_once(cfg, pin_factory, sleep, source)
    log.info("once: %s", result["verdict"], extra={"journal": {
        "score": result["score"], "face": result["face"], "verdict": result["verdict"]}})
    if as_json:
        out.write(json.dumps(result) + "\n")
    else:
        out.write(_human(result))
    return EXIT_HAPPY if opens else EXIT_NOT_HAPPY


def unfit_for_a_decision(frame, age: float, cfg) -> Optional[str]:
    """Why the door would not decide on ``frame`` (None: it would): a still picture the
    camera repeated, or a frame older than ``camera.stale_after`` when it arrived."""
    if getattr(frame, "still", False):
        return "a still picture the camera repeated"
    if age > cfg.camera_stale_after:
        return f"{age:.2f} s old (camera.stale_after {cfg.camera_stale_after:g} s)"
    return None


def open_once(cfg, pin_factory=None, sleep=time.sleep, source=None) -> bool:
    """Unlock for ``decision.unlock_seconds``, then lock; the latch relocks on any error.
    A recording (``source``) may open a mock latch only."""
    with claimed_latch(cfg, pin_factory) as latch:
        refuse_recording_on_a_real_latch(source, is_mock_factory(latch.factory))
        granted = latch.unlock(cfg.decision_unlock_seconds)
        log.warning("--once --actuate: latch %s unlocked for %.1f s", cfg.latch_pin, granted)
        try:
            sleep(granted)
        finally:
            latch.lock()
    return True


def _result(cfg, source, pipeline, frame, obs, wall: float) -> dict:
    height, width = frame.image.shape[:2]
    verdict = "no face" if obs.face is None else ("happy" if obs.happy else "not happy")
    return {
        **obs.to_dict(), "verdict": verdict, "threshold": pipeline.threshold,
        "model_sha256": pipeline.model_sha256, "runtime": pipeline.runtime,
        "runtime_version": pipeline.classifier.runtime_version,
        "face_gate": pipeline.gate.description,
        "source": getattr(source, "description", str(cfg.camera_source)),
        "frame_size": [int(width), int(height)],
        "frame_age_ms": round((time.monotonic() - frame.timestamp) * 1000.0, 1),
        "timestamp": datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds"),
    }


def _human(r: dict) -> str:
    if r["face"] is None:
        head = f"NO FACE: {r['no_face_reason']}; nothing to score (the door stays locked)"
    else:
        x, y, w, h = r["face"]
        sign = ">=" if r["happy"] else "<"
        head = (f"{r['verdict'].upper()}: score {decimal(r['score'])} {sign} threshold "
                f"{decimal(r['threshold'])}; face {w}x{h} at ({x},{y})")
    lines = [head,
             f"  frame   {r['frame_size'][0]}x{r['frame_size'][1]} from {r['source']} "
             f"at {r['timestamp']}"]
    if r.get("scaled_from"):
        lines.append(f"  scaled from {r['scaled_from'][0]}x{r['scaled_from'][1]} to "
                     f"{r['frame_size'][0]}x{r['frame_size'][1]} (the camera size), as "
                     f"happyhouse-eval scores whole frames and the service replays pictures")
    lines += [f"  timing  {r['latency_ms']:.1f} ms (" +
              ", ".join(f"{k} {v:.1f}" for k, v in r["stages_ms"].items()) + ")",
              f"  model   {r['model_sha256'][:16]} on {r['runtime']} {r['runtime_version']}; "
              f"gate {r['face_gate']}"]
    if r.get("unfit"):
        lines.append(f"  frame   not one the door would decide on: {r['unfit']}")
    if r.get("snapshot"):
        lines.append(f"  snapshot {r['snapshot']}")
    lines.append("  latch   " + ("UNLOCKED then relocked (--actuate)" if r["actuated"]
                                 else "not moved"))
    return "\n".join(lines) + "\n"
