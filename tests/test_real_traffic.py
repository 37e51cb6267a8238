"""Our client against real recorded OpenRouter exchanges (VCR cassettes of public projects).

The cassettes live outside this repository (``../shared/real-traffic`` beside the checkout,
or ``$OPENROUTER_NB_REAL_TRAFFIC``); on a machine without them these tests skip. Each
chat-completions exchange is replayed through ``httpx.MockTransport`` into our client, and
what the client returns is checked against an independent reading of the recorded body.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from openrouter_nb.api.client import OpenRouterClient
from openrouter_nb.api.errors import OpenRouterError

yaml = pytest.importorskip("yaml")

_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "real-traffic"
ROOT = Path(os.environ.get("OPENROUTER_NB_REAL_TRAFFIC", _DEFAULT))


def _exchanges() -> list[Any]:
    if not ROOT.is_dir():
        return []
    found = []
    for path in sorted(ROOT.glob("*/*.yaml")):
        data = yaml.safe_load(path.read_text())
        for number, interaction in enumerate(data.get("interactions") or []):
            if "chat/completions" in interaction["request"]["uri"]:
                found.append(pytest.param(interaction, id=f"{path.stem[-60:]}#{number}"))
    return found


EXCHANGES = _exchanges()
pytestmark = pytest.mark.skipif(not EXCHANGES, reason=f"no recorded traffic at {ROOT}")


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _body_text(part: dict[str, Any]) -> str:
    if "parsed_body" in part and part["parsed_body"] is not None:
        return json.dumps(part["parsed_body"])
    body = part.get("body")
    if isinstance(body, dict):
        body = body.get("string")
    return body or ""


def _replay(interaction: dict[str, Any]) -> httpx.MockTransport:
    response = interaction["response"]
    status = response["status"]["code"]
    headers = {k: _first(v) for k, v in (response.get("headers") or {}).items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")}
    text = _body_text(response)
    return httpx.MockTransport(lambda request: httpx.Response(status, headers=headers,
                                                              content=text.encode()))


def _expected_stream_text(sse: str) -> tuple[str, str | None]:
    """Text and served model, read naively from the raw SSE (independent of our decoder)."""
    parts, model = [], None
    for line in sse.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        model = chunk.get("model") or model
        for choice in chunk.get("choices") or []:
            parts.append((choice.get("delta") or {}).get("content") or "")
    return "".join(parts), model


@pytest.mark.parametrize("interaction", EXCHANGES)
def test_client_reads_recorded_exchange(interaction: dict[str, Any]) -> None:
    request_body = json.loads(_body_text(interaction["request"]) or "{}")
    response = interaction["response"]
    status = response["status"]["code"]
    client = OpenRouterClient("sk-or-v1-test", "https://openrouter.ai/api/v1",
                              transport=_replay(interaction))
    text = _body_text(response)
    if status >= 400:
        with pytest.raises(OpenRouterError) as info:
            client.chat(request_body)
        assert info.value.http_status == status
        return
    if request_body.get("stream") and '"error":' in text:
        # An error event inside a 200 stream must surface as an error, never as an answer.
        with pytest.raises(OpenRouterError) as info:
            client.chat(request_body)
        assert info.value.message
        return
    result = client.chat(request_body)
    if request_body.get("stream"):
        expected_text, expected_model = _expected_stream_text(text)
        assert result.text == expected_text
        assert result.model == expected_model
        assert result.usage is not None and result.usage.total_tokens
    else:
        recorded = json.loads(text)
        message = recorded["choices"][0]["message"]
        assert result.text == (message.get("content") or "")
        assert result.model == recorded["model"]
        assert result.provider == recorded.get("provider")
        assert result.usage is not None
        assert result.usage.total_tokens == recorded["usage"]["total_tokens"]
