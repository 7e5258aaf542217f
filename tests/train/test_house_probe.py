"""The house's last-layer adaptation (issue 18, studied and not adopted): on the shipped model, real faces."""

from pathlib import Path

import numpy as np
import pytest

GENERAL = Path(__file__).resolve().parents[2] / "models" / "general" / "model.keras"


@pytest.fixture(scope="module")
def general():
    from happyhouse.train.trainer import load_model

    return load_model(GENERAL)


@pytest.fixture(scope="module")
def faces(genki_root):
    """40 real GENKI-4K faces, 20 per class, as the contract crops them, and the normaliser."""
    from happyhouse.daemon.preprocess import Preprocess
    from happyhouse.train.data import load_training_data
    from happyhouse.train.trainer import inherited_normalize

    spec = Preprocess(normalize=inherited_normalize(GENERAL))
    data = load_training_data([str(genki_root)], spec.geometric(), limit=20)
    assert sorted(np.bincount(data.labels)) == [20, 20]
    return data, spec


def test_embedded_scores_are_the_models_own(general, faces):
    from happyhouse.train import house_probe
    from happyhouse.train.trainer import predict

    data, spec = faces
    e = house_probe.embed(general, data.images, spec)
    assert e.features.shape == (40, 128) and e.mirrored.shape == (40, 128)
    assert np.allclose(house_probe.scores(e), predict(general, data.images, spec), atol=1e-5)
    # the mirror half is the mirror image's, not a copy of the face's
    assert not np.allclose(e.features, e.mirrored)


def test_a_correction_is_the_same_model_with_a_new_final_layer(general, faces):
    from happyhouse.train import house_probe
    from happyhouse.train.trainer import predict

    data, spec = faces
    e = house_probe.embed(general, data.images, spec)
    flipped = 1 - data.labels  # a house that calls every smile "not smiling"
    correction = house_probe.fit_correction(e, flipped, l2=0.01)
    adapted = house_probe.corrected(general, correction)
    assert np.allclose(predict(adapted, data.images, spec), house_probe.scores(e, correction), atol=1e-5)
    before, after = house_probe.scores(e), house_probe.scores(e, correction)
    # it learnt the house's labels: smiles went down, the rest up
    assert after[data.labels == 1].mean() < before[data.labels == 1].mean()
    assert after[data.labels == 0].mean() > before[data.labels == 0].mean()
    # the general model is untouched
    assert np.allclose(predict(general, data.images, spec), before, atol=1e-5)


def test_one_class_is_refused_in_words(general, faces):
    from happyhouse.daemon.errors import DataError
    from happyhouse.train import house_probe

    data, spec = faces
    e = house_probe.embed(general, data.images[:5], spec)
    with pytest.raises(DataError, match="both classes"):
        house_probe.fit_correction(e, np.ones(5, int))


def test_door_statistics_are_estimated_on_the_house_frames_and_reset(general, faces):
    from happyhouse.train import house_probe

    data, spec = faces
    x = house_probe.model_input(data.images, spec)
    stats = house_probe.DoorStatistics(general)
    plain = house_probe.embed(general, data.images, spec)
    stats.estimate(house_probe.with_mirrors(x[:20]))
    adapted = stats.embed(x)
    assert not np.allclose(adapted.features, plain.features)
    # the first BatchNorm layer's mean is now its input's mean over these frames
    norm = [layer for layer in house_probe.classifier_of(stats.work).layers
            if type(layer).__name__ == "BatchNormalization"][0]
    import keras

    upto = keras.Model(house_probe.classifier_of(stats.work).inputs, norm.input)
    a = np.asarray(upto([house_probe.with_mirrors(x[:20])], training=False))
    assert np.allclose(norm.get_weights()[2], a.mean(axis=(0, 1, 2)), atol=1e-4)
    # another house's frames give other statistics; reset gives the general model back
    stats.estimate(house_probe.with_mirrors(x[20:]))
    assert not np.allclose(stats.embed(x).features, adapted.features)
    stats.reset()
    assert np.allclose(stats.embed(x).features, plain.features, atol=1e-5)


def test_cross_validation_never_learns_from_the_frames_it_scores(general, faces):
    from happyhouse.train import house_probe
    from happyhouse.train.data import stratified_folds

    data, spec = faces
    e = house_probe.embed(general, data.images, spec)
    fold = stratified_folds(data.labels, 4, 0)
    has_face = np.ones(40, bool)
    has_face[0] = False
    cv = house_probe.cross_validate(e, data.labels, has_face, fold, inner_k=2)
    assert (cv["pred"] >= 0).all() and not np.isnan(cv["scores"]).any()
    assert cv["scores"][0] == 0.0 and cv["pred"][0] == 0  # no face, no unlock
    assert all(f["threshold"] >= 0.5 for f in cv["folds"])
    # flipping the labels of fold 0's frames changes no score of fold 0
    flipped = data.labels.copy()
    flipped[fold == 0] = 1 - flipped[fold == 0]
    other = house_probe.cross_validate(e, flipped, has_face, fold, inner_k=2)
    assert np.array_equal(other["scores"][fold == 0], cv["scores"][fold == 0])
    assert not np.array_equal(other["scores"][fold == 1], cv["scores"][fold == 1])


def test_house_cv_last_layer_needs_the_refit_protocol_and_a_general_model():
    from argparse import Namespace

    from happyhouse.daemon.errors import DataError
    from happyhouse.train import house_cv

    for protocol, scratch in (("split", None), ("refit", "happymodel")):
        args = Namespace(protocol=protocol, scratch=scratch, adapt="last-layer", init=GENERAL)
        with pytest.raises(DataError, match="refit protocol and a general model"):
            house_cv.cross_validate(args, None, np.ones(3, bool), np.zeros(3, int))


def test_house_cv_last_layer_scores_every_frame_once_with_fold_thresholds(faces):
    """``house_cv --adapt last-layer`` end to end on real faces: the report's keys, every
    frame scored by the fold that never saw it, no face no unlock."""
    from argparse import Namespace

    from happyhouse.train import house_cv
    from happyhouse.train.data import stratified_folds

    data, _ = faces
    args = Namespace(protocol="refit", scratch=None, adapt="last-layer", init=GENERAL, seed=0,
                     inner_k=2, max_false_open=0.01, train_frames=None)
    has_face = np.ones(len(data), bool)
    has_face[3] = False
    fold = stratified_folds(data.labels, 4, 0)
    cv = house_cv.cross_validate(args, data, has_face, fold)
    assert set(cv) >= {"scores", "classifier", "geometry", "pred", "folds", "histories",
                       "inner_scores", "threshold"}
    assert not np.isnan(cv["scores"]).any() and (cv["pred"] >= 0).all()
    assert cv["scores"][3] == 0.0 and cv["pred"][3] == 0
    assert [f["n_train"] for f in cv["folds"]] == [int(((fold != f) & has_face).sum()) for f in range(4)]
