"""python -m happyhouse.train.arch_bench: a wrong --only name or --out path is one line
before any candidate is timed; Ctrl-C is 130 and one line. Nothing is built or timed here."""

import json

import pytest

from happyhouse.train import arch_bench
from fakes import one_error_line

PROG = "happyhouse-train-arch-bench"


@pytest.fixture
def timed(monkeypatch):
    """Two stand-in candidates; returns the names bench() was asked to time."""
    asked = []

    def bench(name, build):
        asked.append(name)
        return {"name": name, "params": 1, "mmacs": 0.1, "float_ms": 1.0, "int8_ms": 0.5,
                "int8_pertensor_ms": 0.6, "speedup": 2.0, "speedup_pertensor": 1.7,
                "int8_dynamic_batch_ms": 0.7, "float_no_xnnpack_ms": 2.0,
                "int8_no_xnnpack_ms": 1.5, "int8_bytes": 2048, "int8_ops": ["CONV_2D"]}

    monkeypatch.setattr(arch_bench, "_candidates", lambda: {"small": None, "large": None})
    monkeypatch.setattr(arch_bench, "bench", bench)
    return asked


def _one_error_line(capsys, *words):
    one_error_line(capsys.readouterr().err, PROG, *words)


def test_an_unknown_only_name_is_refused_before_any_timing(timed, capsys):
    """--only nosuch was a KeyError traceback."""
    assert arch_bench.main(["--only", "small", "nosuch"]) == 2
    _one_error_line(capsys, "nosuch", "small, large")
    assert timed == []


@pytest.mark.parametrize("case", ["no-folder", "a-folder", "proc"])
def test_an_out_that_cannot_be_written_is_refused_before_any_timing(case, timed, tmp_path,
                                                                    capsys):
    """--out /proc/nope/ab.json failed with a traceback after the first candidate's timing."""
    out = {"no-folder": tmp_path / "nope" / "ab.json", "a-folder": tmp_path,
           "proc": "/proc/nope/ab.json"}[case]
    assert arch_bench.main(["--only", "small", "--out", str(out)]) == 2
    _one_error_line(capsys, "--out")
    assert timed == []


def test_results_are_written_after_each_candidate(timed, tmp_path, capsys):
    out = tmp_path / "ab.json"
    assert arch_bench.main(["--out", str(out)]) == 0
    assert [row["name"] for row in json.loads(out.read_text())] == ["small", "large"]
    assert timed == ["small", "large"]


def test_ctrl_c_is_130_and_one_line(timed, monkeypatch, capsys):
    def ctrl_c(name, build):
        raise KeyboardInterrupt

    monkeypatch.setattr(arch_bench, "bench", ctrl_c)
    try:
        code = arch_bench.main(["--only", "small"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped as a traceback")
    assert code == 130
    assert capsys.readouterr().err == f"{PROG}: interrupted by SIGINT (Ctrl-C)\n"
