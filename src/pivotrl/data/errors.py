"""Errors raised while reading problem sets: they name the file, the line and the field."""

from __future__ import annotations

import os
import stat
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


def check_data_file(path: str | Path, what: str = "data file") -> Path:
    """``path`` as a Path when it is a regular file (or a link to one); else a DataError saying what it is.

    Checked before a file is opened: a named pipe would block the read until some other program writes to it, and a
    device such as /dev/zero never ends."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        broken = " (a symbolic link to a missing file)" if path.is_symlink() else ""
        raise DataError(f"no such file: {path}{broken}") from None
    except OSError as exc:
        raise DataError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode):
        return path
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    kind = next((name for test, name in kinds if test(mode)), "a special file")
    raise DataError(f"{what} {path} is {kind}, not a regular file; give the path of a file holding the data")


def check_aligned(set_name: str, rows: dict[Path, int]) -> None:
    """Parallel sets pair line i of every language file; different row counts mean the pairing is off."""
    if len(set(rows.values())) > 1:
        counts = ", ".join(f"{path.name}: {n}" for path, n in rows.items())
        raise DataError(f"{set_name} files do not line up ({counts} rows); line i of every language file must be "
                        f"the same problem, so every file needs the same number of rows (folder "
                        f"{next(iter(rows)).parent})")
