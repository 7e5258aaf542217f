"""What the desktop tools leave in their output folders when a run is cut short or the
folders overlap (a field probe's findings): a retrain into a model's folder, a geometry
stage fitted to another classifier, adapt's bundle and report, outputs inside the data."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from happyhouse.daemon.datasets import Dataset
from happyhouse.daemon.errors import DataError, ModelError
from happyhouse.daemon.filesafety import replace_folders
from happyhouse.train import trainer
from happyhouse.train.trainer import MODEL_FILE, TrainConfig, read_meta

REPO = Path(__file__).resolve().parents[2]


def earlier_model(folder: Path) -> Path:
    """A model folder as a finished run and a geometry fit leave it, plus notes."""
    folder.mkdir(parents=True)
    for name, text in ((MODEL_FILE, "old weights"), ("train_meta.json", '{"threshold": 0.94}'),
                       ("split.json", "{}"), ("geometry.json", '{"threshold": 0.89}'),
                       ("geometry_head.npz", "old head"), ("card-notes.md", "hand-written")):
        (folder / name).write_text(text)
    return folder


def tiny_data():
    images = np.zeros((4, 64, 64, 3), np.uint8)
    return Dataset(images, np.array([0, 1, 0, 1]), [f"f{i}.png" for i in range(4)])


def test_an_interrupted_retrain_leaves_the_model_folder_as_it_was(tmp_path, monkeypatch):
    """The checkpoint went straight into --out: Ctrl-C after one epoch left new weights
    beside the old train_meta.json, and the converter shipped the old threshold with them."""
    out = earlier_model(tmp_path / "model")
    before = {p.name: p.read_text() for p in out.iterdir()}

    def interrupted(cfg, data, tr, va, spec, started, staged, report_dir, final_out):
        (staged / MODEL_FILE).write_text("new weights, first epoch")
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_train_into", interrupted)
    cfg = TrainConfig(data=[str(tmp_path / "faces")], out=out, augment="none")
    with pytest.raises(KeyboardInterrupt):
        trainer.train_split(cfg, tiny_data(), np.array([0, 1]), np.array([2, 3]))
    assert {p.name: p.read_text() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging left behind


def test_an_interrupted_first_run_leaves_no_empty_output_folders(tmp_path, monkeypatch):
    """Ctrl-C during the first epoch left an empty --out and --report (and their parents)."""
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_train_into", interrupted)
    (tmp_path / "runs").mkdir()
    cfg = TrainConfig(data=[str(tmp_path / "faces")], out=tmp_path / "runs" / "new" / "m",
                      report_dir=tmp_path / "reports" / "r", augment="none")
    with pytest.raises(KeyboardInterrupt):
        trainer.train_split(cfg, tiny_data(), np.array([0, 1]), np.array([2, 3]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_finished_retrain_replaces_the_model_and_drops_what_was_fitted_to_the_old_one(tmp_path, monkeypatch):
    """geometry.json stayed beside the new model.keras, and convert shipped its fused
    threshold, chosen with the old classifier's scores."""
    out = earlier_model(tmp_path / "model")

    def finished(cfg, data, tr, va, spec, started, staged, report_dir, final_out):
        for name in (MODEL_FILE, "train_meta.json", "split.json", "metrics.json"):
            (staged / name).write_text(f"new {name}")
        return {"meta": {}}

    monkeypatch.setattr(trainer, "_train_into", finished)
    cfg = TrainConfig(data=[str(tmp_path / "faces")], out=out, augment="none")
    result = trainer.train_split(cfg, tiny_data(), np.array([0, 1]), np.array([2, 3]))
    assert result["model"] == out / MODEL_FILE and result["report_dir"] == out
    assert sorted(p.name for p in out.iterdir()) == ["card-notes.md", "metrics.json", MODEL_FILE,
                                                     "split.json", "train_meta.json"]
    assert (out / MODEL_FILE).read_text() == f"new {MODEL_FILE}"
    assert (out / "card-notes.md").read_text() == "hand-written"


def test_a_geometry_stage_fitted_to_another_classifier_is_refused(tmp_path):
    from happyhouse.train.geometry import stage_beside

    folder = tmp_path / "model"
    shutil.copytree(REPO / "models" / "general", folder)
    sidecar = json.loads((folder / "geometry.json").read_text())
    sidecar["model_sha256"] = "0" * 64  # fitted to a model.keras that is no longer there
    (folder / "geometry.json").write_text(json.dumps(sidecar))
    with pytest.raises(ModelError, match="fitted to another model.keras .* fit the geometry stage again"):
        stage_beside(folder / MODEL_FILE)
    from happyhouse.daemon.bundle import sha256_file

    sidecar["model_sha256"] = sha256_file(folder / MODEL_FILE)
    (folder / "geometry.json").write_text(json.dumps(sidecar))
    assert stage_beside(folder / MODEL_FILE) is not None


@pytest.mark.parametrize("threshold, said", [
    (float("nan"), "fused threshold nan is not a number between 0 and 1"),
    (0.0, "fused threshold 0.0 is not a number between 0 and 1"),
    (None, "it has no 'threshold'"),
])
def test_a_geometry_sidecar_threshold_is_checked_before_the_conversion(tmp_path, monkeypatch,
                                                                       threshold, said):
    """NaN, 0 or no threshold in geometry.json: refused only after the whole conversion,
    as "model.json holds a value JSON cannot seal", or naming a temporary folder gone since."""
    from happyhouse.convert import build
    from happyhouse.convert.build import Options, convert

    folder = tmp_path / "model"
    shutil.copytree(REPO / "models" / "general", folder)
    sidecar = json.loads((folder / "geometry.json").read_text())
    if threshold is None:
        del sidecar["threshold"]
    else:
        sidecar["threshold"] = threshold
    (folder / "geometry.json").write_text(json.dumps(sidecar))
    monkeypatch.setattr(build, "load_keras_model", lambda path: pytest.fail("the model was loaded"))
    with pytest.raises(ModelError, match="geometry.json") as info:
        convert(Options(model=folder / MODEL_FILE, calibration=[tmp_path / "faces"],
                        out=tmp_path / "bundle"))
    assert said in str(info.value)


@pytest.mark.parametrize("which", ["out", "report"])
def test_training_outputs_inside_the_training_data_are_refused(tmp_path, which):
    """--out inside a class folder: its plots were read as happy faces by the next run."""
    faces = tmp_path / "faces"
    (faces / "happy").mkdir(parents=True)
    inside = faces / "happy" / "run"
    cfg = TrainConfig(data=[str(faces)], out=inside if which == "out" else tmp_path / "m",
                      report_dir=inside if which == "report" else None)
    with pytest.raises(DataError, match="inside the training data"):
        trainer.check_output_folders(cfg)
    assert not inside.exists()


def test_a_broken_train_meta_is_a_model_error(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "train_meta.json").write_text('{"format": "happyhouse-train-meta", "prepro')
    with pytest.raises(ModelError, match="not readable JSON.*copy the model's folder again"):
        read_meta(folder / MODEL_FILE)
    meta = json.loads((REPO / "models" / "general" / "train_meta.json").read_text())
    del meta["preprocess"]
    (folder / "train_meta.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="lacks its preprocess contract"):
        read_meta(folder / MODEL_FILE)


def test_an_init_model_without_its_sidecar_is_said(tmp_path, caplog):
    """A copy of the CLAHE-trained model without train_meta.json fine-tuned on other pixels
    than its parent learnt, silently."""
    (tmp_path / MODEL_FILE).write_text("weights")
    assert trainer.inherited_normalize(tmp_path / MODEL_FILE) == "none"
    assert "its training metadata cannot be read" in caplog.text


@pytest.mark.parametrize("report", ["same", "inside-out", "out-inside"])
def test_adapt_refuses_a_report_folder_that_overlaps_the_bundle(tmp_path, report):
    """--report equal to --out (or one inside the other) deleted the bundle it had just
    made, and exited 0."""
    from happyhouse.train.adapt import check_apart

    out = tmp_path / "bundle"
    report_out = {"same": out, "inside-out": out / "report", "out-inside": tmp_path}[report]
    with pytest.raises(DataError, match="two separate folders"):
        check_apart(out, report_out, tmp_path / "frames")


def test_adapt_refuses_outputs_inside_the_house_frames(tmp_path):
    from happyhouse.train.adapt import check_apart

    with pytest.raises(DataError, match="inside --frames"):
        check_apart(tmp_path / "frames" / "bundle", tmp_path / "report", tmp_path / "frames")


def test_replacing_folders_keeps_the_old_ones_until_the_new_ones_are_in(tmp_path, monkeypatch):
    """adapt deleted the earlier bundle and then moved the new one in: a Ctrl-C there left
    no bundle at all."""
    old_bundle, old_report = tmp_path / "bundle", tmp_path / "report"
    for folder in (old_bundle, old_report):
        folder.mkdir()
        (folder / "what").write_text("old")
    new_bundle, new_report = tmp_path / "work" / "b", tmp_path / "work" / "r"
    for folder in (new_bundle, new_report):
        folder.mkdir(parents=True)
        (folder / "what").write_text("new")
    real_replace = os.replace
    calls = []

    def interrupted_at_the_first_swap(src, dst):
        calls.append((src, dst))
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted_at_the_first_swap)
    with pytest.raises(KeyboardInterrupt):
        replace_folders(((new_bundle, old_bundle), (new_report, old_report)))
    monkeypatch.setattr(os, "replace", real_replace)
    assert calls and (old_bundle / "what").read_text() == "old"
    assert (old_report / "what").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "report", "work"]
    new_bundle.mkdir()
    (new_bundle / "what").write_text("new")
    new_report.mkdir(exist_ok=True)
    (new_report / "what").write_text("new")
    replace_folders(((new_bundle, old_bundle), (new_report, old_report)))
    assert (old_bundle / "what").read_text() == "new" and (old_report / "what").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "report", "work"]


def test_a_retrain_into_the_folder_of_its_init_model_is_refused(tmp_path):
    """--init gm/model.keras --out gm replaced the model it started from (and dropped its
    geometry stage) with exit 0 and no copy kept."""
    out = earlier_model(tmp_path / "model")
    before = {p.name: p.read_text() for p in out.iterdir()}
    cfg = TrainConfig(data=[str(tmp_path / "faces")], out=out, init=out / MODEL_FILE)
    with pytest.raises(DataError, match="holds the --init model"):
        trainer.check_output_folders(cfg)
    assert {p.name: p.read_text() for p in out.iterdir()} == before
    trainer.check_output_folders(TrainConfig(data=[str(tmp_path / "faces")], out=tmp_path / "new",
                                             init=out / MODEL_FILE))


def test_the_same_data_given_twice_is_refused(tmp_path):
    """--data X --data X counted each face twice, the copies on both sides of the split."""
    faces = tmp_path / "faces"
    faces.mkdir()
    cfg = TrainConfig(data=[str(faces), str(tmp_path / "." / "faces")], out=tmp_path / "new")
    with pytest.raises(DataError, match="given twice"):
        trainer.check_output_folders(cfg)


def earlier_bundle(folder: Path) -> Path:
    from happyhouse.daemon.bundle import default_bundle_path

    shutil.copytree(default_bundle_path(), folder)
    return folder


@pytest.mark.parametrize("flag", ["--calibration", "--holdout", "--metadata"])
def test_convert_refuses_an_output_that_holds_one_of_its_inputs(tmp_path, flag):
    """An earlier bundle holding the calibration faces, given as --out: replaced whole, the
    faces were gone, with exit 0."""
    from happyhouse.convert.build import Options, convert

    out = earlier_bundle(tmp_path / "bundle")
    kept = out / ("faces" if flag != "--metadata" else "train_meta.json")
    kept.mkdir() if flag != "--metadata" else kept.write_text("{}")
    options = Options(model=REPO / "models" / "general" / MODEL_FILE, out=out,
                      calibration=[kept if flag == "--calibration" else tmp_path / "faces"],
                      holdout=[kept] if flag == "--holdout" else [],
                      metadata=kept if flag == "--metadata" else None)
    with pytest.raises(ModelError, match=f"{flag} .* is inside the output .* it would be deleted"):
        convert(options)
    assert kept.exists()


def test_adapt_refuses_an_output_that_holds_the_house_frames(tmp_path, capsys):
    from happyhouse.train.adapt import main

    out = earlier_bundle(tmp_path / "bundle")
    (out / "house" / "happy").mkdir(parents=True)
    (out / "house" / "not_happy").mkdir()
    assert main(["--frames", str(out / "house"), "--out", str(out)]) == 2
    assert "--frames" in capsys.readouterr().err.split("is inside the output")[0]
    assert (out / "house" / "happy").is_dir()


def test_a_trained_model_folder_is_not_an_earlier_report(tmp_path):
    """Training's report defaults to its --out, so a model folder holds metrics.json:
    adapt --report on it deleted model.keras and train_meta.json."""
    from happyhouse.convert.build import check_writable

    folder = earlier_model(tmp_path / "trained")
    (folder / "metrics.json").write_text("{}")
    with pytest.raises(ModelError, match="holds model.keras: it is a trained model, not a report"):
        check_writable(folder, "a report", "metrics.json")
    with pytest.raises(ModelError, match="it is a model bundle, not a report"):
        check_writable(earlier_bundle(tmp_path / "b"), "a report", "metrics.json")


def test_adapt_never_writes_the_shipped_bundle_but_convert_may_rebuild_it(tmp_path):
    """adapt's --current defaults to the shipped bundle, the door's fallback; the README
    rebuilds that bundle with happyhouse-convert --out daemon/models/default."""
    from happyhouse.convert.build import check_writable
    from happyhouse.daemon.bundle import default_bundle_path
    from happyhouse.train.adapt import check_apart

    with pytest.raises(DataError, match="is the bundle shipped with happyhouse"):
        check_apart(default_bundle_path(), tmp_path / "report", tmp_path / "frames")
    check_writable(default_bundle_path())


def test_an_output_that_is_a_dangling_symlink_is_refused_before_the_work(tmp_path):
    """The final rename failed on it: NotADirectoryError, a traceback after the whole run."""
    from happyhouse.convert.build import check_writable

    link = tmp_path / "out"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(DataError, match="is a symlink to .*nowhere, which does not exist"):
        check_writable(link)


@pytest.mark.parametrize("module, argv, flag", [
    ("happyhouse.convert.cli", ["m.keras", "--calibration", "faces", "--out", ""], "--out"),
    ("happyhouse.train.cli", ["--data", "faces", "--out", ""], "--out"),
    ("happyhouse.train.adapt", ["--frames", "faces", "--out", " "], "--out"),
    ("happyhouse.daemon.evaluate", ["--data", "faces", "--model", ""], "--model"),
    ("happyhouse.daemon.evaluate", ["--data", "faces", "--per-image", ""], "--per-image"),
    ("happyhouse.daemon.evaluate", ["--data", "faces", "--plot", ""], "--plot"),
])
def test_an_empty_path_is_refused_by_every_desktop_tool(capsys, module, argv, flag):
    """An unset shell variable: train --out "" wrote its model and plots into the current
    folder, eval --model "" scored the shipped bundle, --per-image "" wrote nothing; all
    with exit 0."""
    import importlib

    with pytest.raises(SystemExit) as stop:
        importlib.import_module(module).main(argv)
    assert stop.value.code == 2 and f"argument {flag}: an empty path" in capsys.readouterr().err


def test_a_model_file_cut_short_is_called_corrupt(tmp_path):
    """Keras said "File not found: filepath=..." of a model.keras a copy cut short."""
    cut = tmp_path / MODEL_FILE
    cut.write_bytes((REPO / "models" / "general" / MODEL_FILE).read_bytes()[:1000])
    with pytest.raises(ModelError, match="is corrupt: a .keras file must be a zip archive"):
        trainer.load_model(cut)


def test_a_soup_member_that_is_a_folder_is_said_so(tmp_path):
    from happyhouse.train.soup import check_members

    with pytest.raises(ModelError, match="--model .* is a folder, not a file"):
        check_members([tmp_path, REPO / "models" / "general" / MODEL_FILE])


def _ctrl_c_in_a_batch_worker(trainer_pid, answers):
    import signal

    trainer._worker_ignores_ctrl_c(trainer_pid)
    answers.put(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)


def test_a_batch_worker_leaves_ctrl_c_to_the_trainer():
    """Ctrl-C reached the --workers processes too: they died with the batches they held and
    the trainer, after saying "interrupted", waited for those batches for good."""
    import multiprocessing
    import os
    import signal

    fork = multiprocessing.get_context("fork")
    answers = fork.Queue()
    worker = fork.Process(target=_ctrl_c_in_a_batch_worker, args=(os.getpid(), answers))
    worker.start()
    worker.join(30)
    assert answers.get(timeout=5) is True
    before = signal.getsignal(signal.SIGINT)
    trainer._worker_ignores_ctrl_c(os.getpid())  # in the trainer itself: Ctrl-C still works
    assert signal.getsignal(signal.SIGINT) is before
