"""The geometry sidecar is committed beside the model: it names its data as the trainer's
report and the converter do (the folder's name), never by the build machine's path."""

import contextlib
import io
import json
import shutil

from happyhouse.daemon.datasets import load_dataset


def test_the_sidecar_names_its_data_by_folder(tiny_model, small_faces, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model.parent, folder)
    data = load_dataset(small_faces)
    (folder / "split.json").write_text(json.dumps(
        {"sources": [small_faces.name], "validation_ids": data.ids[::4]}))
    from happyhouse.train.geometry import main

    assert small_faces.is_absolute()  # as a tool is often given it
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--data", str(small_faces), "--model", str(folder / "model.keras"),
                     "--no-lowres-copies"]) == 0
    sidecar = json.loads((folder / "geometry.json").read_text())
    assert sidecar["data"]["sources"] == [small_faces.name]
    assert str(tmp_path) not in json.dumps(sidecar) and str(small_faces.parent) not in json.dumps(sidecar)


def test_a_bundle_is_never_the_geometry_stages_out(tiny_model, small_faces, tmp_path, capsys):
    """--out a deployed bundle's copy: its sealed geometry_head.npz was overwritten and the
    bundle no longer loaded (a sha256 mismatch)."""
    from happyhouse.daemon.bundle import default_bundle_path
    from happyhouse.train.geometry import main

    bundle = tmp_path / "bundle"
    shutil.copytree(default_bundle_path(), bundle)
    before = {p.name: p.read_bytes() for p in bundle.iterdir()}
    assert main(["--data", str(small_faces), "--model", str(tiny_model), "--out", str(bundle)]) == 2
    assert "is a model bundle (model.tflite)" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in bundle.iterdir()} == before
