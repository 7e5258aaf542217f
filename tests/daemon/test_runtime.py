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

    class StandIn:  # the fallback need not be installed (a Pi has no TensorFlow): order is tested
        pass

    def fake(name):
        if name in missing:
            raise ImportError(f"No module named {name!r}")
        return StandIn

    monkeypatch.setattr(rt, "_interpreter_class", fake)
    assert pick_runtime(["ai_edge_litert", "tensorflow"]) == ("tensorflow", StandIn)
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
# /proc/cpuinfo as qemu-user 7.2 hands it to an aarch64 process (the x86 host's own)
# and as a Raspberry Pi 4 (or qemu-user >= 8, which emulates it) writes it
X86_CPUINFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu vme sse2\n"
ARM_CPUINFO = ("processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
               "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU part\t: 0xd08\n")


def test_runtime_version_names_the_installed_release():
    from importlib.metadata import version

    from happyhouse.daemon.runtime import runtime_version

    assert runtime_version("ai_edge_litert") == version("ai-edge-litert")
    assert runtime_version("no_such_runtime") == "unknown"


@pytest.mark.parametrize("version, machine, cpuinfo, bad", [
    ("2.3.0", "aarch64", X86_CPUINFO, True),    # qemu-user 7.2: segfault in the Interpreter
    ("2.2.0", "aarch64", X86_CPUINFO, True),
    ("2.1.3", "aarch64", X86_CPUINFO, False),   # the releases before 2.2 run there
    ("1.4.0", "aarch64", X86_CPUINFO, False),
    ("2.3.0", "aarch64", ARM_CPUINFO, False),   # a Pi, or qemu-user 10
    ("2.3.0", "x86_64", X86_CPUINFO, False),
])
def test_known_bad_runtimes_are_named(version, machine, cpuinfo, bad):
    from happyhouse.daemon.runtime import known_problem

    problem = known_problem("ai_edge_litert", version, machine, cpuinfo)
    assert (problem is not None) == bad
    if bad:
        assert "segfault" in problem and "qemu" in problem


def test_a_known_bad_runtime_is_refused_with_a_clear_error_not_loaded(monkeypatch):
    import happyhouse.daemon.runtime as rt

    monkeypatch.setattr(rt.platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(rt, "read_cpuinfo", lambda: X86_CPUINFO)
    monkeypatch.setattr(rt, "runtime_version", lambda name: "2.3.0")
    with pytest.raises(ModelError, match=r"ai_edge_litert 2\.3\.0 on aarch64 is known not to work"):
        pick_runtime()
    with pytest.raises(ModelError, match="known not to work"):
        Classifier(load_bundle().model_path)


def test_the_classifier_says_which_runtime_and_version_it_runs_on():
    from importlib.metadata import version

    clf = Classifier(load_bundle().model_path)
    assert clf.runtime_label == f"ai_edge_litert {version('ai-edge-litert')}"
