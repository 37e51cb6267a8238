"""Provider preferences in the sandbox: order, allow_fallbacks, sort, max_price, outages.

Fixture endpoints used here (see ``sandbox/catalog.py``), prices in USD per million tokens:

* ``meta-llama/llama-3.3-70b-instruct``: DeepInfra (0.13/0.39, 450 ms, 89 tok/s, ZDR),
  Together (0.88/0.88, 300 ms, 95 tok/s), Groq (0.59/0.79, 520 ms, 310 tok/s, ZDR);
* ``meta-llama/llama-3.3-70b-instruct:free``: Chutes (900 ms), Venice (1400 ms, 75 tok/s),
  DeepInfra (650 ms, 30 tok/s);
* ``openai/gpt-oss-20b:free``: DeepInfra (400 ms), DeepInfra Turbo (``deepinfra/turbo``, 250 ms);
* ``google/gemini-2.0-flash-exp``: Google Vertex, Google Vertex (Europe)
  (``google-vertex/europe``), Google AI Studio;
* ``google/gemma-3-27b-it``: DeepInfra, Google AI Studio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

import openrouter_nb as orn
from openrouter_nb.sandbox import Sandbox, SandboxServer, SandboxTransport, sandbox_key
from openrouter_nb.sandbox.catalog import CATALOG
from openrouter_nb.session import Session

LLAMA = "meta-llama/llama-3.3-70b-instruct"
LLAMA_FREE = "meta-llama/llama-3.3-70b-instruct:free"
OSS_FREE = "openai/gpt-oss-20b:free"
GEMINI = "google/gemini-2.0-flash-exp"


def _client(sb: Sandbox | None = None) -> httpx.Client:
    return httpx.Client(transport=SandboxTransport(sb or Sandbox(rpm=1000)),
                        base_url="http://sandbox.test/api/v1",
                        headers={"Authorization": f"Bearer {sandbox_key()}"})


def _chat(model: str, provider: dict[str, Any] | None = None, *, client: httpx.Client | None = None,
          down: str | None = None, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}],
                            **extra}
    if provider is not None:
        body["provider"] = provider
    headers = {"X-Sandbox-Provider-Down": down} if down else {}
    return (client or _client()).post("/chat/completions", json=body, headers=headers)


def _provider(model: str, provider: dict[str, Any] | None = None, **options: Any) -> str:
    r = _chat(model, provider, **options)
    assert r.status_code == 200, r.text
    return str(r.json()["provider"])


def test_default_routing_keeps_the_primary_endpoint() -> None:
    multi = [m for m in CATALOG if m.extra_endpoints]
    assert {LLAMA, LLAMA_FREE, OSS_FREE, GEMINI} <= {m.id for m in multi}
    for m in multi:
        assert _provider(m.id) == m.provider  # no preferences: what it always answered with


def test_endpoints_listing_shows_every_provider() -> None:
    eps = _client().get(f"/models/{LLAMA}/endpoints").json()["data"]["endpoints"]
    paid = {e["tag"]: e for e in eps if e["model_id"] == LLAMA}
    assert set(paid) == {"deepinfra", "together", "groq"}
    assert paid["together"]["pricing"] == {"prompt": "0.00000088", "completion": "0.00000088"}
    assert paid["groq"]["throughput_last_30m"]["p50"] == 310.0
    assert paid["together"]["latency_last_30m"]["p50"] == 300
    free = [e["provider_name"] for e in eps if e["model_id"] == LLAMA_FREE]
    assert free == ["Chutes", "Venice", "DeepInfra"]


@pytest.mark.parametrize(("model", "sort", "expected"), [
    (LLAMA, "price", "DeepInfra"),
    (LLAMA, "latency", "Together"),
    (LLAMA, "throughput", "Groq"),
    (LLAMA, {"by": "throughput"}, "Groq"),
    (LLAMA, {"by": "latency", "partition": "model"}, "Together"),
    (LLAMA_FREE, "price", "Chutes"),  # free endpoints tie on price: catalog order
    (LLAMA_FREE, "latency", "DeepInfra"),
    (LLAMA_FREE, "throughput", "Venice"),
    (GEMINI, "latency", "Google AI Studio"),
])
def test_sort_picks_the_endpoint(model: str, sort: Any, expected: str) -> None:
    sb = Sandbox(rpm=1000)
    client = _client(sb)
    r = _chat(model, {"sort": sort}, client=client)
    body = r.json()
    assert body["provider"] == expected
    assert [_provider(model, {"sort": sort}) for _ in range(3)] == [expected] * 3
    gen = body["id"]
    client.get("/generation", params={"id": gen})  # the first poll is a 404, as for real
    assert client.get("/generation", params={"id": gen}).json()["data"]["provider_name"] == expected


def test_usage_cost_is_the_chosen_endpoints_price() -> None:
    for sort, (prompt, completion) in (("price", (0.13, 0.39)), ("latency", (0.88, 0.88)),
                                       ("throughput", (0.59, 0.79))):
        usage = _chat(LLAMA, {"sort": sort}).json()["usage"]
        expected = (usage["prompt_tokens"] * prompt + usage["completion_tokens"] * completion) / 1e6
        assert usage["cost"] == pytest.approx(expected, rel=1e-6), sort


def test_order_tries_named_providers_first() -> None:
    assert _provider(LLAMA, {"order": ["groq"]}) == "Groq"
    assert _provider(LLAMA, {"order": ["Together", "groq"]}) == "Together"  # display name too
    assert _provider(LLAMA, {"order": ["nobody", "groq"]}) == "Groq"
    assert _provider(LLAMA, {"order": ["nobody"]}) == "DeepInfra"  # fallbacks allowed
    assert _provider(GEMINI, {"order": ["google-vertex/europe"]}) == "Google Vertex (Europe)"
    assert _provider(GEMINI, {"order": ["google-ai-studio", "google-vertex"]}) == \
        "Google AI Studio"
    readme_prod = {"order": ["google-ai-studio"], "allow_fallbacks": False,
                   "data_collection": "deny"}  # the README's "prod" profile
    assert _provider("google/gemma-3-27b-it", readme_prod) == "Google AI Studio"


def test_base_slug_matches_variants_and_full_slug_only_itself() -> None:
    # "deepinfra" covers deepinfra/turbo: sorted by latency, the turbo variant wins.
    assert _provider(OSS_FREE, {"order": ["deepinfra"], "sort": "latency"}) == "DeepInfra Turbo"
    assert _provider(OSS_FREE, {"order": ["deepinfra/turbo"]}) == "DeepInfra Turbo"
    # Vertex's base slug names its European variant too, so with the main endpoint down the
    # variant serves, never AI Studio (fallbacks off).
    only_vertex = {"order": ["google-vertex"], "allow_fallbacks": False}
    assert _provider(GEMINI, only_vertex, down="Google Vertex") == "Google Vertex (Europe)"
    r = _chat(OSS_FREE, {"order": ["deepinfra/turbo"], "allow_fallbacks": False},
              down="deepinfra/turbo")
    assert r.status_code == 502
    assert r.json()["error"]["metadata"]["provider_name"] == "DeepInfra Turbo"


def test_outage_falls_back_to_the_next_endpoint() -> None:
    assert _provider(LLAMA, down="deepinfra") == "Together"  # next in catalog order
    assert _provider(LLAMA, {"sort": "throughput"}, down="groq") == "Together"  # 95 > 89 tok/s
    assert _provider(LLAMA, {"order": ["groq", "together"]}, down="groq") == "Together"
    sb = Sandbox(rpm=1000, down_providers=["Chutes"])
    assert _provider(LLAMA_FREE, client=_client(sb)) == "Venice"
    assert sb.requests[-1].notes == [f"{LLAMA_FREE}: provider Chutes down"]


def test_allow_fallbacks_false_returns_the_upstream_error() -> None:
    r = _chat(LLAMA, {"allow_fallbacks": False}, down="deepinfra")
    assert r.status_code == 502
    err = r.json()["error"]
    assert err["message"] == "Provider returned error"
    assert err["metadata"]["provider_name"] == "DeepInfra"
    r = _chat(LLAMA, {"order": ["groq"], "allow_fallbacks": False}, down="groq")
    assert r.status_code == 502 and r.json()["error"]["metadata"]["provider_name"] == "Groq"
    # Without an outage, allow_fallbacks: false serves from the order providers only.
    assert _provider(LLAMA, {"order": ["groq"], "allow_fallbacks": False}) == "Groq"
    r = _chat(LLAMA, {"order": ["nobody"], "allow_fallbacks": False})
    assert r.status_code == 404
    av = r.json()["error"]["availability"]
    assert av["code"] == "constraint_filtered" and av["excluded_by"] == ["allowed_providers"]


def test_every_provider_down_moves_to_the_next_model() -> None:
    down = "deepinfra,together,groq"
    r = _chat(LLAMA, down=down)
    assert r.status_code == 502
    mistral = "mistralai/mistral-small-3.2-24b-instruct"
    r = _chat(LLAMA, models=[LLAMA, mistral], down=down)
    assert r.status_code == 200 and r.json()["model"] == mistral


def test_max_price_excludes_dear_endpoints() -> None:
    limit = {"prompt": 0.6, "completion": 0.8}  # Together (0.88/0.88) is out
    assert _provider(LLAMA, {"max_price": limit, "sort": "latency"}) == "DeepInfra"
    assert _provider(LLAMA, {"max_price": limit, "sort": "throughput"}) == "Groq"
    assert _provider(LLAMA, {"max_price": {"prompt": "0.13"}, "sort": "throughput"}) == \
        "DeepInfra"  # strings are accepted, and the limit is inclusive
    assert _provider(LLAMA_FREE, {"max_price": {"prompt": 0, "completion": 0}}) == "Chutes"
    cheap = {"prompt": 0.06, "completion": 0.11}  # only Mistral Small (0.05/0.10) fits
    r = _chat("openrouter/auto", {"max_price": cheap})
    assert r.json()["model"] == "mistralai/mistral-small-3.2-24b-instruct"


def test_max_price_with_nothing_left_is_a_404_naming_the_constraint() -> None:
    sb = Sandbox()
    r = _chat(LLAMA, {"max_price": {"prompt": 0.1, "completion": 1}}, client=_client(sb))
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == 404 and "max_price" in err["message"]
    av = err["availability"]
    assert av["code"] == "constraint_filtered" and av["retryable"] is False
    assert av["requested_models"] == [LLAMA] and av["excluded_by"] == ["max_price"]
    assert av["constraint"]["field"] == "provider.max_price"
    assert "prompt <= 0.1" in av["constraint"]["detail"] and "0.13" in av["constraint"]["detail"]
    r = _chat("openrouter/auto", {"max_price": {"prompt": 0.01}}, client=_client(sb))
    assert r.status_code == 404 and r.json()["error"]["availability"]["excluded_by"] == ["max_price"]


def test_only_ignore_and_privacy_apply_per_endpoint() -> None:
    assert _provider(OSS_FREE, {"only": ["deepinfra/turbo"]}) == "DeepInfra Turbo"
    assert _provider(LLAMA, {"ignore": ["deepinfra"]}) == "Together"
    r = _chat(OSS_FREE, {"ignore": ["deepinfra"]})  # the base slug ignores the variant too
    assert r.status_code == 404
    assert r.json()["error"]["message"].startswith("No allowed providers are available")
    assert _provider(LLAMA, {"zdr": True, "sort": "latency"}) == "DeepInfra"  # Together is not ZDR
    assert _provider(OSS_FREE, {"data_collection": "deny", "order": ["DeepInfra"],
                                "allow_fallbacks": False}) == "DeepInfra"
    r = _chat("google/gemma-3-27b-it:free", {"data_collection": "deny"})
    assert r.status_code == 404
    assert r.json()["error"]["availability"]["code"] == "privacy_restricted"


def test_free_router_honours_provider_order() -> None:
    # Only the free Llama has a Venice endpoint: with fallbacks off the router must pick it.
    pinned = {"order": ["venice"], "allow_fallbacks": False}
    for seed in range(5):
        r = _chat("openrouter/free", pinned, client=_client(Sandbox(seed=seed)))
        assert (r.json()["model"], r.json()["provider"]) == (LLAMA_FREE, "Venice")


def test_partition_none_ranks_endpoints_across_models() -> None:
    # gpt-oss-20b's Groq endpoint (200 ms) beats Llama's fastest (Together, 300 ms).
    models = [LLAMA, "openai/gpt-oss-20b"]
    across = {"sort": {"by": "latency", "partition": "none"}}
    r = _chat(LLAMA, across, models=models)
    assert (r.json()["model"], r.json()["provider"]) == ("openai/gpt-oss-20b", "Groq")
    r = _chat(LLAMA, {"sort": {"by": "latency", "partition": "model"}}, models=models)
    assert (r.json()["model"], r.json()["provider"]) == (LLAMA, "Together")


@pytest.mark.parametrize("provider", [
    {"sort": "fastest"},
    {"sort": {"by": "latency", "partition": "global"}},
    {"order": "groq"},
    {"allow_fallbacks": "no"},
    {"max_price": {"prompt": "cheap"}},
    {"max_price": {"completion": -1}},
    {"max_price": 5},
])
def test_malformed_preferences_are_a_400_that_costs_no_quota(provider: dict[str, Any]) -> None:
    sb = Sandbox()
    r = _chat(LLAMA_FREE, provider, client=_client(sb))
    assert r.status_code == 400
    assert "'provider." in r.json()["error"]["message"]
    assert sb.quota.daily(sandbox_key())["used"] == 0


def test_session_reports_the_chosen_provider_and_explains_max_price(
        make_session: Callable[..., Session]) -> None:
    session = make_session()
    answer = session.ask("hi", LLAMA, provider={"sort": "throughput"})
    assert answer.provider == "Groq"
    assert session.ledger.rows(call_id=answer.call_id)[0]["provider"] == "Groq"
    with pytest.raises(orn.ModelUnavailableError) as info:
        session.ask("hi", LLAMA, provider={"max_price": {"prompt": 0.01}})
    assert "max_price" in info.value.message and info.value.http_status == 404
    assert info.value.reason == "provider_preferences"
    assert "Free alternatives" not in info.value.message  # a price cap is not a free-model problem


def test_preferences_and_outages_over_loopback(server: SandboxServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=5,
                      headers={"Authorization": f"Bearer {sandbox_key('providers')}"}) as client:
        assert _provider(LLAMA, {"sort": "throughput"}, client=client) == "Groq"
        assert _provider(LLAMA, {"order": ["groq", "together"]}, client=client,
                         down="groq") == "Together"
        r = _chat(LLAMA, {"max_price": {"prompt": 0.1}}, client=client)
        assert r.status_code == 404
