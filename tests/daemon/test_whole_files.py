"""One way to write a results file, table or snapshot whole or not at all
(``filesafety.write_file_whole``), shared by every tool that writes one."""

import pytest

from happyhouse.daemon.errors import DataError


def test_a_whole_file_replaces_its_target_or_leaves_it_as_it_was(tmp_path, monkeypatch):
    from happyhouse.daemon import filesafety

    target = tmp_path / "results.csv"
    target.write_text("the last good table\n")
    target.chmod(0o640)

    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(filesafety.os, "replace", full)
    with pytest.raises(DataError, match=r"cannot write --per-image .*results.csv: No space left"):
        filesafety.write_file_whole(target, b"half", "--per-image")
    monkeypatch.undo()
    assert target.read_text() == "the last good table\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv"]  # no temporary left
    filesafety.write_file_whole(target, b"new\n", "--per-image")
    assert target.read_bytes() == b"new\n" and (target.stat().st_mode & 0o777) == 0o640


def test_a_new_whole_file_is_readable_by_others_not_private_like_its_temporary(tmp_path):
    # mkstemp makes rw-------: a snapshot or report handed to a technician's viewer or the
    # web server's user could not be read
    from happyhouse.daemon import filesafety

    for name, write in (("a.json", lambda p: filesafety.write_text_file(p, "{}", "--json")),
                        ("b.bin", lambda p: filesafety.write_file_whole(p, b"x", "it"))):
        write(tmp_path / name)
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
