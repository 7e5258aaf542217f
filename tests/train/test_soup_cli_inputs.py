"""The soup's committed report and metadata name its members as the repository does
(repo-relative, or the file's name, with sha256), never by the build machine's folders;
its one-line errors carry the shared prog name."""

import contextlib
import io
import json
import shutil
from pathlib import Path

from happyhouse.daemon.datasets import load_dataset
from happyhouse.train import soup

GENERAL_META = Path(__file__).resolve().parents[2] / "models" / "general" / "train_meta.json"


def _member(tiny_model, small_faces, folder: Path, seed: int) -> Path:
    """The tiny model with training metadata and a split of its own: a soup member
    without a training run (its metadata is the shipped model's, its split the tiny data's)."""
    folder.mkdir(parents=True)
    shutil.copy(tiny_model, folder / "model.keras")
    meta = json.loads(GENERAL_META.read_text())
    meta.pop("soup")
    meta["training"]["seed"] = seed
    meta["data"]["sources"] = [str(small_faces)]
    (folder / "train_meta.json").write_text(json.dumps(meta))
    ids = load_dataset(small_faces).ids
    (folder / "split.json").write_text(json.dumps({"sources": [str(small_faces)],
                                                   "validation_ids": ids[::3]}))
    return folder / "model.keras"


def test_the_soup_records_its_members_without_machine_paths(tiny_model, small_faces, tmp_path):
    """metrics.json and train_meta.json stored each member path as given (absolute)."""
    members = [_member(tiny_model, small_faces, tmp_path / "runs" / f"s{seed}", seed)
               for seed in (1, 2)]
    out, report = tmp_path / "soup", tmp_path / "report"
    with contextlib.redirect_stdout(io.StringIO()):
        assert soup.main([a for m in members for a in ("--model", str(m))]
                         + ["--data", str(small_faces), "--out", str(out),
                            "--report", str(report)]) == 0
    for path in (out / "train_meta.json", report / "metrics.json"):
        recorded = json.loads(path.read_text())["soup"]
        assert [m["model"] for m in recorded["members"]] == ["model.keras", "model.keras"], path
        assert all(len(m["sha256"]) == 64 for m in recorded["members"])
        assert str(tmp_path) not in json.dumps(recorded), path
    metrics = (report / "metrics.json").read_text()
    assert json.loads(metrics)["model"] == "model.keras"
    assert str(tmp_path) not in metrics and str(small_faces.parent) not in metrics


def test_a_member_inside_the_checkout_is_named_by_its_repo_path():
    from happyhouse.train.report import CHECKOUT, recorded_path

    assert recorded_path(CHECKOUT / "runs" / "classifier-mix" / "model" / "model.keras") == \
        "runs/classifier-mix/model/model.keras"


def test_the_error_line_carries_the_shared_prog_name(tmp_path, capsys):
    assert soup.main(["--model", str(tmp_path / "a.keras"), "--data", str(tmp_path),
                      "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("happyhouse-train-soup: error: at least two") or \
        err.startswith("happyhouse-train-soup: error: a soup needs at least two"), err
    assert err.count("\n") == 1
