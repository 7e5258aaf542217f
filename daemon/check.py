"""``happyhouse-daemon --check``: a go/no-go report for the technician at the door.

Each check is independent (one failing does not hide the others) and ends as
``ok``, ``warn`` (works, but look at it), ``fail`` (the door must not be
armed like this) or ``n/a`` (not available on this machine, e.g. no Pi
thermal sensor on a laptop; never a failure). Go = no ``fail``.

The latch is only claimed (locked) and released; it is pulsed open for one
second only with ``--test-latch``.

Exit codes: 0 go, 1 no-go, 2 a fixable error before checks could run.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .errors import HappyHouseError
from .facegate import BRIGHT, DARK, FaceGate
from .filesafety import exposure
from .latch import claimed_latch, mock_configured
from .logtext import clean, decimal
from .once import capture
from .pipeline import Pipeline
from .preprocess import check_frame
from .sources import RECORDINGS, open_source

OK, WARN, FAIL, NA = "ok", "warn", "fail", "n/a"
THERMAL_PATH = "/sys/class/thermal/thermal_zone0/temp"
#: warn above this SoC temperature (a Pi throttles at 80-85 C)
HOT_C = 75.0
#: a frame darker/brighter than this mean grey level, or blurrier than this
#: Laplacian variance, is worth a look (exposure, lens, focus, dirt)
BLURRY = 30.0
MIN_FREE_MB = 20.0
#: vcgencmd get_throttled bits -> meaning
THROTTLE_BITS = {0: "under-voltage now", 1: "ARM frequency capped now", 2: "throttled now",
                 3: "soft temperature limit now", 16: "under-voltage has occurred",
                 17: "frequency capping has occurred", 18: "throttling has occurred",
                 19: "soft temperature limit has occurred"}


@dataclass
class Item:
    name: str
    status: str
    detail: str
    data: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "detail": self.detail, **self.data}


def _guard(name: str, func: Callable[[], Item]) -> Item:
    try:
        return func()
    except HappyHouseError as exc:
        return Item(name, FAIL, str(exc))
    except Exception as exc:  # a diagnostic tool reports, it does not crash
        return Item(name, FAIL, f"unexpected {type(exc).__name__}: {exc}")


def check_config(cfg) -> Item:
    where = cfg.source_path or "built-in defaults (no config file)"
    problems, notes = exposure(cfg.source_path, "config") if cfg.source_path else ([], [])
    detail = "; ".join([f"valid: {where}", *problems, *notes])
    return Item("config", FAIL if problems else WARN if notes else OK, detail,
                {"path": cfg.source_path})


def check_runtime() -> Item:
    """Which TFLite runtime, which release, on which machine; fail if known not to work."""
    from .runtime import importable_runtime, runtime_report

    name, _ = importable_runtime()
    found = runtime_report(name)
    python = ".".join(str(v) for v in sys.version_info[:3])
    detail = f"{name} {found['version']} on {found['machine']}, Python {python}"
    data = {"runtime": name, "version": found["version"], "machine": found["machine"],
            "python": python}
    if found["problem"]:
        return Item("runtime", FAIL, f"{detail}: known not to work: {found['problem']}", data)
    return Item("runtime", OK, detail, data)


def check_model(cfg, state: dict) -> Item:
    # a bundle whose recorded figures are too poor to arm a door is a ModelError here, as
    # in the service (Pipeline.from_config): FAIL with its line
    pipeline = Pipeline.from_config(cfg)
    state["pipeline"] = pipeline
    bundle = pipeline.bundle
    sealed = ("every file hash-checked" if bundle.manifest
              else f"{bundle.model_path.name} hash-checked (no file manifest)")
    detail = (f"{bundle.path} sha256 {bundle.sha256[:16]} ({sealed}), self-test passed on "
              f"{pipeline.runtime_label}, threshold {decimal(pipeline.threshold)} ({pipeline.stages})")
    writable, notes = exposure(bundle.path, "bundle")
    if cfg.model_threshold is not None and abs(cfg.model_threshold - bundle.threshold) > 1e-9:
        # a threshold left in the config: the door never opened at 0.999 and --check said OK
        notes.append(f"[model] threshold {decimal(cfg.model_threshold)} overrides the bundle's "
                     f"validated {decimal(bundle.threshold)}"
                     + (": fewer smiles open the door" if cfg.model_threshold > bundle.threshold
                        else ": more faces that are not smiling open it")
                     + "; remove it to use the bundle's")
    problems = writable
    detail = "; ".join([*writable, detail, *notes])
    return Item("model", FAIL if problems else WARN if notes else OK, detail,
                {"path": str(bundle.path), "sha256": bundle.sha256, "runtime": pipeline.runtime,
                 "threshold": pipeline.threshold, "stages": pipeline.stages,
                 "manifest": bool(bundle.manifest), "problems": problems})


def check_face_gate(cfg, state: dict) -> Item:
    pipeline = state.get("pipeline")
    gate = pipeline.gate if pipeline is not None else FaceGate.from_config(cfg)
    state["gate"] = gate
    shape = (cfg.camera_height, cfg.camera_width)
    floor = gate.smallest_face(shape)
    # min_face alone misled: the detector itself may not see faces that small (BlazeFace
    # shrinks the frame into 128x128 and finds nothing under ~15% of its longer side)
    sees = ("" if floor <= gate.min_face else
            f"; at {cfg.camera_width}x{cfg.camera_height} it sees faces from about {floor} px")
    return Item("face detector", OK, f"{gate.description} loaded ({gate.view}, "
                f"min face {gate.min_face} px{sees})",
                {"detector": gate.description, "smallest_face": floor})


def frame_quality(image: np.ndarray) -> Dict[str, float]:
    """Mean grey level (0-255) and sharpness (variance of the Laplacian)."""
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return {"brightness": round(float(grey.mean()), 1),
            "blur_var": round(float(cv2.Laplacian(grey, cv2.CV_64F).var()), 1)}


def check_camera(cfg, state: dict, source=None) -> Item:
    source = source if source is not None else open_source(cfg.camera_source, cfg)
    source.open()
    try:
        frame = capture(source, cfg)
        age_ms = (time.monotonic() - frame.timestamp) * 1000.0
        stamps = [frame.timestamp]
        for _ in range(4):  # a few more frames for the delivered rate
            nxt = source.latest(cfg.camera_stall_timeout)
            if nxt is None:
                break
            stamps.append(nxt.timestamp)
    finally:
        source.close()
    check_frame(frame.image)  # one clear line, not OpenCV's own error from frame_quality
    height, width = frame.image.shape[:2]
    fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] else None
    quality = frame_quality(frame.image)
    state["frame"] = frame
    data = {"source": source.description, "width": width, "height": height,
            "fps": None if fps is None else round(fps, 1),
            "nominal_fps": getattr(source, "nominal_fps", None),
            "frame_age_ms": round(age_ms, 1), **quality}
    gate = state.get("gate")
    if gate is not None:
        data["face"] = list(gate.find(frame.image) or []) or None
    notes = []
    if quality["brightness"] < DARK:
        notes.append("very dark: check lighting/exposure")
    elif quality["brightness"] > BRIGHT:
        notes.append("very bright: check backlight/exposure")
    if quality["blur_var"] < BLURRY:
        notes.append("blurry: check focus and clean the lens")
    if (width, height) != (cfg.camera_width, cfg.camera_height):
        notes.append(f"asked for {cfg.camera_width}x{cfg.camera_height}")
    left_out = getattr(source, "left_out", None) or []
    if left_out:
        notes.append(f"{len(left_out)} file(s) of the folder not replayed (first: "
                     f"{'; '.join(left_out[:2])})")
    # frames further apart than max_gap reset every vote: such a door can never open
    too_slow = (fps is not None and cfg.decision_votes_needed > 1
                and 1.0 / fps > cfg.decision_max_gap)
    if too_slow:
        notes.append(f"frames come {1.0 / fps:.2f} s apart, more than [decision] max_gap "
                     f"{cfg.decision_max_gap:g} s: the vote could never pass (raise camera.fps "
                     f"or max_gap)")
    detail = (f"{source.description}: {width}x{height}, "
              f"{'?' if fps is None else f'{fps:.1f}'} fps, frame age {age_ms:.0f} ms, "
              f"brightness {quality['brightness']:.0f}, blur var {quality['blur_var']:.0f}, "
              f"face {'seen' if data.get('face') else 'none in view'}")
    if notes:
        detail += "; " + "; ".join(notes)
    dark_or_blurry = quality["brightness"] < DARK or quality["blur_var"] < BLURRY
    recording = getattr(source, "kind", None) in RECORDINGS and not mock_configured(cfg)
    if recording:  # the service refuses it (refuse_recording_on_a_real_latch)
        detail += "; a recording, not a live camera: the service drives a real latch only " \
                  "from a live one ([latch] gpio = mock to replay it)"
    if too_slow or recording:
        return Item("camera", FAIL, detail, data)
    return Item("camera", WARN if dark_or_blurry or quality["brightness"] > BRIGHT or left_out
                else OK, detail, data)


def check_gpio(cfg, test_latch: bool = False, pin_factory=None,
               sleep: Callable[[float], None] = time.sleep) -> Item:
    from .statelock import holder

    # --test-latch holds the state lock itself (the CLI took it); plain --check takes
    # none, so it leaves alone a pin that a running service drives
    busy = None if test_latch else holder(cfg.service_state_dir)
    if busy is not None:
        return Item("gpio", WARN, f"pin {cfg.latch_pin} not claimed: {busy} holds the latch "
                    f"(stop it to test the pin)", {"pin": cfg.latch_pin, "pulsed": False})
    pulsed = False
    with claimed_latch(cfg, pin_factory) as latch:
        name = type(latch.pin.factory).__name__
        if test_latch:
            latch.unlock(1.0)
            try:
                sleep(1.0)
            finally:
                latch.lock()
            pulsed = True
    detail = f"{name}: pin {cfg.latch_pin} claimed locked and released"
    if pulsed:
        detail += "; latch pulsed open for 1 s (--test-latch)"
    status = WARN if name == "MockFactory" else OK
    if status == WARN:
        detail += " (mock GPIO: no real latch is driven)"
    return Item("gpio", status, detail, {"factory": name, "pin": cfg.latch_pin,
                                         "pulsed": pulsed})


def check_temperature(path: str = THERMAL_PATH) -> Item:
    try:
        celsius = int(Path(path).read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return Item("temperature", NA, f"no thermal sensor at {path}")
    status = WARN if celsius >= HOT_C else OK
    extra = "; add a heatsink/fan" if status == WARN else ""
    return Item("temperature", status, f"{celsius:.1f} C{extra}", {"celsius": celsius})


def check_throttling(run: Optional[Callable[[], str]] = None) -> Item:
    if run is None:
        if shutil.which("vcgencmd") is None:
            return Item("throttling", NA, "vcgencmd not found (not a Raspberry Pi?)")

        def run() -> str:
            return subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True,
                                  timeout=5).stdout
    try:
        text = run().strip()
        value = int(text.split("=", 1)[1], 16)
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return Item("throttling", NA, "vcgencmd get_throttled gave no answer")
    flags = [meaning for bit, meaning in THROTTLE_BITS.items() if value & (1 << bit)]
    if not flags:
        return Item("throttling", OK, "never throttled (0x0)", {"throttled": hex(value)})
    now = value & 0xF
    return Item("throttling", FAIL if now & 0x1 else WARN,
                f"{hex(value)}: {', '.join(flags)} (use the official power supply)",
                {"throttled": hex(value)})


def write_refused(folder: Path) -> Optional[str]:
    """Why a file cannot be made in ``folder`` (None: one was made, and removed). Tried, not
    asked: a card the kernel turned read-only after an error (ext4 ``errors=remount-ro``)
    passed ``os.access`` while every write failed, so --check said GO to a door that could
    not start."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return "is not writable by this user (read-only, or another owner)"
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        if exc.errno == errno.EROFS:
            return ("is on a read-only file system (mounted read-only, or turned read-only "
                    "after a disk error: check the card with fsck)")
        return f"cannot hold a new file: {exc.strerror or exc}"
    return None


def check_disk(cfg) -> Item:
    wanted = Path(cfg.service_state_dir)
    folder = wanted
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free_mb = shutil.disk_usage(folder).free / 1e6
    where = str(wanted) if folder == wanted else f"{wanted} (not created yet; checked {folder})"
    data = {"path": str(folder), "free_mb": round(free_mb, 1)}
    refused = write_refused(folder)
    if refused is not None:
        # the service takes its lock (one program per latch) in the state folder and
        # refuses to start without it: a read-only mount or another owner is NO-GO now,
        # not a restart loop later (with mock GPIO the service goes on without the lock)
        why = f"{where}: {folder} {refused}; the service keeps its lock and snapshots there"
        return Item("disk", WARN if cfg.latch_gpio == "mock" else FAIL, why, data)
    if free_mb < MIN_FREE_MB:
        return Item("disk", FAIL, f"{where}: only {free_mb:.0f} MB free", data)
    if cfg.service_snapshot_on_unlock and free_mb < cfg.service_snapshot_max_mb:
        return Item("disk", WARN, f"{where}: {free_mb:.0f} MB free, less than "
                    f"snapshot_max_mb ({cfg.service_snapshot_max_mb:g})", data)
    return Item("disk", OK, f"{where}: {free_mb:.0f} MB free", data)


def check_page(cfg) -> Item:
    """The door's page as the service would start it: its address and its token file."""
    if not cfg.web_enabled:
        return Item("web page", NA, "off ([web] enabled = false)")
    from .web.keys import parse_address
    from .web.server import load_page_token

    host, port = parse_address(cfg.web_address)
    token = load_page_token(cfg, host)  # ConfigError saying how to fix the file: FAIL
    how = "token required" if token is not None else "this machine only, no token"
    # what would stop the service's page, said here (--check said "OK" of a port another
    # program held, and the service then failed to start): a WARN, as the running service
    # itself holds its port while --check runs beside it
    notes = [note for note in (_port_in_use(host, port), _collect_dir_problem(cfg)) if note]
    return Item("web page", WARN if notes else OK, "; ".join([f"{cfg.web_address} ({how})", *notes]),
                {"address": cfg.web_address, "problems": notes})


def _port_in_use(host: str, port: int) -> Optional[str]:
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        return (f"{host}:{port} cannot be used now ({exc.strerror or exc}): if the door service "
                f"is running it holds it; else another program does, and the service would "
                f"not start: free the port or set [web] address")
    return None


def _collect_dir_problem(cfg) -> Optional[str]:
    """Why the page's frame folder could not be made or written (the page is then off)."""
    root = Path(cfg.web_collect_dir.strip() or Path(cfg.service_state_dir) / "collect")
    existing = next((p for p in (root, *root.parents) if p.exists()), None)
    if existing is None:
        return None
    if not existing.is_dir():
        return f"[web] collect_dir {root}: {existing} is not a folder (the page would be off)"
    if not os.access(existing, os.W_OK | os.X_OK):
        return (f"[web] collect_dir {root}: {existing} is not writable by this user (the page "
                f"would be off, the door runs on)")
    return None


def collect(cfg, *, test_latch: bool = False, source=None, pin_factory=None,
            thermal_path: str = THERMAL_PATH,
            throttled: Optional[Callable[[], str]] = None,
            sleep: Callable[[float], None] = time.sleep) -> List[Item]:
    state: dict = {}
    return [
        _guard("config", lambda: check_config(cfg)),
        _guard("runtime", check_runtime),
        _guard("model", lambda: check_model(cfg, state)),
        _guard("face detector", lambda: check_face_gate(cfg, state)),
        _guard("camera", lambda: check_camera(cfg, state, source)),
        _guard("gpio", lambda: check_gpio(cfg, test_latch, pin_factory,
                                          sleep)),
        _guard("temperature", lambda: check_temperature(thermal_path)),
        _guard("throttling", lambda: check_throttling(throttled)),
        _guard("disk", lambda: check_disk(cfg)),
        _guard("web page", lambda: check_page(cfg)),
    ]


def run_check(cfg, *, test_latch: bool = False, as_json: bool = False, out=None,
              **inject) -> int:
    """Print the report (``as_json``); 0 = go, 1 = no-go. ``test_latch`` pulses the latch."""
    out = out if out is not None else sys.stdout
    items = collect(cfg, test_latch=test_latch, **inject)
    for item in items:  # details quote sources and errors: no password on the screen
        item.detail = clean(item.detail)
    go = not any(item.status == FAIL for item in items)
    if as_json:
        out.write(json.dumps({"go": go, "checks": [i.to_dict() for i in items]}) + "\n")
    else:
        problems = sum(item.status == FAIL for item in items)
        lines = [f"HappyHouse check: {'GO' if go else f'NO-GO ({problems} problem(s))'}"]
        for item in items:
            lines.append(f"  [{item.status.upper():>4}] {item.name:<13} {item.detail}")
        out.write("\n".join(lines) + "\n")
    return 0 if go else 1
