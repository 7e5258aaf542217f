"""happyhouse-train end to end on a small real subset (short: 1 epoch)."""

import json

import pytest

from happyhouse.convert.cli import EXIT_UNARMED
from happyhouse.daemon.preprocess import Preprocess
from happyhouse.train import cli, report
from happyhouse.train.trainer import META_FILE, MODEL_FILE, read_meta


@pytest.mark.slow
def test_short_training_run_writes_model_metadata_and_every_report_file(genki_root, smile_root,
                                                                        tmp_path, capsys):
    out = tmp_path / "model"
    rc = cli.main(["--data", str(genki_root), "--data", str(smile_root), "--limit", "20",
                   "--epochs", "1", "--batch-size", "32", "--out", str(out),
                   "--report", str(tmp_path / "report"), "--quiet", "--seed", "3"])
    assert rc == 0
    assert (out / MODEL_FILE).is_file()
    meta = read_meta(out / MODEL_FILE)
    assert Preprocess.from_dict(meta["preprocess"]) == Preprocess(crop="face", margin=0.0)
    assert meta["data"]["n"] == 80 and meta["split"]["seed"] == 3
    assert 0.5 <= meta["threshold"] <= 1.0
    # the backend that trained it, and that backend's version (TensorFlow here)
    versions = meta["versions"]
    assert versions["backend"] == "tensorflow" and versions["tensorflow"][0].isdigit()
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix", "threshold"):
        assert key in metrics
    assert metrics["n"] == meta["split"]["n_val"] == 12
    for name in report.PLOTS:
        assert (tmp_path / "report" / name).stat().st_size > 1000
    history = (tmp_path / "report" / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,") and len(history) == 2  # header + the one epoch
    assert not (out / "history.csv").exists()
    assert "validation n=12" in capsys.readouterr().out
    split = json.loads((out / "split.json").read_text())
    assert len(split["validation_ids"]) == 12 and split["n_train"] == 68


def test_bad_data_path_is_a_one_line_error(tmp_path, capsys):
    rc = cli.main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "does not exist" in err and "Traceback" not in err


@pytest.mark.parametrize("flag, value", [("--lr", "nan"), ("--lr", "-1"), ("--val-fraction", "1"),
                                         ("--max-false-open", "nan"), ("--margin", "inf"),
                                         ("--time-limit", "nan"), ("--workers", "0"),
                                         ("--limit", "0"), ("--seed", "-1"),
                                         ("--split-seed", "-2"), ("--cap-seed", "10000000000")])
def test_a_number_training_cannot_use_is_one_line_before_any_data_is_read(flag, value, tmp_path,
                                                                          capsys):
    """A NaN learning rate once trained for hours into a NaN model; a negative seed was a
    numpy traceback once the data was read."""
    rc = cli.main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), flag, value])
    err = capsys.readouterr().err
    assert rc == 2 and "nowhere" not in err and "Traceback" not in err, err
    assert err.count("happyhouse-train:") == 1
    assert not (tmp_path / "o").exists()


def test_help_says_every_default_the_run_would_use():
    """--epochs, --lr, --seed ... showed no default: a technician could not tell what a run
    without them would do (the README's commands pass some, not all)."""
    parser = cli.parser()
    defaults = vars(parser.parse_args(["--data", "faces", "--out", "model"]))
    text = parser.format_help()
    options = {part.split()[0]: part for part in text.split("\n  --")[1:]}
    for name, value in defaults.items():
        if value not in (None, False, []) and name not in ("data", "out"):
            assert "default" in options[name.replace("_", "-")], name
    text = parser.format_help()
    for shown in ("(default 36)", "(default 0.002)", "(default 64)", "default door)"):
        assert shown in " ".join(text.split()), shown


def test_arch_with_init_is_refused_not_ignored(tmp_path, capsys):
    """--init M --arch smilenet fine-tuned M's own network and recorded arch "default"."""
    rc = cli.main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                   "--init", str(tmp_path / "m.keras"), "--arch", "happymodel"])
    err = capsys.readouterr().err
    assert rc == 2 and "--arch happymodel does not apply with --init" in err, err
    assert err.count("happyhouse-train:") == 1 and not (tmp_path / "o").exists()


def test_missing_init_model_is_a_clear_error(genki_root, tmp_path, capsys):
    rc = cli.main(["--data", str(genki_root), "--limit", "4", "--init", str(tmp_path / "m.keras"),
                   "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 2
    assert "m.keras does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o" / META_FILE).exists()


@pytest.mark.slow
def test_init_fine_tunes_an_existing_model_with_batchnorm_frozen(genki_root, tmp_path):
    import numpy as np

    from happyhouse.train.trainer import load_model

    base = tmp_path / "base"
    assert cli.main(["--data", str(genki_root), "--limit", "12", "--epochs", "1", "--quiet",
                     "--arch", "happymodel", "--out", str(base)]) == 0
    tuned = tmp_path / "tuned"
    assert cli.main(["--data", str(genki_root), "--limit", "12", "--epochs", "1", "--quiet",
                     "--init", str(base / MODEL_FILE), "--crop", "frame", "--lr", "1e-2",
                     "--out", str(tuned)]) == 0
    before, after = load_model(base / MODEL_FILE), load_model(tuned / MODEL_FILE)
    bn_before, bn_after = before.get_layer("bn0").get_weights(), after.get_layer("bn0").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(bn_before, bn_after))
    assert not np.allclose(before.get_layer("conv0").get_weights()[0],
                           after.get_layer("conv0").get_weights()[0])
    meta = read_meta(tuned / MODEL_FILE)
    assert meta["arch"] == "happymodel" and meta["init"] == str(base / MODEL_FILE)
    assert meta["preprocess"]["crop"] == "frame" and meta["training"]["freeze_bn"] is True


@pytest.mark.slow
def test_door_frames_are_gated_and_face_cropped_before_training(happy_house_h5, tmp_path):
    """A house's whole frames go through the door's own gate; a frame with no face is
    skipped and counted, never trained on."""
    import cv2
    import numpy as np

    from happyhouse.daemon.datasets import load_dataset

    frames = load_dataset(happy_house_h5, size=None)
    for name, label in (("happy", 1), ("not_happy", 0)):
        (tmp_path / "house" / name).mkdir(parents=True)
        for i in np.flatnonzero(frames.labels == label)[:5]:
            cv2.imwrite(str(tmp_path / "house" / name / f"{i}.png"), frames.images[i][:, :, ::-1])
    cv2.imwrite(str(tmp_path / "house" / "not_happy" / "hall.png"), np.full((64, 64, 3), 128, np.uint8))
    out = tmp_path / "model"
    rc = cli.main(["--data", str(tmp_path / "house"), "--door-frames", "--arch", "happymodel",
                   "--epochs", "1", "--val-fraction", "0.4", "--quiet", "--out", str(out)])
    assert rc == 0
    meta = read_meta(out / MODEL_FILE)
    assert meta["training"]["door_frames"] is True
    assert meta["data"]["skipped"] >= 1  # the empty hall, at least
    assert meta["data"]["n"] + meta["data"]["skipped"] == 11


def test_door_frames_need_the_face_crop(genki_root, tmp_path, capsys):
    rc = cli.main(["--data", str(genki_root), "--door-frames", "--crop", "frame", "--limit", "2",
                   "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 2
    assert "crop mode 'face'" in capsys.readouterr().err


@pytest.mark.slow
def test_happymodel_trains_with_clahe_converts_and_a_fine_tune_inherits_it(genki_root, tmp_path):
    """The tutorial's network stays trainable and convertible under the new contract step."""
    import contextlib
    import io

    from happyhouse.convert.cli import main as convert_main
    from happyhouse.daemon.bundle import load_bundle

    base = tmp_path / "base"
    assert cli.main(["--data", str(genki_root), "--limit", "16", "--epochs", "1", "--quiet",
                     "--arch", "happymodel", "--normalize", "clahe", "--out", str(base)]) == 0
    assert read_meta(base / MODEL_FILE)["preprocess"]["normalize"] == "clahe"
    assert (base / "model_summary.txt").is_file() and (base / "architecture.png").is_file()
    tuned = tmp_path / "tuned"
    assert cli.main(["--data", str(genki_root), "--limit", "12", "--epochs", "1", "--quiet",
                     "--init", str(base / MODEL_FILE), "--out", str(tuned)]) == 0
    assert read_meta(tuned / MODEL_FILE)["preprocess"]["normalize"] == "clahe"
    with contextlib.redirect_stdout(io.StringIO()):
        assert convert_main([str(base / MODEL_FILE), "--calibration", str(genki_root),
                             "--out", str(tmp_path / "bundle"), "--max-drop", "100"]) == EXIT_UNARMED
    bundle = load_bundle(tmp_path / "bundle")
    # format 2 carries the light normalisation; this one's logit output makes it 3
    assert bundle.preprocess.normalize == "clahe" and bundle.meta["format_version"] == 3
    assert bundle.self_test(bundle.classifier()) >= 4


def test_meta_versions_name_the_backend_and_survive_one_that_cannot_say(monkeypatch):
    import builtins

    from happyhouse.train import trainer

    real_import = builtins.__import__

    def no_backend(name, *args, **kwargs):
        if name == "tensorflow":
            raise ImportError("not installed here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_backend)
    found = trainer.versions()
    assert found["backend"] == "tensorflow" and found["tensorflow"] == "unknown"
    assert found["keras"] and found["numpy"] and found["python"]


def test_batches_do_not_depend_on_worker_count_or_call_order(tmp_path):
    import numpy as np

    from happyhouse.train.trainer import TrainConfig, _batches

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (40, 64, 64, 3), dtype=np.uint8)
    labels = np.arange(40) % 2
    one = _batches(images, labels, TrainConfig(data=[], out=tmp_path, batch_size=8))
    four = _batches(images, labels, TrainConfig(data=[], out=tmp_path, batch_size=8, workers=4))
    assert four.workers == 4 and four.use_multiprocessing and not one.use_multiprocessing
    late = four[3]  # asked for first, as a worker may
    for i in range(len(one)):
        x, y = one[i]
        assert np.array_equal(x, four[i][0]) and np.array_equal(y, four[i][1])
    assert np.array_equal(late[0], one[3][0])
    one.on_epoch_end()
    assert not np.array_equal(one[0][0], four[0][0])  # a new epoch: new order and draws


def test_cover_hides_mouths_in_the_batches_and_relabels_them(tmp_path):
    """--cover: a fraction of a batch's smiles come out relabelled not smiling, and only
    a run with covers does that."""
    import numpy as np

    from happyhouse.train.trainer import TrainConfig, _batches, augmentation

    images = np.random.default_rng(0).integers(0, 255, (64, 64, 64, 3), dtype=np.uint8)
    labels = np.ones(64, int)
    covered = TrainConfig(data=[], out=tmp_path, batch_size=64, augment="door-framing", cover=0.3)
    assert augmentation(covered).cover == 0.3 and augmentation(covered).zoom_out == 0.25
    _, y = _batches(images, labels, covered)[0]
    assert 5 <= int((y == 0).sum()) <= 35 and set(y.tolist()) <= {0.0, 1.0}
    _, bare = _batches(images, labels, TrainConfig(data=[], out=tmp_path, batch_size=64,
                                                   augment="door-framing"))[0]
    assert (bare == 1).all()
    only = TrainConfig(data=[], out=tmp_path, batch_size=64, augment="door-framing", cover=0.3,
                       cover_smiles=False)
    assert augmentation(only).cover_smiles is False
    _, kept = _batches(images, labels, only)[0]
    assert (kept == 1).all()  # every face a smile: none may be covered, none relabelled


@pytest.mark.parametrize("argv, message", [
    (["--cover", "-0.1"], "covered fraction (--cover) must be in [0, 1)"),
    (["--cover", "1"], "covered fraction (--cover) must be in [0, 1)"),
    (["--cover", "0.1", "--augment", "none"], "needs an --augment preset"),
    (["--cover-not-smiling-only"], "give --cover too"),
])
def test_a_cover_fraction_that_cannot_be_is_one_line(argv, message, tmp_path, capsys):
    rc = cli.main(["--data", str(tmp_path), "--out", str(tmp_path / "m"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_workers_and_time_limit_train_and_stop_after_the_first_epoch(genki_root, tmp_path):
    out = tmp_path / "model"
    rc = cli.main(["--data", str(genki_root), "--limit", "16", "--epochs", "5",
                   "--batch-size", "8", "--workers", "2", "--time-limit", "0", "--quiet",
                   "--augment", "door-strong", "--arch", "smilenet-wide", "--out", str(out)])
    assert rc == 0
    meta = read_meta(out / MODEL_FILE)
    assert meta["training"]["epochs_run"] == 1 and meta["training"]["time_limit"] == 0
    assert meta["arch"] == "smilenet-wide" and meta["training"]["augment"]["preset"] == "door-strong"


def test_a_label_audit_relabels_and_drops_training_faces_only(genki_root, tmp_path):
    """--label-audit: the audit's verdicts reach the training part; validation keeps the
    datasets' labels (the checkpoint and threshold are chosen on them) and the split is unmoved."""
    import numpy as np

    from happyhouse.train.data import load_training_data, stratified_split
    from happyhouse.train.audits import AUDIT_FORMAT, face_name

    data = load_training_data([str(genki_root)], Preprocess(), 12)
    tr, va = stratified_split(data.labels, 0.15, 1)
    names = [face_name(i) for i in data.ids]
    neg = [i for i in tr if data.labels[i] == 0]
    pos = [i for i in tr if data.labels[i] == 1]
    audit = {names[neg[0]]: "S", names[pos[0]]: "N", names[neg[1]]: "X", names[neg[2]]: "?",
             names[va[0]]: "S" if data.labels[va[0]] == 0 else "N"}
    path = tmp_path / "audit.json"
    path.write_text(json.dumps({"format": AUDIT_FORMAT, "faces": audit}))
    out = tmp_path / "model"
    assert cli.main(["--data", str(genki_root), "--limit", "12", "--epochs", "1", "--quiet",
                     "--arch", "happymodel", "--label-audit", str(path), "--out", str(out)]) == 0
    meta = read_meta(out / MODEL_FILE)
    got = meta["label_audit"]
    assert (got["relabelled"], got["to_happy"], got["to_not_happy"], got["left_out"]) == (2, 1, 1, 1)
    assert got["files"][0]["file"] == "audit.json" and len(got["files"][0]["sha256"]) == 64
    assert meta["split"]["n_train"] == len(tr) - 1 and meta["split"]["n_val"] == len(va)
    split = json.loads((out / "split.json").read_text())
    assert sorted(face_name(i) for i in split["validation_ids"]) == sorted(names[i] for i in va)
    metrics = json.loads((out / "metrics.json").read_text())
    # the validation face the audit names is scored with its dataset label
    assert metrics["confusion_matrix"]["tp"] + metrics["confusion_matrix"]["fn"] == \
        int(np.sum(data.labels[va] == 1))


def test_a_source_cap_thins_one_sources_training_faces_and_keeps_the_split(genki_root, smile_root,
                                                                          tmp_path, capsys):
    """--source-cap: at most N training faces of one source; the validation faces, the other
    source's faces and the record of what was kept are as the option says."""
    from happyhouse.train.data import load_training_data, stratified_split

    data = load_training_data([str(genki_root), str(smile_root)], Preprocess(), 12)
    tr, va = stratified_split(data.labels, 0.15, 1)
    out = tmp_path / "model"
    assert cli.main(["--data", str(genki_root), "--data", str(smile_root), "--limit", "12",
                     "--epochs", "1", "--quiet", "--arch", "happymodel",
                     "--source-cap", f"{smile_root.name}=5", "--out", str(out)]) == 0
    meta = read_meta(out / MODEL_FILE)
    genki_train = sum(1 for i in tr if genki_root.name in data.ids[i])
    assert meta["source_caps"] == {"caps": {smile_root.name: 5}, "seed": 0,
                                   "training_faces_before": len(tr), "training_faces": genki_train + 5}
    assert meta["split"]["n_train"] == genki_train + 5 and meta["split"]["n_val"] == len(va)
    split = json.loads((out / "split.json").read_text())
    assert sorted(split["validation_ids"]) == sorted(data.ids[i] for i in va)
    capsys.readouterr()
    assert cli.main(["--data", str(genki_root), "--limit", "12", "--epochs", "1", "--quiet",
                     "--source-cap", "smilesmiled", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SOURCE=N" in err and not (tmp_path / "x").exists()


def test_split_seed_changes_the_training_seed_and_keeps_the_split(genki_root, tmp_path):
    """--split-seed: another training seed on the same validation faces (how much one seed moves)."""
    from happyhouse.train.data import load_training_data, stratified_split
    from happyhouse.train.audits import face_name

    data = load_training_data([str(genki_root)], Preprocess(), 12)
    _, va = stratified_split(data.labels, 0.15, 1)
    runs = {}
    for name, flags in (("seed2", ["--seed", "2", "--split-seed", "1"]), ("seed1", ["--seed", "1"])):
        out = tmp_path / name
        assert cli.main(["--data", str(genki_root), "--limit", "12", "--epochs", "1", "--quiet",
                         "--arch", "happymodel", "--out", str(out)] + flags) == 0
        runs[name] = (json.loads((out / "split.json").read_text())["validation_ids"],
                      read_meta(out / MODEL_FILE))
    assert sorted(map(face_name, runs["seed2"][0])) == sorted(face_name(data.ids[i]) for i in va)
    assert sorted(runs["seed2"][0]) == sorted(runs["seed1"][0])
    assert runs["seed2"][1]["split"]["seed"] == 1 and runs["seed2"][1]["training"]["seed"] == 2
    _, va2 = stratified_split(data.labels, 0.15, 2)
    assert sorted(va2) != sorted(va)  # a seed of 2 alone would have split differently


def test_audit_training_part_leaves_validation_labels_alone():
    import numpy as np

    from happyhouse.train.audits import audit_training_part

    names = ["a/not_happy/0.jpg", "a/not_happy/1.jpg", "a/happy/2.jpg", "a/not_happy/3.jpg"]
    labels = np.array([0, 0, 1, 0])
    audit = {"a/not_happy/0.jpg": "S", "a/not_happy/1.jpg": "X", "a/not_happy/3.jpg": "S"}
    new, train, summary = audit_training_part(names, labels, np.array([0, 1, 2]), audit)
    assert new.tolist() == [1, 0, 1, 0]  # face 3 is a validation face: untouched
    assert train.tolist() == [0, 2]
    assert summary["relabelled"] == 1 and summary["left_out"] == 1


@pytest.mark.parametrize("where", ["--out", "--report"])
def test_an_unwritable_output_folder_is_one_line_before_the_data_loads(where, genki_root, tmp_path,
                                                                       capsys, monkeypatch):
    """It was a FileNotFoundError traceback (exit 1) after every training image had loaded."""
    from fakes import forbid
    from happyhouse.train import trainer

    forbid(monkeypatch, trainer, ("load_training_data", "load_door_frames"), "the data loaded")
    (tmp_path / "a_file").write_text("not a folder")
    folders = {"--out": tmp_path / "o", "--report": tmp_path / "r"}
    folders[where] = tmp_path / "a_file" / "x"
    rc = cli.main(["--data", str(genki_root), "--limit", "4", "--quiet",
                   "--out", str(folders["--out"]), "--report", str(folders["--report"])])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"({where}) {folders[where]} cannot be created" in err


def test_a_run_refused_for_its_data_leaves_no_output_folder(tmp_path, capsys):
    out = tmp_path / "new" / "model"
    rc = cli.main(["--data", str(tmp_path / "nowhere"), "--out", str(out), "--quiet"])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_a_missing_init_model_is_one_line_before_the_data_is_read(tmp_path, capsys, monkeypatch):
    """Two "its training metadata cannot be read" warnings and 2,800 faces loaded came
    before "model /nonexist.keras does not exist"."""
    from happyhouse.train import trainer

    monkeypatch.setattr(trainer, "load_training_data", lambda *a: pytest.fail("data read"))
    rc = cli.main(["--data", str(tmp_path), "--init", str(tmp_path / "gone.keras"),
                   "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().splitlines() == [
        f"happyhouse-train: error: --init model {tmp_path / 'gone.keras'} does not exist"], err


@pytest.mark.parametrize("module, argv, said", [
    ("happyhouse.train.cli", ["--data", "{tmp}", "--init", "{tmp}/model", "--out", "{tmp}/o"],
     "--init model {tmp}/model is a folder, not a file: give the file in it"),
    ("happyhouse.convert.cli", ["{tmp}/model", "--calibration", "{tmp}", "--out", "{tmp}/b"],
     "model {tmp}/model is a folder, not a file"),
    ("happyhouse.convert.cli", ["{tmp}/model/model.keras", "--calibration", "{tmp}", "--out",
                                "{tmp}/b", "--metadata", "{tmp}/model"],
     "training metadata {tmp}/model is a folder, not a file"),
])
def test_a_folder_given_for_a_file_is_said_so(tmp_path, capsys, module, argv, said):
    """It said "does not exist" of a folder that was right there."""
    import importlib

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.keras").write_text("weights")
    rc = importlib.import_module(module).main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2 and said.format(tmp=tmp_path) in err, err


def test_the_time_limit_holds_when_the_wall_clock_steps_back(monkeypatch):
    """Read in the code by a long-run probe: --time-limit measured the wall clock, so NTP
    stepping a clock that booted ahead back by an hour gave training an hour more (and the
    device script's budget with it)."""
    import time as time_module
    from types import SimpleNamespace

    from happyhouse.train import trainer

    wall = iter(range(10_000_000, 0, -3600))  # every reading an hour earlier
    monkeypatch.setattr(time_module, "time", lambda: float(next(wall)))
    ticks = iter([100.0, 100.5, 161.0])
    monkeypatch.setattr(time_module, "monotonic", lambda: next(ticks))
    limit = trainer.time_limit(60)
    limit.set_model(SimpleNamespace(stop_training=False))
    limit.on_train_begin()
    limit.on_epoch_end(0)
    assert limit.model.stop_training is False  # 0.5 s in
    limit.on_epoch_end(1)
    assert limit.model.stop_training is True  # 61 s in, whatever the wall clock said
