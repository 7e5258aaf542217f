"""Geometry head training and a fused bundle end to end: train head -> convert -> the door."""

import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from happyhouse.convert.cli import EXIT_UNARMED
from happyhouse.daemon.bundle import load_bundle
from happyhouse.daemon.config import load_config
from happyhouse.daemon.datasets import load_dataset
from happyhouse.daemon.errors import ModelError
from happyhouse.daemon.geometry import HEAD_FILE
from happyhouse.daemon.pipeline import Pipeline


@pytest.fixture(scope="module")
def fused_model(tiny_model, small_faces, tmp_path_factory):
    """The tiny model with a geometry head trained on its own split (every 4th face validates)."""
    folder = tmp_path_factory.mktemp("fused")
    for item in tiny_model.parent.iterdir():
        shutil.copy(item, folder / item.name)
    data = load_dataset(small_faces)
    (folder / "split.json").write_text(json.dumps(
        {"sources": [str(small_faces)], "validation_ids": data.ids[::4]}))
    from happyhouse.train.geometry import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--data", str(small_faces), "--model", str(folder / "model.keras")]) == 0
    return folder / "model.keras", out.getvalue()


def test_training_the_head_reports_each_stage_on_validation(fused_model):
    model, printed = fused_model
    sidecar = json.loads((model.parent / "geometry.json").read_text())
    assert sidecar["split"]["n_val"] == 30 and sidecar["split"]["n_train"] == 90
    for name in ("classifier", "geometry", "fused"):
        assert name in printed and 0.0 <= sidecar["validation"][name]["roc_auc"] <= 1.0
    # real faces: mouth shape separates smiles from non-smiles better than chance
    assert sidecar["validation"]["geometry"]["roc_auc"] > 0.6
    assert 0.5 <= sidecar["threshold"] <= 1.0
    assert (model.parent / HEAD_FILE).is_file()


def test_fused_bundle_proves_float_int8_parity_and_serves_the_door(fused_model, small_faces,
                                                                   tmp_path):
    from happyhouse.convert.cli import main

    model, _ = fused_model
    out = tmp_path / "bundle"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main([str(model), "--calibration", str(small_faces), "--out", str(out),
                     "--max-drop", "50", "--json"]) == EXIT_UNARMED
    bundle = load_bundle(out)
    sidecar = json.loads((model.parent / "geometry.json").read_text())
    # a new fit levels rolled heads (format 4), copied from the sidecar into model.json
    assert bundle.meta["format_version"] == 4 and bundle.geometry is not None
    assert bundle.geometry.level_beyond == 10.0 and sidecar["geometry"]["level"]["rounds"] == 2
    assert bundle.threshold == pytest.approx(sidecar["threshold"])
    parity = bundle.meta["metrics"]["parity"]
    # the hold-out is the split's 30 validation faces: fused float vs fused int8 scores
    assert parity["n"] == 30 and parity["agreement"] >= 0.9 and parity["max_score_diff"] < 0.2
    assert bundle.meta["metrics"]["fusion"]["fused"]["roc_auc"] is not None
    assert (out / HEAD_FILE).is_file()
    card = (out / "MODEL_CARD.md").read_text()
    assert "## Geometry stage" in card and "chosen on the fused validation scores" in card
    # shipped metadata names its data, not this machine's folders
    assert str(small_faces) not in (out / "model.json").read_text()
    assert str(small_faces) not in (out / "MODEL_CARD.md").read_text()

    # 30 hold-out faces: no door arms it (too few to mean anything); it still scores
    with pytest.raises(ModelError, match="too poor to arm a door"):
        Pipeline.from_config(load_config(None, {"model.bundle": str(out)}))
    pipe = Pipeline.from_config(load_config(None, {"model.bundle": str(out)}), door=False)
    face = load_dataset(small_faces, limit=1).images[0]
    obs = pipe.observe_crop(np.ascontiguousarray(face[..., ::-1]))
    assert obs.score == pytest.approx(pipe.geometry.fuse(obs.parts["classifier"], obs.parts["geometry"]))
    assert pipe.geometry.spec.weights == tuple(sidecar["geometry"]["fusion"]["weights"])


@pytest.mark.parametrize("output,version", [("probability", 1), ("view_logits", 3)])
def test_no_geometry_flag_keeps_a_plain_bundle(fused_model, small_faces, tmp_path, output,
                                               version):
    """Without the geometry stage a probability bundle is format 1 (any daemon serves it);
    a logit output needs format 3 whatever the steps."""
    from happyhouse.convert.cli import main

    model, _ = fused_model
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([str(model), "--calibration", str(small_faces), "--out", str(tmp_path / "b"),
                     "--max-drop", "50", "--no-geometry", "--output", output]) == EXIT_UNARMED
    bundle = load_bundle(tmp_path / "b")
    assert bundle.geometry is None and bundle.meta["format_version"] == version


@pytest.mark.parametrize("case", ["no model", "no metadata"])
def test_the_geometry_tool_names_what_is_missing_and_no_flag_it_lacks(case, tiny_model, tmp_path,
                                                                      capsys):
    """A mistyped --model was reported as 'no training metadata beside it; pass --metadata
    PATH', a flag this tool does not have (the converter's advice, shared)."""
    from happyhouse.train.geometry import main

    model = tmp_path / "model.keras"
    if case == "no metadata":
        shutil.copy(tiny_model, model)
    rc = main(["--data", str(tmp_path), "--model", str(model)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "--metadata" not in err
    assert ("does not exist" if case == "no model" else "no training metadata beside") in err


def test_source_caps_keep_at_most_n_faces_of_a_source_the_same_every_run():
    from happyhouse.train.data import capped, parse_source_caps

    ids = [f"/d/{src}/{cls}/{i}.jpg" for src, n in (("genki4k-train", 30), ("smilesmiled", 70))
           for i in range(n) for cls in ("happy",)]
    keep = capped(ids, parse_source_caps(["smilesmiled=20"]), seed=0)
    assert keep[:30].all() and keep[30:].sum() == 20  # the other source untouched
    assert np.array_equal(keep, capped(ids, {"smilesmiled": 20}, seed=0))
    assert not np.array_equal(keep, capped(ids, {"smilesmiled": 20}, seed=1))
    assert capped(ids, {"smilesmiled": 500}).all()  # a cap above the source's size keeps all
    assert capped(ids, {}).all()
    # without a cap no face needs a class-folder name (a course .h5 trains a head too)
    assert capped(["/d/test_happy.h5#0", "test_happy.h5#1"], {}).all()


@pytest.mark.parametrize("items, words", [
    (["smilesmiled"], "SOURCE=N"), (["smilesmiled=0"], "positive"), (["=5"], "SOURCE=N"),
    (["a=1", "a=2"], "once per source"), (["smilesmiled=x"], "SOURCE=N")])
def test_a_malformed_source_cap_is_one_clear_error(items, words):
    from happyhouse.daemon.errors import DataError
    from happyhouse.train.data import parse_source_caps

    with pytest.raises(DataError, match=words):
        parse_source_caps(items)


def test_the_head_learns_from_the_capped_faces_and_says_so(fused_model, small_faces, tmp_path,
                                                          capsys):
    from happyhouse.train.geometry import main

    model, _ = fused_model
    out = tmp_path / "capped"
    assert main(["--data", str(small_faces), "--model", str(model), "--out", str(out),
                 "--source-cap", f"{small_faces.name}=40"]) == 0
    sidecar = json.loads((out / "geometry.json").read_text())
    assert sidecar["split"]["n_train"] == 90 and sidecar["split"]["n_head_train"] == 40
    assert sidecar["source_caps"] == {small_faces.name: 40} and sidecar["cap_seed"] == 0
    head = np.load(out / HEAD_FILE)["weights"]
    assert not np.allclose(head, np.load(model.parent / HEAD_FILE)["weights"])
    capsys.readouterr()
    assert main(["--data", str(small_faces), "--model", str(model), "--out", str(tmp_path / "x"),
                 "--source-cap", "genki=40"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "genki" in err and small_faces.name in err
    assert not (tmp_path / "x").exists()  # nothing half-written


@pytest.mark.parametrize("flag", [["--l2", "nan"], ["--weights", "nan", "0.3"], ["--weights", "0", "0"],
                                  ["--weights", "-1", "2"], ["--max-false-open", "nan"],
                                  ["--limit", "0"], ["--seed", "-1"], ["--cap-seed", "-3"]])
def test_a_head_that_cannot_be_fitted_or_fused_is_one_line_before_any_face_is_read(
        flag, tmp_path, capsys, monkeypatch):
    """A NaN L2 or weight once fitted and wrote a head; weights 0 0 one no bundle serves."""
    from fakes import forbid
    from happyhouse.train import data
    from happyhouse.train.geometry import main

    forbid(monkeypatch, data, ("load_training_data",), "faces were read")
    out = tmp_path / "head"
    assert main(["--data", str(tmp_path), "--model", str(tmp_path / "m.keras"), "--out", str(out),
                 *flag]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag[0] in err, err
    assert not out.exists()
