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


def test_a_rerun_killed_part_way_leaves_the_earlier_frames_whole(genki_root, tmp_path, monkeypatch,
                                                                 capsys):
    """A second run killed while writing left 14 new smiles beside the old no-smiles; and
    --count beyond the folder's faces said it wrote that many."""
    import cv2

    out = tmp_path / "demo"
    assert demo.main(["--data", str(genki_root), "--out", str(out), "--count", "3"]) == 0
    assert "wrote 3 door frames" in capsys.readouterr().out
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*.png")}
    written = []

    def killed_after_two(path, frame):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(path)
        return cv2.imencode(".png", frame)[1].tofile(path) is None

    monkeypatch.setattr(cv2, "imwrite", killed_after_two)
    with pytest.raises(KeyboardInterrupt):
        demo.write_demo(str(genki_root), str(out), 5)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*.png")} == before
    assert sorted(p.name for p in out.iterdir()) == ["no-smiles", "smiles"]


def test_the_count_said_is_the_count_written(tmp_path, capsys):
    import cv2
    import numpy as np

    for name in ("happy", "not_happy"):
        (tmp_path / "faces" / name).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "faces" / name / "a.png"), np.full((64, 64, 3), 90, np.uint8))
    assert demo.main(["--data", str(tmp_path / "faces"), "--out", str(tmp_path / "d"),
                      "--count", "500"]) == 0
    assert "wrote 1 door frames of smiling faces" in capsys.readouterr().out
