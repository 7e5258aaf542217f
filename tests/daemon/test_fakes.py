"""FakeSource, the deterministic frame source for tests, on fake_clock's instant time."""

import pytest

from fakes import flat_image
from happyhouse.daemon.errors import SourceError
from happyhouse.daemon.fakes import FakeSource, fake_clock


def test_fake_source_hands_out_only_the_newest_frame():
    clock, sleep = fake_clock()
    src = FakeSource([flat_image(i) for i in range(10)], fps=10, clock=clock, sleep=sleep)
    with src:
        first = src.latest(0.0)
        assert first.seq == 1 and first.image[0, 0, 0] == 0
        sleep(0.35)  # frames 1, 2, 3 were captured meanwhile: only 3 is handed out
        newest = src.latest(0.0)
        assert newest.image[0, 0, 0] == 3 and newest.timestamp == pytest.approx(1000.3)
        assert src.latest(0.0) is None  # nothing new yet: never the same frame twice
        waited = src.latest(1.0)  # waits for the next capture
        assert waited.image[0, 0, 0] == 4 and clock() == pytest.approx(1000.4)


def test_fake_source_stall_returns_none_then_resumes():
    clock, sleep = fake_clock()
    src = FakeSource([flat_image(i) for i in range(100)], fps=10, clock=clock, sleep=sleep,
                     stalls=[(1.0, 3.0)])
    with src:
        sleep(0.95)
        assert src.latest(0.0).image[0, 0, 0] == 9
        assert src.latest(1.5) is None  # 0.95 .. 2.45: camera silent
        frame = src.latest(1.0)
        assert frame.image[0, 0, 0] == 30 and frame.timestamp == pytest.approx(1003.0)


def test_fake_source_runs_dry_without_loop_and_cycles_with_loop():
    clock, sleep = fake_clock()
    src = FakeSource([flat_image(1), flat_image(2)], fps=10, clock=clock, sleep=sleep)
    src.open()
    assert src.latest(1.0).seq == 1 and src.latest(1.0).seq == 2
    assert src.latest(5.0) is None and src.exhausted
    looped = FakeSource([flat_image(1), flat_image(2)], fps=10, clock=clock, sleep=sleep, loop=True)
    looped.open()
    seen = [looped.latest(1.0).image[0, 0, 0] for _ in range(5)]
    assert seen == [1, 2, 1, 2, 1]


def test_fake_source_fail_open():
    with pytest.raises(SourceError):
        FakeSource([flat_image(1)], fail_open=True).open()
