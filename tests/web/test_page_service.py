"""The page as part of the door service: ``--web``, ``run_service``, reloads, refusals."""

import http.client
import socket
import threading
import time

import pytest
from gpiozero.pins.mock import MockFactory

from happyhouse.daemon import cli
from happyhouse.daemon.fakes import FakeSource
from happyhouse.daemon.runner import Signals, run_service


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_service_serves_the_page_and_closes_it_on_stop(make_page_cfg, smiling_door_frames):
    port = free_port()
    cfg = make_page_cfg(**{"web.address": f"127.0.0.1:{port}"})
    signals = Signals()
    factory = MockFactory()
    source = FakeSource(smiling_door_frames[1], fps=15, loop=True)
    done = []
    thread = threading.Thread(target=lambda: done.append(
        run_service(cfg, pin_factory=factory, source=source, signals=signals)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    status = None
    while time.monotonic() < deadline and status != 200:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/status.json", headers={"Host": f"127.0.0.1:{port}"})
            status = conn.getresponse().status
            conn.close()
        except OSError:
            time.sleep(0.1)
    assert status == 200
    signals.stop.set()
    thread.join(timeout=20)
    assert done == [0]
    with pytest.raises(OSError):  # the page went with the service
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_web_flag_off_host_without_token_is_one_line_and_drives_nothing(tmp_path, capsys,
                                                                        monkeypatch):
    import happyhouse.daemon.latch as latch
    import happyhouse.daemon.service as service

    claimed = []
    for module in (latch, service):
        monkeypatch.setattr(module, "make_pin_factory", lambda *a, **k: claimed.append(a))
    rc = cli.main(["--gpio", "mock", "--source", str(tmp_path), "--state-dir", str(tmp_path / "s"),
                   "--web", "0.0.0.0:8321"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "token_file" in err
    assert claimed == []  # refused before any pin factory was made


@pytest.mark.parametrize("port", ["\u00b2", "\uff18321"])
def test_a_port_of_digits_that_are_not_ascii_is_one_line_and_drives_nothing(port, tmp_path, capsys):
    """'²' passes str.isdigit() but not int(): it was a ValueError traceback."""
    rc = cli.main(["--gpio", "mock", "--source", str(tmp_path), "--state-dir", str(tmp_path / "s"),
                   "--web", f"127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "is not 0 to 65535" in err and "Traceback" not in err


def test_web_flag_belongs_to_the_service(tmp_path, capsys):
    rc = cli.main(["--once", "--gpio", "mock", "--source", str(tmp_path), "--web", "127.0.0.1:8321"])
    assert rc == 2 and "--web only works with the service" in capsys.readouterr().err


def test_a_bad_token_file_stops_the_service_with_the_latch_locked(tmp_path, make_page_cfg, smiling_door_frames):
    from happyhouse.daemon.errors import ConfigError

    bad = tmp_path / "token"
    bad.write_text("z" * 40)
    bad.chmod(0o644)
    cfg = make_page_cfg(**{"web.token_file": str(bad)})
    factory = MockFactory()
    with pytest.raises(ConfigError, match="chmod 600"):
        run_service(cfg, pin_factory=factory, source=FakeSource(smiling_door_frames[0], loop=True),
                    signals=Signals(), max_frames=5)
    assert all(not s.state for p in factory.pins.values() for s in p.states) if factory.pins else True


def test_a_reload_that_changes_web_restarts_the_page_and_a_bad_one_leaves_it_off(
        make_page_cfg, smiling_door_frames, tmp_path):
    from happyhouse.daemon.runner import reopen_page
    from happyhouse.daemon.service import Service

    off = make_page_cfg(**{"web.enabled": False})
    on = make_page_cfg(**{"web.address": f"127.0.0.1:{free_port()}"})
    service = Service.from_config(on, pin_factory=MockFactory(),
                                  source=FakeSource(smiling_door_frames[1], loop=True))
    service.start()
    try:
        page = reopen_page(None, off, service)  # off -> on: the page starts
        assert page is not None and page.httpd is not None
        assert reopen_page(page, on, service) is page  # [web] unchanged: the same page
        bad = tmp_path / "bad-token"
        bad.write_text("q" * 30)
        bad.chmod(0o644)
        service.cfg = make_page_cfg(**{"web.token_file": str(bad)})
        assert reopen_page(page, on, service) is None  # refused: the page is off, the door runs
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", page.httpd.server_address[1]), timeout=2)
    finally:
        service.stop("test")
        service.close()


def test_a_collection_folder_the_disk_cannot_hold_leaves_the_page_off_not_the_door(
        make_page_cfg, smiling_door_frames, tmp_path, caplog):
    """A full state disk made the collection folder impossible, and the whole service exited 2
    at every start (a restart loop that ends in start-limit-hit); the same config without the
    page ran. Now the page is off, said in the log, and the door opens for a smile."""
    blocked = tmp_path / "full"
    blocked.write_text("stands in for a disk that cannot hold the folder")
    port = free_port()
    cfg = make_page_cfg(**{"web.address": f"127.0.0.1:{port}",
                           "web.collect_dir": str(blocked / "collect")})
    factory = MockFactory()
    source = FakeSource(smiling_door_frames[0], fps=15, loop=True)
    with caplog.at_level("INFO"):
        assert run_service(cfg, pin_factory=factory, source=source, max_frames=40) == 0
    assert "the door page is off" in caplog.text and "collect_dir" in caplog.text
    assert "unlock #1 (smile)" in caplog.text  # the door itself ran and opened
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
