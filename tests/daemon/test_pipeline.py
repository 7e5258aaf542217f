import json
import shutil

import numpy as np
import pytest

from happyhouse.daemon.bundle import load_bundle
from happyhouse.daemon.config import load_config
from happyhouse.daemon.errors import DataError, ModelError, SelfTestError
from happyhouse.daemon.pipeline import Observation, Pipeline
from happyhouse.daemon.preprocess import prepare_frame
from happyhouse.daemon.sources import Frame
from fakes import FixedGate, plain_bundle, reseal_bundle


class CountingClassifier:
    runtime = "counting"
    runtime_version = "0"

    def __init__(self, value=0.7):
        self.value, self.inputs = value, []

    def score(self, image):
        self.inputs.append(image)
        return self.value


@pytest.fixture(scope="module")
def bundle():
    """The shipped classifier without the geometry stage: these tests fake the classifier."""
    return plain_bundle()


def _frame(seed=0):
    rng = np.random.default_rng(seed)
    return Frame(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), 123.0, 7)


def test_from_config_self_tests_and_scores_a_face():
    bundle = load_bundle(None)
    cfg = load_config(None)
    pipe = Pipeline.from_config(cfg)
    assert pipe.model_sha256 == bundle.sha256 and pipe.runtime
    assert pipe.threshold == bundle.threshold
    pipe.gate = FixedGate((200, 100, 200, 200))
    frame = _frame()
    obs = pipe.observe(frame)
    assert isinstance(obs, Observation) and obs.face == (200, 100, 200, 200)
    assert obs.timestamp == 123.0 and obs.seq == 7
    # exactly the classifier's score of the shared preprocessing of that crop, fused with
    # the geometry stage's score of the same crop before light normalisation
    appearance = pipe.classifier.score(prepare_frame(frame.image, obs.face, bundle.preprocess))
    shape = pipe.geometry.score(prepare_frame(frame.image, obs.face, bundle.preprocess.geometric()))
    assert obs.parts == pytest.approx({"classifier": appearance, "geometry": shape})
    assert obs.score == pytest.approx(pipe.geometry.fuse(appearance, shape))
    assert obs.happy == (obs.score >= pipe.threshold)
    assert obs.latency_ms > 0 and set(obs.stages_ms) == {"gate", "level", "prepare", "model", "geometry"}


def test_no_face_no_score(bundle):
    clf = CountingClassifier()
    pipe = Pipeline(bundle, clf, FixedGate(None))
    obs = pipe.observe(_frame())
    assert obs.face is None and obs.score is None and obs.happy is False
    assert clf.inputs == []  # the model never ran


def test_frame_crop_mode_still_needs_a_face_but_scores_the_whole_frame(bundle):
    from dataclasses import replace

    frame_bundle = replace(bundle, preprocess=replace(bundle.preprocess, crop="frame"))
    clf = CountingClassifier()
    assert Pipeline(frame_bundle, clf, FixedGate(None)).observe(_frame()).score is None
    pipe = Pipeline(frame_bundle, clf, FixedGate((0, 0, 50, 50)))
    frame = _frame(1)
    pipe.observe(frame)
    whole = prepare_frame(frame.image, None, frame_bundle.preprocess)
    assert np.array_equal(clf.inputs[-1], whole)


@pytest.mark.parametrize("value, threshold, happy", [(0.7, 0.5, True), (0.7, 0.8, False),
                                                     (0.5, 0.5, True), (float("nan"), 0.0, False)])
def test_threshold_decides(bundle, value, threshold, happy):
    pipe = Pipeline(bundle, CountingClassifier(value), FixedGate((0, 0, 100, 100)), threshold)
    assert pipe.observe(_frame()).happy is happy


def test_config_threshold_overrides_bundle():
    pipe = Pipeline.from_config(load_config(None, {"model.threshold": 0.9}))
    assert pipe.threshold == 0.9


@pytest.mark.parametrize("image", [np.zeros((480, 640), np.uint8), np.zeros((480, 640, 3), np.float64),
                                   np.zeros((4, 4, 3), np.uint8)])
def test_wrong_frame_shape_or_dtype_is_a_data_error(bundle, image):
    gate = FixedGate((0, 0, 10, 10))
    pipe = Pipeline(bundle, CountingClassifier(), gate)
    with pytest.raises(DataError):
        pipe.observe(Frame(image, 0.0, 1))
    assert gate.calls == 0


def test_mismatched_golden_vectors_refuse_to_arm(bundle, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle.path, copy)
    with np.load(copy / "golden.npz") as data:
        inputs, outputs = data["inputs"], data["outputs"]
    np.savez_compressed(copy / "golden.npz", inputs=inputs, outputs=(outputs.astype(np.int64) + 50)
                        .clip(-128, 127).astype(outputs.dtype))
    reseal_bundle(copy)  # as a forger would: the self-test behind the seal still refuses
    with pytest.raises(SelfTestError, match="refusing to arm"):
        Pipeline.from_config(load_config(None, {"model.bundle": str(copy)}))


def test_missing_bundle_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        Pipeline.from_config(load_config(None, {"model.bundle": str(tmp_path / "none")}))


def test_observe_crop_treats_image_as_face(bundle):
    clf = CountingClassifier()
    pipe = Pipeline(bundle, clf, FixedGate(None))
    crop = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    obs = pipe.observe_crop(crop)
    assert obs.face == (0, 0, 64, 64) and obs.score == 0.7
    assert np.array_equal(clf.inputs[-1], crop[..., ::-1])  # BGR in, RGB to the model
    assert json.dumps(obs.to_dict())


def test_an_observation_counts_the_faces_the_gate_saw(bundle):
    class TwoFaces(FixedGate):
        faces_seen = 2

    clf = bundle.classifier()
    obs = Pipeline(bundle, clf, TwoFaces((200, 100, 200, 200))).observe(_frame())
    assert obs.faces == 2 and obs.to_dict()["faces"] == 2
    assert Pipeline(bundle, clf, FixedGate(None)).observe(_frame()).faces == 0
