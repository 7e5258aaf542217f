"""How every command-line tool ends: an exit code and at most one line on stderr.

Each CLI's ``main(argv=None) -> int`` hands its body to :func:`run_main`:

* a project error (:class:`~.errors.HappyHouseError`) -> its ``exit_code`` and
  ``prog: error: <message>`` (the message says what to fix);
* Ctrl-C (``KeyboardInterrupt``) -> 130 and ``prog: interrupted by SIGINT``;
  another ending signal turned into :class:`~.errors.Interrupted` -> 128 + the
  signal and the same line. Interrupted is never success;
* anything else is a bug: with ``bug_exit`` the traceback is logged and that
  code returned (the door daemon: 70, after every latch path has locked);
  without it the exception propagates as Python reports it.

The line is plain (no timestamp, no logger name), whether or not logging was
already set up, so the same mistake reads the same from every tool. Nothing
here imports more than the standard library: a tool's heavy imports happen
inside ``body``, where an early Ctrl-C is still answered with one line.
"""

from __future__ import annotations

import signal
import sys
from typing import Callable, Optional

from .endsignals import signal_name
from .errors import HappyHouseError, Interrupted

EXIT_INTERRUPTED = 128 + signal.SIGINT


def run_main(prog: str, body: Callable[[], int], *, bug_exit: Optional[int] = None) -> int:
    """Run ``body()`` and map how it ended to ``prog``'s exit code (see the module doc)."""
    try:
        return body()
    except HappyHouseError as exc:
        say(prog, f"error: {exc}")
        return exc.exit_code
    except Interrupted as exc:
        say(prog, f"interrupted by {signal_name(exc.signum)}")
        return exc.exit_code
    except KeyboardInterrupt:
        say(prog, f"interrupted by {signal_name(signal.SIGINT)}")
        return EXIT_INTERRUPTED
    except Exception:
        if bug_exit is None:
            raise
        import logging

        logging.getLogger(prog).exception("%s: internal error (please report)", prog)
        return bug_exit


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

