"""Bad input for every entry point: a clear one-line error, a non-zero exit, no traceback,
and the latch never driven.

Entry points run in process through ``main([...])``; the GPIO factory is a
shared MockFactory (``make_pin_factory`` patched) so every pin the run
claimed can be inspected afterwards. ``happyhouse-convert``'s bad models are
covered by tests/convert/test_bad_input.py.
"""

import hashlib
import json
import shutil

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from happyhouse.daemon import cli, evaluate
from happyhouse.daemon.bundle import default_bundle_path
from happyhouse.daemon.config import KEYS

RNG = np.random.default_rng(8)


@pytest.fixture
def pins(monkeypatch):
    """Every pin factory the daemon makes is this one MockFactory."""
    factory = MockFactory()
    import happyhouse.daemon.latch as latch_mod

    monkeypatch.setattr(latch_mod, "make_pin_factory", lambda name: factory)
    yield factory


def never_driven(factory):
    """No pin the run claimed was ever high (the latch is active-high by default)."""
    return all(not s.state for pin in factory.pins.values() for s in pin.states)


def one_line_error(err):
    """The error is one line (logged at ERROR, or ``prog: error: ...`` before logging is up)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if " ERROR " in line or ": error:" in line]
    assert len(lines) == 1, err
    return lines[0]


def run_daemon(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# -- models ---------------------------------------------------------------------------------
def garbage_bundle(tmp_path, name, data):
    """The shipped bundle with model.tflite replaced and model.json's sha256 updated, so
    loading passes the hash check and reaches the runtime."""
    root = tmp_path / name
    shutil.copytree(default_bundle_path(), root)
    (root / "model.tflite").write_bytes(data)
    meta = json.loads((root / "model.json").read_text())
    meta["sha256"] = hashlib.sha256(data).hexdigest()
    (root / "model.json").write_text(json.dumps(meta))
    return root


def _models():
    real = (default_bundle_path() / "model.tflite").read_bytes()
    shape64 = np.array([1, 64, 64, 3], "<i4").tobytes()
    # the input tensor, and in a mirror-averaged model its mirror image: both are rewritten
    assert real.count(shape64) >= 1
    return {
        "empty": b"",
        "truncated-half": real[: len(real) // 2],
        "truncated-header": real[:64],
        "random-bytes": RNG.integers(0, 256, len(real), dtype=np.uint8).tobytes(),
        "flipped-middle": real[:5000] + bytes(b ^ 0xFF for b in real[5000:9000]) + real[9000:],
        "wrong-input-shape": real.replace(shape64, np.array([1, 48, 48, 3], "<i4").tobytes()),
        "json-not-tflite": b'{"not": "a model"}',
    }


MODELS = _models()


@pytest.fixture(scope="module")
def face_image(tmp_path_factory):
    import cv2

    path = tmp_path_factory.mktemp("img") / "grey.png"
    cv2.imwrite(str(path), np.full((480, 640, 3), 128, np.uint8))
    return path


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("mode", ["--once", "--check", "service"])
def test_bad_model_through_the_daemon(tmp_path, capsys, pins, face_image, model, mode):
    bundle = garbage_bundle(tmp_path, model, MODELS[model])
    argv = ["--model", bundle, "--gpio", "mock", "--source", face_image,
            "--state-dir", tmp_path / "s", "--max-frames", "5"]
    if mode == "--check":
        argv = ["--check", "--model", bundle, "--gpio", "mock", "--source", face_image]
    elif mode == "--once":
        argv = ["--once", "--actuate", *argv[:8]]  # with its own --state-dir (the lock)
    rc, out, err = run_daemon(capsys, *argv)
    assert rc != 0, out
    assert never_driven(pins)
    assert "unlock #" not in err
    if mode != "--check":  # --check reports a no-go table on stdout instead
        assert rc == cli.EXIT_ERROR
        line = one_line_error(err)
        assert "model" in line.lower() or "self-test" in line.lower() or "tflite" in line.lower()
    else:
        assert rc == cli.EXIT_NO and "Traceback" not in err + out


@pytest.mark.parametrize("model", ["truncated-half", "random-bytes", "wrong-input-shape"])
def test_bad_model_through_eval(tmp_path, capsys, model):
    bundle = garbage_bundle(tmp_path, model, MODELS[model])
    data = tmp_path / "data"
    for label in ("happy", "not_happy"):
        (data / label).mkdir(parents=True)
        import cv2

        cv2.imwrite(str(data / label / "a.png"), np.full((64, 64, 3), 100, np.uint8))
    rc = evaluate.main(["--model", str(bundle), "--data", str(data)])
    err = capsys.readouterr().err
    assert rc == 2
    one_line_error(err)


def test_bundle_with_a_wrong_hash(tmp_path, capsys, pins, face_image):
    root = tmp_path / "b"
    shutil.copytree(default_bundle_path(), root)
    meta = json.loads((root / "model.json").read_text())
    meta["sha256"] = "0" * 64
    (root / "model.json").write_text(json.dumps(meta))
    rc, out, err = run_daemon(capsys, "--once", "--actuate", "--model", root, "--gpio", "mock",
                              "--source", face_image, "--state-dir", tmp_path / "s")
    assert rc == 2 and "does not match" in one_line_error(err)
    assert never_driven(pins)
    rc = evaluate.main(["--model", str(root), "--data", str(tmp_path)])
    assert rc == 2 and "does not match" in one_line_error(capsys.readouterr().err)


# -- config: every key, plus structure ------------------------------------------------------
BAD_VALUE = {"int": "many", "float": "fast", "bool": "maybe", "choice": "bogus",
             "pin": "GPIO", "optpin": "X1", "optfloat": "high"}


def _bad_configs():
    cases = {}
    for key in KEYS:
        if key.kind in BAD_VALUE:
            cases[f"{key.dotted}={BAD_VALUE[key.kind]}"] = (key, BAD_VALUE[key.kind])
        if key.low is not None:
            low = key.low - 1 if key.kind == "int" else key.low / 2 - 1
            cases[f"{key.dotted}={low}"] = (key, low)
        if key.dotted in ("camera.source", "service.state_dir"):
            cases[f"{key.dotted}=empty"] = (key, "")
    return cases


BAD_CONFIGS = _bad_configs()


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_each_invalid_config_key_is_one_line_exit_2(tmp_path, capsys, pins, case):
    key, value = BAD_CONFIGS[case]
    conf = tmp_path / "c.conf"
    conf.write_text(f"[{key.section}]\n{key.name} = {value}\n")
    for mode in (["--print-config"], ["--once", "--actuate"], []):
        rc, out, err = run_daemon(capsys, *mode, "--config", conf, "--gpio", "mock")
        assert rc == cli.EXIT_ERROR
        line = one_line_error(err)
        assert f"[{key.section}] {key.name}" in line
    assert never_driven(pins) and pins.pins == {}  # not even claimed


@pytest.mark.parametrize("text", [
    "[nosuch]\nkey = 1\n", "[latch]\nnosuch = 1\n", "no header at all\n",
    "[latch]\npin = GPIO17\npin = GPIO18\n", "[decision]\nvotes_needed = 5\nwindow = 3\n",
    "[decision]\nunlock_seconds = 20\nmax_unlock_seconds = 10\n",
    "[latch]\npin = GPIO5\nexit_button_pin = GPIO5\n",
])
def test_structurally_bad_config(tmp_path, capsys, pins, text):
    conf = tmp_path / "c.conf"
    conf.write_text(text)
    rc, out, err = run_daemon(capsys, "--config", conf, "--gpio", "mock")
    assert rc == cli.EXIT_ERROR
    one_line_error(err)
    assert pins.pins == {}


def test_random_bytes_as_config(tmp_path, capsys, pins):
    conf = tmp_path / "c.conf"
    conf.write_bytes(RNG.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    rc, out, err = run_daemon(capsys, "--config", conf, "--gpio", "mock")
    assert rc == cli.EXIT_ERROR
    one_line_error(err)


# -- images -----------------------------------------------------------------------------------
def random_file(path, size=20000):
    path.write_bytes(RNG.integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


@pytest.mark.parametrize("name", ["noise.jpg", "noise.png", "empty.jpg", "folder"])
def test_random_bytes_as_image_for_once(tmp_path, capsys, pins, name):
    if name == "folder":
        target = tmp_path / "frames"
        target.mkdir()
        for i in range(3):
            random_file(target / f"{i}.jpg")
    elif name.startswith("empty"):
        target = tmp_path / name
        target.write_bytes(b"")
    else:
        target = random_file(tmp_path / name)
    for mode in (["--once", "--actuate"], ["--max-frames", "3"]):
        rc, out, err = run_daemon(capsys, *mode, "--source", target, "--gpio", "mock",
                                  "--state-dir", tmp_path / "s")
        assert rc == cli.EXIT_ERROR
        assert "decoded" in one_line_error(err)
    assert never_driven(pins)


@pytest.mark.parametrize("layout", ["class-folders", "h5", "one-file"])
def test_random_bytes_as_images_for_eval(tmp_path, capsys, layout):
    if layout == "class-folders":
        data = tmp_path / "data"
        for label in ("happy", "not_happy"):
            (data / label).mkdir(parents=True)
            for i in range(3):
                random_file(data / label / f"{i}.jpg")
    elif layout == "h5":
        data = random_file(tmp_path / "data.h5")
    else:
        data = random_file(tmp_path / "data.jpg")
    rc = evaluate.main(["--data", str(data)])
    err = capsys.readouterr().err
    assert rc == 2
    one_line_error(err)
