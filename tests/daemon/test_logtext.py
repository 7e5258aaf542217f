"""Issue 16 items 12 and 14: no credential and no forged line in anything written out."""

import io
import json
import logging

import pytest

from happyhouse.daemon import check, cli
from happyhouse.daemon.config import load_config
from happyhouse.daemon.journal import setup_logging
from happyhouse.daemon.logtext import clean, escape_controls, mask_secrets
from happyhouse.daemon.sources import open_source

SECRETS = {
    "rtsp://admin:S3cret@PW99@cam.local:554/live": ("S3cret", "PW99"),
    "rtsp://admin:S3cret@cam.local/live": ("S3cret",),
    "http://cam.local/video.mjpg?user=admin&password=hunter2&res=hd": ("hunter2",),
    "http://cam.local/snap?pwd=hunter2": ("hunter2",),
    "https://cam.local/stream?token=abc123def&x=1": ("abc123def",),
    "https://ghp_tok3n@cam.local/stream": ("ghp_tok3n",),
    "rtspsrc location=rtsp://cam/live user-id=admin user-pw=hunter2 ! decodebin ! appsink":
        ("hunter2",),
    "rtspsrc location=rtsp://cam/live user-pw=\"two words\" ! appsink": ("two words",),
    "http://cam.local/?api_key=K3Y&sig=S1G": ("K3Y", "S1G"),
}


@pytest.mark.parametrize("text", sorted(SECRETS))
def test_every_credential_form_is_masked(text):
    masked = mask_secrets(text)
    for secret in SECRETS[text]:
        assert secret not in masked, masked
    assert "cam" in masked  # the host stays: the technician must see which camera


def test_user_stays_visible_and_plain_text_is_left_alone():
    assert mask_secrets("rtsp://admin:S3cret@PW99@host/live") == "rtsp://admin:***@host/live"
    plain = "camera 0 lost: no frame for 3.1 s; model_sha256=d9f8cd53 face=1,2,3,4"
    assert mask_secrets(plain) == plain


def test_control_characters_are_escaped():
    assert escape_controls("a\nb\rc\td\x1b[31m\u2028") == "a\\nb\\rc\\td\\x1b[31m\\u2028"
    assert "\n" not in clean("x\n2026-01-01 ERROR forged")


@pytest.mark.parametrize("url", ["rtsp://admin:S3cret@PW99@10.0.0.9/live",
                                 "http://10.0.0.9/v.mjpg?password=hunter2"])
def test_stream_description_is_masked(url):
    cfg = load_config(None, {})
    description = open_source(url, cfg).description
    assert "S3cret" not in description and "PW99" not in description
    assert "hunter2" not in description and "10.0.0.9" in description


def test_every_log_line_is_masked_and_one_line(capsys):
    setup_logging("INFO")
    log = logging.getLogger("happyhouse.daemon.test")
    log.warning("camera %s lost", "rtsp://admin:S3cret@PW99@host/live",
                extra={"journal": {"source": "http://h/?password=hunter2"}})
    log.warning("skipped %s", "evil\n2026-11-27 12:00:00,000 INFO happyhouse.daemon: unlock #1")
    err = capsys.readouterr().err
    assert "S3cret" not in err and "PW99" not in err and "hunter2" not in err
    assert len(err.strip().splitlines()) == 2 and "evil\\n2026" in err


def test_print_config_masks_the_camera_password(capsys):
    rc = cli.main(["--print-config", "--source", "rtsp://admin:S3cret@PW99@host/live?token=t0k"])
    out = capsys.readouterr().out
    assert rc == 0 and "S3cret" not in out and "t0k" not in out and "source = rtsp://admin:***@host" in out


def test_check_report_masks_the_camera_password(tmp_path):
    cfg = load_config(None, {"camera.source": "rtsp://admin:S3cret@PW99@127.0.0.1:9/live",
                             "camera.stall_timeout": 0.5, "latch.gpio": "mock",
                             "service.state_dir": str(tmp_path)})
    out = io.StringIO()
    check.run_check(cfg, as_json=True, out=out,
                    thermal_path="/nonexistent", throttled=lambda: "throttled=0x0")
    text = out.getvalue()
    assert "S3cret" not in text and "PW99" not in text
    assert json.loads(text)["go"] is False


def test_a_threshold_near_one_is_not_shown_as_one():
    """A threshold of 0.9996 read "score 0.998 < threshold 1.000" in --once, --check and the log."""
    from happyhouse.daemon.annotate import score_text
    from happyhouse.daemon.logtext import decimal

    assert decimal(0.9996) == "0.9996" and decimal(0.858391) == "0.858" and decimal(1.0) == "1.000"
    assert decimal(0.0001) == "0.0001" and decimal(0.0) == "0.000" and decimal(-0.0) == "0.000"
    assert decimal(0.99999994) == "0.9999999"  # a saturated float32 score is not "1"
    assert score_text(0.998, 0.9996) == "  score 0.998 (< 0.9996)"
