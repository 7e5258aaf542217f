"""Bundle integrity, field validation and the threshold floor (issue 16 items 4, 6, 18, 21).

Bundles are built from the shipped one's own files (no TensorFlow): ``legacy`` is a copy of
the shipped format-1 bundle without a file manifest; ``written`` goes through
``write_bundle`` and so carries the manifest every new bundle has.
"""

import json
import shutil

import cv2
import numpy as np
import pytest

from happyhouse.daemon import check, cli
from happyhouse.daemon.bundle import (GOLDEN_FILE, META_FILE, MODEL_FILE, default_bundle_path,
                                      load_bundle, write_bundle)
from happyhouse.daemon.bundleschema import seal
from happyhouse.daemon.config import load_config
from happyhouse.daemon.errors import ModelError
from happyhouse.daemon.evidence import (FIXED_FLOOR, evidence_problems, roc_table,
                                        threshold_floor)
from happyhouse.daemon.pipeline import Pipeline

SHIPPED = default_bundle_path()
FORMAT_KEYS = ("format", "format_version", "model_file", "sha256", "golden", "files", "meta_sha256")


def shipped_meta():
    return json.loads((SHIPPED / META_FILE).read_text())


def _write(out, meta=None, golden=None):
    """The shipped bundle's files written anew (with a manifest), ``meta`` in place of its own."""
    meta = shipped_meta() if meta is None else meta
    with np.load(SHIPPED / GOLDEN_FILE) as data:
        arrays = {k: data[k] for k in data.files}
    inputs, outputs = golden or (arrays.pop("inputs"), arrays.pop("outputs"))
    others = {p.name: p.read_bytes() for p in SHIPPED.iterdir()
              if p.name not in (MODEL_FILE, META_FILE, GOLDEN_FILE)}
    return write_bundle(out, (SHIPPED / MODEL_FILE).read_bytes(),
                        {k: v for k, v in meta.items() if k not in FORMAT_KEYS}, inputs, outputs,
                        extra_files={**others, "MODEL_CARD.md": "# card\n"}, golden_extra=arrays)


@pytest.fixture
def legacy(tmp_path):
    """The shipped bundle as bundles were written before the manifest: no file list, no seal,
    no ROC table of its hold-out (the shipped one is sealed since it was re-converted), format 2
    without levelling (added later, format 4)."""
    root = tmp_path / "legacy"
    shutil.copytree(SHIPPED, root)
    meta = json.loads((root / META_FILE).read_text())
    for key in ("files", "meta_sha256"):
        meta.pop(key, None)
    meta["geometry"].pop("level", None)
    meta["format_version"] = 2
    meta["metrics"]["parity"].pop("roc", None)
    (root / META_FILE).write_text(json.dumps(meta, indent=2))
    return root


@pytest.fixture
def written(tmp_path):
    return _write(tmp_path / "written").path


def edit_meta(root, change, reseal=False):
    """Change model.json; ``reseal``: as a forger would, so the check behind the seal is hit."""
    path = root / META_FILE
    meta = json.loads(path.read_text())
    change(meta)
    if reseal:
        meta["meta_sha256"] = seal(meta)
    path.write_text(json.dumps(meta))


# --- item 4: the whole bundle's integrity -----------------------------------------------
def test_written_bundle_lists_every_file_with_its_sha256(written):
    meta = json.loads((written / META_FILE).read_text())
    shipped = {p.name for p in SHIPPED.iterdir() if p.name != META_FILE}
    assert set(meta["files"]) == shipped | {"MODEL_CARD.md"}
    assert len(meta["meta_sha256"]) == 64
    assert load_bundle(written).sha256 == meta["sha256"]


def test_edited_model_json_of_a_written_bundle_is_refused(written):
    edit_meta(written, lambda m: m.update(threshold=0.95))
    with pytest.raises(ModelError, match="model.json.*changed"):
        load_bundle(written)


@pytest.mark.parametrize("field, change", [
    ("threshold = nan", lambda m: m.update(threshold=float("nan"))),
    ("metrics.parity.roc.thresholds.3 = inf", lambda m: m["metrics"]["parity"]["roc"]
     ["thresholds"].__setitem__(3, float("inf"))),
])
def test_a_sealed_bundle_with_nan_names_its_file_and_field(written, field, change):
    """A NaN threshold in a sealed model.json said only "model.json holds a value JSON cannot
    seal": neither which bundle (the service may hold two) nor which value."""
    edit_meta(written, change)
    with pytest.raises(ModelError) as info:
        load_bundle(written)
    said = str(info.value)
    assert said.startswith(f"{written / META_FILE}: {field} is not a number JSON can hold")


@pytest.mark.parametrize("name", [GOLDEN_FILE, "MODEL_CARD.md"])
def test_changed_file_of_a_written_bundle_is_refused(written, name):
    with open(written / name, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match=f"{name}.*sha256"):
        load_bundle(written)


def test_missing_file_of_a_written_bundle_is_refused(written):
    (written / GOLDEN_FILE).unlink()
    with pytest.raises(ModelError, match="golden.npz.*missing"):
        load_bundle(written)


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "sub/dir.bin", ""])
def test_manifest_names_outside_the_bundle_are_refused(written, name):
    edit_meta(written, lambda m: m["files"].update({name: "0" * 64}), reseal=True)
    with pytest.raises(ModelError, match="files"):
        load_bundle(written)


def test_legacy_bundle_still_loads_and_is_checked_as_far_as_it_can_be(legacy):
    bundle = load_bundle(legacy)
    assert bundle.threshold == shipped_meta()["threshold"] and not bundle.manifest


def test_legacy_threshold_below_its_recorded_figures_is_refused(legacy):
    recorded = shipped_meta()["metrics"]["parity"]["threshold"]
    edit_meta(legacy, lambda m: m.update(threshold=0.6))
    with pytest.raises(ModelError, match=f"threshold 0.6 .*{recorded:g}"):
        load_bundle(legacy)


def test_threshold_zero_is_refused_even_with_matching_figures(legacy):
    def zero(meta):
        meta["threshold"] = 0.0
        for scope in ("training", "parity"):
            meta["metrics"][scope]["threshold"] = 0.0
    edit_meta(legacy, zero)
    with pytest.raises(ModelError, match="threshold 0 .*floor"):
        load_bundle(legacy)


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.99])
def test_threshold_override_below_the_floor_is_refused(fraction):
    # the shipped bundle records its hold-out's ROC table: its own floor, not the fixed one
    floor, based_on = threshold_floor(shipped_meta())
    assert 0.0 < floor < 0.5 and "non-smiling faces" in based_on
    with pytest.raises(ModelError, match="floor"):
        Pipeline.from_config(load_config(None, {"model.threshold": round(floor * fraction, 4)}))


@pytest.mark.parametrize("value", [0.0, 0.05, FIXED_FLOOR - 0.001])
def test_threshold_override_below_the_fixed_floor_is_refused_without_a_roc_table(
        value, legacy, tmp_path):
    with pytest.raises(ModelError, match="floor"):
        Pipeline.from_config(load_config(None, {"model.bundle": str(legacy),
                                                "model.threshold": value}))


def test_threshold_override_at_the_floor_is_served():
    assert Pipeline.from_config(load_config(None, {"model.threshold": 0.3})).threshold == 0.3


def test_threshold_from_the_config_file_is_floored(tmp_path, capsys):
    conf = tmp_path / "h.conf"
    conf.write_text("[model]\nthreshold = 0.0\n[latch]\ngpio = mock\n")
    image = tmp_path / "grey.png"
    import cv2

    cv2.imwrite(str(image), np.full((480, 640, 3), 128, np.uint8))
    rc = cli.main(["--once", "--config", str(conf), "--source", str(image)])
    err = capsys.readouterr().err
    assert rc == cli.EXIT_ERROR and "Traceback" not in err and "floor" in err
    # a flag under the shipped bundle's own floor (from its recorded validation scores) too
    floor, _ = threshold_floor(shipped_meta())
    assert floor >= 0.01  # at 0 every face opens, so a floor is never 0
    rc = cli.main(["--once", "--config", str(conf), "--source", str(image), "--threshold", f"{floor / 2:g}"])
    assert rc == cli.EXIT_ERROR and "floor" in capsys.readouterr().err


def _roc_meta(neg_scores, pos_scores, threshold=0.9):
    meta = shipped_meta()
    scores = np.concatenate([neg_scores, pos_scores])
    labels = np.array([0] * len(neg_scores) + [1] * len(pos_scores))
    meta["metrics"]["parity"]["roc"] = roc_table(scores, labels)
    meta["threshold"] = threshold
    for scope in ("training", "parity"):
        meta["metrics"][scope]["threshold"] = threshold
    return meta


def test_the_floor_comes_from_the_bundles_own_validation_scores():
    rng = np.random.default_rng(0)
    # most non-smiling faces score above 0.4 here: 0.4 would open for most of them
    meta = _roc_meta(rng.uniform(0.3, 0.6, 400), rng.uniform(0.7, 1.0, 200))
    floor, basis = threshold_floor(meta)
    assert 0.43 <= floor <= 0.48 and "validation" in basis


def test_roc_floor_refuses_a_bundle_threshold_that_opens_for_most(tmp_path):
    rng = np.random.default_rng(1)
    meta = _roc_meta(rng.uniform(0.3, 0.6, 400), rng.uniform(0.7, 1.0, 200), threshold=0.4)
    with pytest.raises(ModelError, match="floor"):
        _write(tmp_path / "b", meta)


# --- item 4 / 21: --check says NO-GO on poor recorded figures ----------------------------
def _check_model(bundle_path):
    cfg = load_config(None, {"model.bundle": str(bundle_path)})
    items = check.collect(cfg, source=None, thermal_path="/nonexistent",
                          throttled=lambda: "throttled=0x0")
    return {i.name: i for i in items}["model"]


def test_check_is_go_on_the_shipped_figures(legacy):
    assert evidence_problems(shipped_meta()) == []
    assert _check_model(legacy).status == check.OK


def test_check_is_no_go_on_a_tiny_near_chance_holdout(tmp_path):
    meta = shipped_meta()
    meta["metrics"]["parity"].update(n=9, float_accuracy=5 / 9, int8_accuracy=5 / 9,
                                     holdout_summary={"n": 9, "happy": 4, "not_happy": 5})
    bundle = _write(tmp_path / "b", meta)
    problems = evidence_problems(bundle.meta)
    assert any("9 images" in p for p in problems) and any("chance" in p for p in problems)
    item = _check_model(bundle.path)
    assert item.status == check.FAIL and "9 images" in item.detail


def test_a_bundle_too_poor_to_arm_is_armed_by_no_door_tool_but_still_measured(tmp_path, capsys):
    """Found by walking the docs: a bundle converted with a 4-image hold-out was "too poor to
    arm" for --check, yet --verify-model (the installer's gate) said it can serve and the
    service armed it and opened. Now every tool that arms the door refuses it in one line;
    happyhouse-eval, which never drives the latch, still measures it."""
    from happyhouse.daemon import evaluate

    meta = shipped_meta()
    meta["metrics"]["parity"].update(n=4, float_accuracy=0.5, int8_accuracy=0.5,
                                     holdout_summary={"n": 4, "happy": 2, "not_happy": 2})
    bundle = _write(tmp_path / "b", meta)
    with pytest.raises(ModelError, match="too poor to arm a door: the parity hold-out has 4"):
        Pipeline.from_config(load_config(None, {"model.bundle": str(bundle.path)}))
    capsys.readouterr()
    assert cli.main(["--verify-model", "--model", str(bundle.path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "too poor to arm" in err[0], err
    assert Pipeline.from_config(load_config(None, {"model.bundle": str(bundle.path)}),
                                door=False).bundle.path == bundle.path
    faces = tmp_path / "faces"
    for label in ("happy", "not_happy"):
        (faces / label).mkdir(parents=True)
        cv2.imwrite(str(faces / label / "a.png"), np.full((64, 64, 3), 100, np.uint8))
    assert evaluate.main(["--model", str(bundle.path), "--data", str(faces), "--json"]) == 0


def test_the_tools_that_rebuild_or_replace_a_bundle_too_poor_to_arm_still_score_with_it(
        tmp_path, genki_root, capsys):
    """A review found --collect (gathering the frames to rebuild it), adapt's comparison with
    the door's bundle and the bench refusing such a bundle: none of them drives the latch."""
    from happyhouse.bench.stages import build_parts
    from happyhouse.train.adapt import current_door

    meta = shipped_meta()
    meta["metrics"]["parity"].update(n=80)
    bundle = _write(tmp_path / "b", meta)
    assert build_parts(str(bundle.path), 1).pipeline.bundle.path == bundle.path
    scores, happy, pipe = current_door(bundle.path, np.full((2, 64, 64, 3), 90, np.uint8))
    assert pipe.bundle.path == bundle.path and len(scores) == 2
    rc = cli.main(["--collect", str(tmp_path / "col"), "--label", "happy", "--model",
                   str(bundle.path), "--source", str(genki_root / "happy"), "--count", "1",
                   "--every", "0", "--gpio", "mock", "--state-dir", str(tmp_path / "state")])
    assert rc == 0, capsys.readouterr().err
    assert len(list((tmp_path / "col" / "happy").glob("*.png"))) == 1


@pytest.mark.parametrize("field, value, words", [("roc_auc", 0.55, "ROC AUC"),
                                                 ("false_open_rate", 0.3, "false-open")])
def test_check_is_no_go_on_poor_training_figures(tmp_path, field, value, words):
    meta = shipped_meta()
    meta["metrics"]["training"][field] = value
    item = _check_model(_write(tmp_path / "b", meta).path)
    assert item.status == check.FAIL and words in item.detail


def test_bundle_without_recorded_figures_is_no_go(tmp_path):
    meta = shipped_meta()
    del meta["metrics"]
    assert _check_model(_write(tmp_path / "b", meta).path).status == check.FAIL


# --- item 6: every field's type and range, one clear ModelError ----------------------------
MALFORMED = {
    "input-string": lambda m: m.update(input="x"),
    "input-shape-string": lambda m: m["input"].update(shape="1,64,64,3"),
    "input-shape-negative": lambda m: m["input"].update(shape=[1, -64, 64, 3]),
    "input-dtype": lambda m: m["input"].update(dtype=8),
    "input-scale": lambda m: m["input"].update(scale="big"),
    "output-number": lambda m: m.update(output=5),
    "margin-string": lambda m: m["preprocess"].update(margin="0.1"),
    "size-string": lambda m: m["preprocess"].update(size="64"),
    "size-float": lambda m: m["preprocess"].update(size=64.5),
    "size-bool": lambda m: m["preprocess"].update(size=True),
    "crop-list": lambda m: m["preprocess"].update(crop=["face"]),
    "preprocess-list": lambda m: m.update(preprocess=[1]),
    "threshold-string": lambda m: m.update(threshold="0.889"),
    "threshold-bool": lambda m: m.update(threshold=True),
    "threshold-nan": lambda m: m.update(threshold=float("nan")),
    "labels-string": lambda m: m.update(labels="happy"),
    "labels-three": lambda m: m.update(labels=["a", "b", "c"]),
    # an unsealed bundle edited by hand: accepted, and changed nothing the door did
    "labels-swapped": lambda m: m.update(labels=["happy", "not_happy"]),
    "input-scale-not-the-model-s": lambda m: m["input"].update(scale=0.5),
    "output-zero-point-not-the-model-s": lambda m: m["output"].update(zero_point=0),
    "sha256-number": lambda m: m.update(sha256=12),
    "golden-string": lambda m: m.update(golden="yes"),
    "golden-count": lambda m: m["golden"].update(count="six"),
    "metrics-list": lambda m: m.update(metrics=[]),
    "parity-n-string": lambda m: m["metrics"]["parity"].update(n="many"),
    "training-auc-string": lambda m: m["metrics"]["training"].update(roc_auc="high"),
    "model-file": lambda m: m.update(model_file="other.tflite"),
    "output-score-unknown": lambda m: m["output"].update(score="softmax"),
    # a logit output read as a probability by an older daemon is what format 3 prevents
    "output-logits-format-1": lambda m: m["output"].update(score="view_logits"),
    "output-shape-two-probabilities": lambda m: m["output"].update(shape=[2, 1]),
    "output-shape-three-logits": lambda m: m.update(format_version=3) or m["output"].update(
        score="view_logits", shape=[3, 1]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_model_json_is_one_model_error(legacy, case):
    edit_meta(legacy, MALFORMED[case])
    with pytest.raises(ModelError) as info:
        load_bundle(legacy).classifier()
    assert "\n" not in str(info.value) and "model.json" in str(info.value)


@pytest.mark.parametrize("content", ["empty-file", "no-arrays", "zero-vectors", "wrong-shape",
                                     "count-mismatch", "not-npz"])
def test_broken_golden_vectors_are_a_model_error(legacy, content):
    path = legacy / GOLDEN_FILE
    with np.load(path) as data:
        inputs, outputs = data["inputs"], data["outputs"]
    if content == "empty-file":
        path.write_bytes(b"")
    elif content == "no-arrays":
        np.savez_compressed(path)
    elif content == "zero-vectors":
        np.savez_compressed(path, inputs=inputs[:0], outputs=outputs[:0])
    elif content == "wrong-shape":
        np.savez_compressed(path, inputs=inputs[:, :32], outputs=outputs)
    elif content == "count-mismatch":
        np.savez_compressed(path, inputs=inputs, outputs=outputs[:3])
    else:
        path.write_bytes(b"PK\x03\x04 not a zip")
    bundle = load_bundle(legacy)
    with pytest.raises(ModelError) as info:  # SelfTestError is a ModelError
        bundle.self_test(bundle.classifier())
    assert "golden" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("case", ["input-string", "margin-string"])
def test_malformed_bundle_through_the_daemon_is_one_line_not_a_traceback(legacy, tmp_path, capsys,
                                                                         case):
    edit_meta(legacy, MALFORMED[case])
    image = tmp_path / "grey.png"
    import cv2

    cv2.imwrite(str(image), np.full((480, 640, 3), 128, np.uint8))
    rc = cli.main(["--once", "--model", str(legacy), "--gpio", "mock", "--source", str(image)])
    err = capsys.readouterr().err
    assert rc == cli.EXIT_ERROR and "Traceback" not in err and "model.json" in err


def test_empty_golden_through_the_daemon_is_one_line(legacy, capsys):
    (legacy / GOLDEN_FILE).write_bytes(b"")
    rc = cli.main(["--check", "--json", "--model", str(legacy), "--gpio", "mock",
                   "--source", str(legacy / "missing.png")])
    out, err = capsys.readouterr()
    model = {c["name"]: c for c in json.loads(out)["checks"]}["model"]
    assert rc == cli.EXIT_NO and "Traceback" not in err
    assert model["status"] == "fail" and "golden" in model["detail"]


# --- item 18: --model names a file -----------------------------------------------------------
def test_model_that_is_a_file_says_it_must_be_a_bundle_folder(tmp_path):
    some_file = tmp_path / "model.keras"
    some_file.write_bytes(b"x")
    with pytest.raises(ModelError, match="must be a bundle folder") as info:
        load_bundle(some_file)
    assert "does not exist" not in str(info.value)


def test_a_bundle_that_fails_its_proof_never_replaces_the_earlier_one(tmp_path):
    """The converter's golden self-tests ran after the swap: a bundle failing them had
    already deleted the earlier bundle at --out, while the command reported an error."""
    from happyhouse.daemon.errors import SelfTestError

    out = tmp_path / "bundle"
    shutil.copytree(SHIPPED, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def fails(bundle):
        assert bundle.path != out  # proved where it was written, before the swap
        raise SelfTestError("golden outputs differ")

    def fails_naming_its_folder(bundle):
        raise SelfTestError(f"{bundle.path}: golden outputs differ")

    with pytest.raises(SelfTestError):
        write_bundle(out, b"another model", shipped_meta(), np.zeros((1, 64, 64, 3), np.uint8),
                     np.zeros((1, 1)), prove=fails)
    with pytest.raises(SelfTestError, match=f"^{out}: golden outputs differ"):
        write_bundle(out, b"another model", shipped_meta(), np.zeros((1, 64, 64, 3), np.uint8),
                     np.zeros((1, 1)), prove=fails_naming_its_folder)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_a_written_bundle_that_does_not_load_is_named_as_the_folder_asked_for(tmp_path):
    """The refusal named the private folder it was written in (".out.abc123/model.json"),
    gone by the time the line was read."""
    meta = shipped_meta()
    meta["threshold"] = 0.01  # below what its recorded figures were measured at
    with pytest.raises(ModelError, match="threshold 0.01 is below") as info:
        _write(tmp_path / "out", meta)
    assert str(tmp_path / "out" / "model.json") in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_classifier_is_served_from_the_bytes_it_was_checked_with(tmp_path):
    """The runtime mapped model.tflite; a cp over it (truncated in place) while the service
    ran killed it with SIGBUS at the next frame, no "latch locked" line. The classifier now
    runs from the bytes hashed at load, and a file changed since the bundle was opened is
    refused in one line."""
    import gc
    import shutil

    import numpy as np

    from happyhouse.daemon.bundle import MODEL_FILE, default_bundle_path, load_bundle
    from happyhouse.daemon.errors import ModelError

    folder = tmp_path / "bundle"
    shutil.copytree(default_bundle_path(), folder)
    bundle = load_bundle(folder)
    clf = bundle.classifier()
    before = clf.score(np.full((64, 64, 3), 128, np.uint8))
    with open(folder / MODEL_FILE, "r+b") as handle:  # what cp over it does: truncate, rewrite
        handle.truncate(1000)
    gc.collect()
    assert clf.score(np.full((64, 64, 3), 128, np.uint8)) == before  # no SIGBUS, same model
    with pytest.raises(ModelError, match="changed meanwhile"):
        bundle.classifier()
