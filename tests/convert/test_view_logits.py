"""The int8 model outputs logits (bundle format 3): a confident model keeps fine scores near 1.

An int8 sigmoid output has 256 fixed levels (scale about 1/256), at most three above 0.99. A
house's fine-tuned model puts its threshold up there (0.994 on the Happy House
frames), where int8 then decided 58.5% of the frames right against float's 83.7%,
and the converter refused the bundle. The logit output has its calibrated range.
"""

import json

import numpy as np
import pytest

from happyhouse.convert.cli import EXIT_UNARMED
from happyhouse.convert.quantize import keras_scores, to_int8_tflite, view_logits
from happyhouse.daemon.bundle import META_FILE, load_bundle
from happyhouse.daemon.errors import ModelError
from happyhouse.daemon.runtime import PROBABILITY, VIEW_LOGITS, Classifier, mean_sigmoid
from happyhouse.train import models
from happyhouse.train.mirror import mirror_average


def _images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)


def _confident(model, images, centre=5.5):
    """``model`` with its last unit rescaled: logits spread ~N(centre, 1) on ``images``,
    i.e. scores of 0.99-0.999, where a fine-tuned house model puts its threshold."""
    logits = view_logits(model)
    inner = [layer for layer in model.layers if hasattr(layer, "layers")]
    last = (inner[0] if inner else model).layers[-1]
    kernel, bias = last.get_weights()
    z = keras_scores(logits, images).reshape(2, -1) if inner else keras_scores(logits, images)
    spread = z - bias[0]
    k = 1.0 / max(float(np.std(spread)), 1e-6)
    last.set_weights([kernel * k, np.array([centre - k * float(np.mean(spread))], np.float32)])
    return model


@pytest.mark.parametrize("name", ["default", "happymodel"])
def test_view_logits_give_the_keras_models_own_score(name):
    plain = models.build(name)
    for model in (plain, mirror_average(plain)):
        x = _images(5, seed=1)
        logits = view_logits(model)
        got = np.asarray(logits.predict(x.astype(np.float32) / 255, verbose=0)).reshape(-1)
        per_image = got.reshape(-1, len(x)).T  # MirrorPair's order: faces, then mirrors
        np.testing.assert_allclose(mean_sigmoid(per_image), keras_scores(model, x), atol=1e-5)


def test_a_model_without_a_final_sigmoid_unit_has_no_view_logits_and_keeps_its_output():
    import keras

    from happyhouse.convert.build import served_graph

    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="relu")])
    assert view_logits(model) is None
    # the converter then quantizes the model as it is, and says its output is a probability
    assert served_graph(model, VIEW_LOGITS) == (model, PROBABILITY)
    assert served_graph(model, PROBABILITY) == (model, PROBABILITY)
    with pytest.raises(ModelError, match="unknown output kind"):
        served_graph(model, "softmax")


@pytest.mark.slow
def test_a_confident_models_int8_scores_stay_fine_near_one():
    import keras

    keras.utils.set_random_seed(0)  # measured over init seeds 0-3: 2-3 levels vs 50-55,
    # correlation with float above 0.99: 0.68-0.79 (sigmoid output) vs 0.98-0.99 (logits)
    model = mirror_average(models.build("default"))
    calibration, held = _images(64, seed=2), _images(64, seed=3)
    _confident(model, np.concatenate([calibration, held]))
    want = keras_scores(model, held)
    assert np.mean(want > 0.99) > 0.5  # the region the test is about

    as_probability = Classifier(to_int8_tflite(model, calibration), score=PROBABILITY)
    as_logits = Classifier(to_int8_tflite(view_logits(model), calibration), score=VIEW_LOGITS)
    assert as_logits.views == 2 and as_logits.output.shape == (2, 1)
    coarse, fine = as_probability.scores(held), as_logits.scores(held)
    top = want > 0.99
    # the sigmoid's int8 output: at most 3 levels above 0.99, off by up to half a step
    assert len(np.unique(coarse[top])) <= 3
    # the logit output follows the float score: many levels, far closer
    assert len(np.unique(fine[top])) > 10
    assert np.mean(np.abs(fine - want)) < np.mean(np.abs(coarse - want))
    # and it orders the faces as float does, where the sigmoid output ties them
    fine_r = np.corrcoef(fine[top], want[top])[0, 1]
    coarse_r = np.corrcoef(coarse[top], want[top])[0, 1]
    assert fine_r > 0.95 and fine_r > coarse_r + 0.1, (fine_r, coarse_r)
    # two logits read as one probability would be a wrong score: refused
    with pytest.raises(ModelError, match="must output one score"):
        Classifier(to_int8_tflite(view_logits(model), calibration), score=PROBABILITY)


def test_the_converted_bundle_says_its_output_holds_logits(converted):
    out, _ = converted
    meta = json.loads((out / META_FILE).read_text())
    assert meta["format_version"] == 3
    assert meta["output"]["score"] == VIEW_LOGITS and "sigmoid" in meta["output"]["meaning"]
    card = (out / "MODEL_CARD.md").read_text()
    assert "one logit per view" in card and "mean of their sigmoids" in card
    bundle = load_bundle(out)
    clf = bundle.classifier()
    assert clf.score_kind == VIEW_LOGITS and bundle.self_test(clf) >= 2
    scores = clf.scores(bundle.golden()[0])
    assert scores.shape == (len(bundle.golden()[0]),) and np.all((scores > 0) & (scores < 1))


def test_a_probability_bundle_is_written_for_older_daemons(tiny_model, small_faces, tmp_path,
                                                            capsys):
    from happyhouse.convert.cli import main

    out = tmp_path / "old-style"
    assert main([str(tiny_model), "--calibration", str(small_faces), "--out", str(out),
                 "--max-drop", "50", "--output", "probability"]) == EXIT_UNARMED
    meta = json.loads((out / META_FILE).read_text())
    assert meta["format_version"] == 1 and meta["output"]["score"] == PROBABILITY
    assert meta["output"]["shape"] == [1, 1] and meta["output"]["scale"] == pytest.approx(1 / 256)
    bundle = load_bundle(out)
    assert bundle.self_test(bundle.classifier()) >= 2


def test_the_runtime_refuses_an_output_it_does_not_know(converted):
    out, _ = converted
    with pytest.raises(ModelError, match="unknown output kind 'softmax'.*upgrade"):
        Classifier(out / "model.tflite", score="softmax")


@pytest.mark.slow
def test_the_general_models_logits_in_int8_follow_float_on_real_faces(genki_root, smile_root):
    """What happyhouse-adapt converts: the shipped general model (mirror-averaged, CLAHE)
    with a logit output, calibrated on real faces and compared on others (measured: largest
    difference 0.023, mean 0.0025)."""
    from pathlib import Path

    from happyhouse.convert.metadata import find_metadata, read_metadata
    from happyhouse.convert.quantize import load_keras_model
    from happyhouse.daemon.preprocess import normalize_batch
    from happyhouse.train.data import load_training_data

    general = Path(__file__).resolve().parents[2] / "models" / "general" / "model.keras"
    spec = read_metadata(find_metadata(general)).preprocess
    model = load_keras_model(general)
    calibration = load_training_data([str(genki_root)], spec.geometric(), limit=60)
    faces = load_training_data([str(smile_root)], spec.geometric(), limit=60)
    clf = Classifier(to_int8_tflite(view_logits(model), normalize_batch(calibration.images, spec)),
                     score=VIEW_LOGITS)
    held = normalize_batch(faces.images, spec)
    want, got = keras_scores(model, held), clf.scores(held)
    assert clf.views == 2 and len(faces) == 120
    assert np.max(np.abs(got - want)) < 0.05 and np.mean(np.abs(got - want)) < 0.01
    shipped = json.loads((general.parents[2] / "daemon" / "models" / "default" / "model.json").read_text())
    threshold = shipped["threshold"]  # the shipped bundle's, made from this model
    assert 0.5 <= threshold < 1.0
    assert np.mean((got >= threshold) == (want >= threshold)) >= 0.97


def test_a_daemon_that_serves_formats_1_and_2_refuses_the_logit_bundle(converted, monkeypatch):
    """What a Pi with the previous release does with a logit bundle: one line, no serving a
    logit as if it were a probability (its validate_meta is this one's with (1, 2))."""
    from happyhouse.daemon import bundleschema

    out, _ = converted
    monkeypatch.setattr(bundleschema, "SERVED_VERSIONS", (1, 2))
    with pytest.raises(ModelError, match="format_version 3 is not supported.*upgrade happyhouse"):
        load_bundle(out)
