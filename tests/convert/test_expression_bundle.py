"""The FER2013-pretrained expression network converts to a full-int8 bundle the door serves."""

import contextlib
import io
import json

import numpy as np
import pytest

from happyhouse.convert.cli import EXIT_UNARMED, main
from happyhouse.daemon.bundle import load_bundle
from happyhouse.daemon.datasets import load_dataset
from happyhouse.daemon.preprocess import Preprocess, normalize_batch
from happyhouse.daemon.roc import roc_auc
from happyhouse.daemon.runtime import Classifier

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def expression_bundle(small_faces, tmp_path_factory):
    """The pretrained network (its head at "happy minus the rest"), untrained on our faces."""
    from happyhouse.train import models

    folder = tmp_path_factory.mktemp("expression")
    model = models.build("expression")
    model.save(folder / "model.keras")
    (folder / "model.json").write_text(json.dumps({
        "preprocess": {"crop": "face", "margin": 0.0, "size": 64, "color": "RGB", "scale": "unit",
                       "normalize": "clahe"},
        "threshold": 0.5, "labels": ["not_happy", "happy"], "metrics": {},
        "data": {"sources": [str(small_faces)], "n": 120},
    }))
    out = folder / "bundle"
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main([str(folder / "model.keras"), "--calibration", str(small_faces), "--out", str(out),
                   "--max-drop", "10", "--json"])
    assert rc == EXIT_UNARMED
    return out


def test_every_op_is_int8_and_the_file_fits_the_budget(expression_bundle):
    clf = Classifier(expression_bundle / "model.tflite")
    assert clf.input.dtype == "int8" and clf.output.dtype == "int8"
    dtypes = {np.dtype(t["dtype"]).name for t in clf._interp.get_tensor_details()}
    assert dtypes <= {"int8", "int32"}, dtypes
    ops = {op["op_name"] for op in clf._interp._get_ops_details()}
    assert {"DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D"} <= ops
    assert not ops & {"QUANTIZE", "DEQUANTIZE", "MEAN", "SHAPE"}, ops
    assert (expression_bundle / "model.tflite").stat().st_size <= 150_000


def test_int8_agrees_with_float_on_real_faces_and_keeps_the_smile(expression_bundle, small_faces):
    meta = json.loads((expression_bundle / "model.json").read_text())
    assert meta["metrics"]["parity"]["agreement"] >= 0.95
    data = load_dataset(small_faces)
    bundle = load_bundle(expression_bundle)
    clf = bundle.classifier()
    assert bundle.self_test(clf) >= 4
    scores = clf.scores(normalize_batch(data.images, Preprocess(normalize="clahe")))
    assert roc_auc(data.labels, scores) > 0.85  # FER2013's smile survives int8
