"""A size-bounded least-recently-used mapping: the caches of reference embeddings, translations and the reward
server's results. (``functools.lru_cache`` caches a function's calls; these cache values computed in batches
under keys the caller chooses.)"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

__all__ = ["LRUCache"]


class LRUCache:
    """At most ``size`` entries (0: keeps nothing); ``get`` marks an entry as used, ``put`` drops the least
    recently used entries beyond ``size``."""

    def __init__(self, size: int) -> None:
        self.size = max(0, int(size))
        self._data: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        """The value under ``key`` (now the most recently used), or None."""
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        if not self.size:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
