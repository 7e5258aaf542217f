"""house_cv's command line: what it refuses before any work, what its report says about the
folds it really ran, and what it leaves behind. No fold is trained here: the trainer and
the cross-validation are stand-ins, so each run takes a second."""

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from happyhouse.train import house_cv
from fakes import one_error_line

PROG = "happyhouse-train-house-cv"
COMMITTED_FOLDS = Path(__file__).resolve().parents[2] / "reports" / "house-cv" / "folds.json"


@pytest.fixture
def no_training(monkeypatch):
    """The trainer and cross_validate replaced: a run writes its report from fixed scores.

    Returns the work folders the runs trained in."""
    trainer = types.ModuleType("happyhouse.train.trainer")
    trainer.load_model = lambda path: object()
    trainer.predict = lambda model, images, spec=None: np.full(len(images), 0.5)
    trainer.inherited_normalize = lambda init: "none"
    monkeypatch.setitem(sys.modules, "happyhouse.train.trainer", trainer)
    works = []

    def cross_validate(args, data, has_face, fold, fusion=None):
        work = Path(args.work)
        (work / "fold0").mkdir(parents=True)  # what training leaves there: a fold's models
        works.append(work)
        scores = np.where(data.labels == 1, 0.9, 0.1).astype(float)
        k = int(fold.max()) + 1
        return {"scores": scores, "classifier": scores, "geometry": np.full(len(scores), np.nan),
                "pred": (scores >= 0.5).astype(int), "by_alpha": {}, "histories": {},
                "inner_scores": [None] * k, "threshold": 0.5,
                "folds": [{"fold": f, "n_test": int((fold == f).sum()), "threshold": 0.5}
                          for f in range(k)]}

    monkeypatch.setattr(house_cv, "cross_validate", cross_validate)
    return works


def _run(h5, out, *extra):
    return house_cv.main(["--data", str(h5), "--out", str(out), "--crop", "frame", *extra])


def _one_error_line(capsys, *words):
    return one_error_line(capsys.readouterr().err, PROG, *words, alone=False)


def test_a_k_other_than_the_saved_folds_files_is_refused(happy_house_h5, tmp_path, capsys,
                                                         no_training):
    """--k 3 with a 5-fold folds.json silently ran the file's 5 folds."""
    out = tmp_path / "cv"
    assert _run(happy_house_h5, out, "--folds", str(COMMITTED_FOLDS), "--k", "3") == 2
    _one_error_line(capsys, "holds 5 folds but --k is 3")
    assert not out.exists() and not no_training


def test_the_report_states_the_folds_the_run_used(happy_house_h5, tmp_path, no_training):
    """With --k 3, metrics.json still said 5-fold, 120 training and 30 unseen frames."""
    out = tmp_path / "cv"
    assert _run(happy_house_h5, out, "--k", "3") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["scope"] == "house 3-fold CV, unseen frames"
    assert metrics["protocol"].startswith("3-fold stratified CV;")
    assert "per fold on 100 frames" in metrics["protocol"]
    assert "score 50 unseen frames" in metrics["protocol"]
    assert "120" not in metrics["protocol"] and "30 unseen" not in metrics["protocol"]
    assert len(json.loads((out / "folds.json").read_text())["folds"]) == 3
    # a saved file without --k: its own number of folds, and the report says so
    again = tmp_path / "again"
    assert _run(happy_house_h5, again, "--folds", str(COMMITTED_FOLDS),
                "--protocol", "split", "--train-frames", "60") == 0
    metrics = json.loads((again / "metrics.json").read_text())
    assert metrics["scope"] == "house 5-fold CV, unseen frames"
    assert "per fold on 60 frames (48 train / 12 pick epoch+threshold)" in metrics["protocol"]
    assert "score 30 unseen frames" in metrics["protocol"]


def test_the_protocol_text_counts_uneven_folds():
    fold = np.arange(150) % 4  # 38, 38, 37, 37 frames
    scope, protocol = house_cv.protocol_text(fold, "refit", "fine-tune")
    assert scope == "house 4-fold CV, unseen frames"
    assert "on 112-113 frames" in protocol and "score 37-38 unseen frames" in protocol


def test_the_fold_models_folder_is_removed_unless_given(happy_house_h5, tmp_path, no_training):
    """Without --work every run left its temporary folder (fold models) in /tmp."""
    assert _run(happy_house_h5, tmp_path / "cv", "--k", "3") == 0
    assert len(no_training) == 1 and not no_training[0].exists()
    mine = tmp_path / "work"
    assert _run(happy_house_h5, tmp_path / "cv2", "--k", "3", "--work", str(mine)) == 0
    assert no_training[1] == mine and (mine / "fold0").is_dir()  # the caller's, kept


def test_the_report_names_the_general_model_by_its_repo_path(happy_house_h5, tmp_path,
                                                             no_training):
    """metrics.json recorded the default --init as this machine's absolute path."""
    out = tmp_path / "cv"
    assert _run(happy_house_h5, out, "--k", "3", "--init", str(house_cv.GENERAL_MODEL)) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["init"] == "models/general/model.keras"
    committed = json.loads((COMMITTED_FOLDS.parent / "metrics.json").read_text())
    assert committed["init"] == metrics["init"]  # the form the committed reports hold


def test_a_model_outside_the_checkout_is_named_not_located(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    elsewhere = Path("/") / "nonexistent-place" / "mine.keras"
    assert house_cv.recorded_path(elsewhere) == "mine.keras"
    assert house_cv.recorded_path(tmp_path / "runs" / "m.keras") == "runs/m.keras"


@pytest.mark.parametrize("case", ["out-under-a-file", "folds-not-json", "folds-a-folder"])
def test_a_bad_output_or_folds_file_is_one_line(case, happy_house_h5, tmp_path, capsys,
                                                no_training):
    """These were tracebacks (OSError from mkdir, JSONDecodeError from the folds file)."""
    afile = tmp_path / "afile"
    afile.write_text("not json\n")
    out, extra, word = tmp_path / "cv", [], "the folds file"
    if case == "out-under-a-file":
        out, word = afile / "cv", "--out"
    elif case == "folds-not-json":
        extra = ["--folds", str(afile)]
    else:
        extra = ["--folds", str(tmp_path)]
    assert _run(happy_house_h5, out, "--k", "3", *extra) == 2
    _one_error_line(capsys, word)
    assert not no_training


def test_a_missing_init_is_named_before_its_metadata(happy_house_h5, tmp_path, capsys):
    """--init /nonexistent.keras said "/train_meta.json is missing"."""
    missing = tmp_path / "nonexistent.keras"
    assert house_cv.main(["--data", str(happy_house_h5), "--out", str(tmp_path / "cv"),
                          "--init", str(missing)]) == 2
    line = _one_error_line(capsys, str(missing), "does not exist")
    assert "train_meta" not in line
    assert not (tmp_path / "cv").exists()


def test_the_help_says_what_the_default_geometry_head_does():
    """--help said the head "is not refitted" while the default corrects it per fold."""
    doc = house_cv.__doc__
    assert "not refitted" not in doc
    assert "--geometry-head house" in doc and "fit_house_head" in doc


def test_the_error_prefix_is_the_shared_form(tmp_path, capsys):
    assert house_cv.main(["--data", str(tmp_path / "x.h5"), "--k", "1"]) == 2
    _one_error_line(capsys, "--k must be at least 2")


def test_a_folder_where_the_scores_go_is_one_line_before_the_run(happy_house_h5, tmp_path, capsys,
                                                                 no_training):
    """--scores-out a folder: IsADirectoryError after the whole run, an empty --out left."""
    (tmp_path / "sc.npz").mkdir()
    assert _run(happy_house_h5, tmp_path / "cv", "--k", "3",
                "--scores-out", str(tmp_path / "sc.npz")) == 2
    _one_error_line(capsys, "--scores-out", "is a folder")
    assert not no_training


def test_a_report_cut_short_leaves_the_last_one_whole(happy_house_h5, tmp_path, monkeypatch,
                                                      no_training):
    """Killed while the report was written: a new roc.png beside the last run's metrics.json."""
    from happyhouse.train import report

    out = tmp_path / "cv"
    assert _run(happy_house_h5, out, "--k", "3") == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    def killed(labels, scores, threshold, path, **kwargs):
        Path(path).write_bytes(b"the new run's roc.png")
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "plot_roc", killed)
    assert _run(happy_house_h5, out, "--k", "3") == 130
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cv"]


def test_a_folds_file_of_one_fold_is_one_line(happy_house_h5, tmp_path, capsys, no_training):
    """A hand-made one-fold folds.json failed inside the estimate ("not_happy has 0
    images, fewer than the 4 folds asked for")."""
    import json

    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"folds": [list(range(150))], "n": 150, "labels": [0] * 150}))
    assert _run(happy_house_h5, tmp_path / "cv", "--folds", str(folds)) == 2
    _one_error_line(capsys, "fewer than 2 folds in it")
    assert not no_training
