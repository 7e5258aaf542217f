"""Mirror averaging: the model scores a face and its mirror image and averages them."""

import numpy as np
import pytest

from happyhouse.daemon.runtime import Classifier
from happyhouse.train import cli, models
from happyhouse.train.mirror import all_layers, is_mirror_averaged, mirror_average
from happyhouse.train.trainer import MODEL_FILE, load_model, read_meta


def _images(n, seed=0):
    return np.random.default_rng(seed).random((n, 64, 64, 3), dtype=np.float32)


def test_score_is_the_mean_of_the_face_and_its_mirror_image():
    plain = models.build("default")
    wrapped = mirror_average(plain)
    x = _images(3)
    want = (plain.predict(x, verbose=0) + plain.predict(x[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(wrapped.predict(x, verbose=0), want, atol=1e-6)
    # a mirror-symmetric image scores exactly what the plain model gives it
    sym = np.concatenate([x[:, :, :32], x[:, :, :32][:, :, ::-1]], axis=2)
    np.testing.assert_allclose(wrapped.predict(sym, verbose=0), plain.predict(sym, verbose=0),
                               atol=1e-6)
    assert wrapped.count_params() == plain.count_params()  # one set of weights, used twice


def test_wrapping_twice_keeps_one_mirror_and_nested_layers_are_found():
    wrapped = mirror_average(models.build("happymodel"))
    assert is_mirror_averaged(wrapped) and mirror_average(wrapped) is wrapped
    assert not is_mirror_averaged(models.build("happymodel"))
    kinds = [type(layer).__name__ for layer in all_layers(wrapped)]
    assert kinds.count("MirrorPair") == 1 and kinds.count("BatchNormalization") == 1


def test_saved_model_loads_back_with_the_same_scores(tmp_path):
    wrapped = mirror_average(models.build("default"))
    wrapped.save(tmp_path / "m.keras")
    again = load_model(tmp_path / "m.keras")
    assert is_mirror_averaged(again)
    x = _images(2, seed=1)
    np.testing.assert_allclose(again.predict(x, verbose=0), wrapped.predict(x, verbose=0), atol=1e-6)


@pytest.mark.slow
def test_int8_conversion_keeps_the_mirror_and_agrees_with_keras():
    from happyhouse.convert.quantize import keras_scores, to_int8_tflite

    plain = models.build("default")
    wrapped = mirror_average(plain)
    rng = np.random.default_rng(2)
    calibration = rng.integers(0, 256, (24, 64, 64, 3), dtype=np.uint8)
    blob = to_int8_tflite(wrapped, calibration)
    # one pass over a batch of two: each weight tensor is written once, +3.2 KB here
    # (+4.5 KB for the trained default); a second call of the classifier duplicated
    # every tensor's per-channel quantization, +11 KB
    assert len(blob) - len(to_int8_tflite(plain, calibration)) < 6144
    classifier = Classifier(blob)
    ops = {op["op_name"] for op in classifier._interp._get_ops_details()}
    assert {"REVERSE_V2", "CONCATENATION"} <= ops and not ops & {"SHAPE", "PACK"}
    # a lopsided image: the mirror changes the plain score, so a lost mirror would show
    images = rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    float_scores = keras_scores(wrapped, images)
    assert np.max(np.abs(classifier.scores(images) - float_scores)) < 0.05


@pytest.mark.slow
def test_training_with_mirror_average_records_it_and_fine_tuning_keeps_it(genki_root, tmp_path):
    base = tmp_path / "base"
    assert cli.main(["--data", str(genki_root), "--limit", "12", "--epochs", "1", "--quiet",
                     "--mirror-average", "--out", str(base)]) == 0
    assert read_meta(base / MODEL_FILE)["mirror_average"] is True
    tuned = tmp_path / "tuned"
    assert cli.main(["--data", str(genki_root), "--limit", "12", "--epochs", "1", "--quiet",
                     "--init", str(base / MODEL_FILE), "--lr", "1e-2", "--out", str(tuned)]) == 0
    before, after = load_model(base / MODEL_FILE), load_model(tuned / MODEL_FILE)
    assert is_mirror_averaged(after) and read_meta(tuned / MODEL_FILE)["mirror_average"] is True
    # BatchNorm inside the nested classifier stays frozen when fine-tuning
    bn = [layer for layer in all_layers(before) if type(layer).__name__ == "BatchNormalization"]
    bn_after = [layer for layer in all_layers(after) if type(layer).__name__ == "BatchNormalization"]
    assert bn and all(np.array_equal(w0, w1) for a, b in zip(bn, bn_after)
                      for w0, w1 in zip(a.get_weights(), b.get_weights()))
