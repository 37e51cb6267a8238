"""Attachments in ``%%openrouter`` cells (``--image``, ``--file``, ``{image}``, thumbnails) and in
cassettes (kept by hash)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from openrouter_nb.session import Session
from tests.test_attachments import VISION, pdf, png


def chat_bodies(session: Session) -> list[dict]:
    assert session.sandbox is not None
    return [r.json for r in session.sandbox.requests if r.path.endswith("/chat/completions")]


def test_image_in_the_cell_body_is_placed_where_it_stands(ip: InteractiveShell,
                                                           session: Session) -> None:
    image = pytest.importorskip("PIL.Image")
    ip.user_ns["pic"] = image.new("RGB", (50, 40), (10, 200, 10))
    ip.user_ns["word"] = "colour"
    with capture_output() as out:
        ip.run_cell_magic("openrouter", f"-m {VISION} --no-stream",
                          "Look at {pic} and name its {word}.")
    content = chat_bodies(session)[-1]["messages"][-1]["content"]
    assert [p["type"] for p in content] == ["text", "image_url", "text"]
    assert content[0]["text"] == "Look at " and content[2]["text"] == " and name its colour."
    thumbs = out.outputs[0].data
    assert thumbs["text/plain"] == "sent: pic.png 50×40"
    assert thumbs["text/html"].count("<img ") == 1
    assert 'src="data:image/png;base64,' in thumbs["text/html"]
    assert "mostly green" in out.outputs[-1].data["text/plain"]


def test_image_and_file_flags_attach_after_the_prompt(ip: InteractiveShell, session: Session,
                                                      tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png(6, 4))
    (tmp_path / "b.pdf").write_bytes(pdf("Hello"))
    ip.user_ns["frame"] = __import__("pandas").DataFrame({"x": [1, 2]})
    with capture_output() as out:
        ip.run_cell_magic("openrouter", f"-m {VISION} --no-stream --image {tmp_path}/a.png "
                          f"--file {tmp_path}/b.pdf --file {{frame}} --pdf-engine mistral-ocr",
                          "What are these?")
    body = chat_bodies(session)[-1]
    content = body["messages"][-1]["content"]
    assert [p["type"] for p in content] == ["text", "image_url", "file", "text"]
    assert "[Attached frame.csv (table 2 rows × 1 columns" in content[3]["text"]
    assert body["plugins"] == [{"id": "file-parser", "pdf": {"engine": "mistral-ocr"}}]
    html = out.outputs[0].data["text/html"]
    assert html.count("<img ") == 1 and "b.pdf" in html and "PDF" in html
    assert "<script" not in html
    row = session.ledger.rows()[-1]
    assert [m["name"] for m in json.loads(row["attachments"])] == ["a.png", "b.pdf", "frame.csv"]


def test_a_bad_attachment_flag_is_a_short_usage_error(ip: InteractiveShell,
                                                       session: Session) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        ip.run_cell_magic("openrouter", "--image /no/such/file.png", "hi")
    with pytest.raises(UsageError, match="no variable 'nothing'"):
        ip.run_cell_magic("openrouter", "--image {nothing}", "hi")
    assert chat_bodies(session) == []


def test_thumbnail_names_are_escaped(ip: InteractiveShell, session: Session,
                                     tmp_path: Path) -> None:
    path = tmp_path / "<b>x.png"
    path.write_bytes(png(3, 3))
    with capture_output() as out:
        ip.run_cell_magic("openrouter", f"-m {VISION} --no-stream --image '{path}'", "hi")
    html = out.outputs[0].data["text/html"]
    assert "&lt;b&gt;x.png" in html and "<b>x" not in html


def test_cassettes_keep_attachments_by_hash(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    image = png(30, 30)
    with Session(home=tmp_path, sandbox=True, record=cassette, retries=0) as recorder:
        chat = recorder.chat(VISION)
        chat.ask("Describe", attachments=image)
        chat.ask("And again?")  # the image is resent with the history
    text = cassette.read_text()
    assert "iVBOR" not in text  # no image bytes at all
    assert text.count("data:image/png;base64,sha256:") == 2
    with Session(home=tmp_path / "r", replay=cassette, retries=0) as player:
        chat = player.chat(VISION)
        first = chat.ask("Describe", attachments=image)
        second = chat.ask("And again?")
    assert "30×30 pixels" in first.text and second.text
    with Session(home=tmp_path / "r2", replay=cassette, retries=0) as player, \
            pytest.raises(Exception, match="holds no answer"):
        player.ask("Describe", VISION, attachments=png(31, 30))  # another image: a miss
