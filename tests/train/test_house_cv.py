"""House-CV folds: fixed once, reused, refused when they do not match the data."""

import json

import numpy as np
import pytest

from happyhouse.daemon.errors import DataError
from happyhouse.train.house_cv import make_or_load_folds


def test_folds_are_written_once_and_reused(happy_house_h5, tmp_path):
    from happyhouse.daemon.datasets import load_dataset

    labels = load_dataset(happy_house_h5).labels
    path = tmp_path / "folds.json"
    first = make_or_load_folds(path, labels, happy_house_h5, 5, seed=0)
    saved = json.loads(path.read_text())
    assert sorted(i for fold in saved["folds"] for i in fold) == list(range(150))
    assert [len(f) for f in saved["folds"]] == [30] * 5
    again = make_or_load_folds(path, labels, happy_house_h5, 5, seed=99)  # file wins over seed
    assert np.array_equal(first, again)
    with pytest.raises(DataError, match="does not match"):
        make_or_load_folds(path, labels[::-1].copy(), happy_house_h5, 5, seed=0)


def test_committed_folds_match_the_happy_house_frames(happy_house_h5):
    from pathlib import Path

    from happyhouse.daemon.datasets import load_dataset

    path = Path(__file__).resolve().parents[2] / "reports" / "house-cv" / "folds.json"
    labels = load_dataset(happy_house_h5).labels
    fold = make_or_load_folds(path, labels, happy_house_h5, 5, seed=0)  # raises if mismatched
    assert sorted(np.bincount(fold).tolist()) == [30] * 5
    assert all(labels[fold == f].sum() in (16, 17, 18) for f in range(5))


@pytest.mark.slow
def test_refit_fold_thresholds_on_every_frame_and_trains_one_model_on_all(genki_root, tmp_path):
    """The refit protocol: inner folds score every training frame once, then one model
    trains on all of them for the inner models' median best epoch."""
    from argparse import Namespace

    from happyhouse.daemon.preprocess import Preprocess
    from happyhouse.train import house_cv
    from happyhouse.train.data import load_training_data

    data = load_training_data([str(genki_root)], Preprocess(crop="face"), limit=10)
    args = Namespace(data=genki_root, work=tmp_path, scratch="happymodel", init=None, epochs=2,
                     batch_size=8, lr=1e-3, seed=0, augment="none", patience=5,
                     max_false_open=0.01, crop="face", inner_k=2)
    rest, test = np.arange(16), np.arange(16, 20)
    model, threshold, info, history = house_cv.refit_fold(args, data, rest, 0, test)
    assert len(info["inner_best_epochs"]) == 2
    assert info["refit_epochs"] == int(np.median(info["inner_best_epochs"]))
    assert 0.5 <= threshold <= 1.0 and "val_loss" in history
    assert (tmp_path / "fold0" / "refit" / "model.keras").is_file()
    for g in (0, 1):  # each inner model validated on the other half, never on the test frames
        meta = json.loads((tmp_path / "fold0" / f"inner{g}" / "train_meta.json").read_text())
        assert meta["split"]["n_train"] == 8 and meta["split"]["n_val"] == 8
        assert meta["house_cv"] == {"fold": 0, "test_frames": test.tolist()}
    assert model.predict(np.zeros((1, 64, 64, 3), np.float32), verbose=0).shape == (1, 1)


def test_help_comes_before_tensorflow_is_imported():
    """Issue 16 item 24: `house_cv --help` printed TensorFlow's start-up logs first."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c",
                           "import sys\nfrom happyhouse.train import house_cv\n"
                           "code = house_cv.main(['--help'])\n"], capture_output=True, text=True,
                          timeout=120)
    assert "usage: python -m happyhouse.train.house_cv" in proc.stdout
    assert proc.stderr == ""
    proc = subprocess.run([sys.executable, "-c",
                           "import sys\nimport happyhouse.train.house_cv\n"
                           "print('tensorflow' in sys.modules, 'keras' in sys.modules)"],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["False", "False"], proc.stderr


def test_train_frames_keeps_each_class_share_seeded():
    """--train-frames (issue 18): a fold's training frames subsampled, stratified and seeded."""
    from happyhouse.train.house_cv import subsample

    labels = np.array([0] * 66 + [1] * 84)
    rest = np.arange(30, 150)
    kept = subsample(labels, rest, 24, seed=3)
    assert len(kept) == 24 and len(set(kept)) == 24 and set(kept) <= set(rest)
    share = labels[rest].mean()
    assert abs(labels[kept].mean() - share) <= 1 / 24 + 1e-9
    assert np.array_equal(kept, subsample(labels, rest, 24, seed=3))
    assert not np.array_equal(kept, subsample(labels, rest, 24, seed=4))
    assert np.array_equal(subsample(labels, rest, 500, seed=3), rest)
    with pytest.raises(DataError, match="2 frames of each class"):
        subsample(np.array([0] * 1 + [1] * 40), np.arange(41), 10, seed=0)


@pytest.mark.slow
def test_cross_validation_scores_and_thresholds_the_fused_score(genki_root, tmp_path):
    """House CV with a geometry stage (issue 18): each fold's scores are fused with the
    geometry head's, and its threshold is chosen on fused out-of-fold scores."""
    from argparse import Namespace

    from happyhouse.daemon.geometry import fuse
    from happyhouse.daemon.preprocess import Preprocess
    from happyhouse.train import house_cv
    from happyhouse.train.data import load_training_data, stratified_folds

    data = load_training_data([str(genki_root)], Preprocess(crop="face"), limit=12)
    args = Namespace(data=genki_root, work=tmp_path, scratch="happymodel", init=None, epochs=1,
                     batch_size=8, lr=1e-3, seed=0, augment="none", patience=5,
                     max_false_open=0.01, crop="face", inner_k=2, protocol="split",
                     train_frames=10)
    fold = stratified_folds(data.labels, 2, 0)
    has_face = np.ones(len(data), bool)
    has_face[0] = False
    geo = np.where(data.labels == 1, 0.999, 0.001)  # a geometry head that knows the answer
    cv = house_cv.cross_validate(args, data, has_face, fold, house_cv.Fusion(geo, (0.5, 0.5)))
    want = np.where(has_face, fuse(cv["classifier"], geo), 0.0)
    assert np.allclose(cv["scores"], want)
    assert cv["scores"][0] == 0.0 and cv["classifier"][0] == 0.0  # no face, no score
    assert [f["n_train"] for f in cv["folds"]] == [10, 10]
    # the fused score separates the classes, so each fold's threshold (chosen on fused
    # validation scores) lets no not-smiling face through
    assert all(f["false_opens"] == 0 for f in cv["folds"])
    assert cv["pred"][has_face & (data.labels == 1)].sum() > 0


def test_house_head_fusion_learns_only_from_the_frames_its_model_trained_on():
    """The house's geometry head (issue 18): each model is fused with the general head
    corrected on its own training frames; the labels of the frames it scores never matter."""
    from happyhouse.daemon.geometry import GeometryHead, fuse
    from happyhouse.train.geometry import fit_house_head
    from happyhouse.train.house_cv import Fusion

    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (40, 936))
    labels = np.r_[np.zeros(20, int), np.ones(20, int)]
    x[labels == 1, 5] += 1.5
    general = GeometryHead(weights=np.zeros(936), bias=0.0)
    trained, scored = np.r_[0:15, 20:35], np.r_[15:20, 35:40]
    fusion = Fusion(np.full(40, 0.5), (0.7, 0.3), x, general, labels)
    want = fit_house_head(general, x[trained], labels[trained])
    assert np.allclose(fusion.geometry(trained, scored), [want.score(v) for v in x[scored]])
    flipped = labels.copy()
    flipped[scored] = 1 - flipped[scored]
    other = Fusion(np.full(40, 0.5), (0.7, 0.3), x, general, flipped)
    assert np.array_equal(other.geometry(trained, scored), fusion.geometry(trained, scored))
    cls = np.full(len(scored), 0.6)
    assert np.allclose(fusion(trained, scored, cls), fuse(cls, fusion.geometry(trained, scored), (0.7, 0.3)))
    # the general head's own scores, unchanged, when the house does not correct it
    plain = Fusion(np.linspace(0.1, 0.9, 40), (0.7, 0.3), None, general, labels)
    assert not plain.house_head and plain.head(trained) is general
    assert np.array_equal(plain.geometry(trained, scored), np.linspace(0.1, 0.9, 40)[scored])


def test_the_house_frames_are_cropped_by_the_general_models_own_contract(tmp_path):
    """One preprocessing contract: the house CV crops as the door crops for that model."""
    import json
    import shutil
    from argparse import Namespace
    from pathlib import Path

    from happyhouse.train.house_cv import door_crop

    general = Path(__file__).resolve().parents[2] / "models" / "general"
    meta = json.loads((general / "train_meta.json").read_text())
    meta["preprocess"]["margin"] = 0.2
    (tmp_path / "train_meta.json").write_text(json.dumps(meta))
    shutil.copy(general / "model.keras", tmp_path / "model.keras")
    spec = door_crop(Namespace(scratch=None, init=tmp_path / "model.keras"))
    assert spec.crop == "face" and spec.margin == 0.2 and spec.normalize == "none"
    assert door_crop(Namespace(scratch="happymodel", init=None)).margin == 0.0


def test_each_run_trains_its_folds_in_a_folder_of_its_own(tmp_path):
    """The fold models' folder was one fixed /tmp path: training reloads each fold's best
    checkpoint from it, so two runs at once could score each other's models."""
    import shutil

    from happyhouse.train.house_cv import work_folder

    first, second = work_folder(None), work_folder(None)
    try:
        assert first != second and first.is_dir() and second.is_dir()
    finally:
        shutil.rmtree(first), shutil.rmtree(second)
    assert work_folder(tmp_path / "mine") == tmp_path / "mine"


@pytest.mark.parametrize("flag, value", [("--k", "1"), ("--k", "0"), ("--inner-k", "1"),
                                         ("--lr", "nan"), ("--epochs", "0"),
                                         ("--max-false-open", "nan"), ("--patience", "-1"),
                                         ("--seed", "-1")])
def test_a_number_the_protocol_cannot_use_is_one_line_and_writes_no_folds(
        flag, value, happy_house_h5, tmp_path, capsys):
    """--k 1 once wrote a folds file that every later run into the same folder failed on."""
    from happyhouse.train.house_cv import main

    out = tmp_path / "cv"
    assert main(["--data", str(happy_house_h5), "--out", str(out), flag, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"happyhouse-train-house-cv: error: {flag}") and " must " in err and err.count("\n") == 1, err
    assert not out.exists()
