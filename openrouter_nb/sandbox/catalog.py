"""Fixture model catalog of the sandbox, shaped like the real ``GET /api/v1/models``.

Every ``:free`` model has a paid twin sharing its ``canonical_slug``. Besides the public fields,
each :class:`CatalogModel` carries sandbox-only data that is never emitted by ``/models``:
the serving ``provider`` display name, a typical ``latency_ms``, a ``reliability`` (0..1, the
chance of a fault-free answer and of valid structured output), and privacy flags
(``data_policy`` "trains" makes ``provider.data_collection="deny"`` fail; ``zdr``).

Those fields describe the model's *primary* endpoint. Some models have more provider endpoints
(:class:`Endpoint`: other prices, latency, throughput, privacy), listed by
``/models/{author}/{slug}/endpoints`` and chosen by ``provider`` preferences (``routing.py``).

Reasoning models carry a :class:`~.reasoning.ReasoningSpec` (how long they think per effort;
``/models`` shows the public ``reasoning`` object and lists ``reasoning`` and
``include_reasoning`` in ``supported_parameters``). In the pool of ``openrouter/free``:
``openai/gpt-oss-20b:free`` (short thoughts), ``qwen/qwen3-235b-a22b:free`` (puts its whole
reply in ``reasoning`` when the prompt says "think aloud", as some real Qwen3 deployments do
now and then) and ``deepseek/deepseek-r1-0528:free`` (long thoughts: about 900 tokens at the
default medium effort, more than a ``max_tokens`` of 800). ``openai/gpt-5-mini`` is paid and
``mandatory``: turning its reasoning off is a 400.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from .reasoning import ReasoningSpec

__all__ = ["CATALOG", "CatalogModel", "Endpoint", "FREE_ROUTER", "AUTO_ROUTER", "by_id",
           "free_models"]

FREE_ROUTER = "openrouter/free"
AUTO_ROUTER = "openrouter/auto"

_BASE_PARAMS = ("frequency_penalty", "max_tokens", "presence_penalty", "seed", "stop",
                "temperature", "top_k", "top_p")
_TOOLS = ("tool_choice", "tools")
_STRUCTURED = ("response_format", "structured_outputs")
_REASONING = ("include_reasoning", "reasoning")
REASONING_ONLY_PHRASE = "think aloud"  # in a prompt: the quirky model answers in reasoning


@dataclass(frozen=True)
class Endpoint:
    """One provider endpoint of a model: who serves it, at what price and speed."""

    provider: str  # display name, e.g. "Google Vertex"
    tag: str  # slug, e.g. "google-vertex" or a variant "google-vertex/europe"
    prompt_price: str  # USD per token, as in the API
    completion_price: str
    latency_ms: int
    throughput: float  # tokens per second (p50)
    data_policy: str = "no-train"
    zdr: bool = False

    def matches(self, slug: str) -> bool:
        """True if a provider slug names this endpoint: the full tag, its base slug (before
        ``/``, matching every variant) or the display name, case-insensitively."""
        slug = slug.lower()
        return slug in (self.tag, self.provider.lower()) or self.tag.startswith(slug + "/")

    def per_million(self) -> tuple[float, float]:
        """(prompt, completion) price in USD per million tokens."""
        return float(self.prompt_price) * 1e6, float(self.completion_price) * 1e6


@dataclass(frozen=True)
class CatalogModel:
    """One fixture model: public /models fields plus sandbox-only behaviour."""

    id: str
    name: str
    canonical_slug: str
    created: int
    context_length: int
    max_completion_tokens: int
    tokenizer: str
    provider: str
    provider_tag: str
    prompt_price: str = "0"
    completion_price: str = "0"
    vision: bool = False
    tools: bool = False
    structured: bool = False
    latency_ms: int = 800
    reliability: float = 1.0
    data_policy: str = "no-train"  # "trains": the provider may train on prompts
    zdr: bool = False
    router: bool = False
    alias_target: str | None = None
    instruct_type: str | None = None
    description: str = ""
    throughput: float | None = None  # tokens/s; None: derived from latency_ms
    extra_endpoints: tuple[Endpoint, ...] = ()
    reasoning: ReasoningSpec | None = None
    reasoning_only_phrase: str | None = None  # a prompt with it gets its reply in reasoning

    @property
    def is_free(self) -> bool:
        """True for models counted against the free-model quota (``:free`` and the router)."""
        return self.id.endswith(":free") or self.id == FREE_ROUTER

    @property
    def zero_priced(self) -> bool:
        return self.prompt_price == "0" and self.completion_price == "0"

    @property
    def input_modalities(self) -> list[str]:
        return ["text", "image"] if self.vision else ["text"]

    @property
    def supported_parameters(self) -> list[str]:
        params = list(_BASE_PARAMS)
        if self.tools:
            params += _TOOLS
        if self.structured:
            params += _STRUCTURED
        if self.reasoning is not None or self.router:
            params += _REASONING
        if self.reasoning is not None and self.reasoning.style == "openai":
            params.append("reasoning_effort")
        return sorted(params)

    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every endpoint serving this model, the primary (the model's own fields) first."""
        primary = Endpoint(self.provider, self.provider_tag, self.prompt_price,
                           self.completion_price, self.latency_ms, self.tokens_per_s,
                           self.data_policy, self.zdr)
        return (primary, *self.extra_endpoints)

    @property
    def primary(self) -> Endpoint:
        """The endpoint this entry's own fields describe (for a served copy: the one serving)."""
        return self.endpoints()[0]

    @property
    def tokens_per_s(self) -> float:
        """Typical throughput (p50): the fixture's figure, or one derived from latency."""
        return self.throughput if self.throughput is not None else 40000 / self.latency_ms

    def served_by(self, ep: Endpoint) -> CatalogModel:
        """This model as served by ``ep``: its provider, prices, latency and privacy."""
        return replace(self, provider=ep.provider, provider_tag=ep.tag,
                       prompt_price=ep.prompt_price, completion_price=ep.completion_price,
                       latency_ms=ep.latency_ms, throughput=ep.throughput,
                       data_policy=ep.data_policy, zdr=ep.zdr)

    def price_of(self, prompt_tokens: int, completion_tokens: int) -> tuple[float, float]:
        """USD cost of (prompt, completion) tokens; routers with price -1 cost 0 here."""
        p, c = float(self.prompt_price), float(self.completion_price)
        return max(p, 0.0) * prompt_tokens, max(c, 0.0) * completion_tokens

    def architecture(self) -> dict[str, object]:
        ins = self.input_modalities
        return {
            "modality": "+".join(ins) + "->text",
            "input_modalities": ins,
            "output_modalities": ["text"],
            "tokenizer": self.tokenizer,
            "instruct_type": self.instruct_type,
        }

    def to_api(self) -> dict[str, object]:
        """The public ``/models`` entry (no sandbox-only fields)."""
        entry: dict[str, object] = {
            "id": self.id,
            "canonical_slug": self.canonical_slug,
            "hugging_face_id": None,
            "name": self.name,
            "created": self.created,
            "description": self.description or f"{self.name} (sandbox fixture).",
            "context_length": self.context_length,
            "architecture": self.architecture(),
            "pricing": {"prompt": self.prompt_price, "completion": self.completion_price},
            "top_provider": {
                "context_length": self.context_length,
                "max_completion_tokens": self.max_completion_tokens,
                "is_moderated": False,
            },
            "per_request_limits": None,
            "supported_parameters": self.supported_parameters,
            "default_parameters": {"temperature": None, "top_p": None, "frequency_penalty": None},
            "supported_voices": None,
            "expiration_date": None,
            "links": {"details": f"/api/v1/models/{self.canonical_slug}/endpoints"},
        }
        if self.reasoning is not None:
            entry["reasoning"] = self.reasoning.to_api()
        if self.alias_target:
            target = by_id(self.alias_target)
            entry["alias_target"] = {"slug": self.alias_target,
                                     "name": target.name if target else self.alias_target}
        return entry

    def endpoint_entries(self) -> list[dict[str, object]]:
        """The ``PublicEndpoint`` entries of every endpoint serving this model."""
        return [self.served_by(ep).endpoint() for ep in self.endpoints()]

    def endpoint(self) -> dict[str, object]:
        """The ``PublicEndpoint`` entry of the (primary) endpoint this entry describes."""
        tps = self.tokens_per_s
        return {
            "name": f"{self.provider} | {self.id}",
            "model_id": self.id,
            "model_name": self.name,
            "context_length": self.context_length,
            "pricing": {"prompt": self.prompt_price, "completion": self.completion_price},
            "provider_name": self.provider,
            "tag": self.provider_tag,
            "quantization": "fp8" if self.is_free else "bf16",
            "max_completion_tokens": self.max_completion_tokens,
            "max_prompt_tokens": None,
            "supported_parameters": self.supported_parameters,
            "status": 0,
            "uptime_last_30m": round(100 * self.reliability, 1),
            "uptime_last_5m": round(100 * self.reliability, 1),
            "uptime_last_1d": round(100 * self.reliability, 1),
            "latency_last_30m": {"p50": self.latency_ms, "p75": int(self.latency_ms * 1.3),
                                 "p90": int(self.latency_ms * 1.8),
                                 "p99": int(self.latency_ms * 3)},
            "throughput_last_30m": {"p50": round(tps, 1), "p75": round(tps * 0.75, 1),
                                    "p90": round(tps * 0.5, 1), "p99": round(tps * 0.25, 1)},
            "native_tools": {},
            "service_tier": None,
            "supports_diarization": False,
            "supports_implicit_caching": False,
            "supports_tool_choice": {"auto": self.tools, "function": self.tools,
                                     "none": True, "required": self.tools},
        }


def _pair(slug: str, name: str, created: int, ctx: int, max_out: int, tokenizer: str,
          free_provider: str, paid_provider: str, prices: tuple[str, str], latency_ms: int,
          reliability: float, *, vision: bool = False, tools: bool = False,
          structured: bool = False, trains: bool = False, instruct_type: str | None = None,
          reasoning: ReasoningSpec | None = None, tps: float | None = None,
          quirk: str | None = None) -> tuple[CatalogModel, CatalogModel]:
    """A ``:free`` model and its paid twin (faster, fully reliable, no training, ZDR)."""
    free = CatalogModel(
        id=f"{slug}:free", name=f"{name} (free)", canonical_slug=slug, created=created,
        context_length=ctx, max_completion_tokens=max_out // 2, tokenizer=tokenizer,
        provider=free_provider, provider_tag=free_provider.lower().replace(" ", "-"),
        vision=vision, tools=tools, structured=structured, latency_ms=latency_ms,
        reliability=reliability, data_policy="trains" if trains else "no-train", zdr=False,
        instruct_type=instruct_type, throughput=tps, reasoning=reasoning,
        reasoning_only_phrase=quirk, description=_quirk_note(name + " (free)", quirk))
    paid = CatalogModel(
        id=slug, name=name, canonical_slug=slug, created=created, context_length=ctx,
        max_completion_tokens=max_out, tokenizer=tokenizer, provider=paid_provider,
        provider_tag=paid_provider.lower().replace(" ", "-"), prompt_price=prices[0],
        completion_price=prices[1], vision=vision, tools=tools, structured=structured,
        latency_ms=max(200, latency_ms // 2), reliability=1.0, zdr=True,
        instruct_type=instruct_type, throughput=tps * 1.5 if tps else None, reasoning=reasoning,
        reasoning_only_phrase=quirk, description=_quirk_note(name, quirk))
    return free, paid


def _quirk_note(name: str, quirk: str | None) -> str:
    if quirk is None:
        return ""
    return (f"{name} (sandbox fixture). Like some real deployments, it may put its whole reply "
            f"in `reasoning` and leave `content` empty: here when the prompt says \"{quirk}\".")


_R1 = ReasoningSpec((("low", 250), ("medium", 900), ("high", 2400)))
_QWEN3 = ReasoningSpec((("low", 150), ("medium", 450), ("high", 1100)))
_GPT_OSS = ReasoningSpec((("low", 60), ("medium", 200), ("high", 650)))
_GPT5 = ReasoningSpec((("minimal", 64), ("low", 192), ("medium", 448), ("high", 1536)),
                      mandatory=True, style="openai", quantum=64)


_PAIRS = [
    _pair("meta-llama/llama-3.3-70b-instruct", "Meta: Llama 3.3 70B Instruct", 1733506137,
          131072, 16384, "Llama3", "Chutes", "DeepInfra", ("0.00000013", "0.00000039"), 900,
          0.9, tools=True, instruct_type="llama3"),
    _pair("google/gemma-3-27b-it", "Google: Gemma 3 27B", 1741756359, 96000, 8192, "Gemini",
          "Google AI Studio", "DeepInfra", ("0.00000009", "0.00000017"), 1200, 0.85,
          vision=True, structured=True, trains=True, instruct_type="gemma"),
    _pair("mistralai/mistral-small-3.2-24b-instruct", "Mistral: Mistral Small 3.2 24B",
          1750443016, 131072, 16384, "Mistral", "Chutes", "Mistral",
          ("0.00000005", "0.0000001"), 700, 0.95, vision=True, tools=True, structured=True),
    _pair("qwen/qwen3-coder", "Qwen: Qwen3 Coder 480B A35B", 1753230546, 262144, 65536,
          "Qwen3", "Chutes", "Together", ("0.0000002", "0.0000008"), 1500, 0.8, tools=True,
          structured=True),
    _pair("deepseek/deepseek-chat-v3.1", "DeepSeek: DeepSeek V3.1", 1755779628, 163840, 32768,
          "DeepSeek", "DeepInfra", "DeepSeek", ("0.0000002", "0.0000008"), 2500, 0.7,
          tools=True, structured=True, trains=True),
    _pair("openai/gpt-oss-20b", "OpenAI: gpt-oss-20b", 1754414229, 131072, 32768, "GPT",
          "DeepInfra", "Groq", ("0.00000003", "0.00000014"), 400, 1.0, tools=True,
          structured=True, reasoning=_GPT_OSS),
    _pair("nvidia/nemotron-nano-9b-v2", "NVIDIA: Nemotron Nano 9B V2", 1757106807, 128000,
          16384, "Other", "NVIDIA", "DeepInfra", ("0.00000004", "0.00000016"), 300, 0.75,
          tools=True, structured=True),
    _pair("moonshotai/kimi-k2", "MoonshotAI: Kimi K2 0711", 1752263252, 32768, 16384, "Other",
          "Chutes", "Moonshot AI", ("0.00000014", "0.00000249"), 1800, 0.9, tools=True),
    _pair("z-ai/glm-4.5-air", "Z.AI: GLM 4.5 Air", 1753471258, 131072, 98304, "Other", "Z.AI",
          "Z.AI", ("0.00000014", "0.00000086"), 1100, 0.98, tools=True, structured=True),
    _pair("google/gemini-2.0-flash-exp", "Google: Gemini 2.0 Flash Experimental", 1733937523,
          1048576, 8192, "Gemini", "Google AI Studio", "Google Vertex",
          ("0.0000001", "0.0000004"), 600, 0.99, vision=True, tools=True, structured=True,
          trains=True),
    _pair("deepseek/deepseek-r1-0528", "DeepSeek: R1 0528", 1748455170, 163840, 65536,
          "DeepSeek", "Chutes", "DeepInfra", ("0.0000004", "0.00000175"), 1400, 0.85,
          trains=True, reasoning=_R1, tps=75.0),
    _pair("qwen/qwen3-235b-a22b", "Qwen: Qwen3 235B A22B", 1745875757, 131072, 40960, "Qwen3",
          "Chutes", "Together", ("0.00000013", "0.0000006"), 900, 0.9, tools=True,
          structured=True, reasoning=_QWEN3, tps=90.0, quirk=REASONING_ONLY_PHRASE),
]

_SINGLES = [
    CatalogModel(id="openai/gpt-5-mini", name="OpenAI: GPT-5 Mini",
                 canonical_slug="openai/gpt-5-mini", created=1754587413, context_length=400000,
                 max_completion_tokens=128000, tokenizer="GPT", provider="OpenAI",
                 provider_tag="openai", prompt_price="0.00000025", completion_price="0.000002",
                 vision=True, tools=True, structured=True, latency_ms=1300, throughput=80.0,
                 reasoning=_GPT5),
]

_SPECIALS = [
    CatalogModel(id=FREE_ROUTER, name="Free Models Router", canonical_slug=FREE_ROUTER,
                 created=1769904000, context_length=200000, max_completion_tokens=16384,
                 tokenizer="Router", provider="OpenRouter", provider_tag="openrouter",
                 vision=True, tools=True, structured=True, router=True,
                 description="Routes each request to a random free model that supports it."),
    CatalogModel(id=AUTO_ROUTER, name="Auto Router", canonical_slug=AUTO_ROUTER,
                 created=1699401600, context_length=2000000, max_completion_tokens=65536,
                 tokenizer="Router", provider="OpenRouter", provider_tag="openrouter",
                 prompt_price="-1", completion_price="-1", vision=True, tools=True,
                 structured=True, router=True,
                 description="Picks a paid model for the prompt; the response names it."),
    CatalogModel(id="~google/gemini-flash-latest", name="Google: Gemini Flash Latest",
                 canonical_slug="~google/gemini-flash-latest", created=1760000000,
                 context_length=1048576, max_completion_tokens=8192, tokenizer="Gemini",
                 provider="Google Vertex", provider_tag="google-vertex",
                 prompt_price="0.0000001", completion_price="0.0000004", vision=True,
                 tools=True, structured=True, alias_target="google/gemini-2.0-flash-exp"),
    CatalogModel(id="openrouter/horizon-beta", name="Horizon Beta", canonical_slug=(
                 "openrouter/horizon-beta"), created=1754089419, context_length=256000,
                 max_completion_tokens=128000, tokenizer="Other", provider="Stealth",
                 provider_tag="stealth", vision=True, tools=True, structured=True,
                 latency_ms=1000, reliability=0.95, data_policy="trains",
                 description="Stealth model, free during its promotion (priced 0, no :free)."),
]

# Extra provider endpoints (the primary one comes from the model's own fields). Free endpoints
# cost nothing, so they differ in speed; paid ones also in price and zero-data-retention.
_EXTRA: dict[str, tuple[Endpoint, ...]] = {
    "meta-llama/llama-3.3-70b-instruct:free": (
        Endpoint("Venice", "venice", "0", "0", 1400, 75.0),
        Endpoint("DeepInfra", "deepinfra", "0", "0", 650, 30.0),
    ),
    "openai/gpt-oss-20b:free": (
        Endpoint("DeepInfra Turbo", "deepinfra/turbo", "0", "0", 250, 220.0),
    ),
    "meta-llama/llama-3.3-70b-instruct": (
        Endpoint("Together", "together", "0.00000088", "0.00000088", 300, 95.0),
        Endpoint("Groq", "groq", "0.00000059", "0.00000079", 520, 310.0, zdr=True),
    ),
    "google/gemma-3-27b-it": (
        Endpoint("Google AI Studio", "google-ai-studio", "0.0000001", "0.0000002", 700, 60.0),
    ),
    "google/gemini-2.0-flash-exp": (
        Endpoint("Google Vertex (Europe)", "google-vertex/europe", "0.0000001", "0.0000004",
                 380, 120.0, zdr=True),
        Endpoint("Google AI Studio", "google-ai-studio", "0.0000001", "0.0000004", 250,
                 150.0),
    ),
}

CATALOG: tuple[CatalogModel, ...] = tuple(
    replace(m, extra_endpoints=_EXTRA.get(m.id, ()))
    for pair in _PAIRS for m in pair) + tuple(_SINGLES) + tuple(_SPECIALS)
_BY_ID = {m.id: m for m in CATALOG}


def by_id(model_id: str) -> CatalogModel | None:
    """The catalog entry with this exact id, or None."""
    return _BY_ID.get(model_id)


def free_models() -> Iterator[CatalogModel]:
    """Concrete ``:free`` models (the pool of ``openrouter/free``), in catalog order."""
    return (m for m in CATALOG if m.id.endswith(":free"))


def paid_models() -> Iterator[CatalogModel]:
    """Concrete paid models (the pool of ``openrouter/auto``)."""
    return (m for m in CATALOG
            if not m.router and not m.alias_target and not m.zero_priced)
