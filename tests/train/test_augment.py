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


def test_door_framing_zooms_out_to_the_doors_framing():
    """The door's crop shows a SMILEsmileD face at ~0.79 of the side: door-framing reaches that."""
    from happyhouse.train.augment import PRESETS

    framing, strong = PRESETS["door-framing"], PRESETS["door-strong"]
    assert framing.zoom_out == 0.25 and framing.zoom == strong.zoom
    # everything else is door-strong's
    assert {k: v for k, v in vars(framing).items() if k != "zoom_out"} == \
        {k: v for k, v in vars(strong).items() if k != "zoom_out"}
    # a bright square filling the frame: zoomed out, the frame's border shows around it
    image = np.full((64, 64, 3), 200, np.uint8)
    image[:8], image[-8:], image[:, :8], image[:, -8:] = 0, 0, 0, 0
    only_zoom = Augment(flip=0, shift=0, zoom=0, zoom_out=0.25, rotate=0, brightness=0,
                        contrast=0, gamma=0, blur=0, lowres=0, noise=0, gray=0)
    rng = np.random.default_rng(0)
    bright = [int((only_zoom(image, rng)[:, :, 0] == 200).sum()) for _ in range(200)]
    # never zoomed in (no more bright than the original), often well out (scale < 0.85)
    assert max(bright) <= int((image[:, :, 0] == 200).sum())
    assert min(bright) < 0.85 ** 2 * int((image[:, :, 0] == 200).sum())
