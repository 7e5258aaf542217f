"""Frame sources: the threaded source (newest frame only, stalls, reopening) driven by
test devices, and ``open_source``: how a spec is classified, one-line errors, redaction,
``to_door_frame``. The devices themselves are tested in test_devices.py, the fake
source in test_fakes.py.
"""

import threading
import time

import numpy as np
import pytest

from fakes import flat_image, replay_cfg
from happyhouse.daemon.errors import SourceError
from happyhouse.daemon.devices import Device
from happyhouse.daemon.preprocess import to_door_frame
from happyhouse.daemon.sources import ThreadedSource, classify_spec, open_source


@pytest.fixture
def cfg():
    return replay_cfg()


# ---------------------------------------------------------------- ThreadedSource


class CountingDevice(Device):
    """Delivers numbered frames every ``period``; can hang or fail on cue."""

    def __init__(self, log, period=0.01, hang_after=None, fail_open=False):
        self.log, self.period, self.hang_after, self.fail_open = log, period, hang_after, fail_open
        self.n = 0
        self.release_event = threading.Event()
        self.description = "counting device"

    def open(self):
        self.log.append("open")
        if self.fail_open:
            raise SourceError("cannot open counting device: unplugged")

    def read(self):
        if self.hang_after is not None and self.n >= self.hang_after:
            self.release_event.wait(5.0)  # a driver read that does not return
            return None
        time.sleep(self.period)
        self.n += 1
        return flat_image(self.n % 256)

    def release(self):
        self.log.append("release")


def test_threaded_source_keeps_only_newest_frame():
    log = []
    src = ThreadedSource(lambda: CountingDevice(log, period=0.005), "dev", stall_timeout=1.0)
    with src:
        first = src.latest(1.0)
        time.sleep(0.1)  # ~20 frames arrive; only the newest may come back
        newest = src.latest(1.0)
        assert newest.seq > first.seq + 5
        assert abs(newest.timestamp - time.monotonic()) < 0.5
        following = src.latest(1.0)
        assert following.seq > newest.seq
    assert log[0] == "open" and "release" in log


def test_threaded_source_detects_hung_read_and_reopens():
    log = []
    devices = []

    def factory():
        dev = CountingDevice(log, hang_after=3 if not devices else None)
        devices.append(dev)
        return dev

    src = ThreadedSource(factory, "dev", stall_timeout=0.2, backoff_max=1.0)
    with src:
        for _ in range(3):
            assert src.latest(1.0) is not None
        gap_start = time.monotonic()
        assert src.latest(0.15) is None  # stalled: no fresh frame
        frame = src.latest(3.0)  # the supervisor gave up on the hung read and reopened
        assert frame is not None
        assert time.monotonic() - gap_start < 2.5
        assert src.reopens >= 1 and len(devices) >= 2
        devices[0].release_event.set()
    assert log.count("open") >= 2


def scene(seed):
    """A picture with a scene's range of grey levels (a flat one holds no face)."""
    return np.random.default_rng(seed).integers(0, 256, (48, 64, 3), np.uint8)


class FrozenDevice(CountingDevice):
    """A live camera whose driver froze: the same image again and again."""

    live = True
    picture = scene(7)

    def read(self):
        time.sleep(self.period)
        self.n += 1
        return self.picture


def test_frozen_live_camera_gives_no_fresh_frames_and_is_reopened():
    log = []
    src = ThreadedSource(lambda: FrozenDevice(log), "dev", stall_timeout=0.2, backoff_max=0.5)
    with src:
        first = src.latest(1.0)
        assert first is not None  # the first image is news
        assert src.latest(0.15) is None  # its repeats are not
        time.sleep(0.6)
        assert src.reopens >= 1 and log.count("open") >= 2  # treated as a stalled camera


def test_once_and_check_call_a_frozen_camera_frozen_not_silent():
    """--check and --once said "no frame ... is it delivering?" of a camera that delivered the
    same picture 45 times (the service said frozen)."""
    from types import SimpleNamespace

    import pytest

    from happyhouse.daemon.errors import SourceError
    from happyhouse.daemon.once import capture

    log = []
    cfg = SimpleNamespace(camera_stall_timeout=0.3, camera_settle_frames=0)
    src = ThreadedSource(lambda: FrozenDevice(log), "dev", stall_timeout=5.0)
    with src:
        assert src.latest(1.0) is not None  # its first picture was news; the rest are not
        with pytest.raises(SourceError, match="frozen: it delivers the same picture over and over"):
            capture(src, cfg)
    quiet = ThreadedSource(lambda: FrozenDevice(log), "dev", stall_timeout=5.0)
    assert quiet.why_silent() is None


def test_a_frozen_camera_is_not_news_again_after_its_reopen():
    """A field probe: the repeat check compared a picture with the one before it in the
    same worker only, so each reopen published the frozen (smiling) picture once more as
    fresh: with votes_needed = 1 the door opened every ~7 s, and each of those frames fed
    the watchdog. The lost-camera reason now says the camera is frozen."""
    log = []
    src = ThreadedSource(lambda: FrozenDevice(log), "dev", stall_timeout=0.2, backoff_max=0.5)
    with src:
        assert src.latest(1.0) is not None  # news once
        time.sleep(1.5)
        assert src.reopens >= 2
        assert src.latest(0.1) is None and src.frames_read == 1


class CyclingDevice(CountingDevice):
    """A live camera whose driver hands out its four buffers again and again."""

    live = True

    def read(self):
        time.sleep(self.period)
        self.n += 1
        return scene(10 + self.n % 4)


def test_a_driver_cycling_its_buffers_is_a_frozen_camera(caplog):
    log = []
    src = ThreadedSource(lambda: CyclingDevice(log), "dev", stall_timeout=0.2, backoff_max=0.5)
    with caplog.at_level("WARNING"), src:
        time.sleep(0.6)
        assert src.frames_read == 4  # each buffer once, then nothing new
    assert "frozen: the same picture" in caplog.text


class FlakyDevice(CountingDevice):
    """A live webcam that hands out one corrupt (undecodable) frame in every ten."""

    live = True

    def read(self):
        time.sleep(self.period)
        self.n += 1
        return None if self.n % 10 == 0 else flat_image(self.n % 256)


def test_one_failed_read_is_not_a_lost_camera():
    """A single None read (one corrupt MJPEG frame) tore the camera down: a reopen, a reset
    vote and a "camera lost" warning every couple of seconds."""
    log = []
    src = ThreadedSource(lambda: FlakyDevice(log), "dev", stall_timeout=1.0)
    with src:
        time.sleep(0.5)
        assert src.latest(0.5) is not None
    assert src.reopens == 0 and log.count("open") == 1


HUNG = 10  # the read that hangs: after the first few, which teach the camera's pace


class HiccupDevice(CountingDevice):
    """A live stream that hangs once for ``hang`` s and then hands over the ``buffered``
    frames it kept meanwhile, each read taking ``buffered_read`` s (0: a burst; more: the
    decoder's pace), before it goes on in real time (one frame per ``period``)."""

    live = True

    def __init__(self, log, hang=1.0, buffered=8, period=0.02, buffered_read=0.0):
        super().__init__(log, period=period)
        self.hang, self.buffered, self.buffered_read = hang, buffered, buffered_read

    def read(self):
        self.n += 1
        if self.n == HUNG:
            time.sleep(self.hang)
        elif HUNG < self.n <= HUNG + self.buffered:
            time.sleep(self.buffered_read)
        else:
            time.sleep(self.period)
        return flat_image(self.n % 256)


def frames_seen(device, seconds, **kw):
    """(frame number, age when handed out) of every frame the door would get."""
    src = ThreadedSource(lambda: device, "dev", stall_timeout=3.0, stale_after=0.5, **kw)
    seen = []
    with src:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            frame = src.latest(0.5)
            if frame is not None:
                seen.append((int(frame.image[0, 0, 0]), frame.age()))
            time.sleep(0.001)
    return seen


def test_frames_a_stream_buffered_while_it_hung_are_dated_when_they_were_taken():
    """A field probe: a stream that hung 2.5 s (under stall_timeout) then handed over its
    buffered frames: each was dated when its read returned, 9 ms old to the door, which
    voted on frames 2.5 s old and opened."""
    seen = frames_seen(HiccupDevice([], hang=1.0, buffered=8), 2.0, fps=50)
    assert all(age <= 0.5 for n, age in seen if n < HUNG)
    assert any(age > 0.5 for n, age in seen if HUNG <= n <= HUNG + 8)  # the hang's frames
    assert all(age > 0.5 for n, age in seen if HUNG <= n <= HUNG + 8)
    later = [age for n, age in seen if n > HUNG + 8 + 3]
    assert later and all(age <= 0.5 for age in later)  # then real time again


def test_frames_buffered_at_the_decoders_pace_are_stale_too():
    """A review: the buffered frames' reads took decode time (25 ms of a 40 ms interval),
    which ended the first fix's backlog at once: 37 frames 1-1.5 s old went out as fresh."""
    device = HiccupDevice([], hang=1.5, buffered=37, period=0.04, buffered_read=0.025)
    seen = frames_seen(device, 4.5, fps=25)
    buffered = [age for n, age in seen if HUNG < n <= HUNG + 37]
    assert buffered and all(age > 0.5 for age in buffered), buffered
    later = [age for n, age in seen if n > HUNG + 37 + 3]
    assert later and all(age <= 0.5 for age in later)


class SlowCamera(CountingDevice):
    live = True


def test_a_camera_slower_than_configured_is_not_taken_for_a_hanging_one():
    """A review: a camera delivering every 0.6 s (more than stale_after) had every frame
    dated stale: the door never opened and systemd restarted the service again and again."""
    seen = frames_seen(SlowCamera([], period=0.6), 4.0, fps=15)
    assert len(seen) >= 5
    assert all(age <= 0.5 for _, age in seen[2:]), seen


def test_replayed_pictures_may_repeat():
    log = []

    class Still(CountingDevice):  # not live: a demo picture shown again and again
        def read(self):
            time.sleep(self.period)
            return flat_image(7)

    with ThreadedSource(lambda: Still(log), "dev", stall_timeout=1.0) as src:
        assert src.latest(1.0) is not None and src.latest(1.0) is not None


def test_threaded_source_unopenable_raises_and_backs_off_in_background():
    log = []
    src = ThreadedSource(lambda: CountingDevice(log, fail_open=True), "dev", stall_timeout=0.5)
    with pytest.raises(SourceError, match="unplugged"):
        src.open()
    bg = ThreadedSource(lambda: CountingDevice(log, fail_open=True), "dev", stall_timeout=0.5,
                        backoff_max=1.0)
    bg.open(require=False)
    try:
        assert bg.latest(1.2) is None
    finally:
        bg.close()
    # 0.5 s then 1.0 s between attempts: about 2-3 opens in 1.2 s, not a busy loop
    assert 2 <= bg.reopens <= 4


# ---------------------------------------------------------------- open_source


@pytest.mark.parametrize("spec, kind", [("0", "camera"), ("/dev/video7", "v4l2"),
                                        # the replug-proof name of a USB webcam was taken
                                        # for a video file: a recording, so no frozen-camera
                                        # check, and refused on a real latch
                                        ("/dev/v4l/by-id/usb-Logitech_C270-video-index0", "v4l2"),
                                        ("/dev/v4l/by-path/platform-usb-0:1.2:1.0-video-index0",
                                         "v4l2"),
                                        ("rtsp://cam.local/stream", "stream"),
                                        ("libcamerasrc ! videoconvert ! appsink", "gstreamer")])
def test_classify_spec(spec, kind):
    assert classify_spec(spec) == kind


@pytest.mark.parametrize("make, match", [
    (lambda p: str(p / "missing.jpg"), "does not exist"),
    (lambda p: (p / "bad.jpg").write_bytes(b"garbage") and str(p / "bad.jpg"), "cannot be read"),
    (lambda p: (p / "empty").mkdir() or str(p / "empty"), "holds no images"),
    (lambda p: "", "empty"),
    # digits that are not plain ASCII: '²' was a ValueError traceback (exit 70), and a
    # full-width '０' opened camera 0
    (lambda p: "\u00b2", "does not exist"),
    (lambda p: "\uff10", "does not exist"),
    (lambda p: "\u0663", "does not exist"),
    # OpenCV reads 200 as V4L2's camera 0, and an index past a C long was its overload error
    (lambda p: "200", "out of range \\(0 to 99\\)"),
    (lambda p: "99999999999999999999", "out of range"),
])
def test_bad_sources_give_one_line_errors(tmp_path, cfg, make, match):
    with pytest.raises(SourceError, match=match) as info:
        open_source(make(tmp_path), cfg).open()
    assert "\n" not in str(info.value)


def test_gstreamer_without_support_says_how_to_fix(cfg, monkeypatch):
    import happyhouse.daemon.sources as sources

    monkeypatch.setattr(sources, "gstreamer_available", lambda: False)
    with pytest.raises(SourceError, match="python3-opencv"):
        open_source("libcamerasrc ! videoconvert ! appsink", cfg)


def test_stream_password_is_redacted(cfg):
    src = open_source("rtsp://admin:secret@10.0.0.9/live", cfg)
    assert "secret" not in src.description and "admin" in src.description


def test_to_door_frame_scales_rgb_to_bgr():
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[..., 0] = 255  # red
    out = to_door_frame(rgb, 640, 480)
    assert out.shape == (480, 640, 3) and out[240, 320].tolist() == [0, 0, 255]


def test_threaded_source_can_be_closed_and_reopened():
    log = []
    src = ThreadedSource(lambda: CountingDevice(log), "dev", stall_timeout=1.0)
    src.open()
    assert src.latest(1.0) is not None
    src.close()
    src.open()
    try:
        assert src.latest(1.0) is not None
    finally:
        src.close()
    assert log.count("open") == 2


def test_a_frozen_picture_is_not_news_to_the_next_process_either(tmp_path):
    """A review: a frozen camera gives no fresh frame, the watchdog restarts the service,
    and each new process took the picture it froze on for news once: with votes_needed = 1
    one opening per restart. The pictures outlive the process in the runtime folder."""
    remember = tmp_path / "frozen-camera-pictures"
    first = ThreadedSource(lambda: FrozenDevice([]), "dev", stall_timeout=0.5, remember=remember)
    with first:
        assert first.latest(1.0) is not None
        time.sleep(0.2)  # it repeats: remembered
    assert remember.is_file()
    restarted = ThreadedSource(lambda: FrozenDevice([]), "dev", stall_timeout=0.5,
                               remember=remember)
    with restarted:
        assert restarted.latest(0.4) is None
    healthy = ThreadedSource(lambda: CyclingDevice([]), "dev", stall_timeout=0.5,
                             remember=remember)
    with healthy:  # another picture is news
        assert healthy.latest(1.0) is not None


def test_a_live_camera_remembers_its_frozen_pictures_in_the_state_folder(tmp_path):
    from happyhouse.daemon.config import load_config

    cfg = load_config(None, {"service.state_dir": str(tmp_path / "state")})
    assert open_source("/dev/video0", cfg, remember=True).remember == \
        tmp_path / "state" / "frozen-camera-pictures"
    # the tools (--once, --check, --collect, perhaps run as root) read it but never write
    # it: a file root made there, with root's umask, the service could not read
    tool = open_source("/dev/video0", cfg)
    assert tool.remember == tmp_path / "state" / "frozen-camera-pictures"
    assert not tool.write_memory and open_source("/dev/video0", cfg, remember=True).write_memory


def test_a_tool_skips_the_picture_the_service_saw_frozen_but_writes_nothing(tmp_path):
    remember = tmp_path / "frozen-camera-pictures"
    service = ThreadedSource(lambda: FrozenDevice([]), "dev", stall_timeout=0.5, remember=remember)
    with service:
        assert service.latest(1.0) is not None
        time.sleep(0.2)
    written = remember.read_bytes()
    tool = ThreadedSource(lambda: FrozenDevice([]), "dev", stall_timeout=0.5, remember=remember,
                          write_memory=False)
    with tool:
        assert tool.latest(0.4) is None  # the frozen picture is no news to --once either
    remember.unlink()
    fresh_tool = ThreadedSource(lambda: FrozenDevice([]), "dev", stall_timeout=0.3,
                                remember=remember, write_memory=False)
    with fresh_tool:
        assert fresh_tool.latest(1.0) is not None
        time.sleep(0.5)
    assert not remember.exists() and written


class DarkDevice(FrozenDevice):
    """A live camera at night (or with its lens covered) whose frames are black, bit for
    bit the same."""

    picture = flat_image(3)


def test_a_dark_camera_repeating_black_frames_is_not_frozen():
    """A review: such frames ended as "frozen", the watchdog restarted the service until
    start-limit-hit, and the door stayed dead after the light came back. A flat picture
    holds no face, so it can never open the door: it is news."""
    src = ThreadedSource(lambda: DarkDevice([]), "dev", stall_timeout=0.3)
    with src:
        time.sleep(0.8)
        frame = src.latest(0.3)
        assert frame is not None and frame.still  # alive, and never to be scored
    assert src.reopens == 0


def dated(reads, interval=1 / 15, stale_after=0.5):
    """The age the door sees of each frame of a device whose reads wait ``reads`` seconds
    (Backlog alone, on a clock of its own)."""
    from happyhouse.daemon.sources import Backlog

    backlog, now, ages = Backlog(stale_after, interval), 0.0, []
    for waited in reads:
        asked, now = now, now + waited
        ages.append(round(now - backlog.taken(asked, now), 3))
    return ages


def test_a_hang_right_after_an_open_is_seen_too():
    """A review: the first reads after an open only taught the pace, so a reconnect whose
    first read took 1.5 s handed its burst of buffered frames over as fresh."""
    ages = dated([1.5] + [0.002] * 20 + [1 / 15] * 5)
    # the k-th buffered frame was taken k frame intervals after the hang began: never
    # dated younger than that, and the hang's own frames held stale
    assert all(ages[k] >= 1.5 + 0.002 * k - k / 15 - 0.002 for k in range(21)), ages
    assert all(age > 0.5 for age in ages[:21]), ages
    assert all(age < 0.01 for age in ages[21:]), ages


def test_a_lagging_reader_does_not_unlearn_the_cameras_pace():
    """A review: behind a full queue every read returns in microseconds; the learnt wait
    fell to nothing, and after a hang every buffered read looked like the sensor's."""
    ages = dated([0.0006] * 200 + [1.2] + [0.0006] * 5 + [1 / 15] * 3)
    assert all(age > 0.5 for age in ages[200:206]), ages[200:]
    assert ages[-1] < 0.01


def test_a_camera_that_warms_up_costs_one_frame():
    ages = dated([1.0] + [1 / 15] * 10)
    assert ages[0] > 0.5 and all(age < 0.01 for age in ages[1:]), ages


def test_a_stream_faster_than_its_stated_rate_is_dated_at_its_own_pace():
    """A review: a 30 fps stream falling back to 1/15 s had its buffered frames dated 1/15 s
    apart, catching up with the clock halfway: 24 frames 0.5-1.25 s old went out fresh.
    The pace is learnt from its ordinary reads."""
    reads = [1 / 30] * 30 + [2.0] + [0.002] * 60 + [1 / 30] * 10
    ages = dated(reads, interval=1 / 15)
    hang = 30
    for k in range(61):  # frame k after the hang was taken k/30 s after it began
        true_age = 2.0 + 0.002 * k - k / 30
        assert ages[hang + k] >= true_age - 0.01 or true_age <= 0.5, (k, ages[hang + k], true_age)
    assert all(age < 0.01 for age in ages[-5:])


def test_after_a_hang_a_faster_camera_loses_only_the_hangs_frames():
    """A review: a 30 fps camera stating 15 held 37 genuine frames stale after its buffer
    drained (about 1.2 s lost)."""
    ages = dated([1 / 30] * 30 + [2.0] + [0.002] * 4 + [1 / 30] * 60, interval=1 / 15)
    assert [i for i, age in enumerate(ages) if age > 0.5] == [30, 31, 32, 33, 34]


def test_a_reader_behind_a_full_queue_is_held_no_longer_than_the_hang():
    """A review: behind a full queue (reads of 0.6 ms) the backlog ran on for 480 frames
    after a 2 s hang (about 32 s of a door that could not open)."""
    from happyhouse.daemon.sources import Backlog

    backlog, now, held = Backlog(0.5, 1 / 15), 0.0, []
    for i in range(300 + 1 + 600):  # the reader gets the CPU every 1/15 s; each read: 0.6 ms
        waited = 2.0 if i == 300 else 0.0006
        asked = now + (1 / 15 - 0.0006 if i != 300 else 0.0)
        now = asked + waited
        if now - backlog.taken(asked, now) > 0.5:
            held.append(now)
    hang_ended = 300 * (1 / 15) + 2.0
    assert held and held[-1] - hang_ended <= 2.0 + 0.1, held[-1] - hang_ended


def test_buffered_frames_are_never_dated_younger_than_they_are_even_before_the_pace_is_learnt():
    """A review: a 60 fps stream stating 15, hanging right after an open: its pace not yet
    learnt, 21 frames 0.86 s old were dated 0.47 s."""
    reads = [1.0] + [0.002] * 60 + [1 / 60] * 10
    ages = dated(reads)
    for k in range(61):
        true_age = 1.0 + 0.002 * k - k / 60
        assert ages[k] >= true_age - 0.002 or true_age <= 0.5, (k, ages[k], true_age)
