"""Bad input to the converter and to bundle loading: one clear line, non-zero, nothing written."""

import json
import shutil

import numpy as np
import pytest

from happyhouse.convert.cli import main
from happyhouse.daemon.bundle import load_bundle
from fakes import reseal_bundle
from happyhouse.daemon.errors import ModelError, SelfTestError

pytestmark = pytest.mark.slow


def _run(capsys, *args):
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def test_missing_model(small_faces, tmp_path, capsys):
    missing = tmp_path / "nope.keras"
    rc, err = _run(capsys, missing, "--calibration", small_faces, "--metadata", tmp_path / "m.json",
                   "--out", tmp_path / "out")
    assert rc == 2 and "does not exist" in err
    assert not (tmp_path / "out").exists()
    # a refused run makes no folder on the way: the output's parent was created first
    rc, err = _run(capsys, missing, "--calibration", small_faces, "--out", tmp_path / "new" / "out")
    assert rc == 2 and not (tmp_path / "new").exists()


def test_corrupt_model_is_named(tiny_model, small_faces, tmp_path, capsys):
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"this is not a keras archive")
    shutil.copy(tiny_model.with_name("model.json"), tmp_path / "model.json")
    rc, err = _run(capsys, bad, "--calibration", small_faces, "--out", tmp_path / "out")
    assert rc == 2 and str(bad) in err and "corrupt" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_truncated_model_is_named(tiny_model, small_faces, tmp_path, capsys):
    bad = tmp_path / "model.keras"
    bad.write_bytes(tiny_model.read_bytes()[: 2000])
    shutil.copy(tiny_model.with_name("model.json"), tmp_path / "model.json")
    rc, err = _run(capsys, bad, "--calibration", small_faces, "--out", tmp_path / "out")
    assert rc == 2 and str(bad) in err
    assert not (tmp_path / "out").exists()


def test_missing_metadata_says_what_to_pass(tiny_model, small_faces, tmp_path, capsys):
    lone = tmp_path / "lone.keras"
    shutil.copy(tiny_model, lone)
    rc, err = _run(capsys, lone, "--calibration", small_faces, "--out", tmp_path / "out")
    assert rc == 2 and "--metadata" in err and str(lone) in err


def test_metadata_without_threshold(tiny_model, small_faces, tmp_path, capsys):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"preprocess": {"crop": "face", "size": 64}}))
    rc, err = _run(capsys, tiny_model, "--metadata", meta, "--calibration", small_faces,
                   "--out", tmp_path / "out")
    assert rc == 2 and "threshold" in err and str(meta) in err


@pytest.mark.parametrize("labels", [["happy", "not_happy"], ["no", "yes"]])
def test_metadata_labels_other_than_the_door_s_are_refused(tiny_model, small_faces, tmp_path,
                                                          capsys, labels):
    """The door serves the second class's score as "happy": other labels were written into a
    bundle that no daemon loads now (and that changed nothing the door did before)."""
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"preprocess": {"crop": "face", "size": 64}, "threshold": 0.5,
                                "labels": labels}))
    rc, err = _run(capsys, tiny_model, "--metadata", meta, "--calibration", small_faces,
                   "--out", tmp_path / "out")
    assert rc == 2 and "labels must be ['not_happy', 'happy']" in err and str(meta) in err
    assert not (tmp_path / "out").exists()


def test_metadata_size_that_disagrees_with_the_model_input_is_refused(tiny_model, small_faces,
                                                                     tmp_path, capsys):
    """Calibration images of another size are sized by the contract as training sized them
    (tests/convert/test_cli.py); a contract whose size is not the model's input is not data
    for this model at all."""
    meta = json.loads(tiny_model.with_name("model.json").read_text())
    meta["preprocess"]["size"] = 32
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(meta))
    rc, err = _run(capsys, tiny_model, "--metadata", wrong, "--calibration", small_faces,
                   "--out", tmp_path / "out")
    assert rc == 2 and err.count("\n") == 1
    assert "preprocess size 32 disagrees with the model input 64x64" in err
    assert not (tmp_path / "out").exists()


def test_calibration_not_a_dataset(tiny_model, tmp_path, capsys):
    rc, err = _run(capsys, tiny_model, "--calibration", tmp_path / "missing", "--out", tmp_path / "out")
    assert rc == 2 and "does not exist" in err


def test_unwritable_output_fails_before_converting(tiny_model, small_faces, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    out = blocker / "bundle"
    rc, err = _run(capsys, tiny_model, "--calibration", small_faces, "--out", out)
    assert rc == 2 and str(out) in err
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("where", ["the model's own folder", "a folder of other files",
                                   "the model's folder with an earlier bundle"])
def test_an_output_folder_that_is_not_a_bundle_is_never_replaced(where, tiny_model, small_faces,
                                                                 tmp_path, capsys):
    """--out was replaced whole, whatever it held: --out beside the model deleted the
    trained model, its metadata and its split after a successful conversion."""
    if where.startswith("the model's"):
        out = tmp_path / "trained"
        shutil.copytree(tiny_model.parent, out)
        model = out / tiny_model.name
        if where.endswith("earlier bundle"):
            (out / "model.tflite").write_bytes(b"an earlier conversion")
    else:
        out, model = tmp_path / "notes", tiny_model
        out.mkdir()
        (out / "todo.txt").write_text("keep me")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    rc, err = _run(capsys, model, "--calibration", small_faces, "--out", out, "--max-drop", "100")
    assert rc == 2 and err.count("\n") == 1, err
    said = "holds model.keras: it is a trained model" if where.startswith("the model's") \
        else "is not a model bundle"
    assert said in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_model_with_wrong_input_channels(small_faces, tmp_path, capsys):
    import keras

    model = keras.Sequential([keras.Input((64, 64, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    path = tmp_path / "gray.keras"
    model.save(path)
    (tmp_path / "gray.json").write_text(json.dumps({"preprocess": {"size": 64}, "threshold": 0.5}))
    rc, err = _run(capsys, path, "--calibration", small_faces, "--out", tmp_path / "out")
    assert rc == 2 and "3 (RGB) channels" in err and str(path) in err


# --- the bundle side: load_bundle and self_test refuse tampered bundles -----------------


@pytest.fixture
def bundle_copy(converted, tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(converted[0], out)
    return out


def test_load_bundle_refuses_changed_model(bundle_copy):
    model = bundle_copy / "model.tflite"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load_bundle(bundle_copy)


def test_load_bundle_refuses_shape_disagreement(bundle_copy):
    meta_path = bundle_copy / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["input"]["shape"] = [1, 96, 96, 3]
    meta_path.write_text(json.dumps(meta))
    reseal_bundle(bundle_copy)
    with pytest.raises(ModelError, match="disagrees"):
        load_bundle(bundle_copy).classifier()


def test_load_bundle_refuses_preprocess_size_disagreement(bundle_copy):
    meta_path = bundle_copy / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["preprocess"]["size"] = 96
    meta_path.write_text(json.dumps(meta))
    reseal_bundle(bundle_copy)
    with pytest.raises(ModelError, match="preprocess size 96"):
        load_bundle(bundle_copy).classifier()


def test_self_test_refuses_wrong_golden_outputs(bundle_copy):
    path = bundle_copy / "golden.npz"
    with np.load(path) as data:
        inputs, outputs = data["inputs"], data["outputs"]
    shifted = (outputs.astype(np.int16) + np.where(outputs > 0, -10, 10)).astype(np.int8)
    np.savez_compressed(path, inputs=inputs, outputs=shifted)
    reseal_bundle(bundle_copy)
    bundle = load_bundle(bundle_copy)
    with pytest.raises(SelfTestError, match="refusing to arm"):
        bundle.self_test(bundle.classifier())


@pytest.mark.parametrize("name", ["model.json", "golden.npz", "MODEL_CARD.md"])
def test_load_bundle_refuses_any_changed_file_of_a_converted_bundle(bundle_copy, name):
    """Issue 16 item 4: the sha256 covers the whole bundle, not only model.tflite."""
    path = bundle_copy / name
    if name == "model.json":
        meta = json.loads(path.read_text())
        meta["threshold"] = 0.95
        path.write_text(json.dumps(meta))
    else:
        with open(path, "ab") as handle:
            handle.write(b"\0")
    with pytest.raises(ModelError, match="changed"):
        load_bundle(bundle_copy)
