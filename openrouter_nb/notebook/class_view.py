"""``orn.class_view()`` and ``%openrouter class``: the instructor's view of a class on one key.

A table per participant (requests today, answered, failures by kind, cost, last model,
waiting or blocked, budget, share of the class's requests), read from the class database
each time it is shown or refreshed; ``watch()`` keeps it live in a widget, ``chart()`` draws
the class's usage. Budgets: ``%openrouter class budget N [--person NAME] [--dollars D]``.
"""

from __future__ import annotations

import html
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import ipywidgets as w
    import pandas as pd

    from ..charts import Usage
    from ..session import Session

__all__ = ["CLASS_USAGE", "ClassView", "cmd_class"]

CLASS_USAGE = ("usage: %openrouter class [chart | budgets | budget N|off [--person NAME] "
               "[--dollars D]]")


class ClassView:
    """Per participant, today (UTC). ``.frame`` is the DataFrame; ``refresh()`` reads again."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.frame: pd.DataFrame = session.class_frame()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> ClassView:
        self.frame = self.session.class_frame()
        return self

    def chart(self) -> Usage:
        """The class's usage charts (needs matplotlib)."""
        from ..charts import class_usage

        return class_usage(self.session)

    def summary(self) -> str:
        frame = self.frame
        waiting = int(frame["state"].str.startswith("waiting").sum()) if len(frame) else 0
        blocked = int(frame["state"].str.startswith("blocked").sum()) if len(frame) else 0
        where = getattr(self.session.ledger, "where", "")
        return (f"Class on {where}: {len(frame)} participants today, "
                f"{int(frame['requests_today'].sum()) if len(frame) else 0} requests sent, "
                f"{waiting} waiting, {blocked} blocked by a budget")

    def html(self) -> str:
        from .tables import nowrap

        table = nowrap(self.frame)._repr_html_() or ""
        return f"<p>{html.escape(self.summary())}</p>{table}"

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:
        return f"{self.summary()}\n{self.frame.to_string(index=False)}"

    def watch(self, every: float = 5.0) -> w.HTML:
        """A widget that reads the class again every ``every`` seconds until :meth:`stop`."""
        import ipywidgets as w

        box = w.HTML(self.html())
        self.stop()
        self._stop = threading.Event()

        def run() -> None:
            while not self._stop.wait(every):
                try:
                    box.value = self.refresh().html()
                except Exception as exc:  # the database is away: say so, keep watching
                    box.value = f"<p>{html.escape(str(exc))}</p>" + box.value
        self._thread = threading.Thread(target=run, daemon=True, name="orn-class-view")
        self._thread.start()
        return box

    def stop(self) -> None:
        self._stop.set()


def cmd_class(args: list[str]) -> Any:
    """``class``: the view; ``class chart``; ``class budgets``; ``class budget N|off``."""
    from ..api.errors import OpenRouterError
    from ..session import get_session

    session = get_session()
    try:
        if not args:
            return ClassView(session)
        if args == ["chart"]:
            return ClassView(session).chart()
        if args == ["budgets"]:
            from .tables import nowrap

            return nowrap(session.class_budgets())
        if args[0] == "budget" and len(args) >= 2:
            return _set_budget(session, args[1:])
    except (PermissionError, RuntimeError, ValueError, OpenRouterError) as exc:
        print(f"%openrouter class: {exc}")
        return None
    except ImportError:
        print("%openrouter class chart needs matplotlib: pip install \"openrouter-nb[notebook]\".")
        return None
    print(CLASS_USAGE)
    return None


def _set_budget(session: Session, args: list[str]) -> None:
    value, rest = args[0], args[1:]
    options: dict[str, str] = {}
    while rest:
        if rest[0] not in ("--person", "--dollars") or len(rest) < 2:
            raise ValueError(f"unknown or incomplete flag {rest[0]!r}. {CLASS_USAGE}")
        options[rest[0][2:]] = rest[1]
        rest = rest[2:]
    person = options.get("person", "*")
    if value.lower() in ("off", "none"):
        session.class_budget(None, None, person=person)
        print(f"class budget for {_whom(person)}: off")
        return
    if not value.isdigit():
        raise ValueError(f"N must be a whole number of requests a day or 'off', not {value!r}. "
                         f"{CLASS_USAGE}")
    try:
        dollars = float(options["dollars"]) if "dollars" in options else None
    except ValueError:
        raise ValueError(f"--dollars must be a number, not {options['dollars']!r}.") from None
    session.class_budget(int(value), dollars, person=person)
    extra = f" and ${dollars:.2f}" if dollars is not None else ""
    print(f"class budget for {_whom(person)}: {int(value)} requests{extra} a day (UTC), "
          "checked before every request")


def _whom(person: str) -> str:
    return "everyone" if person == "*" else person
