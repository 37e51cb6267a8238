"""The async API: ``await orn.aask(...)``, ``Session.aask``, ``Conversation.aask``, ``abatch``.

One implementation of the policies, not two: each coroutine runs the same synchronous
pipeline (budget, pacer, retries, re-asks, cache, ledger) in a bounded thread pool and awaits
it, so a FastAPI handler or a script can ``asyncio.gather`` many calls while the quota pacer
(``QuotaTracker.acquire``, thread-safe and shared with other kernels through the ledger) stays
the single authority on when a free request may start. It works in plain ``asyncio.run`` and
inside a running Jupyter event loop (top-level ``await``), since nothing here starts or
blocks a loop.

Why threads and not an ``httpx.AsyncClient``: an async client would need an async copy of
the pacer, the retry waits, the ledger writes and the SSE parser; the thread hop costs tens of
microseconds against requests that take a second, and ``benchmarks/batch_throughput.py``
measures that 200 gathered ``aask`` calls keep pace with a raw asyncio + httpx loop.

At most :data:`ASYNC_WORKERS` calls run at once (more wait their turn in the pool);
:func:`set_async_workers` changes it.

Cancelling an awaiting task (``task.cancel()``, a timeout): a streaming call (``stream=True``)
stops at its next chunk and its ledger row says ``interrupted`` with the text that had
arrived, as Ctrl-C does; a call that does not stream cannot be stopped mid-request, so it
finishes in its thread and its ledger row records the answer (or error), which nobody
receives. Either way the quota and the budget count what was really sent.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .answer import Answer
    from .api.types import StreamDelta


class Session(Protocol):
    """What the async API needs of a session (``openrouter_nb.session.Session`` has it)."""

    def ask(self, prompt: str, model: str | None = None, **options: Any) -> Answer: ...

    def batch(self, frame: pd.DataFrame, prompt: str, **options: Any) -> pd.DataFrame: ...


class Conversation(Protocol):
    """What ``aconversation_ask`` needs of a conversation."""

    def ask(self, text: Any, **options: Any) -> Answer: ...

__all__ = ["ASYNC_WORKERS", "abatch", "aask", "aconversation_ask", "run_in_pool",
           "set_async_workers"]

#: Calls running at once for the async API (the paid-route batch default, see batching.py).
ASYNC_WORKERS = 16

T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def set_async_workers(workers: int) -> None:
    """How many async calls may run at once (the pool is made again on next use)."""
    global ASYNC_WORKERS, _pool
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a whole number (1 or more), not {workers!r:.60}.")
    with _pool_lock:
        ASYNC_WORKERS, old, _pool = workers, _pool, None
    if old is not None:
        old.shutdown(wait=False)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=ASYNC_WORKERS, thread_name_prefix="orn-async")
        return _pool


async def run_in_pool(function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Await ``function(*args, **kwargs)`` run in the bounded pool (context variables kept)."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    call = functools.partial(context.run, function, *args, **kwargs)
    return await loop.run_in_executor(_executor(), call)


class _Cancel:
    """An ``on_delta`` that passes chunks on, and stops a streaming call once cancelled."""

    def __init__(self, on_delta: Callable[[StreamDelta], None] | None) -> None:
        self.cancelled = threading.Event()
        self.on_delta = on_delta

    def __call__(self, delta: StreamDelta) -> None:
        if self.cancelled.is_set():
            raise KeyboardInterrupt  # attempt() logs the row as interrupted
        if self.on_delta is not None:
            self.on_delta(delta)


async def _cancellable(function: Callable[..., T], options: dict[str, Any]) -> T:
    stopper = _Cancel(options.pop("on_delta", None))
    try:
        return await run_in_pool(function, on_delta=stopper, **options)
    except asyncio.CancelledError:
        stopper.cancelled.set()
        raise


async def aask(session: Session, prompt: str, model: str | None = None,
               **options: Any) -> Answer:
    """``session.ask(prompt, model, **options)``, awaited."""
    return await _cancellable(functools.partial(session.ask, prompt, model), options)


async def aconversation_ask(conversation: Conversation, prompt: str, **options: Any) -> Answer:
    """``conversation.ask(prompt, **options)``, awaited; turns of one conversation run one at
    a time, in the order they were awaited (``Conversation`` holds a lock per turn)."""
    return await _cancellable(functools.partial(conversation.ask, prompt), options)


async def abatch(session: Session, frame: pd.DataFrame, prompt: str, **options: Any
                 ) -> pd.DataFrame:
    """``session.batch(frame, prompt, **options)`` (concurrent and paced), awaited."""
    loop = asyncio.get_running_loop()
    call = functools.partial(session.batch, frame, prompt, **options)
    # a thread of its own: the batch keeps its rows in flight in its own pool
    return await loop.run_in_executor(None, contextvars.copy_context().run, call)
