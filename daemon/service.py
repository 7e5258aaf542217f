"""The running service as one object: the parts built from the config, the current
:class:`~.door.Door`, SIGHUP reloads and the stop path.

:class:`Service` is what ``happyhouse-daemon`` runs (:func:`.runner.run_service`
adds only the signal handlers and the loop) and what the reliability tests and
tools drive directly: :meth:`Service.start`, then :meth:`Service.step` per frame and
:meth:`Service.reload` on SIGHUP, then :meth:`Service.stop` and :meth:`Service.close`.
It builds the latch, the door inputs, the pipeline and the camera from the config
(tests and demos inject their own). A reload locks, re-reads the config and
rebuilds only the parts whose sections changed, keeping the old config when the
new one is bad; a new bundle installed at the configured path is loaded on a
reload too, and if it fails its self-test the old model keeps serving
(:mod:`.model_history`). A reload never shortens a cooldown: the new door
inherits the old one's :class:`~.door.SafetyState`.

Safety: the latch is built first and locked before anything else, a reload
keeps it locked throughout, and every exit path (stop, exception) locks it
before the parts are released.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

from .audit import Audit
from .bundle import load_bundle
from .config import Config, load_config
from .door import Door, SafetyState, State
from .errors import HappyHouseError
from .latch import (DoorContact, ExitButton, is_mock_factory, latch_from_config,
                    make_pin_factory)
from .model_history import SWAP_WAIT, fingerprint, wait_for_swap
from .notify import Notifier
from .pipeline import Pipeline
from .sources import open_source, refuse_recording_on_a_real_latch
from .statelock import SERVICE_PURPOSE, acquire_for, folder_key
from .trail import DecisionTrail

log = logging.getLogger(__name__)

#: longest a reload keeps the watchdog fed (model self-test + camera reopen)
RELOAD_WATCHDOG_LIMIT = 60.0


class Service:
    """The door service over its parts; one thread drives it (the runner's loop, a test).

    ``reload`` gives the config a reload switches to (default: ``cfg``'s file again).
    ``door_class`` builds each door (tests pass a spying subclass).
    """

    def __init__(self, cfg, parts: "Parts", reload: Optional[Callable[[], Config]] = None, *,
                 notifier: Optional[Notifier] = None, clock: Callable[[], float] = time.monotonic,
                 door_class: Optional[Callable[..., Door]] = None,
                 ending: Callable[[], Optional[str]] = lambda: None) -> None:
        self.cfg = cfg
        self.parts = parts
        self._reload_config = reload
        self.notifier = notifier if notifier is not None else Notifier()
        self.clock = clock
        self._door_class = door_class
        self._ending = ending  # each door's: a stop or reload signal received, or None
        self.door: Optional[Door] = None  # None while a reload rebuilds the parts
        self._frames_before = 0  # frames seen by the doors a reload replaced
        self._unlocks_before = 0  # openings by the doors a reload replaced
        #: said in the status line while the last reload's config was not applied
        self.config_note: Optional[str] = None
        self._reason: Optional[str] = None  # what stop() was told
        self.closed = False
        self.trail = DecisionTrail()  # sightings and openings, across reloads (the page)
        self.started_at: Optional[float] = None  # self.clock() at start()

    @classmethod
    def from_config(cls, cfg, reload: Optional[Callable[[], Config]] = None, *, pin_factory=None,
                    source=None, pipeline=None, notifier: Optional[Notifier] = None,
                    clock: Callable[[], float] = time.monotonic,
                    door_class: Optional[Callable[..., Door]] = None,
                    ending: Callable[[], Optional[str]] = lambda: None) -> "Service":
        """A service whose parts are built from ``cfg`` by :meth:`start`, except those
        injected here (tests and demos), which are used as given. ``ending`` says which
        stop or reload signal arrived (None: none); no door opens once one has."""
        service: Optional[Service] = None
        parts = Parts({"pin_factory": pin_factory, "source": source, "pipeline": pipeline}, clock,
                      lambda: None if service is None else service.door, ending=ending)
        service = cls(cfg, parts, reload, notifier=notifier, clock=clock, door_class=door_class,
                      ending=ending)
        return service

    @property
    def frames(self) -> int:
        """Frames seen since :meth:`start`, across reloads."""
        return self._frames_before + (self.door.frames if self.door is not None else 0)

    @property
    def unlocks(self) -> int:
        """Openings since :meth:`start`, across reloads."""
        return self._unlocks_before + (self.door.unlocks if self.door is not None else 0)

    def start(self) -> Door:
        """Build the parts (the latch first, locked) and start the first door."""
        self.started_at = self.clock()
        self.notifier.status("starting: loading model, opening camera")
        # the CLI took the start-up state folder's lock before the service started
        self.parts.locked_dirs.add(folder_key(self.cfg.service_state_dir))
        self.parts.build(self.cfg)
        return self._start_door(None)

    def step(self):
        """One frame through the current door; returns its Observation, if one was made."""
        return self.door.step()

    def reload(self) -> Door:
        """SIGHUP: lock, re-read the config, rebuild what changed (keeping the old parts
        when the new config fails) and start a new door that inherits the cooldown."""
        door, self.door = self.door, None  # input callbacks are ignored until the new door runs
        self.parts.lock()
        inherited = None
        if door is not None:
            self._frames_before += door.frames
            self._unlocks_before += door.unlocks
            inherited = door.safety_state()
        self.notifier.reloading("reloading config (latch locked)")
        log.info("reloading config (latch locked)")
        with ReloadWatchdog(self.notifier):
            self.cfg, self.config_note = _rebuild(self.cfg, self._reload_config, self.parts)
        return self._start_door(inherited)

    def _start_door(self, inherited: Optional[SafetyState]) -> Door:
        door_class = self._door_class if self._door_class is not None else Door
        door = door_class(self.cfg, self.parts.source, self.parts.pipeline, self.parts.latch,
                          self.notifier, Audit.from_config(self.cfg, self._unlocks_before),
                          self.clock,
                          inherited=inherited, trail=self.trail, ending=self._ending)
        door.status_note = self.config_note
        self.door = door
        door.start()
        return door

    def stop(self, reason: str) -> None:
        """Lock, then STOPPING with ``reason`` (a signal's name, ...); the parts stay
        until :meth:`close`."""
        self._reason = reason
        if self.door is not None:
            self.door.stop(reason)  # locks first
        else:
            self.parts.lock()

    def close(self, error: Optional[BaseException] = None) -> None:
        """Lock, release every part, tell systemd STOPPING (unless :meth:`stop` did) and log
        the stop line; ``error`` is what ended the service, if anything. Never raises;
        a second call does nothing."""
        if self.closed:
            return
        self.closed = True
        reason = self._reason or "stopped"
        logged = None  # what the stop line says: an error's text is the CLI's one line, not ours
        if error is not None:
            reason = (f"error: {error}" if isinstance(error, HappyHouseError)
                      else type(error).__name__)
            logged = "an error" if isinstance(error, HappyHouseError) else reason
        self.parts.close()  # locks first
        if self.door is None or self.door.state is not State.STOPPING:
            self.notifier.stopping(f"stopping: {reason}")
        log.info("stopped (%s); latch locked", logged or reason)

    def __enter__(self) -> "Service":
        return self

    def __exit__(self, _type, error, _tb) -> None:
        self.close(error)


# -- the parts --------------------------------------------------------------
#: Parts.model_fingerprint after a refused bundle: matches no bundle on disk
_REFUSED = "refused"
# part -> the config sections (or single keys) it is built from; the latch's own
# relock cap is [decision] max_unlock_seconds, so a change there rebuilds the latch too
_REBUILD = {"latch": ("latch", "decision.max_unlock_seconds"), "source": ("camera",),
            "pipeline": ("model", "face")}


class Parts:
    """The hardware-facing parts built from a config; injected parts are kept as given."""

    def __init__(self, inject: Dict[str, Any], clock: Callable[[], float],
                 door_ref: Callable[[], Optional[Door]],
                 ending: Callable[[], Optional[str]] = lambda: None) -> None:
        self.inject = inject
        self.ending = ending  # a stop received: a reload's wait for a swap gives up at once
        self.clock = clock
        self.door_ref = door_ref  # the input callbacks reach whichever Door is running
        self.latch = self.source = self.pipeline = None
        self.inputs = []
        self.factory = None
        self.model_fingerprint: Optional[str] = None  # the bundle on disk the pipeline was built from
        #: :data:`MODEL_REFUSED` while the last reload kept the previous model
        self.model_note: Optional[str] = None
        self.built: Dict[str, Any] = {}  # part -> the config it was built from
        self.state_locks = []  # state folder locks a reload took (released on close)
        self.locked_dirs = set()  # the state folders whose lock this process holds

    def build(self, cfg) -> None:
        """(Re)build what ``cfg`` changed: latch first, so the door is locked before anything else."""
        changed = {part for part, sections in _REBUILD.items()
                   if part not in self.built
                   or any(_section(self.built[part], s) != _section(cfg, s) for s in sections)}
        if "latch" in changed or self.latch is None:
            self._close_latch()
            self.built.pop("latch", None)
            try:
                self._build_latch(cfg)
            except BaseException:
                # nothing half-built (a new latch pin driven, the old inputs gone): the
                # old config's rebuild after a failed reload starts from no latch
                self._close_latch()
                raise
            self.built["latch"] = cfg
        if self.inject.get("pipeline") is not None:
            self.pipeline = self.inject["pipeline"]
        else:
            self._build_pipeline(cfg, "pipeline" in changed)
        # before a new source opens, and on a reload that changed only the latch
        if self.inject.get("source") is not None:
            if self.source is None:
                refuse_recording_on_a_real_latch(self.inject["source"],
                                                 is_mock_factory(self.latch.factory))
                self.source = self.inject["source"]
                self.source.open()
        elif "source" in changed or self.source is None:
            source = open_source(cfg.camera_source, cfg, remember=True)
            refuse_recording_on_a_real_latch(source, is_mock_factory(self.latch.factory))
            self._close_source()
            source.open()
            self.source = source
            self.built["source"] = cfg
        elif "latch" in changed:
            refuse_recording_on_a_real_latch(self.source, is_mock_factory(self.latch.factory))

    def _build_latch(self, cfg) -> None:
        door_ref = self.door_ref
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

    def _build_pipeline(self, cfg, changed: bool) -> None:
        """(Re)load the model when its config or the bundle on disk changed (a new bundle
        installed at the same path). A new bundle that fails to load or self-test
        while the old one still runs is refused and the old one kept serving."""
        if self.pipeline is not None and not wait_for_swap(cfg.model_bundle,
                                                           given_up=self.ending):
            log.warning("reload: an install or rollback of %s is still under way (waited up "
                        "to %g s, or a stop came); reading what is there now",
                        cfg.model_bundle, SWAP_WAIT)
        on_disk = fingerprint(cfg.model_bundle)
        if not changed and self.pipeline is not None and on_disk == self.model_fingerprint:
            # model.json is the same, its files may not be (a cp over model.tflite): said
            # now, not by the next restart's refusal after "config reloaded"
            self.model_note = self._damaged_on_disk(cfg)
            return
        try:
            pipeline = Pipeline.from_config(cfg)  # loads the bundle and runs the self-test
        except HappyHouseError as exc:
            if changed or self.pipeline is None:
                raise
            # forgotten, so the next reload loads whatever bundle is on disk then (this
            # one mended, say a missing file copied in, or the previous one restored)
            self.model_fingerprint = _REFUSED
            self.model_note = MODEL_REFUSED
            # "the bundle now at": after a failed reload's undo this is the serving
            # model's own path, whose files changed (or went) since it was loaded
            log.error("reload: the model bundle now at %s is refused (%s); still serving the "
                      "previous model (sha256 %s), loaded before. Roll back with "
                      "happyhouse-daemon --rollback-model", cfg.model_bundle or "(shipped)",
                      exc, self.pipeline.model_sha256[:12])
            return
        # the fingerprint of what was loaded, not of what was on disk a moment before: a
        # bundle swapped in between was loaded under the other's fingerprint, and every
        # later reload of the newer one was skipped as "unchanged"
        self.pipeline, self.model_fingerprint = pipeline, pipeline.bundle.fingerprint or on_disk
        self.model_note = None
        self.built["pipeline"] = cfg

    def _damaged_on_disk(self, cfg) -> Optional[str]:
        """:data:`MODEL_REFUSED` (and the reason in the journal) when the serving bundle's
        files on disk no longer pass its checks; None when they do."""
        try:
            load_bundle(cfg.model_bundle or None)
        except HappyHouseError as exc:
            log.error("reload: the model bundle at %s no longer loads (%s); still serving the "
                      "model loaded before (sha256 %s), but a restart would refuse it: reinstall "
                      "it (install.sh --bundle) or roll back (happyhouse-daemon --rollback-model)",
                      cfg.model_bundle or "(shipped)", exc, self.pipeline.model_sha256[:12])
            return MODEL_REFUSED
        return None

    def serving_model(self) -> tuple:
        """What :meth:`restore_model` needs to put the serving model back after a failed reload."""
        return self.pipeline, self.model_fingerprint, self.built.get("pipeline")

    def restore_model(self, serving: tuple) -> None:
        """Serve the model of :meth:`serving_model` again, as it was loaded (not from disk)."""
        self.pipeline, self.model_fingerprint, built = serving
        if built is None:
            self.built.pop("pipeline", None)
        else:
            self.built["pipeline"] = built

    def lock(self) -> None:
        if self.latch is not None:
            self.latch.lock()

    def close(self) -> None:
        """Lock first, then release everything; never raises."""
        for action in (self.lock, self._close_source, self._close_latch, self._release_locks):
            try:
                action()
            except Exception:
                log.exception("while shutting down")

    def _release_locks(self) -> None:
        while self.state_locks:
            self.state_locks.pop().release()

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


def _section(cfg, name: str):
    """The values of a config section ("latch") or of one key ("decision.max_unlock_seconds")."""
    return {k: v for k, v in cfg.values.items() if k == name or k.startswith(name + ".")}


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


#: what ``systemctl status`` and the page say after a reload that kept the old config:
#: ``systemctl reload`` itself reports success, and the journal alone said why not
KEPT_OLD_CONFIG = "the last reload was refused, the previous config runs (journal: 'reload:')"
#: the same for a model bundle a reload refused (or found damaged on disk) while the config applied
MODEL_REFUSED = ("the last reload refused the model bundle, the previous model runs "
                 "(journal: 'reload:')")


class ReloadWatchdog:
    """Keeps systemd's watchdog fed while a reload rebuilds parts (model self-test,
    camera reopen: longer than ``WatchdogSec=`` on a Pi), for at most ``limit``
    seconds, so a reload that truly hangs still gets the service killed."""

    def __init__(self, notifier: Notifier, limit: float = RELOAD_WATCHDOG_LIMIT) -> None:
        self.notifier = notifier
        self.limit = limit
        self.pings = 0
        self._done = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self) -> "ReloadWatchdog":
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


def _polarity(active_high: bool) -> str:
    return "active high" if active_high else "active low"


def _rebuild(cfg, reload, parts: Parts) -> Tuple[Config, Optional[str]]:
    """(the config now served, None or :data:`KEPT_OLD_CONFIG` when the new one was not applied)."""
    new = reload_config(cfg, reload)
    if new is None:
        return cfg, KEPT_OLD_CONFIG
    moved_lock = None
    if folder_key(new.service_state_dir) not in parts.locked_dirs:
        # one program per latch is the state folder's lock: the service takes the new
        # folder's too (keeping the old), or tools reading the new config would not
        # see it and could drive the latch beside it
        try:
            moved_lock = acquire_for(new, SERVICE_PURPOSE)
        except HappyHouseError as exc:
            log.error("reload: [service] state_dir cannot move to %s, keeping the old "
                      "config: %s", new.service_state_dir, exc)
            return cfg, KEPT_OLD_CONFIG
    serving = parts.serving_model()
    try:
        parts.build(new)
    except (HappyHouseError, OSError) as exc:
        if moved_lock is not None:
            moved_lock.release()
        log.error("reload: cannot apply the new config, keeping the old one: %s", exc)
        # the model that served stays, from memory: its bundle on disk may be gone
        parts.restore_model(serving)
        parts.build(cfg)  # a failure here propagates: the door stays locked
        return cfg, KEPT_OLD_CONFIG
    if moved_lock is not None:
        parts.state_locks.append(moved_lock)
        parts.locked_dirs.add(folder_key(new.service_state_dir))
    logging.getLogger().setLevel(new.service_log_level)
    if (new.latch_pin, new.latch_active_high) != (cfg.latch_pin, cfg.latch_active_high):
        # the latch's wiring changed under a running door: said loudly, never only as
        # "config reloaded" (a damaged file read as defaults flipped an active-low latch)
        log.warning("reload: the latch moved from %s (%s) to %s (%s): check that this is how "
                    "it is wired", cfg.latch_pin, _polarity(cfg.latch_active_high),
                    new.latch_pin, _polarity(new.latch_active_high))
    if parts.model_note:
        log.warning("config reloaded, but the model bundle was refused: the previous model runs")
    else:
        log.info("config reloaded")
    return new, parts.model_note
