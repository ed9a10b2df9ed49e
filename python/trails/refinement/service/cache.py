"""The service's tensor cache: decoded splits kept on the device between jobs."""

from __future__ import annotations

import collections
import threading

__all__ = ["TensorCache"]


class TensorCache:
    """Decoded splits on the device, least recently used first out, at most ``max_bytes``."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.entries: collections.OrderedDict = collections.OrderedDict()
        self.lock = threading.Lock()  # a streaming read puts its split from the reader thread

    def get(self, key):
        with self.lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                return self.entries[key]
            return None

    def put(self, key, splits: tuple) -> None:
        size = sum(split.nbytes for split in splits)
        if size > self.max_bytes:
            return
        with self.lock:
            self.entries[key] = splits
            self.entries.move_to_end(key)
            while sum(s.nbytes for value in self.entries.values() for s in value) > self.max_bytes:
                self.entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self.entries)
