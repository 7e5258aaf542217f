"""The learning curve (issue 18): points are read from each house-CV run's metrics.json;
a missing point is listed as missing, never guessed."""

import json

from happyhouse.train import learning_curve as lc


def test_curve_from_measured_points_lists_the_missing(tmp_path):
    for size, seed, acc, fo in ((24, 0, 0.70, 3), (24, 1, 0.74, 1), (120, 0, 0.9, 1)):
        folder = lc.point_dir(tmp_path, size, seed)
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(json.dumps({
            "n": 150, "accuracy": acc, "errors": round(150 * (1 - acc)), "false_opens": fo,
            "recall": 0.8, "roc_auc": 0.9, "fold_protocol": "split", "fusion": None}))
    assert lc.main(["--plot-only", "--out", str(tmp_path), "--sizes", "24", "120",
                    "--seeds", "0", "1"]) == 0
    curve = json.loads((tmp_path / lc.CURVE_JSON).read_text())
    assert curve["missing"] == [{"train_frames": 120, "seed": 1}]
    first = curve["summary"][0]
    assert first["train_frames"] == 24 and abs(first["accuracy_mean"] - 0.72) < 1e-9
    assert first["false_opens_max"] == 3 and curve["summary"][1]["seeds"] == [0]
    assert (tmp_path / lc.CURVE_PNG).is_file()


def test_a_point_sits_at_the_frames_its_folds_really_trained_on(tmp_path, capsys):
    # --train-frames is asked before the face gate: folds of 120 asked kept 117-118 with a face
    folder = lc.point_dir(tmp_path, 120, 0)
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({
        "n": 150, "accuracy": 0.9, "errors": 15, "false_opens": 1, "recall": 0.8, "roc_auc": 0.9,
        "folds": [{"fold": f, "n_train": n} for f, n in enumerate((117, 118, 117, 117, 118))]}))
    assert lc.main(["--plot-only", "--out", str(tmp_path), "--sizes", "120", "--seeds", "0"]) == 0
    curve = json.loads((tmp_path / lc.CURVE_JSON).read_text())
    assert curve["points"][0]["train_frames_used"] == 117.4
    assert curve["summary"][0]["train_frames"] == 120
    assert curve["summary"][0]["train_frames_used_mean"] == 117.4
    assert "120 frames (117.4 with a face): accuracy 0.9000" in capsys.readouterr().out
