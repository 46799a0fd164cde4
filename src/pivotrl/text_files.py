"""Text files as other tools write them: UTF-8 with or without a byte-order mark, UTF-16 with one (what
Windows PowerShell and some spreadsheet exports write); anything else gets an error naming the file, the line
and the byte that is not UTF-8, instead of a decoding traceback."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

__all__ = ["TextEncodingError", "read_text", "text_encoding", "text_lines"]


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
