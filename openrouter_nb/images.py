"""Image bytes without decoding them: the type from the magic bytes, the pixel size from the
header (PNG, GIF, JPEG, WebP), and a downscale on request (Pillow, imported only then).

Part of :mod:`openrouter_nb.attachments`, which checks what is sent.
"""

from __future__ import annotations

import io
import struct

__all__ = ["PDF", "downscale", "pixel_size", "sniff"]

PDF = "application/pdf"


def sniff(data: bytes) -> str | None:
    """The MIME type of ``data`` from its magic bytes (images and PDF), else ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return PDF
    return None


def pixel_size(data: bytes, mime: str) -> tuple[int | None, int | None]:
    """Width and height read from an image's header (no decoding); ``(None, None)`` if unsure."""
    try:
        if mime == "image/png" and data[12:16] == b"IHDR":
            w, h = struct.unpack(">II", data[16:24])
            return int(w), int(h)
        if mime == "image/gif":
            w, h = struct.unpack("<HH", data[6:10])
            return int(w), int(h)
        if mime == "image/webp":
            return _webp_size(data)
        if mime == "image/jpeg":
            return _jpeg_size(data)
    except struct.error:
        pass
    return None, None


def _webp_size(data: bytes) -> tuple[int | None, int | None]:
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None, None


def _jpeg_size(data: bytes) -> tuple[int | None, int | None]:
    i, end = 2, min(len(data), 4 * 2**20)  # bounded: headers come first
    while i + 9 < end:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return int(w), int(h)
        i += 2 + length
    return None, None


def downscale(data: bytes, mime: str, max_side: int) -> tuple[bytes, str, int, int]:
    """``data`` resized so its longer side is ``max_side`` (JPEG stays JPEG, others become
    PNG): ``(bytes, mime, width, height)``. Needs Pillow (``ImportError`` without it)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        scale = max_side / max(image.size)
        size = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
        small = image.resize(size, Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        if mime == "image/jpeg":
            small.convert("RGB").save(buffer, format="JPEG", quality=90)
        else:
            small.save(buffer, format="PNG")
    return (buffer.getvalue(), "image/jpeg" if mime == "image/jpeg" else "image/png",
            size[0], size[1])
