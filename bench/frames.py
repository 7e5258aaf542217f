"""Frames for the benchmark: real Happy House door frames at camera resolution.

The tutorial's test frames are 64x64 RGB; the door camera delivers 640x480.
Each frame is scaled up with the daemon's own ``preprocess.to_door_frame`` (as
HDF5 replay and ``happyhouse-eval`` do) so the face gate searches a full
camera frame and finds real faces.

The capture side is modelled too: a V4L2 webcam at 640x480 usually delivers
packed YUYV, which OpenCV's capture converts to BGR for every frame. The
"frame" stage times that conversion plus the new Frame, and
:func:`live_source` replays the frames in real time through the daemon's own
newest-frame reader (``sources.ThreadedSource``) for the frame-age test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from happyhouse.daemon.errors import DataError

DEFAULT_DATA = Path("happy-house") / "test_happy.h5"


def default_data_path() -> Optional[Path]:
    root = os.environ.get("HAPPYHOUSE_DATA")
    return Path(root) / DEFAULT_DATA if root else None


def bgr_to_yuyv(bgr: np.ndarray) -> np.ndarray:
    """Pack a BGR frame as YUYV 4:2:2 (H x W x 2), the format a webcam sends."""
    import cv2

    return cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_YUYV)


def yuyv_to_bgr(yuyv: np.ndarray) -> np.ndarray:
    """What the capture backend does per frame: YUYV -> a new BGR array."""
    import cv2

    return cv2.cvtColor(yuyv, cv2.COLOR_YUV2BGR_YUYV)


@dataclass
class BenchFrames:
    bgr: List[np.ndarray]
    yuyv: List[np.ndarray]
    labels: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.bgr)


def load_frames(path: Union[str, Path, None], limit: Optional[int] = None,
                size: Tuple[int, int] = (640, 480)) -> BenchFrames:
    """Door frames from an HDF5 file or class folders, at camera resolution."""
    from happyhouse.daemon.datasets import load_dataset
    from happyhouse.daemon.preprocess import to_door_frame

    if path is None:
        raise DataError("no frames: pass --data (test_happy.h5 or class folders) or set "
                        "HAPPYHOUSE_DATA to the shared datasets folder")
    # frames of several sizes (a camera changed between sessions) are scaled to the
    # camera size here, as each one is below anyway: bench has no size flag to pass
    data = load_dataset(path, size=None, limit=limit, frame_size=size)
    if len(data) == 0:
        raise DataError(f"{path} holds no readable frames")
    bgr = [to_door_frame(img, *size) for img in data.images]
    return BenchFrames(bgr, [bgr_to_yuyv(f) for f in bgr], data.labels, str(path))


def live_source(yuyv: List[np.ndarray], fps: float = 30.0):
    """The daemon's newest-frame reader over a device producing ``fps`` frames a second.

    The device thread converts each YUYV frame to BGR as a capture backend
    would and stamps it with ``time.monotonic()``; ``latest()`` hands out the
    newest frame not returned before, dropping the rest.
    """
    from happyhouse.daemon.devices import ReplayDevice
    from happyhouse.daemon.sources import ThreadedSource

    description = f"bench replay ({fps:g} fps, {len(yuyv)} frames looped)"
    return ThreadedSource(
        lambda: ReplayDevice(len(yuyv), lambda i: yuyv_to_bgr(yuyv[i]), fps, description),
        description, stall_timeout=3.0)
