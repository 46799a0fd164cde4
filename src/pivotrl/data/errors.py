"""Errors raised while reading problem sets: they name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path


class DataError(Exception):
    """A problem set cannot be loaded (missing files, no hub access, unknown name)."""


class DataFormatError(DataError):
    """A data file is malformed. The message names the file, the line (1-based) and the field."""

    def __init__(self, path: str | Path, line: int | None, field: str | None, problem: str):
        self.path, self.line, self.field, self.problem = str(path), line, field, problem
        where = self.path + (f", line {line}" if line is not None else "")
        what = f"field {field!r}: " if field else ""
        super().__init__(f"{where}: {what}{problem}")


def check_aligned(set_name: str, rows: dict[Path, int]) -> None:
    """Parallel sets pair line i of every language file; different row counts mean the pairing is off."""
    if len(set(rows.values())) > 1:
        counts = ", ".join(f"{path.name}: {n}" for path, n in rows.items())
        raise DataError(f"{set_name} files do not line up ({counts} rows); line i of every language file must be "
                        f"the same problem, so every file needs the same number of rows (folder "
                        f"{next(iter(rows)).parent})")
