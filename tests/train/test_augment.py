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


def _face_with_a_mouth():
    """A plain face crop with a bright 'mouth' where a face crop has one (rows 44-52)."""
    image = np.full((64, 64, 3), 120, np.uint8)
    image[44:52, 22:42] = 250
    return image


def test_a_cover_hides_the_mouth_and_leaves_the_eyes():
    from happyhouse.train.augment import cover_lower_face

    image = _face_with_a_mouth()
    rng = np.random.default_rng(0)
    for _ in range(200):
        covered = cover_lower_face(image, rng)
        changed = np.any(covered != image, axis=2)
        # its top at 55% of the side or lower (a soft edge bleeds a few rows): the eyes stay in view
        assert not changed[:30].any()
        # the mouth's middle is always under it (rows 44-52, the middle of its width)
        assert changed[46:52, 27:37].mean() > 0.9
    assert (image == _face_with_a_mouth()).all()  # a copy


def test_augment_labelled_relabels_covered_faces_not_smiling_and_only_those():
    from happyhouse.train.augment import augment_labelled

    images = np.stack([_face_with_a_mouth()] * 400)
    labels = np.ones(400, int)
    aug = Augment(flip=0, shift=0, zoom=0, rotate=0, brightness=0, contrast=0, gamma=0,
                  blur=0, lowres=0, noise=0, gray=0, cover=0.25)
    out, new = augment_labelled(images, labels, aug, np.random.default_rng(3))
    covered = np.any(out != images, axis=(1, 2, 3))
    assert (new[covered] == 0).all() and (new[~covered] == 1).all()
    assert 0.15 < covered.mean() < 0.35 and (labels == 1).all()  # the caller's labels kept


def test_without_covers_augment_labelled_is_augment_batch():
    """Presets without covers train on the very batches they did before covers existed."""
    from happyhouse.train.augment import PRESETS, augment_labelled

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (6, 64, 64, 3), dtype=np.uint8)
    labels = np.array([0, 1, 1, 0, 1, 0])
    out, new = augment_labelled(images, labels, PRESETS["door-framing"], np.random.default_rng(9))
    assert np.array_equal(out, augment_batch(images, PRESETS["door-framing"], np.random.default_rng(9)))
    assert np.array_equal(new, labels)


def test_augment_batch_refuses_a_cover_it_cannot_relabel():
    import pytest

    with pytest.raises(ValueError, match="augment_labelled"):
        augment_batch(np.zeros((2, 64, 64, 3), np.uint8), Augment(cover=0.1),
                      np.random.default_rng(0))


def test_covering_not_smiling_faces_only_relabels_nothing():
    from happyhouse.train.augment import augment_labelled

    images = np.stack([_face_with_a_mouth()] * 400)
    labels = np.arange(400) % 2
    aug = Augment(flip=0, shift=0, zoom=0, rotate=0, brightness=0, contrast=0, gamma=0,
                  blur=0, lowres=0, noise=0, gray=0, cover=0.5, cover_smiles=False)
    out, new = augment_labelled(images, labels, aug, np.random.default_rng(4))
    covered = np.any(out != images, axis=(1, 2, 3))
    assert np.array_equal(new, labels)  # no label changed
    assert not covered[labels == 1].any()  # no smile covered
    assert 0.35 < covered[labels == 0].mean() < 0.65
