"""Text files as other tools write them: UTF-8 with or without a byte-order mark, UTF-16 with one (what
Windows PowerShell and some spreadsheet exports write); anything else gets an error naming the file, the line
and the byte that is not UTF-8, instead of a decoding traceback. JSON read from such files (or from a request) goes
through :func:`json_value`, which turns a value nested too deeply to parse into an ordinary JSON error."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "TextEncodingError", "json_value", "read_text", "text_encoding", "text_lines"]


class TextEncodingError(ValueError):
    """A file that is not text in an encoding pivotrl reads; the message names the file and the line."""


def text_encoding(path: str | Path) -> str:
    """``utf-8-sig`` (a UTF-8 byte-order mark), ``utf-16`` (a UTF-16 one) or ``utf-8``."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8"


def _not_utf8(path: str | Path, line: int, raw: bytes, start: int) -> TextEncodingError:
    return TextEncodingError(f"{path}, line {line}: not UTF-8 text (byte 0x{raw[start]:02x} at byte {start + 1} of "
                             "the line); save the file as UTF-8")


def read_text(path: str | Path) -> str:
    """The whole file as text (byte-order marks removed)."""
    encoding = text_encoding(path)
    data = Path(path).read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        if encoding == "utf-16":
            raise TextEncodingError(f"{path}: starts with a UTF-16 byte-order mark but is not UTF-16 text") from None
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line_end = data.find(b"\n", exc.start)
        raise _not_utf8(path, data.count(b"\n", 0, exc.start) + 1, data[line_start:line_end if line_end >= 0 else None],
                        exc.start - line_start) from None


def text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) pairs, read one line at a time (memory stays bounded for UTF-8)."""
    if text_encoding(path) == "utf-16":  # rare and small: decoded whole
        yield from enumerate(read_text(path).splitlines(keepends=True), start=1)
        return
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _not_utf8(path, number, raw, exc.start) from None


MAX_JSON_DEPTH = 200  # pivotrl's records nest a few levels; far deeper is a broken or hostile value


def _too_deep(text: str) -> int | None:
    """The index of the first bracket nested deeper than :data:`MAX_JSON_DEPTH` in JSON ``text`` (brackets inside
    strings apart), or None."""
    depth = 0
    in_string = escaped = False
    for i, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return i
        elif char in "]}":
            depth -= 1
    return None


def json_value(text: str | bytes) -> Any:
    """``json.loads(text)``, refusing a value nested deeper than :data:`MAX_JSON_DEPTH` levels (``[[[[...``: past
    Python's recursion limit the parser, or later whatever walks the value, would end in a RecursionError) with a
    :class:`json.JSONDecodeError` saying so at its line: every reader that handles bad JSON (naming the file and
    line, or answering 400) handles this too."""
    if isinstance(text, (bytes, bytearray)) and text.count(b"[") + text.count(b"{") > MAX_JSON_DEPTH:
        text = bytes(text).decode("utf-8", "replace")  # scanned as text (json.loads reads UTF-8 bytes alike)
    if isinstance(text, str) and text.count("[") + text.count("{") > MAX_JSON_DEPTH:  # else it cannot be that deep
        where = _too_deep(text)
        if where is not None:
            raise json.JSONDecodeError(f"nested more than {MAX_JSON_DEPTH} levels deep (brackets inside brackets); "
                                       "pivotrl reads flat records", text, where)
    try:
        return json.loads(text)
    except RecursionError:  # a safety net: the scan above stops such values first
        raise json.JSONDecodeError("nested too deeply to read", text if isinstance(text, str) else "", 0) from None
