"""happyhouse-convert end to end: a real tiny model in, a verified bundle out (or nothing)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from happyhouse.convert.cli import EXIT_UNARMED, main
from happyhouse.daemon.bundle import load_bundle
from happyhouse.daemon.runtime import Classifier

pytestmark = pytest.mark.slow


def _leftovers(parent: Path, name: str):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def test_bundle_loads_and_self_tests(converted):
    out, result = converted
    bundle = load_bundle(out)
    clf = bundle.classifier()
    assert bundle.self_test(clf) == bundle.meta["golden"]["count"] >= 4
    assert result["sha256"] == bundle.sha256
    assert not _leftovers(out.parent, out.name)


def test_model_is_full_integer(converted):
    out, _ = converted
    clf = Classifier(out / "model.tflite")
    assert clf.input.dtype == "int8" and clf.output.dtype == "int8"
    # no float tensor anywhere: weights, activations and I/O are all integer
    dtypes = {np.dtype(t["dtype"]).name for t in clf._interp.get_tensor_details()}
    assert dtypes <= {"int8", "int32"}, dtypes
    # batch fixed at 1: no dynamic-shape ops splitting the graph before Flatten
    ops = {op["op_name"] for op in clf._interp._get_ops_details()}
    assert not ops & {"SHAPE", "STRIDED_SLICE", "PACK", "QUANTIZE", "DEQUANTIZE"}, ops


def test_model_json_is_read_from_the_interpreter(converted):
    out, _ = converted
    meta = json.loads((out / "model.json").read_text())
    clf = Classifier(out / "model.tflite")
    assert meta["input"]["shape"] == list(clf.input.shape)
    assert (meta["input"]["scale"], meta["input"]["zero_point"]) == (clf.input.scale, clf.input.zero_point)
    assert (meta["output"]["scale"], meta["output"]["zero_point"]) == (clf.output.scale, clf.output.zero_point)
    assert meta["preprocess"] == {"crop": "face", "margin": 0.0, "size": 64, "color": "RGB", "scale": "unit"}
    assert meta["threshold"] == 0.5 and meta["labels"] == ["not_happy", "happy"]
    assert meta["training"]["data"]["n"] == 120
    assert {"tensorflow", "ai_edge_litert", "numpy"} <= set(meta["runtime"]["converted_with"])
    assert (out / "MODEL_CARD.md").read_text().count("A smile is not an identity") == 1


def test_parity_is_measured_on_images_not_used_for_calibration(converted):
    out, _ = converted
    meta = json.loads((out / "model.json").read_text())
    parity = meta["metrics"]["parity"]
    assert parity["n"] == 24  # stratified 20% of 60 + 60
    assert parity["holdout_summary"]["happy"] == 12
    assert meta["quantization"]["calibration"]["n"] == 96
    # int8 with scale 1/256 on the output stays within a few steps of the float score
    assert parity["max_score_diff"] < 0.05
    assert 0.0 <= parity["int8_accuracy"] <= 1.0


def test_golden_vectors_reproduced_by_the_daemon_runtime_without_tensorflow(converted):
    out, _ = converted
    code = ("import sys, json\n"
            "from happyhouse.daemon.bundle import load_bundle\n"
            f"b = load_bundle({str(out)!r})\n"
            "n = b.self_test(b.classifier())\n"
            "print(json.dumps([n, any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    count, tf_loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert count >= 4 and tf_loaded is False


def test_golden_vectors_span_both_classes(converted):
    out, _ = converted
    with np.load(out / "golden.npz") as data:
        inputs, outputs = data["inputs"], data["outputs"]
    assert inputs.dtype == np.uint8 and inputs.shape[1:] == (64, 64, 3)
    assert outputs.dtype == np.int8 and len(outputs) == len(inputs)
    # each golden input is a distinct real face, not one image repeated
    assert len({im.tobytes() for im in inputs}) == len(inputs)


def refuse_every_int8_model(monkeypatch):
    """A parity proof no int8 model passes (an allowance of -101 points): the conversion is
    refused. A command line cannot ask for that any more (--max-drop is 0 to 100)."""
    from happyhouse.convert import parity

    real = parity.require
    monkeypatch.setattr(parity, "require", lambda result, max_drop=0.0: real(result, -101.0))


def test_parity_failure_writes_nothing(tiny_model, small_faces, tmp_path, capsys, monkeypatch):
    refuse_every_int8_model(monkeypatch)
    out = tmp_path / "refused"
    rc = main([str(tiny_model), "--calibration", str(small_faces), "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "int8 model refused" in err and "No bundle written" in err
    assert not out.exists()
    assert not _leftovers(tmp_path, "refused")


@pytest.mark.parametrize("flag, value", [("--max-drop", "nan"), ("--max-drop", "-1"),
                                         ("--max-drop", "101"), ("--calibration-size", "0"), ("--calibration-size", "1"),
                                         ("--seed", "-1")])
def test_a_number_conversion_cannot_use_is_refused_before_converting(flag, value, tiny_model,
                                                                    small_faces, tmp_path, capsys):
    """A negative seed was a numpy traceback; a negative --max-drop refused every int8 model
    after the whole conversion."""
    out = tmp_path / "bad-number"
    rc = main([str(tiny_model), "--calibration", str(small_faces), "--out", str(out), flag, value])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("happyhouse-convert:") == 1 and flag in err, err
    assert "Traceback" not in err
    assert not out.exists()


def test_parity_failure_keeps_the_previous_bundle(converted, tiny_model, small_faces, tmp_path, capsys,
                                                 monkeypatch):
    import shutil

    refuse_every_int8_model(monkeypatch)
    out = tmp_path / "bundle"
    shutil.copytree(converted[0], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    rc = main([str(tiny_model), "--calibration", str(small_faces), "--out", str(out)])
    assert rc == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_training_validation_split_and_metrics_are_used(tiny_model, small_faces, tmp_path, capsys):
    """happyhouse-train's split.json and metrics.json beside the model drive the hold-out,
    also for a model trained on another machine (its split names the faces under that
    machine's data folder)."""
    import shutil
    from pathlib import Path

    from happyhouse.daemon.datasets import load_dataset

    folder = tmp_path / "trained"
    folder.mkdir()
    shutil.copy(tiny_model, folder / "model.keras")
    meta = json.loads(tiny_model.with_name("model.json").read_text())
    del meta["metrics"]  # like happyhouse-train: metrics live in metrics.json
    (folder / "train_meta.json").write_text(json.dumps(meta))
    data = load_dataset(small_faces)
    val = [i for i, label in zip(data.ids, data.labels) if label == 1][:10] + \
          [i for i, label in zip(data.ids, data.labels) if label == 0][:8]
    elsewhere = ["/tmp/data/" + "/".join(Path(i).parts[-3:]) for i in val]  # a GPU machine's
    (folder / "split.json").write_text(json.dumps({"validation_ids": elsewhere, "n_train": 102}))
    (folder / "metrics.json").write_text(json.dumps(
        {"scope": "validation", "accuracy": 0.61, "false_open_rate": 0.1, "plots": ["roc.png"],
         "confusion_matrix": {"tp": 5, "fp": 1, "tn": 7, "fn": 5}}))
    out = tmp_path / "bundle"
    rc = main([str(folder / "model.keras"), "--calibration", str(small_faces), "--out", str(out),
               "--max-drop", "50"])
    assert rc == EXIT_UNARMED, capsys.readouterr().err
    written = json.loads((out / "model.json").read_text())
    parity = written["metrics"]["parity"]
    assert parity["n"] == 18 and parity["holdout_summary"]["happy"] == 10
    assert "validation split" in parity["holdout"]
    assert written["quantization"]["calibration"]["n"] == 102
    training = written["metrics"]["training"]
    assert training["accuracy"] == 0.61 and training["tp"] == 5 and "plots" not in training


def test_a_door_frames_model_is_calibrated_on_gated_face_crops(tiny_model, happy_house_h5, tmp_path,
                                                               monkeypatch):
    """Metadata saying training gated whole door frames makes the converter gate them too:
    the same frames given as-is would reach the model as whole frames, a silent mismatch."""
    import shutil

    from happyhouse.train import data as train_data

    folder = tmp_path / "house_model"
    shutil.copytree(tiny_model.parent, folder)
    meta = json.loads((folder / "model.json").read_text())
    meta["training"] = {"door_frames": True}
    (folder / "model.json").write_text(json.dumps(meta))
    gated = []
    real = train_data.door_face_crops
    monkeypatch.setattr(train_data, "door_face_crops",
                        lambda frames, spec, cfg=None, level=None:
                        gated.append(len(frames)) or real(frames, spec, cfg, level))
    out = tmp_path / "bundle"
    rc = main([str(folder / "model.keras"), "--calibration", str(happy_house_h5), "--out", str(out),
               "--max-drop", "100", "--calibration-size", "40"])
    assert rc == EXIT_UNARMED
    assert gated == [150]  # every frame went through the door's gate once
    bundle = json.loads((out / "model.json").read_text())
    assert bundle["quantization"]["calibration"]["door_frames"] is True
    held = bundle["metrics"]["parity"]["holdout_summary"]
    assert held["n"] < 150  # a split of the 147 gated frames, not of the raw 150


def test_a_small_holdout_is_warned_about_and_its_roc_recorded(converted, tmp_path, capsys):
    """Issue 16 item 21: a hold-out too small (or near chance) to mean anything is said
    out loud, recorded in model.json and makes --check NO-GO."""
    out, result = converted
    meta = json.loads((out / "model.json").read_text())
    n = meta["metrics"]["parity"]["n"]
    assert n < 100 and any(f"{n} images" in w for w in result["warnings"])
    roc = meta["metrics"]["parity"]["roc"]
    assert roc["thresholds"][0] == 0.0 and roc["false_open_rate"][0] == 1.0
    assert roc["n_not_happy"] + roc["n_happy"] == n

    from happyhouse.daemon import cli as daemon_cli

    rc = daemon_cli.main(["--check", "--json", "--model", str(out), "--gpio", "mock",
                          "--source", str(tmp_path / "none.png")])
    model = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}["model"]
    assert rc == daemon_cli.EXIT_NO and model["status"] == "fail" and f"{n} images" in model["detail"]



@pytest.mark.parametrize("content, said", [
    ([], "is not a training report"),
    ({"epochs": 3, "history": {}}, "holds no training figures"),
    ({"roc_auc": "high", "accuracy": 0.9}, "roc_auc = 'high' is not a number from 0 to 1"),
    ({"roc_auc": 0.9, "n": 12.5}, "n = 12.5 is not a whole number"),
    ({"roc_auc": 0.9, "confusion_matrix": "tp fp tn fn"}, None),
])
def test_metrics_that_are_no_training_report_are_refused_before_the_work(
        tiny_model, small_faces, tmp_path, capsys, monkeypatch, content, said):
    """--metrics took any JSON: a list, a study's report or a string where a figure belongs
    gave a bundle with no figures (no door arms it) or a failure after the whole conversion."""
    from happyhouse.convert import build

    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps(content))
    if said is None:  # a malformed confusion matrix is left out (it was a TypeError)
        from happyhouse.convert.metadata import read_metadata

        assert read_metadata(tiny_model.with_name("model.json"), metrics).metrics["roc_auc"] == 0.9
        return
    monkeypatch.setattr(build, "load_keras_model", lambda path: pytest.fail("the model was loaded"))
    rc = main([str(tiny_model), "--calibration", str(small_faces), "--out", str(tmp_path / "b"),
               "--metrics", str(metrics)])
    err = capsys.readouterr().err
    assert rc == 2 and said in err and str(metrics) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "b").exists()


def test_a_bundle_no_door_will_arm_is_said_without_json_too(tiny_model, small_faces, tmp_path,
                                                            capsys):
    """The warnings were in --json only: the plain output looked like a good bundle, which
    the installer and the service then refuse."""
    out = tmp_path / "bundle"
    assert main([str(tiny_model), "--calibration", str(small_faces), "--out", str(out),
                 "--max-drop", "100"]) == EXIT_UNARMED
    said = capsys.readouterr().out
    assert "no door will arm this bundle" in said and "images (at least 100" in said


def test_a_model_trained_at_another_size_converts_from_its_own_training_data(small_faces, tmp_path,
                                                                           capsys):
    """happyhouse-train --size 48 resizes the 64x64 faces; the converter refused those same
    faces ("images are 64x64x3 but the model input is 48x48x3"). It sizes them through the
    contract as training did, so the model converts, with parity on its validation split."""
    from happyhouse.train import cli as train_cli

    trained = tmp_path / "trained"
    assert train_cli.main(["--data", str(small_faces), "--limit", "20", "--size", "48",
                           "--arch", "happymodel", "--epochs", "1", "--batch-size", "16",
                           "--augment", "none", "--out", str(trained), "--quiet"]) == 0
    capsys.readouterr()
    out = tmp_path / "bundle48"
    rc = main([str(trained / "model.keras"), "--calibration", str(small_faces), "--out", str(out),
               "--max-drop", "100", "--json"])
    captured = capsys.readouterr()
    assert rc == EXIT_UNARMED, captured.err
    bundle = load_bundle(out)
    assert bundle.meta["input"]["shape"] == [1, 48, 48, 3]
    assert bundle.meta["preprocess"]["size"] == 48
    parity = bundle.meta["metrics"]["parity"]
    assert parity["holdout"].startswith("the training validation split") and parity["n"] >= 4
    # float and int8 decide alike on the resized faces: the int8 model saw them calibrated
    assert parity["agreement"] >= 0.75 and parity["max_score_diff"] < 0.1, parity
    assert bundle.self_test(bundle.classifier()) >= 2


def test_an_in_memory_holdout_of_another_size_is_refused(tiny_model, small_faces, tmp_path):
    """Options.holdout_data (happyhouse-adapt's faces and their mirror images) is checked
    against the model input like data read from disk, before anything is converted."""
    from happyhouse.convert.build import convert_paths
    from happyhouse.daemon.datasets import Dataset
    from happyhouse.daemon.errors import DataError

    held = Dataset(np.zeros((4, 32, 32, 3), np.uint8), np.array([0, 0, 1, 1]), ["a", "b", "c", "d"])
    with pytest.raises(DataError, match="hold-out images are 32x32x3 but the model input is 64x64x3"):
        convert_paths(tiny_model, [small_faces], tmp_path / "out", holdout_data=held,
                      holdout_description="four grey squares")
    assert not (tmp_path / "out").exists()


def test_a_holdout_that_is_the_calibration_data_is_refused(tiny_model, small_faces, tmp_path, capsys):
    """--holdout X --calibration X proved parity on the images that set the int8 ranges and
    recorded it as an unseen hold-out, exit 0."""
    out = tmp_path / "same"
    rc = main([str(tiny_model), "--calibration", str(small_faces), "--holdout",
               str(small_faces / "."), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "also --calibration data" in err and err.count("happyhouse-convert:") == 1, err
    assert not out.exists()


def test_the_happy_house_test_split_is_refused_as_calibration(tiny_model, happy_house_h5, tmp_path,
                                                              capsys):
    """The test frames calibrated a general model without a word (they are evaluation only)."""
    out = tmp_path / "calibrated-on-test"
    rc = main([str(tiny_model), "--calibration", str(happy_house_h5), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "evaluation only" in err and err.count("happyhouse-convert:") == 1, err
    assert not out.exists()
