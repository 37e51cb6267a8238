"""Attachments as the sandbox sees them: image and file parts (reference §4, checklist 13–14).

Written apart from the client's ``attachments.py`` (the sandbox shares no code with it, so each
checks the other). What a model could not be simulated without is left out: the sandbox says
what it can know from the bytes alone (format, pixel size, dominant colour; a PDF's page count
and first words) and labels it simulated.

- An image whose content exceeds 30 MB is the real 413 ``Downloaded image content cannot
  exceed 30MB``.
- PDFs go through the ``file-parser`` plugin on every sandbox model (none reads files
  natively): the answer carries ``annotations`` (``type: file``, ``hash`` = 64 hex, the parsed
  text as content parts); the ``mistral-ocr`` engine adds $0.002 a page to ``usage.cost``; a
  file whose hash an earlier assistant message already carries is not parsed (or charged)
  again.
- Prompt tokens grow with each image (85) and with the parsed text of each file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["IMAGE_LIMIT", "FileParse", "describe", "file_parses", "oversized_image"]

IMAGE_LIMIT = 30 * 1024 * 1024
OVERSIZED = "Downloaded image content cannot exceed 30MB"
OCR_PER_PAGE = 0.002  # mistral-ocr, $2 per 1,000 pages (reference §4.3)
_FORMATS = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF"}


def _parts(messages: Sequence[Mapping[str, Any]], role: str | None = None
           ) -> list[Mapping[str, Any]]:
    return [p for m in messages if isinstance(m, Mapping) and (role is None or m.get("role") == role)
            and isinstance(m.get("content"), list) for p in m["content"] if isinstance(p, Mapping)]


def _data(url: Any) -> bytes | None:
    if not isinstance(url, str) or not url.startswith("data:") or "," not in url:
        return None
    try:
        return base64.b64decode(url.split(",", 1)[1])
    except (binascii.Error, ValueError):
        return None


def _image_url(part: Mapping[str, Any]) -> Any:
    image = part.get("image_url")
    return image.get("url") if isinstance(image, Mapping) else image


def oversized_image(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The real 413 message when an image's content is over 30 MB."""
    for part in _parts(messages):
        if part.get("type") == "image_url":
            url = _image_url(part)
            if isinstance(url, str) and len(url) * 3 // 4 > IMAGE_LIMIT:
                data = _data(url)
                if data is not None and len(data) > IMAGE_LIMIT:
                    return OVERSIZED
    return None


# -- images -------------------------------------------------------------------------------------
def _format(data: bytes) -> str:
    for magic, name in _FORMATS.items():
        if data.startswith(magic):
            return name
    return "WebP" if data[:4] == b"RIFF" and data[8:12] == b"WEBP" else "unknown"


def _pixels(data: bytes, fmt: str) -> tuple[int, int] | None:
    try:
        if fmt == "PNG":
            w, h = struct.unpack(">II", data[16:24])
            return int(w), int(h)
        if fmt == "GIF":
            w, h = struct.unpack("<HH", data[6:10])
            return int(w), int(h)
    except struct.error:
        return None
    return _pil_size(data)


def _pil_size(data: bytes) -> tuple[int, int] | None:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return int(image.size[0]), int(image.size[1])
    except Exception:  # no Pillow, or bytes it cannot read
        return None


_COLOURS = {"black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128),
            "red": (220, 40, 40), "green": (40, 160, 60), "blue": (40, 80, 220),
            "yellow": (240, 220, 50), "orange": (245, 140, 30), "purple": (140, 60, 170),
            "brown": (130, 80, 40), "pink": (240, 150, 190), "cyan": (60, 200, 220)}


def _dominant(data: bytes) -> str | None:
    """The name of the most common colour (Pillow needed), e.g. ``"blue (#1f77b4)"``."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            small = image.convert("RGB").resize((32, 32))
            counts = small.getcolors(32 * 32) or []
    except Exception:
        return None
    if not counts:
        return None
    _, rgb = max(counts, key=lambda c: c[0])
    name = min(_COLOURS, key=lambda n: sum((a - b) ** 2 for a, b in zip(_COLOURS[n], rgb, strict=True)))
    return f"{name} (#{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x})"


def _describe_image(n: int, part: Mapping[str, Any]) -> str:
    url = _image_url(part)
    data = _data(url)
    if data is None:
        tail = str(url).rsplit("/", 1)[-1][:60] if isinstance(url, str) else "?"
        return f"Image {n}: a URL ({tail}) the sandbox does not download."
    fmt = _format(data)
    size = _pixels(data, fmt)
    colour = _dominant(data)
    bits = [f"a {fmt} image", f"{size[0]}×{size[1]} pixels" if size else "size unknown",
            f"{len(data):,} bytes"]
    if colour:
        bits.append(f"mostly {colour}")
    return f"Image {n}: " + ", ".join(bits) + "."


# -- files --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileParse:
    """One parsed file: its annotation, page count, text and whether it was parsed now."""

    name: str
    hash: str
    pages: int | None
    text: str
    fresh: bool  # parsed by this request (not reused from an annotation in the history)

    def annotation(self) -> dict[str, Any]:
        return {"type": "file", "file": {"hash": self.hash, "name": self.name, "content": [
            {"type": "text", "text": f'<file name="{self.name}">'},
            {"type": "text", "text": self.text or "(no extractable text)"},
            {"type": "text", "text": "</file>"}]}}

    @property
    def tokens(self) -> int:
        return round(len(self.text.split()) * 4 / 3) + 10


def _pdf(data: bytes) -> tuple[int | None, str]:
    try:
        from pypdf import PdfReader
    except ImportError:  # the sandbox counts pages from the file's structure
        return len(re.findall(rb"/Type\s*/Page[^s]", data[:8 * 2**20])) or None, ""
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = len(reader.pages)
        text = "\n".join((p.extract_text() or "") for p in reader.pages[:20])
        return pages, " ".join(text.split())[:4000]
    except Exception:
        return None, ""


def _known_hashes(messages: Sequence[Mapping[str, Any]]) -> set[str]:
    found: set[str] = set()
    for m in messages:
        if isinstance(m, Mapping) and m.get("role") == "assistant":
            for a in m.get("annotations") or ():
                file = a.get("file") if isinstance(a, Mapping) else None
                if isinstance(file, Mapping) and isinstance(file.get("hash"), str):
                    found.add(file["hash"])
    return found


def file_parses(messages: Sequence[Mapping[str, Any]]) -> list[FileParse]:
    """Every ``file`` part of the request, parsed (or reused from the history's annotations)."""
    known = _known_hashes(messages)
    parses: list[FileParse] = []
    seen: set[str] = set()
    for part in _parts(messages, "user"):
        file = part.get("file") if part.get("type") == "file" else None
        if not isinstance(file, Mapping):
            continue
        raw = file.get("file_data")
        digest = hashlib.sha256(str(raw).encode()).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        data = _data(raw)
        pages, text = _pdf(data) if data is not None else (None, "")
        name = str(file.get("filename") or "document.pdf")
        parses.append(FileParse(name, digest, pages, text, fresh=digest not in known))
    return parses


def parse_cost(parses: Sequence[FileParse], body: Mapping[str, Any]) -> float:
    """What the file-parser engine adds to ``usage.cost`` (fresh parses only)."""
    engine = "mistral-ocr"  # OpenRouter's default for models without native file input
    for plugin in body.get("plugins") or ():
        if isinstance(plugin, Mapping) and plugin.get("id") == "file-parser":
            engine = str((plugin.get("pdf") or {}).get("engine") or engine)
    if engine != "mistral-ocr":
        return 0.0
    return sum(OCR_PER_PAGE * (p.pages or 1) for p in parses if p.fresh)


def _describe_file(n: int, parse: FileParse) -> str:
    pages = f"{parse.pages} page{'s' if parse.pages != 1 else ''}" if parse.pages else \
        "an unknown number of pages"
    words = " ".join(parse.text.split()[:12])
    first = f', starting "{words}…"' if words else ", with no extractable text"
    how = "parsed now" if parse.fresh else "parse reused from the earlier annotation"
    return f"File {n}: {parse.name}, {pages}{first} ({how})."


def describe(messages: Sequence[Mapping[str, Any]], parses: Sequence[FileParse]) -> str:
    """What the sandbox can say about the last user message's attachments ('' if none)."""
    last = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"][-1:]
    images = [p for p in _parts(last) if p.get("type") == "image_url"]
    lines = [_describe_image(i + 1, p) for i, p in enumerate(images)]
    names = {str((p.get("file") or {}).get("filename") or "document.pdf")
             for p in _parts(last) if p.get("type") == "file"}
    lines += [_describe_file(i + 1, p) for i, p in enumerate(x for x in parses if x.name in names)]
    lines += [f"Earlier file {p.name}: parse reused from the earlier annotation, not parsed "
              "(nor charged) again." for p in parses if p.name not in names and not p.fresh]
    if not lines:
        return ""
    return ("[sandbox] What the sandbox can tell without a model (simulated): "
            + " ".join(lines) + "\n\n")
