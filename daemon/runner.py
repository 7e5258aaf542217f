"""Running the door as a process: signals, wiring the real parts, SIGHUP reloads.

:func:`run_service` is what ``happyhouse-daemon`` runs under systemd. It
builds the latch, the door inputs, the pipeline and the camera from the
config (tests and demos inject their own), installs the signal handlers, and
runs a :class:`~.service.Door` until SIGTERM/SIGINT; on SIGHUP it locks,
re-reads the config and rebuilds only the parts whose sections changed,
keeping the old config when the new one is bad. A new bundle installed at the
configured path is loaded on SIGHUP too; if it fails its self-test the
old model keeps serving (:mod:`.model_history`). The door's decisions are the
state machine in :mod:`.service`; this module is kept apart so that the state
machine stays small and free of process concerns (signals, hardware
construction, config reloads).

Safety: the latch is built first and locked before anything else, a reload
keeps it locked throughout, and every exit path (stop signal, exception)
locks it before the parts are released.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any, Callable, Dict, Optional

from .audit import Audit
from .config import Config, load_config
from .endsignals import ENDING_SIGNALS
from .errors import HappyHouseError
from .latch import DoorContact, ExitButton, latch_from_config, make_pin_factory
from .model_history import fingerprint
from .notify import Notifier
from .pipeline import Pipeline
from .service import Door, State
from .sources import open_source

# the logger these lines had before the wiring moved out of service.py: the journal's
# LOGGER= field (and filters on it) shows one name for the whole service
log = logging.getLogger("happyhouse.daemon.service")

#: longest a SIGHUP reload keeps the watchdog fed (model self-test + camera reopen)
RELOAD_WATCHDOG_LIMIT = 60.0


# -- signals ----------------------------------------------------------------
class Signals:
    """SIGHUP sets ``reload``; every other signal that would end the process (SIGTERM,
    SIGINT, SIGQUIT, ... :data:`.endsignals.ENDING_SIGNALS`) sets ``stop``: left to its
    default it would kill the process with the line still driven. Handlers only set
    flags: the loop sees them within one frame timeout and locks on its way out."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.received: Optional[str] = None
        self._previous: Dict[int, Any] = {}

    def install(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False  # only the main thread may set handlers (in-thread tests)
        for signum in ENDING_SIGNALS:
            handler = self._on_reload if signum == signal.SIGHUP else self._on_stop
            self._previous[signum] = signal.signal(signum, handler)
        return True

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _on_stop(self, signum, _frame) -> None:
        self.received = signal.Signals(signum).name
        self.stop.set()

    def _on_reload(self, signum, _frame) -> None:
        self.reload.set()


def run_door(door: Door, signals: Signals, max_frames: Optional[int] = None) -> str:
    """Run ``door`` until stop, reload or ``max_frames``; the latch is locked on return."""
    door.start()
    try:
        while True:
            if signals.stop.is_set():
                return "stop"
            if signals.reload.is_set():
                return "reload"
            if max_frames is not None and door.frames >= max_frames:
                return "max-frames"
            door.step()
    finally:
        door.latch.lock()


# -- wiring -----------------------------------------------------------------
_REBUILD = {"latch": ("latch",), "source": ("camera",), "pipeline": ("model", "face")}


class _Parts:
    """The hardware-facing parts built from a config; injected parts are kept as given."""

    def __init__(self, inject: Dict[str, Any], clock: Callable[[], float],
                 door_ref: Callable[[], Optional[Door]]) -> None:
        self.inject = inject
        self.clock = clock
        self.door_ref = door_ref  # the input callbacks reach whichever Door is running
        self.latch = self.source = self.pipeline = None
        self.inputs = []
        self.factory = None
        self.model_fingerprint: Optional[str] = None  # the bundle on disk the pipeline was built from
        self.built: Dict[str, Any] = {}  # part -> the config it was built from

    def build(self, cfg) -> None:
        """(Re)build what ``cfg`` changed: latch first, so the door is locked before anything else."""
        changed = {part for part, sections in _REBUILD.items()
                   if part not in self.built
                   or any(_section(self.built[part], s) != _section(cfg, s) for s in sections)}
        door_ref = self.door_ref
        if "latch" in changed or self.latch is None:
            self._close_latch()
            factory = self.inject.get("pin_factory")
            if factory is None:
                factory = self.factory = make_pin_factory(cfg.latch_gpio)
            self.latch = latch_from_config(cfg, pin_factory=factory, clock=self.clock)
            if cfg.latch_door_contact_pin:
                self.inputs.append(DoorContact(
                    cfg.latch_door_contact_pin, cfg.latch_door_contact_pull_up, factory,
                    on_close=lambda: _call(door_ref(), "door_closed"),
                    on_open=lambda: _call(door_ref(), "door_opened")))
            if cfg.latch_exit_button_pin:
                self.inputs.append(ExitButton(
                    cfg.latch_exit_button_pin, cfg.latch_exit_button_pull_up, factory,
                    on_press=lambda: _call(door_ref(), "request_exit")))
            self.built["latch"] = cfg
        if self.inject.get("pipeline") is not None:
            self.pipeline = self.inject["pipeline"]
        else:
            self._build_pipeline(cfg, "pipeline" in changed)
        if self.inject.get("source") is not None:
            if self.source is None:
                self.source = self.inject["source"]
                self.source.open()
        elif "source" in changed or self.source is None:
            self._close_source()
            source = open_source(cfg.camera_source, cfg)
            source.open()
            self.source = source
            self.built["source"] = cfg

    def _build_pipeline(self, cfg, changed: bool) -> None:
        """(Re)load the model when its config or the bundle on disk changed (a new bundle
        installed at the same path). A new bundle that fails to load or self-test
        while the old one still runs is refused and the old one kept serving."""
        on_disk = fingerprint(cfg.model_bundle)
        if not changed and self.pipeline is not None and on_disk == self.model_fingerprint:
            return
        try:
            pipeline = Pipeline.from_config(cfg)  # loads the bundle and runs the self-test
        except HappyHouseError as exc:
            if changed or self.pipeline is None:
                raise
            self.model_fingerprint = on_disk  # not retried until the bundle changes again
            log.error("reload: the new model bundle at %s is refused (%s); still serving the "
                      "previous model (sha256 %s). Roll back with happyhouse-daemon "
                      "--rollback-model", cfg.model_bundle or "(shipped)", exc,
                      self.pipeline.model_sha256[:12])
            return
        self.pipeline, self.model_fingerprint = pipeline, on_disk
        self.built["pipeline"] = cfg

    def lock(self) -> None:
        if self.latch is not None:
            self.latch.lock()

    def close(self) -> None:
        """Lock first, then release everything; never raises."""
        for action in (self.lock, self._close_source, self._close_latch):
            try:
                action()
            except Exception:
                log.exception("while shutting down")

    def _close_source(self) -> None:
        if self.source is not None:
            source, self.source = self.source, None
            source.close()

    def _close_latch(self) -> None:
        for device in self.inputs:
            device.close()
        self.inputs = []
        if self.latch is not None:
            latch, self.latch = self.latch, None
            latch.close()
        if self.factory is not None:
            factory, self.factory = self.factory, None
            factory.close()


def _section(cfg, section: str):
    return {k: v for k, v in cfg.values.items() if k.startswith(section + ".")}


def _call(door: Optional[Door], method: str) -> None:
    if door is not None:
        getattr(door, method)()


def reload_config(cfg, reload: Optional[Callable[[], Config]] = None) -> Optional[Config]:
    """The config a SIGHUP asks for: ``reload()`` (the CLI re-reads the file with its
    flags on top), else ``cfg``'s own file again; None (old config kept) when invalid."""
    try:
        if reload is not None:
            return reload()
        return load_config(cfg.source_path, None, required=cfg.source_path is not None)
    except HappyHouseError as exc:
        log.error("reload: new config rejected, keeping the old one: %s", exc)
        return None


def run_service(cfg, reload: Optional[Callable[[], Config]] = None, *,
                max_frames: Optional[int] = None, pin_factory=None, source=None, pipeline=None,
                notifier: Optional[Notifier] = None, clock: Callable[[], float] = time.monotonic,
                signals: Optional[Signals] = None) -> int:
    """The door service until SIGTERM/SIGINT (or ``max_frames``); returns 0.

    ``reload`` gives the config a SIGHUP switches to (default: ``cfg``'s file again).

    The keyword arguments inject parts for tests and demos; by default they
    are built from ``cfg``. Errors propagate (the CLI maps them to exit codes)
    after the latch is locked and released.
    """
    notifier = notifier if notifier is not None else Notifier()
    signals = signals if signals is not None else Signals()
    installed = signals.install()
    current: Dict[str, Optional[Door]] = {"door": None}
    parts = _Parts({"pin_factory": pin_factory, "source": source, "pipeline": pipeline}, clock,
                   lambda: current["door"])
    reason = "stopped"
    logged = None  # what the stop line says: an error's text is the CLI's one line, not ours
    try:
        notifier.status("starting: loading model, opening camera")
        parts.build(cfg)
        frames = 0
        inherited = None  # the cooldown a reload must not shorten
        while True:
            door = Door(cfg, parts.source, parts.pipeline, parts.latch, notifier,
                        Audit.from_config(cfg), clock, inherited=inherited)
            current["door"] = door
            outcome = run_door(door, signals, None if max_frames is None else max_frames - frames)
            frames += door.frames
            if outcome != "reload":
                reason = signals.received or outcome
                door.stop(reason)
                break
            signals.reload.clear()
            inherited = door.safety_state()
            current["door"] = None
            cfg = _reload(cfg, reload, parts, notifier)
        return 0
    except BaseException as exc:
        reason = f"error: {exc}" if isinstance(exc, HappyHouseError) else type(exc).__name__
        logged = "an error" if isinstance(exc, HappyHouseError) else reason
        raise
    finally:
        parts.close()  # locks first
        door = current["door"]
        if door is None or door.state is not State.STOPPING:
            notifier.stopping(f"stopping: {reason}")
        log.info("stopped (%s); latch locked", logged or reason)
        if installed:
            signals.restore()


class _ReloadWatchdog:
    """Keeps systemd's watchdog fed while a reload rebuilds parts (model self-test,
    camera reopen: longer than ``WatchdogSec=`` on a Pi), for at most ``limit``
    seconds, so a reload that truly hangs still gets the service killed."""

    def __init__(self, notifier: Notifier, limit: float = RELOAD_WATCHDOG_LIMIT) -> None:
        self.notifier = notifier
        self.limit = limit
        self.pings = 0
        self._done = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "_ReloadWatchdog":
        interval = self.notifier.watchdog_interval
        if interval is not None:
            self.notifier.watchdog()  # the reload starts with a full watchdog period
            self.pings += 1
            self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True,
                                            name="happyhouse-reload-watchdog")
            self._thread.start()
        return self

    def _run(self, interval: float) -> None:
        end = time.monotonic() + self.limit
        while not self._done.wait(interval) and time.monotonic() < end:
            self.notifier.watchdog()
            self.pings += 1
        if not self._done.is_set():
            log.error("reload still running after %.0f s: watchdog pings stop", self.limit)

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


def _reload(cfg, reload, parts: _Parts, notifier: Notifier):
    """SIGHUP: stay locked, re-read the config, rebuild what changed; keep the old on error."""
    parts.lock()
    notifier.reloading("reloading config (latch locked)")
    log.info("reloading config (latch locked)")
    with _ReloadWatchdog(notifier):
        return _rebuild(cfg, reload, parts)


def _rebuild(cfg, reload, parts: _Parts):
    new = reload_config(cfg, reload)
    if new is None:
        return cfg
    try:
        parts.build(new)
    except HappyHouseError as exc:
        log.error("reload: cannot apply the new config, keeping the old one: %s", exc)
        parts.build(cfg)  # a failure here propagates: the door stays locked
        return cfg
    logging.getLogger().setLevel(new.service_log_level)
    log.info("config reloaded")
    return new
