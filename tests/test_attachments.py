"""Attachments end to end: images, PDFs, tables and text files sent to the sandbox over loopback.

Each test checks what went over the wire (the server's recorded request body), what the
ledger kept (metadata, never the bytes) and, for refusals, that nothing was sent.
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from openrouter_nb import SensitiveInputBlocked
from openrouter_nb import attachments as att
from openrouter_nb.sandbox import SandboxServer, sandbox_key
from openrouter_nb.session import Session

VISION = "google/gemma-3-27b-it:free"
TEXT_ONLY = "meta-llama/llama-3.3-70b-instruct:free"
VISION_MODELS = {"google/gemma-3-27b-it:free", "mistralai/mistral-small-3.2-24b-instruct:free",
                 "google/gemini-2.0-flash-exp:free"}


# -- small assets, made here ----------------------------------------------------------------------
def png(width: int = 24, height: int = 16, rgb: tuple[int, int, int] = (30, 90, 200)) -> bytes:
    """A solid-colour PNG written by hand (no Pillow needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))

    row = b"\x00" + bytes(rgb) * width
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def pdf(*pages: str) -> bytes:
    """A tiny valid PDF, one line of text per page, written by hand."""
    objects: list[bytes] = []
    n = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    font = 3 + 2 * n
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents "
                       f"{4 + 2 * i} 0 R /Resources << /Font << /F1 {font} 0 R >> >> >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))
    return out.getvalue()


@pytest.fixture
def loop(make_session: Callable[..., Session], server: SandboxServer) -> Session:
    return make_session(loopback=server)


def sent(server: SandboxServer, before: int) -> list[dict[str, Any]]:
    """The chat request bodies the server received since ``before``."""
    return [r.json for r in server.sandbox.requests[before:]
            if r.path.endswith("/chat/completions")]


def row_of(session: Session) -> dict[str, Any]:
    return session.ledger.rows()[-1]


def parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, list) else [{"type": "text", "text": content}]


# -- each kind, end to end ------------------------------------------------------------------------
def test_local_png_goes_as_a_data_url_and_the_ledger_keeps_metadata_only(
        loop: Session, server: SandboxServer, tmp_path: Path) -> None:
    path = tmp_path / "chart.png"
    path.write_bytes(png(24, 16))
    before = len(server.sandbox.requests)
    answer = loop.ask("What colour is this?", VISION, attachments=[path])
    (body,) = sent(server, before)
    text, image = parts(body)
    assert text == {"type": "text", "text": "What colour is this?"}
    assert image["type"] == "image_url"
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(
        path.read_bytes()).decode()
    assert "24×16 pixels" in answer.text and "blue" in answer.text and "simulated" in answer.text
    row = row_of(loop)
    (meta,) = json.loads(row["attachments"])
    assert meta == {"name": "chart.png", "kind": "image", "mime": "image/png",
                    "bytes": len(path.read_bytes()), "sha256": meta["sha256"], "source": "path",
                    "width": 24, "height": 16}
    assert len(meta["sha256"]) == 64
    assert "base64" not in json.dumps(row) and "iVBOR" not in json.dumps(row)


def test_an_https_url_is_sent_as_it_is(loop: Session, server: SandboxServer) -> None:
    before = len(server.sandbox.requests)
    loop.ask("Describe", VISION, attachments="https://example.org/cat.jpg")
    (body,) = sent(server, before)
    assert parts(body)[1] == {"type": "image_url",
                              "image_url": {"url": "https://example.org/cat.jpg"}}
    (meta,) = json.loads(row_of(loop)["attachments"])
    assert meta["url"] == "https://example.org/cat.jpg" and meta["mime"] == "image/jpeg"
    assert meta["bytes"] is None and meta["sha256"] is None


def test_bytes_with_a_mime_type_pil_and_matplotlib(loop: Session, server: SandboxServer) -> None:
    image = pytest.importorskip("PIL.Image")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.bar(["a", "b"], [3, 5])
    before = len(server.sandbox.requests)
    loop.ask("Compare", VISION, attachments=[(png(8, 8), "image/png"),
                                             image.new("RGB", (10, 20), (250, 250, 40)), fig])
    plt.close(fig)
    (body,) = sent(server, before)
    urls = [p["image_url"]["url"] for p in parts(body)[1:]]
    assert len(urls) == 3 and all(u.startswith("data:image/png;base64,") for u in urls)
    metas = json.loads(row_of(loop)["attachments"])
    assert [m["source"] for m in metas] == ["bytes", "pil", "figure"]
    assert (metas[1]["width"], metas[1]["height"]) == (10, 20)
    assert (metas[2]["width"], metas[2]["height"]) == (200, 150)


def test_a_dataframe_goes_as_csv_text_with_its_size(loop: Session, server: SandboxServer) -> None:
    import pandas as pd

    frame = pd.DataFrame({"city": ["Oslo", "Lima"], "rain_mm": [763, 16]})
    before = len(server.sandbox.requests)
    loop.ask("Which is wetter?", TEXT_ONLY, attachments=frame)
    (body,) = sent(server, before)
    content = body["messages"][-1]["content"]
    assert content.startswith("Which is wetter?")
    assert "[Attached table.csv (table 2 rows × 2 columns, CSV, 30 bytes)]" in content
    assert "city,rain_mm\nOslo,763\nLima,16" in content
    (meta,) = json.loads(row_of(loop)["attachments"])
    assert meta["kind"] == "text" and meta["rows"] == "2 rows × 2 columns"


def test_a_pdf_goes_as_a_file_part_with_the_free_engine(loop: Session, server: SandboxServer,
                                                        tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    path = tmp_path / "notes.pdf"
    path.write_bytes(pdf("Quarterly rainfall report", "Second page"))
    before = len(server.sandbox.requests)
    answer = loop.ask("Summarise", TEXT_ONLY, attachments=path)
    (body,) = sent(server, before)
    assert body["plugins"] == [{"id": "file-parser", "pdf": {"engine": "cloudflare-ai"}}]
    file = parts(body)[1]
    assert file["type"] == "file" and file["file"]["filename"] == "notes.pdf"
    assert file["file"]["file_data"].startswith("data:application/pdf;base64,JVBERi0")
    assert "2 pages" in answer.text and "Quarterly rainfall report" in answer.text
    assert answer.usage["cost"] == 0  # cloudflare-ai is free
    (meta,) = json.loads(row_of(loop)["attachments"])
    assert meta["mime"] == "application/pdf" and meta["bytes"] == len(path.read_bytes())


def test_the_pdf_engine_is_selectable_and_ocr_costs_per_page(
        loop: Session, server: SandboxServer) -> None:
    before = len(server.sandbox.requests)
    answer = loop.ask("Summarise", TEXT_ONLY, attachments=(pdf("a", "b", "c"), "application/pdf"),
                      pdf_engine="mistral-ocr")
    (body,) = sent(server, before)
    assert body["plugins"][0]["pdf"] == {"engine": "mistral-ocr"}
    assert answer.usage["cost"] == pytest.approx(0.006)


def test_prompt_tokens_grow_with_attachments(loop: Session) -> None:
    bare = loop.ask("Describe it", VISION).usage["prompt_tokens"]
    image = loop.ask("Describe it", VISION, attachments=png()).usage["prompt_tokens"]
    document = loop.ask("Describe it", VISION, attachments=pdf("many words " * 40)
                        ).usage["prompt_tokens"]
    assert bare < image and bare + 80 < document


# -- conversations -------------------------------------------------------------------------------
def test_a_pdf_conversation_sends_its_annotations_back(loop: Session,
                                                      server: SandboxServer) -> None:
    pytest.importorskip("pypdf")
    chat = loop.chat(TEXT_ONLY, name="doc")
    before = len(server.sandbox.requests)
    first = chat.ask("What is this?", attachments=(pdf("Minutes of the meeting"),
                                                   "application/pdf"),
                     pdf_engine="mistral-ocr")
    second = chat.ask("And who attended?")
    one, two = sent(server, before)
    (annotation,) = first.message["annotations"]
    assert annotation["type"] == "file" and len(annotation["file"]["hash"]) == 64
    echoed = [m for m in two["messages"] if m["role"] == "assistant"]
    assert echoed[0]["annotations"] == first.message["annotations"]
    assert two["messages"][0] == one["messages"][0]  # the file part itself is kept
    assert first.usage["cost"] == pytest.approx(0.002)
    assert second.usage["cost"] == 0  # not parsed (nor charged) again
    assert json.loads(loop.ledger.rows()[-1]["attachments"] or "null") is None


# -- capabilities ------------------------------------------------------------------------------------
def test_a_text_only_model_is_refused_before_sending(loop: Session, server: SandboxServer) -> None:
    loop.catalog.models()  # the catalog is fetched (a GET, no quota) before counting
    before = len(server.sandbox.requests)
    with pytest.raises(att.BadRequestError) as caught:
        loop.ask("Describe", TEXT_ONLY, attachments=png())
    assert sent(server, before) == []
    message = str(caught.value)
    assert "does not take image input" in message and "nothing was sent" in message
    assert VISION in message
    row = row_of(loop)
    assert row["status"] == "error" and row["error_kind"] == "bad_request"


def test_the_free_router_given_an_image_answers_with_a_vision_model(loop: Session) -> None:
    served = {loop.ask(f"Describe {i}", "openrouter/free", attachments=png()).model
              for i in range(12)}
    assert served <= VISION_MODELS and len(served) >= 2


def test_the_sandbox_refuses_image_input_on_a_text_model_with_the_real_404(
        server: SandboxServer) -> None:
    body = {"model": TEXT_ONLY, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," +
                                            base64.b64encode(png()).decode()}}]}]}
    reply = httpx.post(server.base_url + "/chat/completions", json=body,
                       headers={"Authorization": f"Bearer {sandbox_key('vision404')}"})
    assert reply.status_code == 404
    assert reply.json()["error"]["message"] == "No endpoints found that support image input"


def test_the_sandbox_refuses_an_image_over_30_mb_with_413(server: SandboxServer) -> None:
    big = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(31 * 2**20)).decode()
    body = {"model": VISION, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + big}}]}]}
    reply = httpx.post(server.base_url + "/chat/completions", json=body, timeout=30,
                       headers={"Authorization": f"Bearer {sandbox_key('big413')}"})
    assert reply.status_code == 413
    assert reply.json()["error"] == {"message": "Downloaded image content cannot exceed 30MB",
                                     "code": 413, "metadata": {"provider_name": None}}


# -- bad files: a clear error, nothing sent ------------------------------------------------------------
@pytest.mark.parametrize("make, expected", [
    (lambda d: d / "missing.png", "missing.png does not exist"),
    (lambda d: _write(d / "empty.png", b""), "empty.png is empty (0 bytes)"),
    (lambda d: _write(d / "fake.png", b"\x00\x01binary junk"), "fake.png is not an image"),
    (lambda d: _write(d / "huge.pdf", b"%PDF-1.4\n" + bytes(51 * 2**20)),
     "huge.pdf is 51.0 MB; that kind of attachment may be at most 50.0 MB"),
    (lambda d: d, "is a folder, not a file"),
])
def test_bad_files_are_clear_errors_and_nothing_is_sent(
        loop: Session, server: SandboxServer, tmp_path: Path,
        make: Callable[[Path], Path], expected: str) -> None:
    before = len(server.sandbox.requests)
    with pytest.raises(att.AttachmentError) as caught:
        loop.ask("Describe", VISION, attachments=make(tmp_path))
    assert expected in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert server.sandbox.requests[before:] == []


def test_a_too_large_image_names_the_limit_and_max_side(loop: Session) -> None:
    with pytest.raises(att.AttachmentError, match=r"an image may be at most 20.0 MB.*max_side"):
        att.attachment((png(4, 4) + bytes(21 * 2**20), "image/png"), name="big.png")


def test_a_mime_type_that_does_not_match_the_bytes(loop: Session) -> None:
    with pytest.raises(att.AttachmentError, match="given as image/jpeg but its bytes are image/png"):
        loop.ask("x", VISION, attachments=[(png(), "image/jpeg")])


def test_max_side_downscales_on_request_only(loop: Session, server: SandboxServer) -> None:
    pytest.importorskip("PIL")
    big = png(400, 100)
    assert att.attachment(big).width == 400  # never silently
    before = len(server.sandbox.requests)
    loop.ask("Describe", VISION, attachments=big, max_side=100)
    (body,) = sent(server, before)
    data = base64.b64decode(parts(body)[1]["image_url"]["url"].split(",", 1)[1])
    assert att.pixel_size(data, "image/png") == (100, 25)
    (meta,) = json.loads(row_of(loop)["attachments"])
    assert meta["note"] == "downscaled from 400×100" and meta["width"] == 100


def test_the_type_comes_from_the_bytes_not_the_name(tmp_path: Path) -> None:
    path = _write(tmp_path / "photo.gif", png(3, 3))
    made = att.attachment(path)
    assert made.mime == "image/png" and (made.width, made.height) == (3, 3)


# -- privacy ---------------------------------------------------------------------------------------
def test_the_guard_reads_pdf_text_and_file_names(loop: Session, server: SandboxServer) -> None:
    pytest.importorskip("pypdf")
    before = len(server.sandbox.requests)
    with pytest.raises(SensitiveInputBlocked):
        loop.ask("Summarise", TEXT_ONLY,
                 attachments=(pdf("Contact jane.doe@example.com for details"), "application/pdf"))
    with pytest.raises(SensitiveInputBlocked):
        loop.ask("Summarise", TEXT_ONLY, attachments=att.attachment(
            pdf("harmless"), name="jane.doe@example.com.pdf"))
    assert sent(server, before) == []
    answer = loop.ask("Summarise", TEXT_ONLY, allow_sensitive=True,
                      attachments=(pdf("Contact jane.doe@example.com"), "application/pdf"))
    assert answer.text and len(sent(server, before)) == 1


def test_images_are_said_to_be_unread_once_per_session(loop: Session) -> None:
    first = loop.ask("Describe", VISION, attachments=png())
    second = loop.ask("Describe", VISION, attachments=png())
    assert any("unread by the privacy guard" in note for note in first.notes)
    assert not any("unread" in note for note in second.notes)


# -- compare, batch, SDK ------------------------------------------------------------------------------
def test_compare_sends_the_image_to_each_model(loop: Session, server: SandboxServer) -> None:
    before = len(server.sandbox.requests)
    models = sorted(VISION_MODELS)
    results = loop.compare("Describe", models, attachments=png())
    assert [r.model for r in results] == models  # type: ignore[union-attr]
    bodies = sent(server, before)
    assert len(bodies) == 3 and all(parts(b)[1]["type"] == "image_url" for b in bodies)


def test_batch_takes_each_rows_attachment_from_a_column(
        loop: Session, server: SandboxServer, tmp_path: Path) -> None:
    import pandas as pd

    paths = [_write(tmp_path / f"{i}.png", png(5 + i, 5)) for i in range(2)]
    frame = pd.DataFrame({"name": ["a", "b"], "image": [str(p) for p in paths]})
    before = len(server.sandbox.requests)
    result = loop.batch(frame, "Describe {name}", model=VISION, attachments="image",
                        progress=None)
    assert list(result["answer_status"]) == ["ok", "ok"]
    widths = sorted(att.pixel_size(base64.b64decode(parts(b)[1]["image_url"]["url"]
                                                    .split(",", 1)[1]), "image/png")[0] or 0
                    for b in sent(server, before))
    assert widths == [5, 6]


def test_the_openai_sdk_sends_an_image_to_the_sandbox_server(server: SandboxServer) -> None:
    openai = pytest.importorskip("openai")
    url = "data:image/png;base64," + base64.b64encode(png(12, 9)).decode()
    with openai.OpenAI(base_url=server.base_url, api_key=sandbox_key("sdk-image")) as client:
        reply = client.chat.completions.create(model=VISION, messages=[{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": url}}]}])
    assert "12×9 pixels" in (reply.choices[0].message.content or "")
    assert reply.model == VISION


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("fmt, mime", [("JPEG", "image/jpeg"), ("WEBP", "image/webp"),
                                       ("GIF", "image/gif"), ("PNG", "image/png")])
def test_each_image_format_is_sniffed_and_sized_from_its_header(fmt: str, mime: str) -> None:
    image = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    image.new("RGB", (37, 21), (200, 10, 10)).save(buffer, format=fmt)
    made = att.attachment(buffer.getvalue(), name="x")
    assert (made.mime, made.width, made.height) == (mime, 37, 21)


def test_a_streamed_pdf_answer_keeps_its_annotations(loop: Session, server: SandboxServer) -> None:
    chat = loop.chat(TEXT_ONLY, stream=True)
    before = len(server.sandbox.requests)
    chat.ask("What is this?", attachments=(pdf("Streamed"), "application/pdf"))
    chat.ask("Again?")
    _, two = sent(server, before)
    (annotation,) = two["messages"][1]["annotations"]
    assert annotation["file"]["name"] == "attachment" and len(annotation["file"]["hash"]) == 64
