"""scripts/pi-userland-check: the parts that judge, compare and resolve, on x86,
without downloading anything (the emulated run itself is the script's job in CI)."""

import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "pi-userland-check"


@pytest.fixture(scope="module")
def puc():
    loader = importlib.machinery.SourceFileLoader("pi_userland_check", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _scores(scores, faces=None, happy=None, classifier=None):
    faces = faces or [[1, 2, 30, 30] if v is not None else None for v in scores]
    happy = happy or [v is not None and v > 0.5 for v in scores]
    classifier = classifier or scores
    return {"output_scale": 1 / 256, "rows": [
        {"i": i, "label": 1, "face": f, "score": v, "happy": h,
         "parts": {} if c is None else {"classifier": c}}
        for i, (v, f, h, c) in enumerate(zip(scores, faces, happy, classifier))]}


def test_identical_scores_are_bit_identical(puc):
    result = puc.compare_scores(_scores([0.1, None, 0.9]), _scores([0.1, None, 0.9]))
    assert result["ok"] and result["how"] == "bit-identical" and result["max_diff"] == 0


def test_scores_within_the_golden_tolerance_pass_and_say_so(puc):
    # 2 int8 steps of 1/256: 0.0078; a fused float score may move by far less
    result = puc.compare_scores(_scores([0.1, 0.936507]), _scores([0.1, 0.936509]))
    assert result["ok"] and result["how"].startswith("within tolerance")
    assert "2/2 int8 classifier outputs" not in result["detail"]


@pytest.mark.parametrize("arm", [
    _scores([0.1, 0.92]),                                     # 0.02 off: past 2 int8 steps
    _scores([0.1, None]),                                     # a face lost
    _scores([0.1, 0.9], happy=[True, True]),                  # a verdict flipped
    _scores([0.1, 0.9], faces=[[1, 2, 30, 30], [1, 2, 31, 31]]),  # a face box moved
    _scores([0.1]),                                           # a frame missing
])
def test_scores_that_differ_fail(puc, arm):
    assert not puc.compare_scores(_scores([0.1, 0.9]), arm)["ok"]


def test_eval_reports_agree_except_timings_and_paths(puc):
    base = {"n": 10, "accuracy": 0.9, "fp": 0, "no_face": 1, "runtime": "ai_edge_litert",
            "model_ms_mean": 1.0, "datasets": [{"n": 10, "seconds": 1.0, "data": "/x"}]}
    slow = dict(base, model_ms_mean=90.0, runtime_version="2.3.0",
                datasets=[{"n": 10, "seconds": 60.0, "data": "/y"}])
    assert puc.compare_eval(base, slow)["ok"]
    assert not puc.compare_eval(base, dict(base, fp=1))["ok"]


def test_the_service_run_must_open_once_and_relock(puc):
    good = {"exit_code": 0, "unlock_seconds": 2.0,
            "pin_history": [[0.0, False], [0.4, True], [2.01, False]],
            "notify": ["STATUS=starting", "READY=1", "STATUS=armed", "STOPPING=1"]}
    assert puc.judge_service(good)["ok"]
    never = dict(good, pin_history=[[0.0, False]])
    left_open = dict(good, pin_history=[[0.0, False], [0.4, True]])
    too_long = dict(good, pin_history=[[0.0, False], [0.4, True], [9.0, False]])
    silent = dict(good, notify=["READY=1"])
    for bad in (never, left_open, too_long, silent, dict(good, exit_code=2)):
        assert not puc.judge_service(bad)["ok"], bad


def test_check_must_be_go_on_aarch64(puc):
    report = {"go": True, "checks": [
        {"name": "runtime", "status": "ok", "machine": "aarch64", "detail": "ai_edge_litert 2.3.0"},
        {"name": "gpio", "status": "warn"}]}
    assert puc.judge_check(report)["ok"]
    assert not puc.judge_check(dict(report, go=False))["ok"]
    x86 = {"go": True, "checks": [dict(report["checks"][0], machine="x86_64")]}
    assert not puc.judge_check(x86)["ok"]  # the emulator was not in the loop


def test_selftest_fails_on_a_failed_asset_or_the_wrong_machine(puc):
    report = {"machine": "aarch64", "assets": [
        {"asset": "default", "kind": "bundle", "vectors": 6, "max_diff": 0, "ok": True},
        {"asset": "blazeface", "kind": "detector", "frames": 10, "faces": 10, "ok": True}]}
    assert puc.judge_selftest(report)["ok"]
    assert not puc.judge_selftest(dict(report, machine="x86_64"))["ok"]
    assert not puc.judge_selftest(dict(report, missing=["blazeface"]))["ok"]
    broken = {"machine": "aarch64", "assets": [dict(report["assets"][1], faces=2, ok=False)]}
    assert not puc.judge_selftest(broken)["ok"]


def test_the_summary_is_one_line_and_fails_if_any_step_failed(puc):
    steps = {"selftest": {"ok": True}, "pytest": {"ok": False}}
    line = puc.summary_line("bookworm", "3.11", "ai_edge_litert 2.3.0", "qemu 10.0.2", steps, 12.3)
    assert "\n" not in line and line.startswith("pi-userland-check: FAIL bookworm")
    assert "pytest FAIL" in line and "selftest ok" in line
    assert "PASS" in puc.summary_line("trixie", "3.13", "x", "q", {"a": {"ok": True}}, 1)


def test_the_pi_extra_is_resolved_for_aarch64_not_for_the_host(puc, tmp_path):
    cfg = tmp_path / "setup.cfg"
    cfg.write_text("[options.extras_require]\npi =\n    numpy>=1.23\n"
                   "    # a comment\n"
                   "    ai-edge-litert>=2.1; platform_machine==\"aarch64\"\n"
                   "    ai-edge-litert>=1.2; platform_machine==\"x86_64\"\n"
                   "    tflite-runtime; python_version<\"3.12\"\n")
    assert puc.pi_requirements("3.11", cfg) == ["numpy>=1.23", "ai-edge-litert>=2.1",
                                                "tflite-runtime"]
    assert puc.pi_requirements("3.13", cfg) == ["numpy>=1.23", "ai-edge-litert>=2.1"]
    # the real extra: every entry meant for a Pi survives, TensorFlow never appears
    real = puc.pi_requirements("3.11")
    assert any(r.startswith("ai-edge-litert") for r in real)
    assert not any("tensorflow" in r for r in real)


def test_apt_print_uris_and_pip_reports_become_cache_keys(puc):
    text = ("'http://deb.debian.org/debian/pool/main/p/python3.11/python3.11_3.11.2_arm64.deb' "
            "python3.11_3.11.2_arm64.deb 575 SHA256:ab\nsome other line\n"
            "'http://x/zlib1g_1.2_arm64.deb' zlib1g_1.2_arm64.deb 9 SHA256:cd\n")
    files = [name for _, name in puc.parse_print_uris(text)]
    assert files == ["python3.11_3.11.2_arm64.deb", "zlib1g_1.2_arm64.deb"]
    assert puc.key_of(files) == puc.key_of(files[::-1]) != puc.key_of(files[:1])
    report = {"install": [{"metadata": {"name": "NumPy", "version": "2.4.6"}},
                          {"metadata": {"name": "ai-edge-litert", "version": "2.3.0"}}]}
    assert puc.resolved_pins(report) == ["ai-edge-litert==2.3.0", "numpy==2.4.6"]


def test_the_cache_follows_xdg(puc, monkeypatch, tmp_path):
    monkeypatch.delenv("HAPPYHOUSE_PI_USERLAND_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert puc.cache_root() == tmp_path / "happyhouse" / "pi-userland"


def test_the_script_runs_and_a_missing_dataset_is_one_clear_line(tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--data", str(tmp_path / "none.h5")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "none.h5 is missing" in proc.stderr


def test_face_mesh_landmarks_must_agree_with_x86(puc):
    mesh = {"asset": "facemesh", "kind": "landmarks", "faces": 2, "ok": True,
            "centres": [[96.0, 90.0], [95.5, 97.25]]}
    x86 = {"machine": "x86_64", "assets": [dict(mesh)]}
    arm = {"machine": "aarch64", "assets": [dict(mesh, centres=[[96.1, 90.0], [95.5, 97.25]])]}
    assert puc.judge_selftest(arm, reference=x86)["ok"]
    far = {"machine": "aarch64", "assets": [dict(mesh, centres=[[99.0, 90.0], [95.5, 97.25]])]}
    assert not puc.judge_selftest(far, reference=x86)["ok"]
    assert not puc.judge_selftest(arm)["ok"]  # nothing to compare with is not a pass


def test_pytest_failures_are_named(puc):
    out = ("....F\nFAILED tests/daemon/test_x.py::test_a - assert 1\n"
           "==== 1 failed, 4 passed in 2.0s ====\n")
    assert puc.pytest_summary(out) == "1 failed, 4 passed in 2.0s: tests/daemon/test_x.py::test_a"


def test_the_python_wrapper_is_valid_shell(puc, tmp_path):
    wrapper = puc.python_wrapper(tmp_path / "python3.11", Path("/q/qemu-aarch64"),
                                 Path("/root fs"), Path("/root fs/usr/bin/python3.11"), "/a:/b")
    assert subprocess.run(["sh", "-n", str(wrapper)]).returncode == 0
    text = wrapper.read_text()
    assert "-0 \"$0\"" in text and "'/root fs'" in text


@pytest.mark.parametrize("step", ["selftest", "scores"])
def test_the_emulated_steps_run_on_x86_too(step, happy_house_h5):
    """The steps use the daemon's API: a refactor that breaks them fails here, on x86,
    not only in the emulated run."""
    import json

    steps = SCRIPT.parent / "pi_userland_steps.py"
    proc = subprocess.run([sys.executable, str(steps), step, "--data", str(happy_house_h5),
                           "--limit", "2"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    if step == "selftest":
        kinds = {a["asset"]: a["kind"] for a in report["assets"]}
        assert all(a["ok"] for a in report["assets"]) and "unknown" not in kinds.values()
    else:
        assert len(report["rows"]) >= 2 and report["machine"] == "x86_64"
        # the shipped bundle outputs a probability: one int8 step is one output scale
        assert report["output_scale"] == pytest.approx(1 / 255, rel=1e-3)


def test_a_logit_outputs_score_step_is_a_quarter_of_its_scale(study_script):
    """A format-3 bundle's output is a logit: one int8 step moves the sigmoid by at most
    scale / 4, so the arm64 comparison's tolerance must not read the scale as a score."""
    from types import SimpleNamespace

    steps = study_script("pi_userland_steps.py")
    logit = SimpleNamespace(output=SimpleNamespace(scale=0.08), score_kind="view_logits")
    prob = SimpleNamespace(output=SimpleNamespace(scale=1 / 256), score_kind="probability")
    assert steps.score_step(logit) == pytest.approx(0.02)
    assert steps.score_step(prob) == pytest.approx(1 / 256)


def test_the_steps_serve_a_bundle_given_with_bundle(happy_house_h5, converted):
    """``--bundle``: an adapted (format-3, logit) bundle is self-tested beside the installed
    assets and scores the frames instead of the shipped one."""
    import json

    out, _ = converted
    steps = SCRIPT.parent / "pi_userland_steps.py"

    def step(name):
        proc = subprocess.run([sys.executable, str(steps), name, "--data", str(happy_house_h5),
                               "--limit", "2", "--bundle", str(out)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    assets = {a["asset"]: a for a in step("selftest")["assets"]}
    given = assets[f"bundle {out.name}"]
    assert given["kind"] == "bundle" and given["ok"] and given["max_diff"] == 0
    assert "default" in assets
    meta = json.loads((out / "model.json").read_text())
    scores = step("scores")
    assert scores["threshold"] == meta["threshold"]
    assert scores["output_scale"] == pytest.approx(meta["output"]["scale"] / 4)


def test_the_check_refuses_a_bundle_folder_that_is_not_one(puc, tmp_path, happy_house_h5, capsys):
    assert puc.main(["--data", str(happy_house_h5), "--bundle", str(tmp_path)]) == 2
    assert "not a model bundle" in capsys.readouterr().err
