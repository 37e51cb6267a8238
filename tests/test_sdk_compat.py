"""The real SDKs (``openai`` and the official ``openrouter``) work unmodified against the sandbox.

Both are generated or maintained against the real API, so they double as a faithfulness check of
the sandbox's response shapes.
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from openrouter_nb.sandbox import Sandbox, SandboxServer, sandbox_key

MODEL = "meta-llama/llama-3.3-70b-instruct:free"
MESSAGES = [{"role": "user", "content": "Name three uses of graphite"}]


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(Sandbox(seed=11, rpm=1000)) as srv:
        yield srv


@pytest.fixture
def oai(server: SandboxServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key=sandbox_key(), max_retries=0) as client:
        yield client


def test_openai_chat(oai: openai.OpenAI) -> None:
    done = oai.chat.completions.create(model="openrouter/free", messages=MESSAGES)  # type: ignore[arg-type]
    assert done.model.endswith(":free")
    assert done.choices[0].message.content.startswith("[sandbox]")  # type: ignore[union-attr]
    assert done.usage is not None and done.usage.total_tokens > 0


def test_openai_stream(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(model=MODEL, messages=MESSAGES,  # type: ignore[arg-type]
                                         stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "graphite" in text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert {c.model for c in chunks} == {MODEL}


def test_openai_midstream_error_raises(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True,  # type: ignore[arg-type]
        extra_headers={"X-Sandbox-Fault": "midstream_error"})
    with pytest.raises(openai.APIError, match="connection reset"):
        for _ in stream:
            pass


def test_openai_quota_429_is_rate_limit_error(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model=MODEL, messages=MESSAGES,  # type: ignore[arg-type]
                                    extra_headers={"X-Sandbox-Fault": "rate_limit_day"})
    assert info.value.response.headers["X-RateLimit-Remaining"] == "0"


def test_openrouter_sdk_chat_key_models(server: SandboxServer) -> None:
    from openrouter import OpenRouter

    with OpenRouter(api_key=sandbox_key(), server_url=server.base_url) as client:
        res = client.chat.send(model=MODEL, messages=MESSAGES)  # type: ignore[arg-type]
        assert res.model == MODEL
        assert "graphite" in str(res.choices[0].message.content)
        models = client.models.list()
        assert any(m.id == "openrouter/free" for m in models.result.data)
        eps = client.endpoints.list(author="google", slug="gemma-3-27b-it")
        # The free variant's endpoint, then the paid model's two providers.
        assert [(e.model_id, e.provider_name) for e in eps.data.endpoints] == [
            ("google/gemma-3-27b-it:free", "Google AI Studio"),
            ("google/gemma-3-27b-it", "DeepInfra"), ("google/gemma-3-27b-it", "Google AI Studio")]


# The SDK marks the legacy ``rate_limit`` model class @deprecated, so merely parsing a /key
# response (whose schema requires that field) emits a DeprecationWarning from inside the SDK.
@pytest.mark.filterwarnings(r"ignore:warning. \*\* DEPRECATED:DeprecationWarning")
def test_openrouter_sdk_key(server: SandboxServer) -> None:
    from openrouter import OpenRouter

    with OpenRouter(api_key=sandbox_key(), server_url=server.base_url) as client:
        key = client.api_keys.get_current_key_metadata()
    assert key.data.free_model_daily_requests.limit == 50
    assert key.data.label.startswith("sk-or-v1-")
    assert key.data.is_free_tier is True


def test_openrouter_sdk_stream_and_generation(server: SandboxServer) -> None:
    from openrouter import OpenRouter

    with OpenRouter(api_key=sandbox_key(), server_url=server.base_url) as client:
        events = list(client.chat.send(model=MODEL, messages=MESSAGES,  # type: ignore[arg-type]
                                       stream=True))
        assert events[-1].usage is not None
        gen_id = events[0].id
        with pytest.raises(Exception, match="404|not found"):
            client.generations.get_generation(id=gen_id)  # first poll: stats not ready yet
        gen = client.generations.get_generation(id=gen_id)
        assert gen.data.model == MODEL and gen.data.streamed is True
