"""The bundle shipped with the package loads, proves itself and documents itself."""

import json

import pytest

from happyhouse.daemon.bundle import default_bundle_path, load_bundle

#: issue goal for the shipped model file
MAX_MODEL_BYTES = 150 * 1024


@pytest.fixture(scope="module")
def shipped():
    return load_bundle(None)


def test_default_bundle_loads_and_passes_self_test(shipped):
    assert shipped.path == default_bundle_path()
    clf = shipped.classifier()
    assert shipped.self_test(clf) >= 4
    assert clf.input.dtype == "int8" and clf.output.dtype == "int8"


def test_model_json_has_every_field(shipped):
    meta = json.loads((shipped.path / "model.json").read_text())
    for key in ("shape", "dtype", "scale", "zero_point", "layout", "color"):
        assert key in meta["input"], key
    for key in ("shape", "dtype", "scale", "zero_point"):
        assert key in meta["output"], key
    assert set(meta["preprocess"]) == {"crop", "margin", "size", "color", "scale", "normalize"}
    assert meta["preprocess"]["normalize"] == "clahe" and meta["format_version"] == 4
    # the tilt studies' levelling (reports/tilt/: I10, then H25), the step that makes it format 4
    assert meta["geometry"]["level"] == {**meta["geometry"]["level"], "by": "detector-then-eye-line",
                                         "beyond_degrees": 10.0, "detector_beyond_degrees": 25.0,
                                         "rounds": 2, "settled_degrees": 5.0}
    assert meta["labels"] == ["not_happy", "happy"]
    assert 0.0 < meta["threshold"] < 1.0
    assert meta["training"]["data"], "training data summary is empty"
    assert meta["training"]["model_sha256"]
    parity = meta["metrics"]["parity"]
    for key in ("n", "float_accuracy", "int8_accuracy", "agreement", "max_score_diff", "drop_pp"):
        assert key in parity, key
    assert parity["drop_pp"] <= parity["max_drop_pp"]
    assert {"tensorflow", "ai_edge_litert", "numpy"} <= set(meta["runtime"]["converted_with"])
    assert meta["golden"]["count"] >= 4
    assert len(meta["sha256"]) == 64


def test_every_shipped_model_asset_is_named_hashed_and_licensed(shipped):
    """The geometry stage's files: named in model.json, hash-checked, licence beside them."""
    from happyhouse.daemon.geometry import ASSET_DIR, find_asset

    geometry = json.loads((shipped.path / "model.json").read_text())["geometry"]
    mesh = find_asset(geometry["landmarks"]["file"], shipped.path)
    assert mesh is not None and mesh.parent == ASSET_DIR
    assert "Apache License" in (ASSET_DIR / "LICENSE.md").read_text()
    assert geometry["landmarks"]["sha256"] in (ASSET_DIR / "README.md").read_text()
    stage = shipped.geometry_stage()
    assert shipped.self_test_geometry(stage) >= 4


def test_shipped_metadata_names_datasets_not_build_paths(shipped):
    for name in ("model.json", "MODEL_CARD.md"):
        text = (shipped.path / name).read_text()
        assert "/work/" not in text and "/tmp/" not in text and "/home/" not in text, name
    sources = json.loads((shipped.path / "model.json").read_text())["training"]["data"]["sources"]
    assert sources == ["genki4k-train", "smilesmiled"]


def test_model_card_states_the_limits(shipped):
    card = (shipped.path / "MODEL_CARD.md").read_text()
    assert "A smile is not an identity" in card
    assert "printed photo may pass" in card


def test_model_file_within_size_goal(shipped):
    assert shipped.model_path.stat().st_size <= MAX_MODEL_BYTES
