"""An in-process LRU for what the engine computes from a region of a video file (motion features, frame
features), keyed by the file's identity: a rewritten file (new size or mtime) gets new keys, so nothing stale is
served. Thread-safe: the editor runs detections, preparations and generations on worker threads."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


def file_key(path: str | os.PathLike[str], *parts: object) -> tuple[object, ...]:
    """(resolved path, size, mtime_ns, *parts): the key of what was computed from `path` with `parts`."""
    p = Path(path).resolve()
    st = p.stat()
    return (str(p), st.st_size, st.st_mtime_ns, *parts)


@dataclass
class RegionCache(Generic[T]):
    """Least recently used first out, at most `capacity` items; `hits` and `misses` count the lookups."""

    capacity: int = 256
    hits: int = 0
    misses: int = 0
    _items: OrderedDict[tuple[object, ...], T] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, key: tuple[object, ...]) -> T | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self.hits += 1
            self._items.move_to_end(key)
            return item

    def put(self, key: tuple[object, ...], item: T) -> None:
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)
