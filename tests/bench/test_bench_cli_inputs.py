"""happyhouse-bench --keras: a model given by name that is not there is a config error
(exit 2, one line), not a run that exits 0 with null Keras rows."""

import pytest

from happyhouse.daemon.errors import ConfigError


class _Bundle:
    meta = {"training": {"model_file": "models/general/model.keras", "model_sha256": "0" * 64}}


def test_an_explicit_keras_that_is_not_a_file_is_a_config_error(tmp_path):
    from happyhouse.bench.model import find_keras

    with pytest.raises(ConfigError, match="--keras .* does not exist"):
        find_keras(_Bundle(), str(tmp_path / "nonexistent.keras"))
    with pytest.raises(ConfigError, match="is not a file"):
        find_keras(_Bundle(), str(tmp_path))


def test_the_bench_exits_2_with_one_line_for_a_missing_keras(data_root, tmp_path, capsys):
    from happyhouse.bench.cli import main

    missing = tmp_path / "nonexistent.keras"
    skip = [a for section in ("stages", "pipeline", "age", "daemon", "page")
            for a in ("--skip", section)]
    assert main(["--keras", str(missing), "--json", *skip]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"happyhouse-bench: error: --keras {missing} does not exist\n"
