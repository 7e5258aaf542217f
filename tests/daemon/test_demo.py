"""Issue 16 item 20: a demo a newcomer can watch open the door (and stay locked)."""

import pytest

from happyhouse.daemon import cli, demo


@pytest.fixture(scope="module")
def demo_folders(tmp_path_factory, genki_root):
    out = tmp_path_factory.mktemp("demo")
    assert demo.main(["--data", str(genki_root), "--out", str(out), "--count", "8"]) == 0
    return out / "smiles", out / "no-smiles"


def _serve(folder, tmp_path, capfd):
    code = cli.main(["--gpio", "mock", "--source", str(folder), "--max-frames", "24",
                     "--state-dir", str(tmp_path / "state")])
    return code, capfd.readouterr().err


def test_demo_frames_are_faces_chosen_by_label_in_door_sized_frames(demo_folders):
    import cv2

    smiles, others = demo_folders
    for folder in demo_folders:
        frames = sorted(folder.glob("*.png"))
        assert len(frames) == 8
        assert cv2.imread(str(frames[0])).shape == (480, 640, 3)


def test_the_shipped_model_opens_the_door_for_the_demo_smiles(demo_folders, tmp_path, capfd):
    code, err = _serve(demo_folders[0], tmp_path, capfd)
    assert code == 0 and "unlock #1 (smile)" in err, err


def test_the_demo_non_smiles_keep_the_door_locked(demo_folders, tmp_path, capfd):
    code, err = _serve(demo_folders[1], tmp_path, capfd)
    assert code == 0 and "unlock #" not in err, err


def test_bad_dataset_is_one_line(tmp_path, capsys):
    assert demo.main(["--data", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("happyhouse-demo: error: "), err



@pytest.mark.parametrize("under", ["", "demo"])
def test_an_out_that_is_a_file_is_one_line_before_the_faces_are_read(under, tmp_path, capsys,
                                                                    monkeypatch):
    """It said "cannot write OUT/smiles: Not a directory" once the faces were read."""
    from happyhouse.daemon import datasets

    def unread(*a, **k):
        raise AssertionError("the faces were read before --out was checked")

    monkeypatch.setattr(datasets, "load_class_folders", unread)
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / under
    assert demo.main(["--data", str(tmp_path / "none"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'afile'} is not a folder" in err, err


def test_a_file_in_the_smiles_folders_place_is_named(tmp_path, capsys):
    """It said "cannot write OUT/smiles: File exists", as if the folder were there."""
    import cv2
    import numpy as np

    for label in ("happy", "not_happy"):
        (tmp_path / "data" / label).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "data" / label / "a.png"), np.full((64, 64, 3), 120, np.uint8))
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "smiles").write_text("x")
    assert demo.main(["--data", str(tmp_path / "data"), "--out", str(tmp_path / "demo")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "smiles is a file, not a folder" in err, err


def test_ctrl_c_is_130_and_one_line(tmp_path, capsys, monkeypatch):
    """It was a traceback and exit -2 (no shared error mapping)."""
    from happyhouse.daemon import datasets

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(datasets, "load_class_folders", ctrl_c)
    try:
        code = demo.main(["--data", str(tmp_path / "data"), "--out", str(tmp_path / "demo")])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped as a traceback")
    assert code == 130
    assert capsys.readouterr().err == "happyhouse-demo: interrupted by SIGINT (Ctrl-C)\n"
