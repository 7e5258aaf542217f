"""Augmentation for door cameras: what changes between a dataset face and the porch.

A door camera sees faces mirrored either way, off-centre and at varying
distance (shift/zoom/rotation), in sun or at dusk (brightness, contrast,
gamma), slightly out of focus (blur), small and soft after the face crop is
scaled up (low-resolution degradation), with sensor noise, and sometimes in
monochrome IR mode (grayscale). Works on uint8 RGB, returns uint8 RGB, so the
model input still goes through the one preprocessing contract.

A visitor may also hide the mouth (a scarf, a mask, a hand). A smile no one can
see must not open the door, so ``cover`` puts a synthetic occluder over the
lower face of some training faces and labels them "not smiling" (the trainer's
``--cover``); it changes a label, so it runs only through :func:`augment_labelled`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import cv2
import numpy as np


@dataclass(frozen=True)
class Augment:
    flip: float = 0.5
    shift: float = 0.08  # fraction of the image side
    zoom: float = 0.12  # scale in [1 - zoom_out, 1 + zoom]
    zoom_out: Optional[float] = None  # default: zoom
    rotate: float = 12.0  # degrees
    brightness: float = 0.25  # added, in [0, 1] units
    contrast: float = 0.35  # multiplied, in [1 - c, 1 + c]
    gamma: float = 0.35  # exponent in [exp(-g), exp(g)]
    blur: float = 0.15  # probability of a Gaussian blur (sigma 0.4..blur_sigma px)
    blur_sigma: float = 0.9
    lowres: float = 0.15  # probability of down- then up-sampling
    lowres_min: float = 0.5  # smallest intermediate side, as a fraction of the input
    noise: float = 0.15  # probability of Gaussian sensor noise (std up to noise_std)
    noise_std: float = 0.02
    gray: float = 0.15  # probability of grayscale (IR night mode)
    cover: float = 0.0  # probability of a lower-face occluder (the label becomes "not smiling")
    cover_smiles: bool = True  # False: only faces already labelled not smiling are covered

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        img = image
        if rng.random() < self.flip:
            img = img[:, ::-1]
        img = self._geometry(np.ascontiguousarray(img), rng)
        if rng.random() < self.lowres:
            img = _lowres(img, rng, self.lowres_min)
        if rng.random() < self.blur:
            img = cv2.GaussianBlur(img, (0, 0), sigmaX=float(rng.uniform(0.4, self.blur_sigma)))
        if rng.random() < self.gray:
            g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
            img = np.repeat(g[:, :, None], 3, axis=2)
        return self._photometric(img, rng)

    def _geometry(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = img.shape[:2]
        out = self.zoom if self.zoom_out is None else self.zoom_out
        scale = float(rng.uniform(1 - out, 1 + self.zoom))
        angle = float(rng.uniform(-self.rotate, self.rotate))
        matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
        matrix[:, 2] += rng.uniform(-self.shift, self.shift, size=2) * (w, h)
        return cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT_101)

    def _photometric(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = img.astype(np.float32) / 255.0
        x = np.power(x, float(np.exp(rng.uniform(-self.gamma, self.gamma))))
        mean = float(x.mean())
        x = (x - mean) * float(rng.uniform(1 - self.contrast, 1 + self.contrast)) + mean
        x = x + float(rng.uniform(-self.brightness, self.brightness))
        if rng.random() < self.noise:
            x = x + rng.normal(0.0, rng.uniform(0.003, self.noise_std),
                               size=x.shape).astype(np.float32)
        return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


#: named strengths: ``door`` for faces in the wild, ``light`` for a fixed camera
PRESETS = {
    "door": Augment(),
    # a fixed door camera (whole frames, mouth ~10 px): geometry and light only,
    # since blur or down-sampling would erase the smile the label is about
    "light": Augment(shift=0.04, zoom=0.06, rotate=5.0, brightness=0.1, contrast=0.15, gamma=0.15,
                     blur=0.0, lowres=0.0, noise=0.0, gray=0.0),
    # a door camera as the door-shifted validation copy imagines it (train/geometry.py's
    # door_shift: 20-32 px, gamma 1.4-2.4, soft): small, dark and soft faces more often
    "door-strong": Augment(gamma=0.9, blur=0.3, blur_sigma=1.2, lowres=0.4, lowres_min=0.3,
                           noise=0.2),
    # door-strong, and the door's framing: the door crops the face box its gate finds, in
    # which a SMILEsmileD face (82% of the training faces, cropped tighter) fills ~0.79 of
    # the side (BlazeFace box / crop side 1.27; GENKI 1.01): zoom out to 0.75
    "door-framing": Augment(zoom_out=0.25, gamma=0.9, blur=0.3, blur_sigma=1.2, lowres=0.4,
                            lowres_min=0.3, noise=0.2),
}


def _lowres(img: np.ndarray, rng: np.random.Generator, min_fraction: float) -> np.ndarray:
    h, w = img.shape[:2]
    side = int(rng.integers(max(8, int(h * min_fraction)), max(9, (h * 7) // 8)))
    small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def augment_batch(images: np.ndarray, aug: Augment, rng: np.random.Generator) -> np.ndarray:
    """Augmented copies of unlabelled ``images``; an ``aug`` that covers faces needs the
    labels (:func:`augment_labelled`)."""
    if aug.cover > 0:
        raise ValueError("a covering augmentation changes labels: use augment_labelled()")
    return np.stack([aug(im, rng) for im in images])


def augment_labelled(images: np.ndarray, labels: np.ndarray, aug: Augment,
                     rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Augmented copies of ``images`` and their labels: a face whose mouth ``aug.cover``
    hid is labelled 0 (not smiling); with ``cover_smiles`` False only faces labelled 0
    are covered. Without ``cover`` the images are those of :func:`augment_batch` with the
    same generator, and the labels are unchanged."""
    out, new_labels = [], np.array(labels, copy=True)
    for i, im in enumerate(images):
        may_cover = aug.cover > 0 and (aug.cover_smiles or new_labels[i] == 0)
        if may_cover and rng.random() < aug.cover:
            im = cover_lower_face(im, rng)
            new_labels[i] = 0
        out.append(aug(im, rng))
    return np.stack(out), new_labels


def cover_lower_face(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (a face crop, uint8 RGB) with its mouth hidden by a random occluder.

    Drawn in the crop's own coordinates, before the geometric augmentation moves the
    face: the top edge at 55-70% of the side (above the mouth in a face crop), about
    centred, 56-100% of the width, down to the bottom edge; a rectangle or a rounded
    (half-ellipse, wider) top; one random colour, half of them with a gradient and a blurred
    noise texture (cloth, skin), half with a soft edge. A copy; ``image`` is not changed.
    """
    h, w = image.shape[:2]
    top = float(rng.uniform(0.55, 0.70)) * h
    centre = float(rng.uniform(0.45, 0.55)) * w
    half = float(rng.uniform(0.28, 0.50)) * w
    mask = np.zeros((h, w), np.float32)
    if rng.random() < 0.5:
        x0, x1 = int(round(centre - half)), int(round(centre + half))
        mask[int(round(top)):, max(0, x0):max(0, x1)] = 1.0
    else:  # an ellipse centred on the bottom edge: a hand's or a scarf's rounded top
        # 1.25x wider than the rectangle's half-width, so the mouth's corners, a little
        # below the top, are under it too
        axes = (max(1, int(round(1.25 * half))), max(1, int(round(h - top))))
        cv2.ellipse(mask, (int(round(centre)), h), axes, 0.0, 0.0, 360.0, 1.0, thickness=-1)
    fill = np.empty((h, w, 3), np.float32)
    fill[:] = rng.uniform(0, 255, size=3).astype(np.float32)
    if rng.random() < 0.5:
        ramp = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None, None]
        fill += ramp * float(rng.uniform(-40, 40))
        noise = rng.normal(0.0, float(rng.uniform(4, 20)), size=(h, w, 1)).astype(np.float32)
        fill += cv2.GaussianBlur(noise, (0, 0), sigmaX=float(rng.uniform(0.5, 1.5)))[:, :, None]
    if rng.random() < 0.5:
        mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=float(rng.uniform(0.5, 2.0)))
    alpha = mask[:, :, None]
    out = image.astype(np.float32) * (1.0 - alpha) + np.clip(fill, 0, 255) * alpha
    return (out + 0.5).astype(np.uint8)
