import numpy as np
import pytest

from happyhouse.daemon.bundle import load_bundle
from happyhouse.daemon.errors import ModelError
from happyhouse.daemon.runtime import Classifier, pick_runtime


def test_litert_is_preferred():
    name, _ = pick_runtime()
    assert name == "ai_edge_litert"


def test_runtimes_fall_back_in_order_and_none_is_a_clear_error(monkeypatch):
    import happyhouse.daemon.runtime as rt

    real = rt._interpreter_class
    missing = {"ai_edge_litert"}

    def fake(name):
        if name in missing:
            raise ImportError(f"No module named {name!r}")
        return real(name)

    monkeypatch.setattr(rt, "_interpreter_class", fake)
    assert pick_runtime(["ai_edge_litert", "tensorflow"])[0] == "tensorflow"
    missing.update(rt.RUNTIMES)
    with pytest.raises(ModelError, match="no TFLite runtime.*ai-edge-litert"):
        pick_runtime()
    with pytest.raises(ModelError, match="unknown TFLite runtime"):
        real("onnx")


def test_quantization_is_read_from_the_interpreter():
    bundle = load_bundle()
    clf = Classifier(bundle.model_path)
    assert clf.input.dtype == "int8" and clf.input.scale > 0
    assert clf.input.to_dict() == {k: bundle.meta["input"][k] for k in clf.input.to_dict()}
    assert clf.output.to_dict() == {k: bundle.meta["output"][k] for k in clf.output.to_dict()}
    # 0 and 255 land on the int8 ends through the interpreter's own scale and zero point
    q = clf.quantize_input(np.array([0.0, 1.0], np.float32))
    assert q.tolist() == [-128, 127]


def test_the_tensorflow_fallback_reproduces_litert_on_the_golden_vectors():
    pytest.importorskip("tensorflow")
    bundle = load_bundle()
    inputs, expected = bundle.golden()
    litert = Classifier(bundle.model_path).raw_outputs(inputs).reshape(-1)
    tf_lite = Classifier(bundle.model_path, runtimes=["tensorflow"])
    assert tf_lite.runtime == "tensorflow"
    got = tf_lite.raw_outputs(inputs).reshape(-1)
    assert np.abs(got.astype(int) - litert.astype(int)).max() <= 2
    assert np.abs(got.astype(int) - expected.reshape(-1).astype(int)).max() <= 2


@pytest.mark.parametrize("content", [b"", b"TFL3", bytes(range(256)) * 8])
def test_garbage_models_are_model_errors(content, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="model.tflite"):
        Classifier(path)


def test_wrong_input_size_is_named():
    clf = Classifier(load_bundle().model_path)
    with pytest.raises(ModelError, match="64x64"):
        clf.scores(np.zeros((1, 32, 32, 3), np.uint8))


def test_loading_models_prints_no_litert_info_line():
    """Issue 16 item 24: the runtime's XNNPACK 'INFO:' line reached every command's stderr."""
    import subprocess
    import sys

    code = ("from happyhouse.daemon.bundle import load_bundle\n"
            "from happyhouse.daemon.blazeface import BlazeFace\n"
            "from happyhouse.daemon.runtime import Classifier\n"
            "Classifier(load_bundle().model_path); BlazeFace()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "XNNPACK" not in proc.stderr and proc.stderr == ""


def test_silencing_the_runtime_keeps_everything_else_on_stderr(capfd):
    import os

    from happyhouse.daemon.runtime import quiet_runtime_info

    with quiet_runtime_info():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"ERROR: something the runtime really wants said\n")
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "XNNPACK" not in err
    assert "ERROR: something the runtime really wants said\n" in err and err.endswith("after\n")
