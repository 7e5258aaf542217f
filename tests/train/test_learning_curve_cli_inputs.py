"""The learning curve's command line: one line and exit 2 for what it cannot use, 130 for
Ctrl-C, nothing overwritten by an empty curve, nothing left in /tmp by its points."""

import json
from pathlib import Path

import pytest

from happyhouse.train import house_cv
from happyhouse.train import learning_curve as lc
from fakes import one_error_line

PROG = "happyhouse-train-learning-curve"
COMMITTED_FOLDS = Path(__file__).resolve().parents[2] / "reports" / "house-cv" / "folds.json"


def _one_error_line(capsys, *words):
    one_error_line(capsys.readouterr().err, PROG, *words)


def test_plot_only_without_points_is_refused_and_keeps_the_curve(tmp_path, capsys):
    """--plot-only with no points/ folder rewrote learning-curve.json to 0 points."""
    curve = tmp_path / lc.CURVE_JSON
    curve.write_text('{"points": ["the committed curve"]}\n')
    assert lc.main(["--plot-only", "--out", str(tmp_path), "--sizes", "24", "--seeds", "0"]) == 2
    _one_error_line(capsys, "no measured points")
    assert curve.read_text() == '{"points": ["the committed curve"]}\n'
    assert not (tmp_path / lc.CURVE_PNG).exists()


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_an_out_folder_that_cannot_be_made_is_one_line(where, tmp_path, capsys):
    if where == "proc" and not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    afile = tmp_path / "afile"
    afile.write_text("")
    out = afile / "curve" if where == "under-a-file" else Path("/proc/nope")
    assert lc.main(["--plot-only", "--out", str(out)]) == 2
    _one_error_line(capsys, str(out))


def test_ctrl_c_is_130_and_one_line(tmp_path, capsys, monkeypatch):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(lc, "collect", ctrl_c)
    try:
        rc = lc.main(["--plot-only", "--out", str(tmp_path)])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped as a traceback")
    assert rc == 130
    assert capsys.readouterr().err == f"{PROG}: interrupted by SIGINT (Ctrl-C)\n"


def test_a_refused_point_is_one_line_that_names_the_point(tmp_path, capsys):
    """It was house_cv's own error line and then "learning_curve: the point ... failed"."""
    assert lc.main(["--out", str(tmp_path), "--folds", str(COMMITTED_FOLDS), "--sizes", "24",
                    "--seeds", "0", "--", "--k", "1"]) == 2
    _one_error_line(capsys, "the point n=24 seed=0", "--k must be at least 2")
    assert not (tmp_path / lc.CURVE_JSON).exists()


def test_no_point_leaves_its_fold_models_folder(tmp_path, monkeypatch, capsys):
    """Each point's house-CV run left its temporary fold-models folder in /tmp."""
    works = []

    def run(args):  # a house-CV run without training: its report from fixed figures
        works.append(Path(args.work))
        (Path(args.work) / "fold0").mkdir(parents=True)
        Path(args.out).mkdir(parents=True)
        figures = {"n": 150, "accuracy": 0.8, "errors": 30, "false_opens": 1, "recall": 0.7,
                   "roc_auc": 0.9, "fold_protocol": "refit", "fusion": None}
        (Path(args.out) / "metrics.json").write_text(json.dumps(figures))
        return figures

    monkeypatch.setattr(house_cv, "run", run)
    assert lc.main(["--out", str(tmp_path), "--folds", str(COMMITTED_FOLDS), "--sizes", "24",
                    "48", "--seeds", "0", "--", "--data", str(tmp_path / "frames.h5")]) == 0
    assert len(works) == 2 and not any(w.exists() for w in works)
    curve = json.loads((tmp_path / lc.CURVE_JSON).read_text())
    assert [p["train_frames"] for p in curve["points"]] == [24, 48]


@pytest.mark.parametrize("argv, said", [
    (["--sizes", "24", "0"], "--sizes must each be at least 8 frames, got 24 0"),
    (["--sizes", "24", "--", "--bogus"], "the house protocol's options after --: unrecognized"),
])
def test_sizes_and_protocol_options_are_checked_before_any_point(tmp_path, capsys, monkeypatch,
                                                                  argv, said):
    """--sizes 24 0 ran a whole point first, then printed the house protocol's 18-line usage
    under its name; a mistyped option after -- did the same."""
    monkeypatch.setattr(lc, "_measure_point", lambda *a: pytest.fail("a point ran"))
    assert lc.main(["--out", str(tmp_path), "--seeds", "0", "--folds", str(COMMITTED_FOLDS),
                    *argv]) == 2
    _one_error_line(capsys, said)
