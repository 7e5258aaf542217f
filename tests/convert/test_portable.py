"""Shipped metadata names datasets, not the build machine's folders (issue 15)."""

import pytest

from happyhouse.convert.build import portable
from happyhouse.convert.cli import EXIT_UNARMED


def test_absolute_and_relative_data_paths_become_dataset_names():
    meta = {"data": {"sources": ["/work/shared/datasets/genki4k-train",
                                 "../shared/datasets/smilesmiled", "./my_house"]},
            "holdout": "../shared/datasets/happy-house/test_happy.h5#12",
            "note": "a sentence with a/slash stays", "threshold": 0.87}
    assert portable(meta) == {"data": {"sources": ["genki4k-train", "smilesmiled", "my_house"]},
                              "holdout": "test_happy.h5#12",
                              "note": "a sentence with a/slash stays", "threshold": 0.87}


def test_the_training_model_stays_findable_from_the_working_folder():
    assert portable({"model_file": "models/general/model.keras"}) == {
        "model_file": "models/general/model.keras"}


def test_a_face_is_the_same_face_wherever_its_dataset_lies():
    from happyhouse.convert.metadata import normalise_id

    here = normalise_id("../shared/datasets/genki4k-train/happy/file0598.jpg")
    assert here == normalise_id("/tmp/data/genki4k-train/happy/file0598.jpg")
    assert here == normalise_id("/work/shared/datasets/./genki4k-train/happy//file0598.jpg")
    assert here != normalise_id("/tmp/data/smilesmiled/happy/file0598.jpg")
    assert here != normalise_id("/tmp/data/genki4k-train/not_happy/file0598.jpg")
    assert normalise_id("../x/test_happy.h5#12") == normalise_id("/y/test_happy.h5#12") != \
        normalise_id("/y/test_happy.h5#13")


@pytest.mark.slow
def test_a_holdout_given_by_path_is_named_by_its_dataset_in_the_shipped_bundle(
        tiny_model, small_faces, tmp_path, capsys):
    """--holdout was written into model.json and MODEL_CARD.md as the build machine's
    path (inside a sentence, where the path rule did not reach it)."""
    import json
    import shutil

    from happyhouse.convert.cli import main

    held = tmp_path / "held-faces"  # not the calibration folder itself: that is refused
    shutil.copytree(small_faces, held)
    out = tmp_path / "bundle"
    rc = main([str(tiny_model), "--calibration", str(small_faces), "--holdout",
               str(held), "--out", str(out), "--max-drop", "100"])
    assert rc == EXIT_UNARMED, capsys.readouterr().err
    meta = json.loads((out / "model.json").read_text())
    assert meta["metrics"]["parity"]["holdout"] == f"--holdout {held.name}"
    for name in ("model.json", "MODEL_CARD.md"):
        assert str(tmp_path) not in (out / name).read_text(), name


def test_no_committed_model_or_report_names_a_build_machine_folder():
    """Committed metadata is read on other machines: the earlier general models' split.json,
    train_meta.json and geometry.json named /work/shared/... (the shipped one's did not)."""
    import re
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    tracked = subprocess.run(["git", "ls-files", "models", "reports", "daemon/models"], cwd=repo,
                             capture_output=True, text=True, check=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    absolute = re.compile(r'"/(work|tmp|home|root)/')
    found = [name for name in tracked if name.endswith((".json", ".md", ".txt", ".csv"))
             and absolute.search((repo / name).read_text(encoding="utf-8", errors="replace"))]
    assert found == []
