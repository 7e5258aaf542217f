"""Frame sources: cameras, streams, files and fakes behind one small interface.

Every source hands out :class:`Frame` objects (BGR uint8 image, the
``time.monotonic()`` time it was captured, a sequence number) through
``latest(timeout)``: the newest frame not handed out before, or ``None`` when
no fresh frame arrived in time. A door decision must never use a frame that
sat in a buffer, so a reader thread drains the device continuously and keeps
only the newest frame.

``open_source(spec, cfg)`` understands:

* ``0``, ``1`` ...             a camera index (OpenCV ``VideoCapture``)
* ``/dev/video0``              a V4L2 device (USB webcam)
* ``rtsp://``, ``http(s)://``  a network stream (FFmpeg backend)
* ``... ! appsink``            a GStreamer pipeline (``CAP_GSTREAMER``)
* a video file                 replayed at its own frame rate, looping
* an image file or a folder    replayed as frames at ``camera.fps``, looping
* a course HDF5 file (``.h5``) its ``*_set_x`` frames replayed, scaled up to
                               ``camera.width`` x ``camera.height`` as if they
                               came from the door camera (demos)

Raspberry Pi CSI camera: reach it through GStreamer, e.g.::

    libcamerasrc ! video/x-raw,width=640,height=480,framerate=15/1 ! videoconvert ! appsink drop=true max-buffers=1

The pip wheels ``opencv-python(-headless)`` are built WITHOUT GStreamer, so
this only works with Debian's ``python3-opencv`` (``apt install
python3-opencv gstreamer1.0-libcamera``; create the venv with
``--system-site-packages`` and do not pip-install OpenCV into it). A USB
webcam (``/dev/video0``) works with either build.

Stalls: a camera that stops delivering frames (unplugged, hung driver,
dropped stream) is declared lost after ``camera.stall_timeout`` seconds and
reopened with exponential backoff up to ``camera.reopen_backoff_max``; all the
while ``latest()`` returns ``None``. Opening and reading happen in a worker
thread, so even a read that never returns cannot block the caller: the worker
is abandoned and a fresh one opens the device again.

The devices themselves (OpenCV capture, picture replay) are in
:mod:`.devices`; the deterministic fake for tests, ``FakeSource``, is in
:mod:`.fakes`.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Deque, List, Optional, Protocol, Tuple

import numpy as np

from .devices import (CaptureDevice, ReplayDevice, Device, gstreamer_available, h5_frames,
                      read_pictures)
from .errors import ConfigError, DataError, SourceError
from .filesafety import write_file_whole
from .pictures import HEIF_HINT, PICTURE_EXTS, file_kind
from .logtext import clean

log = logging.getLogger(__name__)

H5_EXTS = (".h5", ".hdf5")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")
#: first backoff step after a lost camera; doubles up to camera.reopen_backoff_max
BACKOFF_START = 0.5
#: opening a network stream can take several seconds before the first frame
OPEN_TIMEOUT_MIN = 10.0
#: a live camera's last pictures remembered (across reopens): a driver that cycles its
#: few buffers, or comes back from a reopen with the picture it froze on, repeats one
RECENT_PICTURES = 8
#: failed reads in a row before a device is given up (one corrupt MJPEG frame is not a
#: lost camera: it cost a reopen, a reset vote and a warning)
FAILED_READS = 5


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR uint8 H x W x 3
    timestamp: float  # time.monotonic() at capture
    seq: int
    #: a flat picture a live camera repeated (a covered lens, a dark night): the camera
    #: is alive, but the picture is no news and is never scored (a frozen dark smile)
    still: bool = False
    #: a replayed picture's own (width, height) when it was scaled to the camera's size
    #: (:class:`CameraSized`), read with it so that it names this frame's picture
    scaled_from: Optional[Tuple[int, int]] = None

    def age(self, now: Optional[float] = None) -> float:
        return (time.monotonic() if now is None else now) - self.timestamp


class FrameSource(Protocol):
    description: str

    def open(self) -> None: ...

    def latest(self, timeout: float) -> Optional[Frame]: ...

    def close(self) -> None: ...

    def __enter__(self) -> "FrameSource": ...

    def __exit__(self, *exc) -> None: ...


# --------------------------------------------------------------------------
# The threaded source: newest frame only, stall detection, reopen with backoff.


class _Worker:
    """One generation: opens a device and reads it until abandoned or failed."""

    def __init__(self, owner: "ThreadedSource", device: Device) -> None:
        self.owner, self.device = owner, device
        self.opened = threading.Event()
        self.done = threading.Event()
        self.error: Optional[str] = None
        self.abandoned = False
        self.last_frame = time.monotonic()
        self.frames = 0
        self.repeats = 0  # pictures repeated since the last new one (a frozen driver)
        self.thread = threading.Thread(target=self._run, name="happyhouse-camera", daemon=True)

    def _run(self) -> None:
        try:
            self.device.open()
            self.last_frame = time.monotonic()
            self.opened.set()
            failed = 0
            backlog = Backlog(self.owner.stale_after, self.owner.frame_interval(self.device))
            while not self.abandoned:
                asked = time.monotonic()
                image = self.device.read()
                returned = time.monotonic()
                if self.abandoned:
                    break
                if image is None:
                    failed += 1
                    if failed >= FAILED_READS:
                        self.error = f"the device returned no frame {failed} times in a row"
                        break
                    continue
                failed = 0
                still = self.device.live and self.owner._seen_before(image)
                if still and not _flat(image):
                    # Sensor noise makes every real frame differ: a repeat is a frozen
                    # driver (a stuck smiling picture must not keep voting). Not fresh:
                    # no publish, no watchdog, and the stall check reopens the camera.
                    self.repeats += 1
                    if self.repeats == 1:
                        self.owner._remember_frozen()
                    continue
                self.repeats = 0
                self.last_frame = returned
                self.frames += 1
                taken = backlog.taken(asked, returned) if self.device.live else returned
                self.owner._publish(image, taken, still, getattr(self.device, "scaled_from", None))
        except SourceError as exc:
            self.error = str(exc)
        except Exception as exc:  # a driver raising must not kill the supervisor
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            try:
                self.device.release()
            except Exception:
                log.debug("release failed", exc_info=True)
            self.done.set()


#: a picture whose grey levels span no more than this: a covered lens or a dark night,
#: which some cameras give bit for bit again and again. Repeated, it is published as a
#: still frame: the camera is alive (no watchdog restarts into start-limit-hit), but the
#: door never scores it (a frozen dark picture of a smile can still score happy)
FLAT_RANGE = 24


def _flat(image: np.ndarray) -> bool:
    sample = image[::8, ::8]
    return sample.size > 0 and int(sample.max()) - int(sample.min()) <= FLAT_RANGE


class Backlog:
    """When a live camera's frame was taken, as far as the door may assume.

    A frame's time is when its read returned, which is when it was taken only while
    the device waits on its sensor. A read that blocks far longer than usual and
    longer than ``stale_after`` is a hang (a stream stalled, a USB hiccup, a reconnect,
    a camera warming up), and the driver or the network may then hand over what it
    buffered meanwhile: reads quicker than a frame interval. The hang's frame and those
    are dated from when the hang began, 1/120 s apart (no camera here is faster), so
    none is dated younger than it is: the door sees them as stale and resets its vote.
    The backlog ends at the first read that waits on the sensor again (the buffer is
    drained), or once as long again as the hang has passed since it ended. What read
    timing cannot see: a decoder that drains a backlog at nearly the camera's own pace
    (its reads look like the sensor's).

    Two learnt waits: ``usual`` (never below the stated frame interval, hangs included)
    says what is a hang, so a camera slower than configured, or one that slows down at
    night, is not taken for one that keeps hanging; ``pace`` (learnt only from ordinary
    reads) says what read is quick, so a stream faster than it states is not taken for a
    drained buffer.
    """

    #: a hang: a read this many times longer than the usual wait (and over stale_after)
    HANG = 3.0
    #: a read quicker than this share of a frame interval came from a buffer
    QUICK = 0.9
    #: how fast the learnt waits follow the reads
    LEARN = 0.3
    #: the shortest frame interval believed (camera.fps allows at most 120): the hang's
    #: frames are dated this far apart, never younger than they can be
    FASTEST = 1.0 / 120

    def __init__(self, stale_after: float, interval: float) -> None:
        self.stale_after = float(stale_after)
        self.floor = self.usual = self.pace = float(interval)
        self.since: Optional[float] = None  # when the hang began; None: no backlog
        self.until = 0.0  # when the backlog ends at the latest
        self.count = 0

    def taken(self, asked: float, returned: float) -> float:
        waited, before = returned - asked, self.usual
        backlog = self.since is not None
        hang = waited > self.stale_after and waited > self.HANG * before
        quick = waited < self.QUICK * min(self.floor, self.pace)
        if not (backlog and quick):  # a burst's quick reads teach nothing of the pace
            self.usual = max(self.floor, before + self.LEARN * (waited - before))
        if not (backlog or hang):
            self.pace = max(self.FASTEST, self.pace + self.LEARN * (waited - self.pace))
        if hang:
            if not backlog:
                self.since, self.count = asked, 0
            self.until = returned + (returned - self.since)
            return self.since + self.count * self.FASTEST
        if not backlog:
            return returned
        self.count += 1
        taken = self.since + self.count * self.FASTEST
        if not quick or returned > self.until or taken >= returned:
            self.since = None  # drained (it waited on the sensor), or held long enough
            return returned
        return taken


class ThreadedSource:
    """A device read by a worker thread; ``latest()`` never waits on the device itself."""

    def __init__(self, device_factory: Callable[[], Device], description: str,
                 stall_timeout: float = 3.0, backoff_max: float = 30.0,
                 open_timeout: Optional[float] = None, stale_after: float = 0.5,
                 fps: float = 15.0, remember: Optional[Path] = None,
                 write_memory: bool = True) -> None:
        self.description = description
        self.stale_after = float(stale_after)
        self.fps = float(fps)  # the requested rate: the frame interval where a device has none
        # fingerprints of the last pictures a live device gave, kept across reopens
        self._recent: Deque[int] = deque(maxlen=RECENT_PICTURES)
        # where they outlive the process (a frozen camera's restart); None: nowhere;
        # read by every tool, written by the service only
        self.remember, self.write_memory = remember, write_memory
        self._recall()
        self._factory = device_factory
        self.stall_timeout = float(stall_timeout)
        self.backoff_max = float(backoff_max)
        self.open_timeout = float(open_timeout if open_timeout is not None
                                  else max(OPEN_TIMEOUT_MIN, self.stall_timeout))
        self._cond = threading.Condition()
        self._frame: Optional[Frame] = None
        self._seq = 0
        self._returned = 0
        self._stop = threading.Event()
        self._supervisor: Optional[threading.Thread] = None
        self._worker: Optional[_Worker] = None
        self._first = threading.Event()
        self._first_error: Optional[str] = None
        self._require = True
        self.reopens = 0
        self.nominal_fps: Optional[float] = None

    # -- public interface
    def open(self, require: bool = True) -> None:
        """Start reading. ``require``: raise SourceError if the first open fails
        (the technician's tools); otherwise keep retrying in the background."""
        if self._supervisor is not None:
            return
        self._stop.clear()
        self._require = require
        self._first.clear()  # a reopen (service after a stall) reports its own first open
        self._first_error = None
        self._supervisor = threading.Thread(target=self._supervise, name="happyhouse-camera-watch",
                                            daemon=True)
        self._supervisor.start()
        if not require:
            return
        if not self._first.wait(self.open_timeout + 1.0):
            self._first_error = f"{self.description} did not open within {self.open_timeout:g} s"
        if self._first_error is not None:
            message = self._first_error
            self.close()
            raise SourceError(message)

    def latest(self, timeout: float) -> Optional[Frame]:
        deadline = time.monotonic() + max(0.0, float(timeout))
        with self._cond:
            while True:
                frame = self._frame
                if frame is not None and frame.seq > self._returned:
                    self._returned = frame.seq
                    return frame
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return None
                self._cond.wait(left)

    def why_silent(self) -> Optional[str]:
        """Why no new frame came, when the reader knows more than "none came": a camera
        repeating one picture is frozen, not silent (--check and --once said "is it
        delivering?" of a camera that delivered the same picture 45 times)."""
        worker = self._worker
        if worker is not None and worker.repeats:
            return (f"frozen: it delivers the same picture over and over ({worker.repeats} "
                    f"times): a stuck driver or camera; unplug and replug it, or reboot")
        return None

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(timeout=2.0)
        self._supervisor = None
        worker = self._worker
        if worker is not None:
            worker.abandoned = True
            worker.done.wait(timeout=1.0)  # a hung driver read is left behind (daemon thread)

    def __enter__(self) -> "ThreadedSource":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def frames_read(self) -> int:
        return self._seq

    # -- internals
    def frame_interval(self, device: Device) -> float:
        """Seconds between a device's frames: its own rate when it states a sane one."""
        fps = getattr(device, "nominal_fps", None)
        return 1.0 / (fps if fps is not None and 1.0 <= fps <= 120.0 else self.fps)

    def _seen_before(self, image: np.ndarray) -> bool:
        """Is ``image`` bit for bit one of the last pictures (remembered if not)?"""
        shape = zlib.crc32(str(image.shape).encode())
        picture = zlib.crc32(np.ascontiguousarray(image).data, shape)
        if picture in self._recent:
            return True
        self._recent.append(picture)
        return False

    def _recall(self) -> None:
        """The pictures a frozen camera repeated before this process started (a frozen
        camera ends in a watchdog restart, and a new process must not take the picture
        it froze on for news: with votes_needed = 1 that opened the door per restart)."""
        if self.remember is None:
            return
        try:
            text = self.remember.read_text(encoding="ascii")
            self._recent.extend(int(word) for word in text.split()[-RECENT_PICTURES:])
        except (OSError, ValueError, UnicodeDecodeError):
            pass  # nothing remembered (no camera froze yet, another user's file): nothing to skip

    def _remember_frozen(self) -> None:
        """Keep the last pictures where the next process finds them (written only when
        a camera repeats a picture: never on a healthy camera)."""
        if self.remember is None or not self.write_memory:
            return
        text = " ".join(str(p) for p in list(self._recent)) + "\n"
        try:
            write_file_whole(self.remember, text.encode("ascii"), "the frozen camera's pictures")
        except DataError as exc:  # a read-only or full state disk: the door runs on
            log.debug("%s", exc)

    def _publish(self, image: np.ndarray, timestamp: float, still: bool = False,
                 scaled_from: Optional[Tuple[int, int]] = None) -> None:
        with self._cond:
            self._seq += 1
            # older frames are dropped
            self._frame = Frame(image, timestamp, self._seq, still, scaled_from)
            self._cond.notify_all()

    def _report_first(self, error: Optional[str]) -> None:
        if not self._first.is_set():
            self._first_error = error
            self._first.set()

    def _supervise(self) -> None:
        backoff = BACKOFF_START
        while not self._stop.is_set():
            worker = _Worker(self, self._factory())
            self._worker = worker
            worker.thread.start()
            reason = self._watch(worker)
            worker.abandoned = True
            if self._require and self._first_error is not None:
                break  # open() raises for the caller: no retries, no "lost" warning
            if worker.frames:
                backoff = BACKOFF_START  # it worked for a while: retry soon
            if self._stop.is_set():
                break
            self.reopens += 1
            log.warning("camera %s lost: %s; reopening in %.1f s", self.description, reason,
                        backoff, extra={"journal": {"event": "camera_lost"}})
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2.0, self.backoff_max)

    def _watch(self, worker: _Worker) -> str:
        """Block while ``worker`` delivers; return why it is being replaced."""
        deadline = time.monotonic() + self.open_timeout
        while not worker.opened.is_set():
            if worker.done.is_set():
                self._report_first(worker.error or "open failed")
                return worker.error or "open failed"
            if self._stop.is_set():
                return "stopped"
            if time.monotonic() > deadline:
                reason = f"{self.description} did not open within {self.open_timeout:g} s"
                self._report_first(reason)
                return reason
            worker.opened.wait(0.05)
        self.nominal_fps = getattr(worker.device, "nominal_fps", None)
        self._report_first(None)
        tick = min(0.1, self.stall_timeout / 4.0)
        while not self._stop.is_set():
            if worker.done.wait(tick):
                return worker.error or "the device closed"
            silent = time.monotonic() - worker.last_frame
            if silent > self.stall_timeout:
                if worker.repeats:
                    return (f"frozen: the same picture {worker.repeats} times and no new one for "
                            f"{silent:.1f} s (stall_timeout {self.stall_timeout:g} s)")
                return f"no frame for {silent:.1f} s (stall_timeout {self.stall_timeout:g} s)"
        return "stopped"


# --------------------------------------------------------------------------
# Building sources from a spec string.


#: kinds of source that replay what was recorded elsewhere or earlier, not the door now
RECORDINGS = ("images", "h5", "video")


def refuse_recording_on_a_real_latch(source, mock_latch: bool) -> None:
    """A recording (pictures, a video, an HDF5 file) may drive a mock latch only: on a
    real one a picture of a smile would open the door, again after every cooldown (a demo
    path left in ``[camera] source``). Sources without a kind (fakes) are let through."""
    kind = getattr(source, "kind", None)
    if kind in RECORDINGS and not mock_latch:
        raise ConfigError(f"[camera] source {getattr(source, 'description', kind)} is a "
                          f"recording, not a live camera: it may only drive a mock latch "
                          f"(--gpio mock); a recorded smile must never open a real door")


#: the highest camera index a source may name: OpenCV reads an index of 100 or more as a
#: backend's number plus a camera (200 is V4L2's camera 0), and a huge one as an overflow
MAX_CAMERA_INDEX = 99


def camera_index(text: str) -> Optional[int]:
    """The camera index ``text`` names (plain ASCII digits), or None when it names none.

    Only ASCII digits: ``str.isdigit()`` also passes '²' (which ``int()`` refuses: a
    traceback once) and a full-width '０' (which ``int()`` reads as camera 0).
    """
    if not (text.isascii() and text.isdigit()):
        return None
    index = int(text)
    if index > MAX_CAMERA_INDEX:
        raise SourceError(f"camera index {text} is out of range (0 to {MAX_CAMERA_INDEX}); for "
                          f"a device give its path, e.g. /dev/video0")
    return index


def classify_spec(spec: str) -> str:
    """``camera`` | ``v4l2`` | ``stream`` | ``gstreamer`` | ``images`` | ``h5`` | ``video``."""
    text = str(spec).strip()
    if not text:
        raise SourceError("camera source is empty: give a camera index, /dev/videoN, a URL, "
                          "a GStreamer pipeline, a video, an image or a folder")
    if camera_index(text) is not None:
        return "camera"
    if text.lower().startswith(STREAM_SCHEMES):
        return "stream"
    if "!" in text:
        return "gstreamer"
    if text.startswith("/dev/"):  # /dev/videoN, or a name that survives a replug:
        return "v4l2"  # /dev/v4l/by-id/... (it was taken for a video file: a recording)
    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError(f"camera source {text!r} does not exist (not a camera index, device, "
                          f"URL, GStreamer pipeline or file)")
    if path.is_dir():
        return "images"
    # by what the file holds, not its name: a JPEG saved as .jfif or .HEIC was played as a
    # video (no EXIF turn, not scaled to the camera size: "no face")
    kind = file_kind(path)
    if kind == "heif":
        raise SourceError(f"{path} is {HEIF_HINT}")
    if (kind is not None or path.suffix.lower() in PICTURE_EXTS) and _decodable(path, kind):
        return "images"
    if path.suffix.lower() in H5_EXTS:
        return "h5"
    return "video"


def frozen_pictures_file(cfg) -> Path:
    """Where a frozen camera's pictures outlive a restart: the state folder (written
    only while a camera repeats a picture; systemd empties the runtime folder on every
    restart)."""
    return Path(cfg.service_state_dir).expanduser() / "frozen-camera-pictures"


def _decodable(path: Path, kind: Optional[str]) -> bool:
    """Can this OpenCV decode the picture (GIF only since OpenCV 4.12; before, FFmpeg
    plays one as a video, as it did)?"""
    if kind != "gif" and not (kind is None and path.suffix.lower() == ".gif"):
        return True
    import cv2

    try:
        return bool(cv2.haveImageReader(str(path)))
    except cv2.error:
        return False


class CameraSized:
    """Pictures replayed as a camera: each at the camera's size, as ``happyhouse-eval``
    scores a whole frame and as the camera would deliver it. The service replayed a
    picture at its own size while ``--once`` scaled it to the camera size: the same
    portrait picture of a neutral face was "not happy 0.001" in one and HAPPY 0.976 in
    the other."""

    def __init__(self, read: Callable[[int], Optional[np.ndarray]], width: int, height: int,
                 where: Path) -> None:
        self._read, self.width, self.height, self.where = read, int(width), int(height), where
        #: the (width, height) of the last picture read, when it was not the camera's
        self.last_scaled_from: Optional[Tuple[int, int]] = None
        self._warned = False

    def __call__(self, index: int) -> Optional[np.ndarray]:
        from .preprocess import shape_differs, to_camera_size

        image = self._read(index)
        if image is None:
            return None
        size = (int(image.shape[1]), int(image.shape[0]))
        self.last_scaled_from = None if size == (self.width, self.height) else size
        if self.last_scaled_from and not self._warned and shape_differs(size, self.width, self.height):
            self._warned = True  # once: a folder of such pictures is one line, not one a frame
            log.warning("%s: a %dx%d picture is replayed stretched to the camera's %dx%d "
                        "([camera] width, height), which distorts faces: give pictures of the "
                        "camera's shape", self.where, size[0], size[1], self.width, self.height)
        return to_camera_size(image, self.width, self.height)


def open_source(spec: str, cfg, stall_timeout: Optional[float] = None,
                remember: bool = False) -> ThreadedSource:
    """A not-yet-opened source for ``spec``; call ``open()`` or use it as a context manager.
    ``remember``: keep a frozen live camera's pictures in the state folder for the next
    process (the service only: a tool run as root would leave a file the service cannot
    read); every live source reads them."""
    import cv2

    kind = classify_spec(spec)
    text = str(spec).strip()
    width, height, fps = cfg.camera_width, cfg.camera_height, cfg.camera_fps
    stall = cfg.camera_stall_timeout if stall_timeout is None else stall_timeout
    left_out: List[str] = []
    if kind in ("images", "h5"):
        path = Path(text).expanduser()
        if kind == "h5":
            count, get = h5_frames(path, width, height)
        else:
            count, read, left_out = read_pictures(path)
            get = CameraSized(read, width, height, path)
        description = f"{'HDF5' if kind == 'h5' else 'images'} {path} ({count} frame(s) at {fps:g} fps)"

        def factory():
            return ReplayDevice(count, get, fps, description)
    else:
        if kind == "gstreamer" and not gstreamer_available():
            raise SourceError("this OpenCV build has no GStreamer (the pip wheel lacks it): on a Pi "
                              "install Debian's python3-opencv, or use /dev/videoN")
        target, api = {
            "camera": (camera_index(text), cv2.CAP_ANY),
            "v4l2": (text, getattr(cv2, "CAP_V4L2", cv2.CAP_ANY)),
            "stream": (text, cv2.CAP_FFMPEG),
            "gstreamer": (text, cv2.CAP_GSTREAMER),
            "video": (str(Path(text).expanduser()), cv2.CAP_ANY),
        }[kind]
        description = {"camera": f"camera {text}", "v4l2": text, "stream": text,
                       "gstreamer": f"GStreamer pipeline {text}", "video": f"video {text}"}[kind]

        def factory():
            return CaptureDevice(target, api, kind, description, width, height, fps)
    # what every log line, --once, --check and sd_notify show: no password, one line (the
    # factories read it when they run, so they see the cleaned text too)
    description = clean(description)
    source = ThreadedSource(factory, description, stall, cfg.camera_reopen_backoff_max,
                            stale_after=cfg.camera_stale_after, fps=fps,
                            remember=frozen_pictures_file(cfg) if kind not in RECORDINGS else None,
                            write_memory=remember)
    source.kind = kind
    # a replayed folder's files that are not replayed: --check said GO with 4 of 9 left out
    source.left_out = left_out
    # how many frames one pass of a recording holds (None: a live camera, or not known):
    # --collect reads a recording once
    source.replay_frames = (count if kind in ("images", "h5")
                            else _video_frames(target) if kind == "video" else None)
    return source


def _video_frames(path: str) -> Optional[int]:
    """The frame count a video file's container states (None where it states none: a raw
    motion-JPEG or H.264 stream)."""
    import cv2

    cap = cv2.VideoCapture(path)
    try:
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT) if cap.isOpened() else 0
    finally:
        cap.release()
    return int(count) if count and 0 < count < 1e9 else None

