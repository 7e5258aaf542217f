"""How every command-line tool ends: an exit code and at most one line on stderr.

Each CLI's ``main(argv=None) -> int`` hands its body to :func:`run_main`:

* a project error (:class:`~.errors.HappyHouseError`) -> its ``exit_code`` and
  ``prog: error: <message>`` (the message says what to fix);
* Ctrl-C (``KeyboardInterrupt``) -> 130 and ``prog: interrupted by SIGINT``;
  another ending signal turned into :class:`~.errors.Interrupted` -> 128 + the
  signal and the same line. Interrupted is never success;
* a report that standard output cannot take (``| head`` closed early, ``> /dev/full``,
  ``>&-``) -> :class:`~.errors.OutputError`, exit 2 and one line, like any
  project error: not a bug's traceback;
* a disk that is full, over quota or read-only (``ENOSPC``, ``EDQUOT``, ``EROFS``, also
  inside a folder copy's ``shutil.Error``) -> exit 2 and one line naming the file:
  the machine's trouble, not a bug (a full disk ended convert and train in a traceback);
* anything else is a bug: with ``bug_exit`` the traceback is logged and that
  code returned (the door daemon: 70, after every latch path has locked);
  without it the exception propagates as Python reports it.

The line is plain (no timestamp, no logger name), whether or not logging was
already set up, so the same mistake reads the same from every tool. Nothing
here imports more than the standard library: a tool's heavy imports happen
inside ``body``, where an early Ctrl-C is still answered with one line.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import sys
import threading
from contextlib import contextmanager, nullcontext
from typing import Callable, Iterator, Optional

from .endsignals import ENDING_SIGNALS, raising, signal_name
from .errors import DataError, HappyHouseError, Interrupted, OutputError

EXIT_INTERRUPTED = 128 + signal.SIGINT


def run_main(prog: str, body: Callable[[], int], *, bug_exit: Optional[int] = None,
             signals: bool = True) -> int:
    """Run ``body()`` and map how it ended to ``prog``'s exit code (see the module doc).

    With ``signals`` every ending signal (SIGTERM, SIGHUP, ...) ends ``body`` as Ctrl-C
    does (:func:`.endsignals.raising`): its ``finally`` blocks remove its temporary folders
    and the line says so. Left to their default, SIGTERM killed an adapt run silently
    and left its fold models in /tmp. The door daemon passes False: it sets its own.
    """
    # the report below is made inside the block: a second signal there is swallowed
    with raising() if signals else nullcontext():
        try:
            return _ended(prog, body, bug_exit)
        except Interrupted as exc:  # the first signal came while an error was reported
            return exc.exit_code


def _ended(prog: str, body: Callable[[], int], bug_exit: Optional[int]) -> int:
    stdout, sys.stdout = sys.stdout, Report(sys.stdout)
    try:
        code = body()
        sys.stdout.flush()  # what is still buffered fails here, inside, not at exit
        return code
    except HappyHouseError as exc:
        if isinstance(exc, OutputError):
            _silence(stdout)
        say(prog, f"error: {exc}")
        return exc.exit_code
    except Interrupted as exc:
        with _swallowing_signals():
            say(prog, f"interrupted by {signal_name(exc.signum)}")
        return exc.exit_code
    except KeyboardInterrupt:
        with _swallowing_signals():
            say(prog, f"interrupted by {signal_name(signal.SIGINT)}")
        return EXIT_INTERRUPTED
    except Exception as exc:
        trouble = disk_trouble(exc)
        if trouble is not None:
            say(prog, f"error: {trouble}")
            return DataError.exit_code
        if bug_exit is None:
            raise
        import logging

        logging.getLogger(prog).exception("%s: internal error (please report)", prog)
        return bug_exit
    finally:
        sys.stdout = stdout


#: what a disk says when it cannot take a write, and how a technician reads it
DISK_ERRNOS = {errno.ENOSPC: "free space on that disk", errno.EDQUOT: "free space in your quota",
               errno.EROFS: "the disk is read-only (a disk error? check it with fsck)"}


def disk_trouble(exc: BaseException) -> Optional[str]:
    """One line for a write the disk refused (full, over quota, read-only), else None."""
    if isinstance(exc, shutil.Error):  # a folder copy: a list of (source, target, why)
        for entry in (exc.args[0] if exc.args and isinstance(exc.args[0], list) else ()):
            why = str(entry[-1]) if isinstance(entry, tuple) and entry else ""
            for code, hint in DISK_ERRNOS.items():
                if os.strerror(code) in why:
                    return f"cannot write {entry[1]}: {os.strerror(code)}; {hint}"
        return None
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        what = f"cannot write {exc.filename}" if exc.filename else "a write failed"
        return f"{what}: {exc.strerror}; {DISK_ERRNOS[exc.errno]}"
    return None


class Report:
    """``sys.stdout`` while a tool runs: a write or flush it cannot take is the tool's
    :class:`~.errors.OutputError`, not a bug (a report piped into ``head`` ended in
    exit 70 and a traceback, after ``--once --actuate`` had already opened the door)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except UnicodeError:
            raise  # the stream is fine, the text is not (callers may fall back to ASCII)
        except (OSError, ValueError, AttributeError) as exc:  # None: started with >&-
            raise _lost(exc) from None

    def flush(self) -> None:
        try:
            if self._stream is not None:
                self._stream.flush()
        except (OSError, ValueError) as exc:
            raise _lost(exc) from None

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _lost(exc: BaseException) -> OutputError:
    why = getattr(exc, "strerror", None)
    if not why:
        why = "it is closed" if isinstance(exc, (ValueError, AttributeError)) else str(exc)
    return OutputError(f"cannot write the report to standard output ({why}); run it again "
                       f"with the output going to a terminal or a file with room")


def _silence(stdout) -> None:
    """Point the broken stdout at /dev/null: the interpreter's last flush would
    otherwise print "Exception ignored ... BrokenPipeError" after our one line."""
    try:
        fd = stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    import os

    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    except OSError:
        pass


@contextmanager
def _swallowing_signals() -> Iterator[None]:
    """While an interruption is reported, more ending signals do nothing: a burst of
    Ctrl-C raised a KeyboardInterrupt inside the report, a traceback instead of the line.
    (Only the main thread may set handlers; elsewhere nothing is changed.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, lambda *_: None) for signum in ENDING_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def say(prog: str, text: str) -> None:
    """One line on stderr; a message with newlines is folded so it stays one line, and
    credentials in it (a camera URL) are masked like in every log line."""
    from .logtext import clean

    line = clean(" ".join(str(text).splitlines()))
    try:
        sys.stderr.write(f"{prog}: {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed (a dropped SSH session): nothing to tell
        pass

