"""A picture's width and height from its file header, without decoding it.

A replayed picture is checked for size before OpenCV decodes it: a 12000x12000 PNG
is a few hundred KB on disk and 400 MB once decoded, and OpenCV's reduced decode
(``IMREAD_REDUCED_*``) shrinks only JPEG's DCT; a PNG is decoded whole first. The
formats the door reads carry their size in their header: PNG, JPEG, BMP, WebP, GIF and
TIFF are read here; for anything else :func:`picture_size` says None and the caller
refuses the file. :func:`picture_kind` tells a picture by its first bytes, whatever its
name says (a JPEG saved as ``.jfif`` or ``.HEIC``).
"""

from __future__ import annotations

import struct
from typing import Optional, Tuple

_PNG = b"\x89PNG\r\n\x1a\n"
#: JPEG frame headers (SOF0-SOF15) carry the size; C4, C8 and CC share the range but are not
_JPEG_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: JPEG markers without a length field
_JPEG_BARE = set(range(0xD0, 0xDA)) | {0x01}
#: markers and fill bytes read before giving up (None: the caller probes): a real header
#: has tens; a file of 60 MB of fill bytes took 11 s of Python per frame
_JPEG_MAX_STEPS = 4096


#: the kinds :func:`picture_kind` names that OpenCV reads; "heif" (a HEIC photo) it does not
READ_KINDS = ("png", "jpeg", "bmp", "webp", "gif", "tiff")
#: the ISO media brands of HEIC/HEIF photos (an iPhone's default format), which OpenCV
#: does not read (AVIF, which it reads where built with it, is not one of them)
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")


def picture_kind(head: bytes) -> Optional[str]:
    """What the first bytes of a file say it is: one of :data:`READ_KINDS`, "heif", or None."""
    head = bytes(memoryview(head).cast("B")[:32])
    if head[:8] == _PNG:
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:2] == b"BM" and len(head) >= 26:
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\0", b"MM\0*"):
        return "tiff"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "heif"
    return None


def picture_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) from the header of a PNG, JPEG, BMP, WebP, GIF or TIFF file (its
    first page: the one OpenCV decodes); None otherwise or when the header is cut short.
    ``data``: bytes, or a uint8 array of the whole file (a TIFF's header may be at its end)."""
    data = memoryview(data).cast("B")  # no copy of a large file
    try:
        if data[:8] == _PNG and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:2] == b"BM":
            if struct.unpack("<I", data[14:18])[0] == 12:  # the OS/2 core header: 16-bit sides
                return struct.unpack("<HH", data[18:22])
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)  # a negative height is a top-down BMP
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):  # the logical screen: the decoded canvas
            return struct.unpack("<HH", data[6:10])
        if data[:4] in (b"II*\0", b"MM\0*"):
            return _tiff_size(data)
    except struct.error:  # fewer bytes than the header needs
        return None
    return None


def _jpeg_size(data: bytes) -> Optional[Tuple[int, int]]:
    at = 2
    for _ in range(_JPEG_MAX_STEPS):
        if at + 4 > len(data):
            return None
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _JPEG_BARE:
            at += 2
            continue
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[at + 5:at + 9])
            return width, height
        at += 2 + struct.unpack(">H", data[at + 2:at + 4])[0]
    return None


def _webp_size(data: bytes) -> Optional[Tuple[int, int]]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = struct.unpack("<I", data[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


#: TIFF tags of the first page's width and height, and the entry types that hold them
_TIFF_WIDTH, _TIFF_HEIGHT = 256, 257
_TIFF_SHORT, _TIFF_LONG = 3, 4
#: directory entries read before giving up (a real first page has a few dozen)
_TIFF_MAX_ENTRIES = 4096


def _tiff_size(data: bytes) -> Optional[Tuple[int, int]]:
    """The first image directory's width and height. OpenCV's reduced decode of a TIFF is a
    whole one: a 1.2 MB TIFF of 16000x16000 pixels took 816 MB before it was refused."""
    order = "<" if data[:2] == b"II" else ">"
    offset = struct.unpack(order + "I", data[4:8])[0]
    entries = struct.unpack(order + "H", data[offset:offset + 2])[0]
    sides = {}
    for i in range(min(entries, _TIFF_MAX_ENTRIES)):
        at = offset + 2 + 12 * i
        tag, kind = struct.unpack(order + "HH", data[at:at + 4])
        if tag in (_TIFF_WIDTH, _TIFF_HEIGHT):
            if kind == _TIFF_SHORT:
                sides[tag] = struct.unpack(order + "H", data[at + 8:at + 10])[0]
            elif kind == _TIFF_LONG:
                sides[tag] = struct.unpack(order + "I", data[at + 8:at + 12])[0]
    if _TIFF_WIDTH in sides and _TIFF_HEIGHT in sides:
        return sides[_TIFF_WIDTH], sides[_TIFF_HEIGHT]
    return None
