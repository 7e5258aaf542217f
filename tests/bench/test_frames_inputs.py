"""Frames the benchmark is given: class folders whose frames differ in size."""

import cv2
import numpy as np

from happyhouse.bench.frames import load_frames
from happyhouse.daemon.preprocess import to_door_frame


def test_frames_of_several_sizes_are_scaled_to_the_camera_size(tmp_path):
    # before: "images differ in size; pass a size to resize them", and bench has no such flag
    rng = np.random.default_rng(0)
    frames = {"happy/a.png": rng.integers(0, 256, (48, 64, 3), np.uint8),
              "not_happy/b.png": rng.integers(0, 256, (120, 160, 3), np.uint8)}
    for name, rgb in frames.items():
        (tmp_path / name).parent.mkdir()
        cv2.imwrite(str(tmp_path / name), rgb[..., ::-1])
    got = load_frames(tmp_path, size=(640, 480))
    assert len(got) == 2 and all(f.shape == (480, 640, 3) for f in got.bgr)
    # the pixels the door path makes of each frame
    happy = got.labels.tolist().index(1)
    assert np.array_equal(got.bgr[happy], to_door_frame(frames["happy/a.png"], 640, 480))
