"""The light-normalisation and face-geometry steps on real faces, and bundles that use them."""

import json

import cv2
import numpy as np
import pytest

from happyhouse.daemon.bundle import load_bundle, write_bundle
from happyhouse.daemon.config import load_config
from happyhouse.daemon.errors import ModelError, SelfTestError
from happyhouse.daemon.geometry import (ASSET_DIR, EYE_OUTER, HEAD_FILE, MESH_FILE, FaceMesh,
                                        GeometrySpec, align, fuse, mesh_input)
from happyhouse.daemon.pipeline import Pipeline
from happyhouse.daemon.preprocess import Preprocess, normalize_light, prepare_image
from fakes import FixedGate, geometry_bundle, reseal_bundle




def test_clahe_spreads_a_dim_face_and_keeps_shape_dtype_and_determinism(faces):
    dim = (faces.images[0].astype(np.float32) * 0.35).astype(np.uint8)  # a face at dusk
    spec = Preprocess(normalize="clahe")
    out = normalize_light(dim, spec)
    assert out.shape == dim.shape and out.dtype == np.uint8
    assert np.array_equal(out, normalize_light(dim, spec))
    luma = lambda im: cv2.cvtColor(im, cv2.COLOR_RGB2LAB)[..., 0]  # noqa: E731
    assert luma(out).std() > 1.5 * luma(dim).std()
    assert normalize_light(dim, Preprocess()) is dim  # "none" leaves the pixels alone
    assert np.array_equal(prepare_image(dim, spec), out)  # the contract runs it


def test_unknown_normalisation_is_refused_with_an_upgrade_hint():
    with pytest.raises(ModelError, match="newer happyhouse"):
        Preprocess.from_dict({"crop": "face", "normalize": "retinex"})


def test_mesh_on_real_faces_is_468_points_inside_the_input_and_deterministic(faces, mesh):
    for face in faces.images:
        points = mesh.points(face)
        assert points.shape == (468, 3) and np.all(np.isfinite(points))
        assert np.all((points[:, :2] > 0) & (points[:, :2] < 192))
        assert np.array_equal(points, mesh.points(face))


def test_alignment_puts_the_eyes_level_whatever_the_tilt(faces, mesh):
    face = faces.images[1]
    for angle in (-20.0, 0.0, 15.0):
        rot = cv2.getRotationMatrix2D((32, 32), angle, 1.0)
        tilted = cv2.warpAffine(face, rot, (64, 64), borderMode=cv2.BORDER_REPLICATE)
        aligned = align(mesh.points(tilted))
        right, left = aligned[EYE_OUTER[0]], aligned[EYE_OUTER[1]]
        assert right == pytest.approx([-0.5, 0.0], abs=1e-9)
        assert left == pytest.approx([0.5, 0.0], abs=1e-9)
    # the tilt drops out of the features: mouth corners land at the same place
    level = align(mesh.points(face))
    rot = cv2.getRotationMatrix2D((32, 32), 15.0, 1.0)
    tilted = align(mesh.points(cv2.warpAffine(face, rot, (64, 64), borderMode=cv2.BORDER_REPLICATE)))
    assert np.abs(level[[61, 291]] - tilted[[61, 291]]).max() < 0.1


def test_mesh_input_is_the_padded_crop_in_unit_range(faces):
    x = mesh_input(faces.images[0])
    assert x.shape == (1, 192, 192, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_fusion_is_the_mean_of_logits():
    assert fuse(0.5, 0.5) == pytest.approx(0.5)
    assert fuse(0.9, 0.1) == pytest.approx(0.5)
    assert fuse(0.9, 0.9) == pytest.approx(0.9)
    assert fuse(0.99, 0.5, (1.0, 0.0)) == pytest.approx(0.99)


def test_a_mesh_file_with_another_hash_is_refused(tmp_path):
    fake = tmp_path / MESH_FILE
    data = bytearray((ASSET_DIR / MESH_FILE).read_bytes())
    data[-1] ^= 0xFF  # one bit pattern changed: another file to the hash
    fake.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        FaceMesh(fake)


# --- bundles -------------------------------------------------------------------------------

def test_a_geometry_bundle_is_format_2_self_tests_and_fuses_both_scores(tmp_path, faces, mesh):
    bundle = geometry_bundle(tmp_path, faces, mesh)
    assert bundle.meta["format_version"] == 2 and bundle.geometry is not None
    cfg = load_config(None, {"model.bundle": str(bundle.path)})
    pipe = Pipeline.from_config(cfg)
    bgr = np.ascontiguousarray(faces.images[0][..., ::-1])
    obs = pipe.observe_crop(bgr)
    assert set(obs.parts) == {"classifier", "geometry"} and "geometry" in obs.stages_ms
    assert obs.score == pytest.approx(float(fuse(obs.parts["classifier"], obs.parts["geometry"])))
    assert obs.to_dict()["parts"]["geometry"] == pytest.approx(obs.parts["geometry"], abs=1e-6)


def test_golden_geometry_scores_that_this_runtime_misses_refuse_to_arm(tmp_path, faces, mesh):
    bundle = geometry_bundle(tmp_path, faces, mesh)
    with np.load(bundle.path / "golden.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["geometry_scores"] = np.clip(arrays["geometry_scores"] + 0.2, 0, 1)
    np.savez(bundle.path / "golden.npz", **arrays)
    reseal_bundle(bundle.path)  # as a forger would: the check behind the seal
    with pytest.raises(SelfTestError, match="geometry"):
        load_bundle(bundle.path).self_test_geometry(load_bundle(bundle.path).geometry_stage())


@pytest.mark.parametrize("change", [
    lambda a: a.update(geometry_inputs=a["geometry_inputs"].astype(np.float32)),
    lambda a: a.update(geometry_inputs=a["geometry_inputs"][..., 0]),
    lambda a: a.update(geometry_scores=np.array(["x"] * len(a["geometry_scores"]))),
], ids=["float-crops", "grey-crops", "text-scores"])
def test_malformed_golden_geometry_vectors_are_one_model_error(tmp_path, faces, mesh, change):
    bundle = geometry_bundle(tmp_path, faces, mesh)
    with np.load(bundle.path / "golden.npz") as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(bundle.path / "golden.npz", **arrays)
    reseal_bundle(bundle.path)
    loaded = load_bundle(bundle.path)
    with pytest.raises(ModelError, match="geometry vectors") as err:
        loaded.self_test_geometry(loaded.geometry_stage())
    assert "\n" not in str(err.value)


def test_a_bundle_whose_mesh_asset_is_missing_is_refused_in_one_line(tmp_path, faces, mesh):
    bundle = geometry_bundle(tmp_path, faces, mesh)
    meta = json.loads((bundle.path / "model.json").read_text())
    meta["geometry"]["landmarks"]["file"] = "face_landmark_v9.tflite"
    (bundle.path / "model.json").write_text(json.dumps(meta))
    reseal_bundle(bundle.path)  # as a forger would: the check behind the seal
    cfg = load_config(None, {"model.bundle": str(bundle.path)})
    with pytest.raises(ModelError) as err:
        Pipeline.from_config(cfg)
    message = str(err.value)
    assert "face_landmark_v9.tflite" in message and "\n" not in message


def test_a_geometry_step_this_build_does_not_know_is_refused(tmp_path, faces, mesh):
    bundle = geometry_bundle(tmp_path, faces, mesh)
    meta = json.loads((bundle.path / "model.json").read_text())
    meta["geometry"]["features"] = "procrustes-xyz"
    (bundle.path / "model.json").write_text(json.dumps(meta))
    reseal_bundle(bundle.path)  # as a forger would: the check behind the seal
    with pytest.raises(ModelError, match="newer happyhouse"):
        load_bundle(bundle.path)


@pytest.mark.parametrize("weights", [[float("nan"), 0.3], [0.7, float("inf")], [-0.1, 1.0],
                                     [0.0, 0.0], [0.7]])
def test_fusion_weights_that_cannot_fuse_are_refused(tmp_path, faces, mesh, weights):
    """NaN passed "min < 0 or sum <= 0" (every comparison with NaN is False): a door
    that never opens and never says why."""
    bundle = geometry_bundle(tmp_path, faces, mesh)
    section = json.loads((bundle.path / "model.json").read_text())["geometry"]
    section["fusion"]["weights"] = weights
    with pytest.raises(ModelError, match="fusion weights must be two finite"):
        GeometrySpec.from_dict(section, "model.json")


@pytest.mark.parametrize("change, said", [
    (lambda section: section.update(landmarks="face_landmark.tflite"), "landmarks and head must"),
    (lambda section: section["head"].pop("sha256"), "has no 'sha256'"),
])
def test_a_malformed_geometry_section_says_what_is_wrong(tmp_path, faces, mesh, change, said):
    """It said "malformed (TypeError("string indices must be integers, not 'str'"))"."""
    bundle = geometry_bundle(tmp_path, faces, mesh)
    section = json.loads((bundle.path / "model.json").read_text())["geometry"]
    change(section)
    with pytest.raises(ModelError, match=said) as info:
        GeometrySpec.from_dict(section, "model.json")
    assert "TypeError" not in str(info.value) and "happyhouse-convert" in str(info.value)


def test_an_older_daemon_would_refuse_a_format_2_bundle(tmp_path, faces, mesh):
    # what a version-1 reader checks first: the format_version it knows
    bundle = geometry_bundle(tmp_path, faces, mesh)
    assert json.loads((bundle.path / "model.json").read_text())["format_version"] == 2
    meta = json.loads((bundle.path / "model.json").read_text())
    meta["format_version"] = 1  # a bundle that hides its new steps behind the old number
    (bundle.path / "model.json").write_text(json.dumps(meta))
    reseal_bundle(bundle.path)  # as a forger would: the check behind the seal
    with pytest.raises(ModelError, match="format_version 2"):
        load_bundle(bundle.path)


def test_a_format_1_bundle_without_new_steps_is_still_served(tmp_path):
    shipped = load_bundle(None)
    meta = {k: v for k, v in shipped.meta.items()
            if k not in ("format", "format_version", "model_file", "sha256", "golden", "geometry")}
    meta["preprocess"] = {k: v for k, v in meta["preprocess"].items() if k != "normalize"}
    inputs, outputs = shipped.golden()
    old = write_bundle(tmp_path / "v1", shipped.model_path.read_bytes(), meta, inputs, outputs)
    assert old.meta["format_version"] == 1 and old.geometry is None
    assert old.preprocess.normalize == "none"
    pipe = Pipeline.from_config(load_config(None, {"model.bundle": str(old.path)}))
    obs = pipe.observe_crop(np.full((64, 64, 3), 128, np.uint8))
    assert obs.parts == {} and 0.0 <= obs.score <= 1.0


def test_pipeline_refuses_a_geometry_bundle_without_its_stage(tmp_path, faces, mesh):
    bundle = geometry_bundle(tmp_path, faces, mesh)
    with pytest.raises(ModelError, match="geometry"):
        Pipeline(bundle, bundle.classifier(), FixedGate(None))


def test_the_shipped_pipeline_says_which_stages_score_a_face():
    pipe = Pipeline.from_config(load_config(None))
    assert "light normalisation clahe" in pipe.stages
    assert "face mesh face_landmark.tflite" in pipe.stages and "0.7:0.3" in pipe.stages


def test_the_manifest_covers_the_geometry_head(tmp_path, faces, mesh):
    """Issue 16 item 4: a file a bundle carries is in its manifest and checked at load."""
    bundle = geometry_bundle(tmp_path, faces, mesh)
    assert HEAD_FILE in bundle.manifest
    with open(bundle.path / HEAD_FILE, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match=f"{HEAD_FILE}.*sha256"):
        load_bundle(bundle.path)


def test_the_face_mesh_is_checked_by_hash_then_mapped_from_its_file(monkeypatch):
    """The 1.2 MB mesh is loaded from its file (shared pages), not kept as private bytes:
    the daemon's private memory is a cost goal (RSS anon <= 48 MB)."""
    from happyhouse.daemon import runtime
    from happyhouse.daemon.geometry import ASSET_DIR, MESH_FILE, FaceMesh

    given = []
    real = runtime.load_interpreter

    def spy(model, *args, **kwargs):
        given.append(model)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(runtime, "load_interpreter", spy)
    mesh = FaceMesh(ASSET_DIR / MESH_FILE)
    assert len(given) == 1 and not isinstance(given[0], (bytes, bytearray))
    assert mesh.points(np.zeros((64, 64, 3), np.uint8)).shape == (468, 3)


def test_a_mesh_with_no_shape_fails_closed_and_the_door_scores_on(monkeypatch, caplog):
    """One frame whose mesh put both eye corners on one point raised ModelError, which ends
    the door service (a model error is fatal). Scoring its shape 0 and fusing did not fail
    closed either: a review showed a confident classifier (0.9999) still opened at 0.7:0.3.
    Now such a frame scores 0 whatever its appearance, and the next is scored as ever."""
    from happyhouse.daemon.sources import Frame

    pipe = Pipeline.from_config(load_config(None))
    pipe.gate = FixedGate((0, 0, 64, 64))
    monkeypatch.setattr(pipe.classifier, "score", lambda model_input: 0.9999)
    real = pipe.geometry.mesh.points
    calls = []

    def one_degenerate(crop, pad):
        points = real(crop, pad)
        calls.append(1)
        if len(calls) == 1:
            points[EYE_OUTER[1]] = points[EYE_OUTER[0]]
        return points

    monkeypatch.setattr(pipe.geometry.mesh, "points", one_degenerate)
    face = np.full((64, 64, 3), 128, np.uint8)
    with caplog.at_level("WARNING"):
        first = pipe.observe(Frame(face, 0.0, 1))
    assert first.score == 0.0 and not first.happy
    assert first.parts == {"classifier": 0.9999, "geometry": 0.0}
    assert "both eye corners on one point" in caplog.text and pipe.degenerate_meshes == 1
    second = pipe.observe(Frame(face, 0.1, 2))
    assert second.score > 0.0 and pipe.degenerate_meshes == 1
