"""Attachments: images, PDFs and tables sent with a prompt, checked before anything is sent.

An :class:`Attachment` is a plain, immutable value made by :func:`attachment` from a local
path, an ``http(s)`` URL, raw bytes (with or without a MIME type), a PIL image, a matplotlib
figure or a pandas DataFrame. The type is sniffed from the first bytes (a ``.png`` that is a
JPEG is sent as a JPEG; a ``.png`` that is neither is refused), sizes are checked against
the limits below, and large images are downscaled only when asked (``max_side=``).

On the wire (reference §4): images are ``image_url`` parts (a URL as given, local data as a
base64 ``data:`` URL), PDFs are ``file`` parts parsed by the free ``cloudflare-ai`` engine
unless another is chosen (``pdf_engine=``), and text files and DataFrames are text parts that
state their name and size. :meth:`Attachment.meta` is what the ledger keeps (name, MIME type,
bytes, pixels, SHA-256), never the bytes.

PIL, matplotlib, pandas and pypdf are imported only when such an object (or a downscale, or
a PDF's text) is needed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .api.errors import BadRequestError
from .images import PDF, downscale, pixel_size, sniff
from .messages import AnyPart, Message, Part, TextPart
from .options import PDF_ENGINES

__all__ = [
    "DEFAULT_PDF_ENGINE",
    "MAX_IMAGE_BYTES",
    "MAX_PDF_BYTES",
    "MAX_TEXT_BYTES",
    "PDF_ENGINES",
    "Attachment",
    "AttachmentError",
    "attachment",
    "attachments_of",
    "is_attachable",
    "metadata_json",
    "pdf_text",
    "pixel_size",
    "sniff",
    "user_message",
]

IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif")
TEXT_TYPES = {".txt": "text/plain", ".csv": "text/csv", ".md": "text/markdown",
              ".json": "application/json", ".tsv": "text/tab-separated-values"}
#: A data URL is a third larger than its bytes; 20 MB stays under the 30 MB OpenRouter
#: accepts for image content (reference §4.6).
MAX_IMAGE_BYTES = 20 * 2**20
MAX_PDF_BYTES = 50 * 2**20  # the providers' usual per-file limit (reference §4.6)
MAX_TEXT_BYTES = 2 * 2**20
#: Free first (reference §4.3): cloudflare-ai costs nothing, mistral-ocr $2 per 1,000 pages,
#: native hands the file to a model that reads files itself (``PDF_ENGINES``, in options.py).
DEFAULT_PDF_ENGINE = "cloudflare-ai"
DETAILS = ("auto", "low", "high", "original")


class AttachmentError(BadRequestError, ValueError):
    """A file that cannot be sent (missing, empty, wrong type, too large); nothing was sent."""


@dataclass(frozen=True)
class Attachment:
    """One attachment, ready to send. ``data`` is ``None`` for a URL sent as it is."""

    name: str
    mime: str
    data: bytes | None = None
    url: str | None = None
    width: int | None = None
    height: int | None = None
    source: str = "bytes"
    note: str | None = None  # e.g. "downscaled from 4000×3000"
    detail: str | None = None
    rows: str | None = None  # tables: "3 rows × 2 columns"

    @property
    def kind(self) -> str:
        """``image``, ``pdf`` or ``text``."""
        if self.mime in IMAGE_TYPES:
            return "image"
        return "pdf" if self.mime == PDF else "text"

    @property
    def size(self) -> int | None:
        return None if self.data is None else len(self.data)

    @property
    def sha256(self) -> str | None:
        return None if self.data is None else hashlib.sha256(self.data).hexdigest()

    @property
    def data_url(self) -> str:
        """The URL to send: the given one, or the bytes as a base64 ``data:`` URL."""
        if self.url is not None:
            return self.url
        assert self.data is not None
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    @property
    def text(self) -> str:
        """A text attachment's content (``''`` for images and PDFs)."""
        return self.data.decode("utf-8") if self.kind == "text" and self.data else ""

    def part(self) -> AnyPart:
        """The content part this attachment is sent as."""
        if self.kind == "image":
            image: dict[str, Any] = {"url": self.data_url}
            if self.detail:
                image["detail"] = self.detail
            return Part.of({"type": "image_url", "image_url": image})
        if self.kind == "pdf":
            return Part.of({"type": "file", "file": {"filename": self.name,
                                                     "file_data": self.data_url}})
        what = f"table {self.rows}, CSV" if self.rows else self.mime
        return TextPart(f"\n\n[Attached {self.name} ({what}, {_size(self.size or 0)})]\n"
                        f"{self.text}")

    def meta(self) -> dict[str, Any]:
        """What the ledger keeps about this attachment: never the bytes."""
        info: dict[str, Any] = {"name": self.name, "kind": self.kind, "mime": self.mime,
                                "bytes": self.size, "sha256": self.sha256,
                                "source": self.source}
        if self.width is not None:
            info["width"], info["height"] = self.width, self.height
        if self.url is not None and not self.url.startswith("data:"):
            info["url"] = self.url
        for key in ("note", "rows", "detail"):
            if getattr(self, key):
                info[key] = getattr(self, key)
        return info

    def __repr__(self) -> str:
        pixels = f", {self.width}×{self.height}" if self.width else ""
        size = f", {_size(self.size)}" if self.size is not None else ""
        return f"Attachment({self.name!r}, {self.mime}{pixels}{size})"


# -- making attachments -------------------------------------------------------------------------
def attachment(source: Any, *, mime: str | None = None, name: str | None = None,
               max_side: int | None = None, detail: str | None = None) -> Attachment:
    """An :class:`Attachment` from ``source``; :class:`AttachmentError` when it cannot be sent.

    ``source``: an ``Attachment``, a path (``str`` or ``Path``), an ``http(s)`` URL, a
    ``data:`` URL, ``bytes`` (``mime`` optional: sniffed), a ``(bytes, mime)`` pair, a PIL
    image, a matplotlib figure or a pandas DataFrame. ``max_side`` downscales an image whose
    longer side is larger (never done unless asked).
    """
    if detail is not None and detail not in DETAILS:
        raise ValueError(f"detail must be one of {', '.join(DETAILS)}; got {detail!r}.")
    made = _made(source, mime, name)
    if made.kind == "image" and made.data is not None:
        made = _downscaled(made, max_side) if max_side else made
        if (made.size or 0) > MAX_IMAGE_BYTES:
            raise AttachmentError(
                f"{made.name} is {_size(made.size or 0)}; an image may be at most "
                f"{_size(MAX_IMAGE_BYTES)}. Pass max_side=2048 (--max-side 2048) to downscale "
                "it, or send it as an https URL.")
    return replace(made, detail=detail) if detail else made


def _made(source: Any, mime: str | None, name: str | None) -> Attachment:
    if isinstance(source, Attachment):
        return source if name is None else replace(source, name=name)
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], str):
        return _from_bytes(source[0], source[1], name or "attachment", "bytes")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(source), mime, name or "attachment", "bytes")
    if isinstance(source, Path) or isinstance(source, str):
        text = str(source).strip()
        low = text.lower()
        if isinstance(source, str) and low.startswith(("http://", "https://")):
            return _from_url(text, mime, name)
        if isinstance(source, str) and low.startswith("data:"):
            return _from_data_url(text, name or "attachment")
        return _from_path(Path(text).expanduser(), mime, name)
    module = _package(source)
    if module == "PIL" and hasattr(source, "save"):
        return _from_pil(source, name or "image.png")
    if module == "matplotlib" and hasattr(source, "savefig"):
        buffer = io.BytesIO()
        source.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
        return _from_bytes(buffer.getvalue(), "image/png", name or "figure.png", "figure")
    if module == "pandas" and hasattr(source, "to_csv"):
        return _from_frame(source, name or "table.csv")
    raise AttachmentError(
        f"Cannot attach a {type(source).__name__}. Attach a file path, an https URL, bytes "
        "with a MIME type, a PIL image, a matplotlib figure or a pandas DataFrame.")


def _from_path(path: Path, mime: str | None, name: str | None) -> Attachment:
    shown = name or path.name or str(path)
    if not path.exists():
        raise AttachmentError(f"{path} does not exist: check the path (relative paths start "
                              f"in {Path.cwd()}).")
    if not path.is_file():
        raise AttachmentError(f"{path} is a folder, not a file: attach the files in it one "
                              "by one.")
    size = path.stat().st_size
    if size > max(MAX_PDF_BYTES, MAX_IMAGE_BYTES * 4):  # refuse before reading it into memory
        raise AttachmentError(f"{shown} is {_size(size)}; attachments may be at most "
                              f"{_size(MAX_PDF_BYTES)} (PDF) or {_size(MAX_IMAGE_BYTES)} "
                              "(image).")
    return _from_bytes(path.read_bytes(), mime, shown, "path")


def _from_url(url: str, mime: str | None, name: str | None) -> Attachment:
    tail = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    guess = mime or _mime_of_suffix(tail)
    if guess is None or (guess not in IMAGE_TYPES and guess != PDF):
        raise AttachmentError(
            f"Cannot tell what {url[:80]} is from its name: pass mime='image/png' (or "
            "'application/pdf'), or download it and attach the file.")
    return Attachment(name or tail or "attachment", guess, url=url, source="url")


def _from_data_url(url: str, name: str) -> Attachment:
    head, _, payload = url.partition(",")
    if ";base64" not in head:
        raise AttachmentError(f"{name}: only base64 data: URLs can be attached.")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise AttachmentError(f"{name}: the data: URL is not valid base64.") from None
    return _from_bytes(data, head[5:].split(";")[0] or None, name, "bytes")


def _from_pil(image: Any, name: str) -> Attachment:
    buffer = io.BytesIO()
    fmt = "JPEG" if getattr(image, "format", None) == "JPEG" else "PNG"
    picture = image.convert("RGB") if fmt == "JPEG" and image.mode not in ("RGB", "L") else image
    picture.save(buffer, format=fmt)
    mime = "image/jpeg" if fmt == "JPEG" else "image/png"
    return _from_bytes(buffer.getvalue(), mime, name, "pil")


def _from_frame(frame: Any, name: str) -> Attachment:
    text = frame.to_csv(index=False)
    rows = f"{len(frame)} rows × {len(frame.columns)} columns"
    made = _from_bytes(text.encode("utf-8"), "text/csv", name, "dataframe")
    return replace(made, rows=rows)


def _from_bytes(data: Any, mime: str | None, name: str, source: str) -> Attachment:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise AttachmentError(f"{name}: expected bytes, not {type(data).__name__}.")
    data = bytes(data)
    if not data:
        raise AttachmentError(f"{name} is empty (0 bytes): nothing to send.")
    sniffed = sniff(data)
    declared = (mime or "").lower().strip() or None
    if sniffed is None and declared is None:
        sniffed = _mime_of_suffix(name) if _is_text(data) else None
    if sniffed is None and declared in (*TEXT_TYPES.values(),) and _is_text(data):
        sniffed = declared
    if sniffed is None:
        raise AttachmentError(
            f"{name} is not an image (PNG, JPEG, WebP, GIF), a PDF or a text file "
            f"(it starts with {data[:8]!r}); nothing was sent. Convert it, or attach another "
            "file.")
    if declared and declared != sniffed and not (declared.startswith("text/")
                                                 and sniffed.startswith("text/")):
        raise AttachmentError(f"{name} was given as {declared} but its bytes are {sniffed}; "
                              "pass the right MIME type (or none: it is read from the bytes).")
    limit = {"image": MAX_IMAGE_BYTES * 4, "pdf": MAX_PDF_BYTES}.get(
        "image" if sniffed in IMAGE_TYPES else "pdf" if sniffed == PDF else "text",
        MAX_TEXT_BYTES)
    if len(data) > limit:
        hint = (" Split it or send it as an https URL." if sniffed == PDF else
                " Send fewer rows or a summary." if sniffed not in IMAGE_TYPES else
                " Pass max_side=2048 to downscale it.")
        raise AttachmentError(f"{name} is {_size(len(data))}; that kind of attachment may be "
                              f"at most {_size(limit)}.{hint}")
    width, height = pixel_size(data, sniffed)
    return Attachment(name, sniffed, data, width=width, height=height, source=source)


def _is_text(data: bytes) -> bool:
    if b"\x00" in data[:4096]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _mime_of_suffix(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    images = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".webp": "image/webp", ".gif": "image/gif", ".pdf": PDF}
    return images.get(suffix) or TEXT_TYPES.get(suffix)


def _downscaled(made: Attachment, max_side: int) -> Attachment:
    if not isinstance(max_side, int) or isinstance(max_side, bool) or max_side < 16:
        raise ValueError(f"max_side must be a whole number of pixels (16 or more); got "
                         f"{max_side!r}.")
    if made.width is None or made.height is None or max(made.width, made.height) <= max_side:
        return made
    assert made.data is not None
    try:
        data, mime, width, height = downscale(made.data, made.mime, max_side)
    except ImportError:
        raise AttachmentError(f"Downscaling {made.name} needs Pillow: pip install pillow "
                              "(or openrouter-nb[attachments]).") from None
    return replace(made, data=data, mime=mime, width=width, height=height,
                   note=f"downscaled from {made.width}×{made.height}")


# -- a prompt with attachments ---------------------------------------------------------------------
def is_attachable(value: Any) -> bool:
    """Whether a notebook variable is an image to place in a prompt (not text)."""
    if isinstance(value, Attachment):
        return value.kind in ("image", "pdf")
    module = _package(value)
    return (module == "PIL" and hasattr(value, "save")) or (
        module == "matplotlib" and hasattr(value, "savefig"))


def _package(value: Any) -> str:
    return str(type(value).__module__).split(".", 1)[0]


def attachments_of(sources: Any, *, max_side: int | None = None) -> tuple[Attachment, ...]:
    """``sources`` (one source or a list of them) as attachments, each checked."""
    if sources is None:
        return ()
    if isinstance(sources, (str, Path, bytes, Attachment)) or not isinstance(sources, Iterable) \
            or (isinstance(sources, tuple) and len(sources) == 2 and isinstance(sources[1], str)
                and isinstance(sources[0], (bytes, bytearray))) or hasattr(sources, "to_csv"):
        sources = [sources]
    return tuple(attachment(s, max_side=max_side) for s in sources)


def user_message(prompt: str | Sequence[Any], sources: Any = None, *,
                 max_side: int | None = None) -> tuple[Message, tuple[Attachment, ...]]:
    """The user message for ``prompt`` with ``sources`` attached after its text.

    ``prompt`` may also be a list of text and attachment sources (what a cell with ``{image}``
    in its body gives): each source is placed where it stands.
    """
    parts: list[AnyPart] = []
    placed: list[Attachment] = []
    items = [prompt] if isinstance(prompt, str) else list(prompt)
    for item in items:
        if isinstance(item, str):
            if item:
                parts.append(TextPart(item))
        else:
            found = attachment(item, max_side=max_side)
            placed.append(found)
            parts.append(found.part())
    extra = attachments_of(sources, max_side=max_side)
    parts.extend(a.part() for a in extra)
    return Message("user", _merged(parts)), (*placed, *extra)


def _merged(parts: list[AnyPart]) -> tuple[AnyPart, ...]:
    """Adjacent text parts joined (a DataFrame's CSV follows the prompt as one text)."""
    out: list[AnyPart] = []
    for part in parts:
        if out and isinstance(part, TextPart) and isinstance(out[-1], TextPart):
            out[-1] = TextPart(out[-1].text + part.text)
        else:
            out.append(part)
    return tuple(out)


def metadata_json(attached: Sequence[Attachment]) -> str | None:
    """The ledger's ``attachments`` value: a JSON list of :meth:`Attachment.meta`."""
    return json.dumps([a.meta() for a in attached], ensure_ascii=False) if attached else None


def pdf_text(data: bytes, *, max_pages: int = 50, max_chars: int = 200_000) -> str | None:
    """The text of a PDF's first pages, or ``None`` when pypdf is missing or cannot read it."""
    try:
        from pypdf import PdfReader
    except ImportError:
        return None
    try:
        reader = PdfReader(io.BytesIO(data))
        texts: list[str] = []
        for page in reader.pages[:max_pages]:
            texts.append(page.extract_text() or "")
            if sum(map(len, texts)) > max_chars:
                break
        return "\n".join(texts)[:max_chars]
    except Exception:  # a damaged or encrypted PDF: the guard says it could not read it
        return None


def decode_data_url(url: str) -> tuple[str, bytes] | None:
    """``(mime, bytes)`` of a base64 ``data:`` URL, else ``None``."""
    if not url.startswith("data:"):
        return None
    head, _, payload = url.partition(",")
    try:
        return head[5:].split(";")[0], base64.b64decode(payload)
    except (binascii.Error, ValueError):
        return None


def has_file_parts(messages: Iterable[Mapping[str, Any]]) -> bool:
    """Whether any wire message holds a ``file`` part."""
    return any(isinstance(m.get("content"), list) and any(
        isinstance(p, Mapping) and p.get("type") == "file" for p in m["content"])
        for m in messages)


def _size(n: int | None) -> str:
    n = n or 0
    if n < 1024:
        return f"{n} bytes"
    if n < 2**20:
        return f"{n / 1024:.1f} KB"
    return f"{n / 2**20:.1f} MB"
