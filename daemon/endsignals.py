"""The signals that end a process, and how the door's programs answer them.

Python ends the process on most of these without running a single ``finally``
block, and a Raspberry Pi keeps an output driven after its process is gone: a
program that holds the latch must turn each of them into an orderly exit that
locks first. The service sets flags and leaves its loop
(:class:`.runner.Signals`); the technician's tools (``--once --actuate``,
``--check --test-latch``) raise :class:`~.errors.Interrupted` in the main thread
with :func:`raising`, so every ``with``/``finally`` on the way out locks and
releases the latch before the CLI reports the interruption.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Dict, Iterator, Tuple

from .errors import Interrupted

#: every catchable signal whose default action ends the process: an SSH session
#: dropping (HUP), Ctrl-C (INT), Ctrl-\ (QUIT), kill/systemd (TERM), and the
#: rarer ones a shell or a resource limit can send (USR1, USR2, ALRM, XCPU, XFSZ)
ENDING_SIGNALS: Tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1",
                                       "SIGUSR2", "SIGALRM", "SIGXCPU", "SIGXFSZ")
    if hasattr(signal, name))


#: the signals that stop (suspend) a process from its terminal: Ctrl-Z (TSTP), and a
#: background job reading or writing it (TTIN, TTOU). Unlike SIGSTOP they can be caught,
#: and a program holding the latch open must: stopped, its relock timer cannot run (a
#: 1 s --test-latch pulse stayed open 20 s, and the report said GO)
STOPPING_SIGNALS: Tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGTSTP", "SIGTTIN", "SIGTTOU") if hasattr(signal, name))
#: of those, the ones the terminal sends again at each read or write of a background job:
#: once answered, they are ignored (see :func:`raising`)
TERMINAL_IO_SIGNALS: Tuple[int, ...] = tuple(
    getattr(signal, name) for name in ("SIGTTIN", "SIGTTOU") if hasattr(signal, name))


def signal_name(signum: int) -> str:
    """``SIGTERM``; Ctrl-C says so, for the person who pressed it."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
    return f"{name} (Ctrl-C)" if signum == signal.SIGINT else name


@contextmanager
def raising(stops: bool = False) -> Iterator[None]:
    """Inside the block, the first ending signal raises :class:`Interrupted`; with
    ``stops`` (a tool that may hold the latch open) a stopping signal does too: Ctrl-Z
    ends it, locked, rather than suspending it with the line driven.

    Later signals are swallowed until the block is left, so a second Ctrl-C or
    SIGTERM cannot cut short the cleanup the first one started (locking the
    latch). A signal ignored on entry stays ignored: ``nohup happyhouse-train ...``
    must outlive the SSH session's SIGHUP. A process forked inside the block (a
    worker of a Keras data pool) ends on its signal as it would have. Outside the
    main thread (in-thread tests) nothing is installed. Previous handlers are
    restored on the way out.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []
    owner = os.getpid()

    def handler(signum, _frame) -> None:
        if os.getpid() != owner:  # a forked worker: the default action, no traceback
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if signum in TERMINAL_IO_SIGNALS:
            # sent again at every terminal read or write of a background job (`stty
            # tostop`): caught, each write failed and was retried for good; ignored, the
            # write goes through and the cleanup that locks the latch can finish
            signal.signal(signum, signal.SIG_IGN)
        if fired:
            return  # already on the way out: let the cleanup finish
        fired.append(signum)
        raise Interrupted(signum)

    previous: Dict[int, object] = {}
    try:
        for signum in ENDING_SIGNALS + (STOPPING_SIGNALS if stops else ()):
            if signal.getsignal(signum) is signal.SIG_IGN:
                continue
            previous[signum] = signal.signal(signum, handler)
        yield
    finally:
        _restore(previous)


@contextmanager
def deferred() -> Iterator[None]:
    """Inside the block an ending or stopping signal waits, then reaches the handler it
    would have met (re-sent when the block ends): a swap of two renames is never cut
    between them (a SIGTERM there left no bundle at the configured path). Outside the
    main thread nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    waiting = []
    previous: Dict[int, object] = {}
    try:
        for signum in ENDING_SIGNALS + STOPPING_SIGNALS:
            old = signal.getsignal(signum)
            if old is signal.SIG_IGN or old is None:
                continue
            previous[signum] = signal.signal(signum, lambda signum, _frame: waiting.append(signum))
        yield
    finally:
        _restore(previous)
        for signum in dict.fromkeys(waiting):
            os.kill(os.getpid(), signum)


def _restore(previous: Dict[int, object]) -> None:
    """Put the handlers back with those signals blocked meanwhile: one arriving half-way
    met a handler already restored, which raised and left the rest unrestored (Ctrl-Z
    swallowed for the rest of the process). Held back, it reaches its own handler after."""
    block = hasattr(signal, "pthread_sigmask") and previous
    if block:
        signal.pthread_sigmask(signal.SIG_BLOCK, set(previous))
    try:
        for signum, old in previous.items():
            signal.signal(signum, old)
    finally:
        if block:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, set(previous))


@contextmanager
def ignoring_sighup() -> Iterator[None]:
    """SIGHUP ignored inside the block, where it is at its default (main thread only): the
    door service's start-up, until its own handler (a reload) is in; a SIGHUP there ended
    it silently. (A reload asked for then is not done: systemd holds one until READY=1.)
    The previous disposition is restored on the way out."""
    if (threading.current_thread() is not threading.main_thread()
            or not hasattr(signal, "SIGHUP") or signal.getsignal(signal.SIGHUP) is not signal.SIG_DFL):
        yield
        return
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
