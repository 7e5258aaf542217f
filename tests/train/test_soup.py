"""python -m happyhouse.train.soup: fine-tunes averaged into one model, or refused with one line."""

import json
import shutil

import numpy as np
import pytest

from happyhouse.daemon.errors import ModelError
from happyhouse.train import cli, soup
from happyhouse.train.trainer import META_FILE, MODEL_FILE, load_model, read_meta


def test_average_is_the_mean_of_each_array_in_its_own_dtype():
    a = [np.array([[0.0, 2.0]], np.float32), np.array([1, 3], np.int64)]
    b = [np.array([[4.0, 4.0]], np.float32), np.array([3, 5], np.int64)]
    got = soup.average([a, b])
    np.testing.assert_array_equal(got[0], [[2.0, 3.0]])
    np.testing.assert_array_equal(got[1], [2, 4])
    assert got[0].dtype == np.float32 and got[1].dtype == np.int64


def test_average_refuses_models_of_different_shapes():
    with pytest.raises(ModelError, match="same architecture"):
        soup.average([[np.zeros((2, 2))], [np.zeros((2, 3))]])
    with pytest.raises(ModelError, match="same architecture"):
        soup.average([[np.zeros(2)], [np.zeros(2), np.zeros(2)]])


@pytest.fixture(scope="module")
def fine_tunes(small_faces, tmp_path_factory):
    """Three 1-epoch runs on the same faces: two on one split (seeds 2, 3), one on another."""
    root = tmp_path_factory.mktemp("soup")
    runs = {}
    for name, flags in (("s2", ["--seed", "2", "--split-seed", "1"]), ("s3", ["--seed", "3", "--split-seed", "1"]),
                        ("other-split", ["--seed", "4"])):
        out = root / name
        assert cli.main(["--data", str(small_faces), "--epochs", "1", "--quiet", "--arch", "happymodel",
                         "--out", str(out)] + flags) == 0
        runs[name] = out / MODEL_FILE
    return root, runs


@pytest.mark.slow
def test_a_soup_is_the_members_mean_with_its_own_threshold_and_report(fine_tunes, small_faces, tmp_path):
    _, runs = fine_tunes
    out = tmp_path / "soup"
    assert soup.main(["--model", str(runs["s2"]), "--model", str(runs["s3"]), "--data", str(small_faces),
                      "--out", str(out), "--report", str(tmp_path / "report")]) == 0
    members = [load_model(runs[k]).get_weights() for k in ("s2", "s3")]
    for got, one, two in zip(load_model(out / MODEL_FILE).get_weights(), *members):
        np.testing.assert_allclose(got, (one + two) / 2, rtol=1e-6, atol=1e-7)
    meta = read_meta(out / MODEL_FILE)
    assert [m["seed"] for m in meta["soup"]["members"]] == [2, 3]
    assert all(len(m["sha256"]) == 64 for m in meta["soup"]["members"])
    assert 0.5 <= meta["threshold"] <= 1.0
    assert (out / "split.json").read_text() == (runs["s2"].parent / "split.json").read_text()
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["n"] == meta["validation"]["n"] == meta["split"]["n_val"]
    assert metrics["threshold"] == pytest.approx(meta["threshold"])
    assert (tmp_path / "report" / "roc.png").stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.parametrize("case", ["one model", "same model twice", "other split", "out is a member"])
def test_a_soup_that_cannot_be_made_is_one_line_and_writes_nothing(fine_tunes, small_faces, tmp_path,
                                                                    capsys, case):
    _, runs = fine_tunes
    out = tmp_path / "soup"
    models = {"one model": [runs["s2"]], "same model twice": [runs["s2"], runs["s2"]],
              "other split": [runs["s2"], runs["other-split"]],
              "out is a member": [runs["s2"], runs["s3"]]}[case]
    if case == "out is a member":
        out = runs["s3"].parent
    before = sorted(p.name for p in out.iterdir()) if out.exists() else None
    argv = [a for m in models for a in ("--model", str(m))] + ["--data", str(small_faces), "--out", str(out)]
    assert soup.main(argv) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert {"one model": "at least two", "same model twice": "twice", "other split": "other faces",
            "out is a member": "holds one of the models"}[case] in err
    assert (sorted(p.name for p in out.iterdir()) if out.exists() else None) == before
    if case == "out is a member":
        assert read_meta(out / MODEL_FILE).get("soup") is None and (out / META_FILE).is_file()


@pytest.mark.slow
def test_an_interrupted_soup_leaves_an_earlier_model_folder_as_it_was(fine_tunes, small_faces,
                                                                      tmp_path, monkeypatch):
    """Killed while writing, a soup left an empty model.keras in --out, or a new one beside
    the old train_meta.json (its threshold) and the old model's geometry stage."""
    _, runs = fine_tunes
    out = tmp_path / "general"
    shutil.copytree(runs["other-split"].parent, out)
    (out / "geometry.json").write_text('{"threshold": 0.89}')
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def killed(made, staged, report_dir, model_file):
        (staged / MODEL_FILE).write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(soup, "_write", killed)
    with pytest.raises(KeyboardInterrupt):
        soup.run(soup.parser().parse_args(["--model", str(runs["s2"]), "--model", str(runs["s3"]),
                                           "--data", str(small_faces), "--out", str(out)]))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["general"]


@pytest.mark.slow
def test_a_soup_of_part_of_the_split_is_refused(fine_tunes, small_faces, tmp_path, capsys):
    """--data with one of the members' two sources chose the threshold on 425 of 2,395
    validation faces, while the metadata and report claimed the whole split."""
    _, runs = fine_tunes
    part = tmp_path / small_faces.name  # ids name their source folder
    for name in ("happy", "not_happy"):
        (part / name).mkdir(parents=True)
        for picture in sorted((small_faces / name).iterdir())[: len(list((small_faces / name).iterdir())) // 2]:
            shutil.copy(picture, part / name / picture.name)
    out = tmp_path / "soup"
    assert soup.main(["--model", str(runs["s2"]), "--model", str(runs["s3"]), "--data", str(part),
                      "--out", str(out)]) == 2
    assert "of the members' validation split" in capsys.readouterr().err
    assert not out.exists()
