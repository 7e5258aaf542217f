"""Logging for the daemon: the systemd journal when run by systemd, else stderr.

Structured fields (score, face box, frame age, verdict) are passed with
``log.info(msg, extra={"journal": {...}})`` and land as journal fields
(``HAPPYHOUSE_SCORE=...``); on stderr they are appended as key=value.
"""

from __future__ import annotations

import logging
import os
import sys

from .logtext import clean


class _CleanFormatter(logging.Formatter):
    """Every message masked and escaped (:func:`.logtext.clean`): no camera password in the
    journal, no forged line from a file name. A traceback keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = clean(record.message)
        return super().formatMessage(record)


class _StderrFormatter(_CleanFormatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "journal", None)
        if fields:
            text += " " + " ".join(f"{k.lower()}={clean(v)}" for k, v in fields.items())
        return text


class _JournalFieldHandler(logging.Handler):
    """Sends each record to journald with HAPPYHOUSE_* fields (systemd-python)."""

    def __init__(self, journal_module) -> None:
        super().__init__()
        self._journal = journal_module

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = {f"HAPPYHOUSE_{k.upper()}": clean(v)
                      for k, v in (getattr(record, "journal", None) or {}).items()}
            priority = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4,
                        logging.ERROR: 3, logging.CRITICAL: 2}.get(record.levelno, 6)
            self._journal.send(self.format(record), PRIORITY=str(priority),
                               SYSLOG_IDENTIFIER="happyhouse", LOGGER=record.name, **fields)
        except Exception:  # logging must never take the door down
            self.handleError(record)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is now (tests and wrappers replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def has_handler() -> bool:
    """True once :func:`setup_logging` has installed the daemon's handler."""
    return any(getattr(h, "_happyhouse", False) for h in logging.getLogger().handlers)


def journal_handler():
    """A journald handler when running under systemd with systemd-python, else None."""
    if not os.environ.get("JOURNAL_STREAM") and not os.environ.get("INVOCATION_ID"):
        return None
    try:
        from systemd import journal
    except ImportError:
        return None
    return _JournalFieldHandler(journal)


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_happyhouse", False):
            root.removeHandler(handler)
    handler = journal_handler()
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(_StderrFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_CleanFormatter("%(message)s"))
    handler._happyhouse = True
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
