"""`Occupancy`: how many WebSocket connections and subscriptions each caller holds open in this
process, bounded by `limits.max_websockets_per_caller` and `limits.max_subscriptions_per_caller`.

Counted per process: a connection lives in one process, and a caller that spreads its
connections over replicas also spreads the load it puts on each.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Occupancy:
    max_websockets: int
    max_subscriptions: int
    _websockets: Counter[str] = field(default_factory=Counter, init=False)
    _subscriptions: Counter[str] = field(default_factory=Counter, init=False)

    def open_websocket(self, caller: str) -> bool:
        """Count a connection for `caller`; False (nothing counted) if it has its maximum."""
        return _take(self._websockets, caller, self.max_websockets)

    def close_websocket(self, caller: str) -> None:
        _give_back(self._websockets, caller)

    def start_subscription(self, caller: str) -> bool:
        """Count a subscription for `caller`; False (nothing counted) if it has its maximum."""
        return _take(self._subscriptions, caller, self.max_subscriptions)

    def end_subscription(self, caller: str) -> None:
        _give_back(self._subscriptions, caller)

    def websockets_of(self, caller: str) -> int:
        return self._websockets[caller]

    def subscriptions_of(self, caller: str) -> int:
        return self._subscriptions[caller]


def _take(counts: Counter[str], caller: str, maximum: int) -> bool:
    if counts[caller] >= maximum:
        return False
    counts[caller] += 1
    return True


def _give_back(counts: Counter[str], caller: str) -> None:
    counts[caller] -= 1
    if counts[caller] <= 0:
        del counts[caller]  # callers come and go: keep only those holding something
