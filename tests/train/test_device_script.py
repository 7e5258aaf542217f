"""scripts/train_on_device.py (optional GPU training): the same run on TensorFlow and a CPU.

CI has no GPU; this checks that the driver, a variant and their artefacts work with
the backend that is here, on a tiny subset, so the script cannot rot unnoticed.
"""

import json
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_on_device.py"


def test_variants_are_valid_training_configs(tmp_path, study_script):
    from happyhouse.train import models
    from happyhouse.train.augment import PRESETS
    from happyhouse.train.trainer import TrainConfig

    script = study_script(SCRIPT.name)
    for name, fields in script.VARIANTS.items():
        fields = {**script.COMMON, **fields}
        assert fields.get("arch", "default") in models.ARCHS, name
        assert fields["augment"] in PRESETS, name
        if fields.get("init") == "shipped":
            fields["init"] = tmp_path / "model.keras"
        TrainConfig(data=[], out=tmp_path, **fields)  # every field is a TrainConfig field
        for audit in fields.get("label_audits", ()):  # resolved against the repository
            assert (SCRIPT.parents[1] / audit).is_file(), (name, audit)


@pytest.mark.slow
def test_one_variant_trains_and_returns_its_archive_and_figures(genki_root, smile_root, tmp_path,
                                                                study_script):
    out = tmp_path / "out"
    rc = study_script(SCRIPT.name).main(["--data", str(genki_root), "--data", str(smile_root), "--out", str(out),
                         "--work", str(tmp_path / "work"), "--backends", "tensorflow",
                         "--variants", "default-framing-audited", "--limit", "10", "--epochs", "1",
                         "--budget", "120", "--workers", "2"])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    entry = summary["variants"]["default-framing-audited"]
    assert summary["backend"] == "tensorflow" and entry["rc"] == 0
    assert entry["epochs_run"] == 1 and entry["versions"]["backend"] == "tensorflow"
    for part in ("validation", "door_shifted_validation"):
        assert entry["figures"][part]["n"] == 6 and 0.0 <= entry["figures"][part]["roc_auc"] <= 1.0
    with tarfile.open(out / "default-framing-audited.tar.gz") as tar:
        names = set(tar.getnames())
        meta = json.load(tar.extractfile("default-framing-audited/train_meta.json"))
    for name in ("model.keras", "train_meta.json", "split.json", "eval.json", "report/history.csv",
                 "report/metrics.json"):
        assert f"default-framing-audited/{name}" in names
    # the variant's label audit reached the training part and is recorded with the model
    assert [f["file"] for f in meta["label_audit"]["files"]] == ["training-audit.json"]
