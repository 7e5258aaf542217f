"""Door-camera augmentation keeps the image contract and is reproducible by seed."""

import numpy as np

from happyhouse.train.augment import Augment, augment_batch


def test_augment_keeps_shape_dtype_and_is_seeded():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (8, 64, 64, 3), dtype=np.uint8)
    a = augment_batch(images, Augment(), np.random.default_rng(5))
    b = augment_batch(images, Augment(), np.random.default_rng(5))
    assert a.shape == images.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, images)


def test_flip_only_mirrors():
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, :10] = 200
    plain = Augment(flip=1.0, shift=0, zoom=0, rotate=0, brightness=0, contrast=0, gamma=0,
                    blur=0, lowres=0, noise=0, gray=0)
    out = plain(image, np.random.default_rng(0))
    assert np.array_equal(out, image[:, ::-1])


def test_door_strong_preset_is_a_stronger_door():
    from happyhouse.train.augment import PRESETS

    door, strong = PRESETS["door"], PRESETS["door-strong"]
    assert strong.lowres > door.lowres and strong.lowres_min < door.lowres_min
    assert strong.gamma > door.gamma and strong.blur > door.blur
