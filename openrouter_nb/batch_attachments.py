"""``batch(df, prompt, attachments="image_col")``: each row sends what its column names.

A thin stand-in for the session that ``run_batch`` talks to: every row's ``ask`` is the
session's, with the attachment found from the row key (``"{index}:{hash}"``). A column
holds a path or URL per row (or any attachment source); an empty cell sends none.
"""

from __future__ import annotations

from typing import Any


class RowAttachments:
    """The session, with ``attachments`` taken per row from ``column`` of ``frame``."""

    def __init__(self, session: Any, frame: Any, column: str) -> None:
        self._session = session
        self._by_index = {str(index): _value(value) for index, value in frame[column].items()}

    def ask(self, prompt: str, model: str | None = None, *, row_key: str | None = None,
            **options: Any) -> Any:
        index = (row_key or "").rsplit(":", 1)[0]
        return self._session.ask(prompt, model, row_key=row_key,
                                 attachments=self._by_index.get(index), **options)

    def __getattr__(self, name: str) -> Any:  # model, ledger, quota_state...
        return getattr(self._session, name)


def _value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN: none
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def for_batch(session: Any, frame: Any, options: dict[str, Any]) -> Any:
    """The session a batch should use: a per-row stand-in when ``attachments`` names a
    column of ``frame`` (removed from ``options``), else ``session`` itself."""
    column = options.get("attachments")
    if isinstance(column, str) and column in getattr(frame, "columns", ()):
        del options["attachments"]
        return RowAttachments(session, frame, column)
    return session
