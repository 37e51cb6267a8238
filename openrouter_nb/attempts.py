"""Writing one ledger row per attempt: what was asked, what came back, what went wrong.

The key never reaches a row: error messages, answers, prompts, tool results and turn messages
pass through ``_text.redact``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._text import redact
from .api.errors import OpenRouterError
from .api.types import ChatResult
from .validate import Validation

if TYPE_CHECKING:  # pragma: no cover
    from .store import AttemptStore

#: the row fields a tool or a model may fill with any text
_TEXTS = ("prompt", "tool_calls", "turn_messages")


class AttemptRecorder:
    """Adds the session's identity (session id, account fingerprint, base URL, mode) to
    every row it writes."""

    def __init__(self, ledger: AttemptStore, *, session_id: str, account: str, base_url: str,
                 key: str | None, clock: Callable[[], float], person: str | None = None
                 ) -> None:
        self.ledger = ledger
        self.person = person
        self.session_id = session_id
        self.account = account
        self.base_url = base_url
        self._key = key
        self.clock = clock

    def _base(self, row: dict[str, Any], mode: str) -> dict[str, Any]:
        row = {**row, **{name: redact(row[name], self._key) for name in _TEXTS  # a tool result
                         if isinstance(row.get(name), str)}}  # or an answer may hold the key
        return dict(row, epoch=self.clock(), sandbox=mode == "sandbox", mode=mode,
                    session_id=self.session_id, account=self.account, base_url=self.base_url,
                    person=self.person)

    def answered(self, result: ChatResult, row: dict[str, Any], *, mode: str, wait_s: float,
                 check: Validation | None = None,
                 failure: OpenRouterError | None = None) -> None:
        """An answer arrived; ``failure`` marks it an error all the same (invalid output)."""
        fields = self._base(row, mode)
        fields.setdefault("status", "error" if failure else "ok")  # "interrupted": a tool was
        fields.setdefault("error_kind", failure.kind if failure else None)  # stopped mid-run
        fields.setdefault("error_message", redact(failure.message, self._key) if failure
                          else None)
        self.ledger.record(
            **fields, served_model=result.model, provider=result.provider,
            generation_id=result.generation_id, http_status=200, latency_s=result.latency_s,
            ttft_s=result.ttft_s, response=redact(result.text, self._key),
            finish_reason=result.finish_reason, wait_s=wait_s or None,
            validated=check.ok if check else None,
            validation_error=check.error if check else None,
            **_result_fields(result),
        )

    def failed(self, error: OpenRouterError, row: dict[str, Any], *, mode: str,
               wait_s: float) -> None:
        """An attempt that ended in ``error`` (sent or refused before sending)."""
        result = getattr(error, "result", None)  # a truncated answer keeps its usage
        fields = _result_fields(result) if isinstance(result, ChatResult) else {}
        if isinstance(result, ChatResult):
            fields.update(finish_reason=result.finish_reason, latency_s=result.latency_s,
                          generation_id=result.generation_id)
        self.ledger.record(
            **self._base(row, mode), status="error", error_kind=error.kind,
            http_status=error.http_status, provider=error.provider,
            served_model=error.model if error.model != row.get("requested_model") else None,
            error_message=redact(error.message, self._key),
            response=redact(error.partial_text, self._key) or None, wait_s=wait_s or None,
            **fields,
        )

    def cached(self, row: dict[str, Any], *, mode: str) -> None:
        """A call answered from the ledger (``status`` ``cached``): nothing was sent."""
        self.ledger.record(**self._base(row, mode))

    def interrupted(self, row: dict[str, Any], partial: str, *, mode: str,
                    latency_s: float) -> None:
        """An attempt stopped by the user (Kernel -> Interrupt, Ctrl-C): what arrived is kept."""
        self.ledger.record(
            **self._base(row, mode), status="interrupted", error_kind="interrupted",
            error_message="Interrupted by the user; the text that had arrived is kept.",
            response=redact(partial, self._key) or None, latency_s=latency_s,
        )


def _result_fields(result: ChatResult) -> dict[str, Any]:
    """Tokens, cost and reasoning of ``result``, for a ledger row."""
    usage = result.usage
    reasoning = getattr(result, "reasoning", None)
    return dict(
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        cost=usage.cost if usage else None,
        reasoning_tokens=getattr(usage, "reasoning_tokens", None) if usage else None,
        reasoning=reasoning or None,
    )
