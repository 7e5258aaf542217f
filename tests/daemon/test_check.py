import io
import json
import socket

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from happyhouse.daemon import check
from happyhouse.daemon.config import load_config
from happyhouse.daemon.fakes import FakeSource, fake_clock


def _source(frames=None, **kw):
    clock, sleep = fake_clock()
    if frames is None:
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(20)]
    return FakeSource(frames, fps=15, clock=clock, sleep=sleep, **kw)


@pytest.fixture
def cfg(tmp_path):
    return load_config(None, {"service.state_dir": str(tmp_path / "state" / "deeper")})


def _run(cfg, *, test_latch=False, as_json=True, **inject):
    out = io.StringIO()
    inject.setdefault("thermal_path", "/nonexistent/temp")
    inject.setdefault("throttled", lambda: "throttled=0x0")
    code = check.run_check(cfg, test_latch=test_latch, as_json=as_json, out=out,
                           sleep=lambda s: None, **inject)
    text = out.getvalue()
    return code, (json.loads(text) if as_json else text)


def test_go_report_with_everything_present(cfg, tmp_path):
    thermal = tmp_path / "temp"
    thermal.write_text("48312\n")
    factory = MockFactory()
    code, report = _run(cfg, source=_source(), pin_factory=factory, thermal_path=str(thermal))
    by = {c["name"]: c for c in report["checks"]}
    assert code == 0 and report["go"] is True
    assert by["model"]["status"] == "ok" and len(by["model"]["sha256"]) == 64
    cam = by["camera"]
    assert (cam["width"], cam["height"]) == (640, 480) and cam["fps"] == pytest.approx(15, rel=0.1)
    assert cam["blur_var"] > 1000 and 100 < cam["brightness"] < 150  # noise: sharp, mid grey
    assert by["temperature"]["celsius"] == pytest.approx(48.312)
    assert by["throttling"]["status"] == "ok"
    assert by["disk"]["status"] == "ok" and by["disk"]["path"] == str(tmp_path)
    assert by["gpio"]["pulsed"] is False
    pin = factory.pin(17)
    assert all(s.state is False for s in pin.states)  # claimed locked, never opened


def test_test_latch_pulses_and_relocks(cfg):
    factory = MockFactory()
    code, report = _run(cfg, source=_source(), pin_factory=factory, test_latch=True)
    assert code == 0
    assert [s.state for s in factory.pin(17).states][-2:] == [True, False]


def test_camera_failure_is_no_go_and_others_still_run(cfg):
    code, report = _run(cfg, source=_source(fail_open=True), pin_factory=MockFactory())
    by = {c["name"]: c["status"] for c in report["checks"]}
    assert code == 1 and report["go"] is False
    assert by["camera"] == "fail" and by["model"] == "ok" and by["gpio"] in ("ok", "warn")


def test_dark_blurry_camera_warns_but_goes(cfg):
    dark = [np.full((480, 640, 3), 10, np.uint8)] * 20
    code, report = _run(cfg, source=_source(dark), pin_factory=MockFactory())
    cam = {c["name"]: c for c in report["checks"]}["camera"]
    assert code == 0 and cam["status"] == "warn" and "dark" in cam["detail"]


def test_a_camera_slower_than_the_votes_gap_is_no_go(cfg):
    """A field probe: a camera at 1.5 fps (or a model slower than max_gap) never opens: every
    vote resets on its gap. --check said GO."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(20)]
    clock, sleep = fake_clock()
    code, report = _run(cfg, source=FakeSource(frames, fps=1.5, clock=clock, sleep=sleep),
                        pin_factory=MockFactory())
    cam = {c["name"]: c for c in report["checks"]}["camera"]
    assert code == 1 and cam["status"] == "fail"
    assert "more than [decision] max_gap 0.6 s: the vote could never pass" in cam["detail"]


def test_a_camera_frame_the_door_cannot_use_is_one_clear_line(cfg):
    """H x W x 1 frames gave OpenCV's own "Bad number of channels" error in the report."""
    frames = [np.zeros((480, 640, 1), np.uint8)] * 20
    code, report = _run(cfg, source=_source(frames), pin_factory=MockFactory())
    cam = {c["name"]: c for c in report["checks"]}["camera"]
    assert code == 1 and cam["status"] == "fail"
    assert cam["detail"] == "frame must be HxWx3 with H, W >= 8, got shape (480, 640, 1)"


def test_a_recording_as_the_camera_of_a_real_latch_is_no_go(tmp_path):
    cfg = load_config(None, {"service.state_dir": str(tmp_path), "latch.gpio": "lgpio"})
    source = _source()
    source.kind = "video"
    code, report = _run(cfg, source=source, pin_factory=MockFactory())
    cam = {c["name"]: c for c in report["checks"]}["camera"]
    assert code == 1 and cam["status"] == "fail" and "a recording, not a live camera" in cam["detail"]
    mock = load_config(None, {"service.state_dir": str(tmp_path), "latch.gpio": "mock"})
    source = _source()
    source.kind = "video"
    _, report = _run(mock, source=source, pin_factory=MockFactory())
    assert "recording" not in {c["name"]: c for c in report["checks"]}["camera"]["detail"]


def test_mock_pins_named_by_the_environment_are_mock_pins_to_check_too(tmp_path, monkeypatch):
    """A review: with gpio = auto and GPIOZERO_PIN_FACTORY=mock the service replays a
    recording on mock pins, while --check called it NO-GO."""
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    cfg = load_config(None, {"service.state_dir": str(tmp_path), "latch.gpio": "auto"})
    source = _source()
    source.kind = "video"
    _, report = _run(cfg, source=source, pin_factory=MockFactory())
    assert "recording" not in {c["name"]: c for c in report["checks"]}["camera"]["detail"]


def test_bad_model_is_no_go(tmp_path):
    cfg = load_config(None, {"model.bundle": str(tmp_path / "nothing"),
                             "service.state_dir": str(tmp_path)})
    code, report = _run(cfg, source=_source(), pin_factory=MockFactory())
    by = {c["name"]: c for c in report["checks"]}
    assert code == 1 and by["model"]["status"] == "fail" and "does not exist" in by["model"]["detail"]
    assert by["face detector"]["status"] == "ok"  # loaded on its own when the model failed


def test_missing_cascade_is_no_go(tmp_path):
    cfg = load_config(None, {"face.detector": "haar", "face.cascade": str(tmp_path / "gone.xml"),
                             "service.state_dir": str(tmp_path)})
    code, report = _run(cfg, source=_source(), pin_factory=MockFactory())
    by = {c["name"]: c for c in report["checks"]}
    assert code == 1 and by["model"]["status"] == "fail" and "gone.xml" in by["model"]["detail"]


def test_throttling_decoded():
    item = check.check_throttling(lambda: "throttled=0x50005")
    assert item.status == "fail" and "under-voltage now" in item.detail
    assert check.check_throttling(lambda: "garbage").status == "n/a"
    assert check.check_throttling(lambda: "throttled=0x20000").status == "warn"


def test_hot_pi_warns(tmp_path):
    thermal = tmp_path / "t"
    thermal.write_text("81000")
    assert check.check_temperature(str(thermal)).status == "warn"
    assert check.check_temperature(str(tmp_path / "none")).status == "n/a"


def test_human_report(cfg):
    code, text = _run(cfg, as_json=False, source=_source(), pin_factory=MockFactory())
    assert text.startswith("HappyHouse check: GO") and "[  OK] model" in text
    assert "[ N/A] temperature" in text


def test_cli_check_json_with_unopenable_camera(capsys, tmp_path):
    from happyhouse.daemon import cli

    code = cli.main(["--check", "--json", "--gpio", "mock", "--source", str(tmp_path / "no.jpg"),
                     "--state-dir", str(tmp_path)])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and {c["name"]: c["status"] for c in report["checks"]}["camera"] == "fail"


@pytest.mark.parametrize("detector, says, never", [
    ("blazeface", "128x128", "detect width"),
    ("haar", "detect width 160", "128"),
])
def test_face_detector_line_says_what_the_detector_sees(detector, says, never):
    """Issue 16 item 24: with BlazeFace --check said 'detect width 128' where the config says 160."""
    cfg = load_config(None, {"face.detector": detector})
    assert cfg.face_detect_width == 160
    item = check.check_face_gate(cfg, {})
    assert item.status == "ok" and says in item.detail and never not in item.detail, item.detail


@pytest.mark.parametrize("detector, size, sees", [
    ("blazeface", (640, 480), "at 640x480 it sees faces from about 96 px"),
    ("blazeface", (1280, 720), "at 1280x720 it sees faces from about 192 px"),
    ("haar", (640, 480), "at 640x480 it sees faces from about 80 px"),
])
def test_face_detector_line_says_the_smallest_face_it_sees(detector, size, sees):
    """It said "min face 48 px" where BlazeFace finds no face under ~96 px at 640x480."""
    cfg = load_config(None, {"face.detector": detector, "camera.width": size[0],
                             "camera.height": size[1]})
    item = check.check_face_gate(cfg, {})
    assert sees in item.detail and "min face 48 px" in item.detail, item.detail
    assert item.data["smallest_face"] == int(sees.split()[-2])


def test_the_runtime_and_its_version_are_reported(cfg):
    from importlib.metadata import version

    code, report = _run(cfg, source=_source(), pin_factory=MockFactory())
    runtime = {c["name"]: c for c in report["checks"]}["runtime"]
    assert runtime["status"] == "ok" and runtime["version"] == version("ai-edge-litert")
    assert f"ai_edge_litert {version('ai-edge-litert')}" in runtime["detail"]


def test_a_runtime_known_not_to_work_is_no_go(cfg, monkeypatch):
    import happyhouse.daemon.runtime as rt

    monkeypatch.setattr(rt, "known_problem", lambda *a, **k: "segfaults here (evidence)")
    code, report = _run(cfg, source=_source(), pin_factory=MockFactory())
    by = {c["name"]: c for c in report["checks"]}
    assert code == 1 and by["runtime"]["status"] == "fail"
    assert "known not to work" in by["runtime"]["detail"] and by["model"]["status"] == "fail"


# -- what the service would refuse at start must not pass --check (a field probe) ----------
@pytest.mark.parametrize("gpio, status", [("lgpio", check.FAIL), ("mock", check.WARN)])
def test_a_state_folder_the_service_cannot_lock_is_no_go(tmp_path, monkeypatch, gpio, status):
    """A read-only state folder: --check said GO with "disk OK", and the service then
    refused to start (its lock cannot be taken). The kernel's answer is given here: the
    tests run as root, for whom every folder is writable."""
    cfg = load_config(None, {"latch.gpio": gpio, "service.state_dir": str(tmp_path)})
    monkeypatch.setattr(check.os, "access", lambda path, mode: False)
    item = check.check_disk(cfg)
    assert item.status == status and "not writable by this user" in item.detail


def test_a_card_turned_read_only_after_a_disk_error_is_no_go_and_the_service_says_why(
        tmp_path, monkeypatch):
    """Found on an ext4 card with errors=remount-ro after an error: os.access still said
    writable, --check said GO, and the service refused to start "run as the service's user"."""
    import errno
    import tempfile

    from happyhouse.daemon import statelock
    from happyhouse.daemon.errors import ConfigError

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    cfg = load_config(None, {"latch.gpio": "lgpio", "service.state_dir": str(tmp_path)})
    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    item = check.check_disk(cfg)
    assert item.status == check.FAIL and "read-only file system" in item.detail
    assert "fsck" in item.detail
    monkeypatch.setattr(statelock.os, "open", read_only)
    with pytest.raises(ConfigError, match="read-only .*fsck") as refused:
        statelock.acquire(str(tmp_path), "the door service")
    assert "sudo -u happyhouse" not in str(refused.value)


def test_the_door_page_is_checked_as_the_service_would_start_it(tmp_path):
    token = tmp_path / "web-token"
    token.write_text("q" * 30)
    token.chmod(0o644)  # readable by others: the service refuses to start the page
    with socket.socket() as probe:  # a port nothing holds (8321 may be a running door's)
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    cfg = load_config(None, {"web.enabled": True, "web.address": f"0.0.0.0:{port}",
                             "web.token_file": str(token)})
    item = check._guard("web page", lambda: check.check_page(cfg))
    assert item.status == check.FAIL and "chmod 600" in item.detail
    token.chmod(0o600)
    assert check.check_page(cfg).status == check.OK
    assert check.check_page(load_config(None, {})).status == check.NA


def test_a_threshold_override_and_a_page_port_in_use_are_warned(tmp_path):
    """--check said OK, GO of a threshold of 0.999 left in the config (the door never opened)
    and of a page port another program held (the service then would not start)."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cfg = load_config(None, {"model.threshold": 0.999, "web.enabled": True,
                                 "web.address": f"127.0.0.1:{port}",
                                 "service.state_dir": str(tmp_path / "state")})
        model = check.check_model(cfg, {})
        page = check.check_page(cfg)
    assert model.status == "warn" and "threshold 0.999 overrides the bundle's validated" in model.detail
    assert page.status == "warn" and "cannot be used now" in page.detail
