"""The desktop analysis tools (framing, geometry, label_audit): an output they cannot write
is one line and exit 2 before the work, not a traceback after it."""

from pathlib import Path

import pytest


@pytest.mark.parametrize("tool", ["framing --json", "geometry --out", "label_audit sheets --out",
                                  "label_audit score --json"])
def test_an_output_that_cannot_be_written_is_one_line_before_the_work(tool, tmp_path, capsys,
                                                                      monkeypatch):
    """Each was a FileNotFoundError traceback after the whole run (minutes of scoring)."""
    from fakes import forbid
    from happyhouse.train import data, framing, geometry, label_audit

    forbid(monkeypatch, data, ("load_training_data",), "the work started")
    model = Path(__file__).resolve().parents[2] / "models" / "general" / "model.keras"
    (tmp_path / "a_file").write_text("not a folder")
    bad = tmp_path / "a_file" / "x"
    given = ["--model", str(model), "--data", str(tmp_path)]
    runs = {"framing --json": lambda: framing.main(given + ["--json", str(bad / "f.json")]),
            "geometry --out": lambda: geometry.main(given + ["--out", str(bad)]),
            "label_audit sheets --out": lambda: label_audit.main(["sheets", *given, "--out", str(bad)]),
            "label_audit score --json": lambda: label_audit.main(
                ["score", *given, "--audit", str(tmp_path / "a.json"), "--json", str(bad / "s.json")])}
    assert runs[tool]() == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be created" in err and str(bad) in err, err


def test_a_negative_seed_for_the_review_sheets_is_one_line_before_the_work(tmp_path, capsys,
                                                                         monkeypatch):
    """numpy refuses a negative seed: a traceback after the faces were scored, before."""
    from fakes import forbid
    from happyhouse.train import data, label_audit

    forbid(monkeypatch, data, ("load_training_data",), "the work started")
    model = Path(__file__).resolve().parents[2] / "models" / "general" / "model.keras"
    out = tmp_path / "sheets"
    assert label_audit.main(["sheets", "--model", str(model), "--data", str(tmp_path),
                             "--out", str(out), "--seed", "-1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--seed" in err and "from 0 to" in err, err
    assert not out.exists()


@pytest.mark.parametrize("given", ["--review", "--verdicts"])
def test_label_audit_record_never_writes_over_its_own_inputs(tmp_path, capsys, given):
    """--out review.json (or verdicts.txt) replaced the key to the verdicts, or the
    reviewer's filled-in verdicts, with the audit: exit 0."""
    from happyhouse.train import label_audit

    review, verdicts = tmp_path / "review.json", tmp_path / "verdicts.txt"
    review.write_text('{"faces": []}')
    verdicts.write_text("0 S\n")
    out = review if given == "--review" else verdicts
    rc = label_audit.main(["record", "--review", str(review), "--verdicts", str(verdicts),
                           "--out", str(out)])
    assert rc == 2 and f"is the {given} file" in capsys.readouterr().err
    assert review.read_text() == '{"faces": []}' and verdicts.read_text() == "0 S\n"


def test_a_results_file_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """arch_bench killed during its write truncated the earlier results to the first row."""
    import os

    from happyhouse.daemon.errors import DataError
    from happyhouse.train.arch_bench import write_results

    out = tmp_path / "results.json"
    write_results(str(out), [{"name": "a"}, {"name": "b"}])
    before = out.read_text()

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(DataError, match="cannot write --out .* No space left on device"):
        write_results(str(out), [{"name": "a"}])
    assert out.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


@pytest.mark.parametrize("module, argv, flag", [
    ("happyhouse.daemon.demo", ["--data", "faces", "--out", ""], "--out"),
    ("happyhouse.convert.int8_speed", ["--model", ""], "--model"),
    ("happyhouse.bench.cli", ["--model", ""], "--model"),
    ("happyhouse.bench.cli", ["--keras", ""], "--keras"),
    ("happyhouse.train.arch_bench", ["--out", ""], "--out"),
    ("happyhouse.train.soup", ["--model", "", "--data", "d", "--out", "o"], "--model"),
    ("happyhouse.train.geometry", ["--data", "d", "--model", "m", "--out", ""], "--out"),
    ("happyhouse.train.house_cv", ["--out", ""], "--out"),
    ("happyhouse.train.label_audit", ["record", "--review", "", "--verdicts", "v", "--out", "o"],
     "--review"),
])
def test_an_empty_path_is_refused_by_every_analysis_tool(capsys, module, argv, flag):
    """demo --out "" wrote into the current folder; int8_speed and bench --model "" measured
    another model without a word; arch_bench --out "" wrote nothing."""
    import importlib

    with pytest.raises(SystemExit) as stop:
        importlib.import_module(module).main(argv)
    assert stop.value.code == 2 and f"argument {flag}: an empty path" in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    (["sheets", "--picks", "1", "-3", "1", "1"], "--picks must be four counts of 0 or more"),
    (["sheets", "--picks", "-5", "1", "1", "1"], "--picks must be four counts of 0 or more"),
    (["score", "--audit", "a.json", "--max-false-open", "nan"], "--max-false-open must be in [0, 1)"),
    (["score", "--audit", "a.json", "--max-false-open", "-3"], "--max-false-open must be in [0, 1)"),
])
def test_label_audit_refuses_numbers_it_cannot_use(tmp_path, capsys, monkeypatch, argv, said):
    from fakes import forbid
    from happyhouse.train import data, label_audit

    forbid(monkeypatch, data, ("load_training_data",), "the work started")
    model = Path(__file__).resolve().parents[2] / "models" / "general" / "model.keras"
    argv = [argv[0], "--model", str(model), "--data", str(tmp_path), *argv[1:]]
    if argv[0] == "sheets":
        argv += ["--out", str(tmp_path / "sheets")]
    assert label_audit.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err, err


@pytest.mark.parametrize("verdict", [["S"], {"a": 1}, 3])
def test_an_audit_whose_verdicts_are_not_letters_is_one_data_error(tmp_path, verdict):
    """"unhashable type: 'list'", a traceback in label_audit score and train --label-audit."""
    import json

    from happyhouse.daemon.errors import DataError
    from happyhouse.train.audits import AUDIT_FORMAT, load_audit

    path = tmp_path / "audit.json"
    path.write_text(json.dumps({"format": AUDIT_FORMAT, "faces": {"genki/happy/a.jpg": verdict}}))
    with pytest.raises(DataError, match="not a .* file with verdicts in"):
        load_audit(path)


def test_int8_speed_refuses_more_threads_than_litert_takes(capsys):
    """--threads 99999999999: a TypeError from LiteRT with 420 KB of model bytes on stderr."""
    from happyhouse.convert import int8_speed

    assert int8_speed.main(["--threads", "99999999999", "--rounds", "1", "--invokes", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--threads must be 1 to 256" in err, err


def test_label_audit_sheets_never_replaces_a_review_in_progress(tmp_path, capsys, monkeypatch):
    """A re-run replaced the reviewer's filled-in verdicts.txt and review.json without a
    word, and left the last round's sheet-00..04.png beside the new sheet."""
    from fakes import forbid
    from happyhouse.train import data, label_audit

    forbid(monkeypatch, data, ("load_training_data",), "the work started")
    review = tmp_path / "review"
    review.mkdir()
    (review / "verdicts.txt").write_text("0 S\n1 N\n")
    model = Path(__file__).resolve().parents[2] / "models" / "general" / "model.keras"
    assert label_audit.main(["sheets", "--model", str(model), "--data", str(tmp_path),
                             "--out", str(review)]) == 2
    assert "is not empty (a review in progress?)" in capsys.readouterr().err
    assert (review / "verdicts.txt").read_text() == "0 S\n1 N\n"
