"""What the desktop tools leave in their output folders when a run is cut short or the
folders overlap (a field probe's findings): a retrain into a model's folder, a geometry
stage fitted to another classifier, adapt's bundle and report, outputs inside the data."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from happyhouse.daemon.datasets import Dataset
from happyhouse.daemon.errors import DataError, ModelError
from happyhouse.daemon.filesafety import replace_folders
from happyhouse.train import trainer
from happyhouse.train.trainer import MODEL_FILE, TrainConfig, read_meta

REPO = Path(__file__).resolve().parents[2]


def earlier_model(folder: Path) -> Path:
    """A model folder as a finished run and a geometry fit leave it, plus notes."""
    folder.mkdir(parents=True)
    for name, text in ((MODEL_FILE, "old weights"), ("train_meta.json", '{"threshold": 0.94}'),
                       ("split.json", "{}"), ("geometry.json", '{"threshold": 0.89}'),
                       ("geometry_head.npz", "old head"), ("card-notes.md", "hand-written")):
        (folder / name).write_text(text)
    return folder


def tiny_data():
    images = np.zeros((4, 64, 64, 3), np.uint8)
    return Dataset(images, np.array([0, 1, 0, 1]), [f"f{i}.png" for i in range(4)])


def test_an_interrupted_retrain_leaves_the_model_folder_as_it_was(tmp_path, monkeypatch):
    """The checkpoint went straight into --out: Ctrl-C after one epoch left new weights
    beside the old train_meta.json, and the converter shipped the old threshold with them."""
    out = earlier_model(tmp_path / "model")
    before = {p.name: p.read_text() for p in out.iterdir()}

    def interrupted(cfg, data, tr, va, spec, started, staged, report_dir, final_out):
        (staged / MODEL_FILE).write_text("new weights, first epoch")
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_train_into", interrupted)
    cfg = TrainConfig(data=[str(tmp_path / "faces")], out=out, augment="none")
    with pytest.raises(KeyboardInterrupt):
        trainer.train_split(cfg, tiny_data(), np.array([0, 1]), np.array([2, 3]))
    assert {p.name: p.read_text() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging left behind


def test_a_finished_retrain_replaces_the_model_and_drops_what_was_fitted_to_the_old_one(tmp_path, monkeypatch):
    """geometry.json stayed beside the new model.keras, and convert shipped its fused
    threshold, chosen with the old classifier's scores."""
    out = earlier_model(tmp_path / "model")

    def finished(cfg, data, tr, va, spec, started, staged, report_dir, final_out):
        for name in (MODEL_FILE, "train_meta.json", "split.json", "metrics.json"):
            (staged / name).write_text(f"new {name}")
        return {"meta": {}}

    monkeypatch.setattr(trainer, "_train_into", finished)
    cfg = TrainConfig(data=[str(tmp_path / "faces")], out=out, augment="none")
    result = trainer.train_split(cfg, tiny_data(), np.array([0, 1]), np.array([2, 3]))
    assert result["model"] == out / MODEL_FILE and result["report_dir"] == out
    assert sorted(p.name for p in out.iterdir()) == ["card-notes.md", "metrics.json", MODEL_FILE,
                                                     "split.json", "train_meta.json"]
    assert (out / MODEL_FILE).read_text() == f"new {MODEL_FILE}"
    assert (out / "card-notes.md").read_text() == "hand-written"


def test_a_geometry_stage_fitted_to_another_classifier_is_refused(tmp_path):
    from happyhouse.train.geometry import stage_beside

    folder = tmp_path / "model"
    shutil.copytree(REPO / "models" / "general", folder)
    sidecar = json.loads((folder / "geometry.json").read_text())
    sidecar["model_sha256"] = "0" * 64  # fitted to a model.keras that is no longer there
    (folder / "geometry.json").write_text(json.dumps(sidecar))
    with pytest.raises(ModelError, match="fitted to another model.keras .* fit the geometry stage again"):
        stage_beside(folder / MODEL_FILE)
    from happyhouse.daemon.bundle import sha256_file

    sidecar["model_sha256"] = sha256_file(folder / MODEL_FILE)
    (folder / "geometry.json").write_text(json.dumps(sidecar))
    assert stage_beside(folder / MODEL_FILE) is not None


@pytest.mark.parametrize("which", ["out", "report"])
def test_training_outputs_inside_the_training_data_are_refused(tmp_path, which):
    """--out inside a class folder: its plots were read as happy faces by the next run."""
    faces = tmp_path / "faces"
    (faces / "happy").mkdir(parents=True)
    inside = faces / "happy" / "run"
    cfg = TrainConfig(data=[str(faces)], out=inside if which == "out" else tmp_path / "m",
                      report_dir=inside if which == "report" else None)
    with pytest.raises(DataError, match="inside the training data"):
        trainer.check_output_folders(cfg)
    assert not inside.exists()


def test_a_broken_train_meta_is_a_model_error(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "train_meta.json").write_text('{"format": "happyhouse-train-meta", "prepro')
    with pytest.raises(ModelError, match="not readable JSON.*copy the model's folder again"):
        read_meta(folder / MODEL_FILE)
    meta = json.loads((REPO / "models" / "general" / "train_meta.json").read_text())
    del meta["preprocess"]
    (folder / "train_meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="lacks its preprocess contract"):
        read_meta(folder / MODEL_FILE)


def test_an_init_model_without_its_sidecar_is_said(tmp_path, caplog):
    """A copy of the CLAHE-trained model without train_meta.json fine-tuned on other pixels
    than its parent learnt, silently."""
    (tmp_path / MODEL_FILE).write_text("weights")
    assert trainer.inherited_normalize(tmp_path / MODEL_FILE) == "none"
    assert "its training metadata cannot be read" in caplog.text


@pytest.mark.parametrize("report", ["same", "inside-out", "out-inside"])
def test_adapt_refuses_a_report_folder_that_overlaps_the_bundle(tmp_path, report):
    """--report equal to --out (or one inside the other) deleted the bundle it had just
    made, and exited 0."""
    from happyhouse.train.adapt import check_apart

    out = tmp_path / "bundle"
    report_out = {"same": out, "inside-out": out / "report", "out-inside": tmp_path}[report]
    with pytest.raises(DataError, match="two separate folders"):
        check_apart(out, report_out, tmp_path / "frames")


def test_adapt_refuses_outputs_inside_the_house_frames(tmp_path):
    from happyhouse.train.adapt import check_apart

    with pytest.raises(DataError, match="inside --frames"):
        check_apart(tmp_path / "frames" / "bundle", tmp_path / "report", tmp_path / "frames")


def test_replacing_folders_keeps_the_old_ones_until_the_new_ones_are_in(tmp_path, monkeypatch):
    """adapt deleted the earlier bundle and then moved the new one in: a Ctrl-C there left
    no bundle at all."""
    old_bundle, old_report = tmp_path / "bundle", tmp_path / "report"
    for folder in (old_bundle, old_report):
        folder.mkdir()
        (folder / "what").write_text("old")
    new_bundle, new_report = tmp_path / "work" / "b", tmp_path / "work" / "r"
    for folder in (new_bundle, new_report):
        folder.mkdir(parents=True)
        (folder / "what").write_text("new")
    real_replace = os.replace
    calls = []

    def interrupted_at_the_first_swap(src, dst):
        calls.append((src, dst))
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted_at_the_first_swap)
    with pytest.raises(KeyboardInterrupt):
        replace_folders(((new_bundle, old_bundle), (new_report, old_report)))
    monkeypatch.setattr(os, "replace", real_replace)
    assert calls and (old_bundle / "what").read_text() == "old"
    assert (old_report / "what").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "report", "work"]
    new_bundle.mkdir()
    (new_bundle / "what").write_text("new")
    new_report.mkdir(exist_ok=True)
    (new_report / "what").write_text("new")
    replace_folders(((new_bundle, old_bundle), (new_report, old_report)))
    assert (old_bundle / "what").read_text() == "new" and (old_report / "what").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "report", "work"]
