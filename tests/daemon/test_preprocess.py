import numpy as np
import pytest

from happyhouse.daemon.errors import DataError, ModelError
from happyhouse.daemon.preprocess import (Preprocess, crop_box, prepare_frame, prepare_image,
                                          to_model_input)


def test_contract_round_trips_through_dict():
    spec = Preprocess(crop="frame", margin=0.2, size=48)
    assert Preprocess.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("field,value", [("crop", "body"), ("margin", 1.5), ("size", 4),
                                         ("color", "BGR"), ("scale", "minus1to1")])
def test_contract_rejects_unknown_settings(field, value):
    with pytest.raises(ModelError, match=field):
        Preprocess(**{field: value})


def test_crop_box_is_square_and_grown_by_margin():
    assert crop_box((480, 640, 3), (100, 100, 50, 50), 0.0) == (100, 100, 150, 150)
    assert crop_box((480, 640, 3), (100, 100, 50, 50), 0.2) == (90, 90, 160, 160)
    assert crop_box((480, 640, 3), (0, 0, 40, 60), 0.5) == (-40, -30, 80, 90)
    with pytest.raises(DataError, match="outside"):
        crop_box((480, 640, 3), (700, 10, 20, 20), 0.0)


def test_a_face_at_the_edge_is_padded_not_squashed():
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:, :10] = 255  # white stripe on the left edge
    out = prepare_frame(frame, (0, 20, 20, 40), Preprocess(crop="face", size=40))
    # the square crop starts 10 px left of the frame: replicated white, not a stretched face
    assert out[:, :15].min() == 255 and out[:, 25:].max() == 0


def test_prepare_frame_converts_bgr_to_rgb_and_crops_the_face():
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[100:200, 300:400] = (255, 0, 0)  # pure blue in BGR
    out = prepare_frame(frame, (300, 100, 100, 100), Preprocess(crop="face", size=64))
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert (out[..., 2] == 255).all() and (out[..., 0] == 0).all()  # blue lands in RGB's last channel


def test_prepare_frame_in_face_mode_needs_a_face():
    with pytest.raises(DataError, match="no face"):
        prepare_frame(np.zeros((48, 64, 3), np.uint8), None, Preprocess(crop="face"))


def test_frame_mode_uses_the_whole_frame():
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, :320] = 200
    out = prepare_frame(frame, None, Preprocess(crop="frame", size=64))
    assert out[:, :30].mean() == pytest.approx(200, abs=1) and out[:, 34:].mean() < 1


@pytest.mark.parametrize("bad", [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 3), np.float32),
                                 np.zeros((64, 64, 4), np.uint8), "frame.jpg"])
def test_bad_frames_get_a_clear_error(bad):
    with pytest.raises(DataError):
        prepare_frame(bad, (0, 0, 10, 10), Preprocess())


def test_prepare_image_resizes_training_images_to_the_input_size():
    img = np.full((128, 96, 3), 7, np.uint8)
    assert prepare_image(img, Preprocess(size=64)).shape == (64, 64, 3)


def test_model_input_is_unit_scaled_float32_nhwc():
    img = np.array([[[0, 128, 255]]], np.uint8)
    out = to_model_input(img)
    assert out.dtype == np.float32 and out.shape == (1, 1, 1, 3)
    np.testing.assert_allclose(out.reshape(-1), [0.0, 128 / 255, 1.0])
    with pytest.raises(DataError):
        to_model_input(img.astype(np.float32))
