"""Augmentation for door cameras: what changes between a dataset face and the porch.

A door camera sees faces mirrored either way, off-centre and at varying
distance (shift/zoom/rotation), in sun or at dusk (brightness, contrast,
gamma), slightly out of focus (blur), small and soft after the face crop is
scaled up (low-resolution degradation), with sensor noise, and sometimes in
monochrome IR mode (grayscale). Works on uint8 RGB, returns uint8 RGB, so the
model input still goes through the one preprocessing contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

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
    return np.stack([aug(im, rng) for im in images])
