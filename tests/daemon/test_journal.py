"""Logging: journald fields with systemd-python under systemd, key=value on stderr otherwise."""

import io
import logging
import sys
import types

import pytest

from happyhouse.daemon import journal


@pytest.fixture
def clean_root():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield root
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_stderr_gets_fields_as_key_value(clean_root, monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    journal.setup_logging("INFO")
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)  # the handler follows sys.stderr
    logging.getLogger("happyhouse.daemon.test").info(
        "frame 7: happy", extra={"journal": {"SCORE": "0.93", "verdict": "happy"}})
    line = buf.getvalue()
    assert line.endswith("frame 7: happy score=0.93 verdict=happy\n")
    assert journal.has_handler()


def test_setup_twice_keeps_one_handler(clean_root, monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    journal.setup_logging("INFO")
    journal.setup_logging("DEBUG")
    ours = [h for h in clean_root.handlers if getattr(h, "_happyhouse", False)]
    assert len(ours) == 1 and clean_root.level == logging.DEBUG


def test_under_systemd_fields_go_to_journald(clean_root, monkeypatch):
    sent = []
    fake = types.ModuleType("systemd.journal")
    fake.send = lambda message, **fields: sent.append((message, fields))
    package = types.ModuleType("systemd")
    package.journal = fake
    monkeypatch.setitem(sys.modules, "systemd", package)
    monkeypatch.setitem(sys.modules, "systemd.journal", fake)
    monkeypatch.setenv("INVOCATION_ID", "abc")
    journal.setup_logging("INFO")
    logging.getLogger("happyhouse.daemon.service").warning(
        "frame 3: not happy", extra={"journal": {"score": 0.12, "face": "1,2,3,4"}})
    (message, fields), = sent
    assert message == "frame 3: not happy"
    assert fields["HAPPYHOUSE_SCORE"] == "0.12" and fields["HAPPYHOUSE_FACE"] == "1,2,3,4"
    assert fields["PRIORITY"] == "4" and fields["SYSLOG_IDENTIFIER"] == "happyhouse"


def test_without_systemd_python_falls_back_to_stderr(clean_root, monkeypatch):
    monkeypatch.setenv("INVOCATION_ID", "abc")
    monkeypatch.setitem(sys.modules, "systemd", None)  # import fails
    assert journal.journal_handler() is None
