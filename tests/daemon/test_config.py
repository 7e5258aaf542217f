"""Config: every key validated (errors name the key), flags override the file, the example is current."""

import re
from pathlib import Path

import pytest

from happyhouse.daemon.cli import build_parser, config_from_args
from happyhouse.daemon.config import (KEYS, KEY_BY_NAME, Config, build_config, example_ini,
                                      load_config, read_ini)
from happyhouse.daemon.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def invalid_values(key):
    """Values that must be rejected for ``key``."""
    bad = []
    if key.kind == "int":
        bad += ["abc", "1.5", "", "true", "1_0", "\uff13"]  # int() took both (10 and 3)
    if key.kind in ("float", "optfloat"):
        bad += ["abc", "nan", "1,5"]
    if key.kind in ("int", "float", "optfloat") and key.low is not None:
        bad += [str(key.low - 1), str(key.high * 2 + 1)]
    if key.kind == "float":
        bad += ["", "inf"]
    if key.kind == "bool":
        bad += ["maybe", "2", ""]
    if key.kind == "choice":
        bad += ["bogus", ""]
    if key.kind in ("pin", "optpin"):
        bad += ["pin17", "GPIO", "GPIO123", "17a",
                "GPIO\u0661\u0667", "GPIO\uff11\uff17"]  # digits, not ASCII: gpiozero refuses them
    if key.kind == "pin":
        bad += [""]
    if key.dotted in ("camera.source", "service.state_dir"):
        bad += ["", "   "]
    if key.dotted == "web.address":
        bad += ["", "8321", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:-1", "door.local:8321",
                "127.0.0.1:80a", "[::1]", "127.0.0.1:\u00b2"]
    return bad


CASES = [(key.dotted, value) for key in KEYS for value in invalid_values(key)]


def test_every_key_kind_has_invalid_cases():
    free_text = {"model.bundle", "face.yunet_model", "face.cascade",  # paths checked where used
                 "web.token_file", "web.collect_dir"}
    covered = {dotted for dotted, _ in CASES}
    assert covered | free_text == set(KEY_BY_NAME)


@pytest.mark.parametrize("dotted,value", CASES)
def test_invalid_value_in_file_names_the_key(tmp_path, dotted, value):
    section, name = dotted.split(".")
    path = tmp_path / "bad.conf"
    path.write_text(f"[{section}]\n{name} = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path), required=True)
    message = str(info.value)
    assert f"[{section}] {name}" in message and "\n" not in message
    assert str(path) in message


@pytest.mark.parametrize("dotted,value", CASES)
def test_invalid_value_as_override_names_the_key(dotted, value):
    section, name = dotted.split(".")
    with pytest.raises(ConfigError, match=re.escape(f"[{section}] {name}")):
        load_config(None, {dotted: value})


def test_out_of_range_message_says_what_is_allowed():
    with pytest.raises(ConfigError, match=r"allowed 1 to 8"):
        load_config(None, {"model.threads": 9})


def test_defaults_are_valid_and_match_the_table():
    cfg = build_config({})
    for key in KEYS:
        assert cfg.get(key.dotted) == key.default
    assert cfg.decision_window == 5 and cfg.latch_pin == "GPIO17"


def test_config_is_frozen():
    cfg = build_config({})
    with pytest.raises(Exception):
        cfg.values["decision.window"] = 9
    with pytest.raises(Exception):
        cfg.source_path = "x"
    with pytest.raises(ConfigError, match="unknown config key"):
        cfg.get("decision.nope")
    with pytest.raises(AttributeError):
        cfg.decision_nope


@pytest.mark.parametrize("values,needle", [
    ({"decision.votes_needed": 6, "decision.window": 5}, "must not exceed window"),
    ({"decision.unlock_seconds": 20, "decision.max_unlock_seconds": 10}, "max_unlock_seconds"),
    ({"latch.door_contact_pin": "GPIO17"}, "must be different pins"),
    ({"latch.exit_button_pin": "GPIO22", "latch.door_contact_pin": "gpio22"}, "different pins"),
    ({"face.detector": "yunet"}, "yunet_model"),
    # a field probe: fps 1 with max_gap 0.6 reset every vote, the door never opened
    ({"camera.fps": 1}, r"fps 1 gives a frame every 1\.00 s, more than \[decision\] max_gap"),
    ({"camera.fps": 2, "decision.max_gap": 0.4}, "more than .decision. max_gap .0.4 s."),
])
def test_relations_between_keys(values, needle):
    with pytest.raises(ConfigError, match=needle):
        build_config(values)


def test_a_slow_camera_is_fine_when_one_frame_decides_or_the_gap_allows_it():
    build_config({"camera.fps": 1, "decision.votes_needed": 1})
    build_config({"camera.fps": 1, "decision.max_gap": 1.5})
    with pytest.raises(ConfigError, match="max_gap"):
        build_config({"camera.fps": 1, "camera.source": "/dev/video0"})


def test_pictures_replay_at_fps_so_the_rule_holds_for_them(tmp_path):
    """A review: the rule skipped a folder of pictures, which does replay at fps."""
    with pytest.raises(ConfigError, match="max_gap"):
        build_config({"camera.fps": 1, "camera.source": str(tmp_path)})


@pytest.mark.parametrize("source", ["rtsp://door.local/stream", "libcamerasrc ! appsink"])
def test_a_stream_runs_at_its_own_rate_whatever_fps_says(source):
    """An upgrade probe: fps is never asked of a stream or a pipeline, so a house whose
    config said fps = 1 for one voted at the stream's own rate; the rule refused it."""
    build_config({"camera.fps": 1, "camera.source": source})


@pytest.mark.parametrize("text", [
    "[DEFAULT]\npin = GPIO5\nactive_high = false\n",  # was read as GPIO17, active high
    "[DEFAULT]\nactive_high = false\n[latch]\npin = GPIO5\n",  # leaked into [latch]
])
def test_a_default_section_is_an_unknown_section(tmp_path, text):
    """configparser's [DEFAULT] either vanished (its keys silently defaulted) or was
    merged into every section; an active-low latch read as active high is held open."""
    path = tmp_path / "c.conf"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"unknown section \[DEFAULT\] \(\[DEFAULT\] is not read"):
        load_config(str(path))


def test_unknown_section_and_key_are_errors(tmp_path):
    path = tmp_path / "c.conf"
    path.write_text("[door]\npin = GPIO17\n")
    with pytest.raises(ConfigError, match=r"unknown section \[door\]"):
        load_config(str(path))
    path.write_text("[latch]\npins = GPIO17\n")
    with pytest.raises(ConfigError, match="latch.pins"):
        load_config(str(path))


def test_missing_unreadable_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "nope.conf"), required=True)
    path = tmp_path / "broken.conf"
    path.write_text("pin = GPIO17\n")  # no section header
    with pytest.raises(ConfigError, match="not valid INI"):
        load_config(str(path))
    path.write_bytes(b"[latch]\npin = \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(str(path))


def test_values_are_normalised(tmp_path):
    path = tmp_path / "c.conf"
    path.write_text("[latch]\npin = gpio27   # the relay\nactive_high = no\ngpio = MOCK\n"
                    "[model]\nthreshold =\n")
    cfg = load_config(str(path))
    assert cfg.latch_pin == "GPIO27" and cfg.latch_active_high is False
    assert cfg.latch_gpio == "mock" and cfg.model_threshold is None
    assert cfg.source_path == str(path)


def test_flags_override_the_file(tmp_path):
    path = tmp_path / "c.conf"
    path.write_text("[latch]\npin = GPIO27\ngpio = lgpio\n[model]\nthreads = 2\n"
                    "[decision]\nunlock_seconds = 7\n")
    args = build_parser().parse_args(["--config", str(path), "--pin", "GPIO5", "--gpio", "mock",
                                      "--threshold", "0.7"])
    cfg = config_from_args(args)
    assert cfg.latch_pin == "GPIO5" and cfg.latch_gpio == "mock"  # flags win
    assert cfg.model_threshold == 0.7
    assert cfg.model_threads == 2 and cfg.decision_unlock_seconds == 7.0  # file kept
    bad = build_parser().parse_args(["--config", str(path), "--threads", "99"])
    with pytest.raises(ConfigError, match=r"command line: \[model\] threads"):
        config_from_args(bad)


def test_print_config_round_trips(tmp_path):
    cfg = load_config(None, {"latch.pin": "GPIO5", "model.threshold": 0.61,
                             "latch.exit_button_pin": "GPIO6", "service.snapshot_on_unlock": True})
    path = tmp_path / "effective.conf"
    path.write_text(cfg.to_ini())
    again = load_config(str(path))
    assert dict(again.values) == dict(cfg.values)


def test_replace_validates():
    cfg = build_config({})
    assert cfg.replace(decision_window=7).decision_window == 7
    with pytest.raises(ConfigError):
        cfg.replace(decision_window=0)


def test_example_documents_every_key_with_its_default(tmp_path):
    text = example_ini()
    for key in KEYS:
        assert re.search(rf"^#{re.escape(key.name)} =", text, re.M), key.dotted
    # all commented: the example as shipped is exactly the defaults
    path = tmp_path / "example.conf"
    path.write_text(text)
    assert dict(load_config(str(path)).values) == dict(build_config({}).values)
    # uncommenting every key still gives the defaults (the shown values are the defaults)
    path.write_text(re.sub(r"^#(\w+ =)", r"\1", text, flags=re.M))
    raw = read_ini(str(path))
    assert set(raw) == set(KEY_BY_NAME)
    assert dict(load_config(str(path)).values) == dict(build_config({}).values)


def test_committed_example_config_is_current():
    committed = (REPO / "deploy" / "happyhouse.conf").read_text()
    assert committed == example_ini(), (
        "deploy/happyhouse.conf is out of date: regenerate it with\n"
        "python -c 'from happyhouse.daemon.config import example_ini; "
        "open(\"deploy/happyhouse.conf\", \"w\").write(example_ini())'")


def test_config_type():
    assert isinstance(load_config(None, {}), Config)


def test_a_path_key_expands_the_home_folder_as_the_camera_source_does(tmp_path, monkeypatch):
    """No shell reads a config file: "bundle = ~/my_bundle" said "does not exist" while the
    folder was there (the camera source and the collect folder expanded "~", these did not)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "door.conf"
    path.write_text("[model]\nbundle = ~/my_bundle\n[service]\nstate_dir = ~/state\n"
                    "[web]\ntoken_file = ~/token\ncollect_dir = ~/frames\n"
                    "[face]\nyunet_model = ~/yunet.onnx\ncascade = ~/c.xml\n")
    cfg = load_config(str(path))
    for dotted, name in (("model.bundle", "my_bundle"), ("service.state_dir", "state"),
                         ("web.token_file", "token"), ("web.collect_dir", "frames"),
                         ("face.yunet_model", "yunet.onnx"), ("face.cascade", "c.xml")):
        assert cfg.get(dotted) == str(tmp_path / name), dotted
    assert load_config(None).model_bundle == ""  # not given: still the shipped bundle


def test_the_model_flag_finds_a_bundle_under_the_home_folder(tmp_path, monkeypatch, capsys):
    import shutil

    from happyhouse.daemon.bundle import default_bundle_path
    from happyhouse.daemon.cli import main

    import cv2
    import numpy as np

    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(default_bundle_path(), tmp_path / "my_bundle")
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((480, 640, 3), 90, np.uint8))
    # the bundle is loaded and self-tested; a grey frame has no face: exit 1, not 2
    assert main(["--once", "--gpio", "mock", "--model", "~/my_bundle",
                 "--state-dir", str(tmp_path / "s"), "--source", str(tmp_path / "grey.png")]) == 1
    assert "does not exist" not in capsys.readouterr().err


def test_an_empty_config_file_is_refused_not_read_as_every_default(tmp_path):
    """A power cut left the config empty: it was read as every default (GPIO17, active high),
    so an active-low latch's "locked" level held the door open, service and reload alike."""
    path = tmp_path / "happyhouse.conf"
    path.write_bytes(b"")
    with pytest.raises(ConfigError, match="is empty .*restore it") as info:
        load_config(str(path))
    assert "\n" not in str(info.value)
    path.write_text("[latch]\n")  # the installer's template: sections, every key commented
    assert load_config(str(path)).latch_pin == "GPIO17"


def test_an_indented_line_is_refused_not_folded_into_the_value_above(tmp_path):
    """INI reads an indented line as more of the value above: 'detector = haar' indented
    under the cascade became part of its path, and the door ran BlazeFace, silently."""
    path = tmp_path / "h.conf"
    path.write_text("[face]\ncascade = /x/cascade.xml\n    detector = haar\n")
    with pytest.raises(ConfigError, match=r"\[face\] cascade: the line 'detector = haar' after it "
                                          r"is indented.*remove the spaces") as info:
        load_config(str(path))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["0_5", "1_20", "\uff15", "0.8_5", "nan", "inf", "1,5", "0x1"])
def test_a_decimal_setting_takes_plain_digits_only(tmp_path, text):
    """float() read "0_5" as 5.0 (an unlock of 5 s meant as 0.5) and the fullwidth "５" as 5."""
    with pytest.raises(ConfigError, match="unlock_seconds .* invalid: expected a number in plain digits"):
        load_config(None, {"decision.unlock_seconds": text})


@pytest.mark.parametrize("text, value", [("0.5", 0.5), ("5", 5.0), (".5", 0.5), ("2.", 2.0),
                                         ("5e-1", 0.5), ("+1.5", 1.5)])
def test_plain_decimals_still_read(text, value):
    assert load_config(None, {"decision.unlock_seconds": text}).decision_unlock_seconds == value


def test_minus_zero_reads_as_zero():
    assert str(load_config(None, {"model.threshold": "-0"}).model_threshold) == "0.0"


@pytest.mark.parametrize("pins", [("GPIO17", "BCM17"), ("GPIO17", "BOARD11"), ("17", "GPIO17"),
                                  ("GPIO17", "J8:11"), ("GPIO17", "WPI0")])
def test_one_pin_under_two_names_is_refused(pins):
    """Compared as text, GPIO17 and BCM17 passed the config check, --check said GO and the
    installer too; the service then failed at start with GPIOPinInUse (a restart loop)."""
    with pytest.raises(ConfigError, match="must be different pins.*are the same pin, GPIO17"):
        load_config(None, {"latch.pin": pins[0], "latch.door_contact_pin": pins[1]})


def test_different_pins_under_different_names_are_fine():
    cfg = load_config(None, {"latch.pin": "GPIO17", "latch.door_contact_pin": "BOARD13",
                             "latch.exit_button_pin": "WPI3"})  # GPIO27, GPIO22
    assert cfg.latch_door_contact_pin == "BOARD13"


def test_a_line_without_a_value_is_named_by_its_number(tmp_path):
    path = tmp_path / "h.conf"
    path.write_text("[camera]\nsource /dev/video0\n")
    with pytest.raises(ConfigError, match=r"line 2: 'source /dev/video0' is not a 'name = value' line"):
        load_config(str(path))


@pytest.mark.parametrize("line", ["[service]\nstate_dir = state", "[model]\nbundle = my_bundle",
                                  "[camera]\nsource = door-demo/smiles", "[camera]\nsource = ./clip.mp4"])
def test_a_relative_path_in_a_config_file_is_refused(tmp_path, line):
    """Each tool read a relative path from its own working folder: --check run in one folder
    said GO on pictures the service, run in another, could not find; a relative state_dir
    moved the lock that keeps two programs off one latch."""
    path = tmp_path / "h.conf"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match="is a relative path: write it in full"):
        load_config(str(path))


@pytest.mark.parametrize("line", ["[camera]\nsource = 0", "[camera]\nsource = rtsp://cam/stream",
                                  "[camera]\nsource = libcamerasrc ! videoconvert ! appsink",
                                  "[camera]\nsource = /dev/video0", "[model]\nbundle = ~/my_bundle",
                                  "[model]\nbundle ="])
def test_cameras_streams_pipelines_and_full_paths_are_not_relative_paths(tmp_path, line):
    from happyhouse.daemon.config import read_ini

    path = tmp_path / "h.conf"
    path.write_text(line + "\n")
    assert read_ini(str(path))  # no refusal


def test_a_face_key_the_chosen_detector_does_not_read_is_said(tmp_path, caplog):
    """'cascade = ...' under the default BlazeFace (as the docs once showed) was ignored
    without a word: the technician thought the door used that cascade."""
    import logging

    path = tmp_path / "h.conf"
    path.write_text("[face]\ncascade = /x/cascade.xml\ndetect_width = 320\n")
    with caplog.at_level(logging.WARNING, logger="happyhouse.daemon.config"):
        load_config(str(path))
    said = [r.getMessage() for r in caplog.records]
    assert any("[face] cascade is set, but [face] detector = blazeface does not read it "
               "(it is read only with detector = haar)" in m for m in said), said
    assert any("detect_width is set" in m and "detector = haar or detector = yunet" in m for m in said)
    caplog.clear()
    path.write_text("[face]\ndetector = haar\ncascade = /x/cascade.xml\n")
    with caplog.at_level(logging.WARNING, logger="happyhouse.daemon.config"):
        try:
            load_config(str(path))
        except ConfigError:
            pass  # a cascade that does not exist may be refused; it is read
    assert not [r for r in caplog.records if "does not read it" in r.getMessage()]


@pytest.mark.parametrize("value", ['"/dev/video0"', "'/dev/video0'"])
def test_a_quoted_value_is_refused_with_a_hint(tmp_path, value):
    """source = "/dev/video0" passed --print-config and the installer, then failed at start."""
    path = tmp_path / "h.conf"
    path.write_text(f"[camera]\nsource = {value}\n")
    with pytest.raises(ConfigError, match="takes no quotes; write it without them"):
        load_config(str(path))


def test_the_log_level_flag_takes_any_case():
    from happyhouse.daemon.cli import build_parser

    assert build_parser().parse_args(["--log-level", "debug"]).log_level == "DEBUG"
