"""The key never comes back: not from a cassette (answer text and ledger), not from a server
that echoes it in an error (message, str, repr, metadata, traceback, ledger), and a file of
profiles holding one anywhere is refused without showing it."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import httpx
import pytest

import openrouter_nb as orn
from openrouter_nb import config
from openrouter_nb.api.client import OpenRouterClient
from openrouter_nb.session import Session

SHAPED = "sk-or-v1-" + "0123456789abcdef" * 4  # any key of the real form
OTHER = "sk-or-v1-" + "fedcba9876543210" * 4   # someone else's, pasted into an answer
CUSTOM = "proxy-key-Zq81mN3xT7wLp2"            # a key of another form (a proxy's)
BASE_URL = "http://echo.invalid/api/v1"


def leaks(text: object, *keys: str) -> list[str]:
    return [key for key in keys if key in str(text)]


def ledger_text(session: Session) -> str:
    return json.dumps(session.ledger.rows(), default=str)


# -- cassettes ----------------------------------------------------------------------------
def planted(folder: Path, *, stream: bool) -> Path:
    """A cassette recorded from the sandbox whose answer then had keys written into it."""
    path = folder / f"planted-{stream}.jsonl"
    session = Session(sandbox=True, home=folder / "recording", record=path, retries=0)
    session.ask("Tell me a secret", stream=stream)
    session.close()
    entry = json.loads(path.read_text())
    secret = f"The key is {CUSTOM}; yours is {SHAPED}, and {OTHER.upper()}. "
    body = entry["response"]["body"]
    if stream:
        marker = '"delta":{"role":"assistant","content":"'
        assert marker in body
        body = body.replace(marker, marker + secret, 1)
    else:
        payload = json.loads(body)
        payload["choices"][0]["message"]["content"] = secret + payload["choices"][0][
            "message"]["content"]
        body = json.dumps(payload)
    entry["response"]["body"] = body
    path.write_text(json.dumps(entry) + "\n")
    return path


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_key_in_a_cassette_is_scrubbed_when_replayed(tmp_path: Path, stream: bool) -> None:
    path = planted(tmp_path, stream=stream)
    assert leaks(path.read_text(), CUSTOM, SHAPED) == [CUSTOM, SHAPED]
    session = Session(replay=path, api_key=CUSTOM, sandbox=False, home=tmp_path / "replay",
                      retries=0)
    answer = session.ask("Tell me a secret", stream=stream)
    assert answer.text.startswith("The key is sk-or-…; yours is sk-or-v1-…, and sk-or-v1-…. ")
    assert leaks(answer.text, CUSTOM, SHAPED, OTHER, OTHER.upper()) == []
    assert leaks(ledger_text(session), CUSTOM, SHAPED, OTHER, OTHER.upper()) == []
    assert "sk-or-v1-…" in session.ledger.rows()[-1]["response"]
    session.close()


# -- a server that echoes the key -----------------------------------------------------------
def echoing(status: int, kind: str) -> httpx.MockTransport:
    """A server that puts the key it was sent into its error: JSON, HTML or a stream event."""
    def handle(request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        said = f"Invalid credentials: {key} is not a valid key"
        if kind == "json":
            return httpx.Response(status, json={"error": {
                "code": status, "message": said,
                "metadata": {"raw": f"Authorization: Bearer {key}", "keys": [key]}}})
        if kind == "html":
            return httpx.Response(status, text=f"<html><body>{said}</body></html>",
                                  headers={"content-type": "text/html"})
        chunk = {"choices": [{"index": 0, "delta": {"content": "Hello "}}]}
        failure = {"error": {"code": 502, "message": said, "metadata": {"raw": key}},
                   "choices": [{"index": 0, "delta": {"content": ""},
                                "finish_reason": "error"}]}
        body = f"data: {json.dumps(chunk)}\n\ndata: {json.dumps(failure)}\n\n"
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    return httpx.MockTransport(handle)


@pytest.mark.parametrize("key", [SHAPED, CUSTOM], ids=["shaped", "custom"])
@pytest.mark.parametrize(("status", "kind", "error"), [
    (401, "json", orn.AuthError), (403, "json", orn.AuthError),
    (502, "html", orn.ProviderError), (200, "sse", orn.OpenRouterError),
], ids=["401", "403", "502-html", "stream-error"])
def test_a_key_echoed_by_the_server_never_reaches_the_error_or_the_ledger(
        tmp_path: Path, key: str, status: int, kind: str, error: type[Exception]) -> None:
    session = Session(api_key=key, base_url=BASE_URL, sandbox=False, home=tmp_path,
                      transport=echoing(status, kind), retries=0)
    with pytest.raises(error) as caught:
        session.ask("Hello", stream=kind == "sse")
    failure = caught.value
    shown = [str(failure), repr(failure), failure.message, failure.args, failure.metadata,
             failure.partial_text, "".join(traceback.format_exception(failure))]
    assert leaks(shown, key) == []
    assert "Invalid credentials: sk-or-" in str(failure) + str(failure.metadata)
    assert leaks(ledger_text(session), key) == [] and session.ledger.rows()
    session.close()


@pytest.mark.parametrize("key", [SHAPED, CUSTOM], ids=["shaped", "custom"])
def test_every_client_endpoint_scrubs_the_key(key: str) -> None:
    client = OpenRouterClient(key, BASE_URL, transport=echoing(401, "json"))
    for call in (client.models, client.key, lambda: client.generation("gen-1"),
                 lambda: client.chat({"model": "a/b:free", "messages": []})):
        with pytest.raises(orn.AuthError) as caught:
            call()
        assert leaks([str(caught.value), repr(caught.value), caught.value.metadata], key) == []
    client.close()


def test_a_short_key_does_not_blank_ordinary_words() -> None:
    from openrouter_nb._text import redact

    assert redact("a test of the test", "test") == "a test of the test"
    assert redact(f"key {CUSTOM}!", CUSTOM) == "key sk-or-…!"


# -- profiles -----------------------------------------------------------------------------
KEYED_PROFILES = {
    "nested table": (f'[profiles.dev]\nmodel = "a/b:free"\nprovider = {{ api_key = "{SHAPED}" }}\n',
                     "profiles.dev.provider.api_key"),
    "sub-table": ('[profiles.dev]\nmodel = "a/b:free"\n[profiles.dev.provider]\n'
                  'order = ["x"]\nkey = "whatever-it-is"\n', "profiles.dev.provider.key"),
    "in a list": (f'[profiles.dev]\nfallback = ["a/b:free", "{SHAPED}"]\n',
                  "profiles.dev.fallback[1]"),
    "deep list of tables": ('[profiles.dev]\nprovider = { order = [{ name = "x", '
                            'Access-Token = "abc" }] }\n',
                            "profiles.dev.provider.order[0].Access-Token"),
    "any field name": (f'[profiles.dev]\nsystem = "Use {OTHER} for the call"\n',
                       "profiles.dev.system"),
    "another key version": ('[profiles.dev]\nsystem = "sk-or-v2-Zq81mN3xT7wLp2"\n',
                            "profiles.dev.system"),
    "upper-case name": ('[profiles.dev]\nOPENROUTER_API_KEY = "x"\n',
                        "profiles.dev.OPENROUTER_API_KEY"),
    "outside profiles": (f'api_key = "{SHAPED}"\n[profiles.dev]\nmodel = "a/b:free"\n',
                         "api_key"),
    "as a table name": (f'[profiles.dev.provider."{SHAPED}"]\nx = 1\n',
                        'profiles.dev.provider."sk-or-…"'),
}


@pytest.mark.parametrize("name", list(KEYED_PROFILES))
def test_a_key_anywhere_in_the_profiles_is_refused(tmp_path: Path, name: str) -> None:
    text, place = KEYED_PROFILES[name]
    path = tmp_path / "openrouter_nb.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match="keys do not belong in files") as caught:
        Session.from_profile("dev", path=path, home=tmp_path)
    message = str(caught.value)
    assert f"holds a key at {place}: " in message and str(path) in message
    assert leaks(message, SHAPED, OTHER, "whatever-it-is", "Zq81mN3xT7wLp2") == []


def test_a_profile_may_talk_about_keys(tmp_path: Path) -> None:
    path = tmp_path / "openrouter_nb.toml"
    path.write_text('[profiles.dev]\nmodel = "a/b:free"\nsystem = "Explain what an API key is, '
                    'e.g. sk-or-v1-…"\nprovider = { sort = "price", order = ["keyed/x"] }\n')
    assert config.load_profiles(path)["dev"].provider == {"sort": "price", "order": ["keyed/x"]}
