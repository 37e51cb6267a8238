"""Column blocks of ledger rows, and the chunk files that keep them beside the database.

SQLite stays the record: every attempt is committed there first and no row lives only in
a chunk file. Reading 100,000 rows back through ``sqlite3`` builds two million Python
objects (about 0.4 s before pandas starts), so the ledger also keeps its older rows column
by column in chunk files, which a new kernel reads in a fraction of that
(see :meth:`openrouter_nb.ledger.Ledger.dataframe`).

A chunk file holds the rows ``first_id..last_id``, every column::

    b"ORNCOLS1" | header length (u64, little-endian) | header (JSON) | buffers

The header names each column's kind and where its buffers are (``[offset, nbytes]`` after
the header):

- ``int`` / ``real``: ``values`` (int64 / float64) and ``mask`` (one byte a row, 1 = NULL);
- ``text``: ``codes`` (int32, -1 = NULL) into ``values``, a JSON list of the distinct strings;
- ``json``: ``values``, a JSON list of the raw values, for anything the others cannot hold
  exactly (text in a number column, integers beyond 2**53).

No pickle: a chunk file is data, never code. numpy and pandas are imported when a block is
first built, not with the package.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

MAGIC = b"ORNCOLS1"
_LENGTH = struct.Struct("<Q")
_EXACT_FLOAT_INT = 2**53


class ChunkError(ValueError):
    """A chunk file is unreadable or does not match what the manifest says it holds."""


@dataclass(frozen=True)
class Numbers:
    """A nullable number column: ``values`` with ``mask`` True where SQLite had NULL."""

    values: np.ndarray
    mask: np.ndarray


Column = Any  # Numbers, or an object ndarray (text and json kinds)


@dataclass(frozen=True)
class Block:
    """Consecutive ledger rows held column by column: ``ids`` (increasing) and ``columns``."""

    ids: np.ndarray
    columns: dict[str, Column]

    def __len__(self) -> int:
        return len(self.ids)


# -- building blocks -----------------------------------------------------------------------
def block_from_rows(rows: Sequence[tuple[Any, ...]], names: Sequence[str],
                    kinds: dict[str, str]) -> Block:
    """A block from SQLite rows ``(id, *values)``; ``kinds`` maps a column to ``INTEGER`` or
    ``REAL`` (anything else is text)."""
    import numpy as np

    ids = np.array([row[0] for row in rows], dtype=np.int64)
    transposed = list(zip(*rows, strict=True))[1:] if rows else [() for _ in names]
    columns = {name: _column(values, kinds.get(name, "TEXT"))
               for name, values in zip(names, transposed, strict=True)}
    return Block(ids, columns)


def _column(values: Sequence[Any], kind: str) -> Column:
    import numpy as np

    if kind in ("INTEGER", "REAL"):
        try:
            floats = np.array(values, dtype=np.float64)  # None becomes NaN
        except (TypeError, ValueError):
            return _objects(values)  # text in a number column: keep it as it is
        mask = np.isnan(floats)
        if kind == "REAL":
            return Numbers(np.where(mask, 0.0, floats), mask)
        present = floats[~mask]
        if present.size and (np.abs(present).max() >= _EXACT_FLOAT_INT
                             or not np.array_equal(present, np.round(present))):
            return _objects(values)  # 1.5 or 2**60 in an INTEGER column: exact, as stored
        return Numbers(np.where(mask, 0, floats).astype(np.int64), mask)
    return _objects(values)  # text; anything else SQLite held there is kept as it came


def _objects(values: Sequence[Any]) -> np.ndarray:
    import numpy as np

    array = np.empty(len(values), dtype=object)
    array[:] = list(values)
    return array


def _is_text(objects: np.ndarray) -> bool:
    """Only strings and NULLs (an empty or all-NULL column counts as text)."""
    import pandas as pd

    return pd.api.types.infer_dtype(objects, skipna=True) in ("string", "empty")


def concat_blocks(blocks: Sequence[Block]) -> Block:
    """One block of the rows of ``blocks``, in order (their columns must match)."""
    import numpy as np

    blocks = [block for block in blocks if len(block)]
    if not blocks:
        raise ValueError("concat_blocks needs at least one non-empty block")
    if len(blocks) == 1:
        return blocks[0]
    columns: dict[str, Column] = {}
    for name in blocks[0].columns:
        parts = [block.columns[name] for block in blocks]
        if all(isinstance(part, Numbers) for part in parts) and \
                len({part.values.dtype for part in parts}) == 1:
            columns[name] = Numbers(np.concatenate([p.values for p in parts]),
                                    np.concatenate([p.mask for p in parts]))
        else:
            columns[name] = np.concatenate([_as_objects(part) for part in parts])
    return Block(np.concatenate([block.ids for block in blocks]), columns)


def _as_objects(column: Column) -> np.ndarray:
    import numpy as np

    if isinstance(column, Numbers):
        objects = column.values.astype(object)
        objects[column.mask] = None
        return objects
    return np.asarray(column, dtype=object)


# -- chunk files ---------------------------------------------------------------------------
def encode(block: Block) -> bytes:
    """The chunk file of ``block`` (every column)."""
    return b"".join(_pieces(block))


def write_chunk(path: Path, block: Block) -> None:
    """Write ``block``'s chunk file at ``path`` whole or not at all (temporary file, then a
    rename), without first joining its pieces in memory."""
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as file:
        file.writelines(_pieces(block))
    os.replace(temporary, path)


def _pieces(block: Block) -> list[bytes]:
    import numpy as np
    import pandas as pd

    buffers: list[bytes] = []
    offset = 0

    def put(data: bytes) -> list[int]:
        nonlocal offset
        buffers.append(data)
        offset += len(data)
        return [offset - len(data), len(data)]

    header: dict[str, Any] = {
        "first_id": int(block.ids[0]), "last_id": int(block.ids[-1]), "rows": len(block),
        "ids": put(block.ids.astype("<i8").tobytes()), "columns": {},
    }
    for name, column in block.columns.items():
        if isinstance(column, Numbers):
            kind = "int" if column.values.dtype.kind == "i" else "real"
            dtype = "<i8" if kind == "int" else "<f8"
            header["columns"][name] = {
                "kind": kind, "values": put(column.values.astype(dtype).tobytes()),
                "mask": put(column.mask.astype(np.uint8).tobytes()),
            }
        elif _is_text(column):
            codes, uniques = pd.factorize(column, use_na_sentinel=True)
            header["columns"][name] = {
                "kind": "text", "codes": put(codes.astype("<i4").tobytes()),
                "values": put(_json(uniques.tolist())),
            }
        else:
            header["columns"][name] = {"kind": "json", "values": put(_json(column.tolist()))}
    head = json.dumps(header).encode()
    return [MAGIC, _LENGTH.pack(len(head)), head, *buffers]


def _json(values: list[Any]) -> bytes:
    return json.dumps(values, ensure_ascii=False, allow_nan=False).encode("utf-8")


def read_header(data: bytes) -> tuple[dict[str, Any], int]:
    """The header of a chunk file and where its buffers start; ``ChunkError`` if malformed."""
    if data[: len(MAGIC)] != MAGIC or len(data) < len(MAGIC) + _LENGTH.size:
        raise ChunkError("not a ledger chunk file")
    (length,) = _LENGTH.unpack_from(data, len(MAGIC))
    start = len(MAGIC) + _LENGTH.size
    try:
        header = json.loads(data[start:start + length])
    except (UnicodeDecodeError, ValueError) as exc:
        raise ChunkError("chunk header is not JSON") from exc
    return header, start + length


def decode(data: bytes, names: Sequence[str]) -> Block:
    """The block in chunk file ``data``, with only the columns ``names``."""
    import numpy as np

    header, base = read_header(data)
    try:
        rows = int(header["rows"])
        ids = _array(data, base, header["ids"], "<i8", rows).astype(np.int64)
        # A column added to the ledger after the chunk was written is empty in those rows.
        columns = {name: _decode_column(data, base, header["columns"][name], rows)
                   if name in header["columns"] else np.full(rows, None, dtype=object)
                   for name in names}
    except (KeyError, TypeError, ValueError) as exc:
        raise ChunkError(f"chunk file is damaged: {exc}") from exc
    if rows and (ids[0] != header["first_id"] or ids[-1] != header["last_id"]):
        raise ChunkError("chunk ids do not match its header")
    return Block(ids, columns)


def _decode_column(data: bytes, base: int, spec: dict[str, Any], rows: int) -> Column:
    import numpy as np

    kind = spec["kind"]
    if kind in ("int", "real"):
        values = _array(data, base, spec["values"], "<i8" if kind == "int" else "<f8", rows)
        mask = _array(data, base, spec["mask"], "u1", rows).astype(bool)
        return Numbers(values.astype(np.int64 if kind == "int" else np.float64), mask)
    values = json.loads(_slice(data, base, spec["values"]))
    if kind == "json":
        if len(values) != rows:
            raise ChunkError("json column has the wrong length")
        return _objects(values)
    if kind != "text":
        raise ChunkError(f"unknown column kind {kind!r}")
    table = _objects([*values, None])  # code -1 picks the trailing None
    codes = _array(data, base, spec["codes"], "<i4", rows)
    if rows and (codes.min() < -1 or codes.max() >= len(values)):
        raise ChunkError("text codes out of range")
    return table[codes]


def _slice(data: bytes, base: int, where: list[int]) -> bytes:
    start, size = int(where[0]), int(where[1])
    if start < 0 or size < 0 or base + start + size > len(data):
        raise ChunkError("buffer outside the chunk file")
    return data[base + start: base + start + size]


def _array(data: bytes, base: int, where: list[int], dtype: str, rows: int) -> np.ndarray:
    import numpy as np

    raw = _slice(data, base, where)
    array = np.frombuffer(raw, dtype=dtype)
    if len(array) != rows:
        raise ChunkError("column has the wrong length")
    return array


# -- frames --------------------------------------------------------------------------------
@cache
def text_dtype() -> Any:
    """pandas' own dtype for a text column: ``str`` on pandas 3, ``object`` on pandas 2."""
    import pandas as pd

    return pd.Series(["text"]).dtype


def to_frame(block: Block, wanted: Sequence[str], *, kinds: dict[str, str],
             booleans: Sequence[str]) -> pd.DataFrame:
    """A DataFrame of ``wanted`` columns with dtypes fixed by the schema, not by the data.

    ``time`` is built from ``epoch`` (UTC); INTEGER columns are ``Int64``, ``booleans`` are
    ``boolean``, REAL columns ``float64`` and text columns pandas' text dtype, whichever
    rows are present, so frames built from any mix of rows concatenate cleanly.
    """
    import pandas as pd

    data: dict[str, Any] = {}
    for name in wanted:
        source = "epoch" if name == "time" else name
        column = block.columns[source]
        if name == "time":
            if isinstance(column, Numbers):
                seconds = column.values.astype("float64")
                seconds[column.mask] = float("nan")
            else:
                seconds = pd.to_numeric(pd.Series(column, dtype=object), errors="coerce")
            data[name] = pd.to_datetime(seconds, unit="s", utc=True).array
        elif isinstance(column, Numbers):
            if name in booleans:
                data[name] = pd.arrays.BooleanArray(column.values != 0, column.mask.copy())
            elif column.values.dtype.kind == "i":
                data[name] = pd.arrays.IntegerArray(column.values.copy(), column.mask.copy())
            else:
                values = column.values.copy()
                values[column.mask] = float("nan")
                data[name] = values
        elif kinds.get(name, "TEXT") in ("INTEGER", "REAL") or not _is_text(column):
            data[name] = pd.array(column, dtype=object)  # values SQLite kept as they came
        else:
            data[name] = pd.array(column, dtype=text_dtype())
    return pd.DataFrame(data, index=pd.RangeIndex(len(block)), columns=list(wanted))


__all__ = ["Block", "ChunkError", "Numbers", "block_from_rows", "concat_blocks", "decode",
           "encode", "read_header", "text_dtype", "to_frame", "write_chunk"]
