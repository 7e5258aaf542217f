"""The validation split's label audit (issue 15): blind sheets, verdicts, audited figures."""

import json

import numpy as np
import pytest

from happyhouse.daemon.errors import DataError
from happyhouse.train import audits
from happyhouse.train import label_audit as la


def test_a_face_is_named_by_dataset_class_and_file_not_by_this_machines_folders():
    assert audits.face_name("/work/shared/datasets/smilesmiled/not_happy/6630.jpg") == \
        "smilesmiled/not_happy/6630.jpg"
    assert audits.face_name("../shared/datasets/genki4k-train/happy/file1.jpg") == \
        "genki4k-train/happy/file1.jpg"
    with pytest.raises(DataError):
        audits.face_name("x.jpg")


def test_review_picks_the_disputed_faces_and_random_checks_of_each_class_shuffled():
    rng = np.random.default_rng(0)
    labels = np.array([0] * 50 + [1] * 30)
    scores = rng.random(80)
    picks = la.pick_for_review(labels, scores, (5, 4, 3, 2), seed=1)
    by = {}
    for i, why in picks:
        by.setdefault(why, []).append(i)
    neg, pos = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    assert sorted(by["top-not-happy"]) == sorted(neg[np.argsort(-scores[neg])][:5].tolist())
    assert sorted(by["low-happy"]) == sorted(pos[np.argsort(scores[pos])][:3].tolist())
    assert len(by["random-not-happy"]) == 4 and len(by["random-happy"]) == 2
    assert all(labels[i] == 0 for i in by["random-not-happy"] + by["top-not-happy"])
    assert not set(by["random-not-happy"]) & set(by["top-not-happy"])
    assert len({i for i, _ in picks}) == 14
    # shuffled: the reviewer cannot tell the disputed faces from the checks by position
    order = [why for _, why in picks]
    assert order != sorted(order, key=["top-not-happy", "random-not-happy", "low-happy",
                                       "random-happy"].index)
    assert la.pick_for_review(labels, scores, (5, 4, 3, 2), seed=1) == picks


def test_sheets_hold_every_picked_face_numbered_on_tiles(genki_root, tmp_path):
    import cv2

    from happyhouse.daemon.datasets import load_dataset

    faces = load_dataset(genki_root, size=64, limit=23).images
    paths = la.draw_sheets(faces[:45], tmp_path)
    assert [p.name for p in paths] == ["sheet-00.png", "sheet-01.png"]
    first, second = (cv2.imread(str(p)) for p in paths)
    assert first.shape == (5 * la.TILE, la.COLUMNS * la.TILE, 3)
    assert second.shape == (la.TILE, la.COLUMNS * la.TILE, 3)  # 5 faces, one row
    # the face itself is on its tile (away from the number in its corner)
    tile = first[la.TILE // 2:la.TILE, :la.TILE].astype(int)
    face = cv2.resize(cv2.cvtColor(faces[0], cv2.COLOR_RGB2BGR), (la.TILE, la.TILE),
                      interpolation=cv2.INTER_CUBIC)[la.TILE // 2:].astype(int)
    assert np.abs(tile - face).mean() < 2
    assert not second[:, 5 * la.TILE:].any()  # the empty places stay black
    assert [p.name for p in la.draw_sheets(faces[:3], tmp_path, name="disputed")] == ["disputed.png"]


REVIEW = {"format": la.REVIEW_FORMAT, "faces": [
    {"number": 0, "face": "a/not_happy/1.jpg", "label": 0, "picked": "top-not-happy"},
    {"number": 1, "face": "a/not_happy/2.jpg", "label": 0, "picked": "random-not-happy"},
    {"number": 2, "face": "a/happy/3.jpg", "label": 1, "picked": "low-happy"},
    {"number": 3, "face": "a/happy/4.jpg", "label": 1, "picked": "low-happy"}]}


def test_verdicts_are_read_per_face_and_a_face_left_out_stays_unsure():
    got = la.read_verdicts("# header\n0 s\n2 X  # a neck\n\n3 n\n", REVIEW)
    assert got == {"a/not_happy/1.jpg": "S", "a/not_happy/2.jpg": "?",
                   "a/happy/3.jpg": "X", "a/happy/4.jpg": "N"}


@pytest.mark.parametrize("text, says", [
    ("0 Y\n", "not 'NUMBER VERDICT'"),
    ("zero S\n", "not 'NUMBER VERDICT'"),
    ("\u00b2 S\n", "not 'NUMBER VERDICT'"),  # isdigit() passes it, int() did not
    ("9 S\n", "no face number 9"),
    ("1 S\n1 N\n", "has a verdict already"),
])
def test_a_bad_verdict_line_is_refused_with_its_line(text, says):
    with pytest.raises(DataError, match=says):
        la.read_verdicts(text, REVIEW)


def test_the_audit_relabels_smiles_and_neutrals_leaves_out_non_faces_and_keeps_unsure():
    names = ["a/not_happy/1.jpg", "a/not_happy/2.jpg", "a/happy/3.jpg", "a/happy/4.jpg", "b/happy/5.jpg"]
    audit = {"a/not_happy/1.jpg": "S", "a/not_happy/2.jpg": "?", "a/happy/3.jpg": "X",
             "a/happy/4.jpg": "N"}
    labels, keep = audits.apply_audit(names, np.array([0, 0, 1, 1, 1]), audit)
    assert labels.tolist() == [1, 0, 1, 0, 1]
    assert keep.tolist() == [True, True, False, True, True]


def test_audited_figures_move_when_the_highest_scoring_negatives_were_smiles():
    rng = np.random.default_rng(3)
    n_neg, n_pos = 400, 200
    scores = np.concatenate([rng.uniform(0.0, 0.6, n_neg), rng.uniform(0.4, 1.0, n_pos)])
    labels = np.array([0] * n_neg + [1] * n_pos)
    # ten "not happy" faces the model scores highest: in truth smiles
    wrong = rng.choice(n_neg, 10, replace=False)
    scores[wrong] = rng.uniform(0.95, 1.0, 10)
    names = [f"s/{'happy' if y else 'not_happy'}/{i}.jpg" for i, y in enumerate(labels)]
    audit = {names[i]: "S" for i in wrong}
    got = la.audited_figures(names, labels, scores, audit, 0.01, bundle_threshold=0.9)
    assert got["relabelled"] == 10 and got["left_out"] == 0 and got["reviewed_in_split"] == 10
    before, after = got["dataset_labels"], got["audited_labels"]
    assert after["roc_auc"] > before["roc_auc"]
    assert after["threshold_for_max_false_open"] < before["threshold_for_max_false_open"]
    assert after["recall"] > before["recall"] and after["false_open_rate"] <= 0.01
    assert before["at_bundle_threshold"]["false_opens"] == 10
    assert after["at_bundle_threshold"]["false_opens"] == 0


def test_record_then_load_round_trip_and_a_broken_audit_is_refused(tmp_path, capsys):
    review, verdicts, out = tmp_path / "review.json", tmp_path / "v.txt", tmp_path / "audit.json"
    review.write_text(json.dumps(REVIEW))
    verdicts.write_text("0 S\n2 X\n3 N\n")
    assert la.main(["record", "--review", str(review), "--verdicts", str(verdicts),
                    "--out", str(out), "--how", "test"]) == 0
    audit = audits.load_audit(out)
    assert audit == {"a/not_happy/1.jpg": "S", "a/not_happy/2.jpg": "?", "a/happy/3.jpg": "X",
                     "a/happy/4.jpg": "N"}
    data = json.loads(out.read_text())
    assert data["by_picked"]["low-happy"] == {"N": 1, "X": 1}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": audits.AUDIT_FORMAT, "faces": {"x": "maybe"}}))
    with pytest.raises(DataError):
        audits.load_audit(bad)
    verdicts.write_text("7 S\n")
    capsys.readouterr()
    assert la.main(["record", "--review", str(review), "--verdicts", str(verdicts),
                    "--out", str(tmp_path / "other.json")]) != 0
    err = capsys.readouterr().err
    assert "no face number 7" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "other.json").exists()


def test_the_committed_audit_is_readable_and_names_datasets_only():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "reports" / "label-audit" / "validation-audit.json"
    second = path.with_name("validation-audit-round2.json")
    assert len(audits.load_audit(path)) == 200 and len(audits.load_audit(second)) == 160
    audit = audits.load_audits([path, second])  # the rounds judged different faces
    assert len(audit) == 360
    assert all(name.split("/")[0] in ("genki4k-train", "smilesmiled") for name in audit)
    for p in (path, second):
        assert "/work" not in p.read_text() and "/tmp" not in p.read_text()


def test_the_committed_training_audits_name_training_faces_only():
    """Both training rounds load together (disjoint faces) and never name a validation face,
    which must keep the datasets' labels."""
    import json
    from pathlib import Path

    from happyhouse.convert.metadata import normalise_id

    root = Path(__file__).resolve().parents[2]
    first = root / "reports" / "label-audit" / "training-audit.json"
    second = first.with_name("training-audit-round2.json")
    assert len(audits.load_audit(first)) == 300 and len(audits.load_audit(second)) == 160
    audit = audits.load_audits([first, second])
    assert len(audit) == 460
    validation = {normalise_id(i) for i in
                  json.loads((root / "models" / "general" / "split.json").read_text())["validation_ids"]}
    assert validation and not validation & set(audit)
    for p in (first, second):
        assert json.loads(p.read_text())["part"] == "training"
        assert "/work" not in p.read_text() and "/tmp" not in p.read_text()


def test_sheets_record_and_score_end_to_end_on_the_general_models_validation_faces(
        genki_root, tmp_path, capsys):
    """The shipped general model's own split: sheets, a reviewer's verdicts, the audited figures."""
    import os
    from pathlib import Path

    model = Path(__file__).resolve().parents[2] / "models" / "general" / "model.keras"
    data = tmp_path / "genki4k-train"
    for name in ("happy", "not_happy"):
        (data / name).mkdir(parents=True)
        for f in sorted((genki_root / name).glob("*.jpg"))[:70]:
            os.symlink(f, data / name / f.name)
    sheets = tmp_path / "sheets"
    assert la.main(["sheets", "--model", str(model), "--data", str(data), "--out", str(sheets),
                    "--picks", "3", "2", "3", "2"]) == 0
    review = json.loads((sheets / "review.json").read_text())
    faces = review["faces"]
    assert len(faces) == 10 and [f["number"] for f in faces] == list(range(10))
    assert all(f["face"].startswith("genki4k-train/") for f in faces)
    assert (sheets / "sheet.png").is_file() and "/work" not in (sheets / "review.json").read_text()
    # the reviewer calls every picked "not happy" face smiling
    lines = [f"{f['number']} {'S' if f['label'] == 0 else '?'}" for f in faces]
    (sheets / "verdicts.txt").write_text("\n".join(lines) + "\n")
    audit = tmp_path / "audit.json"
    assert la.main(["record", "--review", str(sheets / "review.json"),
                    "--verdicts", str(sheets / "verdicts.txt"), "--out", str(audit)]) == 0
    capsys.readouterr()
    assert la.main(["score", "--model", str(model), "--data", str(data), "--audit", str(audit),
                    "--door-copies", "--json", str(tmp_path / "m.json")]) == 0
    got = json.loads((tmp_path / "m.json").read_text())
    assert got["relabelled"] == 5 and got["reviewed_in_split"] == 10
    before, after = got["dataset_labels"], got["audited_labels"]
    assert after["happy"] == before["happy"] + 5 and after["n"] == before["n"]
    assert 0.0 <= after["roc_auc"] <= 1.0 and "at_bundle_threshold" in after
    copies = got["door_copies"]
    assert set(copies) == {"door-shifted", "door-framed", "door-framed door-shifted"}
    assert copies["door-shifted"]["dataset_labels"]["n"] == before["n"]
    assert 0 < copies["door-framed"]["dataset_labels"]["n"] <= before["n"]
    assert got["door_threshold_audited"]["threshold"] >= 0.5


def test_the_door_threshold_holds_false_opens_in_every_copy():
    y = np.array([0] * 100 + [1] * 20)
    clean = np.concatenate([np.linspace(0.0, 0.45, 100), np.full(20, 0.99)])
    door = clean.copy()
    door[:3] = [0.80, 0.85, 0.90]  # at the door three not-smiling faces score high
    assert la.door_threshold([y], [clean]) == pytest.approx(0.5)
    # one false open of 100 is allowed: the threshold clears all but the highest
    assert la.door_threshold([y, y], [clean, door]) == pytest.approx(0.90)
    assert la.door_threshold([y], [door], 0.0) > 0.90


def test_door_copies_are_the_split_as_a_door_would_show_it(smile_root):
    from happyhouse.daemon.datasets import load_dataset

    faces = load_dataset(smile_root, size=64, limit=3).images
    copies = la.door_copies(faces)
    which, shifted = copies["door-shifted"]
    assert which.tolist() == list(range(len(faces))) and shifted.shape == faces.shape
    assert not np.array_equal(shifted, faces)
    which, framed = copies["door-framed"]
    assert 0 < len(which) <= len(faces) and framed.shape == (len(which), 64, 64, 3)


def test_score_refuses_a_model_without_its_split_in_one_line(tiny_model, small_faces, tmp_path, capsys):
    audit = tmp_path / "audit.json"
    audit.write_text(json.dumps({"format": audits.AUDIT_FORMAT, "faces": {}}))
    capsys.readouterr()
    rc = la.main(["score", "--model", str(tiny_model), "--data", str(small_faces),
                  "--audit", str(audit)])
    err = capsys.readouterr().err
    assert rc != 0 and "validation split" in err and len(err.strip().splitlines()) == 1


def test_review_rounds_merge_and_a_face_judged_twice_differently_is_refused(tmp_path):
    def audit(name, faces):
        path = tmp_path / name
        path.write_text(json.dumps({"format": audits.AUDIT_FORMAT, "faces": faces}))
        return path

    one = audit("one.json", {"a/happy/1.jpg": "N", "a/not_happy/2.jpg": "S"})
    two = audit("two.json", {"a/happy/3.jpg": "X", "a/happy/1.jpg": "N"})
    assert audits.load_audits([one, two]) == {"a/happy/1.jpg": "N", "a/not_happy/2.jpg": "S",
                                          "a/happy/3.jpg": "X"}
    clash = audit("clash.json", {"a/not_happy/2.jpg": "N"})
    with pytest.raises(DataError, match="a/not_happy/2.jpg is N here but S"):
        audits.load_audits([one, clash])


def test_a_second_round_does_not_pick_a_reviewed_face_again():
    labels = np.array([0] * 30 + [1] * 30)
    scores = np.linspace(0, 1, 60)
    first = la.pick_for_review(labels, scores, (4, 2, 4, 2), seed=0)
    reviewed = np.zeros(60, bool)
    reviewed[[i for i, _ in first]] = True
    second = la.pick_for_review(labels, scores, (4, 2, 4, 2), seed=0, reviewed=reviewed)
    assert not {i for i, _ in second} & {i for i, _ in first}
    top_first = {i for i, why in first if why == "top-not-happy"}
    top_second = {i for i, why in second if why == "top-not-happy"}
    # the next-highest scoring not-happy faces: deeper, below the first round's
    assert max(scores[list(top_second)]) <= min(scores[list(top_first)])


# ---- input handling: an output that is a folder, a review kept by hand, a verdicts file's encoding


def _record(tmp_path, review, verdicts: bytes, out=None):
    """``record`` on a review (an object, written as JSON) and raw verdicts bytes."""
    review_path, verdicts_path = tmp_path / "review.json", tmp_path / "verdicts.txt"
    review_path.write_text(json.dumps(review))
    verdicts_path.write_bytes(verdicts)
    return la.main(["record", "--review", str(review_path), "--verdicts", str(verdicts_path),
                    "--out", str(out or tmp_path / "audit.json")])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_an_output_that_is_a_folder_is_refused_before_the_work(tmp_path, capsys):
    # before: only the folder above was checked; writing then met IsADirectoryError (for
    # score, after all the scoring)
    (tmp_path / "folder").mkdir()
    assert _record(tmp_path, REVIEW, b"0 S\n", out=tmp_path / "folder") == 2
    assert "--out" in (line := _one_error_line(capsys)) and "is a folder" in line
    # score: refused before the model (here: none at all) or a face is read
    assert la.main(["score", "--model", str(tmp_path / "no-model.keras"), "--data", str(tmp_path),
                    "--audit", str(tmp_path / "no-audit.json"),
                    "--json", str(tmp_path / "folder")]) == 2
    assert "--json" in (line := _one_error_line(capsys)) and "is a folder" in line
    assert list((tmp_path / "folder").iterdir()) == []


@pytest.mark.parametrize("review, says", [
    ([], "not a happyhouse-label-review file"),
    ({"format": la.REVIEW_FORMAT, "faces": {"0": "a/happy/1.jpg"}}, "'faces' is not a list"),
    ({"format": la.REVIEW_FORMAT, "faces": [{"face": "a/happy/1.jpg"}]}, "face entry 0"),
    ({"format": la.REVIEW_FORMAT, "faces": [{"number": 0, "face": "a/happy/1.jpg"}, {"number": 1}]},
     "face entry 1"),
    ({"format": la.REVIEW_FORMAT, "faces": ["a/happy/1.jpg"]}, "face entry 0"),
])
def test_a_review_that_is_not_numbered_faces_is_one_line_naming_it(tmp_path, capsys, review, says):
    # before: AttributeError ('list' has no .get) or KeyError ('number')
    assert _record(tmp_path, review, b"0 S\n") == 2
    line = _one_error_line(capsys)
    assert "--review" in line and "review.json" in line and says in line, line
    assert not (tmp_path / "audit.json").exists()


@pytest.mark.parametrize("text", ["0 S\n2 X\n3 N\n", "# one line per face\n0 S\n2 X\n3 N\n"])
def test_verdicts_saved_with_a_byte_order_mark_are_read(tmp_path, capsys, text):
    # before: "'\ufeff0 S' is not 'NUMBER VERDICT'" (Notepad saves UTF-8 with a BOM)
    assert _record(tmp_path, REVIEW, text.encode("utf-8-sig")) == 0, capsys.readouterr().err
    assert audits.load_audit(tmp_path / "audit.json") == {
        "a/not_happy/1.jpg": "S", "a/not_happy/2.jpg": "?", "a/happy/3.jpg": "X",
        "a/happy/4.jpg": "N"}


def test_verdicts_that_are_not_utf8_say_so(tmp_path, capsys):
    assert _record(tmp_path, REVIEW, "0 S\n".encode("utf-16")) == 2
    line = _one_error_line(capsys)
    assert "--verdicts" in line and "is not UTF-8 text" in line, line
