"""Bad input to happyhouse-convert's own flags: one line naming the flag, exit 2, nothing written."""

import pytest

from happyhouse.convert.cli import main


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_notes_that_are_not_utf8_are_one_line_before_the_model_is_read(tmp_path, capsys, encoding):
    # before: UnicodeDecodeError's traceback (only OSError was caught)
    notes = tmp_path / "notes.md"
    notes.write_text("Trained in the café's back room\n", encoding=encoding)
    rc = main([str(tmp_path / "model.keras"), "--calibration", str(tmp_path),
               "--out", str(tmp_path / "out"), "--notes", str(notes)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "--notes" in err[0] and "notes.md is not UTF-8 text" in err[0]
    assert not (tmp_path / "out").exists()
