"""The page's collection folder (``web/labels.py``) on a disk that fills, and over many page
starts: found by a long-running field probe."""

import errno
import json
import os

import pytest

from happyhouse.daemon.web import labels
from happyhouse.daemon.web.labels import CollectFolder, LabelError

NAME = "20261129T100000-000-1.png"

#: the 12-byte IEND chunk that ends every whole PNG (a listing checks for it)
IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _frame(folder: CollectFolder, where: str = "unsorted") -> None:
    (folder.root / where / NAME).write_bytes(b"\x89PNG\r\n\x1a\n a frame" + IEND)
    (folder.root / where / NAME.replace(".png", ".json")).write_text(
        json.dumps({"label": "unsorted", "face": [1, 2, 3, 4]}))


def test_a_label_that_fails_on_a_full_disk_can_be_done_once_there_is_room(tmp_path, monkeypatch):
    """It left an empty happy/<stem>.json behind: every later try said "File exists"."""
    folder = CollectFolder(tmp_path / "collect")
    _frame(folder)
    real_write = os.write

    def full(fd, data):
        real_write(fd, bytes(data[:3]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(labels.os, "write", full)
    with pytest.raises(LabelError, match="No space left on device"):
        folder.label("unsorted", NAME, "happy")
    monkeypatch.undo()
    assert sorted(p.name for p in (folder.root / "happy").iterdir()) == []  # nothing half made
    assert (folder.root / "unsorted" / NAME).is_file()
    assert folder.label("unsorted", NAME, "happy") == "happy"
    side = json.loads((folder.root / "happy" / NAME.replace(".png", ".json")).read_text())
    assert side["label"] == "happy" and side["face"] == [1, 2, 3, 4]
    assert sorted(p.name for p in (folder.root / "unsorted").iterdir()) == []


def test_a_sidecar_a_failed_move_left_without_its_frame_is_replaced(tmp_path):
    folder = CollectFolder(tmp_path / "collect")
    _frame(folder)
    (folder.root / "happy" / NAME.replace(".png", ".json")).write_bytes(b"")
    assert folder.label("unsorted", NAME, "happy") == "happy"
    assert json.loads((folder.root / "happy" / NAME.replace(".png", ".json")).read_text())[
        "label"] == "happy"


def test_a_short_write_is_finished(tmp_path, monkeypatch):
    folder = CollectFolder(tmp_path / "collect")
    _frame(folder)
    real_write = os.write
    monkeypatch.setattr(labels.os, "write", lambda fd, data: real_write(fd, bytes(data[:5])))
    assert folder.label("unsorted", NAME, "not_happy") == "not_happy"
    monkeypatch.undo()
    assert json.loads((folder.root / "not_happy" / NAME.replace(".png", ".json")).read_text())[
        "label"] == "not_happy"


def test_starting_the_page_again_and_again_leaks_no_descriptor(tmp_path):
    """Each page start (a reload that changes [web]) leaked 3 folder descriptors: after ~330
    the service ran out and its camera and reloads failed."""
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        CollectFolder(tmp_path / "collect")
    assert len(os.listdir("/proc/self/fd")) <= before + 1


def test_a_class_folder_the_full_disk_cannot_hold_is_one_data_error(tmp_path, monkeypatch):
    """With the collection root already there, making happy/ on a full disk raised a bare
    OSError out of the page's start, past the door's 'page off, door on' rule (a review)."""
    from happyhouse.daemon.errors import DataError

    (tmp_path / "collect").mkdir()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(labels.os, "mkdir", full)
    with pytest.raises(DataError, match=r"collect_dir .*collect/unsorted cannot be made: No space"):
        CollectFolder(tmp_path / "collect")


def test_a_frame_the_page_keeps_names_the_model_that_scored_it(tmp_path):
    """A race probe: a reload between the door's decision and the page keeping the frame
    wrote the new model's sha256 and threshold beside the old model's score."""
    import time
    import types

    import numpy as np

    from happyhouse.daemon.config import load_config
    from happyhouse.daemon.pipeline import Observation
    from happyhouse.daemon.sources import Frame
    from happyhouse.daemon.web.capture import Capture

    scored_by = types.SimpleNamespace(threshold=0.858, model_sha256="a" * 64,
                                      gate=types.SimpleNamespace(description="blazeface"))
    reloaded = types.SimpleNamespace(threshold=0.97, model_sha256="b" * 64,
                                     gate=types.SimpleNamespace(description="blazeface"))
    image = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    frame = Frame(image, time.monotonic(), 1)
    obs = Observation(frame.timestamp, 1, (1, 2, 30, 30), 0.41, False, 1.0)
    door = types.SimpleNamespace(latest=(frame, obs), pipeline=scored_by)
    service = types.SimpleNamespace(door=door, cfg=load_config(None),
                                    parts=types.SimpleNamespace(pipeline=reloaded, source=None))
    capture = Capture(service, tmp_path / "collect", every=0.0)
    capture.start(1)
    deadline = time.monotonic() + 10
    while capture.snapshot()["active"] and time.monotonic() < deadline:
        time.sleep(0.05)
    sides = list((tmp_path / "collect" / "unsorted").glob("*.json"))
    assert len(sides) == 1, capture.snapshot()
    side = json.loads(sides[0].read_text())
    assert side["model_sha256"] == "a" * 64 and side["threshold"] == 0.858 and side["score"] == 0.41


def _keep(root, label, when, seq=1):
    """One frame kept by --collect or the page at wall time ``when`` (a fake clock)."""
    from datetime import datetime, timezone

    from happyhouse.daemon.collect import Folder

    folder = Folder(root, label, budget_mb=10)
    stamp = datetime.fromtimestamp(when, timezone.utc)
    name_time = stamp.strftime("%Y%m%dT%H%M%S") + f"-{int(stamp.microsecond / 1000):03d}"
    return folder.write(name_time, b"\x89PNG\r\n\x1a\nframe %d" % seq + IEND, {"label": label, "seq": seq})


def test_frames_kept_after_the_clock_stepped_back_are_listed_first(tmp_path):
    """Found by a clock probe: frames kept while a Pi's clock ran two years ahead sorted
    above every frame kept after NTP stepped it back, past the page's 300-frame limit, so
    the frames just collected were never shown (nor could be labelled)."""
    root = tmp_path / "collect"
    folder = CollectFolder(root)
    ahead, now = 1_830_000_000.0, 1_764_410_000.0  # 2027-12, then 2025-11
    for i in range(4):
        _keep(root, "unsorted", ahead + i, seq=i + 1)
    for i in range(2):
        _keep(root, "unsorted", now + i, seq=5 + i)
    listed = [f["name"] for f in folder.listing(limit=3)["frames"]]
    assert [json.loads((root / "unsorted" / n.replace(".png", ".json")).read_text())["seq"]
            for n in listed] == [6, 5, 4]
    assert folder.listing()["counts"]["unsorted"] == 6


def test_a_frame_kept_with_the_same_time_never_replaces_one_already_there(tmp_path):
    """Same millisecond and the same seq after a clock step: os.replace put the new frame
    and sidecar over an earlier (possibly labelled) one."""
    root = tmp_path / "collect"
    first = _keep(root, "happy", 1_764_410_000.0, seq=7)
    second = _keep(root, "happy", 1_764_410_000.0, seq=7)
    assert first != second and first.read_bytes() == b"\x89PNG\r\n\x1a\nframe 7" + IEND
    assert len(list((root / "happy").glob("*.png"))) == 2


def test_the_serial_counts_on_across_the_class_folders(tmp_path):
    """A frame labelled from unsorted/ into happy/ keeps its name: the next frame kept in
    unsorted/ must not take a name happy/ already holds."""
    root = tmp_path / "collect"
    folder = CollectFolder(root)
    name = _keep(root, "unsorted", 1_764_410_000.0).name
    folder.label("unsorted", name, "happy")
    again = _keep(root, "unsorted", 1_764_410_000.0).name
    assert again != name
    assert folder.label("unsorted", again, "happy") == "happy"


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\n half a frame, cut by a power cut"],
                         ids=["empty", "cut-short"])
def test_a_damaged_frame_is_listed_as_damaged_and_can_only_be_discarded(tmp_path, data):
    """0-byte and half-written PNGs were listed and labelled as frames like any other."""
    folder = CollectFolder(tmp_path / "collect")
    _frame(folder)
    (folder.root / "unsorted" / NAME).write_bytes(data)
    listed = folder.listing()["frames"]
    assert [f["damaged"] for f in listed] == [True]
    with pytest.raises(LabelError, match="is damaged .*discard it"):
        folder.label("unsorted", NAME, "happy")
    assert (folder.root / "unsorted" / NAME).is_file() and not any((folder.root / "happy").iterdir())
    assert folder.label("unsorted", NAME, "discard") is None
    assert not any((folder.root / "unsorted").iterdir())


def test_a_whole_frame_is_not_damaged_and_a_broken_sidecar_moves_with_it(tmp_path):
    """A 0-byte sidecar stayed behind in unsorted/ when its frame was labelled."""
    folder = CollectFolder(tmp_path / "collect")
    _frame(folder)
    (folder.root / "unsorted" / NAME.replace(".png", ".json")).write_bytes(b"")
    assert [f["damaged"] for f in folder.listing()["frames"]] == [False]
    assert folder.label("unsorted", NAME, "happy") == "happy"
    assert not any((folder.root / "unsorted").iterdir())
    assert sorted(p.name for p in (folder.root / "happy").iterdir()) == [
        NAME.replace(".png", ".json"), NAME]
