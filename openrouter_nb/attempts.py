"""Writing one ledger row per attempt: what was asked, what came back, what went wrong.

The key never reaches a row: error messages pass through ``_text.redact``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._text import redact
from .api.errors import OpenRouterError
from .api.types import ChatResult
from .ledger import Ledger


class AttemptRecorder:
    """Adds the session's identity (session id, account fingerprint, base URL, mode) to
    every row it writes."""

    def __init__(self, ledger: Ledger, *, session_id: str, account: str, base_url: str,
                 key: str | None, clock: Callable[[], float]) -> None:
        self.ledger = ledger
        self.session_id = session_id
        self.account = account
        self.base_url = base_url
        self._key = key
        self.clock = clock

    def _base(self, row: dict[str, Any], mode: str) -> dict[str, Any]:
        return dict(row, epoch=self.clock(), sandbox=mode == "sandbox", mode=mode,
                    session_id=self.session_id, account=self.account, base_url=self.base_url)

    def answered(self, result: ChatResult, row: dict[str, Any], *, mode: str, wait_s: float,
                 validated: bool | None = None, validation_error: str | None = None,
                 failure: OpenRouterError | None = None) -> None:
        """An answer arrived; ``failure`` marks it an error all the same (invalid output)."""
        usage = result.usage
        self.ledger.record(
            **self._base(row, mode), status="error" if failure else "ok",
            error_kind=failure.kind if failure else None,
            error_message=redact(failure.message, self._key) if failure else None,
            served_model=result.model, provider=result.provider,
            generation_id=result.generation_id, http_status=200, latency_s=result.latency_s,
            ttft_s=result.ttft_s, prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            cost=usage.cost if usage else None, response=result.text,
            finish_reason=result.finish_reason, wait_s=wait_s or None,
            validated=validated, validation_error=validation_error,
        )

    def failed(self, error: OpenRouterError, row: dict[str, Any], *, mode: str,
               wait_s: float) -> None:
        """An attempt that ended in ``error`` (sent or refused before sending)."""
        self.ledger.record(
            **self._base(row, mode), status="error", error_kind=error.kind,
            http_status=error.http_status, provider=error.provider,
            served_model=error.model if error.model != row.get("requested_model") else None,
            error_message=redact(error.message, self._key),
            response=error.partial_text or None, wait_s=wait_s or None,
        )
