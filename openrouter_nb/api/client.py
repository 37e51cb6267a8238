"""A small synchronous OpenRouter client on httpx.

It knows OpenRouter and nothing of notebooks, ledgers or retries: one method call is one
HTTP request, and every failure comes back as one typed ``OpenRouterError``. Pass any
``httpx.BaseTransport`` (the in-process sandbox is one) to run without a network.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import httpx

from .._version import __version__
from .errors import MidStreamError, NetworkError, OpenRouterError, ProviderError, RequestTimeout
from .parse import chat_result, error_from_body, load_json
from .sse import iter_sse_data
from .stream import StreamAccumulator
from .types import ChatResult, KeyInfo, StreamDelta

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
APP_TITLE = "openrouter-nb"
APP_URL = "https://github.com/openrouter-nb/openrouter-nb"

DeltaCallback = Callable[[StreamDelta], None]
_Method = TypeVar("_Method", bound=Callable[..., Any])


def _scrubbed(method: _Method) -> _Method:
    """Errors leave the client without the key, whatever the server echoed back."""
    @functools.wraps(method)
    def call(self: OpenRouterClient, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except OpenRouterError as error:
            error.scrub(self._api_key)
            raise

    return cast(_Method, call)


class OpenRouterClient:
    """``POST /chat/completions`` (JSON and SSE), ``GET /models``, ``/key``, ``/generation``."""

    def __init__(
        self,
        api_key: str | None,
        base_url: str = DEFAULT_BASE_URL,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        default_headers = {
            "User-Agent": f"openrouter-nb/{__version__}",
            "HTTP-Referer": APP_URL,
            # Both title headers: the docs call X-OpenRouter-Title canonical, yet dashboards
            # were seen to read only the legacy X-Title (reference §1).
            "X-Title": APP_TITLE,
            "X-OpenRouter-Title": APP_TITLE,
        }
        if api_key:
            default_headers["Authorization"] = f"Bearer {api_key}"
        default_headers.update(headers or {})
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            headers=default_headers,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
        )

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpenRouterClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc or self.base_url

    # -- chat ----------------------------------------------------------------------------
    @_scrubbed
    def chat(
        self,
        body: Mapping[str, Any],
        *,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
        on_delta: DeltaCallback | None = None,
    ) -> ChatResult:
        """Send one chat completion; streams when ``body["stream"]`` is true."""
        if body.get("stream"):
            return self._chat_stream(body, timeout=timeout, headers=headers, on_delta=on_delta)
        model = body.get("model")
        started = time.perf_counter()
        with self._errors(model):
            response = self._http.post(
                "chat/completions", json=dict(body), headers=headers, timeout=self._timeout(timeout)
            )
            payload = self._json(response, model)
        latency = time.perf_counter() - started
        if response.status_code >= 400:
            raise error_from_body(payload, http_status=response.status_code,
                                  headers=response.headers, model=model)
        result = chat_result(payload, http_status=response.status_code, headers=response.headers,
                             latency_s=latency, requested_model=model)
        return replace(result, server=response.headers.get("server"))

    def _chat_stream(
        self,
        body: Mapping[str, Any],
        *,
        timeout: float | None,
        headers: Mapping[str, str] | None,
        on_delta: DeltaCallback | None,
    ) -> ChatResult:
        model = body.get("model")
        started = time.perf_counter()
        accumulator = StreamAccumulator(requested_model=model, started=started)
        try:
            with self._errors(model, accumulator), self._http.stream(
                "POST", "chat/completions", json=dict(body), headers=headers,
                timeout=self._timeout(timeout),
            ) as response:
                if response.status_code >= 400 or not _is_event_stream(response):
                    response.read()
                    payload = self._json(response, model)
                    if response.status_code >= 400:
                        raise error_from_body(payload, http_status=response.status_code,
                                              headers=response.headers, model=model)
                    # A 200 JSON answer to a streaming request: an error body, or a server
                    # that does not stream. Either way parse it like a non-streamed answer.
                    result = chat_result(payload, http_status=response.status_code,
                                         headers=response.headers,
                                         latency_s=time.perf_counter() - started,
                                         requested_model=model)
                    return replace(result, server=response.headers.get("server"))
                accumulator.server = response.headers.get("server")
                for data in iter_sse_data(response.iter_bytes()):
                    for delta in accumulator.feed(data):
                        if on_delta is not None:
                            on_delta(delta)
                    if accumulator.done:
                        break
        except OpenRouterError as error:
            error.partial_text = error.partial_text or accumulator.text
            raise
        return accumulator.result()

    # -- other endpoints ------------------------------------------------------------------
    @_scrubbed
    def models(self) -> list[dict[str, Any]]:
        """``GET /models``: the catalog as OpenRouter lists it."""
        data = self._get_json("models").get("data")
        return [m for m in data if isinstance(m, dict)] if isinstance(data, list) else []

    @_scrubbed
    def key(self) -> KeyInfo:
        """``GET /key``: the key's label, tier and free-model daily counter."""
        return KeyInfo.from_json(self._get_json("key"))

    @_scrubbed
    def generation(self, generation_id: str) -> dict[str, Any]:
        """``GET /generation?id=``: stats for one generation (404 for a while after it ends)."""
        data = self._get_json("generation", params={"id": generation_id}).get("data")
        return data if isinstance(data, dict) else {}

    def _get_json(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        with self._errors(None):
            response = self._http.get(path, params=params)
            payload = self._json(response, None)
        if response.status_code >= 400:
            raise error_from_body(payload, http_status=response.status_code, headers=response.headers)
        return payload if isinstance(payload, dict) else {}

    # -- helpers --------------------------------------------------------------------------
    def _timeout(self, timeout: float | None) -> Any:
        # httpx reads an explicit None as "no timeout at all": keep the client's default.
        if timeout is None:
            return httpx.USE_CLIENT_DEFAULT
        return httpx.Timeout(timeout, connect=min(10.0, timeout))

    def _json(self, response: httpx.Response, model: str | None) -> Any:
        text = response.text
        try:
            return load_json(text)
        except ValueError:
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            shown = " ".join(text.split())[:80] or "an empty body"
            raise ProviderError(
                f"{self.host} answered HTTP {response.status_code} with {kind}, not JSON "
                f"({shown!r}). Retry later, or check that OPENROUTER_BASE_URL points at an "
                "OpenRouter-compatible API.",
                http_status=response.status_code, model=model,
            ) from None

    def _errors(self, model: str | None, accumulator: StreamAccumulator | None = None
                ) -> _TransportErrors:
        return _TransportErrors(self, model, accumulator)


def _is_event_stream(response: httpx.Response) -> bool:
    return "text/event-stream" in response.headers.get("content-type", "")


class _TransportErrors:
    """Context manager mapping httpx exceptions to our own, without httpx tracebacks."""

    def __init__(self, client: OpenRouterClient, model: str | None,
                 accumulator: StreamAccumulator | None) -> None:
        self.client = client
        self.model = model
        self.accumulator = accumulator

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if exc is None or not isinstance(exc, httpx.HTTPError):
            return
        error = self._translate(exc)
        error.__cause__ = None
        error.__suppress_context__ = True
        raise error

    def _translate(self, exc: httpx.HTTPError) -> OpenRouterError:
        host = self.client.host
        partial = self.accumulator.text if self.accumulator else ""
        if isinstance(exc, httpx.TimeoutException):
            return RequestTimeout(
                f"No answer from {host} within the timeout ({self.client.timeout:g} s). Retry, "
                "pass a larger timeout=, or pick a faster model.",
                model=self.model,
            )
        if isinstance(exc, (httpx.ConnectError, httpx.UnsupportedProtocol, httpx.InvalidURL)):
            return NetworkError(
                f"Cannot reach {host} ({type(exc).__name__}). Check your network and "
                "OPENROUTER_BASE_URL.",
                model=self.model,
            )
        if partial or (self.accumulator is not None and self.accumulator.chunks):
            failure = MidStreamError(
                f"The connection dropped mid-stream after {len(partial)} characters. The partial "
                "answer is kept; retry for a whole one.",
                model=self.model,
            )
            failure.partial_text = partial
            return failure
        return NetworkError(
            f"The connection to {host} failed ({type(exc).__name__}). Retry, and check your "
            "network.",
            model=self.model,
        )
