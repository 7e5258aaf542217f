import json
import os
import time

import cv2
import numpy as np
import pytest

from happyhouse.daemon import evaluate
from happyhouse.daemon.bundle import load_bundle
from happyhouse.daemon.pipeline import Pipeline
from fakes import plain_bundle, FixedGate


class MeanClassifier:
    """Score = mean red level: red images are 'happy'."""

    runtime = "mean"
    runtime_version = "0"

    def score(self, image):
        return float(image[..., 0].mean() / 255.0)


def _images(reds):
    out = np.zeros((len(reds), 64, 64, 3), np.uint8)
    for i, red in enumerate(reds):
        out[i, ..., 0] = red
    return out


def test_confusion_counts_and_no_face_is_negative():
    pipe = Pipeline(plain_bundle(), MeanClassifier(), FixedGate((100, 100, 200, 200)), 0.5)
    images = _images([255, 255, 0, 0, 255])
    labels = np.array([1, 0, 0, 1, 1])
    r = evaluate.evaluate(pipe, images, labels, gate=True)
    assert (r["tp"], r["fp"], r["tn"], r["fn"]) == (2, 1, 1, 1)
    assert r["n"] == 5 and r["accuracy"] == 0.6 and r["false_open_rate"] == 0.5
    no_face = Pipeline(plain_bundle(), MeanClassifier(), FixedGate(None), 0.5)
    r = evaluate.evaluate(no_face, images, labels, gate=True)
    assert r["no_face"] == 5 and r["tp"] == 0 and r["fp"] == 0 and r["fn"] == 3 and r["tn"] == 2


def test_crop_mode_skips_the_gate():
    pipe = Pipeline(plain_bundle(), MeanClassifier(), FixedGate(None), 0.5)
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


def _noise_folder(root, per_class):
    """A class-folder dataset of random 64x64 'faces' (the gate is skipped for class folders)."""
    for label in ("happy", "not_happy"):
        (root / label).mkdir()
        for i in range(per_class):
            img = np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)
            cv2.imwrite(str(root / label / f"{i}.jpg"), img)


def test_cli_on_a_class_folder(tmp_path, capsys):
    _noise_folder(tmp_path, 3)
    code = evaluate.main(["--data", str(tmp_path), "--json", "--threshold", "0.0"])
    r = json.loads(capsys.readouterr().out)
    assert code == 0 and r["n"] == 6 and r["no_face"] == 0 and r["threshold"] == 0.0
    assert r["tp"] == 3 and r["fp"] == 3 and r["false_open_rate"] == 1.0


def test_files_that_cannot_be_read_are_named_not_silently_dropped(tmp_path, capsys):
    _noise_folder(tmp_path, 2)
    (tmp_path / "happy" / "cut.jpg").write_bytes(b"\xff\xd8 a copy cut short")
    assert evaluate.main(["--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "4 images" in out
    assert "left out 1 file(s) that could not be read: happy/cut.jpg (not a decodable image)" in out
    assert evaluate.main(["--data", str(tmp_path), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)["datasets"][0]
    assert r["skipped"] == 1 and "happy/cut.jpg" in r["unreadable"]


def test_a_house_s_own_frames_go_through_the_gate_at_the_config_s_camera_size(tmp_path, capsys):
    """Found by walking the README: ``happyhouse-eval --model my_bundle/ --data my_house/`` on
    frames --collect wrote took each whole frame as a face crop (gate skipped): a house
    bundle checked that way showed no false opens where the door, gating, had one. And
    --config's [camera] size did not reach the scaling."""
    data = tmp_path / "my_house"
    data.mkdir()
    _noise_folder(data, 2)
    conf = tmp_path / "door.conf"
    conf.write_text("[latch]\ngpio = mock\n[camera]\nwidth = 320\nheight = 240\n")
    evaluate.main(["--data", str(data), "--json", "--config", str(conf)])
    crops = json.loads(capsys.readouterr().out)
    assert crops["datasets"][0]["gate"] is False and crops["source_size"] == "320x240"
    (data / "happy" / "0.jpg").unlink()  # --collect writes <stem>.png beside <stem>.json
    cv2.imwrite(str(data / "happy" / "0.png"), np.full((64, 64, 3), 90, np.uint8))
    (data / "happy" / "0.json").write_text('{"label": "happy", "face": [0, 0, 64, 64]}')
    assert evaluate.main(["--data", str(data), "--json", "--config", str(conf)]) == 0
    frames = json.loads(capsys.readouterr().out)
    assert frames["datasets"][0]["gate"] is True and frames["no_face"] == 4  # noise: no face
    assert evaluate.main(["--data", str(data), "--json", "--source-size", "160x120"]) == 0
    assert json.loads(capsys.readouterr().out)["source_size"] == "160x120"
    assert evaluate.main(["--data", str(data), "--json", "--gate", "off"]) == 0
    assert json.loads(capsys.readouterr().out)["datasets"][0]["gate"] is False


def test_a_house_folder_named_from_home_is_gated_too(tmp_path, capsys, monkeypatch):
    """``--data=~/my_house`` (bash leaves that ~ to the tool) was taken as face crops again:
    the sidecar check did not expand ~ while the loader did (a review)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    data = tmp_path / "my_house"
    data.mkdir()
    _noise_folder(data, 1)
    cv2.imwrite(str(data / "happy" / "0.png"), np.full((64, 64, 3), 90, np.uint8))
    (data / "happy" / "0.json").write_text('{"label": "happy"}')
    (data / "happy" / "0.jpg").unlink()
    assert evaluate.main(["--data=~/my_house", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["datasets"][0]["gate"] is True


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


# ---- issue 15 (what a person needs to see why) and issue 16 item 19 (say it in words)


class RedGate:
    """A face wherever the image is not black (a black frame is an empty porch)."""

    description = "red"
    faces_seen = 1

    def find(self, frame):
        return (10, 10, 100, 100) if frame.max() > 0 else None


def test_roc_auc_with_numpy_counts_ties_as_half():
    from happyhouse.daemon.roc import roc_auc

    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == pytest.approx(1.0)
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == pytest.approx(0.75)
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert roc_auc(np.array([1, 1]), np.array([0.2, 0.9])) is None  # one class: undefined


def test_auc_is_pooled_over_the_frames_with_a_face_only():
    pipe = Pipeline(plain_bundle(), MeanClassifier(), RedGate(), 0.5)
    # smiles 200, 100 and one with no face; non-smiles 150, 50 and one with no face
    images = _images([200, 100, 0, 150, 50, 0])
    images[2] = images[5] = 0
    labels = np.array([1, 1, 1, 0, 0, 0])
    r = evaluate.evaluate(pipe, images, labels, gate=False)
    assert r["no_face"] == 0  # crops: the gate is skipped, every image has a face
    r = evaluate.evaluate(pipe, images, labels, gate=True)
    assert r["no_face"] == 2 and r["no_face_smiles"] == 1 and r["roc_auc_frames"] == 4
    # 200 > 150 > 100 > 50: of the 4 smile/non-smile pairs with a face, 3 are ranked right
    assert r["roc_auc"] == pytest.approx(0.75)


def test_human_report_says_what_the_door_would_have_done(happy_house_h5, capsys):
    code = evaluate.main(["--data", str(happy_house_h5), "--limit", "30"])
    out = capsys.readouterr().out
    r_code = evaluate.main(["--data", str(happy_house_h5), "--limit", "30", "--json"])
    r = json.loads(capsys.readouterr().out)
    assert code == r_code == 0
    smiles = r["tp"] + r["fn"]
    assert f"the door would have opened for {r['tp']} of {smiles} smiles" in out, out
    assert f"kept out {r['tn']} of {r['tn'] + r['fp']} non-smiles" in out, out
    assert f"no face found in {r['no_face']} of {r['n']} frames" in out, out
    assert "ROC AUC" in out and f"over the {r['roc_auc_frames']} frames with a face" in out
    assert "--per-image" in out and "--plot" in out


def test_per_image_csv_has_one_row_per_image(happy_house_h5, tmp_path, capsys):
    import csv

    table = tmp_path / "per_image.csv"
    code = evaluate.main(["--data", str(happy_house_h5), "--limit", "20", "--json",
                          "--per-image", str(table)])
    r = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(table.open()))
    assert code == 0 and len(rows) == r["n"] == 20
    assert list(rows[0]) == ["id", "label", "face_x", "face_y", "face_w", "face_h", "score",
                             "decision", "classifier_score", "geometry_score"]
    assert len({row["id"] for row in rows}) == 20 and rows[0]["id"].endswith("#0")
    for row in rows:
        if row["decision"] == "no face":
            assert row["score"] == "" and row["face_w"] == ""
        else:
            opened = float(row["score"]) >= r["threshold"]
            assert row["decision"] == ("open" if opened else "locked") and int(row["face_w"]) > 0
            # the shipped bundle fuses two scores: both are in the row, and the fusion is theirs
            from happyhouse.daemon.geometry import fuse

            weights = load_bundle(None).geometry.weights
            assert float(row["score"]) == pytest.approx(
                float(fuse(float(row["classifier_score"]), float(row["geometry_score"]), weights)),
                abs=1e-3)
    assert sum(row["decision"] == "open" for row in rows) == r["tp"] + r["fp"]
    assert sum(row["decision"] == "no face" for row in rows) == r["no_face"]
    assert {row["label"] for row in rows} <= {"happy", "not_happy"}


def test_plot_writes_a_roc_curve_and_a_grid_of_the_misses(happy_house_h5, tmp_path, capsys):
    pytest.importorskip("matplotlib")  # a desktop extra ([train]); a Pi install has none
    code = evaluate.main(["--data", str(happy_house_h5), "--limit", "24", "--plot",
                          str(tmp_path / "plots")])
    out = capsys.readouterr().out
    assert code == 0
    for name in ("roc.png", "misses.png"):
        image = cv2.imread(str(tmp_path / "plots" / name))
        assert image is not None and image.shape[0] > 200 and image.std() > 10, name
        assert str(tmp_path / "plots" / name) in out


def test_misses_put_false_opens_first():
    rows = [evaluate.ImageResult("a", 1, None, None, "no face"),
            evaluate.ImageResult("b", 0, (0, 0, 9, 9), 0.95, "open"),
            evaluate.ImageResult("c", 1, (0, 0, 9, 9), 0.2, "locked"),
            evaluate.ImageResult("d", 0, (0, 0, 9, 9), 0.1, "locked"),
            evaluate.ImageResult("e", 0, (0, 0, 9, 9), 0.99, "open"),
            evaluate.ImageResult("f", 1, (0, 0, 9, 9), 0.97, "open")]
    assert [rows[i].id for i in evaluate.misses(rows)] == ["e", "b", "c", "a"]


def test_plot_without_matplotlib_is_one_clear_line(happy_house_h5, tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code = evaluate.main(["--data", str(happy_house_h5), "--limit", "4", "--plot",
                          str(tmp_path / "plots")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "matplotlib" in err[0] and "pip install" in err[0]


# ---- input handling: odd file names, a failed write, outputs checked before the scoring


def test_per_image_and_plot_name_a_file_whose_name_is_not_utf8(tmp_path, capsys):
    import os

    pytest.importorskip("matplotlib")
    data = tmp_path / "data"
    data.mkdir()
    _noise_folder(data, 2)
    # a name copied from a Latin-1 machine: Python holds its byte 0xff as a lone surrogate
    odd = os.path.join(os.fsencode(data / "not_happy"), b"bad\xff.jpg")
    with open(odd, "wb") as handle:
        handle.write((data / "not_happy" / "0.jpg").read_bytes())
    table = tmp_path / "per.csv"
    # threshold 0: every face opens, so the odd not_happy file is a false open in misses.png
    code = evaluate.main(["--data", str(data), "--threshold", "0.0", "--per-image", str(table),
                          "--plot", str(tmp_path / "plots")])
    assert code == 0, capsys.readouterr().err
    rows = table.read_bytes().splitlines()
    assert len(rows) == 1 + 5  # the header and one row per image
    # the row names the very file: its own bytes, as the file system holds them
    assert sum(row.startswith(odd + b",") for row in rows) == 1
    assert (tmp_path / "plots" / "misses.png").stat().st_size > 0


def test_a_per_image_table_that_fails_midway_leaves_the_old_one_whole(tmp_path, capsys, monkeypatch):
    import errno

    data = tmp_path / "data"
    data.mkdir()
    _noise_folder(data, 3)
    table = tmp_path / "per.csv"
    table.write_text("the last evaluation's table\n")
    from happyhouse.daemon import filesafety

    real_fdopen = filesafety.os.fdopen

    def disk_fills_midway(fd, mode):
        handle = real_fdopen(fd, mode)

        def write(data):
            handle.raw.write(data[:len(data) // 2])  # half the table reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")

        handle.write = write
        return handle

    monkeypatch.setattr(filesafety.os, "fdopen", disk_fills_midway)
    code = evaluate.main(["--data", str(data), "--per-image", str(table)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "No space left on device" in err[0]
    # no half a table that reads as the whole evaluation, and no temporary file left
    assert table.read_text() == "the last evaluation's table\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "per.csv"]


@pytest.mark.parametrize("flag, where, match", [
    ("--plot", "data/not_happy", "is in the class folder"),
    ("--plot", "data/happy/plots", "is in the class folder"),
    ("--per-image", "data/happy/../happy/per.csv", "is in the class folder"),
    ("--per-image", "data", "is a folder"),
    ("--per-image", "a-file/per.csv", "is not a folder"),
    ("--plot", "a-file", "is not a folder"),
])
def test_outputs_are_refused_before_any_image_is_scored(tmp_path, capsys, monkeypatch,
                                                        flag, where, match):
    # before: checked only after scoring everything, and --plot into a class folder wrote
    # roc.png and misses.png there, to be loaded as faces of that class next time
    if flag == "--plot":
        pytest.importorskip("matplotlib")
    data = tmp_path / "data"
    data.mkdir()
    _noise_folder(data, 2)
    (tmp_path / "a-file").write_text("not a folder")
    before = sorted(str(p) for p in data.rglob("*"))

    def scored(*args, **kwargs):
        raise AssertionError("scored before its outputs were checked")

    monkeypatch.setattr(evaluate, "score_images", scored)
    code = evaluate.main(["--data", str(data), flag, str(tmp_path / where)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and match in err[0] and flag in err[0], err
    assert sorted(str(p) for p in data.rglob("*")) == before


def test_plot_when_no_frame_has_a_face_draws_an_empty_curve(tmp_path, capsys):
    """--gate on over noise: roc_curve indexed an empty array (IndexError, exit 1) and left
    an empty plot folder behind a written --per-image table."""
    pytest.importorskip("matplotlib")
    data = tmp_path / "data"
    data.mkdir()
    _noise_folder(data, 2)
    code = evaluate.main(["--data", str(data), "--gate", "on", "--plot", str(tmp_path / "plots")])
    assert code == 0, capsys.readouterr().err
    assert all((tmp_path / "plots" / name).stat().st_size > 0 for name in evaluate.PLOT_FILES)


@pytest.mark.parametrize("name", ["roc.png", "misses.png"])
def test_a_folder_where_a_plot_goes_is_refused_before_the_scoring(tmp_path, capsys, name):
    """roc.png (or misses.png) a folder: IsADirectoryError after the whole evaluation, the
    --per-image table already written and roc.png too."""
    data = tmp_path / "data"
    data.mkdir()
    _noise_folder(data, 2)
    (tmp_path / "plots" / name).mkdir(parents=True)
    table = tmp_path / "per.csv"
    code = evaluate.main(["--data", str(data), "--per-image", str(table),
                          "--plot", str(tmp_path / "plots")])
    err = capsys.readouterr().err
    assert code == 2 and f"{name} is a folder" in err and err.count("\n") == 1, err
    assert not table.exists() and sorted(p.name for p in (tmp_path / "plots").iterdir()) == [name]


def test_plots_on_a_full_disk_leave_the_last_good_ones_whole(tmp_path, capsys, monkeypatch):
    """Found on a full disk: savefig wrote misses.png in place, cut it short (PIL: "image file
    is truncated") and ended in a traceback, exit 1."""
    import errno

    from happyhouse.daemon import filesafety

    pytest.importorskip("matplotlib")
    data = tmp_path / "data"
    data.mkdir()
    _noise_folder(data, 3)
    plots = tmp_path / "plots"
    assert evaluate.main(["--data", str(data), "--plot", str(plots), "--threshold", "0.5"]) == 0
    before = {p.name: p.read_bytes() for p in plots.iterdir()}
    real_fdopen = filesafety.os.fdopen

    def disk_fills_midway(fd, mode):
        handle = real_fdopen(fd, mode)

        def write(data):
            handle.raw.write(data[:len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        handle.write = write
        return handle

    monkeypatch.setattr(filesafety.os, "fdopen", disk_fills_midway)
    capsys.readouterr()
    code = evaluate.main(["--data", str(data), "--plot", str(plots), "--threshold", "0.9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "No space left on device" in err[0], err
    assert {p.name: p.read_bytes() for p in plots.iterdir()} == before  # no temporary left


@pytest.mark.parametrize("where", ["plot_roc", "plot_misses"])
def test_ctrl_c_while_drawing_leaves_the_last_run_s_outputs_as_they_were(tmp_path, capsys,
                                                                         monkeypatch, where):
    """Ctrl-C during the misses grid left the new CSV and roc.png beside the last run's
    misses.png: a set of outputs from two runs that read as one."""
    from happyhouse.daemon import plots as plots_module

    pytest.importorskip("matplotlib")
    data = tmp_path / "data"
    data.mkdir()
    _noise_folder(data, 3)
    plots, table = tmp_path / "plots", tmp_path / "scores.csv"
    argv = ["--data", str(data), "--plot", str(plots), "--per-image", str(table)]
    assert evaluate.main(argv + ["--threshold", "0.0"]) == 0  # every face opens: another CSV
    before = {p: p.read_bytes() for p in (table, *plots.iterdir())}

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots_module, where, ctrl_c)
    capsys.readouterr()
    assert evaluate.main(argv + ["--threshold", "0.9"]) == 130
    assert {p: p.read_bytes() for p in (table, *plots.iterdir())} == before  # nothing left over


def test_a_drawing_folder_left_by_a_killed_run_is_removed_by_the_next(tmp_path, capsys):
    """eval killed with SIGKILL while drawing left .drawing-XXXX in the --plot folder, for
    good; one of a run still at work (younger than an hour) is left alone."""
    pytest.importorskip("matplotlib")
    data = tmp_path / "data"
    data.mkdir()
    _noise_folder(data, 3)
    plots = tmp_path / "plots"
    (plots / ".drawing-killed").mkdir(parents=True)
    (plots / ".drawing-killed" / "roc.png").write_bytes(b"half")
    old = time.time() - 2 * evaluate.STALE_DRAWING_SECONDS
    os.utime(plots / ".drawing-killed", (old, old))
    (plots / ".drawing-at-work").mkdir()
    assert evaluate.main(["--data", str(data), "--plot", str(plots)]) == 0
    assert sorted(p.name for p in plots.iterdir()) == [".drawing-at-work", "misses.png", "roc.png"]


def test_eval_at_a_threshold_the_door_refuses_says_so(tmp_path, capsys):
    """Eval reported "what the door would have done" at threshold 0 (84 of 84 smiles, 63 false
    opens) where the service, --once and --check refuse that threshold: now it says so."""
    _noise_folder(tmp_path, 2)
    assert evaluate.main(["--data", str(tmp_path), "--threshold", "0.0"]) == 0
    out = capsys.readouterr().out
    assert "NOTE: the door would refuse this threshold" in out and "below the floor" in out
    assert evaluate.main(["--data", str(tmp_path), "--json", "--threshold", "0.0"]) == 0
    assert "below the floor" in json.loads(capsys.readouterr().out)["door_refuses_threshold"]
    assert evaluate.main(["--data", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["door_refuses_threshold"] is None


def _course_h5(path, prefix="test_set"):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f[f"{prefix}_x"] = rng.integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
        f[f"{prefix}_y"] = np.array([0, 1, 0, 1])
    return path


@pytest.mark.parametrize("what", ["data", "config", "bundle"])
def test_the_csv_never_replaces_what_eval_reads(tmp_path, capsys, monkeypatch, what):
    # before: --per-image test_happy.h5 (one slip of tab completion) replaced the data with a
    # CSV; the same for the config file and a bundle's model.json, exit 0
    import shutil

    from happyhouse.daemon.bundle import default_bundle_path

    data = _course_h5(tmp_path / "frames.h5")
    config = tmp_path / "door.conf"
    config.write_text("[latch]\ngpio = mock\n")
    bundle = tmp_path / "bundle"
    shutil.copytree(default_bundle_path(), bundle)
    target = {"data": data, "config": config, "bundle": bundle / "model.json"}[what]
    before = target.read_bytes()
    monkeypatch.setattr(evaluate, "score_images", lambda *a, **k: pytest.fail("scored"))
    code = evaluate.main(["--data", str(data), "--config", str(config), "--model", str(bundle),
                          "--per-image", str(target)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--per-image" in err[0], err
    assert target.read_bytes() == before


def test_a_csv_to_a_pipe_is_written_into_it_not_over_it(tmp_path):
    # before: the table was renamed over the target, so --per-image /dev/null made the
    # machine's /dev/null a regular file (shown here on a pipe, which the rename replaced too)
    import os
    import stat
    import threading

    from happyhouse.daemon.filesafety import write_file_whole

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    got = []
    reader = threading.Thread(target=lambda: got.append(pipe.read_bytes()))
    reader.start()
    write_file_whole(pipe, b"id,label\n", "the per-image table")
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(pipe).st_mode) and got == [b"id,label\n"]


def test_a_test_split_is_refused_for_training_and_calibration(tmp_path):
    from happyhouse.daemon.datasets import refuse_test_split
    from happyhouse.daemon.errors import DataError

    test = _course_h5(tmp_path / "test_happy.h5")
    train = _course_h5(tmp_path / "train_happy.h5", "train_set")
    refuse_test_split([train, tmp_path], "training")  # training data and folders pass
    with pytest.raises(DataError, match="test split .* evaluation only .* not for training"):
        refuse_test_split([train, test], "training")


def test_the_same_data_given_twice_is_refused(tmp_path, capsys, monkeypatch):
    # before: --data X --data X scored and counted every frame twice, exit 0
    data = _course_h5(tmp_path / "frames.h5")
    monkeypatch.setattr(evaluate, "score_images", lambda *a, **k: pytest.fail("scored"))
    code = evaluate.main(["--data", str(data), "--data", str(tmp_path / "." / "frames.h5")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "given twice" in err[0], err


def test_the_csv_never_replaces_the_bundle_the_config_serves_nor_a_link_into_it(tmp_path, capsys,
                                                                                 monkeypatch):
    # the guard looked at --model only: a bundle named by the config's [model] bundle was
    # overwritten (exit 0), and so was one reached through a link
    import shutil

    from happyhouse.daemon.bundle import default_bundle_path

    data = _course_h5(tmp_path / "frames.h5")
    bundle = tmp_path / "bundle"
    shutil.copytree(default_bundle_path(), bundle)
    config = tmp_path / "door.conf"
    config.write_text(f"[latch]\ngpio = mock\n[model]\nbundle = {bundle}\n")
    link = tmp_path / "innocent.csv"
    link.symlink_to(bundle / "golden.npz")
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    monkeypatch.setattr(evaluate, "score_images", lambda *a, **k: pytest.fail("scored"))
    for target, argv in ((bundle / "model.json", ["--config", str(config)]),
                         (link, ["--model", str(bundle)])):
        code = evaluate.main(["--data", str(data), *argv, "--per-image", str(target)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "in the model bundle" in err[0], err
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before


def test_a_link_loop_is_one_line_not_a_traceback(tmp_path, capsys):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    code = evaluate.main(["--data", str(loop), "--data", str(loop)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and err.count("happyhouse-eval:") == 1, err


def test_a_csv_to_dev_stdout_piped_is_written_into_the_pipe(tmp_path):
    # --per-image /dev/stdout | ...: the link's real path (/proc/PID/fd/pipe:[N]) does not
    # exist, so the table took the rename path and failed "No such file or directory"
    import os

    from happyhouse.daemon.filesafety import check_file_creatable, write_file_whole

    read, write = os.pipe()
    try:
        stdout = tmp_path / "stdout"  # what /dev/stdout is: a link to this process's fd
        stdout.symlink_to(f"/proc/self/fd/{write}")
        assert check_file_creatable(stdout, "--per-image") == stdout
        write_file_whole(stdout, b"id,label\n", "the per-image table")
        assert os.read(read, 100) == b"id,label\n"
    finally:
        os.close(read)
        os.close(write)
