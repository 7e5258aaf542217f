"""python -m happyhouse.convert.int8_speed: a bad model or count is one line and exit 2
before anything is converted, Ctrl-C is 130 and one line, and --train-default is honoured
beside --model. No model is converted or timed here."""

import pytest

from happyhouse.convert import int8_speed
from fakes import one_error_line

PROG = "happyhouse-convert-int8-speed"


@pytest.fixture
def no_models(monkeypatch):
    """variants() replaced: returns the argument sets it was asked for (nothing converted)."""
    asked = []

    def variants(args):
        asked.append(args)
        return []

    monkeypatch.setattr(int8_speed, "variants", variants)
    return asked


def _one_error_line(capsys, *words):
    one_error_line(capsys.readouterr().err, PROG, *words)


def test_a_missing_model_is_one_line(tmp_path, capsys):
    """It was an uncaught ModelError traceback."""
    missing = tmp_path / "nonexistent.keras"
    assert int8_speed.main(["--model", str(missing)]) == 2
    _one_error_line(capsys, str(missing), "does not exist")


@pytest.mark.parametrize("flag", ["--rounds", "--invokes", "--threads"])
def test_a_count_below_one_is_refused_before_any_conversion(flag, no_models, capsys):
    """--rounds 0 printed nan for every row."""
    assert int8_speed.main([flag, "0"]) == 2
    _one_error_line(capsys, f"{flag} must be " + ("1 to 256" if flag == "--threads" else "at least 1")
                    + ", got 0")
    assert no_models == []


def test_train_default_is_timed_beside_a_given_model(monkeypatch, tmp_path):
    """--model M --train-default dropped the train-default row silently."""
    from happyhouse.convert import quantize
    from happyhouse.train import models

    monkeypatch.setattr(quantize, "load_keras_model", lambda path: f"keras {path}")
    monkeypatch.setattr(models, "build", lambda arch: f"built {arch}")
    args = int8_speed.argparse.Namespace(model=str(tmp_path / "m.keras"), train_default=True,
                                         sweep=False)
    rows = int8_speed.variants(args)
    assert [model for _, model, _ in rows] == [f"keras {tmp_path / 'm.keras'}",
                                              f"built {models.DEFAULT_ARCH}"]


def test_ctrl_c_is_130_and_one_line(monkeypatch, capsys):
    def ctrl_c(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(int8_speed, "variants", ctrl_c)
    try:
        code = int8_speed.main([])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped as a traceback")
    assert code == 130
    assert capsys.readouterr().err == f"{PROG}: interrupted by SIGINT (Ctrl-C)\n"
