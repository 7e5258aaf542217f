"""Training data: the shared loaders plus a stratified, seeded split by file.

Loading itself lives in ``happyhouse.daemon.datasets`` (one reader for
training, conversion checks and evaluation); this module only decides which
files train and which validate.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence, Tuple

import logging
import time

import numpy as np

from happyhouse.daemon.datasets import CLASSES, Dataset, load_dataset, load_many, unreadable_line
from happyhouse.daemon.errors import DataError
from happyhouse.daemon.preprocess import Preprocess, prepare_image

log = logging.getLogger("happyhouse.train")


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): each class split separately so both keep its ratio.

    Every index is one file, so no image can land on both sides. The same
    labels and seed always give the same split.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"validation fraction must be between 0 and 1, got {val_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in (0, 1):
        idx = np.flatnonzero(labels == cls)
        if len(idx) < 2:
            raise DataError(f"class {cls} has {len(idx)} image(s): a validation split needs "
                            f"at least 2 per class")
        idx = rng.permutation(idx)
        n_val = min(len(idx) - 1, max(1, int(round(len(idx) * val_fraction))))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


#: which faces a ``--source-cap`` keeps, unless told otherwise
DEFAULT_CAP_SEED = 0


def parse_source_caps(items: Sequence[str]) -> Dict[str, int]:
    """``["smilesmiled=1500"]`` -> ``{"smilesmiled": 1500}``; a clear error for anything else."""
    caps: Dict[str, int] = {}
    for item in items:
        name, _, count = str(item).partition("=")
        try:
            n = int(count)
        except ValueError:
            n = -1
        if not name or n < 1 or name in caps:
            raise DataError(f"--source-cap {item!r}: give SOURCE=N once per source, SOURCE the "
                            f"data folder's name and N a positive number of faces")
        caps[name] = n
    return caps


def capped(face_ids: Sequence[str], caps: Mapping[str, int], seed: int = DEFAULT_CAP_SEED) -> np.ndarray:
    """Which faces a model learns from: every face, except at most ``caps[source]`` of a
    capped source (its data folder's name), picked at random (``seed``) from its faces."""
    from .audits import face_name

    if not caps:  # no names needed: any data layout (course .h5 too) keeps every face
        return np.ones(len(face_ids), bool)
    source = np.array([face_name(i).split("/")[0] for i in face_ids])
    unknown = sorted(set(caps) - set(source))
    if unknown:
        raise DataError(f"--source-cap names {', '.join(unknown)}, which is not among the "
                        f"training faces' sources ({', '.join(sorted(set(source)))})")
    keep = np.ones(len(source), bool)
    rng = np.random.default_rng(seed)
    for name in sorted(caps):
        faces = np.flatnonzero(source == name)
        if len(faces) > caps[name]:
            keep[faces] = False
            keep[rng.choice(faces, caps[name], replace=False)] = True
    return keep


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number (0..k-1) for every index, each class dealt round-robin after a shuffle."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        if len(idx) < k:
            raise DataError(f"{CLASSES[cls]} has {len(idx)} images, fewer than the {k} folds "
                            f"asked for")
        fold[idx] = (np.arange(len(idx)) + offset) % k
        offset += len(idx)
    return fold


#: two face crops whose 16x16 grey thumbnails differ by less than this mean level (0-255)
#: are one burst of the same face (shifted a few pixels, the light flickering): frames of
#: distinct faces, even at a dark, soft door, differ by 5 or more (measured: a burst 0.3-1.9,
#: distinct darkened faces 5.2-11.8, distinct clear faces 17-38)
BURST_LEVEL = 4.0


def near_duplicate_groups(crops_rgb: np.ndarray, has_face: np.ndarray,
                          level: float = BURST_LEVEL) -> np.ndarray:
    """A group number for every frame: face frames whose crops are near-identical (a burst)
    share one, linked in chains; every other frame is a group of its own."""
    import cv2

    n = len(crops_rgb)
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    faces = np.flatnonzero(np.asarray(has_face, bool))
    if len(faces) > 1:
        thumbs = np.stack([cv2.resize(cv2.cvtColor(np.ascontiguousarray(crops_rgb[i]), cv2.COLOR_RGB2GRAY),
                                      (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
                           for i in faces])
        for a in range(len(faces)):
            near = np.flatnonzero(np.mean(np.abs(thumbs[a + 1:] - thumbs[a]), axis=1) < level)
            for b in near + a + 1:
                ra, rb = root(faces[a]), root(faces[b])
                if ra != rb:
                    parent[rb] = ra
    return np.array([root(i) for i in range(n)])


def stratified_group_folds(labels: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number for every index, each group (a burst) whole in one fold: a frame and its
    near-copy on both sides of a split flattered the estimate (119 of 124 "unseen" frames
    had a copy among the training frames; an adapted bundle accepted as better than the
    door's was worse on new frames). Groups are dealt largest first to the fold holding the
    fewest frames of their class, so the classes stay spread as with single frames."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), dtype=np.int64)
    held = np.zeros((k, 2), dtype=np.int64)
    ids = rng.permutation(np.unique(groups))
    members = {g: np.flatnonzero(groups == g) for g in ids}
    for g in sorted(ids, key=lambda g: -len(members[g])):  # stable: shuffled ties stay shuffled
        idx = members[g]
        cls = int(round(float(np.mean(labels[idx]))))
        order = np.lexsort((rng.random(k), held.sum(axis=1), held[:, cls]))
        fold[idx] = order[0]
        held[order[0], cls] += len(idx)
    for cls in (0, 1):
        if (held[:, cls] == 0).any() and (labels == cls).any():
            raise DataError(f"{CLASSES[cls]}: its frames fall in {len(np.unique(groups[labels == cls]))} "
                            f"bursts of near-identical frames, fewer than the {k} folds asked for: "
                            f"collect frames at other times (or lower --k)")
    return fold


def load_training_data(paths: Sequence[str], spec: Preprocess, limit: Optional[int] = None) -> Dataset:
    """All sources combined, each image passed through the preprocessing contract."""
    data = load_many(list(paths), size=spec.size, limit=limit)
    if data.skipped:
        log.warning("%s", unreadable_line(data.skipped))
    data.images = np.stack([prepare_image(im, spec) for im in data.images])
    return data


def door_face_crops(frames_rgb: np.ndarray, spec: Preprocess, cfg=None, level=None):
    """Whole door frames -> (face crops exactly as the daemon would make them, has_face).

    Each frame is scaled to the camera's size (``to_door_frame``), passed
    through the face gate, and cropped by the preprocessing contract, so a
    house model learns from the pixels the door will score. ``cfg``: the
    door's own config (its camera size and ``[face]`` settings); default, the
    built-in one (640x480, the shipped gate). ``level``: the geometry stage the
    model's bundle will carry; a stage that levels a rolled head's crop
    (:meth:`happyhouse.daemon.geometry.Geometry.level`) levels these crops the same way.
    """
    from happyhouse.daemon.config import load_config
    from happyhouse.daemon.facegate import FaceGate
    from happyhouse.daemon.preprocess import prepare_frame
    from happyhouse.daemon.preprocess import to_door_frame

    cfg = cfg or load_config(None, {"latch.gpio": "mock"})
    gate = FaceGate.from_config(cfg)
    crops = np.zeros((len(frames_rgb), spec.size, spec.size, 3), np.uint8)
    found = np.zeros(len(frames_rgb), bool)
    started = time.monotonic()
    for i, rgb in enumerate(frames_rgb):
        frame = to_door_frame(rgb, cfg.camera_width, cfg.camera_height)
        box = gate.find(frame)
        if box is not None:
            turn = 0.0
            if level is not None and level.levels:  # the roll measured as the door measures it
                turn = level.level(frame, box, spec.geometric(), gate.eye_roll)[2]
            crops[i] = prepare_frame(frame, box, spec, turn=turn)
            found[i] = True
    log.info("face gate: a face in %d of %d frames (%.1fs)", found.sum(), len(found),
             time.monotonic() - started)
    return crops, found


def load_door_frames(paths: Sequence[str], spec: Preprocess, limit: Optional[int] = None,
                     level=None) -> Dataset:
    """A house's own whole door-camera frames -> the face crops the door would score.

    Frames larger than the door camera's, and all of them where they differ in size, are
    scaled to the camera's size when read, as the door path scales them anyway; then gated;
    a frame without a face is skipped and counted, as a corrupt file is.
    """
    from happyhouse.daemon.config import load_config

    if spec.crop != "face":
        raise DataError("door frames are gated and cropped to the face: use crop mode 'face'")
    if not paths:
        raise DataError("no dataset given")
    camera = load_config(None, {"latch.gpio": "mock"})  # door_face_crops' camera size
    parts = []
    for path in paths:  # one source at a time: each camera has its own frame size
        data = load_dataset(path, size=None, limit=limit,
                            frame_size=(camera.camera_width, camera.camera_height))
        if data.skipped:
            log.warning("%s", unreadable_line(data.skipped))
        crops, found = door_face_crops(data.images, spec, level=level)
        kept = data.subset(np.flatnonzero(found))
        kept.images = crops[found]
        kept.skipped += [(data.ids[i], "no face found by the door's face gate")
                         for i in np.flatnonzero(~found)]
        parts.append(kept)
    return Dataset(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]),
                   [i for p in parts for i in p.ids], [x for p in parts for x in p.skipped],
                   [x for p in parts for x in p.sources])
