"""``batch(df, prompt, attachments="image_col")``: each row sends what its column names.

A thin stand-in for the session that ``run_batch`` talks to: every row's ``ask`` is the
session's, with the attachment found from the row key (``"{index}:{hash}"``). A column
holds a path or URL per row (or any attachment source); an empty cell sends none.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
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

    def row_identity(self, index: Any) -> str:
        """What a row's key adds for its attachment (the source, and a local file's size and
        time, or the bytes' hash), so a row whose attachment changed is sent again instead of
        being taken from the ledger."""
        value = self._by_index.get(str(index))
        if isinstance(value, (bytes, bytearray)):
            return "\0" + hashlib.sha256(value).hexdigest()
        try:
            stat = Path(value).stat() if isinstance(value, (str, Path)) else None
        except (OSError, ValueError):
            stat = None
        found = f" {stat.st_size} {stat.st_mtime_ns}" if stat is not None else ""
        return "" if value is None else f"\0{value}{found}"

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
