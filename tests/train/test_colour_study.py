"""scripts/colour_study.py: its two transforms do what the study's verdicts say.

The study (reports/README.md, "Colour") concludes that the shipped classifier uses
colour and is only mildly sensitive to a camera's colour balance; that reading needs
``luminance`` to keep the light and drop the colour, and ``colour_cast`` to change a
face's colour balance (one cast per face, the same every run) without washing it out.
"""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def study(study_script):
    return study_script("colour_study.py")


def _faces():
    rng = np.random.default_rng(3)
    faces = rng.integers(30, 225, (6, 64, 64, 3)).astype(np.uint8)
    faces[..., 0] = np.clip(faces[..., 0].astype(int) + 25, 0, 255)  # warm, like skin
    return faces


def test_luminance_keeps_the_light_and_drops_the_colour(study):
    import cv2

    faces = _faces()
    gray = study.luminance(faces)
    assert gray.shape == faces.shape and gray.dtype == np.uint8
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    assert np.array_equal(gray[0, ..., 0], cv2.cvtColor(faces[0], cv2.COLOR_RGB2GRAY))


def test_colour_cast_is_one_seeded_cast_per_face_within_its_ranges(study):
    faces = _faces()
    cast = study.colour_cast(faces)
    assert cast.shape == faces.shape and cast.dtype == np.uint8
    assert np.array_equal(cast, study.colour_cast(faces))  # the same faces every run
    assert not np.array_equal(cast, study.colour_cast(faces, seed=8))
    # a gray face takes the cast's tint: its channels part by the per-channel gains
    gray = np.full((1, 8, 8, 3), 128, np.uint8)
    tinted = study.colour_cast(gray)[0].reshape(-1, 3).astype(float).mean(axis=0)
    assert np.ptp(tinted) > 2
    lo, hi = study.GAINS
    assert (tinted >= 128 * lo * min(study.SATURATION) - 1).all()
    assert (tinted <= 128 * hi * max(study.SATURATION) + 1).all()
    # a cast changes the balance, not the light: mean luminance moves by at most the gains' range
    y = study.LUMA
    before, after = faces.astype(float) @ y, cast.astype(float) @ y
    ratio = after.mean(axis=(1, 2)) / before.mean(axis=(1, 2))
    assert ((ratio > lo - 0.05) & (ratio < hi + 0.05)).all()
