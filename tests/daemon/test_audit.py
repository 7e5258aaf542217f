"""Audit: unlocks logged with scores; snapshots written and capped by count and bytes."""

import logging
import os
from itertools import count

import cv2
import numpy as np
import pytest

from happyhouse.daemon.audit import Audit
from happyhouse.daemon.pipeline import Observation
from happyhouse.daemon.sources import Frame
from happyhouse.daemon.vote import Ballot


def ballots():
    return (Ballot(1.0, 7, 0.91, True), Ballot(1.1, 8, 0.42, False), Ballot(1.2, 9, 0.88, True))


def frame(seq=9, noise=False):
    rng = np.random.default_rng(seq)
    image = (rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) if noise
             else np.full((480, 640, 3), 90, np.uint8))
    return Frame(image, 1.2, seq)


def fake_wall():
    ticks = count()
    return lambda: 1_700_000_000.0 + next(ticks)


def test_unlock_is_logged_with_scores_and_journal_fields(tmp_path, caplog):
    audit = Audit(str(tmp_path), snapshots=False)
    with caplog.at_level(logging.INFO, logger="happyhouse.daemon.audit"):
        assert audit.record_unlock("smile", 5.0, ballots(), frame=frame(),
                                   observation=Observation(1.2, 9, (10, 20, 30, 40), 0.88, True, 1.0),
                                   frame_age=0.045, model_sha256="ab" * 32) is None
    record, = caplog.records
    assert "0.910,0.420,0.880" in record.getMessage()
    fields = record.journal
    assert fields["scores"] == "0.910,0.420,0.880" and fields["seqs"] == "7,8,9"
    assert fields["happy_votes"] == 2 and fields["face"] == "10,20,30,40"
    assert fields["frame_age_ms"] == "45" and fields["model_sha256"] == "ab" * 32
    assert list(tmp_path.iterdir()) == []  # snapshots off


def test_snapshot_is_an_annotated_jpeg(tmp_path):
    audit = Audit(str(tmp_path / "state"), snapshots=True, wall_clock=fake_wall())
    obs = Observation(1.2, 9, (200, 100, 160, 160), 0.88, True, 1.0)
    path = audit.record_unlock("smile", 5.0, ballots(), frame=frame(), observation=obs)
    assert path is not None and path.parent == tmp_path / "state"
    assert path.name.startswith("unlock-20231114T") and path.name.endswith("-00000009.jpg")
    image = cv2.imread(str(path))
    assert image.shape == (480, 640, 3)
    # the plain frame is flat grey: annotation (box, text) changed pixels
    assert np.abs(image.astype(int) - 90).max() > 60
    assert not list((tmp_path / "state").glob("*.tmp"))


def test_snapshots_capped_by_count_oldest_deleted(tmp_path):
    audit = Audit(str(tmp_path), snapshots=True, max_count=3, wall_clock=fake_wall())
    paths = [audit.record_unlock("smile", 5.0, ballots(), frame=frame(seq=i)) for i in range(6)]
    kept = audit.snapshot_files()
    assert kept == paths[3:]


def test_snapshots_capped_by_bytes(tmp_path):
    audit = Audit(str(tmp_path), snapshots=True, max_count=1000, max_mb=0.6, wall_clock=fake_wall())
    for i in range(8):  # noisy frames compress badly: ~250 kB each
        audit.record_unlock("smile", 5.0, ballots(), frame=frame(seq=i, noise=True))
    files = audit.snapshot_files()
    total = sum(p.stat().st_size for p in files)
    assert total <= 600_000 and 1 <= len(files) < 8
    assert files[-1].name.endswith("-00000007.jpg")  # the newest survives


def test_other_files_in_state_dir_are_never_deleted(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    audit = Audit(str(tmp_path), snapshots=True, max_count=1, wall_clock=fake_wall())
    for i in range(3):
        audit.record_unlock("smile", 5.0, ballots(), frame=frame(seq=i))
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert len(audit.snapshot_files()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_state_dir_is_a_warning_not_an_error(tmp_path, caplog):
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    audit = Audit(str(locked), snapshots=True)
    assert audit.record_unlock("smile", 5.0, ballots(), frame=frame()) is None
    assert "snapshot not saved" in caplog.text


def test_state_dir_that_is_a_file_is_a_warning_not_an_error(tmp_path, caplog):
    blocker = tmp_path / "state"
    blocker.write_text("not a folder")
    audit = Audit(str(blocker), snapshots=True)
    assert audit.record_unlock("exit button", 5.0, (), frame=frame()) is None
    assert "snapshot not saved" in caplog.text
    assert audit.unlocks == 1  # still counted and logged


def test_from_config(tmp_path):
    from happyhouse.daemon.config import load_config

    cfg = load_config(None, {"service.state_dir": str(tmp_path), "service.snapshot_on_unlock": True,
                             "service.snapshot_max_count": 7, "service.snapshot_max_mb": 1.5})
    audit = Audit.from_config(cfg)
    assert (audit.state_dir, audit.snapshots, audit.max_count, audit.max_bytes) == \
        (tmp_path, True, 7, 1_500_000)
