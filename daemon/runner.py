"""Running the door as a process: signal handlers and the loop over a :class:`~.service.Service`.

:func:`run_service` is what ``happyhouse-daemon`` runs under systemd: it installs
the signal handlers and drives a :class:`~.service.Service` (which owns the parts,
the door, reloads and the stop path) until SIGTERM/SIGINT, reloading on SIGHUP.
The door's decisions are the state machine in :mod:`.door`.

Safety: the service locks on start, on every reload and on every exit path (stop
signal, exception) before its parts are released.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any, Callable, Dict, Optional

from .config import Config
from .door import Door
from .endsignals import ENDING_SIGNALS, STOPPING_SIGNALS, TERMINAL_IO_SIGNALS
from .errors import BusyError, DataError, HappyHouseError
from .notify import Notifier
from .service import Service
from .statelock import SERVICE_PURPOSE

log = logging.getLogger(__name__)


# -- signals ----------------------------------------------------------------
class Flag:
    """A flag a signal handler sets: :class:`threading.Event` without its lock. A handler
    runs between two bytecodes of the main thread, also inside another handler's
    ``Event.set()``, which holds the event's lock: a burst of SIGHUPs then waited on it
    forever, and the hung daemon ignored SIGTERM. Setting a bool takes no lock."""

    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value = False

    def set(self) -> None:
        self._value = True

    def clear(self) -> None:
        self._value = False

    def is_set(self) -> bool:
        return self._value


class Signals:
    """SIGHUP sets ``reload``; every other signal that would end the process (SIGTERM,
    SIGINT, SIGQUIT, ... :data:`.endsignals.ENDING_SIGNALS`) or stop it (Ctrl-Z:
    :data:`.endsignals.STOPPING_SIGNALS`) sets ``stop``: left to its default it would kill
    or suspend the process with the line still driven. Handlers only set
    flags: the loop sees them within one frame timeout and locks on its way out."""

    def __init__(self) -> None:
        self.stop = Flag()
        self.reload = Flag()
        self.received: Optional[str] = None
        self._previous: Dict[int, Any] = {}

    def install(self) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False  # only the main thread may set handlers (in-thread tests)
        # a stopping signal (Ctrl-Z of a service started by hand) is a stop too: suspended,
        # neither the loop nor the latch's timer could relock an opening
        for signum in ENDING_SIGNALS + STOPPING_SIGNALS:
            handler = self._on_reload if signum == signal.SIGHUP else self._on_stop
            self._previous[signum] = signal.signal(signum, handler)
        return True

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def pending(self) -> Optional[str]:
        """The stop or reload signal received and not yet acted on (its name), else None."""
        if self.stop.is_set():
            return self.received or "stop"
        if self.reload.is_set():
            return "SIGHUP"
        return None

    def _on_stop(self, signum, _frame) -> None:
        self.received = signal.Signals(signum).name
        self.stop.set()
        if signum in TERMINAL_IO_SIGNALS:  # sent again at each terminal write: let it through
            signal.signal(signum, signal.SIG_IGN)

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


def run_service(cfg, reload: Optional[Callable[[], Config]] = None, *,
                max_frames: Optional[int] = None, pin_factory=None, source=None, pipeline=None,
                notifier: Optional[Notifier] = None, clock: Callable[[], float] = time.monotonic,
                signals: Optional[Signals] = None, state_lock=None) -> int:
    """The door service until SIGTERM/SIGINT (or ``max_frames``); returns 0.

    ``reload`` gives the config a SIGHUP switches to (default: ``cfg``'s file again).
    ``state_lock``: the state folder's lock the service holds, watched while it runs
    (:func:`watch_state_lock`).

    The keyword arguments inject parts for tests and demos; by default they
    are built from ``cfg``. Errors propagate (the CLI maps them to exit codes)
    after the latch is locked and released.
    """
    signals = signals if signals is not None else Signals()
    given_lock = state_lock
    # installed first: a signal while the latch, camera and model are made sets a flag the
    # loop then answers (locked), instead of ending the construction midway
    installed = signals.install()
    try:
        service = Service.from_config(cfg, reload, pin_factory=pin_factory, source=source,
                                      pipeline=pipeline, notifier=notifier, clock=clock,
                                      ending=signals.pending)
    except BaseException:
        if installed:
            signals.restore()
        raise
    error: Optional[BaseException] = None
    page = None
    try:
        try:
            page = open_page(cfg, service)  # a bad token file or address: an error, door locked
        except DataError as exc:
            # the disk, not the config: a full or read-only state disk cannot hold the
            # collection folder. The door itself runs (the page kept the whole service in a
            # restart loop); a reload tries the page again
            log.error("the door page is off: %s", exc)
        service.start()
        if page is not None:
            page.start()
        lock_checked = clock()
        while True:
            if state_lock is not None and clock() - lock_checked >= LOCK_CHECK_SECONDS:
                lock_checked = clock()
                state_lock = watch_state_lock(state_lock)
            if signals.stop.is_set():
                reason = signals.received or "stop"
                break
            if signals.reload.is_set():
                signals.reload.clear()
                before = service.cfg
                service.reload()
                page = reopen_page(page, before, service)
                continue
            if max_frames is not None and service.frames >= max_frames:
                reason = "max-frames"
                break
            service.step()
        service.stop(reason)
        return 0
    except BaseException as exc:
        error = exc
        raise
    finally:
        try:
            service.close(error)  # locks first
        finally:
            if page is not None:
                page.close()
            if installed:
                signals.restore()
            if state_lock is not None and state_lock is not given_lock:
                state_lock.release()  # one taken again here (the caller releases its own)


#: how often the running service looks at its state folder's lock file
LOCK_CHECK_SECONDS = 5.0


def watch_state_lock(state_lock):
    """The state lock to hold from now on: ``state_lock`` while its file is still the one
    locked; else the lock taken again, said in the journal. A technician deleting the
    lock file as "stale" let a second service start and drive the same pin; if another
    program holds the lock by now, its BusyError ends this service (locked first)."""
    if state_lock.still_held():
        return state_lock
    log.error("the state folder's lock file %s was removed or replaced while the door "
              "service held it (it is never stale: the kernel drops a lock its holder "
              "leaves); taking it again, so that no second door program starts beside this "
              "one", state_lock.path)
    try:
        fresh = state_lock.renewed(SERVICE_PURPOSE)
    except BusyError as exc:  # said as what it is: not a refusal to start
        raise BusyError(f"the door service stops: another program took the state folder's "
                        f"lock {state_lock.path} after its file was removed ({exc})") from None
    log.warning("the state folder's lock %s is held again", fresh.path)
    return fresh


def open_page(cfg, service: Service):
    """The door's page over ``service`` when ``[web] enabled`` (not yet serving), else None."""
    if not cfg.web_enabled:
        return None
    from .web.server import DoorPage

    return DoorPage(cfg, service)


def reopen_page(page, before, service: Service):
    """After a reload: the page again when its ``[web]`` settings or its token changed
    (the token file is read again: a rotated token must lock out the old one), or when
    it was off after an error. A page that cannot start is logged and left off: the
    door itself keeps running."""
    web = {k: v for k, v in service.cfg.values.items() if k.startswith("web.")}
    if web == {k: v for k, v in before.values.items() if k.startswith("web.")}:
        if page is not None and page.serves_token_of(service.cfg):
            return page
        if page is None and not service.cfg.web_enabled:
            return None
    if page is not None:
        page.close()
    try:
        page = open_page(service.cfg, service)
        if page is not None:
            page.start()
        return page
    except HappyHouseError as exc:
        log.error("reload: the door page is off: %s", exc)
        return None
