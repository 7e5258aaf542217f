"""happyhouse-bench: smoke runs with tiny counts. Figures are checked for sanity, never speed."""

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from happyhouse.bench import cli as bench
from happyhouse.bench.frames import bgr_to_yuyv, yuyv_to_bgr
from happyhouse.daemon.preprocess import to_door_frame

TINY = ["--frames", "4", "--warmup", "1", "--rounds", "1", "--invokes", "3", "--keras-iters", "2",
        "--age-seconds", "0.3", "--daemon-warmup", "0.3"]


@pytest.fixture(autouse=True)
def restore_affinity():
    """The bench pins its own process; give the test process its CPUs back."""
    import cv2

    cpus, threads = os.sched_getaffinity(0), cv2.getNumThreads()
    yield
    os.sched_setaffinity(0, cpus)
    cv2.setNumThreads(threads)


def run_json(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = bench.main(argv + ["--json"])
    return rc, (json.loads(out.getvalue()) if rc == 0 else None), err.getvalue()


def check_stats(stats):
    assert stats["n"] > 0
    assert 0 < stats["median"] <= stats["p95"]


@pytest.mark.slow
def test_full_run_reports_every_figure(happy_house_h5):
    # the shipped bundle and the Keras model it was converted from: the daemon's figures are
    # the door's own, and no door arms a bundle whose recorded figures are too poor (the
    # tiny test bundle's 24-face hold-out)
    general = Path(__file__).resolve().parents[2] / "models" / "general" / "model.keras"
    rc, res, err = run_json(["--data", str(happy_house_h5), "--keras", str(general),
                             "--page-seconds", "1", "--page-streams", "6"] + TINY)
    assert rc == 0, err
    for key in ("invoke_ms", "pipeline_ms", "fps", "rss_mb", "ready_s", "frame_age_ms",
                "stages_ms", "ratios", "goals", "machine"):
        assert key in res
    assert res["machine"]["pinned_to"] and len(res["machine"]["pinned_to"]) == 1
    inv = res["invoke_ms"]
    for kind in ("int8", "float32", "keras"):
        check_stats(inv[kind])
    assert res["models"]["keras_note"] == "matches the bundle"
    assert res["ratios"]["int8_speedup"] == round(inv["float32"]["median"] / inv["int8"]["median"], 2)
    assert res["ratios"]["int8_speedup_cpu"] == round(
        inv["float32"]["cpu_median"] / inv["int8"]["cpu_median"], 2)
    assert res["ratios"]["keras_over_int8_cpu"] > 1  # predict() costs far more than one invoke
    assert set(res["models"]["scores"]) == {"int8", "float32", "keras"}
    assert abs(res["models"]["scores"]["float32"] - res["models"]["scores"]["keras"]) < 1e-3
    assert [g["key"] for g in res["goals"]] == [g[0] for g in bench.GOALS]
    stages = res["stages_ms"]
    for stage in ("frame", "gate", "vote", "total"):
        check_stats(stages[stage])
    assert 0 <= stages["face_rate"] <= 1 and stages["frames"] == 4
    if stages["faces"]:
        check_stats(stages["preprocess"])
        check_stats(stages["invoke"])
    check_stats(res["pipeline_ms"])
    assert res["fps"] > 0 and res["fps_cpu"] > 0 and res["pipeline_impl"] == "Pipeline.observe"
    age = res["frame_age_ms"]
    assert age["decided"] > 0 and 0 <= age["median"] <= age["p95"]
    assert age["frame_period_ms"] == pytest.approx(33.33, abs=0.01)
    daemon = res["daemon"]
    assert daemon.get("error") is None, daemon
    assert 0 < res["ready_s"] < 30 and 0 < daemon["ready_cpu_s"] < 60
    assert 5 < res["rss_mb"] < 4000
    assert res["rss_mb"] == pytest.approx(daemon["rss_anon_mb"] + daemon["rss_file_mb"], abs=0.5)
    assert daemon["tensorflow_loaded"] is False
    assert daemon["exit_status"] == 0 and daemon["stopping_sent"]
    page = res["page"]
    assert page.get("error") is None, page
    assert page["rate_off_fps"] > 0 and page["rate_loaded_fps"] > 0 and page["streams"] == 6
    assert page["live_jpegs"] > 0  # the viewers were served
    assert page["relock_delay_loaded_ms"] is not None and page["relock_delay_loaded_ms"] < 1000
    assert res["notes"] == []


def test_missing_keras_model_leaves_null_rows_and_says_why(happy_house_h5, tmp_path, monkeypatch):
    # the bundle's recorded model is relative to the working folder: from an empty one it is
    # not there (an explicit --keras that is missing is an error: test_bench_cli_inputs.py)
    monkeypatch.chdir(tmp_path)
    rc, res, err = run_json(["--data", str(happy_house_h5),
                             "--skip", "stages", "--skip", "pipeline", "--skip", "age",
                             "--skip", "daemon", "--skip", "page"] + TINY)
    assert rc == 0, err
    check_stats(res["invoke_ms"]["int8"])
    assert res["invoke_ms"]["float32"] is None and res["invoke_ms"]["keras"] is None
    assert res["ratios"]["int8_speedup"] is None
    assert any("not available" in note and "--keras" in note for note in res["notes"])
    speed = next(g for g in res["goals"] if g["key"] == "int8_speedup_cpu")
    assert speed["pass"] is None and speed["value"] is None


def test_table_output_lists_goals(happy_house_h5, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no Keras model found from here: its rows stay empty, fast
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        rc = bench.main(["--data", str(happy_house_h5),
                         "--skip", "daemon", "--skip", "age", "--skip", "page"] + TINY)
    assert rc == 0
    text = out.getvalue()
    assert "int8 TFLite (shipped bundle)" in text and "\ngoals (" in text
    assert text.count("PASS") + text.count("FAIL") + text.count("----") == len(bench.GOALS)


def test_bad_cores_is_a_one_line_error(capsys):
    rc = bench.main(["--cores", "9999", "--json"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("happyhouse-bench: error: --cores") and err.count("\n") == 1


@pytest.mark.parametrize("flag, value", [("--frames", "0"), ("--frames", "-5"), ("--rounds", "0"),
                                         ("--source-fps", "nan"), ("--page-seconds", "inf"),
                                         ("--daemon-warmup", "-1"), ("--page-streams", "0")])
def test_a_count_or_duration_no_measurement_can_use_is_one_line(flag, value, capsys, monkeypatch):
    """--frames 0 once divided by zero; the others ran and printed n/a."""
    monkeypatch.setattr(bench, "run", lambda args: pytest.fail("the benchmark ran"))
    assert bench.main([flag, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"happyhouse-bench: error: {flag} must be") and err.count("\n") == 1


def test_missing_data_is_a_one_line_error(tmp_path, capsys):
    rc = bench.main(["--data", str(tmp_path / "absent.h5"), "--skip", "daemon", "--skip", "page"])
    assert rc == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_goals_compare_against_their_targets():
    result = {"ratios": {"int8_speedup_cpu": 2.5, "int8_speedup": 1.5,
                         "keras_over_pipeline_cpu": 50.0}, "fps_cpu": 149.9, "fps": 200.0,
              "rss_mb": 80.0, "rss_anon_mb": 48.1, "ready_s": None,
              "frame_age_ms": {"p95": 10.0, "frame_period_ms": 33.33},
              "page": {"rate_drop_pct": 10.5, "relock_delay_loaded_ms": 0.4}}
    goals = bench.goals(result)
    assert {g["key"]: g["pass"] for g in goals} == {
        "int8_speedup_cpu": True, "fps_cpu": False, "keras_over_pipeline_cpu": False,
        "rss_mb": True, "rss_anon_mb": False, "ready_s": None, "frame_age_p95_ms": True,
        "page_rate_drop_pct": False, "page_relock_delay_ms": True}
    assert goals[0]["wall_value"] == 1.5 and goals[1]["wall_value"] == 200.0


def test_yuyv_round_trip_is_close():
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    bgr = to_door_frame(small)
    back = yuyv_to_bgr(bgr_to_yuyv(bgr))
    assert back.shape == bgr.shape
    assert np.abs(back.astype(int) - bgr.astype(int)).mean() < 6  # chroma is shared by pixel pairs
    flat = np.full((480, 640, 3), (73, 135, 187), np.uint8)
    assert np.abs(yuyv_to_bgr(bgr_to_yuyv(flat)).astype(int) - flat).max() <= 2


def test_live_source_delivers_fresh_frames_at_its_rate():
    from happyhouse.bench.frames import live_source

    frames = [bgr_to_yuyv(np.full((48, 64, 3), i * 40, np.uint8)) for i in range(3)]
    seen = []
    with live_source(frames, fps=100.0) as source:
        for _ in range(10):
            frame = source.latest(1.0)
            assert frame is not None
            seen.append(frame)
    assert [f.seq for f in seen] == sorted({f.seq for f in seen})  # never the same frame twice
    assert all(b.timestamp > a.timestamp for a, b in zip(seen, seen[1:]))
    assert seen[0].image.shape == (48, 64, 3)


def test_config_file_settings_are_benchmarked(happy_house_h5, tmp_path):
    ini = tmp_path / "door.conf"
    ini.write_text("[face]\ndetect_width = 160\nmin_face = 144\n")
    rc, res, err = run_json(["--data", str(happy_house_h5), "--config", str(ini),
                             "--skip", "daemon", "--skip", "models", "--skip", "age", "--skip", "page"] + TINY)
    assert rc == 0, err
    assert res["face_gate"]["detect_width"] == 160 and res["face_gate"]["min_face"] == 144
    assert res["config"]["daemon_config"] == str(ini)
    check_stats(res["stages_ms"]["gate"])


def test_bad_config_file_is_a_one_line_error(tmp_path, capsys):
    ini = tmp_path / "door.conf"
    ini.write_text("[face]\ndetect_width = wide\n")
    assert bench.main(["--config", str(ini), "--skip", "daemon", "--skip", "page"]) == 2
    err = capsys.readouterr().err
    assert "detect_width" in err and err.count("\n") == 1


def test_missing_data_is_refused_before_the_model_loads(tmp_path, capsys):
    # with INFO logging on stderr (as earlier tests in a run may leave it), the model
    # load would log a line first: the frames are checked before the model is touched
    import logging
    import sys

    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        rc = bench.main(["--data", str(tmp_path / "absent.h5"), "--skip", "daemon", "--skip", "page"])
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("happyhouse-bench: error:") and err.count("\n") == 1


class _Bundle:
    def __init__(self, training):
        self.meta = {"training": training}


def test_keras_model_is_found_relative_to_the_working_folder_only(tmp_path, monkeypatch):
    import hashlib

    from happyhouse.bench.model import find_keras

    model = tmp_path / "models" / "general" / "model.keras"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"a keras zip")
    recorded = {"model_file": "models/general/model.keras",
                "model_sha256": hashlib.sha256(b"a keras zip").hexdigest()}
    monkeypatch.chdir(tmp_path)
    assert find_keras(_Bundle(recorded)) == (model.relative_to(tmp_path), "matches the bundle")
    # from another working folder the same record finds nothing, even in a source
    # checkout that holds models/general/model.keras beside this package
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    checkout = Path(__file__).resolve().parents[2] / "models" / "general" / "model.keras"
    if checkout.is_file():
        recorded["model_sha256"] = hashlib.sha256(checkout.read_bytes()).hexdigest()
    path, note = find_keras(_Bundle(recorded))
    assert path is None and "models/general/model.keras" in note and "--keras" in note
    assert find_keras(_Bundle({}))[0] is None
