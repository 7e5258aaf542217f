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


def test_a_new_whole_file_gets_what_the_umask_allows_not_its_temporary_s_private_mode(tmp_path):
    # mkstemp makes rw-------: a snapshot or report handed to a technician's viewer or the
    # web server's user could not be read; a umask of 077 must still be honoured
    import os

    from happyhouse.daemon import filesafety

    old = os.umask(0o022)
    try:
        for umask, want in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
            os.umask(umask)
            assert filesafety.current_umask() == umask
            name = f"a{umask:o}.json"
            filesafety.write_text_file(tmp_path / name, "{}", "--json")
            assert (tmp_path / name).stat().st_mode & 0o777 == want
    finally:
        os.umask(old)


def test_a_symlink_to_a_file_is_written_through(tmp_path):
    """The plots and tables were written through a link before they were written whole."""
    from happyhouse.daemon import filesafety

    real = tmp_path / "shared" / "roc.png"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "roc.png"
    link.symlink_to(real)
    filesafety.write_file_whole(link, b"new", "plot")
    assert link.is_symlink() and real.read_bytes() == b"new"
    dangling = tmp_path / "gone.png"
    dangling.symlink_to(tmp_path / "nowhere.png")
    filesafety.write_file_whole(dangling, b"x", "plot")  # replaced, as a new file
    assert not dangling.is_symlink() and dangling.read_bytes() == b"x"
