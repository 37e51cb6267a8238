"""Widgets: the live quota meter and the masked key entry (ipywidgets is imported here only).

:class:`QuotaMeter` is a thin view over :class:`~openrouter_nb.quota.QuotaState`: the session's
quota tracker calls it after every change (possibly from a worker thread, so it only sets
traits, never prints or displays), and an optional daemon ticker keeps the countdown moving
between calls. Its ``repr`` (the ``text/plain`` nbval compares) holds no clock time.

:class:`KeyEntry` takes a key in a ``Password`` field, keeps it in process memory
(``config.set_memory_key``), clears the field at once so the key never reaches the widget
state saved in the notebook, and shows at most its last four characters.
"""

from __future__ import annotations

import html
import math
import os
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .. import config
from ..api.errors import OpenRouterError
from ..quota import QuotaState, format_countdown

if TYPE_CHECKING:  # pragma: no cover
    from ..session import Session

TICK_S = 1.0
_LABEL = {"description_width": "90px"}
_STYLE_COLOURS = {"success": "#3a9a4a", "warning": "#c88a00", "danger": "#d9534f"}


def bar_style(used: int, limit: int) -> str:
    """``success`` below 70 %, ``warning`` below 90 %, else ``danger``."""
    share = used / limit if limit > 0 else 1.0
    return "success" if share < 0.7 else "warning" if share < 0.9 else "danger"


def countdown_text(state: QuotaState, now: float) -> str:
    """The next reset: the minute window while it holds requests, else UTC midnight."""
    if state.minute_used and state.minute_reset_at and state.minute_reset_at > now:
        return f"minute window: next slot in {format_countdown(state.minute_reset_at - now)}"
    return f"daily reset in {format_countdown(state.day_reset_at - now)} (00:00 UTC)"


def _in_kernel() -> bool:
    from IPython.core.getipython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


def _show(widget: w.Widget, text: str) -> None:
    widget.value = text
    widget.layout.display = None if text else "none"


class QuotaMeter(w.VBox):
    """Live free-tier quota: this minute and today as bars, countdown, last model, budget.

    ``autostart`` (default: only inside a kernel) starts a daemon thread that calls
    :meth:`tick` every second; tests pass ``autostart=False`` and call ``tick(now)``.
    ``fetch_key`` asks ``GET /key`` once for the tier and the service's own daily count.
    """

    def __init__(self, session: Session, *, autostart: bool | None = None,
                 fetch_key: bool = True, follow: bool = False, **kwargs: Any) -> None:
        self.title = w.HTML()
        self.minute_bar = w.IntProgress(min=0, max=1, description="this minute", style=_LABEL)
        self.minute_label = w.Label()
        self.day_bar = w.IntProgress(min=0, max=1, description="today", style=_LABEL)
        self.day_label = w.Label()
        self.reset_label = w.Label()
        self.model_label = w.Label()
        self.budget_label = w.Label()
        self.waiting_label = w.Label()
        self.note_label = w.Label()
        super().__init__(children=[
            self.title,
            w.HBox([self.minute_bar, self.minute_label]),
            w.HBox([self.day_bar, self.day_label]),
            self.reset_label, self.model_label, self.budget_label, self.waiting_label,
            self.note_label,
        ], **kwargs)
        self.follow = follow
        self.fetch_key = fetch_key
        self.detached = ""  # a plain sentence when the meter no longer shows the session in use
        self.last_error: BaseException | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] = lambda: None
        self._attach(session)
        from ..session import watch_default

        changed = weakref.WeakMethod(self._default_changed)  # a forgotten meter can go

        def watcher(session: Session | None) -> None:
            method = changed()
            if method is not None:
                method(session)

        self._unwatch = watch_default(watcher)
        if autostart if autostart is not None else _in_kernel():
            self.start()

    def _attach(self, session: Session, *, fetch_key: bool | None = None) -> None:
        """Show ``session``'s quota from now on (and read its ``/key`` once, if asked)."""
        with self._lock:
            self._unsubscribe()
            self._session = weakref.ref(session)
            self.mode = session.mode
            self.clock: Callable[[], float] = session.clock
            self.tier = ""
            self.detached = ""
            self._tracker = session.quota
            self.state: QuotaState = self._tracker.state()
            self._unsubscribe = self._tracker.subscribe(self.update)
        if self.fetch_key if fetch_key is None else fetch_key:
            try:
                info = session.key_info()  # notifies the tracker, hence update()
                tiers: dict[bool | None, str] = {True: "free tier", False: "paid tier"}
                self.tier = tiers.get(info.is_free_tier, "")
            except OpenRouterError:
                self.tier = "/key unavailable"
        self.update(self._tracker.state())

    def _default_changed(self, session: Session | None) -> None:
        """The default session changed (sandbox on/off, a profile, record, replay...)."""
        if self.follow and session is not None:
            self._attach(session, fetch_key=False)  # no request behind the caller's back
            return
        if self.follow:
            self.detached = ("The session was reset; this meter shows the new one as soon as "
                             "the next call starts it.")
        elif session is not self._session():
            self.detached = ("This meter shows an earlier session, no longer the one your "
                             "calls use; %openrouter quota shows the current one.")
        else:
            self.detached = ""
        self.update(self.state)

    # -- feeding ----------------------------------------------------------------------------------
    def update(self, state: QuotaState) -> None:
        """Show ``state`` (a quota listener: safe from any thread, sets traits only)."""
        with self._lock:
            self.state = state
            self._render(state, state.now)

    def tick(self, now: float | None = None) -> None:
        """Move the countdown to ``now``; take a fresh snapshot once a reset has passed."""
        now = self.clock() if now is None else now
        state = self.state
        if (state.minute_reset_at is not None and now >= state.minute_reset_at) \
                or now >= state.day_reset_at:
            state = self._tracker.state()
        with self._lock:
            self.state = state
            self._render(state, now)

    def _render(self, s: QuotaState, now: float) -> None:
        extra = " · ".join(part for part in (self.mode, self.tier) if part)
        self.title.value = f"<b>OpenRouter quota</b> · {html.escape(extra)}"
        for bar, label, used, limit in ((self.minute_bar, self.minute_label, s.minute_used,
                                         s.minute_limit),
                                        (self.day_bar, self.day_label, s.day_used, s.day_limit)):
            bar.max = max(1, limit)
            bar.value = min(max(0, used), bar.max)
            bar.bar_style = bar_style(used, limit)
            label.value = f"{used}/{limit}"
        if s.day_blocked:
            self.day_label.value += " (daily limit reached)"
        self.reset_label.value = countdown_text(s, now)
        _show(self.model_label, f"last model: {s.last_model}" if s.last_model else "")
        _show(self.budget_label, "" if s.budget is None
              else f"budget: {s.budget_used}/{s.budget} requests")
        waiting = s.waiting_s - max(0.0, now - s.now)
        _show(self.waiting_label, f"waiting {math.ceil(waiting)} s for a free slot "
              f"({s.minute_limit}/minute)" if waiting > 0 else "")
        _show(self.note_label, " ".join(n for n in (self.detached, s.note) if n))

    # -- the ticker -------------------------------------------------------------------------------
    def start(self, interval: float = TICK_S) -> None:
        """Start the daemon ticker (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True,
                                        name="openrouter-quota-meter")
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.tick()
            except Exception as error:  # never print from a thread: keep it, stop ticking
                self.last_error = error
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * TICK_S)
        self._thread = None

    def close(self) -> None:
        """Stop the ticker, unsubscribe and close the widget."""
        self.stop()
        self._unsubscribe()
        self._unwatch()
        super().close()

    def html(self) -> str:
        """The meter as of now, as plain HTML: the fallback where widgets do not render."""
        s = self.state
        rows = "".join(
            f"<tr><td>{name}</td><td><div style='width:160px;height:10px;background:"
            f"rgba(128,128,128,0.25);border-radius:3px;overflow:hidden'><div style='height:100%;"
            f"width:{100 * min(max(0, used), max(1, limit)) / max(1, limit):.1f}%;"
            f"background:{_STYLE_COLOURS[bar_style(used, limit)]}'></div></div></td>"
            f"<td>{used}/{limit}</td></tr>"
            for name, used, limit in (("this minute", s.minute_used, s.minute_limit),
                                      ("today", s.day_used, s.day_limit)))
        notes = ["the day resets at 00:00 UTC"] + [label.value for label in (
            self.model_label, self.budget_label, self.note_label) if label.value]
        return (f"<div>{self.title.value}<table>{rows}</table><small style='color:gray'>"
                f"{'<br>'.join(html.escape(n) for n in notes)}<br>(a snapshot: widgets do not "
                "render here)</small></div>")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict):
            data["text/plain"] = repr(self)
            data["text/html"] = self.html()
        return data

    def __repr__(self) -> str:
        s = self.state
        budget = "" if s.budget is None else f", budget {s.budget_used}/{s.budget}"
        detached = ", detached" if self.detached else ""
        return (f"QuotaMeter(minute {s.minute_used}/{s.minute_limit}, "
                f"today {s.day_used}/{s.day_limit}, {self.mode}{budget}{detached})")


_meters: weakref.WeakKeyDictionary[Any, QuotaMeter] = weakref.WeakKeyDictionary()
_meters_lock = threading.Lock()


_following: list[QuotaMeter] = []  # the one meter that follows the default session


def quota_meter(session: Session | None = None, *, autostart: bool | None = None,
                fetch_key: bool = True) -> QuotaMeter:
    """The quota meter (``%openrouter quota``).

    With no ``session``: the one meter that follows the default session, whichever it is
    (``%openrouter sandbox on``, profiles, record and replay switch it). With a ``session``:
    that session's own meter (one per session), which says so when it is no longer the
    default one.
    """
    from ..session import get_session

    with _meters_lock:
        if session is None:
            current = get_session()
            meter = _following[0] if _following else None
            if meter is None or meter.comm is None:  # none yet, or closed
                meter = QuotaMeter(current, autostart=autostart, fetch_key=fetch_key,
                                   follow=True)
                _following[:] = [meter]
            elif meter._session() is not current:
                meter._attach(current)
            return meter
        meter = _meters.get(session)
        if meter is None or meter.comm is None:
            meter = _meters[session] = QuotaMeter(session, autostart=autostart,
                                                  fetch_key=fetch_key)
        return meter


class KeyEntry(w.VBox):
    """A masked field for an OpenRouter key, kept in this process's memory only."""

    def __init__(self, **kwargs: Any) -> None:
        self.password = w.Password(placeholder="sk-or-v1-…", description="API key",
                                   continuous_update=False)
        self.button = w.Button(description="Use key", button_style="primary")
        self.status = w.Label("The key stays in this kernel's memory: not on disk, not in the "
                              "notebook.")
        super().__init__(children=[w.HBox([self.password, self.button]), self.status], **kwargs)
        self.key_set = False
        self.button.on_click(lambda _button: self.submit())

    def submit(self, value: str | None = None) -> bool:
        """Use the field's value (or ``value``): keep it in memory, clear the field."""
        from ..session import set_session

        key = (self.password.value if value is None else value).strip()
        self.password.value = ""
        if not key:
            self.status.value = "no key entered"
            return False
        config.set_memory_key(key)
        set_session(None)  # the next call builds a session that picks the key up
        self.key_set = True
        tail = key[-4:] if len(key) >= 16 else ""
        message = f"key set (sk-or-…{tail}), kept in memory only"
        settings = config.resolve()
        if settings.sandbox:
            message += f"; but {settings.reason}"
        elif os.environ.get("OPENROUTER_API_KEY"):
            message += "; OPENROUTER_API_KEY from the environment takes precedence"
        self.status.value = message
        return True

    def __repr__(self) -> str:
        return f"KeyEntry({'key set' if self.key_set else 'waiting for a key'})"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict):
            data["text/plain"] = repr(self)
            data["text/html"] = (  # where widgets do not render, the field cannot work
                "<p>Widgets do not render here, so the key field cannot show. Set "
                "<code>OPENROUTER_API_KEY</code> in the environment before starting Jupyter "
                "(in Colab: a secret of that name), then restart the kernel.</p>")
        return data
