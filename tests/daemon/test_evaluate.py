import json

import cv2
import numpy as np
import pytest

from happyhouse.daemon import evaluate
from happyhouse.daemon.bundle import load_bundle
from happyhouse.daemon.pipeline import Pipeline
from fakes import FixedGate


class MeanClassifier:
    """Score = mean red level: red images are 'happy'."""

    runtime = "mean"

    def score(self, image):
        return float(image[..., 0].mean() / 255.0)


def _images(reds):
    out = np.zeros((len(reds), 64, 64, 3), np.uint8)
    for i, red in enumerate(reds):
        out[i, ..., 0] = red
    return out


def test_confusion_counts_and_no_face_is_negative():
    pipe = Pipeline(load_bundle(None), MeanClassifier(), FixedGate((100, 100, 200, 200)), 0.5)
    images = _images([255, 255, 0, 0, 255])
    labels = np.array([1, 0, 0, 1, 1])
    r = evaluate.evaluate(pipe, images, labels, gate=True)
    assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (2, 1, 1, 1)
    assert r["n"] == 5 and r["accuracy"] == 0.6 and r["false_open_rate"] == 0.5
    no_face = Pipeline(load_bundle(None), MeanClassifier(), FixedGate(None), 0.5)
    r = evaluate.evaluate(no_face, images, labels, gate=True)
    assert r["no_face"] == 5 and r["tp"] == 0 and r["fp"] == 0 and r["fn"] == 3 and r["tn"] == 2


def test_crop_mode_skips_the_gate():
    pipe = Pipeline(load_bundle(None), MeanClassifier(), FixedGate(None), 0.5)
    r = evaluate.evaluate(pipe, _images([255, 0]), np.array([1, 0]), gate=False)
    assert r["no_face"] == 0 and r["accuracy"] == 1.0


def test_gate_mode_by_format():
    assert evaluate.gated("x/test_happy.h5", "auto") is True
    assert evaluate.gated("x/genki4k-train", "auto") is False
    assert evaluate.gated("x/genki4k-train", "on") is True
    assert evaluate.gated("x/a.h5", "off") is False


def test_cli_on_happy_house_with_shipped_bundle(happy_house_h5, capsys):
    code = evaluate.main(["--data", str(happy_house_h5), "--json", "--limit", "30"])
    r = json.loads(capsys.readouterr().out)
    assert code == 0 and r["n"] == 30
    assert r["tp"] + r["fp"] + r["tn"] + r["fn"] == 30
    for key in ("accuracy", "no_face", "false_open_rate", "model_sha256"):
        assert key in r
    assert r["no_face"] < 15  # the gate finds most faces at 640x480


def test_cli_on_a_class_folder(tmp_path, capsys):
    for label in ("happy", "not_happy"):
        (tmp_path / label).mkdir()
        for i in range(3):
            img = np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)
            cv2.imwrite(str(tmp_path / label / f"{i}.jpg"), img)
    code = evaluate.main(["--data", str(tmp_path), "--json", "--threshold", "0.0"])
    r = json.loads(capsys.readouterr().out)
    assert code == 0 and r["n"] == 6 and r["no_face"] == 0 and r["threshold"] == 0.0
    assert r["tp"] == 3 and r["fp"] == 3 and r["false_open_rate"] == 1.0


@pytest.mark.parametrize("argv, match", [
    (["--data", "/nonexistent/data"], "does not exist"),
    (["--data", "{tmp}", "--model", "{tmp}/nobundle"], "does not exist"),
    (["--data", "{tmp}", "--source-size", "big"], "640x480"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, capsys, argv, match):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = evaluate.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and match in err[0]
