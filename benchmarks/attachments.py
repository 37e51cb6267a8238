"""Attachments: building the request for a 5 MB image and a 50-page PDF, and the overhead
of ``Session.ask(..., attachments=[path])`` over sending the same bytes with raw httpx.

Building = reading the file, sniffing and checking it, the base64 data URL, the message
parts, the request body and its JSON (what goes on the wire); time in ms (median of 7) and
peak Python memory (tracemalloc). The overhead pairs each toolkit call with a raw httpx
call carrying the same body to the same loopback sandbox server, alternating which goes
first, and reports the median of the differences.

    python benchmarks/attachments.py
"""

from __future__ import annotations

import base64
import io
import json
import random
import statistics
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path

import httpx

from openrouter_nb.attachments import user_message
from openrouter_nb.options import CallOptions
from openrouter_nb.request import build_body
from openrouter_nb.sandbox import Sandbox, SandboxServer, sandbox_key
from openrouter_nb.session import Session

VISION = "google/gemma-3-27b-it:free"
TEXT_ONLY = "meta-llama/llama-3.3-70b-instruct:free"


def noise_png(side: int) -> bytes:
    """An incompressible RGB PNG (random pixels): about 3 × side² bytes."""
    rng = random.Random(0)
    raw = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = side.to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00"
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 1))
            + chunk(b"IEND", b""))


def pdf_pages(n: int) -> bytes:
    """A valid PDF of ``n`` pages, each with a paragraph of text."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{' '.join(f'{3 + 2 * i} 0 R' for i in range(n))}] "
               f"/Count {n} >>".encode()]
    font = 3 + 2 * n
    for i in range(n):
        lines = " ".join(f"72 {720 - 14 * j} Td (Page {i + 1} line {j}: rainfall figures.) Tj"
                         for j in range(40))
        stream = f"BT /F1 11 Tf {lines} ET".encode()
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents "
                       f"{4 + 2 * i} 0 R /Resources << /Font << /F1 {font} 0 R >> >> >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out, offsets = io.BytesIO(), []
    out.write(b"%PDF-1.4\n")
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % o for o in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, xref))
    return out.getvalue()


def build(path: Path, model: str) -> bytes:
    message, _ = user_message("Describe this.", [path])
    body = build_body(model, [message.to_wire()], CallOptions(model=model), None,
                      structured=False)
    return json.dumps(body).encode()


def measure_build(path: Path, model: str) -> tuple[float, float]:
    """(median ms, peak MB) of building the request for ``path``."""
    times = []
    for _ in range(7):
        start = time.perf_counter()
        build(path, model)
        times.append((time.perf_counter() - start) * 1000)
    tracemalloc.start()
    build(path, model)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20


def raw_body(path: Path, model: str) -> dict:
    data = path.read_bytes()
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    return {"model": model, "max_tokens": 4096, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Describe this."},
        {"type": "image_url", "image_url": {"url": url}}]}]}


def overhead(path: Path, home: Path, rounds: int = 9) -> tuple[float, float]:
    """(median ms of ours − raw per request, median raw ms) for the image at ``path``."""
    with SandboxServer(Sandbox(seed=1, rpm=10_000, rpd=None)) as server:
        key = sandbox_key("bench-attachments")
        session = Session(api_key=key, base_url=server.base_url, sandbox=False, home=home,
                          retries=0, rpm=10_000)
        client = httpx.Client(base_url=server.base_url + "/",
                              headers={"Authorization": f"Bearer {key}"}, timeout=60)
        session.ask("warm up", VISION, attachments=[path])
        diffs, raws = [], []
        for i in range(rounds):
            def ours() -> float:
                start = time.perf_counter()
                session.ask("Describe this.", VISION, attachments=[path])
                return (time.perf_counter() - start) * 1000

            def raw() -> float:
                start = time.perf_counter()
                response = client.post("chat/completions", json=raw_body(path, VISION))
                response.raise_for_status()
                response.json()["choices"][0]["message"]["content"]
                return (time.perf_counter() - start) * 1000

            if i % 2:
                a, b = ours(), raw()
            else:
                b, a = raw(), ours()
            diffs.append(a - b)
            raws.append(b)
        client.close()
        session.close()
    return statistics.median(diffs), statistics.median(raws)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        image = home / "noise.png"
        image.write_bytes(noise_png(1300))
        document = home / "fifty.pdf"
        document.write_bytes(pdf_pages(50))
        print(f"image: {image.stat().st_size / 2**20:.1f} MB; PDF: 50 pages, "
              f"{document.stat().st_size / 1024:.0f} KB")
        image_ms, image_mb = measure_build(image, VISION)
        pdf_ms, pdf_mb = measure_build(document, TEXT_ONLY)
        extra, raw_ms = overhead(image, home)
    print(f"figure: build_request_5mb_image = {image_ms:.1f} ms (target <= 100)")
    print(f"figure: build_request_5mb_image_peak = {image_mb:.1f} MB (target <= 40)")
    print(f"figure: build_request_50_page_pdf = {pdf_ms:.1f} ms (target <= 50)")
    print(f"figure: build_request_50_page_pdf_peak = {pdf_mb:.1f} MB (target <= 10)")
    print(f"figure: raw_httpx_5mb_image_request = {raw_ms:.1f} ms (informational)")
    print(f"figure: attachment_overhead_per_request = {extra:.1f} ms (target <= 100)")


if __name__ == "__main__":
    main()
