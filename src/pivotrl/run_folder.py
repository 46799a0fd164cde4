"""Output folders and files: checked before any work starts, and one writer per run folder.

Every writing stage (evaluation, pivot references, training, the demo) calls :func:`claim` on its folder
first. It fails within milliseconds, before a model loads, when the path is an existing file, cannot be
created or is not writable (a read-only folder or file system), and when another process is writing the
same folder. The lock is an OS-level ``flock`` on ``<folder>/.lock``: it is released when the process ends,
however it ends, so a SIGKILLed run leaves a folder the next run can use at once. The lock file says who holds
it (pid, command, start time) so the error can name the holder. Under a distributed launch only rank 0 locks.

Commands that write one file (``pivotrl data export -o``, ``pivotrl reward score -o``) check it with
:func:`check_output_file` before computing anything.

A checked folder may not hold a named pipe or a device (a symlink to one counts) at its top: reading or
writing one would block or never end (``generations.jsonl`` linked to ``/dev/zero`` once read 24 GB), so it is
refused by name; :func:`existing_file` refuses anything but a regular file where a run folder's file is read.

Everything is written through :func:`writing` (or :func:`open_output` / :func:`write_output`, built on it): an
``OSError`` while writing (a full disk, ``ENOSPC``; a file-size limit, ``EFBIG``; a read-only file system) comes
out as a :class:`WriteError` (an ``OSError``) naming the file, which a failed ``write()`` alone does not do; the
command line turns it into one line (:func:`pivotrl.cli.common.write_failed`).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")

__all__ = ["FolderBusyError", "OutputPathError", "RunLock", "WriteError", "check_output_dir", "check_output_file",
           "claim", "existing_file", "open_output", "write_figure", "write_output", "writing"]

LOCK_NAME = ".lock"


class OutputPathError(ValueError):
    """An output path that cannot be written; the message names it and says why."""


class FolderBusyError(OutputPathError):
    """Another process is writing the folder; the message names the folder and the holder."""


class WriteError(OSError):
    """An OSError while a file was written (:func:`writing`); ``filename`` names the file, ``strerror`` says why."""


def _probe(folder: Path, what: str, path: Path) -> None:
    # os.access says yes to root for a read-only folder and knows nothing of read-only mounts: try it, with a
    # byte (a file system already full takes an empty file, not a byte).
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".pivotrl-write-test-") as probe:
            probe.write(b"\n")
            probe.flush()
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        raise OutputPathError(f"{what} {path}: cannot write in {folder} ({exc.strerror or exc}); "
                              f"{'free some space or ' if full else ''}choose a writable location") from None


def _kind(mode: int) -> str:
    """What a file that is not a regular one is."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def _not_regular(path: Path, mode: int) -> str:
    link = f" (a link to {os.path.realpath(path)})" if path.is_symlink() else ""
    return f"{path}{link} is {_kind(mode)}, not a regular file"


def _check_entries(folder: Path, what: str) -> None:
    """No named pipe or device (or a link to one) at the top of ``folder``: pivotrl would block on it, or read or
    write it forever. Sockets cannot be opened at all (an error, not a hang) and are left alone, so that a folder
    such as /tmp stays usable."""
    try:
        entries = os.scandir(folder)
    except OSError:
        return
    with entries:
        for entry in entries:
            try:
                mode = entry.stat().st_mode  # through a symlink: what it points to
            except OSError:  # a link to nothing, or gone meanwhile
                continue
            if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                raise OutputPathError(f"{what} {folder}: {_not_regular(Path(entry.path), mode)}; reading or writing "
                                      "it would block or never end: remove it or choose another folder")


def existing_file(path: str | Path, what: str = "file") -> bool:
    """Whether a run folder's file ``path`` exists, as a regular file (or a link to one): checked before it is
    opened. Anything else there (a folder, a named pipe, a device such as /dev/zero, a socket) is an
    OutputPathError naming it: reading a pipe blocks, reading a device can go on for ever."""
    file = Path(path)
    try:
        mode = file.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False  # missing (or a link to nothing): written afresh
    except OSError as exc:
        raise OutputPathError(f"{what} {file}: cannot read it ({exc.strerror or exc})") from None
    if stat.S_ISREG(mode):
        return True
    raise OutputPathError(f"{what} {_not_regular(file, mode)}; remove or rename it, or choose another folder")


@contextmanager
def writing(path: str | Path) -> Iterator[Path]:
    """A block that writes ``path``, itself or through a library (pyarrow, matplotlib, datasets): an OSError in it
    that names no file (a failed ``write()`` or ``close()``: a full disk, a file-size limit, a read-only file
    system) comes out as a :class:`WriteError` naming ``path`` (or the file an ``open()`` in it named), with the
    system's reason."""
    try:
        yield Path(path)
    except WriteError:
        raise
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)  # pyarrow: "Error writing bytes... [errno 28]"
        raise WriteError(exc.errno, reason, str(path) if exc.filename is None else exc.filename) from exc


@contextmanager
def open_output(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """``open(path, mode)``, UTF-8 for text, as a ``with`` block whose every OSError (opening, writing, closing)
    names ``path``."""
    with writing(path), open(path, mode, encoding=None if "b" in mode else "utf-8") as file:
        yield file


def write_output(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path``, replacing what was there; an OSError names ``path``."""
    with open_output(path, "wb" if isinstance(data, bytes) else "w") as file:
        file.write(data)
    return Path(path)


def write_figure(figure: Any, path: str | Path, dpi: int = 120) -> Path:
    """A matplotlib figure as a PNG file, then closed: drawn in memory and written by :func:`write_output` (under
    matplotlib's own writing a full disk ended in an AttributeError from inside it, naming no file)."""
    import io

    import matplotlib.pyplot as plt

    png = io.BytesIO()
    try:
        figure.savefig(png, format="png", dpi=dpi)
    finally:
        plt.close(figure)
    return write_output(path, png.getvalue())


def check_output_dir(path: str | Path, what: str = "output folder", *, entries: bool = True) -> Path:
    """Create ``path`` if needed and make sure files can be written in it; returns it as a Path. With ``entries``
    (a folder pivotrl writes its own files in), a named pipe or a device at its top is refused by name."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{what} {folder} is an existing file, not a folder; give a folder path")
    blocking = next((p for p in folder.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise OutputPathError(f"{what} {folder}: cannot create it, {blocking} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"{what} {folder}: cannot create it ({exc.strerror or exc})") from None
    _probe(folder, what, folder)
    if entries:
        _check_entries(folder, what)
    return folder


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """Make sure ``path`` can be written (its folder exists or can be made, and is writable; the path is not a
    folder; an existing file is writable) without changing it; returns it as a Path."""
    file = Path(path)
    if file.is_dir():
        raise OutputPathError(f"{what} {file} is a folder; give a file path")
    # the folder of one output file may be any folder (/dev for --out /dev/stdout): its entries are not pivotrl's
    check_output_dir(file.parent if str(file.parent) else Path("."), f"folder of the {what}", entries=False)
    if file.exists():
        try:  # non-blocking: a named pipe nobody reads is an error here, not a hang
            os.close(os.open(file, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK))
        except OSError as exc:
            reason = "a named pipe nobody reads" if stat.S_ISFIFO(file.stat().st_mode) else exc.strerror or exc
            raise OutputPathError(f"{what} {file}: cannot write it ({reason})") from None
    return file


class RunLock:
    """Exclusive, non-blocking lock on a run folder for the life of a ``with`` block (or of the process)."""

    def __init__(self, folder: str | Path, what: str = "run folder"):
        self.folder = Path(folder)
        self.what = what
        self._file: IO[str] | None = None

    def acquire(self) -> RunLock:
        # Under a distributed launch (accelerate, torchrun) every rank runs the same command on the same
        # folder; the lock belongs to the launch, so only global rank 0 takes it.
        if os.environ.get("RANK", "0") != "0":
            return self
        path = self.folder / LOCK_NAME
        existing_file(path, "lock file")
        file = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "unknown process"
            file.close()
            raise FolderBusyError(f"{self.what} {self.folder} is being written by another process ({holder}); "
                                  "wait for it to finish or choose another folder") from None
        file.seek(0)
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
        try:
            with writing(path):  # a full disk: an error naming the lock file
                file.truncate()
                file.write(f"pid {os.getpid()}: {command[:300]}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
                file.flush()
        except OSError:
            file.close()
            raise
        self._file = file
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_holder(folder: str | Path) -> str | None:
    """The line of the process that holds ``folder``'s lock now, or None; without taking the lock (a probe
    that took it, even for a moment, could make the real owner's start fail). Reads the kernel's lock table
    (/proc/locks) for the lock file's inode; elsewhere, whether the pid written in the file is alive."""
    path = Path(folder) / LOCK_NAME
    try:
        line = path.read_text(encoding="utf-8").strip()
        inode = path.stat().st_ino
    except OSError:
        return None
    try:
        table = Path("/proc/locks").read_text(encoding="ascii")
    except OSError:
        table = None
    if table is not None:
        held = any(fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode)
                   for fields in (row.split() for row in table.splitlines()) if len(fields) > 5)
        return (line or "another process") if held else None
    try:
        os.kill(int(line.split(":", 1)[0].removeprefix("pid ")), 0)
    except PermissionError:  # alive, another user's
        return line
    except (ValueError, ProcessLookupError):
        return None
    return line


def claim(path: str | Path, what: str = "run folder") -> RunLock:
    """Check ``path`` as an output folder and lock it; use as ``with claim(out): ...``."""
    return RunLock(check_output_dir(path, what), what)


def cut_torn_line(path: Path) -> bytes:
    """The bytes of an append-only run file up to its last whole line. A last line torn by a kill is cut from the
    file itself, so that appending continues on a clean line (what it held was never finished)."""
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raw = raw[: raw.rfind(b"\n") + 1]
        with writing(path), open(path, "r+b") as f:
            f.truncate(len(raw))
    return raw


def read_records(path: Path, text: str, parse: Callable[[Any], T], what: str,
                 error: type[Exception]) -> Iterator[T]:
    """``parse`` of each JSON line of a run file's ``text`` (blank lines skipped); a line that is no ``what``
    record is an ``error`` naming the file and the line."""
    # split at newlines only: str.splitlines would also split inside a record at U+2028 and the like
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = parse(json.loads(line))
        except (json.JSONDecodeError, TypeError) as exc:
            raise error(f"{path}, line {lineno}: not a {what} record ({exc})") from None
        yield record
