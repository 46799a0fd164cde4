"""An append-only store of pivot references that survives being killed at any moment.

One JSON Lines file, ``references.jsonl``; each line is a :class:`~pivotrl.records.Reference`, keyed by
(problem id, pivot identity, settings hash). A reference is appended, flushed and fsync'ed as soon as it
is verified, so a crash loses at most the line being written; that half line is cut off when the store is
opened again. Re-running skips the keys already present, so a run continues where it stopped and never
writes a key twice. References of another pivot or other settings live in the same file under their own
keys and are never mixed: readers always ask for one (pivot, settings) pair.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from pivotrl.records import Reference
from pivotrl.run_folder import cut_torn_line, existing_file, open_output, read_records

FILE = "references.jsonl"


class StoreError(Exception):
    pass


class ReferenceStore:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / FILE
        self.folder.mkdir(parents=True, exist_ok=True)
        self._repair()

    def _repair(self) -> None:
        """Cut a last line left incomplete by a kill, so appends start on a clean line. Anything but a regular
        file (a pipe, a link to /dev/zero) is an OutputPathError naming it, before it is opened."""
        if existing_file(self.path, "reference store file"):
            cut_torn_line(self.path)

    def read(self, pivot: str | None = None, settings: str | None = None) -> list[Reference]:
        """References of one (pivot, settings) pair (or all), first occurrence of each key, in file order."""
        if not existing_file(self.path, "reference store file"):
            return []
        seen: set[tuple[str, str, str]] = set()
        out = []
        text = self.path.read_text(encoding="utf-8")
        for ref in read_records(self.path, text, Reference.from_dict, "reference", StoreError):
            key = (ref.problem_id, ref.pivot, ref.settings)
            if key in seen or (pivot is not None and ref.pivot != pivot) or (
                    settings is not None and ref.settings != settings):
                continue
            seen.add(key)
            out.append(ref)
        return out

    def done_ids(self, pivot: str, settings: str) -> set[str]:
        return {r.problem_id for r in self.read(pivot, settings)}

    def append(self, refs: Iterable[Reference]) -> None:
        with open_output(self.path, "a") as f:  # a full disk: an error naming the file
            for ref in refs:
                f.write(json.dumps(ref.to_dict(), ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def pairs(self) -> list[tuple[str, str, int]]:
        """(pivot, settings, count) for every pair present: what the folder holds."""
        counts: dict[tuple[str, str], int] = {}
        for ref in self.read():
            counts[(ref.pivot, ref.settings)] = counts.get((ref.pivot, ref.settings), 0) + 1
        return [(p, s, n) for (p, s), n in counts.items()]
