"""A picture's size from its header (``picturesize``), and replayed pictures checked by it
before any decode: a 12000x12000 PNG of a few hundred KB swapped into a replayed folder
was decoded whole (918 MB resident) on every frame."""

import struct
import zlib

import cv2
import numpy as np
import pytest
from fakes import flat_image, replay_cfg

from happyhouse.daemon.errors import SourceError
from happyhouse.daemon.picturesize import picture_size
from happyhouse.daemon.sources import open_source


@pytest.mark.parametrize("ext, params", [
    (".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".bmp", []),
    (".webp", []), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossy VP8, lossless VP8L
    (".gif", []), (".tif", []),
])
def test_the_header_gives_width_and_height(ext, params):
    image = np.random.default_rng(0).integers(0, 255, (37, 53, 3), np.uint8)
    ok, data = cv2.imencode(ext, image, params)
    assert ok and picture_size(data) == (53, 37) and picture_size(data.tobytes()) == (53, 37)


def test_a_jpeg_size_is_found_past_its_other_segments():
    ok, data = cv2.imencode(".jpg", flat_image(90))
    data = data.tobytes()
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 5000) + b"\0" * 5000  # a large EXIF block
    height, width = flat_image(90).shape[:2]
    assert picture_size(data[:2] + app1 + data[2:]) == (width, height)


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\n\0\0", b"\xff\xd8\xff\xe0\0", b"BM",
                                  b"GIF89a\x01", b"not a picture at all"])
def test_an_unknown_or_cut_header_says_none(data):
    assert picture_size(data) is None


@pytest.mark.parametrize("order, kind", [("<", 3), (">", 4), (">", 3), ("<", 4)])
def test_a_tiff_size_is_read_from_its_first_directory_in_either_byte_order(order, kind):
    """OpenCV's reduced decode of a TIFF is a whole one: a 1.2 MB TIFF of 16000x16000 took
    816 MB before it was refused; its header says its size."""
    magic = b"II*\0" if order == "<" else b"MM\0*"
    value = (lambda v: struct.pack(order + "HH", v, 0)) if kind == 3 else \
        (lambda v: struct.pack(order + "I", v))
    entries = [struct.pack(order + "HHI", 254, 4, 1) + struct.pack(order + "I", 0),
               struct.pack(order + "HHI", 256, kind, 1) + value(16000),
               struct.pack(order + "HHI", 257, kind, 1) + value(12000)]
    pixels = b"\0" * 40  # the directory after the pixels, as libtiff often writes it
    header = magic + struct.pack(order + "I", 8 + len(pixels))
    data = header + pixels + struct.pack(order + "H", len(entries)) + b"".join(entries)
    assert picture_size(data) == (16000, 12000)
    assert picture_size(data[:-12]) is None  # the height's entry cut off


def png_header(width, height):
    """The first bytes of a PNG that says it is width x height (its pixels cut off)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + b"\0" * 64)


@pytest.fixture
def cfg():
    return replay_cfg()


@pytest.fixture
def decodes(monkeypatch):
    """Every cv2.imdecode call's flags."""
    flags = []
    real = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda data, flag: flags.append(flag) or real(data, flag))
    return flags


def test_an_oversized_png_is_refused_by_its_header_without_a_decode(tmp_path, cfg, decodes):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(12000, 12000))
    with pytest.raises(SourceError, match="12000x12000 pixels, larger than 4096x4096"):
        open_source(str(bomb), cfg)
    assert decodes == []


def test_a_picture_swapped_for_an_oversized_one_after_the_probe_is_not_decoded(tmp_path, cfg,
                                                                               decodes):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), flat_image(10))
    src = open_source(str(folder), cfg)
    with src:
        assert src.latest(1.0) is not None
        (folder / "a.png").write_bytes(png_header(12000, 12000))
        decodes.clear()
        src.latest(0.3)
    assert cv2.IMREAD_COLOR not in decodes


def test_an_oversized_gif_is_refused_by_its_header_without_a_decode(tmp_path, cfg, decodes):
    """GIF became a picture (it was opened as a video, never scaled); LZW packs a huge
    plain canvas into a small file, so its header is read before any decode too."""
    bomb = tmp_path / "bomb.gif"
    bomb.write_bytes(b"GIF89a" + struct.pack("<HH", 60000, 60000) + b"\0" * 64)
    with pytest.raises(SourceError, match="60000x60000 pixels, larger than 4096x4096"):
        open_source(str(bomb), cfg)
    assert decodes == []


def test_an_os2_bmp_header_gives_its_16_bit_sides():
    """A BMP with the 12-byte core header read as 31457920x1572865 and was refused."""
    header = b"BM" + struct.pack("<IHHI", 26 + 640 * 480 * 3, 0, 0, 26)
    core = struct.pack("<IHHHH", 12, 640, 480, 1, 24)
    assert picture_size(header + core + b"\0" * 64) == (640, 480)


def test_a_jpeg_of_fill_bytes_gives_up_quickly():
    """60 MB of 0xFF after the start marker took 11 s of Python per frame."""
    import time

    started = time.perf_counter()
    assert picture_size(b"\xff\xd8" + b"\xff" * 5_000_000) is None
    assert time.perf_counter() - started < 0.5
