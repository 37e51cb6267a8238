"""The values the call pipeline passes between its layers: a ``Call`` and the ``Engine`` it runs on.

Kept apart from :mod:`openrouter_nb.pipeline` so that :mod:`openrouter_nb.prepare` (the
first layer) and the pipeline both read them without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .api.client import DeltaCallback
from .api.errors import OpenRouterError
from .api.types import ChatResult
from .messages import Message, text_of
from .options import CallOptions
from .quota import QuotaTracker
from .validate import SchemaSpec, Validation

if TYPE_CHECKING:  # pragma: no cover
    from .catalog import Catalog

__all__ = ["Call", "Engine", "EventCallback", "Judge"]

#: ``on_event(name, details)``; names: "waited", "retry", "fallback", "reask".
EventCallback = Callable[[str, dict[str, Any]], None]
#: ``judge(result, model)`` -> (schema check or None, failure to raise or None)
Judge = Callable[[ChatResult, str], "tuple[Validation | None, OpenRouterError | None]"]

class Engine(Protocol):
    """What the layers need from a session."""

    mode: str
    quota: QuotaTracker
    clock: Callable[[], float]
    sleep: Callable[[float], None]

    @property
    def catalog(self) -> Catalog: ...

    def send(self, body: dict[str, Any], options: CallOptions,
             on_delta: DeltaCallback | None) -> ChatResult: ...

    def spend_budget(self, row: dict[str, Any]) -> None: ...

    def record_answer(self, result: ChatResult, row: dict[str, Any], **details: Any) -> None: ...

    def record_failure(self, error: OpenRouterError, row: dict[str, Any], *,
                       wait_s: float = 0.0) -> None: ...

    def record_interrupt(self, row: dict[str, Any], partial: str, started: float) -> None: ...

    def day_remaining(self, model: str) -> int | None: ...


@dataclass(frozen=True)
class Call:
    """One call: the messages to send, its resolved options, and where its rows belong."""

    messages: tuple[Message, ...]
    options: CallOptions
    call_id: str
    spec: SchemaSpec | None = None
    conversation_id: str | None = None
    conversation: str | None = None
    turn: int | None = None
    batch_id: str | None = None
    row_key: str | None = None
    notes: tuple[str, ...] = ()  # said in the footer (e.g. turns left out of the history)
    #: conversations: the messages this turn adds before the answer (kept in the ledger)
    turn_added: tuple[Message, ...] = ()
    task_id: str | None = None  # tool tasks: every model call of one task
    step: int | None = None
    attachments: str | None = None  # JSON metadata of what the messages attach (no bytes)
    request_hash: str | None = None  # the cache's key (see cache.py), kept on every row
    on_delta: DeltaCallback | None = field(default=None, compare=False, repr=False)
    on_event: EventCallback | None = field(default=None, compare=False, repr=False)
    #: tool tasks: runs the tools an answer asks for; gives the row's ``tool_calls`` JSON, and
    #: the ``tool`` messages that end the turn (none: no tools ran) or None (the task goes on)
    run_tools: Callable[[ChatResult], tuple[str | None, list[dict[str, Any]] | None]] | None = (
        field(default=None, compare=False, repr=False))

    @property
    def prompt(self) -> str:
        """The last user message's text (what the ledger's ``prompt`` column keeps)."""
        return text_of(self.messages)

    def row(self, attempt: int, model: str, *, fallback: bool = False) -> dict[str, Any]:
        """The ledger fields this call gives every row of ``attempt`` on ``model``."""
        return dict(call_id=self.call_id, attempt=attempt, requested_model=model,
                    prompt=self.prompt, stream=self.options.stream, batch_id=self.batch_id,
                    row_key=self.row_key, fallback=model if fallback else None,
                    conversation_id=self.conversation_id, conversation=self.conversation,
                    turn=self.turn, task_id=self.task_id, step=self.step,
                    attachments=self.attachments, request_hash=self.request_hash)

    def event(self, name: str, **details: Any) -> None:
        if self.on_event is not None:
            self.on_event(name, details)
