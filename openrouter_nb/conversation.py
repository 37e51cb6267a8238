"""Conversations: memory between cells, kept in the ledger so a kernel restart loses nothing.

Chat completions keep no state on the server: every turn resends the whole history (system
prompt, every earlier question and answer, with each answer's ``reasoning_details`` and
file ``annotations`` echoed unchanged, as the reference asks). So each turn costs more prompt
tokens than the last; the footer says so, ``history=N`` caps how many earlier turns are
resent (and the answer says when some were left out), and a conversation that would not fit
the model's context window is refused before sending, never cut silently.

Every attempt of every turn is a ledger row with ``conversation_id``, ``conversation`` (the
name) and ``turn``; the answered row also keeps the messages the turn added
(``turn_messages``), from which :meth:`Conversation.resume` rebuilds the exact history.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol, Union

from ._text import shorten
from .attachments import metadata_json, user_message
from .ledger import new_call_id
from .messages import Message, system
from .pipeline import Call

if TYPE_CHECKING:  # pragma: no cover
    from .answer import Answer
    from .options import SessionConfig
    from .store import AttemptStore


class Session(Protocol):
    """What a conversation needs of a session (``openrouter_nb.session.Session`` has it)."""

    config: SessionConfig
    ledger: AttemptStore

    def run(self, call: Call) -> Answer: ...


__all__ = ["Conversation", "conversations", "last_conversation", "use"]

#: A session, or a function returning the session to use now (``get_session``: the default).
SessionSource = Union["Session", Callable[[], "Session"]]

_registry: dict[str, Conversation] = {}
_registry_lock = threading.Lock()
_last: list[str] = []
_numbers = itertools.count(1)


class Conversation:
    """Turns with one model (or the free router), each resending the history before it.

    ``session`` is a session, or a function that returns one (``orn.chat`` passes
    ``get_session``, so the conversation follows the default session across
    ``%openrouter sandbox on`` and profiles). Options given here (``max_tokens``,
    ``reasoning``, ``history``...) apply to every turn; ``ask(text, **options)`` overrides
    them for one turn.
    """

    def __init__(self, model: str | None = None, *, system: str | None = None,
                 name: str | None = None, session: SessionSource,
                 conversation_id: str | None = None, messages: tuple[Message, ...] = (),
                 **options: Any) -> None:
        self.name = name or f"chat-{next(_numbers)}"
        self.id = conversation_id or new_call_id()
        self._session = session
        self.model = model
        self.system = system
        self.options = options
        self._session_or_default().config.resolve(model=model, **options)  # checked now
        self._messages: list[Message] = list(messages)
        #: how many of the first messages the ledger does not hold under this id (a fork's):
        #: the next answered turn keeps them, so resuming it rebuilds the whole history
        self._unlogged = 0 if conversation_id else len(self._messages)
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        _register(self)

    # -- state -------------------------------------------------------------------------------
    @property
    def messages(self) -> list[Message]:
        """The history as it will be resent: system prompt, then each turn's messages."""
        head = [system(self.system)] if self.system else []
        return head + self._messages

    @property
    def turns(self) -> int:
        """How many turns were answered."""
        return sum(1 for m in self._messages if m.role == "user")

    def reset(self) -> None:
        """Forget the history (the ledger keeps it); the next turn starts over as turn 1."""
        with self._lock:
            self._messages.clear()
            self._unlogged = 0
            self.answers.clear()
            self.id = new_call_id()

    def fork(self, name: str | None = None) -> Conversation:
        """A new conversation with this one's history so far, to try another direction."""
        return Conversation(self.model, system=self.system, name=name or f"{self.name}-fork",
                            session=self._session, messages=tuple(self._messages),
                            **self.options)

    # -- asking ------------------------------------------------------------------------------
    def ask(self, text: str | Sequence[Any], *, attachments: Any = None,
            **options: Any) -> Answer:
        """Ask the next turn; the whole history (capped by ``history``) is sent with it.

        ``attachments`` (images, PDFs...) go with this turn and stay in the history; a PDF's
        parse (its ``annotations``) is sent back on later turns, so it is not paid again.
        """
        if not isinstance(text, (str, list, tuple)):
            raise TypeError(f"The prompt must be text (a str), not {type(text).__name__}.")
        with self._lock:
            session = self._session_or_default()
            call = self._call(session, text, {**self.options, **options}, attachments)
            answer = session.run(call)
            previous = self.answers[-1].model if self.answers else None
            if previous and answer.model and previous != answer.model:
                answer.model_changed_from = previous
            stopped = bool(answer.steps and answer.steps[-1].tool_calls)  # at max_steps
            self._messages.extend([call.messages[-1], *answer.task_messages,
                                   *(() if stopped else (_assistant(answer),))])
            self._unlogged = 0
            self.answers.append(answer)
            return answer

    async def aask(self, text: str | Sequence[Any], **options: Any) -> Answer:
        """``ask``, awaited (see :mod:`openrouter_nb.aio`); turns still run one at a time."""
        from .aio import aconversation_ask

        return await aconversation_ask(self, text, **options)  # type: ignore[arg-type]

    def _call(self, session: Session, text: str | Sequence[Any], options: dict[str, Any],
              attachments: Any = None) -> Call:
        on_delta, on_event = options.pop("on_delta", None), options.pop("on_event", None)
        options["model"] = options.get("model") or self.model  # a turn may name another model
        resolved = session.config.resolve(**options)
        kept, dropped = _capped(self._messages, resolved.history)
        notes = ((f"{dropped} earlier turn{'s' if dropped != 1 else ''} not resent "
                  f"(history={resolved.history})"),) if dropped else ()
        head = (system(self.system),) if self.system else ()
        question, attached = user_message(text, attachments, max_side=resolved.max_side)
        first = self.turns == 0 or self._unlogged > 0
        return Call((*head, *kept, question), replace(resolved, system=None),
                    new_call_id(), conversation_id=self.id, conversation=self.name,
                    turn=self.turns + 1, notes=notes, attachments=metadata_json(attached),
                    turn_added=(*(head if first else ()), *self._messages[:self._unlogged],
                                question),
                    on_delta=on_delta, on_event=on_event)

    def _session_or_default(self) -> Session:
        return self._session() if callable(self._session) else self._session

    # -- from the ledger -----------------------------------------------------------------------
    @classmethod
    def resume(cls, name: str, *, session: SessionSource, **options: Any) -> Conversation:
        """The conversation ``name`` as the ledger kept it (e.g. after a kernel restart).

        ``KeyError`` when the ledger has no answered turn of that name.
        """
        ledger = (session() if callable(session) else session).ledger
        found = ledger.conversation_turns(name)
        if found is None:
            raise KeyError(f"No conversation named {name!r} in the ledger "
                           f"({ledger.where}). Start it with orn.chat(name={name!r}).")
        conversation_id, model, rows = found
        head: str | None = None
        messages: list[Message] = []
        for turn_json in rows:
            for data in json.loads(turn_json):
                message = Message.from_wire(data)
                if message.role == "system" and not messages:
                    head = message.text
                else:
                    messages.append(message)
        options.setdefault("model", model)
        return cls(system=head, name=name, session=session, conversation_id=conversation_id,
                   messages=tuple(messages), **options)

    # -- views ---------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (f"Conversation({self.name!r}, turns={self.turns}, "
                f"model={self.model or 'session default'!r})")

    def _repr_markdown_(self) -> str:
        lines = [f"**{self.name}** · {self.turns} turn{'s' if self.turns != 1 else ''}"]
        if self.system:
            lines.append(f"- *system*: {_plain(self.system)}")
        for message in self._messages:
            who = "you" if message.role == "user" else message.role
            lines.append(f"- *{who}*: {_plain(message.text)}")
        return "\n".join(lines)


def _plain(text: str) -> str:
    """One short line with Markdown and HTML characters escaped."""
    short = shorten(text, 100)
    for char in "\\`*_{}[]()#+-.!|<>&":
        short = short.replace(char, "\\" + char)
    return short


def _assistant(answer: Answer) -> Message:
    wire = answer.message or {"role": "assistant", "content": answer.text}
    return Message.from_wire({**wire, "role": "assistant"})


def _capped(messages: list[Message], history: int | None) -> tuple[list[Message], int]:
    """The last ``history`` turns of ``messages`` and how many turns were left out."""
    if history is None:
        return messages, 0
    starts = [i for i, m in enumerate(messages) if m.role == "user"]
    if len(starts) <= history:
        return messages, 0
    cut = starts[len(starts) - history] if history else len(messages)
    return messages[cut:], len(starts) - history


# -- the registry behind %%openrouter --chat ----------------------------------------------------
def _register(conversation: Conversation) -> None:
    with _registry_lock:
        _registry[conversation.name] = conversation
        if conversation.name in _last:
            _last.remove(conversation.name)
        _last.append(conversation.name)


def conversations() -> dict[str, Conversation]:
    """The conversations of this kernel, by name, oldest first."""
    with _registry_lock:
        return dict(_registry)


def last_conversation() -> Conversation | None:
    """The conversation made or used most recently."""
    with _registry_lock:
        return _registry[_last[-1]] if _last else None


def use(conversation: Conversation) -> None:
    """Mark ``conversation`` as the last one used (what a bare ``--chat`` continues)."""
    _register(conversation)
