"""The :class:`Sandbox`: an offline OpenRouter that answers ``handle(method, path, headers, body)``.

It knows nothing of HTTP plumbing (see ``transport.py`` and ``server.py``) and nothing of the
client package: it imports only the standard library and its own modules.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import string
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from . import answers
from .catalog import CATALOG, by_id
from .chat import handle_chat
from .faults import FAULTS
from .pacing import INSTANT, SpeedSettings, check_speed
from .quota import QuotaEngine
from .response import RecordedRequest, SandboxResponse, error_response, json_response

__all__ = ["Sandbox", "sandbox_key"]

log = logging.getLogger(__name__)
KEY_RE = re.compile(r"sk-or-v1-[0-9a-f]{64}")
PREFIX = "/api/v1"
_ALNUM = string.ascii_letters + string.digits
T = TypeVar("T")


def sandbox_key(name: str = "demo") -> str:
    """A key of the real form (``sk-or-v1-`` + 64 hex), derived from ``name``."""
    return "sk-or-v1-" + hashlib.sha256(name.encode()).hexdigest()


class Sandbox:
    """Offline OpenRouter emulator: quota, routing, faults, JSON and SSE answers.

    * ``rpd`` defaults to 50, or 1000 when ``credits >= 10``; ``window_s`` scales the minute.
    * ``speed``: ``"instant"`` (the default: never waits, for tests and nbval) or
      ``"realistic"`` (each serving endpoint's first-token latency and tokens/s from the
      catalog, reasoning included; streams arrive chunk by chunk). Settable later
      (``sandbox.speed = "realistic"``); the request header ``X-Sandbox-Speed`` overrides it.
    * ``latency_ms`` sleeps that long per answer (spread over a stream); ``model_latency`` uses
      each model's typical latency instead. Either overrides ``speed``; the request header
      ``X-Sandbox-Latency-Ms`` overrides them all (see ``pacing.py``).
    * ``clock`` drives quota windows and timestamps; ``sleep`` performs every wait, so a test
      passing a fake one can assert exact timings without waiting.
    * Shape switches: ``key_reports_daily`` (``free_model_daily_requests`` in /key),
      ``usage_in_last_delta`` (usage on the finish chunk instead of an empty-choices chunk),
      ``leading_whitespace`` (blank lines before JSON bodies), ``processing_comments``
      (``: OPENROUTER PROCESSING`` lines), ``split_frames`` (each SSE frame in two writes).
    * ``natural_faults``: models fail now and then (upstream 429 / 502) per their reliability.
    * ``count_rejected``: quota 429s count in the minute window (see ``quota.py``).
    * ``hang_s``: how long the loopback server hangs on the ``timeout`` fault.
    * ``down_providers``: provider slugs whose endpoints fail with an upstream 502 (an outage);
      the request header ``X-Sandbox-Provider-Down: slug,...`` adds more for one request.
      Routing then falls back to the next endpoint unless ``allow_fallbacks`` is false.
    * ``key_cache_s``: opt-in lag of ``free_model_daily_requests`` in /key (the real figure is
      cached for about 60 s): a key's figure is recomputed at most this often. 0 (the default)
      reports the live count.
    """

    def __init__(self, *, seed: int = 0, rpm: int = 20, rpd: int | None = None,
                 credits: float = 0.0, window_s: float = 60.0, latency_ms: int | None = None,
                 model_latency: bool = False, clock: Callable[[], float] = time.time,
                 key_reports_daily: bool = True, usage_in_last_delta: bool = False,
                 leading_whitespace: bool = False, processing_comments: bool = True,
                 natural_faults: bool = False, count_rejected: bool = True,
                 split_frames: bool = False, down_providers: Iterable[str] = (),
                 key_cache_s: float = 0.0, speed: str = INSTANT,
                 hang_s: float = 5.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.seed = seed
        self.credits = credits
        self.high_balance = credits >= 10
        self.rpm = rpm
        self.rpd = rpd if rpd is not None else (1000 if self.high_balance else 50)
        self.window_s = window_s
        self.latency_ms = latency_ms
        self.model_latency = model_latency
        self.speed = speed
        self.clock = clock
        self.key_reports_daily = key_reports_daily
        self.usage_in_last_delta = usage_in_last_delta
        self.leading_whitespace = leading_whitespace
        self.processing_comments = processing_comments
        self.natural_faults = natural_faults
        self.split_frames = split_frames
        self.default_hang_s = hang_s
        self.down_providers: frozenset[str] = frozenset(s.lower() for s in down_providers)
        self.key_cache_s = key_cache_s
        self._daily_cache: dict[str, tuple[float, dict[str, int]]] = {}
        self._sleep = sleep
        self.management_keys: set[str] = set()
        self.quota = QuotaEngine(rpm=rpm, rpd=self.rpd, window_s=window_s, clock=clock,
                                 count_rejected=count_rejected, high_balance=self.high_balance)
        self.requests: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._router_rng = random.Random(answers.digest(seed, "router"))
        self._id_rng = random.Random(answers.digest(seed, "ids"))
        self._attempts: Counter[tuple[str, str, int]] = Counter()
        self._fault_queue: deque[str] = deque()
        self._generations: dict[str, dict[str, Any]] = {}
        self._polled: set[str] = set()
        self._spent: Counter[str] = Counter()

    # --- public helpers -------------------------------------------------------------------
    def queue_fault(self, fault: str, count: int = 1) -> None:
        """Give the next ``count`` chat model attempts this fault (no header needed)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._fault_queue.extend([fault] * count)

    def clear_faults(self) -> None:
        with self._lock:
            self._fault_queue.clear()

    def next_queued_fault(self) -> str | None:
        """Take the next queued fault (see :meth:`queue_fault`), if any."""
        with self._lock:
            return self._fault_queue.popleft() if self._fault_queue else None

    @property
    def speed(self) -> str:
        """``"instant"`` or ``"realistic"`` (see the class docstring)."""
        return self._speed

    @speed.setter
    def speed(self, value: str) -> None:
        self._speed = check_speed(value)

    @property
    def speed_settings(self) -> SpeedSettings:
        return SpeedSettings(self._speed, self.latency_ms, self.model_latency)

    def router_choice(self, pool: Sequence[T]) -> T:
        """The free and auto routers' pick: seeded, so a fresh sandbox repeats its picks."""
        with self._lock:
            return self._router_rng.choice(pool)

    def user_id(self, key: str) -> str:
        """A stable fake ``user_…`` id for a key."""
        raw = int.from_bytes(hashlib.sha256(b"user:" + key.encode()).digest(), "big")
        chars = []
        for _ in range(27):
            raw, rem = divmod(raw, len(_ALNUM))
            chars.append(_ALNUM[rem])
        return "user_" + "".join(chars)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)

    def hang_s(self, headers: Mapping[str, str]) -> float:
        return float(headers.get("x-sandbox-hang-s", self.default_hang_s))

    def new_generation_id(self) -> str:
        with self._lock:
            tail = "".join(self._id_rng.choice(_ALNUM) for _ in range(20))
        return f"gen-{int(self.clock())}-{tail}"

    def attempt_seed(self, kind: str, model_id: str, body: Any) -> int:
        """A seed that is the same for the n-th identical request in every fresh sandbox."""
        h = answers.digest(body)
        with self._lock:
            n = self._attempts[(kind, model_id, h)]
            self._attempts[(kind, model_id, h)] += 1
        return answers.digest(self.seed, kind, model_id, h, n)

    def store_generation(self, key: str, data: dict[str, Any]) -> None:
        """Keep a ``/generation`` record (``render.generation_record``); add its cost."""
        with self._lock:
            self._generations[data["id"]] = data
            self._spent[key] += data["total_cost"]

    def finish_record(self, rec: RecordedRequest) -> None:
        rec.t_end, rec.perf_end = self.clock(), time.perf_counter()

    # --- entry point ----------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Mapping[str, str],
               body: bytes) -> SandboxResponse:
        """Answer one HTTP request (``path`` may carry a query string)."""
        parts = urlsplit(path)
        query = dict(parse_qsl(parts.query))
        low = {k.lower(): v for k, v in headers.items()}
        rec_headers = {k: ("Bearer ***" if k.lower() == "authorization" else v)
                       for k, v in headers.items()}
        try:
            parsed = json.loads(body) if body else None
            bad_json = False
        except ValueError:
            parsed, bad_json = None, True
        rec = RecordedRequest(method.upper(), parts.path, query, rec_headers, parsed,
                              self.clock(), time.perf_counter())
        with self._lock:
            self.requests.append(rec)
        try:
            resp = self._route(method.upper(), parts.path, query, low, parsed, bad_json, rec)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            # A malformed sandbox header or an odd body: fail like the service, never crash.
            log.debug("sandbox could not handle %s %s", method, path, exc_info=True)
            resp = error_response(400, f"Bad request: {exc}")
        rec.status = resp.status
        if resp.chunks is None:
            self.finish_record(rec)
        resp.headers.setdefault("X-Sandbox", "openrouter_nb")
        return resp

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: Any, bad_json: bool, rec: RecordedRequest) -> SandboxResponse:
        if not path.startswith(PREFIX + "/"):
            return error_response(404, "Not Found")
        route = path[len(PREFIX):].rstrip("/")
        if method == "GET" and route == "/models":
            return self._models(query)
        if method == "GET" and route.startswith("/models/") and route.endswith("/endpoints"):
            return self._endpoints(route[len("/models/"):-len("/endpoints")])
        known = {("POST", "/chat/completions"), ("GET", "/key"), ("GET", "/auth/key"),
                 ("GET", "/generation"), ("GET", "/credits")}
        if (method, route) not in known:
            return error_response(404, "Not Found")
        key, denied = self._auth(headers)
        if denied is not None:
            return denied
        if route == "/chat/completions":
            if bad_json:
                return error_response(400, "Invalid JSON in request body.",
                                      user_id=self.user_id(key))
            if key in self.management_keys:
                return error_response(403, "Management keys cannot be used for inference.")
            return handle_chat(self, key, headers, body, rec)
        if route in ("/key", "/auth/key"):
            return json_response(200, {"data": self.key_info(key)})
        if route == "/generation":
            return self._generation(query.get("id", ""))
        if key in self.management_keys:
            return json_response(200, {"data": {"total_credits": self.credits,
                                                "total_usage": round(self._spent_total(), 6)}})
        return error_response(403, "Only management keys can perform this operation")

    def _auth(self, headers: Mapping[str, str]) -> tuple[str, SandboxResponse | None]:
        value = headers.get("authorization", "").strip()
        token = value[len("bearer "):].strip() if value.lower().startswith("bearer ") else ""
        if not token:
            return "", error_response(401, "No auth credentials found")
        if not KEY_RE.fullmatch(token):
            return "", error_response(401, "User not found.")
        return token, None

    def _spent_total(self) -> float:
        with self._lock:
            return float(sum(self._spent.values()))

    # --- account and catalog endpoints ----------------------------------------------------
    def key_info(self, key: str) -> dict[str, Any]:
        """The ``data`` object of ``GET /key`` for ``key``."""
        with self._lock:
            spent = float(self._spent[key])
        info: dict[str, Any] = {
            "label": f"{key[:12]}...{key[-3:]}", "limit": None, "limit_remaining": None,
            "limit_reset": None, "include_byok_in_limit": False, "usage": spent,
            "usage_daily": spent, "usage_weekly": spent, "usage_monthly": spent,
            "byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0,
            "byok_usage_monthly": 0, "is_free_tier": not self.high_balance,
            "is_management_key": key in self.management_keys,
            "is_provisioning_key": key in self.management_keys,
            "creator_user_id": self.user_id(key), "organization_id": None,
            "workspace_id": None, "allowed_data_regions": ["global"], "budgets": [],
            "effective_budget": None,
            "rate_limit": {"requests": -1, "interval": "10s",
                           "note": "This field is deprecated and safe to ignore."},
        }
        if self.key_reports_daily:
            info["free_model_daily_requests"] = self._daily(key)
        return info

    def _daily(self, key: str) -> dict[str, int]:
        """The quota's daily figure for ``key``, cached for ``key_cache_s`` when that is set."""
        if self.key_cache_s <= 0:
            return self.quota.daily(key)
        now = self.clock()
        with self._lock:
            cached = self._daily_cache.get(key)
            if cached is None or not 0 <= now - cached[0] < self.key_cache_s:
                cached = self._daily_cache[key] = (now, self.quota.daily(key))
            return dict(cached[1])

    def _models(self, query: Mapping[str, str]) -> SandboxResponse:
        wanted = {p for p in query.get("supported_parameters", "").split(",") if p}
        data = [m.to_api() for m in CATALOG if wanted <= set(m.supported_parameters)]
        return json_response(200, {"data": data, "total_count": len(data),
                                   "links": {"next": None}})

    def _endpoints(self, slug: str) -> SandboxResponse:
        exact = by_id(slug)
        group = [m for m in CATALOG if m.canonical_slug == slug] or ([exact] if exact else [])
        if not group:
            return error_response(404, f"No model found for {slug}")
        head = exact or group[0]
        data = {"id": head.id, "name": head.name, "created": head.created,
                "description": head.to_api()["description"],
                "architecture": head.architecture(),
                "endpoints": [e for m in group for e in m.endpoint_entries()]}
        return json_response(200, {"data": data})

    def _generation(self, gen_id: str) -> SandboxResponse:
        with self._lock:
            data = self._generations.get(gen_id)
            first = gen_id not in self._polled
            self._polled.add(gen_id)
        if data is None or first:
            return error_response(404, "Generation not found")
        return json_response(200, {"data": data})
