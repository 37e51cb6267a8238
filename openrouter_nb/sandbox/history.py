"""Reading a request's ``messages``: the five roles, text parts, the turns of a conversation.

Chat completions are stateless: a conversation re-sends every earlier turn, oldest first
(reference §1.4). The sandbox reads them like a model would: the *turn* is the number of user
messages, the *previous question* the user message before the last, and prompt tokens grow
with the whole history (every message's text, tool-call arguments included). Assistant
messages may carry ``content: null``, ``tool_calls``, ``reasoning``, ``reasoning_details`` and
``annotations``; any role's ``content`` may be a string or an array of parts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ROLES", "bad_message", "content_texts", "count_images", "message_texts",
           "previous_question", "prompt_tokens", "quote", "topic_of", "turn_of", "user_text",
           "user_texts"]

ROLES = ("system", "developer", "user", "assistant", "tool")


def bad_message(messages: Sequence[Any]) -> str | None:
    """Why ``messages`` is malformed (a message that is not an object, an unknown role)."""
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            return f"Invalid message at index {i}: expected an object."
        if msg.get("role") not in ROLES:
            return (f"Invalid message at index {i}: 'role' must be one of "
                    f"{', '.join(ROLES)}.")
    return None


def content_texts(content: Any) -> list[str]:
    """The text of a ``content`` value: a string, or the ``text`` parts of an array."""
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p.get("text", "") for p in content
                if isinstance(p, Mapping) and p.get("type") == "text"]
    return []


def message_texts(msg: Mapping[str, Any]) -> list[str]:
    """Every text a message sends to the model: content and tool-call names and arguments."""
    texts = content_texts(msg.get("content"))
    for call in msg.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(fn, Mapping):
            texts += [str(fn.get("name", "")), str(fn.get("arguments", ""))]
    return texts


def user_texts(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """The text of each user message, oldest first."""
    return [" ".join(content_texts(m.get("content"))) for m in messages
            if m.get("role") == "user"]


def user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """Text of the last user message ('' if none)."""
    texts = user_texts(messages)
    return texts[-1] if texts else ""


def turn_of(messages: Sequence[Mapping[str, Any]]) -> int:
    """Which turn of a conversation this request is: its number of user messages (>= 1)."""
    return max(1, len(user_texts(messages)))


def quote(text: str, limit: int = 80) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def previous_question(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The user message before the last one (one line, shortened), or None on turn 1."""
    texts = user_texts(messages)
    return quote(texts[-2]) if len(texts) >= 2 else None


def count_images(messages: Sequence[Mapping[str, Any]]) -> int:
    """Number of ``image_url`` parts in all messages."""
    return sum(1 for m in messages if isinstance(m.get("content"), list)
               for p in m["content"] if isinstance(p, Mapping) and p.get("type") == "image_url")


def prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """About 4/3 tokens per word of every message, plus 85 per image, at least 1."""
    words = sum(len(t.split()) for m in messages for t in message_texts(m))
    return max(1, round(words * 4 / 3) + 85 * count_images(messages))


def topic_of(messages: Sequence[Mapping[str, Any]], n_words: int = 8, *,
             latest: bool = False) -> str:
    """A few words of the first user message (the question, not a later re-ask), or of the
    last one with ``latest`` (the question of this turn), to echo."""
    texts = user_texts(messages)
    text = (texts[-1] if latest else texts[0]) if texts else ""
    words = re.sub(r"[\"`{}\[\]]", "", text).split()
    short = " ".join(words[:n_words]).rstrip(".,;:!?")
    return short + ("..." if len(words) > n_words else "") if short else "your question"
