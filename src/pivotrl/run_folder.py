"""Output folders and files: checked before any work starts, and one writer per run folder.

Every writing stage (evaluation, pivot references, training, the demo) calls :func:`claim` on its folder
first. It fails within milliseconds, before a model loads, when the path is an existing file, cannot be
created or is not writable (a read-only folder or file system), and when another process is writing the
same folder. The lock is an OS-level ``flock`` on ``<folder>/.lock``: it is released when the process ends,
however it ends, so a SIGKILLed run leaves a folder the next run can use at once. The lock file says who holds
it (pid, command, start time) so the error can name the holder. Under a distributed launch only rank 0 locks.

Commands that write one file (``pivotrl data export -o``, ``pivotrl reward score -o``) check it with
:func:`check_output_file` before computing anything.
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

__all__ = ["FolderBusyError", "OutputPathError", "RunLock", "check_output_dir", "check_output_file", "claim"]

LOCK_NAME = ".lock"


class OutputPathError(ValueError):
    """An output path that cannot be written; the message names it and says why."""


class FolderBusyError(OutputPathError):
    """Another process is writing the folder; the message names the folder and the holder."""


def _probe(folder: Path, what: str, path: Path) -> None:
    # os.access says yes to root for a read-only folder and knows nothing of read-only mounts: try it.
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".pivotrl-write-test-"):
            pass
    except OSError as exc:
        raise OutputPathError(f"{what} {path}: cannot write in {folder} ({exc.strerror or exc}); "
                              "choose a writable location") from None


def check_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """Create ``path`` if needed and make sure files can be written in it; returns it as a Path."""
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
    return folder


def check_output_file(path: str | Path, what: str = "output file") -> Path:
    """Make sure ``path`` can be written (its folder exists or can be made, and is writable; the path is not a
    folder; an existing file is writable) without changing it; returns it as a Path."""
    file = Path(path)
    if file.is_dir():
        raise OutputPathError(f"{what} {file} is a folder; give a file path")
    check_output_dir(file.parent if str(file.parent) else Path("."), f"folder of the {what}")
    if file.exists():
        try:
            with open(file, "ab"):
                pass
        except OSError as exc:
            raise OutputPathError(f"{what} {file}: cannot write it ({exc.strerror or exc})") from None
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
        file.truncate()
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else "python"
        file.write(f"pid {os.getpid()}: {command[:300]}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        file.flush()
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
