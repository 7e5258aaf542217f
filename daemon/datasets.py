"""Labelled face images in the two formats a user brings.

* class folders: ``ROOT/happy/*.jpg`` and ``ROOT/not_happy/*.jpg`` (1 = happy)
* course HDF5: ``train_set_x``/``train_set_y`` or ``test_set_x``/``test_set_y``

Images come back as uint8 RGB. Unreadable files are skipped, counted and named
(:func:`unreadable_line`), never fatal; a wrong layout, an empty class or one with
no readable file is a clear DataError. Used by
training, conversion checks and ``happyhouse-eval`` alike (no TensorFlow).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import DataError
from .filesafety import real_path
from .pictures import MIN_PICTURE_SIDE, PICTURE_EXTS, list_pictures, read_picture

log = logging.getLogger(__name__)

CLASSES = ("not_happy", "happy")  # index = label
DATA_ENV = "HAPPYHOUSE_DATA"


@dataclass
class Dataset:
    images: np.ndarray  # N x H x W x 3 uint8 RGB
    labels: np.ndarray  # N int64, 1 = happy
    ids: List[str]  # file path, or "file.h5#index"
    skipped: List[Tuple[str, str]] = field(default_factory=list)  # (id, reason)
    sources: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: Sequence[int]) -> "Dataset":
        index = np.asarray(index, dtype=np.int64)
        return Dataset(self.images[index], self.labels[index], [self.ids[i] for i in index],
                       list(self.skipped), list(self.sources))

    def summary(self) -> dict:
        return {"sources": list(self.sources), "n": int(len(self)),
                "happy": int(self.labels.sum()), "not_happy": int(len(self) - self.labels.sum()),
                "skipped": len(self.skipped)}


def unreadable_line(skipped: Sequence[Tuple[str, str]], shown: int = 3) -> str:
    """"" or one line naming the files that could not be read (a copy cut short, a full disk).

    They are left out, never fatal, but a person must hear of them: a class folder that
    lost half its frames judges, trains and adapts on the other half.
    """
    if not skipped:
        return ""
    names = [f"{Path(i).parent.name}/{Path(i).name} ({why})" for i, why in skipped[:shown]]
    more = f" and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return (f"left out {len(skipped)} file(s) that could not be read: "
            f"{', '.join(names)}{more}")


def data_root() -> Optional[Path]:
    """The shared datasets folder from ``HAPPYHOUSE_DATA``, or None if unset/missing."""
    value = os.environ.get(DATA_ENV)
    if not value:
        return None
    # absolute, so paths derived from it stay valid from any working directory
    path = Path(value).expanduser().resolve()
    return path if path.is_dir() else None


def _read_image(path: Path, size: Optional[int],
                frame_size: Optional[Tuple[int, int]] = None
                ) -> Tuple[np.ndarray, Tuple[int, int]]:
    """(the RGB picture in ``path``, its own width and height), read by the rules every tool
    reads pictures by (:mod:`.pictures`: its header's size before any decode, a regular
    file): at ``size`` x ``size``, else, larger than the camera's ``frame_size``, scaled to
    it as the door scales what it replays, else as it is. ValueError: why it cannot be read."""
    import cv2

    bgr = read_picture(path)
    own = (int(bgr.shape[1]), int(bgr.shape[0]))
    if frame_size is not None and size is None and own[0] * own[1] > frame_size[0] * frame_size[1]:
        from .preprocess import to_camera_size

        # at once, not after the folder is read: 3024x4032 phone photos were all kept whole
        # (a smaller one waits: 64x64 face crops scaled up at once took 75 times the memory)
        return cv2.cvtColor(to_camera_size(bgr, *frame_size), cv2.COLOR_BGR2RGB), own
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if size is not None and rgb.shape[:2] != (size, size):
        interp = cv2.INTER_AREA if max(rgb.shape[:2]) > size else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (size, size), interpolation=interp)
    return rgb, own


def load_class_folders(root: Union[str, Path], size: Optional[int] = 64,
                       limit: Optional[int] = None,
                       frame_size: Optional[Tuple[int, int]] = None) -> Dataset:
    """``ROOT/happy`` and ``ROOT/not_happy``; ``limit`` caps images per class (tests).

    ``size=None`` with ``frame_size`` (a camera's width, height): a picture larger than the
    camera's frame is scaled to it as the door scales a replayed one, at once; smaller ones
    keep their size (the door path scales each when it scores it: the same pixels) unless
    the pictures differ in size (a camera whose resolution changed between collecting
    sessions), when all are scaled; said once when that stretches a frame of another shape.
    ``size=None`` without it keeps each picture's own size, and pictures that differ in
    size are an error.
    """
    from .preprocess import shape_differs

    root = Path(root)
    images, labels, ids, skipped, stretched = [], [], [], [], []
    for label, name in enumerate(CLASSES):
        folder = root / name
        if not folder.is_dir():
            # a file of that name (an archive unpacked beside it, a stray `touch`) is there
            what = ("is a file, not a folder" if folder.exists()
                    else "is a link to nothing" if folder.is_symlink() else "is missing")
            raise DataError(f"{root} is not a class-folder dataset: {folder} {what} "
                            f"(expected folders {root}/happy and {root}/not_happy)")
        try:
            # the pictures every tool reads (pictures.py): hidden files are not the house's
            # frames (a stray .smile.png was counted as a not-smiling frame)
            listing = list_pictures(folder)
        except OSError as exc:  # a 0700 folder from --collect, copied with rsync -a
            raise DataError(f"{folder} cannot be listed ({exc.strerror or exc}): make it "
                            f"readable (chmod -R u+rX) or copy it again") from None
        if listing.passed_over:
            log.warning("%s", listing.passed_over_line())
        files = listing.pictures
        if limit is not None:
            files = files[:limit]
        if not files:
            raise DataError(f"{folder} holds no images ({', '.join(PICTURE_EXTS)})"
                            + (f" ({listing.passed_over_line()})" if listing.passed_over else "")
                            + ": both classes need examples")
        unreadable = []
        for path in files:
            try:
                image, own = _read_image(path, size, frame_size)
            except (ValueError, OSError) as exc:
                unreadable.append((str(path), str(exc)))
                continue
            if frame_size is not None and size is None and shape_differs(own, *frame_size):
                stretched.append(path.name)
            images.append(image)
            labels.append(label)
            ids.append(str(path))
        if len(unreadable) == len(files):
            raise DataError(f"{folder}: none of its {len(files)} image files can be read "
                            f"(first: {files[0].name}, {unreadable[0][1]}): both classes "
                            f"need examples")
        skipped += unreadable
    if not images:
        raise DataError(f"{root}: no readable images")
    if stretched:  # a portrait phone photo, squashed to the camera's shape without a word
        # (said when any frame is of another shape: all of them portrait was said of none)
        log.warning("%s: %d frame(s) not of the camera's shape (%dx%d) are stretched to it, "
                    "which distorts faces (first: %s): give frames the door's camera took",
                    root, len(stretched), frame_size[0], frame_size[1], stretched[0])
    if size is None and len({im.shape for im in images}) > 1:
        if frame_size is None:
            raise DataError(f"{root}: images differ in size; pass a size to resize them")
        from .preprocess import to_door_frame

        # the very pixels the door path makes of each frame (to_door_frame gives BGR)
        images = [im if (im.shape[1], im.shape[0]) == tuple(frame_size)
                  else np.ascontiguousarray(to_door_frame(im, *frame_size)[..., ::-1])
                  for im in images]
    return Dataset(np.stack(images), np.asarray(labels, np.int64), ids, skipped, [str(root)])


#: the smallest frame side a course HDF5 may hold (the same floor as a picture file's)
MIN_FRAME_SIDE = MIN_PICTURE_SIDE


def repeated_source(paths: Sequence[Union[str, Path]]) -> Optional[str]:
    """The first of ``paths`` that names the same file or folder as an earlier one (its
    images would be counted twice)."""
    seen = set()
    for path in paths:
        resolved = real_path(path)
        if resolved in seen:
            return str(path)
        seen.add(resolved)
    return None


def refuse_test_split(paths: Sequence[Union[str, Path]], use: str) -> None:
    """DataError naming the first course HDF5 among ``paths`` that holds a *test* split
    (``test_set_x``): test frames are for evaluation only, never for ``use`` (training,
    calibration), or the figures measured on them say nothing about a door never seen."""
    for path in paths:
        path = Path(path).expanduser()
        if path.suffix.lower() not in (".h5", ".hdf5") or not path.is_file():
            continue
        try:
            import h5py

            with h5py.File(path, "r") as handle:
                held = "test_set_x" in handle and "train_set_x" not in handle
        except (ImportError, OSError):
            continue  # the loader names an unreadable file in its own words
        if held:
            raise DataError(f"{path} holds a test split (test_set_x): test frames are for "
                            f"evaluation only (happyhouse-eval), not for {use}; give training "
                            f"data (a train_set HDF5 or class folders)")


def load_hdf5(path: Union[str, Path], size: Optional[int] = None,
              limit: Optional[int] = None) -> Dataset:
    """The course HDF5 layout (``*_set_x`` uint8 NxHxWx3, ``*_set_y`` labels)."""
    try:
        import h5py
    except ImportError:
        raise DataError("reading .h5 datasets needs h5py (pip install h5py)") from None
    path = Path(path)
    try:
        with h5py.File(path, "r") as handle:
            keys = set(handle.keys())
            for prefix in ("train_set", "test_set"):
                if {f"{prefix}_x", f"{prefix}_y"} <= keys:
                    x = _hdf5_array(handle, f"{prefix}_x", path, limit)
                    y = _hdf5_array(handle, f"{prefix}_y", path, limit).reshape(-1)
                    break
            else:
                raise DataError(f"{path} has keys {sorted(keys)}; expected train_set_x/"
                                f"train_set_y or test_set_x/test_set_y")
    # TypeError/ValueError: h5py's own words for a layout it cannot slice (past the checks
    # in _hdf5_array), still a file to mend, not a bug
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path} is not a readable HDF5 file: {exc}") from None
    if len(x) == 0:
        # nothing to score, train on or calibrate with: every user of the data fails
        # further on (an empty stack, a rate of 0/0) without naming the file
        raise DataError(f"{path}: {prefix}_x holds no frames: give a course HDF5 with images")
    if x.ndim != 4 or x.shape[-1] != 3 or x.dtype != np.uint8 or len(x) != len(y):
        raise DataError(f"{path}: expected uint8 N x H x W x 3 images with N labels, "
                        f"got {x.dtype} {x.shape} and {y.shape}")
    if min(x.shape[1:3]) < MIN_FRAME_SIDE:
        # a 3x0x64x3 stack passed, and the door service then called its camera "lost"
        # on every frame (an OpenCV assertion) without ever naming the file
        raise DataError(f"{path}: its frames are {x.shape[2]}x{x.shape[1]} pixels; a frame "
                        f"needs at least {MIN_FRAME_SIDE} pixels a side to hold a face")
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise DataError(f"{path}: labels must be 0 (not happy) or 1 (happy)")
    if size is not None and x.shape[1:3] != (size, size):
        import cv2

        x = np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in x])
    ids = [f"{path}#{i}" for i in range(len(x))]
    return Dataset(x, y.astype(np.int64), ids, [], [str(path)])


def _hdf5_array(handle, key: str, path: Path, limit: Optional[int]) -> np.ndarray:
    """``handle[key][:limit]``, or DataError when ``key`` is not an array of one entry per
    frame (a group, a single value, an empty dataspace), which h5py cannot slice."""
    import h5py

    item = handle[key]
    if isinstance(item, h5py.Group):
        raise DataError(f"{path}: {key} is a group, not an array with one entry per frame")
    if not isinstance(item, h5py.Dataset) or not item.shape:  # shape () or None: no frames axis
        raise DataError(f"{path}: {key} is a single value, not an array with one entry per frame")
    return np.asarray(item[:limit])


def load_dataset(path: Union[str, Path], size: Optional[int] = 64,
                 limit: Optional[int] = None,
                 frame_size: Optional[Tuple[int, int]] = None) -> Dataset:
    """Either format, by what ``path`` is (``frame_size``: :func:`load_class_folders`)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"dataset {path} does not exist")
    if path.is_file():
        if path.suffix.lower() in (".h5", ".hdf5"):
            return load_hdf5(path, size, limit)
        raise DataError(f"{path} is a file but not .h5: give a class-folder root or a course HDF5")
    return load_class_folders(path, size, limit, frame_size)


def load_many(paths: Sequence[Union[str, Path]], size: int = 64,
              limit: Optional[int] = None) -> Dataset:
    """Several sources combined (each must have the same image size)."""
    if not paths:
        raise DataError("no dataset given")
    parts = [load_dataset(p, size, limit) for p in paths]
    return Dataset(np.concatenate([p.images for p in parts]),
                   np.concatenate([p.labels for p in parts]),
                   [i for p in parts for i in p.ids],
                   [s for p in parts for s in p.skipped],
                   [s for p in parts for s in p.sources])
