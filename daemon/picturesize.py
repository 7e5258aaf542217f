"""A picture's width and height from its file header, without decoding it.

A replayed picture is checked for size before OpenCV decodes it: a 12000x12000 PNG
is a few hundred KB on disk and 400 MB once decoded, and OpenCV's reduced decode
(``IMREAD_REDUCED_*``) shrinks only JPEG's DCT; a PNG is decoded whole first. The
common formats carry their size in the first bytes: PNG, JPEG, BMP, WebP and GIF are read
here; for anything else :func:`picture_size` says None and the caller decides.
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


def picture_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) from the header of a PNG, JPEG, BMP, WebP or GIF file; None otherwise
    or when the header is cut short. ``data``: bytes, or a uint8 array of the file."""
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
